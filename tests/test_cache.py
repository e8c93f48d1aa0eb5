"""The parse and render caches in .bulletin/cache/: disposable, so never a reason to fail."""

from __future__ import annotations

import re

from click.testing import CliRunner, Result

from bulletin.cli import main

from .conftest import SiteMaker

NOW = ["--now", "2026-11-25T12:00"]


def run(site: SiteMaker, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--site", str(site.root), *NOW], catch_exceptions=False)


def small_site(site: SiteMaker) -> SiteMaker:
    site.write_config(digest={"from": "News <news@example.org>", "address": "1 Road, Town"})
    topics = ["Gartner: Healthcare", "Medigy: Café Talks", "KLAS: Scheduling"]
    for n in range(24):
        site.item(f"news/{n:02d}.md", id=f"i{n}", title=f"Item {n}", date=f"2026-11-{10 + n % 12:02d}",
                  categories=[topics[n % 3]], href=f"https://src.example/{n}")  # fmt: skip
    return site


def outputs(site: SiteMaker) -> dict[str, bytes]:
    return {
        p.relative_to(site.root).as_posix(): p.read_bytes()
        for folder in ("feeds", "emails")
        for p in sorted((site.root / folder).rglob("*"))
        if p.is_file()
    }


def test_a_cache_that_cannot_be_saved_never_fails_a_build(site: SiteMaker) -> None:
    small_site(site)
    (site.root / ".bulletin").mkdir()
    (site.root / ".bulletin" / "cache").write_text("a file where the cache folder goes")
    result = run(site, "build", "-v")
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "cache" in line]
    fix = ".bulletin/cache is not a folder; move it out of the way; bulletin works without it, only slower"
    assert len(notes) == 2
    assert re.fullmatch(
        rf"note: \.bulletin/cache/items-\d\d\.pickle: cannot save the cache: {re.escape(fix)}", notes[0]
    )
    assert notes[1] == f"note: .bulletin/cache/renders.pickle: cannot save the cache: {fix}"
    assert "feeds: 17 written, 0 unchanged\n" in result.stdout
    built = outputs(site)
    assert run(site, "build").exit_code == 0
    assert outputs(site) == built
