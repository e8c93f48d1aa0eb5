"""The walk of content/: every item file, once, in a stable order, nothing outside the site.

Apart from the reader, so that a rebuild with nothing to do (see unchanged.py) can walk the
folder without loading what parses items.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import operator
import os
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from ..errors import NoContentError
from ..report import Level, Problem

CONTENT_SUFFIXES = (".md", ".markdown", ".html")  # and in _walk.c

_compiled: Callable[[str, str, type[Stamp]], tuple[list[tuple[str, str]], list[Stamp]] | None] | None
try:
    from ._walk import walk as _compiled
except ImportError:  # installed without a C compiler
    _compiled = None


class Stamp(NamedTuple):
    """What the file system says about a file; ctime moves on every write and cannot be set.
    (A tuple: a walk makes one per item file, and a tuple is made several times faster.)"""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


class Stamps:
    """A hash of files' paths and stamps in the order the walk found them, and the newest
    change among them: what a run read, to tell the next run whether anything changed."""

    def __init__(self, files: list[tuple[str, str]], stamps: list[Stamp]) -> None:
        # The paths joined, then every stamp's numbers as one array: a third of the time of
        # formatting each file's line, on the path of a rebuild with nothing to do. Both are
        # kept, to tell which files changed (patch.py): 0.85 MB at 10,000 files.
        self.paths = "\0".join([relpath for relpath, _ in files]).encode()
        self._hash = hashlib.sha256(self.paths)
        self.numbers: bytes | None  # four per file; None if one does not fit in 64 bits
        try:
            self.numbers = numbers = array("q", chain.from_iterable(stamps)).tobytes()
        except OverflowError:  # an inode number past 2**63 (some network file systems)
            self.numbers, numbers = None, "\n".join(map(str, chain.from_iterable(stamps))).encode()
        self._hash.update(numbers)
        self.newest_ns = (
            max(max(s.mtime_ns for s in stamps), max(s.ctime_ns for s in stamps)) if stamps else 0
        )

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


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
            self._hashed = Stamps(self.files, self.stamps)
        return self._hashed


def walk_items(content_dir: Path) -> Walked:
    """Every item file under content/ and its stamp: what a run compares, and then reads.

    Files are (path relative to the site, path to open), any depth, hidden files and folders
    skipped, in a stable order. Strings, not Paths: this runs for every file on every build.

    What is not read is added to the walk's problems: folders that cannot be listed, links
    to a folder already read (a loop, or a second way to the same items), and links that
    lead out of the site folder, which must not publish whatever they point to.

    The compiled walk (_walk.c, when built) takes the sites with nothing of the kind, in
    about 19 ms against 30 for 10,000 files; anything it has no rule for, it leaves to
    walk_in_python, which has them all."""
    if _compiled is not None:
        found = _compiled(os.fspath(content_dir), content_dir.name, Stamp)
        if found is not None:
            return Walked(*found)
    return walk_in_python(content_dir)


def walk_in_python(content_dir: Path) -> Walked:
    """walk_items' rules, every one of them."""
    walked = Walked()
    files, stamps = walked.files, walked.stamps
    walk = _Walk(content_dir, walked.problems)
    stack = [("", walk.root)]
    while stack:
        relative, folder = stack.pop()
        try:
            entries, descriptor = _listing(folder)
        except OSError as exc:
            if not relative:
                raise NoContentError(_no_content(content_dir, exc)) from None
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):  # else gone meanwhile
                walk.problem(f"{walk.prefix}/{relative}", "error", _unreadable_folder(exc))
            continue
        folders = []
        base = folder if folder.endswith(os.sep) else folder + os.sep
        prefix = f"{walk.prefix}/{relative}"
        try:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                if not name.isascii() and not _is_text(name):
                    walk.not_text(entry, prefix, name)
                    continue
                path, relpath = base + name, prefix + name
                if _is_dir(entry):
                    if not name.startswith("_") and walk.enter(entry, path, relpath):
                        folders.append((f"{relative}{name}/", path))
                elif not name.endswith(CONTENT_SUFFIXES):
                    if entry.is_symlink() and not name.startswith("_") and not os.path.exists(path):
                        walk.dangling(path, relpath)  # a folder on a disk not mounted, most likely
                    elif name.lower().endswith(CONTENT_SUFFIXES):
                        walk.upper_case(relpath, name)
                elif not entry.is_symlink() or walk.stays_inside(entry, path, relpath):
                    try:  # not entry.stat(): each DirEntry would keep its stat until the folder ends
                        info = os.stat(path) if descriptor is None else os.stat(name, dir_fd=descriptor)
                        stamp = Stamp(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
                    except OSError:
                        stamp = Stamp(-1, -1, -1, -1)  # reading it says why
                    files.append((relpath, path))
                    stamps.append(stamp)
        finally:
            if descriptor is not None:
                os.close(descriptor)
        stack.extend(reversed(folders))
    return walked


# Listed through a descriptor, a folder's files are stat'ed by name, not by their whole path
# from the root: a walk of 10,000 files, most of a rebuild with nothing to do, 46 to 38 ms.
_BY_DESCRIPTOR = os.scandir in os.supports_fd and os.stat in os.supports_dir_fd


def _listing(folder: str) -> tuple[list[os.DirEntry[str]], int | None]:
    """The folder's entries by name, and the descriptor to close once they are stat'ed."""
    if not _BY_DESCRIPTOR:
        return sorted(os.scandir(folder), key=_name), None
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return sorted(os.scandir(descriptor), key=_name), descriptor
    except BaseException:
        os.close(descriptor)
        raise


_name = operator.attrgetter("name")


class _Walk:
    """The folders a walk of content/ has entered, so that no link takes it round again."""

    def __init__(self, content_dir: Path, problems: list[Problem]) -> None:
        self.root = os.fspath(content_dir)
        self.prefix = content_dir.name
        self.problems = problems
        self.site = os.path.realpath(content_dir.parent)
        self.content = os.path.realpath(content_dir)
        # What bulletin writes beside content/: read as items, its pages would be errors.
        self.outputs = [os.path.realpath(os.path.join(self.site, name)) for name in _OUTPUTS]
        self.seen: set[tuple[int, int]] = set()
        with contextlib.suppress(OSError):
            info = os.stat(self.root)
            self.seen.add((info.st_dev, info.st_ino))

    def problem(self, path: str, level: Level, message: str) -> None:
        self.problems.append(Problem(path, None, level, message))

    def upper_case(self, relpath: str, name: str) -> None:
        """A warning for an item file whose suffix is not in lower case (Story.MD): it looks
        like an item, and is not read."""
        stem, dot, suffix = name.rpartition(".")
        rename = f"rename it {stem}{dot}{suffix.lower()}"
        self.problem(relpath, "warning", f"not read: item files end in .md, .markdown or .html; {rename}")

    def not_text(self, entry: os.DirEntry[str], prefix: str, name: str) -> None:
        """An error for an item file or folder whose name is not UTF-8: it could be neither
        a page's address nor a line of the report as it is."""
        folder = _is_dir(entry)
        if folder or name.endswith(CONTENT_SUFFIXES):
            shown = os.fsencode(name).decode("utf-8", "backslashreplace") + ("/" if folder else "")
            self.problem(prefix + shown, "error", "its name is not UTF-8 text; not read: rename it")

    def dangling(self, path: str, relpath: str) -> None:
        """An error for a link that leads nowhere: whatever it held is not read."""
        try:
            target = os.readlink(path)
        except OSError:  # gone meanwhile
            return
        message = f"is a link to {target}, which is not there; what it holds is not read: mount or fix it"
        self.problem(relpath, "error", message)

    def stays_inside(self, entry: os.DirEntry[str], path: str, relpath: str) -> bool:
        """False, and a warning, for a link that leads out of the site (and out of content/,
        which may itself be a link to another disk). `path`: the entry's, to open."""
        if not entry.is_symlink():
            return True
        target = os.path.realpath(path)
        output = next((folder for folder in self.outputs if self._within(target, folder)), None)
        if output is not None and not self._within(target, self.content):
            shown = os.path.basename(output)
            message = f"is a link into {shown}/, which bulletin writes; not read: remove the link"
            self.problem(relpath, "warning", message)
            return False
        if self._within(target, self.site) or self._within(target, self.content):
            return True
        fix = "copy it into the site or remove the link"
        self.problem(relpath, "warning", f"is a link to {target}, outside the site folder; not read: {fix}")
        return False

    def enter(self, entry: os.DirEntry[str], path: str, relpath: str) -> bool:
        """True to walk into this folder: not one that the walk reaches anyway, nor one outside."""
        if not self.stays_inside(entry, path, relpath):
            return False
        try:
            info = entry.stat()
        except OSError as exc:
            self.problem(relpath + "/", "error", _unreadable_folder(exc))
            return False
        identity = (info.st_dev, info.st_ino)
        # A link to a folder inside content/ is a second way to items read anyway.
        link = entry.is_symlink() and os.path.realpath(path)
        # The site folder (or a folder that holds it or content/): its outputs are no items.
        if (
            link
            and link != self.content
            and (self._within(self.content, link) or self._within(self.site, link))
        ):
            where = "the site folder" if link == self.site else f"{self._shown(link)}/"
            message = f"is a link to {where}, which holds {self.prefix}/ itself; not read: remove the link"
            self.problem(relpath, "warning", message)
            return False
        if identity in self.seen or (link and self._within(link, self.content)):
            shown = self._shown(link or os.path.realpath(path))
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


_OUTPUTS = ("feeds", "emails", ".bulletin")


def _is_text(name: str) -> bool:
    """False for a name that is not UTF-8 (Python keeps its bytes as lone surrogates)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link that cannot be followed (a loop): read as a file, reported then
        return False


def _no_content(content_dir: Path, exc: OSError) -> str:
    """Why no item can be read at all, and that nothing was written because of it (a build
    would otherwise empty every feed; `check` and `topics` stop too, and say the same)."""
    name = f"{content_dir.name}/"
    nothing = "bulletin stops and writes nothing"
    if exc.errno == errno.ELOOP:
        return f"{name}: error: is a link that leads back to itself; {nothing}: fix the link"
    if content_dir.is_symlink() and not content_dir.exists():
        target = os.readlink(content_dir)
        return f"{name}: error: is a link to {target}, which is not there; {nothing}: mount or fix it"
    if isinstance(exc, FileNotFoundError):
        return (
            f"{name}: error: is missing; {nothing}: run in the site's folder, give --site, or create {name}"
        )
    if isinstance(exc, NotADirectoryError):
        return f"{name}: error: is a file, not a folder; {nothing}: items go in a folder named {name}"
    return f"{name}: error: cannot be read: {exc.strerror}; {nothing}: {fix_for(exc)}"


def _unreadable_folder(exc: OSError) -> str:
    return f"folder cannot be read: {exc.strerror}; its items are skipped: {fix_for(exc)}"


def fix_for(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "give bulletin's user permission to read it, or move it out of content/"
    return "fix or remove it"
