"""The durable message log: every accepted message and each rocket's state, in SQLite.

A message is inserted and its rocket's new state saved in one transaction,
and the transaction commits before the control center changes anything, so
an acknowledged message is never lost. On start the rocket states are read
back whole and only the messages still waiting behind a gap are parsed
again, which keeps start-up fast however long the log is.

The schema lives here and nowhere else; ``SCHEMA_VERSION`` is stored in
SQLite's ``user_version``. This module does not decide what a message means:
``lunar.fleet`` does.
"""

import logging
import os
import sqlite3
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from lunar.fleet import Journal, JournalError, RocketState
from lunar.messages import Message, decode_message
from lunar.timestamps import parse_instant

try:
    import fcntl
except ImportError:  # Windows: no advisory lock, see _lock_file
    fcntl = None

logger = logging.getLogger(__name__)

MEMORY = ":memory:"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 2.0  # how long a write waits for another connection's lock
SYNC_LEVELS = {
    # WAL with synchronous=NORMAL: a commit reaches the operating system before
    # it returns, so it survives the process being killed, but the last
    # commits can be lost if the machine loses power or the kernel crashes.
    "normal": "NORMAL",
    # synchronous=FULL: every commit is fsync'ed; survives power loss too.
    "full": "FULL",
}
COMPACT_BATCH_ROWS = 10_000  # rows deleted per transaction, so a server's writes wait briefly
VACUUM_STEP_PAGES = 2_000  # pages released to the file system per step

_SCHEMA = (
    """CREATE TABLE messages (
        channel TEXT NOT NULL,
        number INTEGER NOT NULL,
        received_at REAL NOT NULL,  -- Unix time in seconds, for compaction by age
        body TEXT NOT NULL,         -- the message's JSON text as received
        PRIMARY KEY (channel, number)
    ) WITHOUT ROWID""",
    """CREATE TABLE rockets (
        channel TEXT PRIMARY KEY,
        type TEXT,
        speed,                      -- no affinity, so integers stay integers
        mission TEXT,
        status TEXT NOT NULL,
        explosion_reason TEXT,
        launch_time TEXT,
        last_message_number INTEGER NOT NULL,
        last_message_time TEXT
    ) WITHOUT ROWID""",
)

_INSERT_MESSAGE = "INSERT INTO messages (channel, number, received_at, body) VALUES (?, ?, ?, ?)"
_SAVE_STATE = (
    "INSERT OR REPLACE INTO rockets (channel, type, speed, mission, status,"
    " explosion_reason, launch_time, last_message_number, last_message_time)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# Upgrades from an older schema version to the next one, keyed by the older
# version. Each runs in one transaction after a backup copy is written.
MIGRATIONS: Dict[int, Callable[[sqlite3.Connection], None]] = {}


class StoreError(Exception):
    """Raised when the database cannot be opened or used."""


class StoredMessage(NamedTuple):
    """A message as kept in the log."""

    channel: str
    number: int
    received_at: float
    body: str


class RestoredFleet(NamedTuple):
    """The rocket states and buffered messages read back by ``SQLiteJournal.load``."""

    states: List[Tuple[str, RocketState]]
    pending: List[Message]
    message_count: int


class SQLiteJournal(Journal):
    """A journal in one SQLite database file, or in memory for ``:memory:``.

    One connection serves every thread; its own lock serializes use of it.
    The control center already serializes writes under its lock, and this
    lock also covers reads from other threads.
    """

    def __init__(self, path: str, sync: str = "normal") -> None:
        if sync not in SYNC_LEVELS:
            raise StoreError(f"invalid sync level {sync!r}; use one of {', '.join(SYNC_LEVELS)}")
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._lock_file = None
        if path != MEMORY:
            _check_directory(path)
            # The real path, so that a symbolic link cannot dodge the lock file.
            self._lock_file = _lock_file(os.path.realpath(path))
        try:
            self._connection = _connect(path)
            self._prepare(sync)
        except sqlite3.Error as error:
            self._release_lock_file()
            raise StoreError(_explain(path, error)) from None
        except BaseException:
            self._release_lock_file()
            raise

    # -- start-up ----------------------------------------------------------------

    def _prepare(self, sync: str) -> None:
        connection = self._connection
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} was written by a newer lunar (schema version "
                f"{version}; this lunar reads up to {SCHEMA_VERSION}); upgrade lunar "
                "or start with another --db"
            )
        is_new = version == 0 and not _has_tables(connection)
        if is_new:
            # Only possible before the first table exists, and outside a transaction.
            connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        if self.path != MEMORY:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"database {self.path} cannot use WAL mode (got {mode})")
        connection.execute(f"PRAGMA synchronous={SYNC_LEVELS[sync]}")

        if is_new:
            with _transaction(connection):
                for statement in _SCHEMA:
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            logger.info("created database %s with schema version %d", self.path, SCHEMA_VERSION)
        elif version < SCHEMA_VERSION:
            self._upgrade(version)
        else:
            # Fail now, not at the first message, if the file cannot be written.
            with _transaction(connection):
                connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _upgrade(self, version: int) -> None:
        backup = f"{self.path}.bak-v{version}"
        if self.path != MEMORY:
            logger.info("backing up %s to %s before upgrading schema %d to %d",
                        self.path, backup, version, SCHEMA_VERSION)
            copy = sqlite3.connect(backup)
            try:
                self._connection.backup(copy)
            finally:
                copy.close()
        while version < SCHEMA_VERSION:
            migrate = MIGRATIONS.get(version)
            if migrate is None:
                raise StoreError(f"database {self.path} has schema version {version}, "
                                 "which this lunar cannot upgrade")
            with _transaction(self._connection):
                migrate(self._connection)
                version += 1
                self._connection.execute(f"PRAGMA user_version={version}")
            logger.info("upgraded database %s to schema version %d", self.path, version)

    def load(self) -> RestoredFleet:
        """Read back every rocket's state and the messages still buffered."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT channel, type, speed, mission, status, explosion_reason,"
                " launch_time, last_message_number, last_message_time FROM rockets"
            ).fetchall()
            states = []
            pending = []
            for channel, *fields in rows:
                state = _state_from_row(fields)
                states.append((channel, state))
                for (body,) in self._connection.execute(
                    "SELECT body FROM messages WHERE channel = ? AND number > ?"
                    " ORDER BY number",
                    (channel, state.last_message_number),
                ):
                    pending.append(decode_message(body.encode("utf-8")))
            count = self._connection.execute("SELECT count(*) FROM messages").fetchone()[0]
        return RestoredFleet(states, pending, count)

    # -- the Journal interface -----------------------------------------------------

    def record(self, message: Message, state: Optional[RocketState]) -> None:
        """Insert a message and save its rocket's state in one transaction."""
        with self._lock:
            connection = self._connection
            try:
                connection.execute("BEGIN")
                try:
                    connection.execute(
                        _INSERT_MESSAGE,
                        (message.channel, message.number, time.time(), message.source),
                    )
                    if state is not None:
                        self._save_state(message.channel, state)
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise JournalError(_describe(error)) from None

    def record_batch(self, messages: Sequence[Message], states: Sequence[Tuple[str, RocketState]]) -> None:
        """Insert a batch's messages and save the given rocket states in one transaction."""
        received_at = time.time()
        with self._lock:
            connection = self._connection
            try:
                connection.execute("BEGIN")
                try:
                    connection.executemany(
                        _INSERT_MESSAGE,
                        [(message.channel, message.number, received_at, message.source)
                         for message in messages],
                    )
                    connection.executemany(
                        _SAVE_STATE, [_state_row(channel, state) for channel, state in states]
                    )
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise JournalError(_explain(self.path, error)) from None

    def save_state(self, channel: str, state: RocketState) -> None:
        """Save a rocket's state on its own."""
        with self._lock:
            try:
                with _transaction(self._connection):
                    self._save_state(channel, state)
            except sqlite3.Error as error:
                raise JournalError(_describe(error)) from None

    def _save_state(self, channel: str, state: RocketState) -> None:
        """Write one rocket row. Caller holds the lock and an open transaction."""
        self._connection.execute(_SAVE_STATE, _state_row(channel, state))

    # -- reading and maintenance ----------------------------------------------------

    def read_messages(self, channel: str, offset: int = 0, limit: int = 100) -> List[StoredMessage]:
        """Return stored messages of one rocket in message-number order."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT channel, number, received_at, body FROM messages"
                " WHERE channel = ? ORDER BY number LIMIT ? OFFSET ?",
                (channel, limit, offset),
            ).fetchall()
        return [StoredMessage(*row) for row in rows]

    def count_messages(self, channel: Optional[str] = None) -> int:
        """Return how many messages are stored, for one rocket or for all."""
        with self._lock:
            if channel is None:
                row = self._connection.execute("SELECT count(*) FROM messages").fetchone()
            else:
                row = self._connection.execute(
                    "SELECT count(*) FROM messages WHERE channel = ?", (channel,)
                ).fetchone()
        return row[0]

    def check_writable(self) -> None:
        """Raise ``StoreError`` unless a write transaction can start now."""
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                self._connection.execute("ROLLBACK")
            except sqlite3.Error as error:
                raise StoreError(_explain(self.path, error)) from None

    def close(self) -> None:
        """Checkpoint the write-ahead log and close the database; repeat calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self.path != MEMORY:
                    self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._connection.close()
            except sqlite3.Error as error:
                logger.error("closing database %s failed: %s", self.path, error)
            finally:
                self._release_lock_file()

    def _release_lock_file(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def compact(path: str, older_than_seconds: float, now: Optional[float] = None) -> int:
    """Delete bodies of applied messages received more than the given age ago.

    Safe while a server uses the same file: it removes only messages at or
    below their rocket's last applied number, which the saved rocket state
    already covers, in short transactions. Buffered messages and every rocket
    state stay. Returns the number of messages deleted.
    """
    cutoff = (time.time() if now is None else now) - older_than_seconds
    if path == MEMORY or not os.path.isfile(path):
        raise StoreError(f"database {path} does not exist; pass the file the server uses with --db")
    try:
        connection = _connect(path)
    except sqlite3.Error as error:
        raise StoreError(_explain(path, error)) from None
    deleted = 0
    try:
        while True:
            with _transaction(connection):
                cursor = connection.execute(
                    "DELETE FROM messages WHERE (channel, number) IN ("
                    " SELECT m.channel, m.number FROM messages m JOIN rockets r"
                    " ON r.channel = m.channel"
                    " WHERE m.number <= r.last_message_number AND m.received_at < ?"
                    " LIMIT ?)",
                    (cutoff, COMPACT_BATCH_ROWS),
                )
            deleted += cursor.rowcount
            if cursor.rowcount < COMPACT_BATCH_ROWS:
                break
        # Release free pages in small steps, so a server's writes wait only briefly.
        # executescript steps the pragma to completion; execute would free one page.
        while connection.execute("PRAGMA freelist_count").fetchone()[0] > 0:
            connection.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES});")
        # Copy the freed pages out of the write-ahead log so the file shrinks now.
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as error:
        raise StoreError(_explain(path, error)) from None
    finally:
        connection.close()
    logger.info("compacted %s: deleted %d applied messages older than %g s",
                path, deleted, older_than_seconds)
    return deleted


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are opened and closed explicitly.
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    return connection


class _transaction:
    """Run a block in BEGIN IMMEDIATE ... COMMIT, rolling back on error."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, error_type: object, error: object, traceback: object) -> None:
        if error_type is None:
            self.connection.execute("COMMIT")
        else:
            self.connection.execute("ROLLBACK")


def _has_tables(connection: sqlite3.Connection) -> bool:
    row = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
    return row[0] > 0


def _state_row(channel: str, state: RocketState) -> Tuple[object, ...]:
    """Return the parameters of ``_SAVE_STATE`` for one rocket."""
    return (channel, state.type, state.speed, state.mission, state.status,
            state.explosion_reason, state.launch_time, state.last_message_number,
            state.last_message_time)


def _state_from_row(fields: List[object]) -> RocketState:
    (rocket_type, speed, mission, status, explosion_reason, launch_time,
     last_message_number, last_message_time) = fields
    return RocketState(
        type=rocket_type,
        speed=speed,
        mission=mission,
        status=status,
        explosion_reason=explosion_reason,
        launch_time=launch_time,
        launch_instant=None if launch_time is None else parse_instant(launch_time),
        last_message_number=last_message_number,
        last_message_time=last_message_time,
    )


def _lock_file(path: str) -> Optional[object]:
    """Take an exclusive lock beside the database, so one server uses it at a time."""
    if fcntl is None:
        # NOTE: without fcntl (Windows) two servers could share one database
        # and serve diverging state; nothing stops that there.
        return None
    lock_path = f"{path}.lock"
    try:
        handle = open(lock_path, "a+")
    except OSError as error:
        raise StoreError(f"cannot create lock file {lock_path}: {error.strerror}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreError(
            f"database {path} is in use by another lunar server (lock file {lock_path}); "
            "stop it or choose another --db"
        ) from None
    return handle


def _check_directory(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StoreError(f"cannot open database {path}: directory {directory} does not exist; "
                         "create it or choose another --db")


def _explain(path: str, error: sqlite3.Error) -> str:
    """Return an SQLite error on a database file as a message that names the next step."""
    return f"database {path}: {_describe(error)}"


def _describe(error: sqlite3.Error) -> str:
    """Return an SQLite error with advice, without the file's path."""
    text = str(error)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        advice = "another process holds a lock on it; retry, or stop that process"
    elif "readonly" in lowered or "read-only" in lowered:
        advice = "the file or its directory is read-only; fix the permissions or choose another --db"
    elif "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        advice = ("the file is corrupt or not a lunar database; restore a backup "
                  "or choose another --db")
    elif "full" in lowered:
        advice = "the disk is full; free space, then retry"
    elif "unable to open" in lowered:
        advice = "the file cannot be opened; check that its directory exists and is writable"
    else:
        return text
    return f"{text} ({advice})"


def disk_usage(path: str) -> int:
    """Return the bytes used by a database and its write-ahead log."""
    return sum(os.path.getsize(name) for name in (path, f"{path}-wal") if os.path.exists(name))

