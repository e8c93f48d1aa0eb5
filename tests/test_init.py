"""`bulletin init`: a new site that builds and dry-runs a send with no edit at all."""

from __future__ import annotations

import mailbox
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulletin.cli import main


def test_init_then_build_and_a_dry_run_work_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["init", "news"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("A new site in news: bulletin.toml, content/first-item.md")
    assert "  cd news\n" in result.stdout
    monkeypatch.chdir(tmp_path / "news")
    built = runner.invoke(main, ["build"])
    assert built.exit_code == 0, built.output
    assert built.stdout.startswith("2 items in 2 topics from 2 files\n") and built.stderr == ""
    assert (tmp_path / "news" / "feeds" / "topic" / "first-topic" / "atom.xml").is_file()
    env = {"BULLETIN_SECRET": "a-throwaway-secret-123"}
    sent = runner.invoke(main, ["send", "--dry-run", "--subscribers", "subscribers.csv"], env=env)
    assert sent.exit_code == 0, sent.output
    assert " 2 written to .bulletin/outbox," in sent.stdout
    assert len(mailbox.Maildir(tmp_path / "news" / ".bulletin" / "outbox")) == 2


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "subscribers.csv").write_text("mine")
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 3
    assert "subscribers.csv already there; bulletin init never overwrites anything" in result.stderr
    assert (tmp_path / "subscribers.csv").read_text() == "mine"
    assert not (tmp_path / "bulletin.toml").exists() and not (tmp_path / "content").exists()


def test_init_refuses_a_folder_inside_another_sites_content(tmp_path: Path) -> None:
    """That site would publish the starter items as its own, a second copy of each."""
    assert CliRunner().invoke(main, ["init", str(tmp_path / "news")]).exit_code == 0
    inner = tmp_path / "news" / "content" / "sub"
    result = CliRunner().invoke(main, ["init", str(inner)])
    assert result.exit_code == 3
    assert (
        f"{inner}: inside {tmp_path / 'news' / 'content'}, so the site in {tmp_path / 'news'}"
        in result.stderr
    )
    assert not inner.exists()
    beside = CliRunner().invoke(main, ["init", str(tmp_path / "news" / "other")])  # not in content/
    assert beside.exit_code == 0, beside.output


def test_init_refuses_a_folder_inside_another_sites_linked_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """content/ a link to a folder elsewhere: the path as given, and as the shell has it."""
    assert CliRunner().invoke(main, ["init", str(tmp_path / "news")]).exit_code == 0
    shared = tmp_path / "shared"
    (tmp_path / "news" / "content").rename(shared)
    (tmp_path / "news" / "content").symlink_to(shared)
    result = CliRunner().invoke(main, ["init", str(tmp_path / "news" / "content" / "sub")])
    assert result.exit_code == 3 and "so the site in" in result.stderr
    monkeypatch.chdir(tmp_path / "news" / "content")  # getcwd() says .../shared
    monkeypatch.setenv("PWD", str(tmp_path / "news" / "content"))
    relative = CliRunner().invoke(main, ["init", "sub"])
    assert relative.exit_code == 3 and f"so the site in {tmp_path / 'news'}" in relative.stderr
    assert not (shared / "sub").exists()
    lost = CliRunner().invoke(main, ["topics"])  # run in the wrong folder: the site is named
    assert f"the site is {tmp_path / 'news'}: run bulletin there" in lost.stderr


@pytest.mark.parametrize(
    "args", [["--site", "{dir}", "init"], ["init", "--site", "{dir}"], ["init", "{dir}"]]
)
def test_init_writes_into_the_site_folder_however_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """`bulletin --site DIR init` used to write the starter into the current folder."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "news"
    result = CliRunner().invoke(main, [a.format(dir=folder) for a in args])
    assert result.exit_code == 0, result.output
    assert (folder / "bulletin.toml").is_file() and (folder / "content" / "first-item.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news"]


@pytest.mark.parametrize("site", ["a", "."])
def test_init_refuses_two_different_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--site", site, "init", "b"])  # "." given is not the default
    assert result.exit_code == 2
    assert "two folders given" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_in_a_new_git_repository_adds_to_its_gitignore(tmp_path: Path) -> None:
    """A fresh repository often has a .gitignore already: init adds its lines instead of
    refusing, and keeps .bulletin/slugs.json (the published slugs) out of the ignored state."""
    git = shutil.which("git")
    (tmp_path / ".gitignore").write_text("*.log")  # no final line break
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / ".gitignore").read_text()
    assert text.startswith("*.log\n\n# bulletin's output") and "/.bulletin/*\n" in text
    assert CliRunner().invoke(main, ["init", str(tmp_path)]).exit_code == 3  # the rest is there now
    assert (tmp_path / ".gitignore").read_text() == text
    if git is None:
        return
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".bulletin").mkdir()
    for name in ("slugs.json", "ledger.sqlite", "cache/items-00.pickle"):
        (tmp_path / ".bulletin" / name).parent.mkdir(exist_ok=True)
        (tmp_path / ".bulletin" / name).write_text("x")
    ignored = subprocess.run(
        [git, "-C", str(tmp_path), "check-ignore", ".bulletin/slugs.json", ".bulletin/ledger.sqlite",
         ".bulletin/cache/items-00.pickle", "app.log", "feeds/rss.xml"],
        capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert ignored == [
        ".bulletin/ledger.sqlite",
        ".bulletin/cache/items-00.pickle",
        "app.log",
        "feeds/rss.xml",
    ]


@pytest.mark.parametrize("kind", ["folder", "link", "dangling link"])
def test_init_refuses_a_gitignore_that_is_not_a_plain_file_and_writes_nothing(
    tmp_path: Path, kind: str
) -> None:
    """A folder or link named .gitignore used to stop init with a traceback half-way,
    bulletin.toml written, and every later init refused."""
    target = tmp_path / "site"
    target.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("mine\n")
    if kind == "folder":
        (target / ".gitignore").mkdir()
    else:
        (target / ".gitignore").symlink_to(elsewhere if kind == "link" else tmp_path / "missing")
    result = CliRunner().invoke(main, ["init", str(target)])
    assert result.exit_code == 3, result.output
    assert "is not a plain file (a link or a folder)" in result.stderr
    assert sorted(p.name for p in target.iterdir()) == [".gitignore"]
    assert elsewhere.read_text() == "mine\n"  # a link is never written through


def test_init_adds_only_the_gitignore_lines_missing_and_says_when_slugs_stay_out(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_bytes(b"/feeds/\n/.bulletin/\ncaf\xe9.log\n")  # not UTF-8 either
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / ".gitignore").read_bytes()
    assert text.startswith(b"/feeds/\n/.bulletin/\ncaf\xe9.log\n\n")
    assert text.count(b"/feeds/") == 1 and b"/emails/\n" in text and b"!/.bulletin/slugs.json\n" in text
    assert "note: .gitignore:2: '/.bulletin/' ignores the whole folder" in result.stderr


def test_init_where_no_folder_can_be_made_says_so(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(main, ["init", str(tmp_path / "file" / "news")])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"bulletin: {tmp_path / 'file'}")
    assert "cannot create the site there: Not a directory; choose another folder" in result.stderr


def test_the_next_steps_name_a_folder_reached_through_dotdot_by_its_whole_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    result = CliRunner().invoke(main, ["init", "../news"])
    assert result.exit_code == 0, result.output
    assert f"  cd {(tmp_path / 'news').resolve()}\n" in result.stdout


def test_init_around_a_folder_of_items_adds_no_starter_items(tmp_path: Path) -> None:
    """A curation tool's export first, then init: the two examples were published beside them."""
    from datetime import UTC, datetime, timedelta

    (tmp_path / "content" / "news").mkdir(parents=True)
    last_week = (datetime.now(UTC) - timedelta(days=7)).date().isoformat()
    (tmp_path / "content" / "news" / "real.md").write_text(
        f"---\ntitle: Real\ndate: '{last_week}'\ncategories: [Cybersecurity]\nhref: https://x.example/a\n---\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "content/ holds items already: no starter items were added beside them" in result.stdout
    assert sorted(p.name for p in (tmp_path / "content").rglob("*.md")) == ["real.md"]
    assert (tmp_path / "bulletin.toml").is_file()
    # Its rows name no starter topic, which these items do not have: the suggested dry run works.
    assert (tmp_path / "subscribers.csv").read_text(encoding="utf-8") == (
        "email,name,topics\nreader@example.org,Dana Reader,\nsecond@example.org,,\n"
    )
    env = {"BULLETIN_SECRET": "a-throwaway-secret-123"}
    csv = str(tmp_path / "subscribers.csv")
    sent = CliRunner().invoke(
        main, ["send", "--dry-run", "--subscribers", csv, "--site", str(tmp_path)], env=env
    )
    assert (sent.exit_code, sent.stderr) == (0, ""), sent.output
