"""The ledger — WAL, write-once editions, suppression, the run lock."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bulletin.errors import LedgerError, RefusedError
from bulletin.ledger import SCHEMA_VERSION, Ledger

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_a_missing_ledger_is_created_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / ".bulletin" / "ledger.sqlite"
    with pytest.raises(RefusedError) as caught:
        Ledger.open(path)
    assert str(caught.value) == (
        f"no ledger at {path}: without it bulletin cannot know who was mailed already. "
        "Restore it from a backup, or pass --new-ledger to start a new list"
    )
    with Ledger.open(path, create=True) as ledger:
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path, create=True) as ledger:
        ledger.record_sent("2026-W47", "Ann@Example.ORG", "<1@x>", AT)
        ledger.suppress("bob@example.org", "unsubscribed", AT)
    with Ledger.open(path) as ledger:
        assert ledger.already_sent("2026-W47") == {"ann@example.org"}
        assert ledger.already_sent("2026-W48") == set()
        assert ledger.suppression("bob@EXAMPLE.org") == "unsubscribed"
        assert ledger.suppression("ann@example.org") is None


def test_three_failing_runs_suppress(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite", create=True) as ledger:
        assert ledger.record_failure("a@x.org", "run1", 550, "no", AT) is False
        assert ledger.record_failure("a@x.org", "run1", 550, "no", AT) is False  # same run: once
        assert ledger.record_failure("a@x.org", "run2", 550, "no", AT) is False
        assert ledger.failures("a@x.org") == 2
        assert ledger.record_failure("a@x.org", "run3", 551, "no", AT) is True
        assert ledger.suppression("a@x.org") == "bounced"
        assert ledger.record_failure("a@x.org", "run4", 550, "no", AT) is False


def test_an_edition_is_frozen_once(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite", create=True) as ledger:
        assert ledger.frozen("2026-W47") is None
        assert ledger.first_frozen_start() is None
        assert ledger.freeze("2026-W47", datetime(2026, 11, 16, tzinfo=UTC), ["b", "a"]) is True
        assert ledger.freeze("2026-W47", datetime(2026, 11, 16, tzinfo=UTC), ["c"]) is False
        ledger.freeze("2026-W48", datetime(2026, 11, 23, tzinfo=UTC), ["c"])
        assert ledger.frozen("2026-W47") == ["b", "a"]
        assert ledger.frozen_ids() == {"a", "b", "c"}
        assert ledger.first_frozen_start() == datetime(2026, 11, 16, tzinfo=UTC)


def test_the_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    lock = tmp_path / "send.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from bulletin.ledger import Ledger;"
         "l = Ledger.open(Path(sys.argv[1]), create=True); l.lock(Path(sys.argv[2]));"
         "print('locked', flush=True); time.sleep(30)", str(tmp_path / "l.sqlite"), str(lock)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with Ledger.open(tmp_path / "l.sqlite") as ledger, pytest.raises(RefusedError) as caught:
            ledger.lock(lock)
        assert (
            str(caught.value)
            == f"another bulletin send holds the lock ({lock}); let it finish, then run again"
        )
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        ledger.lock(lock)  # free again once the holder is gone


def _filled(path: Path, rows: int = 3000) -> None:
    """A real ledger of several pages: enough rows that cutting the file loses some."""
    with Ledger.open(path, create=True) as ledger:
        ledger.db.executemany(
            "INSERT INTO sent (window, address, message_id, sent_at) VALUES (?, ?, ?, ?)",
            [("2026-W47", f"s{n:05d}@example.org", f"<{n}@x>", AT.isoformat()) for n in range(rows)],
        )
        ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_an_empty_ledger_file_is_no_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"")  # `: > .bulletin/ledger.sqlite`: SQLite would take it for a new database
    with pytest.raises(RefusedError) as caught:
        Ledger.open(path)
    assert str(caught.value) == (
        f"{path}: error: empty, or not a bulletin ledger: without it bulletin cannot know who was "
        "mailed already; restore it from a backup or pass --new-ledger to start a new list"
    )
    assert path.read_bytes() == b""  # refusing changed nothing
    assert Ledger.existing(path) is None  # what build and digest see: no ledger yet
    with Ledger.open(path, create=True) as ledger:
        ledger.suppress("a@x.org", "unsubscribed", AT)
    with Ledger.open(path) as ledger:
        assert ledger.suppression("a@x.org") == "unsubscribed"


def test_an_sqlite_file_without_the_schema_is_no_ledger(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "ledger.sqlite"
    sqlite3.connect(path).close()
    with pytest.raises(RefusedError, match="restore it from a backup or pass --new-ledger"):
        Ledger.open(path)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(RefusedError) as caught:
        Ledger.open(other, create=True)
    assert str(caught.value) == (
        f"{other}: error: holds tables that are not bulletin's (notes), so it is not a bulletin "
        "ledger; check the path, or move the file away and pass --new-ledger to start a new list"
    )


def test_a_ledger_of_garbage_is_damaged(tmp_path: Path) -> None:
    import random

    path = tmp_path / "ledger.sqlite"
    path.write_bytes(random.Random(47).randbytes(8192))
    with pytest.raises(LedgerError) as caught:
        Ledger.open(path)
    assert str(caught.value) == (
        f"{path}: error: the ledger is damaged (file is not a database); restore it from a backup"
    )
    with pytest.raises(LedgerError):
        Ledger.existing(path)
    with pytest.raises(LedgerError):
        Ledger.open(path, create=True)  # never taken for a new ledger either


def test_a_truncated_ledger_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _filled(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    # Checked before a send mails anyone; elsewhere the first query that meets it says so.
    with pytest.raises(LedgerError, match=r"error: the ledger is damaged \(.*\); restore it from a backup$"):
        Ledger.open(path, verify=True)

    def read() -> None:
        with Ledger.open(path) as ledger:
            ledger.already_sent("2026-W47")

    with pytest.raises(LedgerError, match=f"^{path}: error: the ledger is damaged"):
        read()


# The schema of bulletin's first ledgers (user_version 1): addresses were stored with the
# local part as written.
SCHEMA_V1 = """
CREATE TABLE sent (window TEXT NOT NULL, address TEXT NOT NULL, message_id TEXT NOT NULL,
    sent_at TEXT NOT NULL, PRIMARY KEY (window, address));
CREATE TABLE suppressed (address TEXT PRIMARY KEY, reason TEXT NOT NULL, since TEXT NOT NULL);
CREATE TABLE failures (address TEXT NOT NULL, run TEXT NOT NULL, code INTEGER NOT NULL,
    message TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (address, run));
CREATE TABLE editions (window TEXT PRIMARY KEY, start TEXT NOT NULL, frozen_at TEXT NOT NULL);
CREATE TABLE edition_items (window TEXT NOT NULL, position INTEGER NOT NULL, item_id TEXT NOT NULL,
    PRIMARY KEY (window, position));
CREATE INDEX edition_items_by_id ON edition_items (item_id);
PRAGMA user_version = 1;
"""


def test_a_version_1_ledger_folds_its_addresses(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "ledger.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_V1)
        db.executemany(
            "INSERT INTO sent VALUES (?, ?, ?, ?)",
            [("2026-W47", "Bob@example.org", "<1@x>", "2026-11-23T07:00:00+00:00"),
             ("2026-W47", "bob@example.org", "<2@x>", "2026-11-23T07:05:00+00:00"),
             ("2026-W46", "Bob@example.org", "<0@x>", "2026-11-16T07:00:00+00:00"),
             ("2026-W47", "Jörg@example.org", "<3@x>", "2026-11-23T07:00:00+00:00")],
        )  # fmt: skip
        db.executemany(
            "INSERT INTO suppressed VALUES (?, ?, ?)",
            [("Ann@example.org", "bounced", "2026-11-01T00:00:00+00:00"),
             ("ann@example.org", "unsubscribed", "2026-11-20T00:00:00+00:00"),
             ("CY@example.org", "bounced", "2026-11-02T00:00:00+00:00")],
        )  # fmt: skip
        db.executemany(
            "INSERT INTO failures VALUES (?, ?, ?, ?, ?)",
            [("Dee@example.org", "run1", 550, "no", "2026-11-01T00:00:00+00:00"),
             ("dee@example.org", "run1", 551, "no", "2026-11-01T00:00:01+00:00"),
             ("DEE@example.org", "run2", 550, "no", "2026-11-08T00:00:00+00:00")],
        )  # fmt: skip
        db.execute("INSERT INTO editions VALUES ('2026-W47', '2026-11-16T00:00:00+00:00', 'x')")
        db.execute("INSERT INTO edition_items VALUES ('2026-W47', 0, 'a')")
        db.commit()
    with Ledger.open(path) as ledger:
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert ledger.already_sent("2026-W47") == {"bob@example.org", "jörg@example.org"}
        assert ledger.already_sent("2026-W46") == {"bob@example.org"}
        # the first message sent to the address is the one kept
        assert ledger.db.execute(
            "SELECT message_id FROM sent WHERE window = '2026-W47' AND address = 'bob@example.org'"
        ).fetchone() == ("<1@x>",)
        # a suppression is never lost; an unsubscribe wins over a bounce
        assert ledger.suppressed() == {"ann@example.org": "unsubscribed", "cy@example.org": "bounced"}
        assert ledger.suppression("Cy@Example.org") == "bounced"
        assert ledger.failures("dee@example.org") == 2  # two runs, each counted once
        assert ledger.frozen("2026-W47") == ["a"]
        assert ledger.record_failure("Dee@Example.org", "run3", 550, "no", AT) is True
    with Ledger.open(path) as ledger:  # opening again changes nothing
        assert ledger.suppressed() == {
            "ann@example.org": "unsubscribed",
            "cy@example.org": "bounced",
            "dee@example.org": "bounced",
        }


def test_a_writer_waits_for_the_lock_only_so_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It waited for another writer's file lock without end: a web worker's threads all
    stuck behind one, and SQLite's own busy timeout never began."""
    import fcntl
    import os
    import sqlite3
    import time

    from bulletin import ledger as module

    monkeypatch.setattr(module, "BUSY_TIMEOUT", 0.3)
    path = tmp_path / "l.sqlite"
    with Ledger.open(path, create=True) as ledger:
        held = os.open(f"{path}.lock", os.O_RDWR)
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"), ledger.writing():
            pass
        assert 0.3 <= time.monotonic() - started < 2
        fcntl.flock(held, fcntl.LOCK_UN)
        os.close(held)
        with ledger.writing():  # free again: taken at once
            ledger.db.execute("SELECT 1")


def test_a_ledger_dropped_without_close_closes_its_lock_file(tmp_path: Path) -> None:
    """A web worker's thread ends without closing its ledger: each one leaked a descriptor."""
    import gc
    import os

    path = tmp_path / "l.sqlite"
    Ledger.open(path, create=True).close()
    ledger = Ledger.open(path)
    descriptor = ledger._writer
    del ledger
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(descriptor)
