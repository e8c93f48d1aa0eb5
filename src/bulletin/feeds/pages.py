"""The pages beside the feeds: one per topic, the feeds index with autodiscovery, the OPML list."""

from __future__ import annotations

from datetime import datetime

from .. import __version__
from ..site.items import Item
from ..site.reader import Site
from ..site.topics import Topic
from ..templates import environment
from ..urls import Urls
from .model import Feed, make_entry


def topic_of(site: Site, feed: Feed) -> Topic:
    """The topic a topic feed shows."""
    return site.topics.by_slug()[feed.path.removeprefix("topic/").rstrip("/")]


def render_topic_page(site: Site, feed: Feed) -> bytes:
    """feeds/topic/<slug>/index.html: the topic's recent items, with subscribe links."""
    config = site.config
    urls = Urls(config)
    page = (
        environment(config)
        .get_template("topic.html.j2")
        .render(
            site=config,
            version=__version__,
            topic=topic_of(site, feed),
            urls=urls.feeds(feed.path),
            index_url=urls.feeds_index(),
            subscribe_url=urls.subscribe(),
            entries=[_page_entry(site, item) for item in feed.entries],
        )
    )
    return page.encode()


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
            feeds=[_listing(site, feed) for feed in feeds],
            opml_url=Urls(config).opml(),
            subscribe_url=Urls(config).subscribe(),
            date_modified=_rfc822(newest),
        )
    )
    return page.encode()


def _rfc822(moment: datetime | None) -> str:
    from email.utils import format_datetime  # only when the OPML list is rendered

    return format_datetime(moment) if moment else ""


def _page_entry(site: Site, item: Item) -> dict[str, object]:
    entry = make_entry(item, site.config, (), "")
    return {
        "title": item.title,
        "url": entry.alternate,
        "source_name": item.source_name,
        "summary": item.summary,
        "published": item.published.date().isoformat(),
        "topics": [t.name for t in site.topics.of(item)],
    }


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
        "newest": feed.entries[0].published.date().isoformat() if feed.entries else "",
        "urls": urls.feeds(feed.path),
        "page": page,
    }
