"""Feeds: which items each feed shows, their permanent ids, and JSON Feed 1.1.

RSS and Atom are rendered by atom_rss (feedgen); this module decides what goes in them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .config import Config
from .items import Item

# The tag URI grammar (RFC 4151) allows pchar, "/" and "?" in the specific part.
_TAG_SAFE = "-._~!$&'()*+,;=:@/?"

FILE_NAMES = ("rss.xml", "atom.xml", "feed.json")
MEDIA_TYPES = {
    "rss.xml": "application/rss+xml",
    "atom.xml": "application/atom+xml",
    "feed.json": "application/feed+json",
}


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed and its place: every item, or one topic's."""

    title: str
    description: str
    path: str  # folder under feeds/, "" for every item, "topic/<slug>/" for a topic
    entries: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """What a feed shows of one item, whatever the format."""

    item: Item
    id: str
    alternate: str | None
    via: str | None
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    content_html: str


def tag_uri(config: Config, item_id: str) -> str:
    """The item's permanent id, the same in every feed and format (RFC 4151)."""
    return f"tag:{config.id_host},{config.id_date}:{quote(item_id, safe=_TAG_SAFE)}"


def make_entry(item: Item, config: Config, categories: tuple[str, ...], content_html: str) -> Entry:
    """Decide links, authors and id for one item, following `links = source | site`."""
    alternate: str | None
    if config.links == "site" and item.page:
        alternate, via = item.page, item.link
    else:
        alternate, via = item.link or item.page, None
    return Entry(
        item=item,
        id=tag_uri(config, item.id),
        alternate=alternate,
        via=via,
        authors=item.authors or (config.author,),
        categories=categories,
        content_html=content_html,
    )


def feed_date(entries: Sequence[Entry], config: Config) -> datetime:
    """The newest `updated` among the entries; never the clock."""
    if entries:
        return max(entry.item.updated for entry in entries)
    year = int(config.id_date[:4])
    return datetime(year, 1, 1, tzinfo=UTC)


def render_json(feed: Feed, entries: Sequence[Entry], config: Config, self_url: str) -> bytes:
    """The feed as JSON Feed 1.1."""
    items = []
    for entry in entries:
        item = entry.item
        out: dict[str, Any] = {"id": entry.id}
        if entry.alternate:
            out["url"] = entry.alternate
        if entry.via:
            out["external_url"] = entry.via
        out["title"] = item.title
        out["content_html"] = entry.content_html
        if item.summary:
            out["summary"] = item.summary
        if item.image is not None:
            out["image"] = item.image.url
        out["date_published"] = item.published.isoformat()
        out["date_modified"] = item.updated.isoformat()
        out["authors"] = [{"name": name} for name in entry.authors]
        if entry.categories:
            out["tags"] = list(entry.categories)
        items.append(out)
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed.title,
        "home_page_url": config.site_url,
        "feed_url": self_url,
        "description": feed.description,
        "language": config.language,
        "authors": [{"name": config.author}],
        "items": items,
    }
    # Compact: json's C encoder only runs without indent, and feed readers do not care.
    return (json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def render(name: str, feed: Feed, entries: Sequence[Entry], config: Config, self_url: str) -> bytes:
    """One feed file by its name: rss.xml, atom.xml or feed.json."""
    if name == "feed.json":
        return render_json(feed, entries, config, self_url)
    # feedgen (and lxml, dateutil) load only when an RSS or Atom file must be rendered.
    from . import atom_rss

    renderer = atom_rss.render_rss if name == "rss.xml" else atom_rss.render_atom
    return renderer(feed, entries, config, self_url)
