"""What the reader makes of one curated file: an Item, plain data shared by every later stage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Image:
    """An item's featured image; bulletin links to it and never copies it."""

    url: str
    alt: str | None = None
    width: int | None = None
    height: int | None = None
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One curated article, as read from `content/`; the body stays on disk until needed."""

    id: str
    path: str  # the file, relative to the site folder, POSIX
    title: str
    published: datetime
    updated: datetime
    link: str | None  # the curated article (source link)
    source_name: str | None
    summary: str
    authors: tuple[str, ...]
    topics: tuple[str, ...]  # names as written
    topic_urls: tuple[str | None, ...]  # categoryUrl last segment paired with each topic
    image: Image | None
    page: str | None  # the item's page on the site
    draft: bool
    body_offset: int  # where the body starts in the decoded, LF-normalised file text
    fingerprint: str  # hash of the file's bytes: changes whenever the file does

    @property
    def sort_key(self) -> tuple[datetime, datetime, str]:
        """Oldest first; reverse it for newest first. Total: ids are unique."""
        return (self.published, self.updated, self.id)
