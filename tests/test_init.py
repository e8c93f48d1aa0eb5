"""`bulletin init`: a new site that builds and dry-runs a send with no edit at all."""

from __future__ import annotations

import mailbox
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
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "first-item.md").write_text("mine")
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 3
    assert "content/first-item.md already there; bulletin init never overwrites anything" in result.stderr
    assert (tmp_path / "content" / "first-item.md").read_text() == "mine"
    assert not (tmp_path / "bulletin.toml").exists()
