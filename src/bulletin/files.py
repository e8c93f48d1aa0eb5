"""Files on disk: written atomically, and only when their bytes change."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

# mkstemp creates files only the owner can read; published files follow the umask instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(
    path: Path, data: bytes, durable: bool = True, stats: list[os.stat_result] | None = None
) -> None:
    """Replace `path` with `data` so that readers see the old file or the new one, never half.

    `durable` flushes the data to disk before the rename, so that a crash cannot leave an
    empty file behind either. `stats` gets the new file's stat as written (the rename keeps
    its size, mtime and inode), whatever happens to `path` after.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
            if stats is not None:
                handle.flush()
                stats.append(os.fstat(handle.fileno()))
        os.chmod(temp, 0o666 & ~_UMASK)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def as_given(path: Path) -> Path:
    """`path`, absolute, through the folders the user came through: a relative path joins the
    shell's working folder ($PWD), which keeps links that the process's own (getcwd)
    resolves, when both are the same folder."""
    pwd = os.environ.get("PWD", "")
    # '..' goes where the system takes it (through a link, to the link's parent's), so a
    # path with it is not joined by text.
    if not path.is_absolute() and os.path.isabs(pwd) and ".." not in path.parts:
        with contextlib.suppress(OSError):
            if os.path.samefile(pwd, os.curdir):
                return Path(os.path.normpath(os.path.join(pwd, path)))
    try:
        return Path(os.path.abspath(path))
    except OSError:  # the working folder was deleted: the path as it is will fail on its own
        return path


# What write_atomic's mkstemp names look like: "." + name + "." + 8 of tempfile's characters.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def remove_stale_temporaries(folder: Path, before: float) -> int:
    """Delete the temporary files of write_atomic that a killed run left under `folder`.

    Only files named like write_atomic's and last modified before `before` (the current
    run's start) go, so a run writing at the same time keeps its own. Returns how many.
    """
    removed = 0
    stack = [os.fspath(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:  # not there (yet), or not a folder
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif _TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):  # gone already, or not ours to delete
                    if entry.stat(follow_symlinks=False).st_mtime < before:
                        os.unlink(entry.path)
                        removed += 1
    return removed


def write_if_changed(path: Path, data: bytes, stats: list[os.stat_result] | None = None) -> bool:
    """Write `data` to `path` unless it already holds exactly these bytes; True if written.
    `stats` gets the stat of the file that holds them: taken before it was read, or as written."""
    try:
        stat = path.stat()
        if stat.st_size == len(data) and path.read_bytes() == data:
            if stats is not None:
                stats.append(stat)
            return False
    except (FileNotFoundError, NotADirectoryError):
        pass
    write_atomic(path, data, stats=stats)
    return True


def inside(folder: Path, relative: str) -> Path:
    """`folder / relative`, refusing any path that would leave `folder`."""
    target = (folder / relative).resolve()
    root = folder.resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"{relative!r} would leave {folder}")
    return folder / relative


_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def why_not_written(path: Path, root: Path, exc: OSError) -> str:
    """Why `path` (under `root`) could not be written and what to do, for a message."""
    relative = path.relative_to(root)
    folder = relative.parent.as_posix() + "/"
    if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
        for part in reversed(relative.parents[:-1]):  # feeds, feeds/topic, feeds/topic/x
            if (root / part).is_symlink() and not (root / part).exists():
                target = os.readlink(root / part)
                return f"{part.as_posix()} is a link to {target}, which is not there; mount or fix it"
            if (root / part).exists() and not (root / part).is_dir():
                return f"{part.as_posix()} is not a folder; move it out of the way"
        if path.is_dir():
            return f"{relative.as_posix()} is a folder; move it out of the way"
    if exc.errno in _FULL:
        fix = "free some space"
    elif exc.errno in _DENIED:
        fix = f"make {folder} writable for the user running bulletin"
    else:
        fix = f"check {folder}"
    return f"{exc.strerror or exc}; {fix}"
