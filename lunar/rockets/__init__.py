"""A stand-in for the closed ``rockets`` test program that feeds a lunar server.

It generates deterministic rocket traffic per seed, delivers it with
parallel HTTP senders and redelivery, and can verify the server's rocket
state afterwards. It is a test client only and does not store anything.

Run it as ``python3 -m lunar.rockets launch http://localhost:8088/messages``,
or call ``run_launch(LaunchConfig(url))`` from tests and benchmarks.
"""

from lunar.rockets.cli import main
from lunar.rockets.launch import LaunchConfig, LaunchReport, run_launch

__all__ = ["LaunchConfig", "LaunchReport", "main", "run_launch"]
