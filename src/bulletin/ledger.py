"""The ledger, .bulletin/ledger.sqlite: what was sent to whom, suppressions, frozen editions.

Precious state (back it up): SQLite in WAL mode, one short transaction per record, so a
killed run loses nothing the server accepted before it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from .addresses import normalise_address
from .errors import LedgerError, NoLedgerError, RefusedError

# 2: addresses folded to lower case, local part too; 3: subscribers, reports and runs
SCHEMA_VERSION = 3
BOUNCES_TO_SUPPRESS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    window TEXT NOT NULL,
    address TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (window, address)
);
CREATE TABLE IF NOT EXISTS suppressed (
    address TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    address TEXT NOT NULL,
    run TEXT NOT NULL,
    code INTEGER NOT NULL,
    message TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (address, run)
);
CREATE TABLE IF NOT EXISTS editions (
    window TEXT PRIMARY KEY,
    start TEXT NOT NULL,
    frozen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS edition_items (
    window TEXT NOT NULL,
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (window, position)
);
CREATE INDEX IF NOT EXISTS edition_items_by_id ON edition_items (item_id);
"""
_TABLES = frozenset({"sent", "suppressed", "failures", "editions", "edition_items"})

P = ParamSpec("P")
R = TypeVar("R")


def _unusable(path: Path, error: sqlite3.DatabaseError) -> LedgerError:
    """What an SQLite error means for the operator, naming the file."""
    said = str(error)
    if isinstance(error, sqlite3.OperationalError):
        if "locked" in said or "busy" in said:
            return LedgerError(f"{path}: error: the ledger is busy ({said}); let the other bulletin "
                               "finish, then run the same command again")  # fmt: skip
        return LedgerError(f"{path}: error: cannot use the ledger ({said}); check the disk and the "
                           "file's permissions, then run the same command again")  # fmt: skip
    return LedgerError(f"{path}: error: the ledger is damaged ({said}); restore it from a backup")


def _guarded(method: Callable[Concatenate[Ledger, P], R]) -> Callable[Concatenate[Ledger, P], R]:
    """A ledger method whose SQLite errors become a LedgerError naming the file."""

    @functools.wraps(method)
    def guarded(self: Ledger, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            raise _unusable(self.path, error) from None

    return guarded


def _prepare(path: Path, db: sqlite3.Connection, create: bool, verify: bool) -> None:
    """Check that `db` is a ledger (or, with `create`, an empty file to make one), then set it up."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version > SCHEMA_VERSION:
        raise RefusedError(f"{path} was written by a newer bulletin (schema {version}); upgrade bulletin")
    if version == 0 and not create:
        # SQLite takes an empty file for a new database: that is a lost ledger, not a new one.
        raise NoLedgerError(
            f"{path}: error: empty, or not a bulletin ledger: without it bulletin cannot know who "
            "was mailed already; restore it from a backup or pass --new-ledger to start a new list"
        )
    if version == 0 and tables:
        raise RefusedError(
            f"{path}: error: holds tables that are not bulletin's ({', '.join(sorted(tables))}), so it "
            "is not a bulletin ledger; check the path, or move the file away and pass --new-ledger "
            "to start a new list"
        )
    if version > 0 and _TABLES - tables:
        missing = ", ".join(sorted(_TABLES - tables))
        raise LedgerError(
            f"{path}: error: the ledger is damaged (no table {missing}); restore it from a backup"
        )
    if verify:
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise LedgerError(
                f"{path}: error: the ledger is damaged ({problems[0]}); restore it from a backup"
            )
    db.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL: a commit survives the process being killed; only an
    # operating-system crash can lose the last few records.
    db.execute("PRAGMA synchronous=NORMAL")
    if version == 0:
        db.executescript(_SCHEMA + _SUBSCRIBERS)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    elif version < SCHEMA_VERSION:
        _migrate(db)


def _migrate(db: sqlite3.Connection) -> None:
    """Bring an older ledger to SCHEMA_VERSION, in one transaction (another process may be
    doing the same: the one that gets the write lock first does it)."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version < 2:
            _fold_addresses(db)
        if version < 3:
            for statement in _SUBSCRIBERS.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _fold_addresses(db: sqlite3.Connection) -> None:
    """Version 1 → 2: fold the addresses stored with their local part as written.

    Where two spellings meet: the first message sent a window is kept, a suppression is never
    lost ("unsubscribed" wins over a bounce), and a failing run counts once.
    """
    # SQLite's lower() folds ASCII only: fold with the very function that compares addresses.
    db.create_function("bulletin_fold", 1, normalise_address, deterministic=True)
    folded = {
        "sent": "SELECT window, bulletin_fold(address), message_id, min(sent_at) FROM sent "
                "GROUP BY window, bulletin_fold(address)",
        "suppressed": "SELECT bulletin_fold(address), CASE WHEN max(reason = 'unsubscribed') "
                      "THEN 'unsubscribed' ELSE min(reason) END, min(since) FROM suppressed "
                      "GROUP BY bulletin_fold(address)",
        "failures": "SELECT bulletin_fold(address), run, code, message, min(at) FROM failures "
                    "GROUP BY bulletin_fold(address), run",
    }  # fmt: skip
    # (With min(), SQLite takes the other bare columns from the row holding the minimum.)
    for table, select in folded.items():
        db.execute(f"CREATE TEMP TABLE folded_{table} AS {select}")
        db.execute(f"DELETE FROM {table}")
        db.execute(f"INSERT INTO {table} SELECT * FROM folded_{table}")
        db.execute(f"DROP TABLE folded_{table}")


_SUBSCRIBERS = """
-- Version 3: subscribers, their status history and consent, the web side's guards, delivery
-- reports (bounces and complaints), and a summary of each send.
CREATE TABLE IF NOT EXISTS subscribers (
    address TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    topics TEXT,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    created TEXT NOT NULL,
    confirmed TEXT,
    changed TEXT NOT NULL,
    consent_at TEXT,
    consent_url TEXT,
    consent_text TEXT,
    consent_ip TEXT
);
CREATE INDEX IF NOT EXISTS subscribers_by_status ON subscribers (status);
CREATE TABLE IF NOT EXISTS status_changes (
    address TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mails_asked (address TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS mails_asked_by_address ON mails_asked (address, at);
CREATE TABLE IF NOT EXISTS form_nonces (nonce TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hits (client TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS hits_by_client ON hits (client, at);
CREATE TABLE IF NOT EXISTS reports (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    address TEXT,
    matched_by TEXT,
    status TEXT NOT NULL,
    diagnostic TEXT NOT NULL,
    received TEXT NOT NULL,
    week TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_address ON reports (address, kind);
CREATE INDEX IF NOT EXISTS sent_by_message_id ON sent (message_id);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY,
    window TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    sent INTEGER NOT NULL,
    already_sent INTEGER NOT NULL,
    suppressed INTEGER NOT NULL,
    no_items INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    aborted TEXT NOT NULL
);
"""


BUSY_TIMEOUT = 30  # seconds a writer waits for the others (SQLite's busy timeout too)


def _take(lock: int, path: Path) -> threading.Lock:
    """The writers' file lock, waited for at most BUSY_TIMEOUT seconds; and this process's
    own lock for the same file, held with it. This process's threads (a web worker's) queue
    on the latter, which wakes the next at once; only other processes are polled for."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    with _LOCKS_GUARD:
        local = _LOCKS.setdefault(str(path), threading.Lock())
    if not local.acquire(timeout=BUSY_TIMEOUT):
        raise sqlite3.OperationalError("database is locked")
    pause = 0.0001
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return local
        except BlockingIOError:
            if time.monotonic() >= deadline:
                local.release()
                raise sqlite3.OperationalError("database is locked") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.001)
        except BaseException:
            local.release()
            raise


_LOCKS: dict[str, threading.Lock] = {}  # one per ledger file, for this process's threads
_LOCKS_GUARD = threading.Lock()


def _close_quietly(descriptor: int) -> None:
    with contextlib.suppress(OSError):
        os.close(descriptor)


class Ledger:
    """The send ledger; open it with Ledger.open()."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.db = connection
        self._lock: int | None = None
        self._writer = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        # A ledger dropped without close() (a web worker's thread that ends) closes its lock
        # file all the same: each one left open was a descriptor lost for good.
        self._closer = weakref.finalize(self, _close_quietly, self._writer)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """One write transaction, committed on success and rolled back on error.

        Writers (sends, web workers, commands) take turns through a file lock (see _take);
        SQLite's own busy handler would sleep for milliseconds instead. A writer that cannot
        have it within BUSY_TIMEOUT seconds gets SQLite's own answer,
        sqlite3.OperationalError ("database is locked"), as it would from SQLite itself.
        """
        local = _take(self._writer, self.path)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        finally:
            fcntl.flock(self._writer, fcntl.LOCK_UN)
            local.release()

    @classmethod
    def open(cls, path: Path, create: bool = False, verify: bool = False) -> Ledger:
        """Open the ledger; create it only when asked, so a lost ledger cannot re-mail everyone.

        `verify` reads every page first (before a send mails anyone); otherwise damage is
        found by the first query that meets it. Either way it is a LedgerError naming the file.
        """
        if not path.exists() and not create:
            raise NoLedgerError(
                f"no ledger at {path}: without it bulletin cannot know who was mailed already. "
                "Restore it from a backup, or pass --new-ledger to start a new list"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
        except sqlite3.DatabaseError as error:
            raise _unusable(path, error) from None
        try:
            _prepare(path, db, create, verify)
        except sqlite3.DatabaseError as error:
            db.close()
            raise _unusable(path, error) from None
        except BaseException:
            db.close()
            raise
        return cls(path, db)

    @classmethod
    def existing(cls, path: Path) -> Ledger | None:
        """The ledger, or None when there is none yet (missing, or an empty file): for the
        commands that only read it (build, digest, a dry run)."""
        try:
            return cls.open(path)
        except NoLedgerError:
            return None

    # -- one send at a time ------------------------------------------------------------------

    def lock(self, lock_path: Path) -> None:
        """Hold the site's send lock until close(); RefusedError at once if another run has it."""
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise RefusedError(
                f"another bulletin send holds the lock ({lock_path}); let it finish, then run again"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        self._lock = handle

    # -- sent ----------------------------------------------------------------------------------

    @_guarded
    def record_sent(self, window: str, address: str, message_id: str, at: datetime) -> None:
        """Record one accepted message; committed before this returns."""
        with self.writing():
            self.db.execute(
                "INSERT OR REPLACE INTO sent (window, address, message_id, sent_at) VALUES (?, ?, ?, ?)",
                (window, normalise_address(address), message_id, at.isoformat()),
            )

    @_guarded
    def already_sent(self, window: str) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT address FROM sent WHERE window = ?", (window,))}

    # -- suppression ---------------------------------------------------------------------------

    @_guarded
    def suppress(self, address: str, reason: str, at: datetime) -> None:
        """Never mail `address` again (reason: unsubscribed or bounced)."""
        with self.writing():
            self.db.execute(
                "INSERT INTO suppressed (address, reason, since) VALUES (?, ?, ?) "
                "ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, since = excluded.since",
                (normalise_address(address), reason, at.isoformat()),
            )

    @_guarded
    def suppression(self, address: str) -> str | None:
        """Why `address` is suppressed, or None."""
        row = self.db.execute(
            "SELECT reason FROM suppressed WHERE address = ?", (normalise_address(address),)
        ).fetchone()
        return None if row is None else str(row[0])

    @_guarded
    def suppressed(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT address, reason FROM suppressed"))

    @_guarded
    def reported(self, address: str) -> bool:
        """Whether delivery reports or complaints are about `address` (not only failed sends)."""
        row = self.db.execute(
            "SELECT 1 FROM reports WHERE address = ?"
            " AND kind IN ('permanent', 'transient', 'complaint') LIMIT 1",
            (normalise_address(address),),
        ).fetchone()
        return row is not None

    @_guarded
    def record_failure(self, address: str, run: str, code: int, message: str, at: datetime) -> bool:
        """Record a permanent failure; True when it is the third run to fail and the address is
        now suppressed."""
        key = normalise_address(address)
        with self.writing():
            self.db.execute(
                "INSERT OR IGNORE INTO failures (address, run, code, message, at) VALUES (?, ?, ?, ?, ?)",
                (key, run, code, message, at.isoformat()),
            )
            runs = self.db.execute("SELECT COUNT(*) FROM failures WHERE address = ?", (key,)).fetchone()[0]
            if runs < BOUNCES_TO_SUPPRESS or self.suppression(key) is not None:
                return False
            self.db.execute(
                "INSERT INTO suppressed (address, reason, since) VALUES (?, 'bounced', ?)",
                (key, at.isoformat()),
            )
            return True

    @_guarded
    def failures(self, address: str) -> int:
        """How many runs failed permanently for `address`."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM failures WHERE address = ?", (normalise_address(address),)
        ).fetchone()
        return int(row[0])

    # -- runs ----------------------------------------------------------------------------------

    def record_run(self, run: str, window: str, started: datetime, finished: datetime, summary: Any) -> None:
        """What one send did, for `bulletin status` (`summary` is the run's SendSummary)."""
        with self.writing():
            self.db.execute(
                "INSERT OR REPLACE INTO runs (run, window, started, finished, sent, already_sent, suppressed,"
                " no_items, failed, aborted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run,
                    window,
                    started.isoformat(),
                    finished.isoformat(),
                    summary.sent,
                    summary.already_sent,
                    summary.suppressed,
                    summary.no_items,
                    summary.failed,
                    summary.reason if summary.aborted else "",
                ),
            )

    # -- frozen editions -----------------------------------------------------------------------

    @_guarded
    def freeze(self, window: str, start: datetime, item_ids: list[str]) -> bool:
        """Store a window's item list once; False (and nothing changed) when it already is."""
        with self.writing():
            if self.db.execute("SELECT 1 FROM editions WHERE window = ?", (window,)).fetchone():
                return False
            self.db.execute(
                "INSERT INTO editions (window, start, frozen_at) VALUES (?, ?, datetime('now'))",
                (window, start.astimezone(UTC).isoformat()),
            )
            self.db.executemany(
                "INSERT INTO edition_items (window, position, item_id) VALUES (?, ?, ?)",
                [(window, position, item_id) for position, item_id in enumerate(item_ids)],
            )
            return True

    @_guarded
    def frozen(self, window: str) -> list[str] | None:
        """The window's frozen item ids in order, or None when it was never frozen."""
        if not self.db.execute("SELECT 1 FROM editions WHERE window = ?", (window,)).fetchone():
            return None
        rows = self.db.execute(
            "SELECT item_id FROM edition_items WHERE window = ? ORDER BY position", (window,)
        )
        return [row[0] for row in rows]

    @_guarded
    def frozen_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT DISTINCT item_id FROM edition_items")}

    @_guarded
    def first_frozen_start(self) -> datetime | None:
        row = self.db.execute("SELECT MIN(start) FROM editions").fetchone()
        return None if row[0] is None else datetime.fromisoformat(row[0])

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()
        self._closer()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock)
            self._lock = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
