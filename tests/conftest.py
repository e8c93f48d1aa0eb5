"""Shared fixtures: sites written into tmp_path from small dicts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bulletin.config import Config, parse_config
from bulletin.site.fields import Fields

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent

BASE_CONFIG: dict[str, Any] = {
    "title": "Test News",
    "base_url": "https://news.example.org/",
    "timezone": "UTC",
}


def same_yaml(fast: Any, slow: Any) -> bool:
    """Equal as front matter: the same types, values, key order, spellings and lines."""
    if type(fast) is not type(slow):
        return False
    if isinstance(fast, Fields):
        return (
            list(fast) == list(slow)
            and fast.lines == slow.lines
            and fast.names == slow.names
            and all(same_yaml(fast[key], slow[key]) for key in fast)
        )
    if isinstance(fast, list):
        return len(fast) == len(slow) and all(same_yaml(a, b) for a, b in zip(fast, slow, strict=True))
    return bool(fast == slow)


@pytest.fixture(autouse=True, scope="session")
def _block_reader_cross_checked() -> Iterator[None]:
    """Every front matter the suite parses in this process goes through every reader: what
    the block reader accepts, libyaml must read to the same data, and the compiled block
    reader (when built) must read exactly as the Python one."""
    from bulletin.errors import ItemError
    from bulletin.site import blockyaml, parse
    from bulletin.site.blockyaml import read_block_yaml
    from bulletin.site.frontmatter import parse_front_matter

    differences: list[str] = []

    def checked(text: str, first_line: int) -> Fields | None:
        fast = read_block_yaml(text, first_line)
        if blockyaml._compiled is not None and text.endswith("\n") and not blockyaml._has_stray(text):
            reference = blockyaml.read_in_python(text, first_line)
            if (fast is None) != (reference is None) or not same_yaml(fast, reference):
                differences.append(text)
        if fast is not None:
            try:
                slow = parse_front_matter(text, first_line)
            except ItemError as exc:
                slow = exc
            if not same_yaml(fast, slow):
                differences.append(text)
        return fast

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(parse, "read_block_yaml", checked)
        yield
    assert not differences, f"the block reader and libyaml differ on: {differences[:3]!r}"


@pytest.fixture(autouse=True, scope="session")
def _walk_cross_checked() -> Iterator[None]:
    """Every walk of content/ the suite makes in this process that the compiled walk (when
    built) answers, the Python walk answers the same: files, order, stamps and no problem."""
    from bulletin.site import walk

    compiled = walk._compiled
    differences: list[str] = []

    def checked(root: str, prefix: str, stamp_type: type[walk.Stamp]) -> Any:
        assert compiled is not None
        found = compiled(root, prefix, stamp_type)
        if found is not None:
            reference = walk.walk_in_python(Path(root))
            if (reference.files, reference.stamps, reference.problems) != (*found, []):
                differences.append(root)
        return found

    with pytest.MonkeyPatch.context() as patched:
        if compiled is not None:
            patched.setattr(walk, "_compiled", checked)
        yield
    assert not differences, f"the compiled and the Python walk differ on: {differences[:3]!r}"


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


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """2,000 seed-shaped items from benchmarks/make_corpus.py, made once per run."""
    folder = tmp_path_factory.mktemp("corpus")
    script = REPO / "benchmarks" / "make_corpus.py"
    subprocess.run(
        [sys.executable, str(script), str(folder), "--items", "2000"], check=True, capture_output=True
    )
    files = sorted(folder.rglob("*.md"))
    assert len(files) == 2000
    return files
