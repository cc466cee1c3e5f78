"""The lunar test suite; ``python3 -m tests`` runs it.

Tests that expect a log line capture it with ``assertLogs``. Every other
line from lunar's loggers is dropped here, so that warnings provoked on
purpose do not clutter the test output through logging's last-resort
handler.
"""

import logging

logging.getLogger("lunar").addHandler(logging.NullHandler())
