"""The parse cache in .bulletin/cache/: disposable, rebuilt from content/ whenever in doubt."""

from __future__ import annotations

import gc
import pickle
import zlib
from pathlib import Path
from typing import Any

from . import __version__
from .files import why_not_written, write_atomic
from .report import Report

_FORMAT = 17  # bumped whenever what is cached changes meaning (or what a parse gives)


# CRC-32, not a cryptographic hash: the damage to catch is accidental (a bad sector, a
# copy cut short), and CRC-32 catches every burst of up to 32 flipped bits, so every
# flipped byte, at a quarter of BLAKE2b's cost on a warm build's 12 MB of cache. Anyone
# who can write .bulletin/ can write a pickle anyway.
def seal(data: bytes) -> bytes:
    """`data` with its checksum in front: a cache file that can vouch for itself."""
    return zlib.crc32(data).to_bytes(4, "big") + data


def unseal(blob: bytes) -> memoryview | None:
    """What `seal` sealed; None when any byte changed or the file was cut short.

    A flipped bit in a pickle can load as a different value (a wrong date, an altered
    title) or crash the unpickler, so nothing is loaded that the checksum does not vouch for.
    """
    data = memoryview(blob)[4:]
    if len(blob) < 4 or zlib.crc32(data).to_bytes(4, "big") != blob[:4]:
        return None
    return data


class Cache:
    """A dict pickled under .bulletin/cache/, keyed by bulletin's version and a config hash.

    Anything unreadable, damaged (each file carries a checksum), from another version or
    for another configuration is ignored, so deleting the folder, upgrading bulletin or
    editing bulletin.toml is always safe. The dict is split into `shards` files by key, so
    one changed entry rewrites one small file, and each file is loaded when first asked for
    (a rebuild after one edit reads one of them).
    """

    def __init__(
        self, folder: Path, name: str, key: str, shards: int = 1, report: Report | None = None
    ) -> None:
        self.site = folder.parent.parent  # the cache lives in the site's .bulletin/cache/
        self.report = report
        self.unsaved = False  # said once per run, however often saving fails
        self.paths = [
            folder / (f"{name}.pickle" if shards == 1 else f"{name}-{n:02d}.pickle") for n in range(shards)
        ]
        self.key = (_FORMAT, __version__, key)
        self._loaded: list[dict[Any, Any] | None] = [None] * shards
        self.dirty: set[int] = set()

    def shard(self, number: int) -> dict[Any, Any]:
        """Shard `number`'s entries, loaded on first use."""
        loaded = self._loaded[number]
        if loaded is None:
            loaded = self._loaded[number] = self._load(self.paths[number])
        return loaded

    @property
    def shards(self) -> list[dict[Any, Any]]:
        """Every shard, each loaded if it was not yet."""
        return [self.shard(number) for number in range(len(self.paths))]

    def _load(self, path: Path) -> dict[Any, Any]:
        try:
            sealed = unseal(path.read_bytes())
            if sealed is None:
                return {}  # damaged: this shard's entries are parsed again, and saved
            # Loading many small objects with the cyclic GC on costs twice the time.
            enabled = gc.isenabled()
            gc.disable()
            try:
                stored_key, data = pickle.loads(sealed)
            finally:
                if enabled:
                    gc.enable()
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
            return {}
        return data if stored_key == self.key and isinstance(data, dict) else {}

    def _shard(self, key: Any) -> int:
        if len(self.paths) == 1:
            return 0
        return zlib.crc32(str(key).encode()) % len(self.paths)

    def get(self, key: Any) -> Any:
        return self.shard(self._shard(key)).get(key)

    def merged(self) -> dict[Any, Any]:
        """Every shard's entries in one dict, to look many up (a copy: put() does not change it)."""
        merged: dict[Any, Any] = {}
        for shard in self.shards:
            merged.update(shard)
        return merged

    def put(self, key: Any, value: Any) -> None:
        number = self._shard(key)
        shard = self.shard(number)
        if shard.get(key) != value:
            shard[key] = value
            self.dirty.add(number)

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def keep_only(self, keys: set[Any]) -> None:
        """Forget entries not in `keys` (deleted files), so the cache does not grow forever."""
        for number, shard in enumerate(self.shards):
            stale = set(shard) - keys
            for key in stale:
                del shard[key]
            if stale:
                self.dirty.add(number)

    def save(self) -> None:
        """Write the shards that changed; one that cannot be written is a note (-v), never an error."""
        failed: tuple[Path, OSError] | None = None
        for number in sorted(self.dirty):
            data = seal(pickle.dumps((self.key, self.shard(number)), pickle.HIGHEST_PROTOCOL))
            # A cache that cannot be written only costs time on the next run; it needs no
            # fsync either: a torn file fails to load and is rebuilt.
            try:
                write_atomic(self.paths[number], data, durable=False)
            except OSError as exc:
                failed = failed or (self.paths[number], exc)
        self.dirty.clear()
        if failed is not None and self.report is not None and not self.unsaved:
            self.unsaved = True
            path, error = failed
            why = why_not_written(path, self.site, error)
            where = path.relative_to(self.site).as_posix()
            self.report.note(f"{where}: cannot save the cache: {why}; bulletin works without it, only slower")
