"""SPEC §6: the ledger — WAL, write-once editions, suppression, the run lock."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bulletin.errors import RefusedError
from bulletin.ledger import Ledger

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_a_missing_ledger_is_created_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / ".bulletin" / "ledger.sqlite"
    with pytest.raises(RefusedError) as caught:
        Ledger.open(path)
    assert str(caught.value) == (
        f"no ledger at {path}: without it bulletin cannot know who was mailed already. "
        "Restore it from a backup, or pass --new-ledger for a first send"
    )
    with Ledger.open(path, create=True) as ledger:
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path, create=True) as ledger:
        ledger.record_sent("2026-W47", "Ann@Example.ORG", "<1@x>", AT)
        ledger.suppress("bob@example.org", "unsubscribed", AT)
    with Ledger.open(path) as ledger:
        assert ledger.already_sent("2026-W47") == {"Ann@example.org"}
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
