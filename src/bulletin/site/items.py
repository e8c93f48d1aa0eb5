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
        """The inverse of to_row, with one object for the values many items repeat (topic
        lists, authors, source names, image sizes), which saves a fifth of their memory."""
        (id_, path, title, published, updated, link, source, summary, authors, topics, urls) = row[:11]
        image = row[11]
        one, size = _SHARED.setdefault, _SIZES.setdefault
        if image is not None:
            url, alt, width, height, mime = image
            image = Image(
                url, title if alt == title else alt, size(width, width), size(height, height), one(mime, mime)
            )
        return cls(
            id_,
            path,
            title,
            published,
            published if updated == published else updated,
            link,
            one(source, source),
            summary,
            one(authors, authors),
            one(topics, topics),
            one(urls, urls),
            image,
            *row[12:],
        )


# Values that many items repeat, one object each (a site has few topics, authors, sources):
# text and tuples of text here, image sizes (ints) apart, as 1 == True would mix them.
_SHARED: dict[object, Any] = {}
_SIZES: dict[int | None, int | None] = {}
