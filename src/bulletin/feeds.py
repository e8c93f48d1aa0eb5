"""Write RSS 2.0, Atom 1.0 (with feedgen) and JSON Feed 1.1 files for a set of items.

feedgen 1.0.0 is used for RSS and Atom, with its defects worked around here rather than
inherited: Atom entry links lose their rel and type, so bulletin writes the entry links
itself; dates default to now(), so every date is set; enclosures need a length; its media
extension wraps one image in media:group, so bulletin writes media:content itself;
control characters raise, so text is cleaned first; the generator names feedgen.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from . import __version__
from .config import Config
from .items import Item

MEDIA_NS = "http://search.yahoo.com/mrss/"
ATOM_NS = "http://www.w3.org/2005/Atom"
GENERATOR_URI = "https://pypi.org/project/bulletin/"
# The tag URI grammar (RFC 4151) allows pchar, "/" and "?" in the specific part.
_TAG_SAFE = "-._~!$&'()*+,;=:@/?"

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


# -- feedgen ----------------------------------------------------------------------------------


class _BulletinFeed(BaseExtension):
    def extend_ns(self) -> dict[str, str]:
        return {"media": MEDIA_NS}


class _BulletinEntry(BaseEntryExtension):
    """Writes what feedgen 1.0.0 gets wrong: Atom entry links, media:content, RSS description."""

    def __init__(self) -> None:
        self.entry: Entry | None = None

    def extend_atom(self, element: Any) -> Any:
        assert self.entry is not None
        for link in element.findall(f"{{{ATOM_NS}}}link") + element.findall("link"):
            element.remove(link)
        entry = self.entry
        if entry.alternate:
            xml_elem("link", element, rel="alternate", type="text/html", href=entry.alternate)
        if entry.via:
            xml_elem("link", element, rel="via", type="text/html", href=entry.via)
        image = entry.item.image
        if image is not None and image.mime_type:
            xml_elem("link", element, rel="enclosure", type=image.mime_type, length="0",
                     href=image.url)
        self._media(element)
        return element

    def extend_rss(self, element: Any) -> Any:
        assert self.entry is not None
        # RSS description is entity-encoded HTML: plain text must be escaped once more
        # or a reader would interpret "<b>" in a summary as markup.
        description = element.find("description")
        if description is not None:
            description.text = html.escape(self.entry.item.summary, quote=False)
        self._media(element)
        return element

    def _media(self, element: Any) -> None:
        assert self.entry is not None
        image = self.entry.item.image
        if image is None:
            return
        media = xml_elem(f"{{{MEDIA_NS}}}content", element, url=image.url, medium="image")
        if image.mime_type:
            media.set("type", image.mime_type)
        if image.width and image.height:
            media.set("width", str(image.width))
            media.set("height", str(image.height))


def _generator(feed: Feed, entries: Sequence[Entry], config: Config) -> FeedGenerator:
    fg = FeedGenerator()
    fg.register_extension("bulletin", _BulletinFeed, _BulletinEntry, atom=True, rss=True)
    fg.load_extension("dc", atom=False, rss=True)
    fg.title(feed.title)
    fg.description(feed.description)
    fg.language(config.language)
    fg.author({"name": config.author})
    fg.dc.dc_creator(config.author)
    fg.generator("bulletin", version=__version__, uri=GENERATOR_URI)
    fg.updated(feed_date(entries, config))
    for entry in entries:  # newest first, and feedgen must not reverse them
        item = entry.item
        fe = fg.add_entry(order="append")
        fe.bulletin.entry = entry
        fe.id(entry.id)
        fe.guid(entry.id, permalink=False)
        fe.title(item.title)
        if entry.alternate:
            fe.link(href=entry.alternate, rel="alternate")
        fe.published(item.published)
        fe.updated(item.updated)
        for name in entry.authors:
            fe.author({"name": name})
        fe.dc.dc_creator(list(entry.authors))
        for name in entry.categories:
            fe.category(term=name)
        fe.content(entry.content_html, type="html")
        fe.summary(item.summary or item.title)
        image = item.image
        if image is not None and image.mime_type:
            fe.enclosure(image.url, "0", image.mime_type)
    return fg


def render_rss(feed: Feed, entries: Sequence[Entry], config: Config, self_url: str) -> bytes:
    """The feed as RSS 2.0; the channel link is the site, atom:link rel=self the feed."""
    fg = _generator(feed, entries, config)
    # feedgen takes the RSS <link> from the last link added: add the site last.
    fg.link(href=self_url, rel="self", type=MEDIA_TYPES["rss.xml"])
    fg.link(href=config.site_url, rel="alternate", type="text/html")
    return bytes(fg.rss_str(pretty=True))


def render_atom(feed: Feed, entries: Sequence[Entry], config: Config, self_url: str) -> bytes:
    """The feed as Atom 1.0 (RFC 4287); its id is its own URL."""
    fg = _generator(feed, entries, config)
    fg.id(self_url)
    fg.link(href=self_url, rel="self", type=MEDIA_TYPES["atom.xml"])
    fg.link(href=config.site_url, rel="alternate", type="text/html")
    return bytes(fg.atom_str(pretty=True))


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
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode()


RENDERERS: dict[str, Callable[[Feed, Sequence[Entry], Config, str], bytes]] = {
    "rss.xml": render_rss,
    "atom.xml": render_atom,
    "feed.json": render_json,
}
