"""Docs cannot drift: the README shows every command and key, and the commands CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import bulletin
from bulletin.cli import main
from bulletin.config import BrandConfig, DigestConfig, SmtpConfig, WebConfig
from bulletin.ledger import Ledger
from bulletin.tokens import make_token

from .conftest import REPO, SiteMaker

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_command_is_in_the_readme_with_help() -> None:
    for name, command in main.commands.items():  # type: ignore[attr-defined]
        assert f"bulletin {name}" in README, name
        assert command.help, name
        assert CliRunner().invoke(main, [name, "--help"]).exit_code == 0


def test_every_configuration_key_is_documented() -> None:
    top = ["title", "description", "base_url", "site_url", "language", "timezone", "author", "links",
           "feed_items", "feed_content_kb", "id_host", "id_date"]  # fmt: skip
    digest = ["from" if f == "sender" else f for f in DigestConfig.__dataclass_fields__]
    for key in top:
        assert f"`{key}`" in README or f"`{key}`," in README, key
    for key in digest:
        assert f"digest.{key}" in README, key
    for key in SmtpConfig.__dataclass_fields__:
        assert f"smtp.{key}" in README or f"`{key}`" in README, key
    for key in WebConfig.__dataclass_fields__:
        assert f"web.{key}" in README, key
    for key in BrandConfig.__dataclass_fields__:
        assert f"brand.{key}" in README, key


def test_the_two_first_commands_are_what_ci_runs() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    install, tests = blocks[0].strip(), blocks[1].strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert install in ci and "bulletin build" in install
    assert tests in ci and "pytest" in tests


@pytest.mark.skipif(sys.platform == "win32", reason="builds a wheel with the local toolchain")
def test_the_wheel_ships_the_templates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("bulletin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if "/templates/" in n}
    expected = {p.name for p in (REPO / "src/bulletin/templates").iterdir()}
    assert shipped == expected
    starter = {Path(n).name for n in names if "/starter/" in n}
    assert starter == {p.name for p in (REPO / "src/bulletin/starter").iterdir()}
    assert "bulletin/py.typed" in names


def test_the_readme_python_example_runs(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", README, re.S)
    secret = "a-secret-of-twenty-characters"
    monkeypatch.setenv("BULLETIN_SECRET", secret)
    site.write_config(digest={"unsubscribe_url": "https://news.example.org/u/{token}"})
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite", create=True):
        pass
    namespace: dict[str, Any] = {}
    exec(block.replace('"/srv/news"', repr(str(site.root))), namespace)
    list_id = site.config().digest.list_id
    assert namespace["unsubscribe"](make_token("ann@example.org", secret, list_id)) is True
    assert namespace["unsubscribe"]("ann@example.org") is False  # an address is not a token
    assert (
        namespace["unsubscribe"](make_token("bob@example.org", "another-secret-entirely", list_id)) is False
    )
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        assert ledger.suppressed() == {"ann@example.org": "unsubscribed"}


def test_the_package_docstring_example_runs(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    after = bulletin.__doc__.split("::\n", 1)[1]  # type: ignore[union-attr]
    example = re.match(r"(?:\n|    .*\n)+", after).group(0)  # type: ignore[union-attr]
    site.item("news/a.md", categories=["Alpha"], date="2026-11-18")
    monkeypatch.chdir(site.root)
    exec(textwrap.dedent(example), {})
    assert capsys.readouterr().out == "1 items; 9 files written\n"  # 3 + 3 feeds, 3 pages
    assert (site.root / "feeds" / "topic" / "alpha" / "atom.xml").is_file()


def test_every_fenced_block_in_the_readme_is_closed() -> None:
    # A closing fence with text after it (```` ``` Handled ````) closes nothing: the prose
    # after it would render as code, and every fence below would pair with the wrong one.
    from markdown_it import MarkdownIt

    lines = README.splitlines()
    fences = [token for token in MarkdownIt("commonmark").parse(README) if token.type == "fence"]
    assert fences
    for fence in fences:
        assert fence.map is not None
        start, end = fence.map
        assert lines[end - 1].strip() == fence.markup, f"README.md:{start + 1}: the block is not closed"
        inside = [line for line in fence.content.splitlines() if line.lstrip().startswith(fence.markup)]
        assert inside == [], f"README.md:{start + 1}: a fence marker inside the block: {inside}"


def test_the_readme_quotes_the_message_of_a_bad_date(site: SiteMaker) -> None:
    (quoted,) = re.findall(r"^content/news/x\.md:14: error: .*$", README, re.M)
    fields = "".join(f"field{n}: {n}\n" for n in range(2, 13))  # lines 2-12, then title and date
    site.raw("news/x.md", f"---\n{fields}title: X\ndate: '2022-13-45'\n---\nBody\n")
    result = CliRunner().invoke(main, ["check", "--site", str(site.root)])
    assert result.exit_code == 1
    assert result.stderr == quoted + "\n"


def test_the_readme_says_what_an_item_id_is_without_an_id_field(site: SiteMaker) -> None:
    ((path, said),) = re.findall(r"the id of `content/([^`]+)` is `([^`]+)`", README)
    site.item(path, categories=["Alpha"])
    assert CliRunner().invoke(main, ["feeds", "--site", str(site.root)]).exit_code == 0
    atom = (site.root / "feeds" / "atom.xml").read_text(encoding="utf-8")
    assert f"<id>tag:news.example.org,2000:{said}</id>" in atom
