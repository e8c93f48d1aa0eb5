"""What the reader makes of one curated file: an Item, plain data shared by every later stage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


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

    def to_row(self) -> tuple[object, ...]:
        """The item as a plain tuple: what the parse cache stores (tuples unpickle 6x faster)."""
        image = self.image
        return (
            self.id,
            self.path,
            self.title,
            self.published,
            self.updated,
            self.link,
            self.source_name,
            self.summary,
            self.authors,
            self.topics,
            self.topic_urls,
            None if image is None else (image.url, image.alt, image.width, image.height, image.mime_type),
            self.page,
            self.draft,
            self.body_offset,
            self.fingerprint,
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Item:
        """The inverse of to_row."""
        image = row[11]
        return cls(*row[:11], None if image is None else Image(*image), *row[12:])  # type: ignore[call-arg]
