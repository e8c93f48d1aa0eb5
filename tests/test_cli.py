"""The command line — exit codes, stdout for results, stderr for problems."""

from __future__ import annotations

import contextlib
import email
import email.policy
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bulletin import __version__
from bulletin.cli import main
from bulletin.ledger import Ledger
from bulletin.site import walk

from .conftest import SiteMaker
from .smtp import SmtpServer

NOW = ["--now", "2026-11-25T12:00"]
MAIL = {
    "from": "Health Weekly <digest@news.example.org>",
    "address": "100 Main Street, Springfield",
    "unsubscribe_mailto": "unsubscribe@news.example.org",
    "unsubscribe_url": "https://news.example.org/u?t={token}",
}
# Control characters that XML 1.0 forbids (tab, LF and CR are fine).
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def run(site: SiteMaker, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--site", str(site.root), *NOW], catch_exceptions=False)


def spawn(site: SiteMaker, *args: str) -> subprocess.Popen[str]:
    """bulletin as a real process, in a session of its own (so that its workers can be found)."""
    command = [sys.executable, "-m", "bulletin", *args, "--site", str(site.root), *NOW]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def run_within(site: SiteMaker, seconds: float, *args: str) -> subprocess.CompletedProcess[str]:
    """bulletin as a real process that must finish within `seconds`: a hang fails the test."""
    process = spawn(site, *args)
    try:
        out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.communicate()
        pytest.fail(f"bulletin {' '.join(args)} did not finish within {seconds} s")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def as_result(done: subprocess.CompletedProcess[str]) -> Result:
    """A finished process, shaped like CliRunner's result for the assertions below."""

    class Finished:
        exit_code, stdout, stderr = done.returncode, done.stdout, done.stderr
        output = done.stdout + done.stderr

    return Finished()  # type: ignore[return-value]


def _permissions_ignored() -> bool:
    """True when this process reads files whatever their permission bits say (root)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / "probe"
        probe.write_bytes(b"x")
        probe.chmod(0)
        try:
            probe.read_bytes()
        except PermissionError:
            return False
        return True


AS_ROOT = _permissions_ignored()


def mail_site(site: SiteMaker) -> None:
    """A site that also writes digests, with items in 2026-W47."""
    site.write_config(digest=dict(MAIL))
    for item_id, date, topics in [("a1", "2026-11-16", ["Alpha"]), ("b1", "2026-11-17", ["Beta"])]:
        site.item(f"{item_id}.md", id=item_id, title=f"Title {item_id}", date=date, categories=topics,
                  href=f"https://src.example/{item_id}")  # fmt: skip


def good_items(site: SiteMaker) -> None:
    """Two ordinary items that every build must publish whatever else is in content/."""
    site.item("good.md", id="good", title="Good item", date="2026-11-18", categories=["Alpha"],
              href="https://src.example/good")  # fmt: skip
    site.item("also.md", id="also", title="Also good", date="2026-11-19", categories=["Beta"],
              href="https://src.example/also")  # fmt: skip


def assert_rest_built(site: SiteMaker, result: Result, bad: str, code: int = 1) -> None:
    """One bad file: reported by name, the others still published."""
    assert result.exit_code == code, result.output
    assert bad in result.stderr, result.stderr
    titles = rss_titles(site)
    assert "Good item" in titles and "Also good" in titles
    for name in ("rss.xml", "atom.xml", "feed.json"):
        assert (site.root / "feeds/topic/alpha" / name).is_file()


def test_a_command_gives_the_process_its_sigterm_handler_back(site: SiteMaker) -> None:
    """A script or a test that runs commands in its own process keeps its SIGTERM as it was."""
    good_items(site)
    before = signal.getsignal(signal.SIGTERM)
    assert run(site, "build").exit_code == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_file_names_never_drive_the_terminal(site: SiteMaker) -> None:
    """A file named with ESC ] 0; … BEL set the terminal's title through a problem line, and
    one with a line break split its problem across two lines."""
    good_items(site)
    (site.root / "content" / "esc\x1b]0;pwned\x07.md").write_text("", encoding="utf-8")
    (site.root / "content" / "evil\nname.md").write_text("", encoding="utf-8")
    site.raw("later\x1b]0;pwned\x07.md", "---\ntitle: Later\ndate: '2026-12-20'\n---\nx\n")
    result = run(site, "build", "-v")  # -v: notes too (the scheduled item's)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "content/esc\\x1b]0;pwned\\x07.md: error: is empty" in result.stderr
    assert "content/evil\\nname.md: error: is empty" in result.stderr
    assert "note: content/later\\x1b]0;pwned\\x07.md: scheduled for" in result.stderr
    assert all(
        line.startswith(("content/", "feeds:", "digests:", "bulletin:", "note:"))
        for line in result.stderr.splitlines()
    )


def rss_titles(site: SiteMaker, feed: str = "feeds/rss.xml") -> list[str]:
    return [item.findtext("title") or "" for item in ET.parse(site.root / feed).getroot().iter("item")]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def published_texts(site: SiteMaker) -> Iterator[tuple[str, str]]:
    """Every published file as a reader gets it: JSON strings decoded, .eml parts decoded,
    XML as its text and attribute values (the HTML inside a feed entry unescaped once)."""
    for folder in ("feeds", "emails"):
        for path in sorted((site.root / folder).rglob("*")):
            if not path.is_file():
                continue
            relpath, data = path.relative_to(site.root).as_posix(), path.read_bytes()
            if relpath.endswith(".json"):
                for text in _strings(json.loads(data)):
                    yield relpath, text
            elif relpath.endswith(".eml"):
                message = email.message_from_bytes(data, policy=email.policy.default)
                for part in message.walk():
                    if part.get_content_maintype() == "text":
                        yield relpath, part.get_content()  # type: ignore[attr-defined]
            elif relpath.endswith((".xml", ".opml")):
                yield relpath, data.decode()
                for element in ET.fromstring(data).iter():
                    yield from ((relpath, t) for t in (element.text, *element.attrib.values()) if t)
            else:
                yield relpath, data.decode()


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


@pytest.mark.parametrize("args", [["build"], ["subscribers"], ["subscribers", "list"], ["init", "x"]])
def test_version_also_goes_after_the_command(args: list[str], tmp_path: Path) -> None:
    # In a folder that is no site: the version is all that is asked for.
    result = CliRunner().invoke(main, [*args, "--version", "--site", str(tmp_path)])
    assert (result.exit_code, result.stdout) == (0, f"bulletin, version {__version__}\n")
    assert list(tmp_path.iterdir()) == []


def test_every_command_has_help() -> None:
    for command in ("build", "check", "feeds", "topics"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0
        for option in ("--site", "--now", "--verbose", "--quiet"):
            assert option in result.stdout


@pytest.mark.parametrize("group", [[], ["subscribers"]])
def test_every_description_in_a_command_list_is_whole(group: list[str]) -> None:
    # click cuts a description that does not fit an 80-column terminal with '...'.
    result = CliRunner().invoke(main, [*group, "--help"], terminal_width=80)
    listed = result.stdout.split("\nCommands:\n", 1)[1].splitlines()
    assert len(listed) > 5
    assert [line for line in listed if line.endswith("...")] == []


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
        "content/news/bad.md:3: error: date '2022-13-45' is not a date: there is no such day or time; write one on the calendar\n"
    )
    assert result.stdout.splitlines()[0].endswith(" files; 1 error, 0 warnings")  # the summary counts them
    assert (site.root / "feeds/rss.xml").exists()


def test_strict_refuses_on_a_warning_and_writes_nothing(site: SiteMaker) -> None:
    good_site(site)
    site.raw("dup.md", "---\nid: a\ntitle: Dup\ndate: '2026-11-01'\nhref: https://src.example/dup\n---\nx\n")
    result = run(site, "build", "--strict")
    assert result.exit_code == 3
    assert result.stderr == (
        "content/dup.md: warning: id 'a' is also used by content/a.md, which is newer and wins; "
        "give this item its own id or delete it\n"
        "bulletin: --strict: 1 problem found; nothing was written\n"
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
        "2 items in 2 topics from 4 files (1 draft, 1 scheduled item held back); 0 errors, 0 warnings\n"
    )
    assert not (site.root / "feeds").exists()
    assert not (site.root / "emails").exists()


def test_the_summary_counts_one_in_the_singular(site: SiteMaker) -> None:
    site.item("a.md", categories=["Alpha"])
    site.item("later.md", categories=["Alpha"], date="2026-12-01")
    assert run(site, "check").stdout == (
        "1 item in 1 topic from 2 files (1 scheduled item held back); 0 errors, 0 warnings\n"
    )
    site.item("later2.md", categories=["Alpha"], date="2026-12-02")
    site.item("draft.md", categories=["Alpha"], draft=True)
    assert run(site, "build").stdout.splitlines()[0] == (
        "1 item in 1 topic from 4 files (1 draft, 2 scheduled items held back)"
    )


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


def test_commands_that_read_items_in_passing_count_their_warnings_in_one_line(site: SiteMaker) -> None:
    """topics, status and the subscribers commands printed every item's warnings on every
    call; they say how many there are, and check lists them."""
    good_site(site)
    site.raw("nolink.md", "---\ntitle: No link\ndate: '2026-11-20'\ncategories: [Alpha]\n---\nBody.\n")
    site.raw("Story.MD", "---\ntitle: Upper\ndate: '2026-11-20'\n---\nBody.\n")
    topics = run(site, "topics")
    assert topics.exit_code == 0
    assert topics.stderr == "content/: 2 warnings about items; bulletin check lists them\n"
    assert "quiet" not in run(site, "topics", "-q").stderr and run(site, "topics", "-q").stderr == ""
    check = run(site, "check")
    assert "content/nolink.md: warning: has no source link" in check.stderr
    assert "content/Story.MD: warning: not read" in check.stderr
    site.raw("broken.md", "---\ntitle: [unclosed\n---\nBody.\n")  # an error is still given whole
    broken = run(site, "topics")
    assert "content/broken.md:2: error: " in broken.stderr
    assert broken.stderr.endswith("content/: 2 warnings about items; bulletin check lists them\n")


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
    result = CliRunner().invoke(main, ["digest", "--site", str(site.root), "--now", "0002-01-09"])
    assert (result.exit_code, result.stderr) == (
        2,
        "bulletin: no complete week before 0002-01-09 is in range; weeks run from 0002-W02 to 9999-W51\n",
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


def test_a_dangling_link_in_place_of_the_output_folder_is_named(site: SiteMaker, tmp_path: Path) -> None:
    good_site(site)
    (site.root / "feeds").symlink_to(tmp_path / "unmounted/feeds")
    result = run(site, "build")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"feeds/rss.xml: error: cannot write it: feeds is a link to {tmp_path / 'unmounted/feeds'}, "
        "which is not there; mount or fix it, then run the same command again\n"
    )


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

    monkeypatch.setattr("bulletin.build.build_site", interrupted)
    result = run(site, "build")
    assert (result.exit_code, result.stdout, result.stderr) == (130, "", "bulletin: interrupted\n")


def many_items(site: SiteMaker, count: int) -> None:
    for n in range(count):
        site.raw(f"news/{n:04d}.md", f"---\nid: i{n}\ntitle: Item {n}\ndate: 2026-11-{1 + n % 20:02d}\n"
                 f"categories: [Topic {n % 40}]\nhref: https://src.example/{n}\n---\n<p>Body {n}.</p>\n")  # fmt: skip


def build_in_a_process(
    site: SiteMaker,
    interrupt_when: Callable[[int], bool] | None = None,
    signum: int = signal.SIGINT,
    *,
    group: bool | str = True,
) -> tuple[int, str, float]:
    """`bulletin build` in its own process group, as a terminal runs it; Ctrl-C, once
    `interrupt_when(pid)` holds, goes to the whole group (the parsing workers too), as a
    terminal sends it. Or `signum` instead, to the group or (not `group`) to the build alone."""
    command = [sys.executable, "-m", "bulletin", "build", "--site", str(site.root), *NOW]
    started = time.monotonic()
    # A suite started in the background (`pytest &` in a script) ignores SIGINT, and the build
    # would inherit that; a handler, unlike SIG_IGN, does not outlive exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        if interrupt_when is not None:
            deadline = time.monotonic() + 60
            while process.poll() is None and not interrupt_when(process.pid) and time.monotonic() < deadline:
                time.sleep(0.002)
            if process.poll() is None:
                (os.killpg if group else os.kill)(process.pid, signum)
                if group == "twice":  # as a wrapper does: the process, then its group
                    time.sleep(0.001)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # a build that hangs is a failure, not left running
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return process.returncode, stderr.decode(), time.monotonic() - started


def has_children(pid: int) -> bool:
    """Whether a process has started others (the build: its parse or render workers)."""
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):  # gone meanwhile
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                return True
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the workers start")
def test_ctrl_c_exits_130_with_one_line(site: SiteMaker) -> None:
    many_items(site, 3000)
    # Ctrl-C at each stage of the build, once it is under way (not at fractions of a timing
    # taken earlier: the machine's load changes in between, and an early one lands in Python's
    # start-up, before bulletin can answer it).
    stages: list[Callable[[int], bool]] = [
        has_children,  # the parse workers are starting
        lambda _: (site.root / ".bulletin" / "cache").exists(),  # parsed, the feeds next
        lambda _: (site.root / "feeds").exists(),  # the render workers start, files are written
    ]
    interrupted = 0
    for stage in stages:
        for folder in ("feeds", "emails", ".bulletin"):
            shutil.rmtree(site.root / folder, ignore_errors=True)
        code, stderr, _ = build_in_a_process(site, interrupt_when=stage)
        if code == 0 and stderr == "":  # finished before the signal came
            continue
        assert (code, stderr) == (130, "bulletin: interrupted\n")
        interrupted += 1
    assert interrupted >= 2
    assert build_in_a_process(site)[0] == 0
    assert stray_temporaries(site) == []  # what an interrupt left mid-write is cleared


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the workers start")
@pytest.mark.parametrize("group", [True, False, "twice"], ids=["process group", "build alone", "twice"])
def test_sigterm_stops_a_build_with_one_line_and_as_killed(site: SiteMaker, group: bool | str) -> None:
    """`kill`, a time limit or a service manager: one line says so, the exit status is the
    signal's (a shell shows 143), and the next run finishes the work."""
    many_items(site, 3000)
    stages: list[Callable[[int], bool]] = [
        has_children,
        lambda _: (site.root / ".bulletin" / "cache").exists(),
        lambda _: (site.root / "feeds").exists(),
    ]
    stopped = 0
    for stage in stages:
        for folder in ("feeds", "emails", ".bulletin"):
            shutil.rmtree(site.root / folder, ignore_errors=True)
        code, stderr, _ = build_in_a_process(site, stage, signal.SIGTERM, group=group)  # type: ignore[arg-type]
        if code == 0 and stderr == "":
            continue
        assert (code, stderr) == (-signal.SIGTERM, "bulletin: stopped by SIGTERM\n")
        stopped += 1
    assert stopped >= 2
    assert build_in_a_process(site)[0] == 0
    assert stray_temporaries(site) == []


SEND_MAIL = {
    "from": "Health Weekly <digest@news.example.org>",
    "address": "100 Main Street, Springfield",
    "unsubscribe_url": "https://news.example.org/u?t={token}",
}


def sending_site(site: SiteMaker, port: int) -> Path:
    """A site that sends to 127.0.0.1:port, with items in 2026-W47; its subscribers file."""
    good_site(site)
    site.write_config(digest=dict(SEND_MAIL), smtp={"host": "127.0.0.1", "port": port})
    path = site.root / "subscribers.csv"
    path.write_text("email,name,topics\nann@example.org,,\nbob@example.org,,\n", encoding="utf-8")
    return path


def test_a_send_with_no_ledger_and_no_list_says_how_to_start_one(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --new-ledger alone would start an empty list: a send to nobody, which exits 0.
    monkeypatch.setenv("BULLETIN_SECRET", "test-secret-0123456789")
    start = (
        "'bulletin subscribers import FILE --new-ledger' or 'subscribers add ADDRESS --new-ledger' "
        "creates it with subscribers (or restore it from a backup), or pass --subscribers FILE"
    )
    with SmtpServer() as server:
        sending_site(site, server.port)
        sent = run(site, "send", "--week", "2026-W47")
        assert (sent.exit_code, sent.stderr) == (
            3,
            f"bulletin: no ledger at .bulletin/ledger.sqlite yet, so no subscribers to mail: {start}\n",
        )
        dry = run(site, "send", "--week", "2026-W47", "--dry-run")
        assert (dry.exit_code, dry.stderr) == (
            0,
            f"send: warning: no ledger and no --subscribers FILE: nobody to write to; {start}\n",
        )
        assert not (site.root / ".bulletin" / "ledger.sqlite").exists()
        assert server.handler.received == []


def test_an_emptied_ledger_is_refused_like_a_missing_one(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", "test-secret-0123456789")
    with SmtpServer() as server:
        path = sending_site(site, server.port)
        assert run(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
        ledger = site.root / ".bulletin/ledger.sqlite"
        ledger.write_bytes(b"")  # `: > .bulletin/ledger.sqlite`
        lost = (
            f"{ledger}: error: empty, or not a bulletin ledger: without it bulletin cannot know who "
            "was mailed already; restore it from a backup or pass --new-ledger to start a new list\n"
        )
        for command in (["send"], ["send", "--dry-run"], ["unsubscribe", "ann@example.org"]):
            sending = command[0] == "send"
            args = [*command, "--subscribers", str(path), "--week", "2026-W47"] if sending else command
            result = run(site, *args)
            assert (result.exit_code, result.stderr) == (3, lost), result.output
        assert len(server.handler.received) == 2  # the first send only: nobody mailed again
        assert ledger.read_bytes() == b""
        assert not (site.root / ".bulletin" / "outbox").exists()  # the dry run, refused as the send is
        dry = run(site, "send", "--dry-run", "--week", "2026-W47")  # the ledger's list, not a file's
        assert (dry.exit_code, dry.stderr) == (3, lost)
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
        path = sending_site(site, server.port)
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


# -- hostile content: reported, never a crash ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("ctl.md", "Hello \x0b vertical &#11; \x1b escape &#x1b;[31m, in Markdown."),
        ("ctl.html", "<p>Hello \x0b vertical &#11; \x1b escape &#x1b;[31m, in HTML.</p>"),
    ],
    ids=["markdown", "html"],
)
def test_control_characters_in_a_body_never_reach_the_output(site: SiteMaker, name: str, body: str) -> None:
    mail_site(site)
    site.item(name, body, id="ctl", title="Controls", date="2026-11-18", categories=["Alpha"])
    check = run(site, "check")
    assert (check.exit_code, check.stderr) == (
        0,
        f"content/{name}:9: warning: control character U+000B, U+001B removed from the body; "
        "delete it from the file\n",
    )
    result = run(site, "build")
    assert result.exit_code == 0, result.output
    assert "Controls" in rss_titles(site)
    assert "Controls" in rss_titles(site, "feeds/topic/alpha/rss.xml")
    assert (site.root / "emails/2026-W47/digest.html").is_file()
    for relpath, text in published_texts(site):
        assert not CONTROL.search(text), f"{relpath} holds a control character"


def test_an_odd_length_utf16_file_is_skipped(site: SiteMaker) -> None:
    good_items(site)
    site.raw("u16.md", b"\xff\xfe" + "---\ntitle: X\n".encode("utf-16-le") + b"x")
    result = run(site, "build")
    assert_rest_built(site, result, "content/u16.md:3: error: is not UTF-16")


def test_a_300_character_category_gets_a_short_slug(site: SiteMaker) -> None:
    good_items(site)
    name = "Category " + "x" * 291
    site.item("long.md", id="long", title="Long topic", date="2026-11-18", categories=[name])
    result = run(site, "build")
    assert result.exit_code == 0, result.output
    assert "content/long.md: warning: topic 'Category xxxx" in result.stderr
    assert "Long topic" in rss_titles(site)
    slugs = sorted(p.name for p in (site.root / "feeds/topic").iterdir())
    assert slugs == ["alpha", "beta", "category"]
    assert "Long topic" in rss_titles(site, "feeds/topic/category/rss.xml")


def test_a_date_before_the_first_instant_is_refused(site: SiteMaker) -> None:
    mail_site(site)  # digests group items by week: the date must survive that too
    good_items(site)
    site.item("old.md", id="old", title="Too old", date="0001-01-01T00:00:00+14:00")
    result = run(site, "build")
    assert_rest_built(
        site, result, "content/old.md:4: error: date '0001-01-01T00:00:00+14:00' is out of range"
    )
    assert (site.root / "emails/2026-W47/digest.html").is_file()


def test_a_symlink_loop_is_reported_and_each_item_read_once(site: SiteMaker) -> None:
    good_items(site)
    site.item("sub/inner.md", id="inner", title="Inner", date="2026-11-17")
    content = site.root / "content"
    (content / "self.md").symlink_to("self.md")  # a link to itself
    (content / "sub/back").symlink_to("..")  # a folder containing itself
    result = run(site, "build")
    assert_rest_built(
        site, result, "content/self.md: error: cannot be read: Too many levels of symbolic links"
    )
    assert "content/sub/back: warning: is a link to content/, which is already read" in result.stderr
    assert sorted(rss_titles(site)) == ["Also good", "Good item", "Inner"]


@pytest.mark.skipif(AS_ROOT, reason="root reads whatever the permission bits say")
def test_an_unreadable_file_is_skipped(site: SiteMaker) -> None:
    good_items(site)
    locked = site.item("locked.md", id="locked", title="Locked")
    locked.chmod(0)
    try:
        result = run(site, "build")
    finally:
        locked.chmod(0o644)
    assert_rest_built(site, result, "content/locked.md: error: cannot be read: Permission denied")


@pytest.mark.skipif(AS_ROOT, reason="root reads whatever the permission bits say")
def test_an_unreadable_folder_is_skipped(site: SiteMaker) -> None:
    good_items(site)
    site.item("locked/inside.md", id="inside", title="Inside")
    folder = site.root / "content/locked"
    folder.chmod(0)
    try:
        result = run(site, "build")
    finally:
        folder.chmod(0o755)
    assert_rest_built(site, result, "content/locked/: error: folder cannot be read: Permission denied")


def test_a_fifo_does_not_hang_the_build(site: SiteMaker) -> None:
    good_items(site)
    os.mkfifo(site.root / "content/x.md")
    result = as_result(run_within(site, 20, "build"))
    assert_rest_built(site, result, "content/x.md: error: is a named pipe (FIFO), not a file")


def test_symlinks_out_of_the_site_are_not_published(site: SiteMaker, tmp_path: Path) -> None:
    good_items(site)
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    secret = "---\ntitle: Secret {n}\ndate: '2026-11-18'\n---\nNot for publishing.\n"
    (outside / "secret.md").write_text(secret.format(n=1))
    (outside / "folder/secret2.md").write_text(secret.format(n=2))
    (site.root / "content/leak.md").symlink_to(outside / "secret.md")
    (site.root / "content/elsewhere").symlink_to(outside / "folder")
    result = run(site, "build")
    assert result.exit_code == 0, result.output
    published = "".join(text for _, text in published_texts(site))
    assert "Secret" not in published and "Not for publishing" not in published
    assert "content/leak.md: warning: is a link to " in result.stderr
    assert "content/elsewhere: warning: is a link to " in result.stderr
    assert sorted(rss_titles(site)) == ["Also good", "Good item"]


@pytest.mark.parametrize(
    ("body", "warning"),
    [
        ("<div>" * 500_000 + "</div>" * 500_000, "body nests elements more than 64 deep"),  # 5.5 MB
        ("&amp;" * (2 * 2**20), "body is 10,485,760 characters long"),  # 10 MB
        ("\n" * (15 * 2**20), "body is 15,728,640 characters long"),  # 15 MB
    ],
    ids=["500000-nested-divs", "10-mb-of-entities", "15-mb-of-blank-lines"],
)
def test_a_huge_or_deep_body_costs_seconds_and_is_reported(site: SiteMaker, body: str, warning: str) -> None:
    good_items(site)
    site.raw("big.md", f"---\ntitle: Big\ndate: '2026-11-18'\ncategories: [Alpha]\n---\n{body}")
    started = time.monotonic()
    result = as_result(run_within(site, 30, "build"))
    assert time.monotonic() - started < 10, "a few seconds at most"
    assert result.exit_code == 0, result.stderr[-1500:]
    assert "content/big.md" in result.stderr and warning in result.stderr, result.stderr[-1500:]
    assert sorted(rss_titles(site)) == ["Also good", "Big", "Good item"]


def test_markup_in_a_title_is_shown_as_text_everywhere(site: SiteMaker) -> None:
    mail_site(site)
    site.item("tags.md", id="tags", title="Tags <b>bold</b>", date="2026-11-19", categories=["Alpha"],
              description="<p>Hello <em>world</em>.</p>")  # fmt: skip
    result = run(site, "build")
    assert result.exit_code == 0, result.output
    assert "Tags bold" in rss_titles(site)
    assert "Tags bold" in (site.root / "feeds/topic/alpha/index.html").read_text()
    assert "* Tags bold" in (site.root / "emails/2026-W47/digest.txt").read_text()
    assert "Hello world." in (site.root / "emails/2026-W47/digest.txt").read_text()
    for relpath, text in published_texts(site):
        assert "<b>bold" not in text and "&lt;b&gt;" not in text, relpath
        assert "<em>world" not in text and "&lt;em&gt;" not in text, relpath


def test_an_invisible_title_is_refused(site: SiteMaker) -> None:
    good_items(site)
    site.item("ghost.md", id="ghost", title="\u200b\u200b\u200b", date="2026-11-19")
    result = run(site, "build")
    assert_rest_built(site, result, "content/ghost.md:3: error: title has only invisible characters (U+200B)")
    assert len(rss_titles(site)) == 2


def test_a_bidi_override_never_reaches_the_output(site: SiteMaker) -> None:
    mail_site(site)
    site.item("rlo.md", id="rlo", title="Reversed", date="2026-11-19", categories=["Health\u202eCare"])
    result = run(site, "build")
    assert result.exit_code == 0, result.output
    assert "Reversed" in rss_titles(site, "feeds/topic/healthcare/rss.xml")
    for relpath, text in published_texts(site):
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", text), f"{relpath} holds a bidi control"


def test_a_date_in_non_ascii_digits_is_refused(site: SiteMaker) -> None:
    good_items(site)
    site.item("arabic.md", id="arabic", title="Arabic digits", date="٢٠٢٦-١١-٢٠")
    result = run(site, "build")
    assert_rest_built(
        site,
        result,
        "content/arabic.md:4: error: date '٢٠٢٦-١١-٢٠' is not a date; write YYYY-MM-DD or an ISO 8601 date-time",
    )
    assert "Arabic digits" not in rss_titles(site)


def test_a_topic_keeps_its_slug_when_another_spelling_wins(site: SiteMaker) -> None:
    for n in range(3):
        site.item(f"h{n}.md", id=f"h{n}", title=f"Health {n}", date=f"2026-11-1{n}", categories=["Health"])
    assert run(site, "check").exit_code == 0
    assert not (site.root / ".bulletin/slugs.json").exists()  # nothing is published by a check
    assert run(site, "build").exit_code == 0
    state = site.root / ".bulletin/slugs.json"
    assert json.loads(state.read_text()) == {"health": "health"}
    for n in range(3, 7):
        site.item(f"h{n}.md", id=f"h{n}", title=f"Health {n}", date=f"2026-11-1{n}", categories=["Heal th"])
    result = run(site, "build")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (site.root / "feeds/topic").iterdir()) == ["health"]
    assert len(rss_titles(site, "feeds/topic/health/rss.xml")) == 7
    assert result.stderr == (
        "content: warning: topic 'Heal th' keeps its published slug 'health' (its name now gives "
        "'heal-th'); to change it on purpose, delete its entry from .bulletin/slugs.json\n"
    )
    assert "Heal th  health" in run(site, "topics").stdout
    # Changing it on purpose: delete the entry, and the next build publishes the new slug.
    state.write_text("{}\n")
    assert run(site, "build").exit_code == 0
    assert sorted(p.name for p in (site.root / "feeds/topic").iterdir()) == ["heal-th"]
    assert json.loads(state.read_text()) == {"health": "heal-th"}


def test_a_damaged_slugs_file_is_reported_and_kept(site: SiteMaker) -> None:
    good_items(site)
    state = site.root / ".bulletin/slugs.json"
    state.parent.mkdir()
    state.write_text('{"alpha": "../../x", "beta": "beta-1"')
    result = run(site, "build")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        ".bulletin/slugs.json: warning: cannot be read (Expecting ',' delimiter: line 1 column 38); "
        "slugs are decided afresh and the file is left as it is: fix it or delete it\n"
    )
    assert state.read_text() == '{"alpha": "../../x", "beta": "beta-1"'
    state.write_text('{"alpha": "../../x", "beta": "beta-1"}')
    result = run(site, "build")
    assert result.stderr == (
        ".bulletin/slugs.json: warning: the slug '../../x' of topic 'alpha' is not a slug; "
        "it is ignored: write lower-case words joined by '-'\n"
    )
    assert sorted(p.name for p in (site.root / "feeds/topic").iterdir()) == ["alpha", "beta-1"]
    assert json.loads(state.read_text()) == {"alpha": "alpha", "beta": "beta-1"}


def test_state_files_nested_too_deeply_are_reported_not_a_traceback(site: SiteMaker) -> None:
    """json.loads raises RecursionError, not ValueError, for arrays nested 100,000 deep."""
    good_items(site)
    assert run(site, "feeds").exit_code == 0
    state = site.root / ".bulletin"
    (state / "slugs.json").write_text("[" * 100_000)
    (state / "cache/unchanged-feeds.json").write_text("[" * 100_000)  # the nothing-changed record
    result = run(site, "feeds")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        ".bulletin/slugs.json: warning: cannot be read (it is nested too deeply); "
        "slugs are decided afresh and the file is left as it is: fix it or delete it\n"
    )


@pytest.mark.parametrize("how", ["moved away", "dangling link", "a file", "unreadable", "a loop"])
def test_a_content_folder_that_is_not_there_empties_no_feed(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    """content/ renamed, a link to a disk that is not mounted, a file, or not listable: the
    run used to read no items, publish empty feeds and delete every topic's folder, and exit
    0. It now stops, says why, and leaves what was published as it was."""
    site.item("a.md", title="Alpha", categories=["Gartner: Healthcare"])
    assert run(site, "build").exit_code == 0
    feeds = site.root / "feeds"
    before = {p: p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()}
    content = site.root / "content"
    if how == "moved away":
        content.rename(site.root / "content.bak")
        expected = "content/: error: is missing; bulletin stops and writes nothing"
    elif how == "dangling link":
        content.rename(site.root / "content.bak")
        content.symlink_to(tmp_path / "unmounted/content")
        expected = f"content/: error: is a link to {tmp_path / 'unmounted/content'}, which is not there"
    elif how == "a loop":
        content.rename(site.root / "content.bak")
        content.symlink_to("content")
        expected = "content/: error: is a link that leads back to itself"
    elif how == "a file":
        content.rename(site.root / "content.bak")
        content.write_text("not a folder")
        expected = "content/: error: is a file, not a folder"
    else:
        real_open, real_scandir = os.open, os.scandir

        def refusing_open(path: Any, *args: Any, **kwargs: Any) -> int:
            if os.fspath(path) == os.fspath(content):
                raise PermissionError(errno.EACCES, "Permission denied", path)
            return real_open(path, *args, **kwargs)

        def refusing_scandir(path: Any = ".") -> Any:
            if not isinstance(path, int) and os.fspath(path) == os.fspath(content):
                raise PermissionError(errno.EACCES, "Permission denied", path)
            return real_scandir(path)

        monkeypatch.setattr(os, "open", refusing_open)
        monkeypatch.setattr(os, "scandir", refusing_scandir)
        monkeypatch.setattr(walk, "_compiled", None)  # it opens content/ in C, past these
        expected = "content/: error: cannot be read: Permission denied"
    for command in ("feeds", "build", "check", "topics"):  # the last two write nothing anyway
        result = run(site, command)
        assert result.exit_code == 3, result.output
        assert expected in result.output
        assert "bulletin stops and writes nothing" in result.output
    assert {p: p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()} == before


def test_an_empty_content_folder_after_a_build_with_items_empties_no_feed(site: SiteMaker) -> None:
    """An empty mount point (the disk is not there): content/ exists and holds nothing."""
    site.item("a.md", title="Alpha", categories=["Gartner: Healthcare"])
    assert run(site, "feeds").exit_code == 0
    feeds = site.root / "feeds"
    before = {p: p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()}
    shutil.rmtree(site.root / "content")
    (site.root / "content").mkdir()
    result = run(site, "feeds")
    assert result.exit_code == 3
    assert result.stderr == (
        "content/: error: holds no items, but the last build read 1; bulletin stops and writes "
        "nothing: mount or restore content/, or, to publish no items, delete .bulletin/cache/ "
        "and run again\n"
    )
    assert {p: p.read_bytes() for p in sorted(feeds.rglob("*")) if p.is_file()} == before
    shutil.rmtree(site.root / ".bulletin/cache")  # on purpose: the way out the message gives
    assert run(site, "feeds").exit_code == 0
    assert "Alpha" not in (feeds / "rss.xml").read_text()


def test_a_reader_that_stops_reading_stops_the_output_not_the_work(site: SiteMaker) -> None:
    """`bulletin topics | head -1` used to end in 'error: Broken pipe' and exit 3, and a
    build or send whose reader had gone would stop half-way at its first line of output."""
    site.item("a.md", title="Alpha", categories=["Gartner: Healthcare", "KLAS"])
    for args in (("build",), ("topics",)):
        read, write = os.pipe()
        os.close(read)  # the reader has gone before bulletin writes a byte
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bulletin", *args, "--site", str(site.root), *NOW],
                stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
            )  # fmt: skip
        finally:
            os.close(write)
        assert (done.returncode, done.stderr) == (0, ""), args
    assert "Alpha" in (site.root / "feeds" / "rss.xml").read_text()
    # stderr's reader gone, with a warning to print: the run's exit code stays 0.
    site.item("nolink.md", title="No link", categories=["KLAS"], href=None)
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bulletin", "build", "--site", str(site.root), *NOW],
            stdout=subprocess.DEVNULL, stderr=write, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.returncode == 0
    assert "No link" in (site.root / "feeds" / "rss.xml").read_text()
    # stderr closed altogether (`2>&-`): sys.stderr is None, and the build still runs.
    shutil.rmtree(site.root / "feeds")
    command = [sys.executable, "-m", "bulletin", "feeds", "--site", str(site.root), *NOW]
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" 2>&-', "sh", *command], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout
    assert "Alpha" in (site.root / "feeds" / "rss.xml").read_text()


def test_the_process_ends_at_once_with_its_output_and_exit_code_whole(site: SiteMaker) -> None:
    """`bulletin` ends without Python's teardown (cli.run): what it printed, to a pipe and
    to a file, arrives whole, and the exit code is the command's."""
    for n in range(300):
        site.item(f"i{n}.md", title=f"Item {n}", categories=[f"Topic {n}"])
    listed = run_within(site, 120, "topics")
    assert (listed.returncode, listed.stderr) == (0, "")
    assert len(listed.stdout.splitlines()) == 301 and listed.stdout.endswith("\n")
    with (site.root.parent / "out.txt").open("w") as out:
        command = [sys.executable, "-m", "bulletin", "topics", "--site", str(site.root), *NOW]
        assert subprocess.run(command, stdout=out, timeout=120).returncode == 0
    assert (site.root.parent / "out.txt").read_text() == listed.stdout
    (site.root / "bulletin.toml").write_text("title = \n")  # a broken configuration: exit code 2
    broken = run_within(site, 120, "feeds")
    assert broken.returncode == 2
    assert broken.stderr.startswith("bulletin.toml:1: error:"), broken.stderr


def test_a_profiler_still_gets_to_write_its_report(tmp_path: Path) -> None:
    """The quick exit steps aside for a profiler (and a tracer: coverage, a debugger)."""
    report = tmp_path / "bulletin.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(report), "-m", "bulletin", "--version"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("bulletin, version")
    assert report.stat().st_size > 0
