"""Slugs: the ASCII names of topics in URLs and folders, and of lists in List-Id."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

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


def meant_slug(written: str, topics: Mapping[str, str]) -> str | None:
    """The slug that `written` (not a slug of `topics`, slug → name) most likely means: the
    topic's own name or its slugified form (`Cybersecurity`, `Medigy: Café Talks`), else a
    close spelling of a slug (`first-topics`)."""
    import difflib  # only a mistyped slug needs it

    wanted = slugify(written)
    for slug, name in sorted(topics.items()):
        if wanted and wanted in (slug, slugify(name)):
            return slug
    close = difflib.get_close_matches(wanted or written, sorted(topics), n=1, cutoff=0.75)
    return close[0] if close else None


def did_you_mean(unknown: Iterable[str], topics: Mapping[str, str]) -> str:
    """`did you mean 'cybersecurity'?` for the `unknown` slugs that look like a topic of
    `topics` (slug → name), each named when there are several; empty when none does."""
    meant = [(written, meant_slug(written, topics)) for written in unknown]
    found = [(written, slug) for written, slug in meant if slug is not None]
    if not found:
        return ""
    if len(meant) == 1:
        return f"did you mean '{found[0][1]}'?"
    return "did you mean " + ", ".join(f"'{slug}' for '{written}'" for written, slug in found) + "?"
