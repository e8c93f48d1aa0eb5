"""SPEC §8: the command line — exit codes, stdout for results, stderr for problems."""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bulletin import __version__
from bulletin.cli import main
from bulletin.ledger import Ledger

from .conftest import SiteMaker
from .smtp import SmtpServer

NOW = ["--now", "2026-11-25T12:00"]


def run(site: SiteMaker, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--site", str(site.root), *NOW], catch_exceptions=False)


def good_site(site: SiteMaker) -> None:
    site.item("a.md", id="a", title="Alpha", date="2026-11-20", categories=["Gartner: Healthcare"])
    site.item(
        "b.md",
        id="b",
        title="Beta",
        date="2026-11-21",
        categories=["Medigy: Café Talks", "gartner: healthcare"],
    )


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"bulletin, version {__version__}\n")


def test_every_command_has_help() -> None:
    for command in ("build", "check", "feeds", "topics"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0
        for option in ("--site", "--now", "--verbose", "--quiet"):
            assert option in result.stdout


def test_build_on_a_clean_site(site: SiteMaker) -> None:
    good_site(site)
    result = run(site, "build")
    assert result.exit_code == 0
    assert result.stdout == (
        "2 items in 2 topics from 2 files\nfeeds: 13 written, 0 unchanged\n"
        "digests: skipped; set digest.from and digest.address in bulletin.toml\n"
    )
    assert result.stderr == ""
    assert (site.root / "feeds/topic/medigy-cafe-talks/atom.xml").exists()
    again = run(site, "build")
    assert "feeds: 0 written, 13 unchanged\n" in again.stdout


def test_a_bad_item_is_skipped_and_exits_1(site: SiteMaker) -> None:
    good_site(site)
    site.raw("news/bad.md", "---\ntitle: Broken\ndate: '2022-13-45'\n---\nBody\n")
    result = run(site, "feeds")
    assert result.exit_code == 1
    assert result.stderr == (
        "content/news/bad.md:3: error: date '2022-13-45' is not a date; write YYYY-MM-DD or an ISO 8601 date-time\n"
    )
    assert (site.root / "feeds/rss.xml").exists()


def test_strict_refuses_on_a_warning_and_writes_nothing(site: SiteMaker) -> None:
    good_site(site)
    site.raw("dup.md", "---\nid: a\ntitle: Dup\ndate: '2026-11-01'\nhref: https://src.example/dup\n---\nx\n")
    result = run(site, "build", "--strict")
    assert result.exit_code == 3
    assert result.stderr == (
        "content/dup.md: warning: id 'a' is also used by content/a.md, which is newer and wins; "
        "give this item its own id or delete it\n"
        "bulletin: --strict: 1 problem(s) found; nothing was written\n"
    )
    assert not (site.root / "feeds").exists()
    assert run(site, "build").exit_code == 0  # a warning alone does not fail a normal build


def test_check_writes_no_output(site: SiteMaker) -> None:
    good_site(site)
    site.item("draft.md", draft=True)
    site.item("later.md", date="2026-12-01")
    result = run(site, "check")
    assert result.exit_code == 0
    assert result.stdout == (
        "2 items in 2 topics from 4 files (1 draft(s), 1 scheduled held back); 0 error(s), 0 warning(s)\n"
    )
    assert not (site.root / "feeds").exists()
    assert not (site.root / "emails").exists()


def test_verbose_lists_held_back_items_and_quiet_prints_only_errors(site: SiteMaker) -> None:
    good_site(site)
    site.item("later.md", date="2026-12-01")
    site.item("clamped.md", date="2026-11-10", lastMod="2026-11-01")
    site.raw("dup.md", "---\nid: a\ntitle: Dup\ndate: '2026-11-01'\nhref: https://src.example/dup\n---\nx\n")
    verbose = run(site, "check", "-v")
    assert "note: content/later.md: scheduled for 2026-12-01T00:00:00+00:00, held back\n" in verbose.stderr
    assert "note: 1 item(s) had lastMod before date; updated was set to the date\n" in verbose.stderr
    quiet = run(site, "feeds", "-q")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_configuration_errors_exit_2_and_build_nothing(site: SiteMaker) -> None:
    good_site(site)
    (site.root / "bulletin.toml").write_text('title = "x"\nfeed_items = "many"\n')
    result = run(site, "build")
    assert result.exit_code == 2
    assert result.stderr == (
        'bulletin.toml: error: base_url: required; write base_url = "https://news.example.org/"\n'
        "bulletin.toml:2: error: feed_items: 'many' is not a whole number; write a whole number from 1 to 10000\n"
    )
    assert not (site.root / "feeds").exists()


def test_a_bad_now_is_a_usage_error(site: SiteMaker) -> None:
    result = CliRunner().invoke(main, ["check", "--site", str(site.root), "--now", "soon"])
    assert result.exit_code == 2
    assert "'soon' is not a date; write YYYY-MM-DD or an ISO 8601 date-time" in result.stderr


def test_global_options_also_go_before_the_command(site: SiteMaker) -> None:
    good_site(site)
    result = CliRunner().invoke(main, ["--site", str(site.root), *NOW, "-q", "feeds"])
    assert (result.exit_code, result.stdout) == (0, "")
    assert (site.root / "feeds/atom.xml").exists()


def test_topics_table(site: SiteMaker) -> None:
    good_site(site)
    result = run(site, "topics")
    assert result.exit_code == 0
    assert result.stdout == (
        "TOPIC                SLUG                ITEMS  NEWEST      FEED\n"
        "Gartner: Healthcare  gartner-healthcare      2  2026-11-21  https://news.example.org/feeds/topic/gartner-healthcare/rss.xml\n"
        "Medigy: Café Talks   medigy-cafe-talks       1  2026-11-21  https://news.example.org/feeds/topic/medigy-cafe-talks/rss.xml\n"
    )


def test_weeks_beyond_the_calendar_are_a_usage_error(site: SiteMaker) -> None:
    good_site(site)
    site.write_config(
        timezone="Europe/Berlin", digest={"from": "News <news@example.org>", "address": "1 Road"}
    )
    for week in ("9999-W52", "0001-W01"):
        result = run(site, "digest", "--week", week)
        assert (result.exit_code, result.stderr) == (
            2,
            f"bulletin: --week '{week}' is out of range; weeks run from 0002-W02 to 9999-W51\n",
        )
    result = run(site, "digest", "--since", "0001-01-01", "--until", "0001-01-02")
    assert (result.exit_code, result.stderr) == (
        2,
        "bulletin: --since 0001-01-01 is out of range; write dates from 0002-01-07 to 9999-12-27\n",
    )
    result = CliRunner().invoke(main, ["digest", "--site", str(site.root), "--now", "0001-01-09"])
    assert (result.exit_code, result.stderr) == (
        2,
        "bulletin: no complete week before 0001-01-09 is in range; weeks run from 0002-W02 to 9999-W51\n",
    )
    result = CliRunner().invoke(main, ["check", "--site", str(site.root), "--now", "0001-01-01"])
    assert result.exit_code == 2
    assert "Error: Invalid value for --now: '0001-01-01' is not a date" in result.stderr
    result = run(site, "digest", "--week", "0002-W02")
    assert (result.exit_code, result.stdout) == (
        0,
        "digest 0002-W02: no items in this window; nothing written\n",
    )


def stray_temporaries(site: SiteMaker) -> list[str]:
    return sorted(p.name for p in site.root.rglob("*.tmp"))


def test_a_full_disk_stops_the_run_naming_the_file(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    good_site(site)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # only published files are flushed to disk
    result = run(site, "feeds")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "feeds/rss.xml: error: cannot write it: No space left on device; "
        "free some space, then run the same command again\n"
    )
    assert stray_temporaries(site) == []
    monkeypatch.undo()
    assert run(site, "feeds").exit_code == 0


def test_a_file_in_place_of_an_output_folder_stops_the_run(site: SiteMaker) -> None:
    good_site(site)
    (site.root / "feeds").write_text("not a folder")
    result = run(site, "build")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "feeds/rss.xml: error: cannot write it: feeds is not a folder; "
        "move it out of the way, then run the same command again\n"
    )


def test_a_read_only_emails_folder_stops_the_run(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    good_site(site)
    site.write_config(digest={"from": "News <news@example.org>", "address": "1 Road"})
    emails = site.root / "emails"
    mkstemp = tempfile.mkstemp

    def read_only(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if Path(kwargs["dir"]).is_relative_to(emails):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(kwargs["dir"]))
        return mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = run(site, "digest", "--week", "2026-W47")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        "emails/2026-W47/digest.html: error: cannot write it: Permission denied; make emails/2026-W47/ "
        "writable for the user running bulletin, then run the same command again\n"
    )


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write to read-only folders"
)
def test_a_read_only_feeds_folder_stops_the_run(site: SiteMaker) -> None:
    good_site(site)
    assert run(site, "feeds").exit_code == 0
    site.item("c.md", id="c", title="Gamma", date="2026-11-22")
    (site.root / "feeds").chmod(0o555)
    try:
        result = run(site, "feeds")
    finally:
        (site.root / "feeds").chmod(0o755)
    assert result.exit_code == 3
    assert result.stderr == (
        "feeds/rss.xml: error: cannot write it: Permission denied; make feeds/ "
        "writable for the user running bulletin, then run the same command again\n"
    )


def test_any_other_file_system_error_names_the_file(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    good_site(site)
    assert run(site, "feeds").exit_code == 0
    site.raw(
        "b.md", "---\nid: b\ntitle: Beta\ndate: '2026-11-21'\nhref: https://src.example/b\n---\nx\n"
    )  # its topics go away
    unlink = Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if "topic" in path.parts:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    monkeypatch.chdir(site.root)  # and --site is relative
    result = CliRunner().invoke(main, ["feeds", *NOW], catch_exceptions=False)
    assert result.exit_code == 3
    assert result.stderr == (
        "feeds/topic/medigy-cafe-talks/atom.xml: error: Permission denied; check it, then run the same command again\n"
    )


def test_an_interrupt_anywhere_in_a_command_exits_130(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_site(site)

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("bulletin.cli.build_site", interrupted)
    result = run(site, "build")
    assert (result.exit_code, result.stdout, result.stderr) == (130, "", "bulletin: interrupted\n")


def many_items(site: SiteMaker, count: int) -> None:
    for n in range(count):
        site.raw(f"news/{n:04d}.md", f"---\nid: i{n}\ntitle: Item {n}\ndate: 2026-11-{1 + n % 20:02d}\n"
                 f"categories: [Topic {n % 40}]\nhref: https://src.example/{n}\n---\n<p>Body {n}.</p>\n")  # fmt: skip


def build_in_a_process(site: SiteMaker, interrupt_after: float | None = None) -> tuple[int, str, float]:
    """`bulletin build` in its own process group, as a terminal runs it; Ctrl-C after a delay
    goes to the whole group (the parsing workers too), as a terminal sends it."""
    command = [sys.executable, "-m", "bulletin", "build", "--site", str(site.root), *NOW]
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    if interrupt_after is not None:
        try:
            process.wait(interrupt_after)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr.decode(), time.monotonic() - started


def test_ctrl_c_exits_130_with_one_line(site: SiteMaker) -> None:
    many_items(site, 3000)
    code, _, took = build_in_a_process(site)
    assert code == 0
    interrupted = 0
    for fraction in (0.3, 0.55, 0.8):
        for folder in ("feeds", "emails", ".bulletin"):
            shutil.rmtree(site.root / folder, ignore_errors=True)
        code, stderr, _ = build_in_a_process(site, interrupt_after=max(0.5, took * fraction))
        if code == 0:  # finished before the signal came
            continue
        assert (code, stderr) == (130, "bulletin: interrupted\n")
        interrupted += 1
    assert interrupted >= 2
    assert build_in_a_process(site)[0] == 0
    assert stray_temporaries(site) == []  # what an interrupt left mid-write is cleared


MAIL = {
    "from": "Health Weekly <digest@news.example.org>",
    "address": "100 Main Street, Springfield",
    "unsubscribe_url": "https://news.example.org/u?t={token}",
}


def mail_site(site: SiteMaker, port: int) -> Path:
    """A site that sends to 127.0.0.1:port, with items in 2026-W47; its subscribers file."""
    good_site(site)
    site.write_config(digest=dict(MAIL), smtp={"host": "127.0.0.1", "port": port})
    path = site.root / "subscribers.csv"
    path.write_text("email,name,topics\nann@example.org,,\nbob@example.org,,\n", encoding="utf-8")
    return path


def test_an_emptied_ledger_is_refused_like_a_missing_one(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", "test-secret-0123456789")
    with SmtpServer() as server:
        path = mail_site(site, server.port)
        assert run(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
        ledger = site.root / ".bulletin/ledger.sqlite"
        ledger.write_bytes(b"")  # `: > .bulletin/ledger.sqlite`
        for command in (["send"], ["unsubscribe", "ann@example.org"]):
            args = [*command, "--subscribers", str(path)] if command == ["send"] else command
            result = run(site, *args, "--week", "2026-W47") if command == ["send"] else run(site, *args)
            assert result.exit_code == 3, result.output
            assert result.stderr == (
                f"{ledger}: error: empty, or not a bulletin ledger: without it bulletin "
                "cannot know who was mailed already; restore it from a backup or pass --new-ledger "
                "for a first send\n"
            )
        assert len(server.handler.received) == 2  # the first send only: nobody mailed again
        assert ledger.read_bytes() == b""
        # build and digest take it for no ledger at all, and leave the file alone
        assert run(site, "build").exit_code == 0
        assert ledger.read_bytes() == b""


@pytest.mark.parametrize(
    "command",
    [
        ["build"],
        ["digest", "--week", "2026-W47"],
        ["send"],
        ["send", "--dry-run"],
        ["unsubscribe", "a@example.org"],
    ],
)
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_ledger_is_a_clear_error(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch, command: list[str], damage: str
) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", "test-secret-0123456789")
    with SmtpServer() as server:
        path = mail_site(site, server.port)
        ledger = site.root / ".bulletin/ledger.sqlite"
        if damage == "garbage":
            ledger.parent.mkdir(parents=True)
            ledger.write_bytes(random.Random(47).randbytes(8192))
        else:  # a real ledger, cut in half (a copy that ran out of disk space)
            assert run(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
            with Ledger.open(ledger) as filled:
                filled.db.executemany(
                    "INSERT INTO sent (window, address, message_id, sent_at) VALUES ('2026-W46', ?, ?, '')",
                    [(f"s{n:05d}@example.org", f"<{n}@x>") for n in range(3000)],
                )
                filled.freeze("2026-W48", datetime(2026, 11, 23, tzinfo=UTC), [f"i{n}" for n in range(3000)])
                filled.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            data = ledger.read_bytes()
            ledger.write_bytes(data[: len(data) // 2])
        sent = len(server.handler.received)
        args = [*command, "--subscribers", str(path)] if command[0] == "send" else command
        result = CliRunner().invoke(main, [*args, "--site", str(site.root), *NOW])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code == 3, result.output
        assert re.fullmatch(
            rf"{re.escape(str(ledger))}: error: the ledger is damaged \([^\n]*\); "
            r"restore it from a backup\n",
            result.stderr,
        ), result.stderr
        assert len(server.handler.received) == sent
