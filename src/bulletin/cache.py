"""The parse cache in .bulletin/cache/: disposable, rebuilt from content/ whenever in doubt."""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .output import write_atomic

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Stamp:
    """What the file system says about a file; ctime moves on every write and cannot be set."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, stat: os.stat_result) -> Stamp:
        return cls(stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


class Cache:
    """A pickled dict kept under .bulletin/cache/, keyed by bulletin's version and a config hash.

    Anything unreadable, from another version or for another configuration is ignored, so
    deleting the folder, upgrading bulletin or editing bulletin.toml is always safe.
    """

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = (_FORMAT, __version__, key)
        self.data: dict[Any, Any] = {}
        self.dirty = False
        try:
            with path.open("rb") as handle:
                blob = handle.read()
            # Loading many small objects with the cyclic GC on costs twice the time.
            gc.disable()
            try:
                stored_key, data = pickle.loads(blob)
            finally:
                gc.enable()
            if stored_key == self.key and isinstance(data, dict):
                self.data = data
        except (
            OSError,
            pickle.UnpicklingError,
            EOFError,
            ValueError,
            TypeError,
            AttributeError,
            ImportError,
            IndexError,
        ):
            pass

    def get(self, key: Any) -> Any:
        return self.data.get(key)

    def put(self, key: Any, value: Any) -> None:
        if self.data.get(key) != value:
            self.data[key] = value
            self.dirty = True

    def keep_only(self, keys: set[Any]) -> None:
        """Forget entries not in `keys` (deleted files), so the cache does not grow forever."""
        stale = set(self.data) - keys
        for key in stale:
            del self.data[key]
        self.dirty = self.dirty or bool(stale)

    def save(self) -> None:
        if not self.dirty:
            return
        # A cache that cannot be written only costs time on the next run.
        with contextlib.suppress(OSError):
            write_atomic(self.path, pickle.dumps((self.key, self.data), pickle.HIGHEST_PROTOCOL))
        self.dirty = False
