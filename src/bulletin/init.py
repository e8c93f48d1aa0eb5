"""`bulletin init`: a new site that builds, dry-runs a send and serves as it is."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from .errors import RefusedError

# Where each starter file goes, from the package's starter/ folder.
FILES = {
    "bulletin.toml": "bulletin.toml",
    "content/first-item.md": "first-item.md",
    "content/second-item.md": "second-item.md",
    "subscribers.csv": "subscribers.csv",
    ".gitignore": "gitignore",
}


def init_site(folder: Path, now: datetime) -> list[str]:
    """Write a new site into `folder` (created if missing); the paths written. Refuses, and
    writes nothing, when any of them exists, except a .gitignore (a new git repository has
    one), which gets the lines it lacks."""
    existing = [name for name in FILES if name != ".gitignore" and (folder / name).exists()]
    if existing:
        raise RefusedError(
            f"{folder}: {', '.join(existing)} already there; bulletin init never overwrites anything: "
            "choose an empty folder (bulletin init DIR)"
        )
    # The items fall in the last complete week, so the first digest and dry run have them.
    monday = (now - timedelta(days=now.weekday() + 7)).date()
    values = {
        "year": str(now.year),
        "first": (monday + timedelta(days=1)).isoformat(),
        "second": (monday + timedelta(days=3)).isoformat(),
    }
    starter = resources.files("bulletin") / "starter"
    for name, source in FILES.items():
        text = (starter / source).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == ".gitignore" and target.exists():
            _add_lines(target, text)
            continue
        with open(target, "x", encoding="utf-8") as handle:  # never overwrite, even in a race
            handle.write(text)
    return list(FILES)


def _add_lines(path: Path, starter: str) -> None:
    """Append the starter's .gitignore lines that `path` does not have yet, comments with them."""
    text = path.read_text(encoding="utf-8")
    have = {line.strip() for line in text.splitlines()}
    if all(line.startswith("#") or not line.strip() or line.strip() in have for line in starter.splitlines()):
        return
    separator = "" if not text or text.endswith("\n") else "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{separator}\n{starter}" if text.strip() else starter)
