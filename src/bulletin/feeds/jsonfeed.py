"""JSON Feed 1.1: the feed as one JSON document."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..config import Config
from .model import Entry, Feed


def render_json(feed: Feed, entries: Sequence[Entry], config: Config, self_url: str) -> bytes:
    """The feed as JSON Feed 1.1."""
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed.title,
        "home_page_url": config.site_url,
        "feed_url": self_url,
        "description": feed.description,
        "language": config.language,
        "authors": [{"name": config.author}],
        "items": [json_item(entry) for entry in entries],
    }
    return (dumps(document) + "\n").encode()


def dumps(value: object) -> str:
    """Compact: json's C encoder only runs without indent, and feed readers do not care.
    (An item in a feed reads as it does alone, which patch.py splices by.)"""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_item(entry: Entry) -> dict[str, Any]:
    """One entry as a JSON Feed item."""
    item = entry.item
    out: dict[str, Any] = {"id": entry.id}
    if entry.alternate:
        out["url"] = entry.alternate
    if entry.via:
        out["external_url"] = entry.via
    out["title"] = item.title
    if entry.content_html:
        out["content_html"] = entry.content_html
    else:  # JSON Feed wants content_html or content_text
        out["content_text"] = item.summary
    if item.summary:
        out["summary"] = item.summary
    if item.image is not None:
        out["image"] = item.image.url
    out["date_published"] = item.published.isoformat()
    out["date_modified"] = item.updated.isoformat()
    out["authors"] = [{"name": name} for name in entry.authors]
    if entry.categories:
        out["tags"] = list(entry.categories)
    return out
