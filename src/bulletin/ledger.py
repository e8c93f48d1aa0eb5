"""The ledger, .bulletin/ledger.sqlite: what was sent to whom, suppressions, frozen editions.

Precious state (back it up): SQLite in WAL mode, one short transaction per record, so a
killed run loses nothing the server accepted before it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .addresses import normalise_address
from .errors import RefusedError

SCHEMA_VERSION = 2
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

_SUBSCRIBERS = """
-- Version 2: subscribers, their status history and consent, the web side's guards, delivery
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

# Each version's script, applied in order to bring an older ledger up to date.
_MIGRATIONS = {1: _SCHEMA, 2: _SUBSCRIBERS}


class Ledger:
    """The send ledger; open it with Ledger.open()."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.db = connection
        self._lock: int | None = None
        self._writer = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """One write transaction, committed on success and rolled back on error.

        Writers (sends, web workers, commands) take turns through a file lock, which wakes the
        next one at once; SQLite's own busy handler would sleep for milliseconds instead.
        """
        fcntl.flock(self._writer, fcntl.LOCK_EX)
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

    @classmethod
    def open(cls, path: Path, create: bool = False) -> Ledger:
        """Open the ledger; create it only when asked, so a lost ledger cannot re-mail everyone."""
        if not path.exists() and not create:
            raise RefusedError(
                f"no ledger at {path}: without it bulletin cannot know who was mailed already. "
                "Restore it from a backup, or pass --new-ledger for a first send"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise RefusedError(f"{path} was written by a newer bulletin (schema {version}); upgrade bulletin")
        db.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL: a commit survives the process being killed; only an
        # operating-system crash can lose the last few records.
        db.execute("PRAGMA synchronous=NORMAL")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            # executescript commits first; the script and the new version then go together.
            db.executescript(f"BEGIN IMMEDIATE; {_MIGRATIONS[number]}; PRAGMA user_version={number}; COMMIT;")
        return cls(path, db)

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

    def record_sent(self, window: str, address: str, message_id: str, at: datetime) -> None:
        """Record one accepted message; committed before this returns."""
        with self.writing():
            self.db.execute(
                "INSERT OR REPLACE INTO sent (window, address, message_id, sent_at) VALUES (?, ?, ?, ?)",
                (window, normalise_address(address), message_id, at.isoformat()),
            )

    def already_sent(self, window: str) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT address FROM sent WHERE window = ?", (window,))}

    # -- suppression ---------------------------------------------------------------------------

    def suppress(self, address: str, reason: str, at: datetime) -> None:
        """Never mail `address` again (reason: unsubscribed or bounced)."""
        with self.writing():
            self.db.execute(
                "INSERT INTO suppressed (address, reason, since) VALUES (?, ?, ?) "
                "ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, since = excluded.since",
                (normalise_address(address), reason, at.isoformat()),
            )

    def suppression(self, address: str) -> str | None:
        """Why `address` is suppressed, or None."""
        row = self.db.execute(
            "SELECT reason FROM suppressed WHERE address = ?", (normalise_address(address),)
        ).fetchone()
        return None if row is None else str(row[0])

    def suppressed(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT address, reason FROM suppressed"))

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

    def frozen(self, window: str) -> list[str] | None:
        """The window's frozen item ids in order, or None when it was never frozen."""
        if not self.db.execute("SELECT 1 FROM editions WHERE window = ?", (window,)).fetchone():
            return None
        rows = self.db.execute(
            "SELECT item_id FROM edition_items WHERE window = ? ORDER BY position", (window,)
        )
        return [row[0] for row in rows]

    def frozen_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT DISTINCT item_id FROM edition_items")}

    def first_frozen_start(self) -> datetime | None:
        row = self.db.execute("SELECT MIN(start) FROM editions").fetchone()
        return None if row[0] is None else datetime.fromisoformat(row[0])

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()
        with contextlib.suppress(OSError):
            os.close(self._writer)
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
