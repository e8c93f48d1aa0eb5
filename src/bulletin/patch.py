"""A `feeds` run after a few items were edited in place writes only the files that show them.

After a `feeds` run that reported nothing, bulletin keeps its plan (.bulletin/cache/
plan-feeds.marshal): every item file's path and stamp in the walk's order, where each item
stands in the all-items feed and in each of its topics, the topics, and the stat of every
file the run wrote. The next run compares the walk with it. When the same files are there,
a few of them changed, and each changed one still has the same id, dates, categories and
draft state, with no problem found (so no feed or page gains, loses or moves an item, and no
count or feed date changes), the run parses those files alone, renders each item's entry once
per format and splices it in place of the old one in the feeds and topic pages that show it.

Anything else runs the full build, and so does anything in doubt: a file the run would
splice that changed since the plan was kept (edited by hand, restored from a backup), an
entry not found exactly once where it should be, a parse cache that cannot vouch for the
version published. The bytes are the full build's (tests/test_patch.py compares them after
every kind of edit), and before writing, the run drops the render fingerprints of what it
will write, so a full build later renders those files again rather than trust them.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import unchanged
from .cache import Cache, seal, unseal
from .config import Config
from .files import write_atomic
from .report import counted
from .unchanged import key, slug_files, stats

if TYPE_CHECKING:
    from .build import Built
    from .site.items import Item
    from .site.topics import Topics
    from .site.walk import Stamps, Walked

_FORMAT = 1
# More changed files than this and the full build runs: a checkout, a bulk edit. Each costs
# a parse and a few splices (~2 ms); the full build with one edit costs about 0.3 s at
# 10,000 items.
MOST_CHANGED = 32
_RECORD = 4 * 8  # a file's stamp in Stamps.numbers: four 64-bit numbers


def _path(config: Config) -> Path:
    return config.cache_dir / "plan-feeds.marshal"


def forget(config: Config) -> None:
    """Drop the plan: this run may change what it describes."""
    with contextlib.suppress(OSError):
        _path(config).unlink(missing_ok=True)


@dataclass
class Plan:
    """What a `feeds` run published, to splice edits into (see the module's doc)."""

    key: str
    paths: bytes  # Stamps.paths
    numbers: bytes  # Stamps.numbers
    head: str  # the summary's first line
    feed_items: int
    topics: list[tuple[str, str, str, int]]  # key, name, slug, count
    newest: list[str]  # the all-items feed's ids, in order
    by_topic: dict[str, list[str]]  # each topic's item ids, in order
    outputs: dict[str, list[int]]  # each file written, under the site: size, mtime, ctime, inode
    latest: str  # the latest date any item gives: a run at an earlier time would hold it back
    slugs: list[list[int] | None]  # the published slugs' files, as unchanged.py watches them
    racy: list[int]  # files changed too shortly before the plan was kept to trust their stamps

    def dump(self) -> bytes:
        fields = (self.key, self.paths, self.numbers, self.head, self.feed_items, self.topics)
        lists = (self.newest, self.by_topic, self.outputs, self.latest, self.slugs, self.racy)
        return seal(marshal.dumps((_FORMAT, *fields, *lists)))

    def earlier(self, now: datetime) -> bool:
        """Is `now` before an item's date? Items would be held back that the plan has published."""
        try:
            return now < datetime.fromisoformat(self.latest)
        except (ValueError, TypeError):
            return True

    @classmethod
    def load(cls, config: Config) -> Plan | None:
        try:
            sealed = unseal(_path(config).read_bytes())  # a damaged plan is no plan
            found = None if sealed is None else marshal.loads(sealed)
            if found is None or found[0] != _FORMAT:
                return None
            return cls(*found[1:])
        except (OSError, EOFError, ValueError, TypeError, IndexError, KeyError):
            return None


def remember(config: Config, built: Built, head: str) -> None:
    """Keep the plan of a `feeds` run that reported nothing."""
    site = built.site
    stamps = site.collection.stamps
    if stamps.numbers is None:
        return
    plan = Plan(
        key=key(config, "feeds", ""),
        paths=stamps.paths,
        numbers=stamps.numbers,
        head=head,
        feed_items=config.feed_items,
        topics=[(t.key, t.name, t.slug, t.count) for t in site.topics.by_key.values()],
        newest=[item.id for item in site.items[: config.feed_items]],
        by_topic={topic: [item.id for item in items] for topic, items in site.by_topic.items()},
        outputs=_stats(config.out, built.feeds.outputs),
        latest=site.latest().isoformat(),
        slugs=_slugs(config),
        racy=_racy(stamps),
    )
    with contextlib.suppress(OSError):  # no plan: the next edit runs the full build
        config.cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(_path(config), plan.dump(), durable=False)


def _slugs(config: Config) -> list[list[int] | None]:
    return stats(slug_files(config))


def _racy(stamps: Stamps) -> list[int]:
    """The files whose stamps cannot tell a later edit yet (see unchanged.RACY_NS): each
    run parses them again, and compares their bytes."""
    from array import array

    cut = time.time_ns() - unchanged.RACY_NS
    if stamps.numbers is None or stamps.newest_ns < cut:  # none: no need to look at each
        return []
    values = array("q", stamps.numbers)
    changes = zip(values[1::4], values[2::4], strict=True)
    return [index for index, (mtime, ctime) in enumerate(changes) if mtime >= cut or ctime >= cut]


def _stats(root: Path, names: list[str]) -> dict[str, list[int]]:
    """unchanged.stats of the files `names` under `root`, by name; the missing left out."""
    folder = os.fspath(root) + os.sep  # strings: joining Paths took most of the time
    found = stats([folder + name for name in names])
    return {name: stat for name, stat in zip(names, found, strict=True) if stat is not None}


@dataclass
class Patched:
    """What a spliced run did: its summary, every file it stands for, what it read."""

    summary: str
    again: str  # the summary as the next run, with nothing changed, says it
    outputs: list[str]
    read: Stamps
    latest: datetime  # see Plan.latest
    edits: int  # items whose entries were spliced


# The files to write: their new bytes, by name under the site.
_Splices = dict[str, bytes]


class Declined(Exception):
    """The full build must run, and why (for -v), or "" where the full build says it."""


def apply(config: Config, now: datetime, walked: Walked | None) -> Patched | str:
    """Splice the edits into what the last run wrote; or why the full build must run."""
    plan = Plan.load(config)
    try:
        if plan is None:
            raise Declined("")  # the last run reported something, or there was none
        return _apply(config, now, walked, plan)
    except Declined as declined:
        return str(declined)


def _apply(config: Config, now: datetime, walked: Walked | None, plan: Plan) -> Patched:
    if plan.key != key(config, "feeds", ""):
        raise Declined("bulletin, bulletin.toml or a template changed since the last run")
    if plan.earlier(now):
        raise Declined("--now is before the date of an item the last run published")
    from .site.walk import walk_items

    walked = walked or walk_items(config.content_dir)
    stamps = walked.hashed()
    if walked.problems or stamps.numbers is None:
        raise Declined("")  # the full build reports what the walk found
    if stamps.paths != plan.paths:
        raise Declined("files were added to, removed from or renamed in content/")
    changed = _changed(plan.numbers, stamps.numbers, plan.racy)
    if changed is None:
        raise Declined(_too_many(plan, stamps.numbers))
    if not _as_written(config, plan):
        raise Declined("a file under feeds/, or the published slugs, changed since the last run wrote them")
    cache = Cache(config.cache_dir, "items", config.fingerprint, shards=16)
    edits = _read_edits(config, now, walked, changed, plan, cache)
    splices = _splices(config, plan, edits)
    forget(config)  # a run stopped while writing leaves no plan: the full build follows, and clears up
    try:
        written = _write(config, splices)
    except OSError:
        raise Declined("") from None  # the full build says which file and why
    cache.save()
    plan.numbers = stamps.numbers
    plan.outputs.update(_stats(config.out, written))
    plan.racy = _racy(stamps)
    with contextlib.suppress(OSError):
        write_atomic(_path(config), plan.dump(), durable=False)
    total = len(plan.outputs)
    return Patched(
        summary=f"{plan.head}\nfeeds: {len(written)} written, {total - len(written)} unchanged",
        again=f"{plan.head}\nfeeds: 0 written, {total} unchanged",
        outputs=list(plan.outputs),
        read=stamps,
        latest=datetime.fromisoformat(plan.latest),
        edits=sum(1 for _, new in edits if not new.draft),  # a draft is in no feed or page
    )


def _as_written(config: Config, plan: Plan) -> bool:
    """Is every file the last run wrote as it left it, and are the published slugs the same?"""
    if _slugs(config) != plan.slugs:
        return False
    return _stats(config.out, list(plan.outputs)) == plan.outputs


def _too_many(plan: Plan, numbers: bytes) -> str:
    """Why `_changed` found too many files to read: more than MOST_CHANGED changed, or fewer
    did, and the files changed just before the last run (which each run reads again) make up
    the rest: then nothing may have changed since."""
    seen = _changed(plan.numbers, numbers, [])
    if seen is None:
        return f"more than {MOST_CHANGED} files changed"
    recent = len(set(plan.racy) - set(seen))
    return (
        f"{counted(len(seen), 'file')} changed since the last run, and {recent} more changed "
        "too shortly before it for their stamps to tell a later edit: more than "
        f"{MOST_CHANGED} to read again"
    )


def _changed(old: bytes, new: bytes, racy: list[int]) -> list[int] | None:
    """The walk's indexes of the files whose stamps differ, and of those whose stamps could
    not tell; None: too many, or another count of files."""
    if len(old) != len(new):
        return None
    found: list[int] = []
    step = 256 * _RECORD
    for start in range(0, len(new), step):  # most of the walk is the same: compare in blocks
        if old[start : start + step] == new[start : start + step]:
            continue
        for at in range(start, min(start + step, len(new)), _RECORD):
            if old[at : at + _RECORD] != new[at : at + _RECORD]:
                found.append(at // _RECORD)
        if len(found) > MOST_CHANGED:
            return None
    found = sorted(set(found).union(racy))
    return found if len(found) <= MOST_CHANGED else None


def _read_edits(
    config: Config, now: datetime, walked: Walked, changed: list[int], plan: Plan, cache: Cache
) -> list[tuple[Item, Item]]:
    """Each changed file's item as published and as it is now (Declined if one moved)."""
    from .site.reader import _from_row, _parse_one, _to_row

    edits = []
    for index in changed:
        relpath, path = walked.files[index]
        stamp = walked.stamps[index]
        row = cache.get(relpath)
        published = plan.numbers[index * _RECORD : (index + 1) * _RECORD]
        if stamp.size < 0 or row is None or _packed(row[:4]) != published:
            raise Declined(f"{relpath}: the parse cache does not hold the version the last run published")
        old = _from_row(row)
        digest, parsed = _parse_one(relpath, path, row[4], config)
        if parsed is None:  # the same bytes: only the stamp moved
            cache.put(relpath, _to_row(stamp, digest, old))
            continue
        if not _in_place(old.item, parsed, now) or old.problems or old.clamped:
            raise Declined(
                f"{relpath}: its id, dates, categories or draft state changed, or it has a problem"
            )
        assert parsed.item is not None and old.item is not None
        edits.append((old.item, parsed.item))
        cache.put(relpath, _to_row(stamp, digest, parsed))
    return edits


def _packed(stamp: tuple[Any, ...]) -> bytes:
    from array import array

    try:
        return array("q", stamp).tobytes()
    except (OverflowError, TypeError):
        return b""


def _in_place(old: Item | None, parsed: Any, now: datetime) -> bool:
    """The edit leaves the item where it was: in the same feeds and pages, in the same order,
    with the same topic names, and nothing to report."""
    new = parsed.item
    if old is None or new is None or parsed.problems or parsed.clamped:
        return False
    if parsed.later is not None and new.updated > now:  # held back: warned about
        return False
    same = (old.id, old.path, old.published, old.updated, old.topics, old.topic_urls, old.draft)
    return (
        same == (new.id, new.path, new.published, new.updated, new.topics, new.topic_urls, new.draft)
        and _offsets(old) == _offsets(new)
        and (new.draft or new.published <= now)
    )


def _offsets(item: Item) -> tuple[str, str]:
    """The item's dates as feeds write them. Two dates at one instant are equal, but a
    feed's own date (RSS lastBuildDate, Atom updated, the OPML dateModified) is its newest
    item's, written with that item's UTC offset, which a splice does not rewrite."""
    return item.published.isoformat(), item.updated.isoformat()


def _topics(plan: Plan) -> Topics:
    from .site.topics import Topic, Topics

    return Topics({k: Topic(k, name, slug, count) for k, name, slug, count in plan.topics})


def _splices(config: Config, plan: Plan, edits: list[tuple[Item, Item]]) -> _Splices:
    """The new bytes of every file that shows an edited item (Declined if one cannot be spliced)."""
    from .feeds.pages import PAGE_SIZE

    topics = _topics(plan)
    splices: _Splices = {}
    for old, new in edits:
        if new.draft:
            continue
        names = [t.name for t in topics.of(new)]
        folders = [""] if new.id in plan.newest else []
        pages = []
        for topic in topics.of(new):
            ids = plan.by_topic.get(topic.key, [])
            if new.id not in ids:
                raise Declined(f"{new.path}: not where the last run published it")
            at = ids.index(new.id)
            if at < plan.feed_items:
                folders.append(f"topic/{topic.slug}/")
            pages.append((f"topic/{topic.slug}/", at // PAGE_SIZE + 1))
        if (folders and not _splice_feeds(config, plan, new, names, folders, splices)) or not _splice_pages(
            config, plan, old, new, names, pages, splices
        ):
            raise Declined(f"{new.path}: its entry is not once where the last run put it")
    return splices


def _current(config: Config, plan: Plan, splices: _Splices, name: str) -> bytes | None:
    """The file as the last run wrote it (_as_written has checked that it is), or as this run
    spliced it so far; None if the last run did not write it."""
    if name in splices:
        return splices[name]
    if name not in plan.outputs:
        return None
    try:
        return (config.out / name).read_bytes()
    except OSError:
        return None


# An entry's element and its id, in each format's file. RSS and Atom text and attributes
# never hold a raw "<", so these tags are elements wherever they are found.
_BLOCKS = {
    "rss.xml": (b"<item>", b"</item>", rb"<guid isPermaLink=\"false\">[^<]*</guid>"),
    "atom.xml": (b"<entry>", b"</entry>", rb"<id>[^<]*</id>"),
}


def _block(text: bytes, tags: tuple[bytes, bytes], at: int) -> tuple[int, int] | None:
    """Where the element around `at` is: from its start tag's line to its end tag's newline."""
    opening, closing = tags
    start = text.rfind(opening, 0, at)
    end = text.find(closing, at)
    if start < 0 or end < 0 or text.rfind(closing, start, at) >= 0:
        return None
    line = text.rfind(b"\n", 0, start) + 1
    if text[line:start].strip(b" ") or text[end + len(closing) : end + len(closing) + 1] != b"\n":
        return None
    return line, end + len(closing) + 1


def _splice_feeds(
    config: Config, plan: Plan, item: Item, names: list[str], folders: list[str], splices: _Splices
) -> bool:
    """Put the item's new entry in place of the old in each of `folders`' three feeds."""
    from .feeds.atom_rss import render_atom, render_rss
    from .feeds.jsonfeed import dumps, json_item
    from .feeds.model import Feed, make_entry
    from .feeds.writer import entry_content

    entry = make_entry(item, config, tuple(names), entry_content(item, config))
    alone = Feed(config.title, config.description, "", (item,))
    blocks: dict[str, tuple[bytes, bytes]] = {}  # by file name: the entry's block and its id
    for name, render in (("rss.xml", render_rss), ("atom.xml", render_atom)):
        text = render(alone, [entry], config, config.site_url)
        opening, closing, ident = _BLOCKS[name]
        found = list(re.finditer(ident, text))
        span = _block(text, (opening, closing), found[-1].start()) if found else None
        if span is None:
            return False
        blocks[name] = (text[span[0] : span[1]], found[-1][0])
    for folder in folders:
        for name, (block, ident) in blocks.items():
            if not _splice_block(config, plan, splices, folder + name, ident, block):
                return False
        if not _splice_json(config, plan, splices, folder + "feed.json", entry.id, dumps(json_item(entry))):
            return False
    return True


def _splice_block(config: Config, plan: Plan, splices: _Splices, name: str, ident: bytes, new: bytes) -> bool:
    """Replace the one entry holding `ident` in feeds/`name` by `new`."""
    relpath = _relpath(config, name)
    text = _current(config, plan, splices, relpath)
    if text is None or text.count(ident) != 1:
        return False
    opening, closing, _ = _BLOCKS[name.rpartition("/")[2]]
    span = _block(text, (opening, closing), text.index(ident))
    if span is None:
        return False
    splices[relpath] = text[: span[0]] + new + text[span[1] :]
    return True


def _relpath(config: Config, name: str) -> str:
    """feeds/`name` under the site."""
    return f"{config.feeds_dir.relative_to(config.out).as_posix()}/{name}"


def _splice_json(config: Config, plan: Plan, splices: _Splices, name: str, ident: str, new: str) -> bool:
    """Replace the item whose id is `ident` in feeds/`name` by `new` (JSON text)."""
    import json

    from .feeds.jsonfeed import dumps

    relpath = _relpath(config, name)
    raw = _current(config, plan, splices, relpath)
    if raw is None:
        return False
    text = raw.decode()
    start = '{"id":' + dumps(ident) + ","
    if text.count(start) != 1:
        return False
    at = text.index(start)
    try:
        _, end = json.JSONDecoder().raw_decode(text, at)
    except ValueError:
        return False
    splices[relpath] = (text[:at] + new + text[end:]).encode()
    return True


# The templates of a topic page around its entries: bulletin's own show each entry only as
# _entry.html.j2 renders it, which is what is spliced; a site's own may show more of it.
_PAGE_TEMPLATES = ("topic.html.j2", "_feeds_base.html.j2", "_look.css.j2")


def _splice_pages(
    config: Config,
    plan: Plan,
    old: Item,
    new: Item,
    names: list[str],
    pages: list[tuple[str, int]],
    splices: _Splices,
) -> bool:
    """Put the item's new entry in place of the old on each of `pages` (topic folder, number)."""
    from .feeds.model import Feed
    from .feeds.pages import page_fields, page_path

    if page_fields(config, old, names) == page_fields(config, new, names):
        return True  # the page shows nothing that changed (a body, an author)
    own = [name for name in _PAGE_TEMPLATES if (config.templates_dir / name).exists()]
    if own:  # a site's own page may show an entry's fields outside the entry
        raise Declined(f"templates/{own[0]} is the site's own, which may show an entry outside it")
    from .feeds.pages import page_entry
    from .templates import environment

    template = environment(config).get_template("_entry.html.j2")
    before = page_entry(config, old, names, template).html.encode()
    after = page_entry(config, new, names, template).html.encode()
    if before == after:  # the template shows none of what changed
        return True
    for folder, number in pages:
        name = page_path(Feed("", "", folder, ()), number)
        relpath = _relpath(config, name)
        text = _current(config, plan, splices, relpath)
        if text is None or text.count(before) != 1:
            return False
        splices[relpath] = text.replace(before, after)
    return True


def _write(config: Config, splices: _Splices) -> list[str]:
    """Write the spliced files; first drop their render fingerprints, so that a full build
    renders them again however this run ends. Returns the files whose bytes changed."""
    renders = Cache(config.cache_dir, "renders", config.fingerprint)
    for relpath in splices:  # a render's key is its file's name under feeds/
        renders.put(relpath.removeprefix(_relpath(config, "")), None)
    renders.save()
    from .files import write_if_changed

    return [relpath for relpath, data in splices.items() if write_if_changed(config.out / relpath, data)]
