"""The feed model: which items each feed shows, and what an entry carries in every format.

RSS and Atom are rendered by atom_rss (feedgen), JSON Feed by jsonfeed; this module decides
what goes in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from ..config import Config
from ..site.items import Item
from ..site.reader import Site
from ..urls import Urls

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
    """What a feed shows of `item`: its id, links (`links = source | site`) and authors."""
    alternate, via = Urls(config).item(item)
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


def feeds_of(site: Site) -> list[Feed]:
    """The all-items feed first, then one feed per topic, by slug: the newest feed_items each."""
    config = site.config
    limit = config.feed_items
    per_topic = site.by_topic
    result = [Feed(config.title, config.description, "", site.items[:limit])]
    for topic in sorted(site.topics.by_key.values(), key=lambda t: t.slug):
        result.append(
            Feed(
                f"{config.title}: {topic.name}",
                f"{topic.name}: the newest items of {config.title}.",
                f"topic/{topic.slug}/",
                tuple(per_topic[topic.key][:limit]),
            )
        )
    return result
