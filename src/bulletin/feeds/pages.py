"""The pages beside the feeds: one per topic, the feeds index with autodiscovery, the OPML list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from markupsafe import Markup

from .. import __version__
from ..config import Config
from ..dates import local_day, rfc822
from ..site.items import Item
from ..site.reader import Site
from ..site.topics import Topic
from ..templates import environment
from ..urls import Urls
from .model import Feed

if TYPE_CHECKING:
    from jinja2 import Template


def topic_of(site: Site, feed: Feed) -> Topic:
    """The topic a topic feed shows."""
    return site.topics.by_slug()[feed.path.removeprefix("topic/").rstrip("/")]


PAGE_SIZE = 50  # items on one topic page; older ones follow on page/2/, page/3/…
THUMB_WIDTH = 96


def page_path(feed: Feed, number: int) -> str:
    """A topic page's path under feeds/: index.html, then page/N/index.html."""
    return f"{feed.path}index.html" if number == 1 else f"{feed.path}page/{number}/index.html"


def render_topic_page(
    site: Site,
    feed: Feed,
    items: Sequence[Item],
    number: int,
    count: int,
    known: dict[str, tuple[PageEntry, int]] | None = None,
) -> bytes:
    """Page `number` of `count` of a topic: its items, newest first, with subscribe links.

    `known` keeps the entry of an item with several topics, rendered once, for the other
    topics' pages, with how many of them are still to come: an entry is dropped after its
    last, and one of an item with one topic is never kept (10,000 kept entries held
    17.6 MB, traced; at 100,000 items a rendering worker kept most of them to its end)."""
    config = site.config
    known = {} if known is None else known
    entry_template = environment(config).get_template("_entry.html.j2")
    urls = Urls(config)
    base = urls.feed(feed.path, "")

    def link(page: int) -> str | None:
        return base + page_path(feed, page).removeprefix(feed.path) if 1 <= page <= count else None

    page = (
        environment(config)
        .get_template("topic.html.j2")
        .render(
            site=config,
            version=__version__,
            nav=navigation(site),
            topic=topic_of(site, feed),
            urls=urls.feeds(feed.path),
            index_url=urls.feeds_index(),
            subscribe_url=urls.subscribe(),
            entries=[_kept_entry(site, item, entry_template, known) for item in items],
            page={"number": number, "count": count, "newer": link(number - 1), "older": link(number + 1)},
        )
    )
    return page.encode()


def _kept_entry(
    site: Site, item: Item, template: Template, known: dict[str, tuple[PageEntry, int]]
) -> PageEntry:
    kept = known.get(item.id)
    if kept is None:
        names = [t.name for t in site.topics.of(item)]
        entry, later = page_entry(site.config, item, names, template), len(names) - 1
    else:
        entry, later = kept[0], kept[1] - 1
    if later > 0:
        known[item.id] = (entry, later)
    elif kept is not None:
        del known[item.id]
    return entry


def navigation(site: Site) -> dict[str, str | None]:
    """The links every published page carries."""
    urls = Urls(site.config)
    return {"feeds": urls.feeds_index(), "archive": urls.archive(), "subscribe": urls.subscribe()}


def render_listing(site: Site, feeds: list[Feed], template: str) -> bytes:
    """feeds/index.html or feeds/feeds.opml: every feed, by `template`."""
    config = site.config
    newest = max((f.entries[0].updated for f in feeds if f.entries), default=None)
    page = (
        environment(config)
        .get_template(template)
        .render(
            site=config,
            version=__version__,
            nav=navigation(site),
            feeds=[_listing(site, feed) for feed in feeds],
            opml_url=Urls(config).opml(),
            subscribe_url=Urls(config).subscribe(),
            date_modified=_rfc822(newest),
        )
    )
    return page.encode()


def _rfc822(moment: datetime | None) -> str:
    return rfc822(moment) if moment else ""


@dataclass(slots=True)
class Thumbnail:
    """An item's image at thumbnail width, its height set so the page does not shift."""

    url: str
    alt: str
    width: int
    height: int


@dataclass(slots=True)
class PageEntry:
    """An item on a topic page (attributes, which templates read faster than dict keys), and
    `html`: the entry as _entry.html.j2 renders it."""

    title: str
    url: str | None
    source_name: str | None
    summary: str
    published: str
    topics: list[str]
    image: Thumbnail | None
    html: Markup = field(default_factory=Markup)


def page_entry(config: Config, item: Item, topics: list[str], template: Template) -> PageEntry:
    """The item as a topic page shows it; `topics`: its topics' names."""
    entry = page_fields(config, item, topics)
    entry.html = Markup(template.render(site=config, version=__version__, entry=entry))
    return entry


def page_fields(config: Config, item: Item, topics: list[str]) -> PageEntry:
    """What a topic page's template is given of the item (all it can show), not rendered."""
    return PageEntry(
        title=item.title,
        url=Urls(config).item(item)[0],
        source_name=item.source_name,
        summary=item.summary,
        published=local_day(item.published, config.timezone),
        topics=topics,
        image=_thumbnail(item),
    )


def _thumbnail(item: Item) -> Thumbnail | None:
    image = item.image
    if image is None:
        return None
    return Thumbnail(image.url, image.alt or "", THUMB_WIDTH, image.thumb_height(THUMB_WIDTH, 2 / 3))


def _listing(site: Site, feed: Feed) -> dict[str, object]:
    urls = Urls(site.config)
    if feed.path:
        topic = topic_of(site, feed)
        name, count, page = topic.name, topic.count, urls.topic_page(topic.slug)
    else:
        name, count, page = "Everything", len(site.items), None
    return {
        "title": feed.title,
        "name": name,
        "slug": feed.path.removeprefix("topic/").rstrip("/") or None,
        "count": count,
        "newest": local_day(feed.entries[0].published, site.config.timezone) if feed.entries else "",
        "urls": urls.feeds(feed.path),
        "page": page,
    }
