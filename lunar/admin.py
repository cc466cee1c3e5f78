"""Maintenance commands for a lunar database: ``python3 -m lunar.admin``.

``compact`` deletes the bodies of applied messages older than an age, and
``stats`` prints what a database holds. Both are safe while a server uses the
same file. Neither starts a server.
"""

import argparse
import os
import re
import sqlite3
import sys
from typing import List, Optional

from lunar.store import StoreError, compact, disk_usage

DURATION_UNITS_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_age(text: str) -> float:
    """Parse an age such as ``90s``, ``30m``, ``12h`` or ``7d`` into seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid age {text!r}: use a number and a unit s, m, h or d, such as 7d"
        )
    return float(match[1]) * DURATION_UNITS_SECONDS[match[2]]


def main(argv: Optional[List[str]] = None) -> int:
    """Run one maintenance command and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python3 -m lunar.admin",
        description="Maintenance commands for a lunar database, safe while a server uses it.")
    commands = parser.add_subparsers(dest="command", required=True)

    compact_parser = commands.add_parser(
        "compact", help="delete applied message bodies older than an age",
        description="Delete the stored bodies of applied messages received longer ago "
                    "than --older-than. Rocket states and buffered messages stay, so the "
                    "served fleet does not change; the history endpoint shows fewer messages.")
    compact_parser.add_argument("--db", default="lunar.db", help="database file (default: %(default)s)")
    compact_parser.add_argument("--older-than", required=True, type=parse_age, metavar="AGE",
                                help="minimum age of a deleted message, such as 7d or 12h")

    stats_parser = commands.add_parser("stats", help="print the number of rockets and messages in a database")
    stats_parser.add_argument("--db", default="lunar.db", help="database file (default: %(default)s)")

    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "compact":
            before = disk_usage(arguments.db)
            deleted = compact(arguments.db, arguments.older_than)
            after = disk_usage(arguments.db)
            print(f"deleted {deleted} applied messages from {arguments.db}; "
                  f"file size {before:,} -> {after:,} bytes")
        else:
            print_stats(arguments.db)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def print_stats(path: str) -> None:
    """Print counts of rockets and messages in a database."""
    if not os.path.isfile(path):
        raise StoreError(f"database {path} does not exist; pass the file the server uses with --db")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rockets = connection.execute("SELECT count(*) FROM rockets").fetchone()[0]
            messages = connection.execute("SELECT count(*) FROM messages").fetchone()[0]
            buffered = connection.execute(
                "SELECT count(*) FROM messages m JOIN rockets r ON r.channel = m.channel"
                " WHERE m.number > r.last_message_number").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise StoreError(f"database {path}: {error}") from None
    print(f"{path}: {rockets} rockets, {messages} stored messages "
          f"({buffered} buffered), {disk_usage(path):,} bytes")


if __name__ == "__main__":
    sys.exit(main())
