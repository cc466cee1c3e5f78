"""Entry point for ``python3 -m lunar.rockets``; all logic is in ``lunar.rockets.cli``."""

import sys

from lunar.rockets.cli import main

sys.exit(main())
