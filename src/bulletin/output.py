"""Rendered output: render a file only when what it depends on changed, count what was written."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .cache import Cache
from .errors import OutputError
from .files import remove_stale_temporaries, why_not_written, write_if_changed
from .report import Report

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


class Outputs:
    """One run's writer of rendered files: fingerprint → render → write if changed → count.

    A file set is rendered only when the fingerprint of everything it depends on changed
    (or a file is missing), and each file is written only when its bytes did. The render
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

    def write(
        self,
        key: str,
        fingerprint: str,
        paths: Sequence[Path],
        render: Callable[[], Sequence[bytes]],
        written: Written,
    ) -> bool:
        """Render `paths` (in order) unless `key` still has `fingerprint`; True if rendered."""
        if paths:
            self._clear(self.site / paths[0].relative_to(self.site).parts[0])
        written.outputs.extend(path.relative_to(self.site).as_posix() for path in paths)
        if self.renders.get(key) == fingerprint and all(path.exists() for path in paths):
            written.unchanged += len(paths)
            return False
        for path, data in zip(paths, render(), strict=True):
            if self._write(path, data):
                written.changed.append(path.relative_to(self.site).as_posix())
            else:
                written.unchanged += 1
        self.renders.put(key, fingerprint)
        return True

    def _write(self, path: Path, data: bytes) -> bool:
        """Write one file; a file system error stops the run with a message naming the file."""
        try:
            return write_if_changed(path, data)
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
