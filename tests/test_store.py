"""Tests of the SQLite message log: restart, schema versions, failures, compaction."""

import argparse
import contextlib
import io
import json
import os
import sqlite3
import tempfile
import unittest
from unittest import mock

from lunar import admin, store
from lunar.fleet import ControlCenter, JournalError
from lunar.messages import decode_message
from lunar.store import SQLiteJournal, StoreError, compact

TIME = "2025-04-02T09:21:50.458989221+02:00"


def make_message(channel, number, message_type="RocketSpeedIncreased", **payload):
    """Build a validated message; the payload defaults suit each known type."""
    defaults = {
        "RocketLaunched": {"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"},
        "RocketSpeedIncreased": {"by": 500},
        "RocketExploded": {"reason": "FROZEN_O_RINGS"},
    }
    body = {
        "metadata": {"channel": channel, "messageNumber": number,
                     "messageTime": TIME, "messageType": message_type},
        "message": {**defaults.get(message_type, {}), **payload},
    }
    return decode_message(json.dumps(body).encode("utf-8"))


class StoreTestCase(unittest.TestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.path = os.path.join(directory.name, "lunar.db")

    def open_fleet(self):
        """Open the database and restore a control center from it."""
        journal = SQLiteJournal(self.path)
        self.addCleanup(journal.close)
        control_center = ControlCenter(journal)
        restored = journal.load()
        control_center.restore(restored.states, restored.pending)
        return journal, control_center


class RestartTest(StoreTestCase):
    def test_restart_restores_identical_state(self):
        journal, fleet = self.open_fleet()
        fleet.receive(make_message("a", 1, "RocketLaunched"))
        fleet.receive(make_message("a", 2, by=250))
        fleet.receive(make_message("a", 4))          # waits behind a gap
        fleet.receive(make_message("b", 3, "RocketExploded"))  # a rocket with no launch yet
        fleet.receive(make_message("c", 1, "RocketLaunched", launchSpeed=1500.0))
        fleet.receive(make_message("c", 2, "RocketExploded"))
        before = (fleet.rockets(), fleet.missions())
        journal.close()

        _, restored = self.open_fleet()

        self.assertEqual((restored.rockets(), restored.missions()), before)
        restored.check_invariants()

    def test_duplicates_are_recognised_after_restart(self):
        journal, fleet = self.open_fleet()
        fleet.receive(make_message("a", 1, "RocketLaunched"))
        fleet.receive(make_message("a", 3))
        journal.close()

        _, restored = self.open_fleet()

        self.assertEqual(restored.receive(make_message("a", 1, "RocketLaunched")).value, "duplicate")
        self.assertEqual(restored.receive(make_message("a", 3, by=9999)).value, "duplicate")
        self.assertEqual(restored.receive(make_message("a", 2)).value, "applied")
        self.assertEqual(restored.rocket("a")["speed"], 1500)
        self.assertEqual(restored.rocket("a")["pendingMessages"], 0)

    def test_buffered_messages_drain_after_restart(self):
        journal, fleet = self.open_fleet()
        for number in range(2, 50):
            fleet.receive(make_message("a", number))
        journal.close()

        _, restored = self.open_fleet()
        self.assertEqual(restored.rocket("a")["pendingMessages"], 48)
        restored.receive(make_message("a", 1, "RocketLaunched"))

        self.assertEqual(restored.rocket("a")["lastMessageNumber"], 49)
        self.assertEqual(restored.rocket("a")["speed"], 500 + 48 * 500)

    def test_original_bodies_are_kept(self):
        journal, fleet = self.open_fleet()
        message = make_message("a", 1, "RocketLaunched")
        fleet.receive(message)

        stored = journal.read_messages("a")

        self.assertEqual([row.body for row in stored], [message.source])


class FailureTest(StoreTestCase):
    def test_failed_commit_is_not_applied(self):
        journal, fleet = self.open_fleet()
        fleet.receive(make_message("a", 1, "RocketLaunched"))
        fleet.receive(make_message("a", 3))
        before = fleet.rockets()

        with mock.patch.object(journal, "_save_state", side_effect=sqlite3.OperationalError("disk I/O error")):
            with self.assertRaises(JournalError):
                fleet.receive(make_message("a", 2))

        self.assertEqual(fleet.rockets(), before)
        fleet.check_invariants()
        self.assertEqual(journal.count_messages("a"), 2)
        self.assertEqual(fleet.receive(make_message("a", 2)).value, "applied")
        self.assertEqual(fleet.rocket("a")["lastMessageNumber"], 3)

    def test_full_disk_is_reported_as_journal_error(self):
        journal, fleet = self.open_fleet()
        with mock.patch.object(journal, "_connection") as connection:
            connection.execute.side_effect = [None, sqlite3.OperationalError("database or disk is full"), None]
            with self.assertRaisesRegex(JournalError, "disk is full"):
                fleet.receive(make_message("a", 1, "RocketLaunched"))
        self.assertIsNone(fleet.rocket("a"))

    def test_corrupt_file_is_refused_at_start(self):
        with open(self.path, "wb") as file:
            file.write(b"this is not a database" * 100)
        with self.assertRaisesRegex(StoreError, "corrupt or not a lunar database"):
            SQLiteJournal(self.path)

    def test_read_only_file_is_refused_at_start(self):
        SQLiteJournal(self.path).close()

        def connect_read_only(path):
            # Root ignores file modes, so open the file read-only instead.
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False)

        with mock.patch.object(store, "_connect", connect_read_only):
            with self.assertRaisesRegex(StoreError, "read-only"):
                SQLiteJournal(self.path)

    def test_second_server_on_same_file_is_refused(self):
        journal = SQLiteJournal(self.path)
        self.addCleanup(journal.close)
        with self.assertRaisesRegex(StoreError, "in use by another lunar server"):
            SQLiteJournal(self.path)

    def test_symbolic_link_to_used_database_is_refused(self):
        journal = SQLiteJournal(self.path)
        self.addCleanup(journal.close)
        link = os.path.join(os.path.dirname(self.path), "link.db")
        os.symlink(self.path, link)

        with self.assertRaisesRegex(StoreError, "in use by another lunar server"):
            SQLiteJournal(link)

    def test_missing_directory_is_named(self):
        path = os.path.join(os.path.dirname(self.path), "missing", "lunar.db")

        with self.assertRaisesRegex(StoreError, "missing does not exist"):
            SQLiteJournal(path)

    def test_journal_error_does_not_reveal_path(self):
        journal, fleet = self.open_fleet()
        with mock.patch.object(journal, "_save_state",
                               side_effect=sqlite3.OperationalError("database or disk is full")):
            with self.assertRaises(JournalError) as caught:
                fleet.receive(make_message("a", 1, "RocketLaunched"))

        self.assertNotIn(self.path, str(caught.exception))
        self.assertIn("free space", str(caught.exception))

    def test_locked_database_is_refused_at_start(self):
        SQLiteJournal(self.path).close()
        other = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(other.close)
        other.execute("BEGIN EXCLUSIVE")
        with mock.patch.object(store, "BUSY_TIMEOUT_SECONDS", 0.1):
            with self.assertRaisesRegex(StoreError, "locked"):
                SQLiteJournal(self.path)
        other.execute("ROLLBACK")


class SchemaTest(StoreTestCase):
    def test_newer_schema_is_refused(self):
        connection = sqlite3.connect(self.path)
        connection.execute(f"PRAGMA user_version={store.SCHEMA_VERSION + 1}")
        connection.close()
        with self.assertRaisesRegex(StoreError, "newer lunar"):
            SQLiteJournal(self.path)

    def test_older_schema_is_upgraded_after_backup(self):
        journal, fleet = self.open_fleet()
        fleet.receive(make_message("a", 1, "RocketLaunched"))
        journal.close()
        connection = sqlite3.connect(self.path)
        connection.execute(f"PRAGMA user_version={store.SCHEMA_VERSION - 1}")
        connection.close()

        def add_note_column(connection):
            connection.execute("ALTER TABLE rockets ADD COLUMN note TEXT")

        with mock.patch.dict(store.MIGRATIONS, {store.SCHEMA_VERSION - 1: add_note_column}):
            _, upgraded = self.open_fleet()

        self.assertEqual(upgraded.rocket("a")["status"], "launched")
        backup = f"{self.path}.bak-v{store.SCHEMA_VERSION - 1}"
        self.assertTrue(os.path.exists(backup))
        copy = sqlite3.connect(backup)
        self.addCleanup(copy.close)
        columns = [row[1] for row in copy.execute("PRAGMA table_info(rockets)")]
        self.assertNotIn("note", columns)

    def test_schema_without_upgrade_path_is_refused(self):
        SQLiteJournal(self.path).close()
        connection = sqlite3.connect(self.path)
        connection.execute(f"PRAGMA user_version={store.SCHEMA_VERSION - 1}")
        connection.close()
        with mock.patch.dict(store.MIGRATIONS, {}, clear=True):
            with self.assertRaisesRegex(StoreError, "cannot upgrade"):
                SQLiteJournal(self.path)

    def test_new_database_uses_wal(self):
        SQLiteJournal(self.path).close()
        connection = sqlite3.connect(self.path)
        self.addCleanup(connection.close)
        self.assertEqual(connection.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(connection.execute("PRAGMA user_version").fetchone()[0], store.SCHEMA_VERSION)


class CompactTest(StoreTestCase):
    def test_compact_drops_old_applied_bodies_only(self):
        journal, fleet = self.open_fleet()
        fleet.receive(make_message("a", 1, "RocketLaunched"))
        fleet.receive(make_message("a", 2))
        fleet.receive(make_message("a", 5))  # buffered: must stay
        before = fleet.rockets()

        deleted = compact(self.path, older_than_seconds=60, now=10**10)

        self.assertEqual(deleted, 2)
        self.assertEqual([row.number for row in journal.read_messages("a")], [5])
        journal.close()
        _, restored = self.open_fleet()
        self.assertEqual(restored.rockets(), before)

    def test_compact_rejects_missing_file(self):
        with self.assertRaisesRegex(StoreError, "does not exist"):
            compact(self.path + ".missing", older_than_seconds=1)
        self.assertFalse(os.path.exists(self.path + ".missing"))

    def test_admin_compact_and_stats_commands(self):
        journal, fleet = self.open_fleet()
        fleet.receive(make_message("a", 1, "RocketLaunched"))
        fleet.receive(make_message("a", 3))
        output = io.StringIO()

        with contextlib.redirect_stdout(output):
            self.assertEqual(admin.main(["stats", "--db", self.path]), 0)
            self.assertEqual(admin.main(["compact", "--db", self.path, "--older-than", "0s"]), 0)
            self.assertEqual(admin.main(["stats", "--db", self.path]), 0)

        lines = output.getvalue().splitlines()
        self.assertIn("1 rockets, 2 stored messages (1 buffered)", lines[0])
        self.assertIn("deleted 1 applied messages", lines[1])
        self.assertIn("1 rockets, 1 stored messages (1 buffered)", lines[2])

    def test_admin_age_parsing(self):
        cases = {"90s": 90, "30m": 1800, "12h": 43200, "7d": 604800, "1.5h": 5400}
        for text, seconds in cases.items():
            with self.subTest(text=text):
                self.assertEqual(admin.parse_age(text), seconds)
        for text in ("", "7", "d", "-1d", "1w"):
            with self.subTest(text=text):
                with self.assertRaises(argparse.ArgumentTypeError):
                    admin.parse_age(text)

    def test_compact_keeps_recent_messages(self):
        _, fleet = self.open_fleet()
        fleet.receive(make_message("a", 1, "RocketLaunched"))
        self.assertEqual(compact(self.path, older_than_seconds=3600), 0)


if __name__ == "__main__":
    unittest.main()
