"""Write every feed, the topic pages, the feeds index and the OPML list under feeds/."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .. import __version__
from ..config import Config
from ..output import Outputs, Written
from ..report import Progress
from ..site.bodies import cap
from ..site.items import Item
from ..site.reader import Body, Site, read_content
from ..site.topics import save_published
from ..templates import environment, templates_fingerprint
from ..urls import Urls
from .model import FILE_NAMES, Entry, Feed, feeds_of, make_entry
from .pages import PAGE_SIZE, PageEntry, page_path, render_listing, render_topic_page, topic_of


@dataclass
class _Memo:
    """What one run of write_feeds makes once per item and uses for several outputs."""

    entries: dict[str, tuple[PageEntry, int]] = field(default_factory=dict)  # see render_topic_page
    keys: dict[str, bytes] = field(default_factory=dict)  # its part of the fingerprints
    names: dict[tuple[str, ...], str] = field(default_factory=dict)  # a list of topics' names, joined


def write_feeds(site: Site, progress: Progress | None = None) -> Written:
    """Every feed in every format, the topic pages, the feeds index and the OPML list."""
    outputs = site.outputs
    written = Written()
    feeds = feeds_of(site)
    memo = _Memo()
    fingerprints = {feed.path: _fingerprint(site, feed, memo) for feed in feeds}
    entries_of = _entries(site)
    templates_fp = templates_fingerprint(site.config)
    folder = site.config.feeds_dir
    # Rendering is most of a cold build's writing: the feeds and pages render side by side.
    with outputs.together(progress, prepare=partial(_prepare, site)):
        for feed in feeds:
            _write_feed(site, feed, fingerprints[feed.path], entries_of, written)
        for feed in feeds[1:]:
            _write_topic_pages(
                site, feed, site.by_topic[topic_of(site, feed).key], templates_fp, written, memo
            )
        memo.keys.clear()  # done with: the renders start now, in copies of this process
    # The listing shows each feed's item count, which an item too old for the feed changes.
    counts = [len(site.items), *(topic_of(site, feed).count for feed in feeds[1:])]
    listed = templates_fp + "".join(fingerprints.values()) + repr(counts)
    listing_fp = hashlib.sha256(listed.encode()).hexdigest()
    for relpath, template in (("index.html", "feeds_index.html.j2"), ("feeds.opml", "feeds.opml.j2")):
        outputs.write(
            relpath, listing_fp, [folder / relpath], partial(_listing, site, feeds, template), written
        )
    written.removed.extend(_remove_vanished_topics(site, outputs))
    outputs.save()
    save_published(site.config.out, site.topics)  # published now: each topic keeps its slug
    return written


def _write_feed(
    site: Site, feed: Feed, fingerprint: str, entries_of: Callable[[Feed], list[Entry]], written: Written
) -> None:
    """The feed's three files, each rendered only when missing or out of date."""
    urls = Urls(site.config)
    entries: list[Entry] = []

    def render(name: str) -> list[bytes]:
        if not entries:
            entries.extend(entries_of(feed))
        return [_render(name, feed, entries, site, urls.feed(feed.path, name))]

    folder = site.config.feeds_dir / feed.path
    for name in FILE_NAMES:
        site.outputs.write(
            feed.path + name, fingerprint, [folder / name], partial(render, name), written, group=feed.path
        )


def _prepare(site: Site) -> None:
    """Load what every feed and page render needs, once, before the rendering processes fork."""
    from . import atom_rss, jsonfeed  # noqa: F401

    for name in ("topic.html.j2", "_entry.html.j2"):
        environment(site.config).get_template(name)


def _write_topic_pages(
    site: Site,
    feed: Feed,
    items: list[Item],
    templates_fp: str,
    written: Written,
    memo: _Memo,
) -> None:
    """A topic's pages of PAGE_SIZE items each; pages past the last one are removed."""
    count = max(1, math.ceil(len(items) / PAGE_SIZE))
    folder = site.config.feeds_dir
    for number in range(1, count + 1):
        chunk = items[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        relpath = page_path(feed, number)
        extra = f"{templates_fp}\0{feed.path}\0{number}/{count}\0{len(items)}"
        fingerprint = _items_fingerprint(site, chunk, extra, memo)
        site.outputs.write(
            relpath,
            fingerprint,
            [folder / relpath],
            partial(_topic_page, site, feed, chunk, number, count, memo.entries),
            written,
        )
    pages = folder / feed.path / "page"
    if pages.is_dir():
        for stale in sorted(pages.iterdir()):
            if stale.name.isdigit() and int(stale.name) > count and _only_bulletins(stale, {"index.html"}):
                (stale / "index.html").unlink()
                stale.rmdir()
                site.outputs.forget(page_path(feed, int(stale.name)))
                written.removed.append(f"feeds/{page_path(feed, int(stale.name))}")


def _only_bulletins(folder: Path, names: set[str]) -> bool:
    entries = list(folder.iterdir())
    return bool(entries) and all(e.is_file() and e.name in names for e in entries)


def _topic_page(
    site: Site,
    feed: Feed,
    items: list[Item],
    number: int,
    count: int,
    known: dict[str, tuple[PageEntry, int]],
) -> list[bytes]:
    return [render_topic_page(site, feed, items, number, count, known)]


def _listing(site: Site, feeds: list[Feed], template: str) -> list[bytes]:
    return [render_listing(site, feeds, template)]


def _render(name: str, feed: Feed, entries: list[Entry], site: Site, self_url: str) -> bytes:
    """One feed file by its name: rss.xml, atom.xml or feed.json."""
    if name == "feed.json":
        from .jsonfeed import render_json

        return render_json(feed, entries, site.config, self_url)
    # feedgen (and lxml, dateutil) load only when an RSS or Atom file must be rendered.
    from . import atom_rss

    renderer = atom_rss.render_rss if name == "rss.xml" else atom_rss.render_atom
    return renderer(feed, entries, site.config, self_url)


def _entries(site: Site) -> Callable[[Feed], list[Entry]]:
    """A feed's entries, each item's body read, sanitised and capped once per run."""
    config = site.config
    bodies: dict[str, str] = {}

    def content_of(item: Item) -> str:
        if item.id not in bodies:
            bodies[item.id] = entry_content(item, config)
        return bodies[item.id]

    def entries_of(feed: Feed) -> list[Entry]:
        return [
            make_entry(item, config, tuple(t.name for t in site.topics.of(item)), content_of(item))
            for item in feed.entries
        ]

    return entries_of


def entry_content(item: Item, config: Config) -> str:
    """The item's body as feeds carry it: read again, sanitised, capped."""
    try:
        body = read_content(item, config)
    except OSError:
        body = Body("", False)  # removed since it was read; the next build drops the item
    return cap(body.html, config.feed_content_kb * 1024, item.link, item.source_name, body.cut)


def _fingerprint(site: Site, feed: Feed, memo: _Memo) -> str:
    """Everything a feed's bytes depend on, hashed: a rebuild with the same hash renders nothing."""
    return _items_fingerprint(site, feed.entries, f"{feed.title}\0{feed.description}\0{feed.path}", memo)


def _items_fingerprint(site: Site, items: Sequence[Item], extra: str, memo: _Memo) -> str:
    """Each item's part is made once per run (an item is in a feed and a page or two)."""
    digest = hashlib.sha256(f"{__version__}\0{site.config.fingerprint}\0{extra}".encode())
    keys, parts = memo.keys, []
    for item in items:
        key = keys.get(item.id)
        if key is None:
            names = memo.names.get(item.topics)  # items share few lists of topics
            if names is None:
                names = memo.names[item.topics] = "\x1f".join(t.name for t in site.topics.of(item))
            key = keys[item.id] = f"\0{item.id}\0{item.fingerprint}\0{item.path}\0{names}".encode()
        parts.append(key)
    digest.update(b"".join(parts))
    return digest.hexdigest()


_TOPIC_FILES = frozenset(("rss.xml", "atom.xml", "feed.json", "index.html"))


def _remove_vanished_topics(site: Site, outputs: Outputs) -> list[str]:
    """Delete the feeds of topics that no longer exist (no item has them any more).

    Only folders holding nothing but bulletin's four files go; anything else a person put
    there is left alone.
    """
    folder = site.config.feeds_dir / "topic"
    if not folder.is_dir():
        return []
    current = set(site.topics.by_slug())
    removed = []
    for path in sorted(folder.iterdir()):
        if path.name in current or not path.is_dir():
            continue
        pages = path / "page"
        numbered = sorted(pages.iterdir()) if pages.is_dir() else []
        if not all(p.name.isdigit() and p.is_dir() and _only_bulletins(p, {"index.html"}) for p in numbered):
            continue
        entries = [e for e in path.iterdir() if e.name != "page"]
        if not entries or not all(e.is_file() and e.name in _TOPIC_FILES for e in entries):
            continue
        for page in numbered:
            (page / "index.html").unlink()
            page.rmdir()
            outputs.forget(f"topic/{path.name}/page/{page.name}/index.html")
        if pages.is_dir():
            pages.rmdir()
        for entry in entries:
            entry.unlink()
            outputs.forget(f"topic/{path.name}/{entry.name}")
        path.rmdir()
        removed.append(f"feeds/topic/{path.name}/")
    return removed
