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
    writes nothing, when any of them exists."""
    existing = [name for name in FILES if (folder / name).exists()]
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
        with open(target, "x", encoding="utf-8") as handle:  # never overwrite, even in a race
            handle.write(text)
    return list(FILES)
