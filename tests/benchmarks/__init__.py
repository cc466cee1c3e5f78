"""Benchmark scripts: each runs on its own with ``python3 -m tests.benchmarks.NAME``.

They are not unit tests, so ``python3 -m tests`` does not collect them.
"""
