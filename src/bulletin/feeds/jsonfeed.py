"""JSON Feed 1.1: the feed as one JSON document."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..config import Config
from .model import Entry, Feed


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
