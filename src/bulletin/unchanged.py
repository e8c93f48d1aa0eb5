"""A rebuild that nothing asks for costs one stat per file and one small read.

After a `feeds` or `build` run that reported nothing (no error, warning or note, so no
scheduled item either, which time alone could publish), bulletin keeps what that run
depended on: bulletin's version, the configuration and every template, the stats of each
item file (size, mtime, ctime and inode: no edit keeps all four), the outputs it wrote and
their folders, the published slugs, and for `build` the ledger and the week. The next run
of the same command compares them first; when all are the same it says what the last run
said, with nothing written, and stops. Anything else runs in full (where the parse and
render caches still skip whatever did not change). A run in full forgets the record first,
so a run stopped half-way leaves none behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import Config
from .slugs import SLUGS_FILE

if TYPE_CHECKING:
    from .site.walk import Stamps, Walked

# A file changed within this long before a run ends may change again with the same stats
# on a file system with coarse timestamps: such a run keeps no record ("racy git").
RACY_NS = 2_000_000_000


def _record(config: Config, command: str) -> Path:
    return config.cache_dir / f"unchanged-{command}.json"


def forget(config: Config, command: str) -> None:
    """Drop the record: this run may change what it describes."""
    with contextlib.suppress(OSError):  # no cache folder to hold one: nothing to forget
        _record(config, command).unlink(missing_ok=True)


def replay(config: Config, command: str, context: str, now: datetime) -> tuple[str | None, Walked | None]:
    """The last run's summary when nothing it depended on changed since, else None; and
    the walk of content/ it made to tell, if it got that far, for the run to read from.
    A run at a time before an item's date (--now) would hold that item back: it runs."""
    try:
        saved = json.loads(_record(config, command).read_text(encoding="utf-8"))
        if saved["key"] != key(config, command, context) or now < datetime.fromisoformat(saved["latest"]):
            return None, None
        if saved["watched"] != stats(_watched(config, saved["outputs"])):
            return None, None
        files, summary = saved["files"], str(saved["summary"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None, None
    from .site.walk import walk_items

    walked = walk_items(config.content_dir)
    if files != _files(walked):
        return None, walked
    return summary, None


def remember(
    config: Config,
    command: str,
    context: str,
    summary: str,
    outputs: Iterable[str],
    read: Stamps,
    latest: datetime,
) -> None:
    """Keep what this run depended on (call it only after a run that reported nothing).

    `read`: the item files' stamps as the run read them (not as they are now: a file edited
    while the run wrote must be read again by the next run); `latest`: the latest date of
    an item it published.
    """
    from .files import write_atomic

    names = sorted(set(outputs))
    with contextlib.suppress(OSError):  # a file gone meanwhile, no cache folder: run in full next
        started = time.time_ns()
        if read.newest_ns > started - RACY_NS:
            return
        files = read.hexdigest()
        record = {
            "key": key(config, command, context),
            "files": files,
            "outputs": names,
            "watched": stats(_watched(config, names)),
            "summary": summary,
            "latest": latest.isoformat(),
        }
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(_record(config, command), json.dumps(record).encode())


def key(config: Config, command: str, context: str) -> str:
    """What every output of `command` depends on besides the items: bulletin's version, the
    configuration, the templates, and `context` (build: the week)."""
    from .templates import templates_fingerprint

    parts = (__version__, command, context, config.fingerprint, templates_fingerprint(config))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _files(walked: Walked) -> str | None:
    """A hash of every item file's path and stat, in the order the walk found them; None
    when the walk found a problem."""
    return None if walked.problems else walked.hashed().hexdigest()


def _watched(config: Config, outputs: list[str]) -> list[str]:
    """The outputs, their folders (an added or removed digest shows there), the published
    slugs and the ledger (frozen editions, for the digests). Strings, not Paths: a site has
    hundreds of outputs, and joining Paths took a third of this check."""
    out, state = os.fspath(config.out), os.fspath(config.state_dir)
    join = os.path.join
    return [
        *(join(out, name) for name in outputs),
        join(out, "feeds"),
        join(out, "emails"),
        *slug_files(config),
        join(state, "ledger.sqlite"),
        join(state, "ledger.sqlite-wal"),
    ]


def slug_files(config: Config) -> list[str]:
    """Where the published slugs are kept: the topics' slugs follow them."""
    return [os.path.join(config.site, SLUGS_FILE), os.path.join(config.out, SLUGS_FILE)]


def stats(paths: list[str]) -> list[list[int] | None]:
    """Each path's size, mtime, ctime and inode; None where it cannot be stat'ed."""
    found: list[list[int] | None] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            found.append(None)
            continue
        found.append([stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino])
    return found
