"""What the reader makes of one curated file: an Item, plain data shared by every later stage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple


class Image(NamedTuple):
    """An item's featured image; bulletin links to it and never copies it."""

    url: str
    alt: str | None = None
    width: int | None = None
    height: int | None = None
    mime_type: str | None = None

    def thumb_height(self, width: int, unknown: float) -> int:
        """Its height shown `width` wide: its own shape (`unknown` height to width when its
        size is not given), kept between a banner's and a portrait's, so that a size typed
        wrong or a long infographic does not stretch a page or a mail thousands of pixels."""
        ratio = self.height / self.width if self.width and self.height else unknown
        return max(1, round(width * min(max(ratio, _FLATTEST), _TALLEST)))


_FLATTEST, _TALLEST = 1 / 4, 3 / 2  # height to width


# Items are tuples: a rebuild loads every one of them from the parse cache, and a tuple
# unpickles without setting its fields one by one, as a frozen dataclass's __init__ does.
class Item(NamedTuple):
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
        """The item as plain tuples, which parse workers send back faster than Items."""
        image = self.image
        return (*self[:11], None if image is None else tuple(image), *self[12:])

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Item:
        """The inverse of to_row, with one object for the values many items repeat (topic
        lists, authors, source names, image sizes), which saves a fifth of their memory."""
        title, published, updated = row[2], row[3], row[4]
        one = _SHARED.setdefault
        image = row[11]
        if image is not None:
            url, alt, width, height, mime = image
            size = _SIZES.setdefault
            alt = title if alt == title else alt
            image = _tuple(Image, (url, alt, size(width, width), size(height, height), one(mime, mime)))
        source, authors, topics, urls = row[6], row[8], row[9], row[10]
        return _tuple(
            cls,
            (
                row[0],
                row[1],
                title,
                published,
                published if updated == published else updated,
                row[5],
                one(source, source),
                row[7],
                one(authors, authors),
                one(topics, topics),
                one(urls, urls),
                image,
                row[12],
                row[13],
                row[14],
                row[15],
            ),
        )


_tuple = tuple.__new__  # a tuple of a subclass from its values, without __new__'s arguments

# Values that many items repeat, one object each (a site has few topics, authors, sources):
# text and tuples of text here, image sizes (ints) apart, as 1 == True would mix them.
_SHARED: dict[object, Any] = {}
_SIZES: dict[int | None, int | None] = {}
