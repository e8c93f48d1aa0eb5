"""The walk of content/: every item file, once, in a stable order, nothing outside the site.

Apart from the reader, so that a rebuild with nothing to do (see unchanged.py) can walk the
folder without loading what parses items.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import Stamp, Stamps
from ..report import Level, Problem

CONTENT_SUFFIXES = (".md", ".markdown", ".html")


@dataclass
class Walked:
    """A walk of content/: the item files in order, each one's stamp as the walk found it
    (Stamp(-1, -1, -1, -1) when it could not be stat'ed), and what the walk could not read."""

    files: list[tuple[str, str]] = field(default_factory=list)
    stamps: list[Stamp] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    _hashed: Stamps | None = field(default=None, repr=False)

    def release(self) -> None:
        """Drop the file list and stamps (keeping their hash): at 100,000 files they hold
        35 MB that a build needs no more once it has read them."""
        self.hashed()
        self.files, self.stamps = [], []

    def hashed(self) -> Stamps:
        """Every file's path and stamp, hashed in order (once)."""
        if self._hashed is None:
            self._hashed = Stamps()
            for (relpath, _), stamp in zip(self.files, self.stamps, strict=True):
                self._hashed.add(relpath, stamp)
        return self._hashed


def walk_items(content_dir: Path) -> Walked:
    """Every item file and its stamp: what a run compares, and then reads."""
    walked = Walked()
    for relpath, path in find_item_files(content_dir, walked.problems):
        try:
            stamp = Stamp.of(os.stat(path))
        except OSError:
            stamp = Stamp(-1, -1, -1, -1)  # reading it says why
        walked.files.append((relpath, path))
        walked.stamps.append(stamp)
    return walked


def find_item_files(content_dir: Path, problems: list[Problem] | None = None) -> Iterator[tuple[str, str]]:
    """Every item file under content/ as (path relative to the site, path to open), any
    depth, hidden files and folders skipped, in a stable order. Strings, not Paths: this
    runs for every file on every build.

    What is not read is added to `problems`: folders that cannot be listed, links to a folder
    already read (a loop, or a second way to the same items), and links that lead out of the
    site folder, which must not publish whatever they point to."""
    walk = _Walk(content_dir, [] if problems is None else problems)
    stack = [("", walk.root)]
    while stack:
        relative, folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            walk.problem(f"{walk.prefix}/{relative}", "error", _unreadable_folder(exc))
            continue
        folders = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            relpath = f"{walk.prefix}/{relative}{name}"
            if _is_dir(entry):
                if not name.startswith("_") and walk.enter(entry, relpath):
                    folders.append((f"{relative}{name}/", entry.path))
            elif name.endswith(CONTENT_SUFFIXES) and walk.stays_inside(entry, relpath):
                yield relpath, entry.path
        stack.extend(reversed(folders))


class _Walk:
    """The folders a walk of content/ has entered, so that no link takes it round again."""

    def __init__(self, content_dir: Path, problems: list[Problem]) -> None:
        self.root = os.fspath(content_dir)
        self.prefix = content_dir.name
        self.problems = problems
        self.site = os.path.realpath(content_dir.parent)
        self.content = os.path.realpath(content_dir)
        self.seen: set[tuple[int, int]] = set()
        with contextlib.suppress(OSError):
            info = os.stat(self.root)
            self.seen.add((info.st_dev, info.st_ino))

    def problem(self, path: str, level: Level, message: str) -> None:
        self.problems.append(Problem(path, None, level, message))

    def stays_inside(self, entry: os.DirEntry[str], relpath: str) -> bool:
        """False, and a warning, for a link that leads out of the site (and out of content/,
        which may itself be a link to another disk)."""
        if not entry.is_symlink():
            return True
        target = os.path.realpath(entry.path)
        if self._within(target, self.site) or self._within(target, self.content):
            return True
        fix = "copy it into the site or remove the link"
        self.problem(relpath, "warning", f"is a link to {target}, outside the site folder; not read: {fix}")
        return False

    def enter(self, entry: os.DirEntry[str], relpath: str) -> bool:
        """True to walk into this folder: not one that the walk reaches anyway, nor one outside."""
        if not self.stays_inside(entry, relpath):
            return False
        try:
            info = entry.stat()
        except OSError as exc:
            self.problem(relpath + "/", "error", _unreadable_folder(exc))
            return False
        identity = (info.st_dev, info.st_ino)
        # A link to a folder inside content/ is a second way to items read anyway.
        link = entry.is_symlink() and os.path.realpath(entry.path)
        if identity in self.seen or (link and self._within(link, self.content)):
            shown = self._shown(link or os.path.realpath(entry.path))
            self.problem(
                relpath,
                "warning",
                f"is a link to {shown}/, which is already read; not read twice: remove the link",
            )
            return False
        self.seen.add(identity)
        return True

    def _shown(self, target: str) -> str:
        """A folder as the site's author knows it: content/…, else relative to the site."""
        if self._within(target, self.content):
            inner = os.path.relpath(target, self.content)
            return self.prefix if inner == "." else f"{self.prefix}/{inner}".replace(os.sep, "/")
        return os.path.relpath(target, self.site).replace(os.sep, "/")

    @staticmethod
    def _within(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link that cannot be followed (a loop): read as a file, reported then
        return False


def _unreadable_folder(exc: OSError) -> str:
    return f"folder cannot be read: {exc.strerror}; its items are skipped: {fix_for(exc)}"


def fix_for(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "give bulletin's user permission to read it, or move it out of content/"
    return "fix or remove it"
