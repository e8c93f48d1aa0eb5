"""The parse and render caches in .bulletin/cache/: disposable, so never a reason to fail."""

from __future__ import annotations

import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bulletin.cache import seal, unseal
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


def build_in_a_process(site: SiteMaker) -> tuple[int, str]:
    """A build in its own process: a corrupt cache must not even crash the interpreter."""
    command = [sys.executable, "-m", "bulletin", "build", "--site", str(site.root), *NOW]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def cache_files(site: SiteMaker) -> dict[Path, bytes]:
    """The parse and render caches, and the compiled templates."""
    return {p: p.read_bytes() for p in sorted((site.root / ".bulletin" / "cache").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_cache_is_dropped_and_rebuilt(site: SiteMaker, damage: str) -> None:
    small_site(site)
    assert build_in_a_process(site) == (0, "")
    built, pristine = outputs(site), cache_files(site)
    names = {p.relative_to(site.root).as_posix() for p in pristine}
    assert {".bulletin/cache/renders.pickle", ".bulletin/cache/items-00.pickle"} <= names
    assert len([name for name in names if name.startswith(".bulletin/cache/templates/")]) >= 8
    for where in (0.0, 0.05, 0.35, 0.7, 1.0):  # the checksum, the pickle's header, …, the last byte
        for path, data in pristine.items():
            at = round(where * (len(data) - 1))
            if damage == "flip":
                path.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])
            else:
                path.write_bytes(data[:at])
        for folder in ("feeds", "emails"):
            shutil.rmtree(site.root / folder)
        code, stderr = build_in_a_process(site)
        assert (code, stderr) == (0, ""), f"{damage} at {where:.0%}"
        assert outputs(site) == built, f"{damage} at {where:.0%}"


def test_every_flipped_bit_and_every_cut_is_caught() -> None:
    data = pickle.dumps(("2026-11-18T09:30:00+00:00", "An item's title", 1234), pickle.HIGHEST_PROTOCOL)
    blob = seal(data)
    assert unseal(blob) == data
    for at in range(len(blob)):
        for bit in range(8):
            assert unseal(blob[:at] + bytes([blob[at] ^ (1 << bit)]) + blob[at + 1 :]) is None, (at, bit)
        assert unseal(blob[:at]) is None, at


def test_a_flipped_letter_in_a_cached_title_never_reaches_the_feeds(site: SiteMaker) -> None:
    small_site(site)
    assert run(site, "build").exit_code == 0
    built = outputs(site)
    damaged = 0
    for path in (site.root / ".bulletin" / "cache").glob("items-*.pickle"):
        data = bytearray(path.read_bytes())
        at = data.find(b"Item 1")
        if at >= 0:
            data[at] ^= 0x20  # "Item 1…" becomes "item 1…": still a valid pickle
            path.write_bytes(bytes(data))
            damaged += 1
    assert damaged
    for folder in ("feeds", "emails"):
        shutil.rmtree(site.root / folder)
    assert (run(site, "build").exit_code, outputs(site)) == (0, built)
