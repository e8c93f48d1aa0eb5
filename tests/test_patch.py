"""A `feeds` run after items were edited in place splices the edits (patch.py), and what it
writes is byte for byte what a full build writes; anything else runs the full build."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import bulletin.build
import bulletin.patch
from bulletin.cli import main

from .conftest import SiteMaker

NOW = "2026-11-25T12:00"
TOPICS = ["Gartner: Healthcare", "KLAS: Imaging", "Symplur: Virtual Care"]


@pytest.fixture(autouse=True)
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests edit files and build at once; the racy window has its own test."""
    monkeypatch.setattr("bulletin.unchanged.RACY_NS", 0)


def run(site: SiteMaker | Path, now: str = NOW) -> Result:
    root = site if isinstance(site, Path) else site.root
    result = CliRunner().invoke(main, ["feeds", "--site", str(root), "--now", now], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def fields(n: int) -> dict[str, object]:
    """Item n of the site: dates a day apart (n = 0 the newest), one or two topics, an image
    on every third."""
    found: dict[str, object] = {
        "id": f"item-{n}",
        "title": f"Item {n}: hospitals & <25 beds",
        "date": (date(2026, 11, 24) - timedelta(days=n)).isoformat(),
        "description": f"What item {n} says, in short.",
        "categories": [TOPICS[n % 3]] + ([TOPICS[(n + 1) % 3]] if n % 5 == 0 else []),
    }
    if n % 3 == 0:
        found["featuredImage"] = {
            "href": f"https://img.example/{n}.jpg",
            "alt": f"Image {n}",
            "size": [800, 600],
        }
    return found


def many(site: SiteMaker, count: int = 130) -> SiteMaker:
    """Enough items for feeds of 20 and topic pages of 50: items in no feed, items on page 2."""
    site.write_config(feed_items=20)
    for n in range(count):
        site.item(f"i{n:03d}.md", body=f"<p>Body of item {n}.</p>", **fields(n))
    return site


def edit(site: SiteMaker, n: int, body: str | None = None, **changes: object) -> None:
    values = fields(n) | changes
    site.item(
        f"i{n:03d}.md",
        body=body or f"<p>Body of item {n}.</p>",
        **{k: v for k, v in values.items() if v is not None},
    )


def outputs(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "feeds").rglob("*"))
        if p.is_file()
    }


def full_build(site: SiteMaker, tmp_path: Path, cold: Path | None = None) -> dict[str, bytes]:
    """What a build from scratch writes for the site as it is now (in `cold`, which may
    hold the site's templates already)."""
    if cold is None:
        cold = tmp_path / "cold"
        shutil.rmtree(cold, ignore_errors=True)
    shutil.copytree(site.root / "content", cold / "content")
    shutil.copy(site.root / "bulletin.toml", cold)
    run(cold)
    return outputs(cold)


@contextmanager
def counting_full_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many full builds ran in the block."""
    calls: list[int] = []
    real = bulletin.build.build_site

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(bulletin.build, "build_site", counted)
        yield calls


Edit = Callable[[SiteMaker], None]
IN_PLACE: dict[str, Edit] = {
    "newest title": lambda s: edit(s, 0, title="Item 0, corrected"),
    "title of an item on page 2 only": lambda s: edit(s, 61, title="Item 61 </item> <entry> ]]>"),
    "body": lambda s: edit(s, 2, body="<p>A new body, with <b>bold</b> and a <script>x</script>.</p>"),
    "description with markup": lambda s: edit(s, 4, description="Now <b>bold</b> &amp; ünïcode 🎉"),
    "image added": lambda s: edit(
        s, 1, featuredImage={"href": "https://img.example/new.png", "format": "PNG"}
    ),
    "image removed": lambda s: edit(s, 3, featuredImage=None),
    "source link": lambda s: edit(s, 5, href="https://elsewhere.example/story"),
    "two topics": lambda s: edit(s, 10, title="Item 10 in two topics, edited"),
    "id-like text": lambda s: edit(
        s,
        6,
        title='{"id":"tag:news.example.org,2026:item-7",',
        description='<guid isPermaLink="false">x</guid>',
    ),
    "two files": lambda s: (edit(s, 7, title="Seven"), edit(s, 8, body="<p>Eight</p>")),
}
IN_FULL: dict[str, Edit] = {
    "date": lambda s: edit(s, 12, date="2026-11-24"),
    "categories": lambda s: edit(s, 13, categories=["KLAS: Imaging", "New topic"]),
    "draft": lambda s: edit(s, 14, draft=True),
    "id": lambda s: edit(s, 15, id="another-id"),
    "new file": lambda s: s.item("new.md", **fields(200) | {"date": "2026-11-25"}),
    "file removed": lambda s: (s.root / "content" / "i016.md").unlink(),
    "lastMod": lambda s: edit(s, 17, lastMod="2026-11-20"),
    # The same instant: the feeds' own dates are the newest item's, written with its offset.
    "date's offset": lambda s: edit(s, 0, date="2026-11-24T01:00:00+01:00"),
    "problem": lambda s: edit(s, 18, href="not a link"),
    "feed edited by hand": lambda s: (
        (s.root / "feeds" / "rss.xml").write_bytes((s.root / "feeds" / "rss.xml").read_bytes() + b"\n"),
        edit(s, 0, title="Item 0, corrected"),
    ),
    "topic page removed": lambda s: (
        (s.root / "feeds" / "topic" / "klas-imaging" / "index.html").unlink(),
        edit(s, 1, title="Item 1, corrected"),
    ),
    "slugs changed": lambda s: (
        (s.root / ".bulletin" / "slugs.json").write_text('{"gartnerhealthcare": "gartner"}'),
        edit(s, 0, title="Item 0, corrected"),
    ),
    "configuration": lambda s: (s.write_config(title="Other News"), edit(s, 0, title="Item 0, corrected")),
    "more than 32 files": lambda s: [edit(s, n, title=f"Item {n}, corrected") for n in range(33)],
}


@pytest.mark.parametrize("name", IN_PLACE)
def test_an_edit_in_place_is_spliced_as_a_full_build_writes_it(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    many(site)
    run(site)
    IN_PLACE[name](site)
    with counting_full_builds(monkeypatch) as full:
        result = run(site)
    assert full == []
    assert outputs(site.root) == full_build(site, tmp_path)
    written = int(result.stdout.splitlines()[1].split()[1])
    assert written > 0
    assert result.stdout.splitlines()[0] == "130 items in 3 topics from 130 files"


@pytest.mark.parametrize("name", IN_FULL)
def test_an_edit_that_moves_anything_runs_the_full_build(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    many(site)
    run(site)
    IN_FULL[name](site)
    with counting_full_builds(monkeypatch) as full:
        CliRunner().invoke(main, ["feeds", "--site", str(site.root), "--now", NOW], catch_exceptions=False)
    assert full == [1]
    if name not in ("problem", "slugs changed"):  # a copy exits 1 on the error; has no slugs file
        assert outputs(site.root) == full_build(site, tmp_path)


def test_random_edits_leave_what_a_full_build_writes(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many(site)
    run(site)
    chance = random.Random(20261206)
    kinds = [*IN_PLACE.values(), *IN_PLACE.values(), IN_FULL["date"], IN_FULL["new file"]]
    spliced = 0
    for round_ in range(24):
        n = chance.randrange(130)
        title = f"Item {n}, round {round_} " + chance.choice(["&", "<b>", "é", "’", ""])
        edit(site, n, title=title, body=f"<p>Round {round_}.</p>" * chance.randrange(1, 4))
        chance.choice(kinds)(site)
        with counting_full_builds(monkeypatch) as full:
            run(site)
        spliced += not full
        if round_ % 4 == 3:
            assert outputs(site.root) == full_build(site, tmp_path), round_
    assert spliced >= 12


def test_an_edit_undone_by_a_full_build_is_undone(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full build renders what a splice wrote again: the item's fingerprint is back to
    the one its files were rendered with, but the files hold the edit."""
    many(site)
    run(site)
    edit(site, 0, title="Item 0, for a moment")
    with counting_full_builds(monkeypatch) as full:
        run(site)
    assert full == []
    edit(site, 0)  # undone
    site.item("new.md", **fields(300))  # and the full build runs
    with counting_full_builds(monkeypatch) as full:
        run(site)
    assert full == [1]
    assert b"for a moment" not in b"".join(outputs(site.root).values())
    assert outputs(site.root) == full_build(site, tmp_path)


def test_bytes_unchanged_write_nothing(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    many(site)
    run(site)
    path = site.root / "content" / "i000.md"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    with counting_full_builds(monkeypatch) as full:
        result = run(site)
    assert full == []
    assert result.stdout.splitlines()[1] == f"feeds: 0 written, {len(outputs(site.root))} unchanged"
    again = run(site)  # and the next run knows nothing changed: it reads nothing
    assert again.stdout == result.stdout


def test_a_splice_is_remembered_for_the_next_edit(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many(site)
    run(site)
    for title in ("First", "Second", "Third"):
        edit(site, 0, title=title)
        with counting_full_builds(monkeypatch) as full:
            run(site)
        assert full == []
    assert outputs(site.root) == full_build(site, tmp_path)


def test_a_run_earlier_than_an_item_runs_the_full_build(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At an earlier --now, the newest items are scheduled: no longer in the feeds."""
    many(site)
    run(site)
    edit(site, 40, title="Edited")
    with counting_full_builds(monkeypatch) as full:
        result = run(site, now="2026-11-02T00:00")
    assert full == [1]
    assert "held back" in result.stdout


def test_files_changed_just_before_the_plan_are_read_again(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system with coarse timestamps an edit may keep a file's stamp: a file
    changed within the racy window is parsed again by the next run, whatever its stamp."""
    monkeypatch.setattr("bulletin.unchanged.RACY_NS", 60_000_000_000)
    many(site, 10)
    run(site)
    import bulletin.site.reader

    parsed: list[str] = []
    real = bulletin.site.reader._parse_one

    def recording(relpath: str, *args: object) -> object:
        parsed.append(relpath)
        return real(relpath, *args)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(bulletin.site.reader, "_parse_one", recording)
        run(site)
    assert sorted(parsed) == [f"content/i{n:03d}.md" for n in range(10)]


def test_a_site_topic_page_that_shows_more_of_an_entry_is_built_in_full(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site's own topic.html.j2 may show an entry's fields outside its rendered entry (a
    list of titles): the splice would leave them as they were."""
    many(site)
    (site.root / "templates").mkdir()
    shipped = Path(bulletin.build.__file__).with_name("templates") / "topic.html.j2"
    own = shipped.read_text().replace(
        '<ul class="list">', '<p>{% for e in entries %}{{ e.title }};{% endfor %}</p>\n<ul class="list">'
    )
    (site.root / "templates" / "topic.html.j2").write_text(own)
    (site.root / "templates" / "_entry.html.j2").write_text(
        (shipped.with_name("_entry.html.j2")).read_text()
    )  # an entry of the site's own is spliced as bulletin's is
    run(site)
    edit(site, 0, title="Item 0, corrected")
    with counting_full_builds(monkeypatch) as full:
        run(site)
    assert full == [1]
    cold = full_build_with_templates(site, tmp_path)
    assert outputs(site.root) == cold
    assert b"Item 0, corrected;" in outputs(site.root)["feeds/topic/gartner-healthcare/index.html"]


def full_build_with_templates(site: SiteMaker, tmp_path: Path) -> dict[str, bytes]:
    cold = tmp_path / "cold"
    shutil.rmtree(cold, ignore_errors=True)
    shutil.copytree(site.root / "templates", cold / "templates")
    return full_build(site, tmp_path, cold)


def test_a_splice_stopped_while_writing_leaves_no_plan(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed while it writes leaves a temporary file beside the file it was writing,
    and every output as it was: the next run must not splice (and keep it) but build in full,
    which removes it."""
    many(site)
    run(site)
    edit(site, 0, title="Item 0, corrected")

    def killed(config: object, splices: object) -> list[str]:
        left = site.root / "feeds" / ".rss.xml.k1lled_9.tmp"
        left.write_bytes(b'<?xml version="1.0"')
        os.utime(left, (1_700_000_000, 1_700_000_000))
        raise KeyboardInterrupt  # kill -9 ends it here; this is as near as a test gets

    with monkeypatch.context() as patched:
        patched.setattr(bulletin.patch, "_write", killed)
        stopped = CliRunner().invoke(main, ["feeds", "--site", str(site.root), "--now", NOW])
    assert stopped.exit_code != 0
    with counting_full_builds(monkeypatch) as full:
        run(site)
    assert full == [1]
    assert outputs(site.root) == full_build(site, tmp_path)


def test_verbose_says_what_was_spliced_or_why_the_full_build_ran(site: SiteMaker) -> None:
    many(site)
    run(site)

    def verbose() -> Result:
        args = ["feeds", "-v", "--site", str(site.root), "--now", NOW]
        return CliRunner().invoke(main, args, catch_exceptions=False)

    edit(site, 0, title="Item 0, corrected")
    assert verbose().stderr == (
        "note: feeds: spliced 1 edited item into the feeds and pages that show it; no other item read\n"
    )
    edit(site, 12, date="2026-11-24")
    assert verbose().stderr == (
        "note: feeds: built in full: content/i012.md: its id, dates, categories or draft state "
        "changed, or it has a problem\n"
    )
    site.item("new.md", **fields(300))
    assert "built in full: files were added to, removed from or renamed in content/" in verbose().stderr
    path = site.root / "content" / "i001.md"
    path.write_bytes(path.read_bytes())  # the same bytes, a new mtime
    assert (
        verbose().stderr
        == "note: feeds: nothing the feeds show changed (the same bytes, or a draft); nothing else read\n"
    )
    edit(site, 20, draft=True)  # made a draft: the full build
    assert "built in full" in verbose().stderr
    edit(site, 20, draft=True, body="<p>A draft's new body.</p>")  # a draft edited: nothing shown
    assert (
        verbose().stderr
        == "note: feeds: nothing the feeds show changed (the same bytes, or a draft); nothing else read\n"
    )
    edit(site, 0, title="Item 0, again")  # and without -v, nothing on stderr
    assert run(site).stderr == ""


def test_verbose_does_not_say_files_changed_when_they_were_only_recent(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than MOST_CHANGED files changed just before the last run (a checkout, then a
    build): the next run reads them again and builds in full, though none changed since;
    -v must not say that more than 32 changed."""
    many(site, 40)
    run(site)
    monkeypatch.setattr("bulletin.unchanged.RACY_NS", 60_000_000_000)
    for n in range(40):  # touched: the same bytes, a new stamp
        path = site.root / "content" / f"i{n:03d}.md"
        path.write_bytes(path.read_bytes())
    args = ["feeds", "-v", "--site", str(site.root), "--now", NOW]
    first = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "built in full: more than 32 files changed" in first.stderr
    again = CliRunner().invoke(main, args, catch_exceptions=False)  # nothing changed since
    assert "more than 32 files changed" not in again.stderr
    assert again.stderr == (
        "note: feeds: built in full: 0 files changed since the last run, and 40 more changed "
        "too shortly before it for their stamps to tell a later edit: more than 32 to read again\n"
    )
