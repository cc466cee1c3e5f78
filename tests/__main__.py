"""Run the whole unittest suite and end with a one-line tally.

``python3 -m tests`` discovers every ``test_*.py`` under ``tests/`` (the
benchmarks are scripts, not tests, and are not collected) and exits non-zero
if anything failed.
"""

import os
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    """Discover and run the tests; print 'N passed, N failed, N skipped'."""
    suite = unittest.defaultTestLoader.discover(os.path.join(ROOT, "tests"), top_level_dir=ROOT)
    verbosity = 2 if "-v" in sys.argv[1:] else 1
    result = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"{sys.implementation.name} {sys.version.split()[0]}: "
          f"{passed} passed, {failed} failed, {skipped} skipped")
    for test, reason in result.skipped:
        print(f"skipped {test.id()}: {reason}")
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
