"""A rebuild with nothing changed compares stats and stops; any change runs in full."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bulletin.cli import main
from bulletin.site import reader, walk

from .conftest import SiteMaker

MAIL = {"from": "Health Weekly <digest@news.example.org>", "address": "100 Main Street, Springfield"}


@pytest.fixture(autouse=True)
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests write files and build at once; the racy window has its own test."""
    monkeypatch.setattr("bulletin.unchanged.RACY_NS", 0)


def run(site: SiteMaker, *args: str, now: str = "2026-11-25T12:00") -> Result:
    result = CliRunner().invoke(main, [*args, "--site", str(site.root), "--now", now], catch_exceptions=False)
    return result


def two_items(site: SiteMaker) -> SiteMaker:
    site.write_config(digest=dict(MAIL))
    site.item("a.md", id="a", title="Alpha", date="2026-11-18", categories=["Gartner: Healthcare"])
    site.item("b.md", id="b", title="Beta", date="2026-11-19", categories=["KLAS: Imaging"])
    return site


def no_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reading the items fail: a run that still succeeds did not read them."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the items were read")

    monkeypatch.setattr("bulletin.site.reader.read_site", refuse)
    monkeypatch.setattr("bulletin.build.read_site", refuse)
    monkeypatch.setattr("bulletin.site.reader._parse_one", refuse)  # how a few edits are read


@pytest.mark.parametrize("command", ["feeds", "build"])
def test_nothing_changed_says_so_without_reading(
    site: SiteMaker, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_items(site)
    first = run(site, command)
    assert first.exit_code == 0, first.output
    written = first.stdout.splitlines()[1]
    assert written.startswith("feeds: ") and " 0 unchanged" in written
    with monkeypatch.context() as patched:
        no_reading(patched)
        again = run(site, command)
    assert again.exit_code == 0, again.output
    lines = again.stdout.splitlines()
    assert lines[0] == first.stdout.splitlines()[0]  # "2 items in 2 topics from 2 files"
    total = int(written.split()[1].rstrip(",")) + int(written.split()[3])
    assert lines[1] == f"feeds: 0 written, {total} unchanged"


def _edit_in_place(site: SiteMaker) -> None:
    """Same size, same mtime: only the inode's change time tells."""
    path = site.root / "content" / "a.md"
    before = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace("Alpha", "Omega"), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _new_item(site: SiteMaker) -> None:
    site.item("c.md", id="c", title="Omega", date="2026-11-20", categories=["KLAS: Imaging"])


def _output_removed(site: SiteMaker) -> None:
    (site.root / "feeds" / "rss.xml").unlink()


def _config(site: SiteMaker) -> None:
    site.write_config(title="Omega News")


def _template(site: SiteMaker) -> None:
    # In the same process as the build before it: the override must be found all the same
    # (serve --watch runs on while a site's templates/ is made).
    (site.root / "templates").mkdir(exist_ok=True)
    shipped = Path(__file__).parent.parent / "src/bulletin/templates/_feeds_base.html.j2"
    (site.root / "templates" / "_feeds_base.html.j2").write_text(
        shipped.read_text(encoding="utf-8").replace("</body>", "<!-- Omega --></body>"), encoding="utf-8"
    )


def _published(site: SiteMaker) -> str:
    feeds = site.root / "feeds"
    return "".join(p.read_text(encoding="utf-8") for p in sorted(feeds.rglob("*")) if p.is_file())


@pytest.mark.parametrize("change", [_edit_in_place, _new_item, _output_removed, _config, _template])
def test_any_change_runs_in_full(site: SiteMaker, change: Callable[[SiteMaker], None]) -> None:
    two_items(site)
    assert run(site, "feeds").exit_code == 0
    assert run(site, "feeds").stdout.splitlines()[1].startswith("feeds: 0 written")
    change(site)
    again = run(site, "feeds")
    assert again.exit_code == 0, again.output
    assert not again.stdout.splitlines()[1].startswith("feeds: 0 written")
    assert "Omega" in _published(site) or change is _output_removed
    assert (site.root / "feeds" / "rss.xml").exists()


def test_a_run_with_problems_is_never_skipped(site: SiteMaker) -> None:
    two_items(site)
    site.raw("broken.md", "---\ntitle: [unclosed\n---\n")
    first = run(site, "feeds")
    again = run(site, "feeds")
    assert "broken.md" in first.stderr
    assert again.stderr == first.stderr  # reported again, every run


def test_a_scheduled_item_is_published_when_its_time_comes(site: SiteMaker) -> None:
    two_items(site)
    site.item("later.md", id="later", title="Omega later", date="2026-11-27", categories=["KLAS: Imaging"])
    run(site, "feeds")
    run(site, "feeds")
    assert "Omega later" not in _published(site)
    run(site, "feeds", now="2026-11-28T12:00")
    assert "Omega later" in _published(site)


def test_build_runs_in_full_when_a_new_week_ends(site: SiteMaker) -> None:
    two_items(site)
    site.item("c.md", id="c", title="Next week", date="2026-11-24", categories=["KLAS: Imaging"])
    run(site, "build")
    assert not (site.root / "emails" / "2026-W48").exists()
    again = run(site, "build", now="2026-12-01T12:00")
    assert again.exit_code == 0, again.output
    assert (site.root / "emails" / "2026-W48" / "digest.html").exists()


def test_a_file_changed_just_before_the_run_keeps_it_from_being_skipped(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file system with coarse timestamps may show an edit in the same second as the same
    # stats: a run that ends within the window of a change keeps no record, and the next
    # run reads the files changed in the window again (see patch.py), or all of them.
    monkeypatch.setattr("bulletin.unchanged.RACY_NS", 60_000_000_000)
    two_items(site)
    run(site, "feeds")
    assert not (site.root / ".bulletin" / "cache" / "unchanged-feeds.json").exists()
    with monkeypatch.context() as patched:
        no_reading(patched)
        with pytest.raises(AssertionError, match="the items were read"):
            run(site, "feeds")


def test_a_file_changed_while_the_run_writes_is_read_by_the_next_run(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record holds the stats of what the run read, not what is on disk at its end."""
    import bulletin.build

    two_items(site)
    real_write_feeds = bulletin.build.write_feeds

    def edit_then_write(*args: object, **kwargs: object) -> object:
        site.item("a.md", id="a", title="Alpha, edited mid-run", date="2026-11-18", categories=["X"])
        return real_write_feeds(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(bulletin.build, "write_feeds", edit_then_write)
        assert run(site, "feeds").exit_code == 0
    again = run(site, "feeds")
    assert "0 written" not in again.stdout, again.stdout
    assert "Alpha, edited mid-run" in (site.root / "feeds" / "rss.xml").read_text()


def test_a_run_that_finds_a_change_walks_content_once(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk that found the change is the one the build reads from (at 100,000 items a
    walk and a stat per file take half a second)."""
    two_items(site)
    assert run(site, "feeds").exit_code == 0
    site.item("b.md", id="b", title="Beta, edited", date="2026-11-19", categories=["KLAS: Imaging"])
    walks: list[Path] = []
    real = walk.walk_items

    def counted(content_dir: Path) -> walk.Walked:
        walks.append(content_dir)
        return real(content_dir)

    monkeypatch.setattr(walk, "walk_items", counted)  # as unchanged.py finds it
    monkeypatch.setattr(reader, "walk_items", counted)  # as the reader imported it
    assert run(site, "feeds").exit_code == 0
    assert "Beta, edited" in (site.root / "feeds" / "rss.xml").read_text()
    assert len(walks) == 1


def test_the_stamps_hash_changes_with_any_path_or_number_and_takes_any_inode() -> None:
    files = [("content/a.md", "/s/content/a.md"), ("content/b.md", "/s/content/b.md")]
    stamps = [walk.Stamp(10, 1, 2, 3), walk.Stamp(-1, -1, -1, -1)]  # b could not be stat'ed
    base = walk.Stamps(files, stamps)
    assert base.newest_ns == 2
    changed = [
        walk.Stamps(files, [walk.Stamp(10, 1, 2, 4), stamps[1]]),  # the inode
        walk.Stamps(files[::-1], stamps),  # the paths' order
        walk.Stamps([files[0], ("content/c.md", "")], stamps),
        walk.Stamps(files, stamps[::-1]),
    ]
    assert len({base.hexdigest(), *(s.hexdigest() for s in changed)}) == 5
    huge = [walk.Stamp(10, 1, 2, 2**64 - 1), stamps[1]]  # past a signed 64-bit number
    other_huge = [walk.Stamp(10, 1, 2, 2**64 - 2), stamps[1]]  # the text fallback still tells them apart
    assert walk.Stamps(files, huge).hexdigest() != walk.Stamps(files, other_huge).hexdigest()
    assert walk.Stamps(files, huge).hexdigest() != base.hexdigest()
    assert walk.Stamps([], []).newest_ns == 0


@pytest.mark.parametrize("command", ["feeds", "build"])
def test_a_run_at_an_earlier_time_runs_in_full(site: SiteMaker, command: str) -> None:
    """At a --now before an item's date, the item is scheduled, not published: nothing
    changed in the files, but the run must not say what the last one said."""
    two_items(site)
    assert run(site, command).exit_code == 0
    earlier = run(site, command, now="2026-11-18T12:00")  # Beta (the 19th) is not out yet
    assert earlier.exit_code == 0, earlier.output
    assert "1 scheduled item held back" in earlier.stdout
    assert "Beta" not in (site.root / "feeds" / "rss.xml").read_text()
