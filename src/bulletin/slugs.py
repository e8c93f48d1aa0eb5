"""Slugs: the ASCII names of topics in URLs and folders, and of lists in List-Id."""

from __future__ import annotations

import re
import unicodedata

# What a slug looks like: lower-case ASCII words joined by single hyphens.
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# Slugs name folders: far below any file system's limit on a name (255 bytes), and short
# enough to read in a URL.
MAX_SLUG = 80
# Topic key → the slug it was published under. Precious, unlike .bulletin/cache/: deleting it
# lets a renamed topic move to a new slug, which breaks its subscribers' feeds. (Here, not in
# site/topics.py: a rebuild with nothing to do checks the file and loads no more than this.)
SLUGS_FILE = ".bulletin/slugs.json"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "ø": "o",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "þ": "th",
        "Æ": "ae",
        "Ø": "o",
        "Œ": "oe",
        "Ł": "l",
        "Đ": "d",
        "Þ": "th",
    }
)


def slugify(name: str, *, letters: bool = True) -> str:
    """ASCII letters and digits joined by '-' (may be empty): NFKD, combining marks dropped.

    Topic slugs (`letters`) also map the letters NFKD cannot take apart (ß→ss, æ→ae, ø→o…)
    and treat any other non-ASCII character as a separator. The default list id was made
    by dropping non-ASCII characters instead; it stays so, because a changed list id would
    invalidate every unsubscribe link already sent.
    """
    if letters:
        text = unicodedata.normalize("NFKD", name.translate(_LETTERS))
        text = "".join(c for c in text if not unicodedata.combining(c)).translate(_LETTERS)
    else:
        text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", text.lower()).strip("-")


def shorten(slug: str, limit: int = MAX_SLUG) -> str:
    """`slug` cut to at most `limit` characters: at its last hyphen that fits, else anywhere."""
    if len(slug) <= limit:
        return slug
    hyphen = slug.rfind("-", 0, limit + 1)
    return slug[:hyphen] if hyphen > 0 else slug[:limit]
