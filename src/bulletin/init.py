"""`bulletin init`: a new site that builds, dry-runs a send and serves as it is."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from .errors import RefusedError
from .files import as_given

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
    # A folder of items already (a curation tool's export): the site is built around them,
    # and the starter items stay out of it, or they would be published beside the real ones.
    has_items = _has_items(folder)
    files = {
        name: source for name, source in FILES.items() if not (has_items and name.startswith("content/"))
    }
    existing = [name for name in files if name != ".gitignore" and (folder / name).exists()]
    ignore = folder / ".gitignore"
    if ignore.is_symlink() or (ignore.exists() and not ignore.is_file()):
        raise RefusedError(
            f"{ignore}: is not a plain file (a link or a folder); bulletin init adds its lines to a "
            "plain .gitignore only: replace it with one, or remove it"
        )
    if existing:
        raise RefusedError(
            f"{folder}: {', '.join(existing)} already there; bulletin init never overwrites anything: "
            "choose an empty folder (bulletin init DIR)"
        )
    outer = _enclosing_site(folder)
    if outer is not None:
        raise RefusedError(
            f"{folder}: inside {outer / 'content'}, so the site in {outer} would publish the new "
            f"site's starter items as its own; choose a folder outside {outer / 'content'}"
        )
    # The items fall in the last complete week, so the first digest and dry run have them.
    monday = (now - timedelta(days=now.weekday() + 7)).date()
    values = {
        "year": str(now.year),
        "first": (monday + timedelta(days=1)).isoformat(),
        "second": (monday + timedelta(days=3)).isoformat(),
        # The starter items' topic; items of its own have none such: every topic, then.
        "topic": "" if has_items else "first-topic",
    }
    starter = resources.files("bulletin") / "starter"
    for name, source in files.items():
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
    return list(files)


def _has_items(folder: Path) -> bool:
    """Whether `folder`/content holds an item file already, at any depth."""
    from .site.walk import CONTENT_SUFFIXES

    content = folder / "content"
    return content.is_dir() and any(
        path.is_file() and path.name.endswith(CONTENT_SUFFIXES) for path in content.rglob("*")
    )


def _enclosing_site(folder: Path) -> Path | None:
    """The site whose content/ holds `folder`, if any: it reads every item file under it.
    Both the path as given and as resolved count: content/ may be a link to elsewhere."""
    try:
        resolved = folder.resolve()
    except OSError:  # the working folder was deleted: writing will say so
        resolved = folder
    for where in (as_given(folder), resolved):
        for parent in where.parents:
            if (parent / "bulletin.toml").is_file() and where.is_relative_to(parent / "content"):
                return parent
    return None


def _add_lines(path: Path, starter: str) -> None:
    """Append the starter's .gitignore rules that `path` does not have yet, each with the
    comment above it (bytes in another encoding are kept as they are)."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    have = {line.strip() for line in text.splitlines()}
    added: list[str] = []
    comments: list[str] = []
    for line in starter.splitlines():
        if line.startswith("#") or not line.strip():
            comments.append(line)
        elif line.strip() not in have:
            added.extend([*comments, line])
            comments = []
        else:
            comments = []
    if not added:
        return
    separator = "" if not text or text.endswith("\n") else "\n"
    block = "\n".join(added) + "\n"
    with open(path, "a", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(f"{separator}\n{block}" if text.strip() else block)


def hidden_slugs(folder: Path) -> str | None:
    """A note when the site's .gitignore ignores .bulletin/ as a whole: git cannot take
    .bulletin/slugs.json back in then, whatever line comes after."""
    try:
        lines = (folder / ".gitignore").read_bytes().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for number, line in enumerate(lines, start=1):
        if line.strip() in (".bulletin", ".bulletin/", "/.bulletin", "/.bulletin/"):
            return (
                f".gitignore:{number}: '{line.strip()}' ignores the whole folder, so .bulletin/slugs.json "
                "(the published slug of each topic) stays out of the repository: write /.bulletin/* instead"
            )
    return None
