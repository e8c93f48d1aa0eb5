"""Rendered output: render a file only when what it depends on changed, count what was written."""

from __future__ import annotations

import gc
import os
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .cache import Cache
from .errors import OutputError
from .files import remove_stale_temporaries, why_not_written, write_if_changed
from .report import NoProgress, Progress, Report
from .workers import exit_if_orphaned, forks, job_count, process_pool

if TYPE_CHECKING:
    from .config import Config


@dataclass
class Written:
    """Which output files a run replaced and how many it left alone."""

    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # every file the run stands for

    def add(self, other: Written) -> None:
        self.changed.extend(other.changed)
        self.unchanged += other.unchanged
        self.removed.extend(other.removed)
        self.outputs.extend(other.outputs)


@dataclass(frozen=True)
class _Render:
    """A file set to render and write, and the run's count it goes into."""

    key: str
    fingerprint: str
    paths: tuple[Path, ...]
    render: Callable[[], Sequence[bytes]]
    written: Written
    group: str = ""  # renders that share work: one worker renders them all


# Below this many renders, starting processes costs more than it saves.
_PARALLEL_MIN = 64
_CHUNK = 4  # renders a worker takes at a time: fewer round trips, still an even share
# In a forked rendering worker: the Outputs and the renders it was forked with.
_TASKS: tuple[Outputs, list[_Render]] | None = None


Stamp = tuple[int, int, int]  # a file's size, mtime and inode (see _stamps)
Result = tuple[bool, Stamp, int]  # a file written or not, its stamp and its bytes' digest


# CRC-32, as the caches use: the difference to catch is an edit or a write the fingerprints
# missed, not an attack (whoever can write feeds/ can write anything there), and it is taken
# of every file a cold build writes: 52 MB at 10,000 items, 8 ms of CPU against BLAKE2b's 37.
def _digest(data: bytes) -> int:
    return zlib.crc32(data)


def _digests(paths: Sequence[Path]) -> tuple[int, ...] | None:
    """Each file's digest; None when one cannot be read."""
    try:
        return tuple(_digest(path.read_bytes()) for path in paths)
    except OSError:
        return None


def _render_chunk(chunk: range) -> list[list[Result]]:
    exit_if_orphaned()
    assert _TASKS is not None
    outputs, tasks = _TASKS
    return [outputs._render(tasks[index]) for index in chunk]


def _chunks(tasks: list[_Render]) -> list[range]:
    """The renders in runs of at least _CHUNK, a group never split between two."""
    chunks: list[range] = []
    start = 0
    for index in range(1, len(tasks) + 1):
        if index == len(tasks) or (
            index - start >= _CHUNK
            and (not tasks[index].group or tasks[index].group != tasks[index - 1].group)
        ):
            chunks.append(range(start, index))
            start = index
    return chunks


def _stamps(paths: Sequence[Path]) -> tuple[Stamp | None, ...]:
    """Each file's size, mtime and inode (None: missing), as a render left it. Not its
    ctime, which a backup that hard-links the site moves on every file (each would be
    rendered again); an edit moves the mtime, and bulletin's own writes the inode."""
    found: list[Stamp | None] = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            found.append(None)
            continue
        found.append((stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return tuple(found)


class Outputs:
    """One run's writer of rendered files: fingerprint → render → write if changed → count.

    A file set is rendered only when the fingerprint of everything it depends on changed,
    or a file is not as the render that the fingerprint records left it (missing, edited,
    replaced: a run that could not save the fingerprints may have written it since; a file
    only copied or checked out, with another stamp but the same bytes, still is), and
    each file is written only when its bytes did. The render
    fingerprints are one cache, loaded once per run. Before the first file goes into a
    folder (feeds/, emails/), the temporary files that killed runs left there, and in the
    cache, are removed.
    """

    def __init__(self, config: Config, report: Report | None = None, started: float | None = None) -> None:
        self.site = config.out
        self.report = report
        self.started = time.time() if started is None else started
        self.cleared: set[str] = set()
        self._clear(config.cache_dir)
        self.renders = Cache(config.cache_dir, "renders", config.fingerprint, report=report)
        self._deferred: list[_Render] | None = None

    def write(
        self,
        key: str,
        fingerprint: str,
        paths: Sequence[Path],
        render: Callable[[], Sequence[bytes]],
        written: Written,
        group: str = "",
    ) -> bool:
        """Render `paths` (in order) unless `key` still has `fingerprint`; True if rendered.
        Inside `together`, renders of one `group` go to one worker, which does their shared
        work (a feed's entries for its three files) once."""
        if paths:
            self._clear(self.site / paths[0].relative_to(self.site).parts[0])
        written.outputs.extend(path.relative_to(self.site).as_posix() for path in paths)
        if self._as_rendered(key, fingerprint, paths):
            written.unchanged += len(paths)
            return False
        task = _Render(key, fingerprint, tuple(paths), render, written, group)
        if self._deferred is not None:
            self._deferred.append(task)
        else:
            self._done(task, self._render(task))
        return True

    def _as_rendered(self, key: str, fingerprint: str, paths: Sequence[Path]) -> bool:
        """Does `key` still have `fingerprint`, with its files as its render left them? A file
        with another stamp (copied with cp -a or rsync, checked out, restored) that holds the
        same bytes still is: its stamp is kept, and it is not rendered again."""
        saved = self.renders.get(key)
        if not isinstance(saved, tuple) or len(saved) != 3 or saved[0] != fingerprint:
            return False
        found = _stamps(paths)  # before the files are read: a later change moves them
        if saved[1] == found:
            return True
        if None in found or _digests(paths) != saved[2]:
            return False
        self.renders.put(key, (fingerprint, found, saved[2]))
        return True

    @contextmanager
    def together(
        self,
        progress: Progress | None = None,
        jobs: int | None = None,
        prepare: Callable[[], object] | None = None,
    ) -> Iterator[None]:
        """Inside the block, `write` only queues its renders; at the end of the block they
        run, in `jobs` processes when there are enough of them (a cold build's hundreds of
        pages and feeds). Each file is still written atomically, and recorded only once
        written. If the block raises, nothing queued is rendered. `prepare` runs before the
        workers start, so that what every render needs (templates, modules) is loaded once."""
        if self._deferred is not None:  # already inside one: its end renders these too
            yield
            return
        self._deferred = []
        try:
            yield
            tasks = self._deferred
        finally:
            self._deferred = None
        progress = progress or NoProgress()
        progress.start("Writing files", len(tasks))
        # Renders are closures over the whole site: workers must start as copies of it.
        count = job_count(jobs, len(tasks), _PARALLEL_MIN)
        if count > 1 and not forks():  # asked only then: it loads multiprocessing
            count = 1
        if count > 1 and prepare is not None:
            prepare()
        results = self._in_processes(tasks, count) if count > 1 else map(self._render, tasks)
        for task, result in zip(tasks, results, strict=True):
            self._done(task, result)
            progress.advance()
        progress.finish()

    def _render(self, task: _Render) -> list[Result]:
        """Render one file set and write it: for each file, whether its bytes changed, and its
        stamp as the write left it (taken here, in the worker, not when the build gets the
        result: a file changed in between must not be vouched for), and its bytes' digest."""
        return [self._write(path, data) for path, data in zip(task.paths, task.render(), strict=True)]

    def _in_processes(self, tasks: list[_Render], jobs: int) -> Iterator[list[Result]]:
        global _TASKS
        _TASKS = (self, tasks)  # forked workers find them here; only indices travel
        # What the build holds stays put: the workers' collections would otherwise touch,
        # and so copy, every page of the parent's memory. (A one-shot build froze what it
        # read already, and it stays frozen.)
        frozen_before = gc.get_freeze_count()
        gc.freeze()
        try:
            with process_pool(jobs) as pool:
                for results in pool.map(_render_chunk, _chunks(tasks)):
                    yield from results
        finally:
            _TASKS = None
            if not frozen_before:
                gc.unfreeze()

    def _done(self, task: _Render, results: list[Result]) -> None:
        for path, (was_changed, _, _) in zip(task.paths, results, strict=True):
            if was_changed:
                task.written.changed.append(path.relative_to(self.site).as_posix())
            else:
                task.written.unchanged += 1
        stamps = tuple(stamp for _, stamp, _ in results)
        self.renders.put(task.key, (task.fingerprint, stamps, tuple(digest for _, _, digest in results)))

    def _write(self, path: Path, data: bytes) -> Result:
        """Write one file; a file system error stops the run with a message naming the file."""
        stats: list[os.stat_result] = []
        try:
            changed = write_if_changed(path, data, stats)
            return changed, (stats[0].st_size, stats[0].st_mtime_ns, stats[0].st_ino), _digest(data)
        except OSError as exc:
            where = path.relative_to(self.site).as_posix()
            why = f"{why_not_written(path, self.site, exc)}, then run the same command again"
            raise OutputError(f"{where}: error: cannot write it: {why}") from exc

    def _clear(self, folder: Path) -> None:
        """Remove what killed runs left in `folder`, once per run."""
        name = folder.relative_to(self.site).as_posix() + "/"
        if name in self.cleared:
            return
        self.cleared.add(name)
        removed = remove_stale_temporaries(folder, self.started)
        if removed and self.report is not None:
            self.report.note(f"removed {removed} temporary file(s) left in {name} by an interrupted run")

    def forget(self, key: str) -> None:
        """Drop a fingerprint (its files were removed)."""
        self.renders.put(key, None)

    def save(self) -> None:
        """Keep the fingerprints for the next run (only what changed is rewritten)."""
        self.renders.save()
