"""RSS 2.0 and Atom 1.0 with feedgen, its 1.0.0 defects worked around rather than inherited.

- an Atom entry <link> keeps only its href (rel and type are dropped): bulletin writes the
  entry links itself;
- add_entry() prepends unless order="append";
- feed and entry dates default to now(): every date is set;
- the RSS channel <link> is the last link added, whatever its rel: the site goes last;
- an enclosure without a length is written as length="None": the length is always given;
- the media extension wraps a single image in media:group: bulletin writes media:content;
- control characters raise ValueError: the reader has removed them from every field;
- its <generator> names feedgen: bulletin names itself.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from .. import __version__
from ..config import Config
from .model import MEDIA_TYPES, Entry, Feed, feed_date

MEDIA_NS = "http://search.yahoo.com/mrss/"
ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
GENERATOR_URI = "https://pypi.org/project/bulletin/"


class _BulletinFeed(BaseExtension):
    def extend_ns(self) -> dict[str, str]:
        return {"media": MEDIA_NS}

    def extend_atom(self, element: Any) -> Any:
        for name in ("title", "subtitle"):  # the site's, from bulletin.toml; a topic's name
            _text_that_looks_like_markup(element.find(name))
        return element


# A '<' that starts what a reader could take for a tag, a comment or a declaration.
_TAG_START = re.compile(r"<[A-Za-z/!?]")


def _text_that_looks_like_markup(element: Any) -> None:
    """Text holding a tag ("Why </div> soup", an escaped tag a title quotes) goes as
    type="html", escaped: the same text for every reader, where a text construct with tags
    in it is one that validators (and some readers) take for HTML. "(<25 beds)" stays text."""
    if element is not None and element.get("type") is None and _TAG_START.search(element.text or ""):
        element.text = html.escape(element.text, quote=False)
        element.set("type", "html")


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
            xml_elem("link", element, rel="enclosure", type=image.mime_type, length="0", href=image.url)
        item = entry.item
        for name, text in (("title", item.title), ("summary", item.summary or item.title)):
            if _TAG_START.search(text):  # rarely: found without searching the element
                _text_that_looks_like_markup(element.find(name))
        self._media(element)
        return element

    def extend_rss(self, element: Any) -> Any:
        assert self.entry is not None
        # RSS description is entity-encoded HTML: plain text must be escaped once more
        # or a reader would interpret "<b>" in a summary as markup.
        description = element.find("description")
        if description is not None:
            description.text = html.escape(self.entry.item.summary, quote=False)
        if not self.entry.content_html:  # the summary stood in for Atom's sake: not content here
            for encoded in element.findall(f"{{{CONTENT_NS}}}encoded"):
                element.remove(encoded)
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
        if entry.categories:  # in one call: feedgen redoes its whole list on every call
            fe.category([{"term": name} for name in entry.categories])
        if entry.content_html:
            fe.content(entry.content_html, type="html")
        elif not entry.alternate:  # Atom wants content or an alternate link: the summary, then
            fe.content(html.escape(item.summary or item.title, quote=False), type="html")
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
    return _PLAIN_TEXT.sub(_hex_references, bytes(fg.rss_str(pretty=True)))


# RSS leaves open whether a title or description holds text or HTML, so validators (and the
# RSS Advisory Board) ask for '&' and '<' in one as hexadecimal references, which no reader
# takes for markup. The same XML text: &#x26; and &#x3C; read back as &amp; and &lt; do.
_PLAIN_TEXT = re.compile(rb"(<title>|<description>)([^<]*)(?=</title>|</description>)")


def _hex_references(found: re.Match[bytes]) -> bytes:
    return found[1] + found[2].replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")


def render_atom(feed: Feed, entries: Sequence[Entry], config: Config, self_url: str) -> bytes:
    """The feed as Atom 1.0 (RFC 4287); its id is its own URL."""
    fg = _generator(feed, entries, config)
    fg.id(self_url)
    fg.link(href=self_url, rel="self", type=MEDIA_TYPES["atom.xml"])
    fg.link(href=config.site_url, rel="alternate", type="text/html")
    return bytes(fg.atom_str(pretty=True))
