"""Read a site's content/ folder into Items, through the parse cache, and decide the topics."""

from __future__ import annotations

import gc
import os
import stat
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

from ..cache import Cache
from ..config import Config
from ..errors import NoContentError, NotAFileError
from ..output import Outputs
from ..report import NoProgress, Problem, Progress, Report
from ..slugs import SLUGS_FILE
from ..workers import exit_if_orphaned, job_count, process_pool
from . import bodies
from .items import Item
from .parse import Parsed, decode, digest, parse_item, surely_clean
from .topics import Topics, assign_topics, load_published
from .walk import Stamp, Stamps, Walked, fix_for, walk_items

_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


def read_regular(path: str) -> bytes:
    """A regular file's bytes; NotAFileError for anything else, which may never answer a read
    (a FIFO blocks until someone writes to it), so it is never read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", closefd=True) as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise NotAFileError(f"is {kind}, not a file; only regular files are read: remove it")
        return handle.read()


def read_body(item: Item, config: Config) -> str:
    """The item's body as sanitised HTML, URLs absolute, ready for a feed or a digest."""
    return read_content(item, config).html


@dataclass(frozen=True, slots=True)
class Body:
    """An item's body as sanitised HTML, and whether it was cut before it was rendered."""

    html: str
    cut: bool


def read_content(item: Item, config: Config) -> Body:
    """The item's body, read again from its file, cut and flattened as the parse did."""
    raw = read_regular(os.fspath(config.site / item.path))
    limit = bodies.body_limit(config.feed_content_kb)
    body = bodies.prepare(decode(raw)[item.body_offset :], limit, surely_clean(raw))
    html = bodies.sanitize(bodies.to_html(body.text, item.path), item.link or item.page or config.site_url)
    return Body(html, body.cut)


@dataclass(frozen=True, slots=True)
class Collection:
    """The items a build publishes, newest first, with what was held back and why."""

    items: tuple[Item, ...]
    drafts: int
    scheduled: tuple[Item, ...]
    files: int
    stamps: Stamps  # every item file's path and stamp, as read


@dataclass
class Site:
    """A site read for one run: its configuration, items and topics, and the run's report."""

    config: Config
    collection: Collection
    topics: Topics
    now: datetime
    report: Report | None = field(default=None, repr=False)
    started: float = field(default_factory=time.time, repr=False)  # the clock's, not `now`
    _outputs: Outputs | None = field(default=None, repr=False)
    _by_topic: dict[str, list[Item]] | None = field(default=None, repr=False)

    @property
    def items(self) -> tuple[Item, ...]:
        return self.collection.items

    def latest(self) -> datetime:
        """The latest date of a published item (an item is updated at or after it is
        published): a run at an earlier time would hold that item back."""
        return max((item.updated for item in self.items), default=self.now)

    @property
    def by_topic(self) -> dict[str, list[Item]]:
        """Each topic's items by key, newest first (gathered once, for every feed and page)."""
        if self._by_topic is None:
            found: dict[str, list[Item]] = {key: [] for key in self.topics.by_key}
            of = self.topics.of
            for item in self.items:
                for topic in of(item):
                    found[topic.key].append(item)
            self._by_topic = found
        return self._by_topic

    @property
    def outputs(self) -> Outputs:
        """The run's writer of rendered files (one render cache for every stage)."""
        if self._outputs is None:
            self._outputs = Outputs(self.config, self.report, self.started)
        return self._outputs


def read_site(
    config: Config,
    report: Report,
    now: datetime,
    progress: Progress | None = None,
    walked: Walked | None = None,
    *,
    freeze: bool = False,
) -> Site:
    """Read every item (through the cache) and decide the topics. `walked`: a walk of
    content/ made moments ago, not to be made again; `freeze`: see read_items."""
    started = time.time()
    collection = read_items(config, report, now, progress, walked=walked, freeze=freeze)
    # A preview (serve --watch) starts from the slugs the real site published, keeps its own.
    recorded = config.out if (config.out / SLUGS_FILE).exists() else config.site
    topics = assign_topics(collection.items, report, load_published(recorded, report))
    return Site(config, collection, topics, now, report, started)


def read_items(
    config: Config,
    report: Report,
    now: datetime,
    progress: Progress | None = None,
    jobs: int | None = None,
    walked: Walked | None = None,
    *,
    freeze: bool = False,
) -> Collection:
    """Read every item file (through the parse cache), report problems, drop duplicates.

    Files the cache cannot answer for are parsed in `jobs` processes (default: one per CPU)
    when there are enough of them to pay for starting the processes. `freeze`: the process
    keeps what it read until it ends, so it goes out of the cyclic GC's reach (`gc.freeze`);
    a long-running caller, which reads again and again, leaves it False.
    """
    # Reading creates many long-lived objects and no cycles: the cyclic GC would only
    # rescan them over and over (a third of a warm build's time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        walked = walked or walk_items(config.content_dir)
        report.extend(walked.problems)
        results = _parse_files(walked, config, report, progress or NoProgress(), jobs)
        parses = [results[relpath] for relpath, _ in walked.files]
        del results
        walked.release()  # the caller may still hold the walk
        collection = _collect(parses, report, now, walked.hashed())
        if freeze:
            gc.freeze()  # the items hold no cycles; collections would rescan them again and again
        return collection
    finally:
        if gc_was_enabled:
            gc.enable()


def _parse_files(
    walked: Walked, config: Config, report: Report, progress: Progress, jobs: int | None
) -> dict[str, Parsed]:
    """Each file's parse: from the cache where its stamp vouches for it, else parsed now."""
    cache = Cache(config.cache_dir, "items", config.fingerprint, shards=16, report=report)
    if not walked.files and len(cache):
        raise NoContentError(_emptied(config, len(cache)))
    progress.start("Reading items", len(walked.files))
    results: dict[str, Parsed] = {}
    stale: list[_Stale] = []
    rows = cache.merged()
    for (relpath, path), stamp in zip(walked.files, walked.stamps, strict=True):
        row = rows.get(relpath) if stamp.size >= 0 else None
        if row is None:
            stale.append(_Stale(relpath, path, stamp))
        elif row[:4] == stamp:
            results[relpath] = _from_row(row)
        else:  # the stamp moved (touched, copied, checked out): parse again if the bytes changed
            stale.append(_Stale(relpath, path, stamp, row[4], _from_row(row)))
    del rows
    progress.advance(len(results))
    if len(stale) >= _PARALLEL_MIN:  # only a long parse is worth loading PyYAML to ask
        from .frontmatter import LIBYAML

        if not LIBYAML:
            report.warning(
                "bulletin",
                None,
                "PyYAML has no libyaml here: front matter outside the plain block style is "
                "read 11-14 times slower; reinstall PyYAML from a wheel that includes it",
            )
    # closing: on Ctrl-C the parsing processes stop now, not when the generator is collected.
    with closing(_parse_all(stale, config, job_count(jobs, len(stale), _PARALLEL_MIN))) as parsed:
        for relpath, stamp, hashed, result in parsed:
            results[relpath] = result
            cache.put(relpath, _to_row(stamp, hashed, result))
            progress.advance()
    progress.finish()
    cache.keep_only(set(results))
    cache.save()
    return results


def _emptied(config: Config, read_before: int) -> str:
    """content/ holds no item where the last build read some: an empty mount point, most
    likely, whose disk is not there."""
    name = f"{config.content_dir.name}/"
    cache = config.cache_dir.relative_to(config.out).as_posix()
    return (
        f"{name}: error: holds no items, but the last build read {read_before:,}; bulletin stops "
        f"and writes nothing: mount or restore {name}, or, to publish no items, delete {cache}/ "
        "and run again"
    )


def _collect(results: list[Parsed], report: Report, now: datetime, stamps: Stamps) -> Collection:
    """Report every file's problems, keep one item per id, hold back drafts and scheduled."""
    by_id: dict[str, Item] = {}
    clamped = 0
    for result in results:
        if result.problems:
            report.extend(list(result.problems))
        clamped += result.clamped
        item = result.item
        if item is not None:
            if result.later is not None and item.updated > now >= item.published and not item.draft:
                item = _not_updated_yet(item, result.later, report)
            if item.id in by_id:
                _keep_newest(by_id, item, report)
            else:
                by_id[item.id] = item
    if clamped:
        report.note(f"{clamped} item(s) had lastMod before date; updated was set to the date")
    drafts = sum(1 for item in by_id.values() if item.draft)
    scheduled = tuple(sorted((i for i in by_id.values() if not i.draft and i.published > now), key=_ORDER))
    for item in scheduled:
        report.note(f"{item.path}: scheduled for {item.published.isoformat()}, held back")
    items = tuple(
        sorted(
            (i for i in by_id.values() if not i.draft and i.published <= now),
            key=_ORDER,
            reverse=True,
        )
    )
    return Collection(items=items, drafts=drafts, scheduled=scheduled, files=len(results), stamps=stamps)


def _not_updated_yet(item: Item, later: tuple[str, int | None, str], report: Report) -> Item:
    """An item whose last update is after the build's time: warned about, and dated as last
    updated when published until then. Feeds would otherwise announce that date in advance
    as their own last update, frozen there; the clock would change every build's bytes."""
    name, line, value = later
    report.warning(
        item.path,
        line,
        f"{name} '{value}' is after this build's time; until then feeds give the item's date as its "
        "last update: correct it",
    )
    # Its fingerprint says so too: the feeds, pages and digests that show the item are written
    # again on the day the update comes due, when the fingerprint is the file's alone again.
    return item._replace(updated=item.published, fingerprint=f"{item.fingerprint} until {value}")


def _keep_newest(by_id: dict[str, Item], item: Item, report: Report) -> None:
    """Two files with one id: the newer `updated` wins (ties: the later path)."""
    other = by_id.get(item.id)
    if other is None:
        by_id[item.id] = item
        return
    keep, drop = (item, other) if (item.updated, item.path) > (other.updated, other.path) else (other, item)
    by_id[item.id] = keep
    why = "is newer" if keep.updated > drop.updated else "has the same date and comes later by path"
    report.warning(
        drop.path,
        None,
        f"id '{item.id}' is also used by {keep.path}, which {why} and wins; "
        "give this item its own id or delete it",
    )


# Published, then updated, then id: a total order (ids are unique after de-duplication).
_ORDER = attrgetter("published", "updated", "id")
_PARALLEL_MIN = 400  # below this, starting processes costs more than it saves


@dataclass(frozen=True, slots=True)
class _Stale:
    """A file the cache cannot vouch for: new, or its stamp moved."""

    relpath: str
    path: str
    stamp: Stamp
    digest: str | None = None  # of the bytes the cached result was parsed from
    result: Parsed | None = None


def _to_row(stamp: Stamp, digest: str, parsed: Parsed) -> tuple[object, ...]:
    """A cache entry: tuples only (an Item is one), which load several times faster than
    objects. The item goes in as it is, sharing its values with the build's own: a copy as
    plain tuples held about 25 MB more at 100,000 items, until the cache was saved."""
    problems = tuple((p.path, p.line, p.level, p.message) for p in parsed.problems)
    return (
        stamp.size,
        stamp.mtime_ns,
        stamp.ctime_ns,
        stamp.inode,
        digest,
        parsed.item,
        problems,
        parsed.clamped,
        parsed.later,
    )


def _from_row(row: tuple[Any, ...]) -> Parsed:
    """A cache entry's parse."""
    return Parsed(row[5], tuple(Problem(*p) for p in row[6]) if row[6] else (), row[7], row[8])


def _parsed_row(parsed: Parsed) -> tuple[object, ...]:
    """A parse as plain tuples: (item, problems, clamped, later)."""
    item = None if parsed.item is None else parsed.item.to_row()
    problems = tuple((p.path, p.line, p.level, p.message) for p in parsed.problems)
    return item, problems, parsed.clamped, parsed.later


def _parsed_from(row: tuple[Any, ...]) -> Parsed:
    item = None if row[0] is None else Item.from_row(row[0])
    return Parsed(item, tuple(Problem(*p) for p in row[1]), row[2], row[3])


def _parse_one(relpath: str, path: str, known: str | None, config: Config) -> tuple[str, Parsed | None]:
    """The file's digest and its parse; None instead of a parse when the digest is `known`."""
    try:
        raw = read_regular(path)
    except NotAFileError as exc:
        return "", Parsed(None, (Problem(relpath, None, "error", str(exc)),))
    except OSError as exc:
        message = f"cannot be read: {exc.strerror}; {fix_for(exc)}"
        return "", Parsed(None, (Problem(relpath, None, "error", message),))
    hashed = digest(raw)
    if hashed == known:
        return hashed, None
    return hashed, parse_item(raw, relpath, config, hashed)


def _parse_chunk(
    chunk: list[tuple[str, str, str | None]], config: Config
) -> list[tuple[str, tuple[object, ...] | None]]:
    """In a worker: the chunk's parses, as rows (tuples cross to the build faster than Items)."""
    exit_if_orphaned()
    parses = (_parse_one(relpath, path, known, config) for relpath, path, known in chunk)
    return [(hashed, None if parsed is None else _parsed_row(parsed)) for hashed, parsed in parses]


def _parse_all(
    stale: list[_Stale], config: Config, jobs: int
) -> Generator[tuple[str, Stamp, str, Parsed], None, None]:
    """Parse the files the cache could not answer for, in order, in `jobs` processes."""
    work = [(s.relpath, s.path, s.digest) for s in stale]
    results: Iterator[tuple[str, Parsed | None]]
    if jobs > 1:
        results = _in_processes(work, config, jobs)
    else:
        results = (_parse_one(relpath, path, known, config) for relpath, path, known in work)
    for entry, (hashed, result) in zip(stale, results, strict=True):
        parsed = result if result is not None else entry.result
        assert parsed is not None
        yield entry.relpath, entry.stamp, hashed, parsed


def _in_processes(
    work: list[tuple[str, str, str | None]], config: Config, jobs: int
) -> Iterator[tuple[str, Parsed | None]]:
    size = max(50, len(work) // (jobs * 16))  # small enough that no worker waits long for the last
    chunks = [work[i : i + size] for i in range(0, len(work), size)]
    with process_pool(jobs) as pool:
        for chunk in pool.map(_parse_chunk, chunks, [config] * len(chunks)):
            for hashed, row in chunk:
                yield hashed, None if row is None else _parsed_from(row)
