"""The pipeline, top to bottom: read items → group by topic → write feeds (→ digests)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from . import __version__, feeds
from .bodies import cap
from .cache import Cache
from .config import Config
from .errors import RefusedError
from .items import Item
from .output import write_if_changed
from .reader import Collection, read_body, read_items
from .report import Report
from .templates import environment, templates_fingerprint
from .topics import Topic, Topics, assign_topics


class Progress(Protocol):
    """Where long work reports how far it got (the command line draws a bar on a terminal)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, count: int = 1) -> None: ...

    def finish(self) -> None: ...


@dataclass
class Site:
    """A site read for one run: its configuration, items and topics."""

    config: Config
    collection: Collection
    topics: Topics
    now: datetime

    @property
    def items(self) -> tuple[Item, ...]:
        return self.collection.items


@dataclass
class Written:
    """Which output files a run replaced and how many it left alone."""

    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)

    def add(self, other: Written) -> None:
        self.changed.extend(other.changed)
        self.unchanged += other.unchanged
        self.removed.extend(other.removed)


def read_site(config: Config, report: Report, now: datetime, progress: Progress | None = None) -> Site:
    """Read every item (through the cache) and decide the topics."""
    collection = read_items(config, report, now, progress)
    topics = assign_topics(collection.items, report)
    return Site(config, collection, topics, now)


def refuse_if_strict(report: Report, strict: bool) -> None:
    """Under --strict, any error or warning stops the run before anything is written."""
    if strict and report.problems:
        count = len(report.problems)
        raise RefusedError(f"--strict: {count} problem(s) found; nothing was written")


def feed_url(config: Config, folder: str, name: str) -> str:
    return f"{config.base_url}feeds/{folder}{name}"


def write_feeds(site: Site, progress: Progress | None = None) -> Written:
    """Every feed in every format, the topic pages, the feeds index and the OPML list."""
    config = site.config
    written = Written()
    renders = Cache(config.cache_dir, "renders", config.fingerprint)
    bodies: dict[str, str] = {}

    def content_of(item: Item) -> str:
        if item.id not in bodies:
            try:
                body = read_body(item, config)
            except OSError:
                body = ""  # removed since it was read; the next build drops the item
            bodies[item.id] = cap(body, config.feed_content_kb * 1024, item.link, item.source_name)
        return bodies[item.id]

    def entries_of(feed: feeds.Feed) -> list[feeds.Entry]:
        return [
            feeds.make_entry(item, config, tuple(t.name for t in site.topics.of(item)), content_of(item))
            for item in feed.entries
        ]

    all_feeds = _feeds(site)
    if progress is not None:
        progress.start("Writing feeds", len(all_feeds))
    templates_fp = templates_fingerprint(config)
    for feed in all_feeds:
        fingerprint = _fingerprint(config, feed, site.topics)
        missing = [
            name
            for name in feeds.FILE_NAMES
            if renders.get(feed.path + name) != fingerprint
            or not (config.feeds_dir / feed.path / name).exists()
        ]
        if missing:
            entries = entries_of(feed)
            for name in missing:
                data = feeds.render(name, feed, entries, config, feed_url(config, feed.path, name))
                _record(written, config, feed.path + name, data)
                renders.put(feed.path + name, fingerprint)
        written.unchanged += len(feeds.FILE_NAMES) - len(missing)
        if progress is not None:
            progress.advance()
    if progress is not None:
        progress.finish()

    pages_fp = hashlib.sha256(
        (templates_fp + "".join(_fingerprint(config, f, site.topics) for f in all_feeds)).encode()
    ).hexdigest()
    for feed in all_feeds[1:]:
        topic = _topic_of(site.topics, feed)
        relpath = f"{feed.path}index.html"
        fingerprint = _fingerprint(config, feed, site.topics) + templates_fp
        if renders.get(relpath) == fingerprint and (config.feeds_dir / relpath).exists():
            written.unchanged += 1
            continue
        page = (
            environment(config)
            .get_template("topic.html.j2")
            .render(
                site=config,
                version=__version__,
                topic=topic,
                urls=_urls(config, feed.path),
                index_url=f"{config.base_url}feeds/index.html",
                entries=[_page_entry(item, config, site.topics) for item in feed.entries],
            )
        )
        _record(written, config, relpath, page.encode())
        renders.put(relpath, fingerprint)

    for relpath, template in (
        ("index.html", "feeds_index.html.j2"),
        ("feeds.opml", "feeds.opml.j2"),
    ):
        if renders.get(relpath) == pages_fp and (config.feeds_dir / relpath).exists():
            written.unchanged += 1
            continue
        listing = [_listing(config, feed, site) for feed in all_feeds]
        newest = max((f.entries[0].updated for f in all_feeds if f.entries), default=None)
        page = (
            environment(config)
            .get_template(template)
            .render(
                site=config,
                version=__version__,
                feeds=listing,
                opml_url=f"{config.base_url}feeds/feeds.opml",
                date_modified=_rfc822(newest),
            )
        )
        _record(written, config, relpath, page.encode())
        renders.put(relpath, pages_fp)
    written.removed.extend(_remove_vanished_topics(config, site.topics, renders))
    renders.save()
    return written


_TOPIC_FILES = frozenset(("rss.xml", "atom.xml", "feed.json", "index.html"))


def _remove_vanished_topics(config: Config, topics: Topics, renders: Cache) -> list[str]:
    """Delete the feeds of topics that no longer exist (no item has them any more).

    Only folders holding nothing but bulletin's four files go; anything else a person put
    there is left alone.
    """
    folder = config.feeds_dir / "topic"
    if not folder.is_dir():
        return []
    current = set(topics.by_slug())
    removed = []
    for path in sorted(folder.iterdir()):
        if path.name in current or not path.is_dir():
            continue
        entries = list(path.iterdir())
        if not entries or not all(e.is_file() and e.name in _TOPIC_FILES for e in entries):
            continue
        for entry in entries:
            entry.unlink()
            renders.put(f"topic/{path.name}/{entry.name}", None)
        path.rmdir()
        removed.append(f"feeds/topic/{path.name}/")
    return removed


def _rfc822(moment: datetime | None) -> str:
    from email.utils import format_datetime  # only when the OPML list is rendered

    return format_datetime(moment) if moment else ""


def _feeds(site: Site) -> list[feeds.Feed]:
    """The all-items feed first, then one feed per topic, by slug."""
    config = site.config
    limit = config.feed_items
    per_topic: dict[str, list[Item]] = {key: [] for key in site.topics.by_key}
    for item in site.items:  # newest first
        for topic in site.topics.of(item):
            bucket = per_topic[topic.key]
            if len(bucket) < limit:
                bucket.append(item)
    result = [feeds.Feed(config.title, config.description, "", site.items[:limit])]
    for topic in sorted(site.topics.by_key.values(), key=lambda t: t.slug):
        result.append(
            feeds.Feed(
                f"{config.title}: {topic.name}",
                f"{topic.name}: the newest items of {config.title}.",
                f"topic/{topic.slug}/",
                tuple(per_topic[topic.key]),
            )
        )
    return result


def _fingerprint(config: Config, feed: feeds.Feed, topics: Topics) -> str:
    """Everything a feed's bytes depend on, hashed: a rebuild with the same hash renders nothing."""
    digest = hashlib.sha256()
    digest.update(
        f"{__version__}\0{config.fingerprint}\0{feed.title}\0{feed.description}\0{feed.path}".encode()
    )
    for item in feed.entries:
        names = "\x1f".join(t.name for t in topics.of(item))
        digest.update(f"\0{item.id}\0{item.fingerprint}\0{item.path}\0{names}".encode())
    return digest.hexdigest()


def _record(written: Written, config: Config, relpath: str, data: bytes) -> None:
    if write_if_changed(config.feeds_dir / relpath, data):
        written.changed.append(f"feeds/{relpath}")
    else:
        written.unchanged += 1


def _topic_of(topics: Topics, feed: feeds.Feed) -> Topic:
    slug = feed.path.removeprefix("topic/").rstrip("/")
    return topics.by_slug()[slug]


def _urls(config: Config, folder: str) -> dict[str, str]:
    return {
        "rss": feed_url(config, folder, "rss.xml"),
        "atom": feed_url(config, folder, "atom.xml"),
        "json": feed_url(config, folder, "feed.json"),
    }


def _page_entry(item: Item, config: Config, topics: Topics) -> dict[str, object]:
    entry = feeds.make_entry(item, config, (), "")
    return {
        "title": item.title,
        "url": entry.alternate,
        "source_name": item.source_name,
        "summary": item.summary,
        "published": item.published.date().isoformat(),
        "topics": [t.name for t in topics.of(item)],
    }


def _listing(config: Config, feed: feeds.Feed, site: Site) -> dict[str, object]:
    if feed.path:
        topic = _topic_of(site.topics, feed)
        name, count, page = topic.name, topic.count, f"{config.base_url}feeds/{feed.path}index.html"
    else:
        name, count, page = "Everything", len(site.items), None
    return {
        "title": feed.title,
        "name": name,
        "slug": feed.path.removeprefix("topic/").rstrip("/") or None,
        "count": count,
        "newest": feed.entries[0].published.date().isoformat() if feed.entries else "",
        "urls": _urls(config, feed.path),
        "page": page,
    }
