"""Shared fixtures: sites written into tmp_path from small dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bulletin.config import Config, parse_config

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent

BASE_CONFIG: dict[str, Any] = {
    "title": "Test News",
    "base_url": "https://news.example.org/",
    "timezone": "UTC",
}


def front_matter(fields: dict[str, Any], body: str = "<p>Body.</p>") -> str:
    """An item file's text from a dict of fields."""
    text = yaml.safe_dump(fields, allow_unicode=True, sort_keys=False)
    return f"---\n{text}---\n{body}\n"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_toml(path: Path, data: dict[str, Any]) -> None:
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, values in data.items():
        if isinstance(values, dict):
            lines.append(f"\n[{table}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class SiteMaker:
    """Writes a site folder: bulletin.toml and content/ files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config_data: dict[str, Any] = {k: v for k, v in BASE_CONFIG.items()}
        (root / "content").mkdir(parents=True, exist_ok=True)
        self.write_config()

    def write_config(self, **changes: Any) -> None:
        self.config_data.update(changes)
        write_toml(self.root / "bulletin.toml", self.config_data)

    def item(self, name: str, body: str = "<p>Body.</p>", **fields: Any) -> Path:
        """Write content/<name> from fields; a title and date are filled in when absent."""
        fields.setdefault("title", f"Item {name}")
        fields.setdefault("date", "2026-11-18")
        if not {"link", "href", "original", "openProjectCustomFields"} & set(fields):
            # A curated item points at its article: without one bulletin warns (a lint).
            fields["href"] = f"https://source.example/{name.rsplit('.', 1)[0]}"
        return self.raw(name, front_matter(fields, body))

    def raw(self, name: str, text: str | bytes) -> Path:
        path = self.root / "content" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", newline="")
        return path

    def config(self) -> Config:
        return parse_config(self.root, dict(self.config_data))


@pytest.fixture
def site(tmp_path: Path) -> SiteMaker:
    return SiteMaker(tmp_path / "site")


class Counter:
    """How many times something ran."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def premailer_runs(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts premailer's inlining passes (the expensive step of rendering a digest)."""
    import premailer

    counter = Counter()
    transform = premailer.Premailer.transform

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter.count += 1
        return transform(self, *args, **kwargs)

    monkeypatch.setattr(premailer.Premailer, "transform", counting)
    return counter
