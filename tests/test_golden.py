"""Golden files: the example site (the repository root) built at a fixed clock.

Refresh them, after checking that a change in output is intended, with:

    BULLETIN_REFRESH_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulletin.cli import main

from .conftest import REPO

GOLDEN = Path(__file__).parent / "golden"
NOW = "2026-11-25T12:00"
KEPT = ("feeds/", "emails/2026-W47/", "emails/index.html")


def build_example(target: Path) -> Path:
    site = target / "example"
    shutil.copytree(REPO / "content", site / "content")
    shutil.copytree(REPO / "templates", site / "templates")
    shutil.copy(REPO / "bulletin.toml", site / "bulletin.toml")
    result = CliRunner().invoke(main, ["build", "--site", str(site), "--now", NOW])
    assert result.exit_code == 0, result.output
    return site


def outputs(site: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(site.rglob("*")):
        relative = path.relative_to(site).as_posix()
        if path.is_file() and relative.startswith(KEPT):
            found[relative] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example site, built once for every test of this module."""
    return build_example(tmp_path_factory.mktemp("golden"))


def test_the_example_site_matches_its_golden_files(example: Path) -> None:
    built = outputs(example)
    assert "feeds/atom.xml" in built and "emails/2026-W47/digest.eml" in built
    if os.environ.get("BULLETIN_REFRESH_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for relative, data in built.items():
            (GOLDEN / relative).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / relative).write_bytes(data)
        pytest.skip("golden files refreshed")
    golden = {
        path.relative_to(GOLDEN).as_posix(): path.read_bytes() for path in GOLDEN.rglob("*") if path.is_file()
    }
    assert sorted(built) == sorted(golden)
    for relative, data in built.items():
        assert data == golden[relative], f"{relative} differs from tests/golden/{relative}"


def test_the_example_site_feeds_are_valid(example: Path) -> None:
    import json

    import feedparser
    import jsonschema
    from lxml import etree

    from .conftest import DATA

    site = example
    grammar = etree.RelaxNG(etree.parse(str(DATA / "atom.rng")))
    schema = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text())
    feeds = sorted((site / "feeds").rglob("*.*"))
    assert len([p for p in feeds if p.name == "atom.xml"]) == 8  # everything and 7 topics
    for path in feeds:
        if path.suffix == ".xml":
            assert not feedparser.parse(path.read_bytes()).bozo, path
        if path.name == "atom.xml":
            assert grammar.validate(etree.parse(str(path))), (path, grammar.error_log)
        if path.name == "feed.json":
            jsonschema.validate(json.loads(path.read_bytes()), schema)


def test_published_pages_have_banner_main_and_footer_landmarks(example: Path) -> None:
    """The masthead and footer sat inside <main>: no page had a banner or a contentinfo."""
    pages = [*sorted((example / "feeds").rglob("*.html")), example / "emails" / "index.html"]
    for path in pages:
        page = path.read_text(encoding="utf-8")
        header, main, end, footer = (page.index(tag) for tag in ("<header", "<main>", "</main>", "<footer"))
        assert header < main < end < footer, path
