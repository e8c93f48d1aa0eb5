"""Rendered output: what a killed run left behind is cleared by the next one, and nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bulletin.cli import main

from .conftest import SiteMaker

NOW = ["--now", "2026-11-25T12:00"]


def run(site: SiteMaker, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--site", str(site.root), *NOW], catch_exceptions=False)


def mail_site(site: SiteMaker) -> SiteMaker:
    site.write_config(digest={"from": "News <news@example.org>", "address": "1 Road, Town"})
    site.item("a.md", id="a", title="Alpha", date="2026-11-18", categories=["Gartner: Healthcare"])
    site.item("b.md", id="b", title="Beta", date="2026-11-19", categories=["Medigy: Café Talks"])
    return site


def plant(site: SiteMaker, relative: str, age: float = 3600) -> Path:
    path = site.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a file")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_a_rebuild_removes_what_killed_writes_left_and_nothing_else(site: SiteMaker) -> None:
    mail_site(site)
    assert run(site, "build").exit_code == 0
    stale = [
        plant(site, "emails/2026-W47/.digest.html.k2x9_0ab.tmp"),
        plant(site, "emails/.index.html.zzzzzzzz.tmp"),
        plant(site, "feeds/topic/gartner-healthcare/.rss.xml.abcdefgh.tmp"),
        plant(site, ".bulletin/cache/.items-03.pickle.0123abcd.tmp"),
    ]
    kept = [
        plant(site, "emails/2026-W47/.digest.html.a1b2c3d4.tmp", age=-60),  # a run writing right now
        plant(site, "emails/2026-W47/.digest.html.ABCDEFGH.tmp"),  # not tempfile's letters
        plant(site, "emails/2026-W47/.digest.html.tmp"),
        plant(site, "emails/2026-W47/digest.html.abcdefgh.tmp"),  # not hidden
        plant(site, "emails/2026-W47/.digest.html.abcdefgh.tmp.bak"),
        plant(site, "feeds/notes.tmp"),
        plant(site, "content/.a.md.abcdefgh.tmp"),  # bulletin never writes content/
        plant(site, ".a.md.abcdefgh.tmp"),
        plant(site, "templates/.x.j2.abcdefgh.tmp"),
    ]
    (site.root / "feeds" / ".rss.xml.folder12.tmp").mkdir()
    result = run(site, "build", "-v")
    assert result.exit_code == 0
    assert [path for path in stale if path.exists()] == []
    assert [path for path in kept if not path.exists()] == []
    assert (site.root / "feeds" / ".rss.xml.folder12.tmp").is_dir()
    notes = [line for line in result.stderr.splitlines() if "temporary" in line]
    assert notes == [
        "note: removed 1 temporary file(s) left in .bulletin/cache/ by an interrupted run",
        "note: removed 1 temporary file(s) left in feeds/ by an interrupted run",
        "note: removed 2 temporary file(s) left in emails/ by an interrupted run",
    ]
    assert "temporary" not in run(site, "build", "-v").stderr


def test_the_digest_command_clears_emails_and_feeds_only_clears_feeds(site: SiteMaker) -> None:
    mail_site(site)
    digest = plant(site, "emails/2026-W47/.digest.eml.abcdefgh.tmp")
    feed = plant(site, "feeds/.atom.xml.abcdefgh.tmp")
    assert run(site, "feeds").exit_code == 0
    assert (digest.exists(), feed.exists()) == (True, False)
    assert run(site, "digest", "--week", "2026-W47").exit_code == 0
    assert not digest.exists()


def test_render_chunks_cover_every_render_in_order_and_never_split_a_group() -> None:
    from bulletin.output import _CHUNK, Written, _chunks, _Render

    groups = ["a"] * 3 + ["b"] * 3 + [""] * 9 + ["c"] * 7 + [""]
    tasks = [_Render(str(n), "", (), list, Written(), group) for n, group in enumerate(groups)]
    chunks = _chunks(tasks)
    assert [index for chunk in chunks for index in chunk] == list(range(len(tasks)))
    assert all(len(chunk) >= _CHUNK for chunk in chunks[:-1])
    for group in "abc":
        assert sum(1 for chunk in chunks if any(groups[i] == group for i in chunk)) == 1
    assert _chunks([]) == []


def test_a_file_changed_since_its_render_is_rendered_again(site: SiteMaker) -> None:
    """A fingerprint vouches for the file its render left: one edited, replaced or written by
    a run that could not save its fingerprints is rendered again by the next full build,
    though what it depends on is the same."""
    site.item("a.md", id="a", title="Alpha", categories=["Gartner: Healthcare"])
    site.item("b.md", id="b", title="Beta", categories=["KLAS: Imaging"], date="2026-11-17")
    assert run(site, "feeds").exit_code == 0
    page = site.root / "feeds" / "topic" / "gartner-healthcare" / "index.html"
    rss = site.root / "feeds" / "topic" / "gartner-healthcare" / "rss.xml"
    rendered = page.read_bytes(), rss.read_bytes()
    page.write_bytes(rendered[0].replace(b"Alpha", b"Stale"))
    rss.write_bytes(rendered[1].replace(b"Alpha", b"Stale"))
    site.item("c.md", id="c", title="Gamma", categories=["KLAS: Imaging"], date="2026-11-16")
    result = run(site, "feeds")  # a full build: a new item, in the other topic
    assert result.exit_code == 0, result.output
    assert (page.read_bytes(), rss.read_bytes()) == rendered


def test_a_file_changed_after_its_write_is_not_vouched_for(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp a fingerprint is kept with is the file's as the write left it, not as the
    build finds it when it gets the result (with forked workers, a whole chunk later): a
    file changed in between is rendered again by the next full build."""
    from bulletin.output import Outputs

    site.item("a.md", id="a", title="Alpha", categories=["Gartner: Healthcare"])
    site.item("b.md", id="b", title="Beta", categories=["KLAS: Imaging"], date="2026-11-17")
    page = site.root / "feeds" / "topic" / "gartner-healthcare" / "index.html"
    real = Outputs._done

    def meddling(self: Outputs, task: Any, results: Any) -> None:
        if page in task.paths:  # someone writes to it before the build records it
            page.write_bytes(page.read_bytes().replace(b"Alpha", b"Stale"))
        real(self, task, results)

    with monkeypatch.context() as patched:
        patched.setattr(Outputs, "_done", meddling)
        assert run(site, "feeds").exit_code == 0
    assert b"Stale" in page.read_bytes()
    site.item("c.md", id="c", title="Gamma", categories=["KLAS: Imaging"], date="2026-11-16")
    result = run(site, "feeds")  # a full build: a new item, in the other topic
    assert result.exit_code == 0, result.output
    assert b"Stale" not in page.read_bytes()
    assert b"Alpha" in page.read_bytes()


def test_a_file_copied_or_checked_out_with_the_same_bytes_is_not_rendered_again(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cp -a, rsync, a checkout or a restore give the outputs new stamps and the same bytes:
    the next full build reads them, and renders only what changed."""
    import shutil

    from bulletin.output import Outputs

    site.item("a.md", id="a", title="Alpha", categories=["Gartner: Healthcare"])
    site.item("b.md", id="b", title="Beta", categories=["KLAS: Imaging"], date="2026-11-17")
    assert run(site, "feeds").exit_code == 0
    for path in sorted((site.root / "feeds").rglob("*")):
        if path.is_file():  # a new inode, the same mtime and bytes: cp -a
            shutil.copy2(path, path.with_name(path.name + ".copy"))
            path.with_name(path.name + ".copy").replace(path)
    rendered: list[str] = []
    real = Outputs._render

    def recording(self: Outputs, task: Any) -> Any:
        rendered.append(task.key)
        return real(self, task)

    site.item("c.md", id="c", title="Gamma", categories=["KLAS: Imaging"], date="2026-11-16")
    with monkeypatch.context() as patched:
        patched.setattr(Outputs, "_render", recording)
        result = run(site, "feeds")  # a full build: a new item, in the other topic
    assert result.exit_code == 0, result.output
    assert not [key for key in rendered if "gartner-healthcare" in key], rendered
    assert any("klas-imaging" in key for key in rendered)
    rendered.clear()
    with monkeypatch.context() as patched:  # the stamps found were kept: nothing is read again
        patched.setattr(Outputs, "_render", recording)
        patched.setattr("bulletin.output._digests", lambda paths: pytest.fail("read again"))
        (site.root / ".bulletin" / "cache" / "unchanged-feeds.json").unlink(missing_ok=True)
        (site.root / ".bulletin" / "cache" / "plan-feeds.marshal").unlink(missing_ok=True)
        assert run(site, "feeds").exit_code == 0
    assert rendered == []
