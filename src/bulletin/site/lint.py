"""Front-matter mistakes that would pass silently: a known field in the wrong shape, a likely
typo of a field bulletin reads, an item with no source link. Warnings, not errors
(`--strict` turns them into refusals)."""

from __future__ import annotations

import difflib

from ..report import Problem
from ..text import one_line
from .fields import Fields, Found

# The top-level fields bulletin reads (README, "A site"), as authors spell them.
READ = (
    "id",
    "title",
    "date",
    "publishDate",
    "lastMod",
    "updated",
    "link",
    "href",
    "original",
    "summary",
    "description",
    "author",
    "categories",
    "categoryUrl",
    "topics",
    "featuredImage",
    "slug",
    "basePath",
    "draft",
    "status",
    "openGraphMetaData",
    "twitterMetaData",
    "openProjectCustomFields",
)
# Fields curation tools write that bulletin ignores on purpose: never "did you mean".
IGNORED = frozenset(
    name.lower()
    for name in (
        "aliases",
        "archetype",
        "breadcrumbLinks",
        "breadcrumbs",
        "categoryLabel",
        "categorySlug",
        "contentCategories",
        "favIconImage",
        "featuredPdf",
        "htmlMetaData",
        "identifier",
        "insights_description",
        "insights_name",
        "institution",
        "layOut",
        "mastHead",
        "mdName",
        "offering",
        "openProjectWorkPackageType",
        "relatedOfferings",
        "searchCategory",
        "source",
        "sub",
        "tags",
        "via",
        "viaLink",
        "weight",
        "type",
        "layout",
        "keywords",
        "images",
        "image",
        "lastmod",
        "expiryDate",
        "url",
    )
)
_READ = {name.lower(): name for name in READ}
# Near misses that string likeness ranks wrong ("category" looks more like "categoryUrl").
_LIKELY = {
    "category": "categories",
    "categorie": "categories",
    "topic": "topics",
    "authors": "author",
    "links": "link",
    "titles": "title",
    "dates": "date",
}


def lint(fields: Fields, relpath: str) -> list[Problem]:
    """Warnings about the front matter: what would otherwise go unnoticed."""
    found: list[Problem] = []
    for key, spelled in fields.names.items():
        if key in _READ or key in IGNORED:
            continue
        if reads_as_prose(key):
            found.append(Problem(relpath, fields.lines[key], "warning", _prose_key(spelled)))
            continue
        close = (
            [_LIKELY[key].lower()]
            if key in _LIKELY
            else difflib.get_close_matches(key, list(_READ), n=1, cutoff=0.75)
        )
        if close:
            found.append(
                Problem(
                    relpath,
                    fields.lines[key],
                    "warning",
                    f"'{spelled}' is not a field bulletin reads; did you mean '{_READ[close[0]]}'?",
                )
            )
    for parent, read in _NESTED.items():
        found.extend(_nested(fields, parent, read, relpath))
    link = fields.get("link")
    if isinstance(link, str):
        found.append(
            Problem(
                relpath,
                fields.lines["link"],
                "warning",
                f"link is text, so bulletin finds no link in it; write it as link:, then on the "
                f"next line href: '{link.strip()[:80]}' (indented)",
            )
        )
    return found


# The fields bulletin reads inside a mapping, by the mapping's name (lower case) as authors
# spell them: a key close to one of these, where that one is missing, is likely a typo.
_NESTED = {
    "link": ("href", "brand"),
    "featuredimage": ("href", "alt", "size", "format", "valid"),
}


def _nested(fields: Fields, parent: str, read: tuple[str, ...], relpath: str) -> list[Problem]:
    """Warnings for `featuredImage: herf: …` (a field bulletin reads, misspelled: no image)
    and for `link:` written as a list (`- href: …`: no link)."""
    value = fields.get(parent)
    name = fields.names.get(parent, parent)
    if isinstance(value, list) and any(isinstance(entry, dict) for entry in value):
        says = (
            f"{name} is a list (its fields start with '- '), so bulletin reads none of them; remove the '- '"
        )
        return [Problem(relpath, fields.lines.get(parent), "warning", says)]
    if not isinstance(value, Fields):
        return []
    problems = []
    missing = [key for key in read if key not in value]
    for key, spelled in value.names.items():
        # Two words of lengths a <= b match at most 2a / (a + b): below the cutoff of 0.75
        # when a < 0.6 b. Those are left out before difflib is asked (most of a parse's
        # calls, which took a tenth of its time).
        near = [m for m in missing if 3 * max(len(m), len(key)) <= 5 * min(len(m), len(key))]
        if key in read or not near:
            continue
        close = difflib.get_close_matches(key, near, n=1, cutoff=0.75)
        if close:
            says = f"'{name}.{spelled}' is not a field bulletin reads; did you mean '{name}.{close[0]}'?"
            problems.append(Problem(relpath, value.lines.get(key), "warning", says))
    return problems


# A key of this many words is a sentence: the body's, read as a field because the front
# matter was not closed before it (its '---' missing, the body's first '---' rule closing it).
PROSE_WORDS = 4


def reads_as_prose(key: str) -> bool:
    """Whether a top-level key, or a line's text before ': ', reads as a sentence."""
    return len(key.split(None, PROSE_WORDS - 1)) >= PROSE_WORDS


def _prose_key(spelled: str) -> str:
    shown = spelled if len(spelled) <= 60 else spelled[:59] + "…"
    return (
        f"'{shown}' reads as a sentence, not a field name: the front matter seems not closed "
        "before this line; add a '---' line after the front matter"
    )


def comma_topics(topics: Found, relpath: str) -> list[Problem]:
    """A warning for topics written as one text with commas (`categories: A, B`), which is
    one topic named 'A, B'; a list entry with a comma is such a name on purpose."""
    names = [name.strip() for name in one_line(topics.value).split(",") if name.strip()]
    if not names:
        return []
    key = topics.name.rsplit(".", 1)[-1]
    listed = ", ".join("'" + name.replace("'", "''") + "'" for name in names)
    message = (
        f"{topics.name} '{one_line(topics.value)}' is one topic whose name holds a comma; for "
        f"several topics write a list, {key}: [{listed}] (for one such topic, a list of one)"
    )
    return [Problem(relpath, topics.line, "warning", message)]


def no_source(relpath: str, has_page: bool) -> Problem:
    """An item that points at no article: feeds and the digest link to its page on the site,
    or, without one, the feeds give it no link and the digest links the site."""
    where = (
        "feeds and the digest link to its page on the site instead"
        if has_page
        else "its feed entries have no link and the digest links the site instead"
    )
    message = f"has no source link, so {where}; add link: with href: 'https://…' under it"
    return Problem(relpath, None, "warning", message)
