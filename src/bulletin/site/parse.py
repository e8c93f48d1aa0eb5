"""One curated file to an Item: decode, split off the front matter, read each field."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from urllib.parse import quote, urljoin, urlsplit

from ..config import Config
from ..errors import ItemError
from ..links import as_uri, credentials, url_problem
from ..report import Problem
from ..text import plain_text, text_of
from . import bodies
from .blockyaml import read_block_yaml
from .fields import Fields, Found, date_of, first, flag, kind, lookup, text, texts
from .items import Image, Item
from .lint import comma_topics, lint, no_source

MAX_FILE_BYTES = 20 * 1024 * 1024
# An item is in each of its topics' feeds and pages, each listing all its topics: the work
# grows with the square of their number, and no article is about a hundred things.
MAX_TOPICS = 100
# Each topic's name is on every page and in every feed of its items, and in the feed list.
MAX_TOPIC_NAME = 300

# C0 controls other than tab, LF and CR, DEL, and C1 controls but NEL: libyaml rejects them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x84\x86-\x9f]")
# The closing line: '---' or '...', then only spaces or tabs. Searched for as a line break
# and the mark (a literal start lets the search skip ahead), the first line on its own.
_CLOSING_FIRST = re.compile(r"(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_CLOSING_NEXT = re.compile(r"\n((?:---|\.\.\.)[ \t]*)$", re.MULTILINE)
_OPENING = re.compile(r"---[ \t]*\n")
_MIME = {
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
}


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one file gave: an item (None when skipped), its problems, and counters."""

    item: Item | None
    problems: tuple[Problem, ...]
    clamped: bool = False
    # The field that dates the item's last update after its publication, as written: (name,
    # line, value). A build earlier than that update warns, and uses the date until then.
    later: tuple[str, int | None, str] | None = None


def digest(raw: bytes) -> str:
    """A hash of a file's bytes: changes whenever the file does."""
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def decode(raw: bytes) -> str:
    """The file's text with LF line endings and no BOM; ItemError unless UTF-8 or UTF-16."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].decode("utf-16", "replace").count("\n") + 1
            raise ItemError(
                line, f"is not UTF-16: {exc.reason} at byte {exc.start}; save the file as UTF-8"
            ) from None
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ItemError(
                line,
                f"byte 0x{raw[exc.start]:02x} is not UTF-8; save the file as UTF-8",
            ) from None
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def parse_item(raw: bytes, relpath: str, config: Config, hashed: str | None = None) -> Parsed:
    """Turn one file's bytes into an Item, or into problems saying why it cannot be one.
    `hashed`: the bytes' digest, when the caller has made it (hashing 9 kB twice cost 5% of
    a parse)."""
    problems: list[Problem] = []
    try:
        item, clamped, later = _parse(raw, relpath, config, problems, hashed or digest(raw))
    except ItemError as exc:
        problems.append(Problem(relpath, exc.line, "error", exc.message))
        return Parsed(None, tuple(problems))
    except Exception as exc:  # one file must never stop the run: skip it, and say why
        message = f"cannot be read: {type(exc).__name__}: {exc}; this is a bug in bulletin, please report it"
        problems.append(Problem(relpath, None, "error", message))
        return Parsed(None, tuple(problems))
    return Parsed(item, tuple(problems), clamped, later)


def _parse(
    raw: bytes, relpath: str, config: Config, problems: list[Problem], hashed: str
) -> tuple[Item, bool, tuple[str, int | None, str] | None]:
    if len(raw) > MAX_FILE_BYTES:
        raise ItemError(
            None,
            # MB of 2**20 bytes, as the limit; rounded up, so never shown as the limit itself
            f"is {math.ceil(len(raw) * 10 / 2**20) / 10:.1f} MB; items are limited to "
            f"{MAX_FILE_BYTES // 2**20} MB: "
            "shorten the body or link to the article",
        )
    if not raw.strip():
        raise ItemError(None, "is empty; an item starts with a '---' line, YAML fields, then '---'")
    head = raw[:64]
    if len(head) >= 8 and head.count(0) * 3 >= len(head) and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        # '---' in UTF-16 or UTF-32 is no '---' line in UTF-8: not "has no front matter"
        raise ItemError(None, "looks like UTF-16 or UTF-32 without a byte order mark; save the file as UTF-8")
    text = decode(raw)
    opening = _OPENING.match(text)
    if not opening:
        raise ItemError(
            1, "has no front matter; start the file with a '---' line, then YAML fields, then '---'"
        )
    closing = closing_line(text, opening.end())
    if closing is None:
        raise ItemError(1, "front matter is not closed; add a '---' line after the last field")
    clean = surely_clean(raw)
    front = text[opening.end() : closing[0]]
    front = front if clean else _without_controls(front, relpath, problems)
    fields = _fields(front)
    problems.extend(lint(fields, relpath))
    body_offset = closing[1] + 1
    limit = bodies.body_limit(config.feed_content_kb)
    body = bodies.prepare(text[body_offset:], limit, clean)
    item, clamped, later = _item_from(fields, body, body_offset, relpath, config, hashed, problems)
    _body_problems(text, body_offset, body, limit, relpath, problems, clean)
    # A draft may wait for its link; a link written as text, lint named already.
    if item.link is None and not item.draft and not isinstance(fields.get("link"), str):
        problems.append(no_source(relpath, item.page is not None))
    return item, clamped, later


def closing_line(text: str, start: int) -> tuple[int, int] | None:
    """Where the first closing line at or after `start` (a line's start) begins and ends."""
    found = _CLOSING_FIRST.match(text, start)
    if found is not None:
        return found.start(), found.end()
    found = _CLOSING_NEXT.search(text, start)
    return None if found is None else (found.start(1), found.end(1))


# The characters _CONTROL and text.strip_forbidden look for, as UTF-8 bytes.
_C0_BYTES = bytes(c for c in range(32) if c not in (9, 10, 13)) + b"\x7f"
_C1 = re.compile(rb"\xc2[\x80-\x84\x86-\x9f]")
# U+FFFD-U+FFFF and U+FDD0-U+FDEF; U+nFFFE and U+nFFFF in the other planes. Two patterns,
# each searched only when its bytes occur: one pattern of both has no first byte for the
# search to skip to, and tried at every byte it made the whole parse 15% slower.
_NONCHARACTER = re.compile(rb"\xef(?:\xbf[\xbd-\xbf]|\xb7[\x90-\xaf])")
_ASTRAL_NONCHARACTER = re.compile(rb"[\xf0-\xf4][\x8f\x9f\xaf\xbf]\xbf[\xbe\xbf]")


def surely_clean(raw: bytes) -> bool:
    """True when a UTF-8 file holds no control or XML-forbidden character, so that the
    searches for them can be skipped: the usual case, found at a fraction of their cost
    (deleting bytes and searching for one byte run at memory speed; regexes do not)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or len(raw.translate(None, _C0_BYTES)) != len(raw):
        return False
    if b"\xc2" in raw and _C1.search(raw):
        return False
    if b"\xef" in raw and _NONCHARACTER.search(raw):
        return False
    # One byte is searched at memory speed, two bytes at a tenth of it: \xbf first.
    astral = b"\xbf" in raw and (b"\xbf\xbe" in raw or b"\xbf\xbf" in raw)
    return not (astral and _ASTRAL_NONCHARACTER.search(raw))


def _without_controls(front: str, relpath: str, problems: list[Problem]) -> str:
    """The front matter without control characters, each line that had one warned about."""
    if not _CONTROL.search(front):
        return front
    for number, line in enumerate(front.split("\n"), start=2):
        if _CONTROL.search(line):
            codes = ", ".join(sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(line)}))
            message = f"control character {codes} removed; delete it from the file"
            problems.append(Problem(relpath, number, "warning", message))
    return _CONTROL.sub("", front)


def _body_problems(
    text: str,
    offset: int,
    body: bodies.Prepared,
    limit: int,
    relpath: str,
    problems: list[Problem],
    clean: bool,
) -> None:
    """Warn about what every use of the body leaves out: control characters, all that comes
    after the cut, the tags nested too deep."""
    found = None if clean else _CONTROL.search(text, offset)
    if found is not None:
        codes = ", ".join(sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(text, offset)}))
        message = f"control character {codes} removed from the body; delete it from the file"
        problems.append(Problem(relpath, text.count("\n", 0, found.start()) + 1, "warning", message))
    if body.cut:
        message = (
            f"body is {body.length:,} characters long; only its first {limit:,} are used "
            "(twice feed_content_kb, 64 KB to 1 MB): shorten it or link to the article"
        )
        problems.append(Problem(relpath, None, "warning", message))
    bare = bodies.links_left_bare(body.text, relpath)
    if bare:
        message = (
            f"body's reference links repeat their addresses past {bodies.REPEATED_LINKS // 1024} kB "
            f"more than the body itself; {bare:,} of them keep their text without an address: "
            "use each reference fewer times"
        )
        problems.append(Problem(relpath, None, "warning", message))
    if body.dropped_at is not None:
        line = text.count("\n", 0, offset) + 1 + body.text.count("\n", 0, body.dropped_at)
        message = (
            f"body nests elements more than {bodies.DEPTH_LIMIT} deep; the deeper tags are dropped "
            "and their text kept: simplify its HTML"
        )
        problems.append(Problem(relpath, line, "warning", message))


def _fields(front: str) -> Fields:
    fields: object = read_block_yaml(front, first_line=2)
    if fields is None:  # outside the subset: libyaml reads it, and words any error
        from .frontmatter import parse_front_matter  # PyYAML, only when it is needed

        fields = parse_front_matter(front, first_line=2)
    if fields is None:
        return Fields()
    if not isinstance(fields, Fields):
        raise ItemError(2, f"front matter is {kind(fields)}, not fields; write 'name: value' lines")
    return fields


def _item_from(
    fields: Fields,
    body: bodies.Prepared,
    body_offset: int,
    relpath: str,
    config: Config,
    fingerprint: str,
    problems: list[Problem],
) -> tuple[Item, bool, tuple[str, int | None, str] | None]:
    """The item; whether its update was before its publication (and set to it); the field
    that dates its update after its publication (see Parsed.later)."""
    # Fields are read in this order so that a file with several problems reports the same one.
    item_id, title = _id(fields, relpath), _title(fields)
    published, updated, updated_field = _dates(fields, config)
    link, source_name = _source(fields)
    page = _page(fields, config)
    summary = _summary(fields, body.text, relpath)
    authors = _authors(fields)
    topics, topic_urls = _limited_topics(fields, relpath, problems)
    item = Item(
        id=item_id,
        path=relpath,
        title=title,
        published=published,
        updated=max(updated, published),
        link=link,
        source_name=source_name,
        summary=summary,
        authors=authors,
        topics=topics,
        topic_urls=topic_urls,
        image=_image(fields, page or config.site_url),
        page=page,
        draft=_draft(fields),
        body_offset=body_offset,
        fingerprint=fingerprint,
    )
    later = None
    if updated > published and updated_field is not None:
        # as written, for the message: a date, read as one already (most items have it: no one_line)
        later = (updated_field.name, updated_field.line, str(updated_field.value))
    return item, updated < published, later


def _id(fields: Fields, relpath: str) -> str:
    found = lookup(fields, "id")
    if found is not None:
        return text(found, "write the id as text")
    stem = relpath.removeprefix("content/").rsplit(".", 1)[0]
    return unicodedata.normalize("NFC", stem)


def _title(fields: Fields) -> str:
    found = first(fields, "title", "openGraphMetaData.ogtitle", "twitterMetaData.twittertitle")
    if found is None:
        raise ItemError(None, "title is missing; add a line title: 'The article title'")
    title = text_of(text(found))  # markup in a title is shown as tags by every reader
    if not title:
        raise ItemError(found.line, f"{found.name} has no visible text; write the article's title")
    if all(_invisible(c) for c in title):
        codes = ", ".join(sorted({f"U+{ord(c):04X}" for c in title if not c.isspace()}))
        raise ItemError(
            found.line, f"{found.name} has only invisible characters ({codes}); write the article's title"
        )
    return title


# Blank characters that are neither whitespace nor format characters.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(character: str) -> bool:
    """Whitespace, a format character (zero-width space, joiners, word joiner, BOM…), a mark
    that shows only on a letter (a combining accent, a variation selector) or a filler."""
    return (
        character.isspace() or unicodedata.category(character) in ("Cf", "Zs", "Mn") or character in _FILLERS
    )


def _dates(fields: Fields, config: Config) -> tuple[datetime, datetime, Found | None]:
    """Published and updated as written (updated may be earlier: the caller clamps it), and
    the field updated came from."""
    found = first(fields, "date", "publishDate")
    if found is None:
        raise ItemError(None, "date is missing; add a line date: 'YYYY-MM-DD'")
    published = date_of(found, config.timezone)
    found = first(fields, "lastMod", "updated")
    return published, date_of(found, config.timezone) if found else published, found


def _source(fields: Fields) -> tuple[str | None, str | None]:
    """The curated article's link and the name of its source."""
    found = first(fields, "link.href", "href", "original", "openProjectCustomFields.sourceUrl")
    link = None
    if found is not None:
        link = text(found, "write the article's full https:// address")
        try:
            parts = urlsplit(link)
            absolute = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:  # unclosed or invalid [IPv6] brackets
            absolute = True  # url_problem says what is wrong
        if not absolute:
            raise ItemError(
                found.line,
                f"{found.name} '{link}' is not an absolute http(s) URL; "
                "write the article's full https:// address",
            )
        problem = url_problem(link)
        if problem is not None:
            raise ItemError(
                found.line,
                f"{found.name} '{link}' is not an address browsers can open ({problem}); "
                "write the article's full https:// address",
            )
        _refuse_credentials(link, found.name, link, found.line)
        link = as_uri(link)
    found = lookup(fields, "link.brand")
    if found is not None:
        return link, text(found)
    if link:
        return link, (parts.hostname or "").removeprefix("www.") or None
    return link, None


def _refuse_credentials(url: str, name: str, written: str, line: int | None) -> None:
    """ItemError when `url` holds a user name or password, which every feed would publish."""
    userinfo = credentials(url)
    if userinfo is not None:
        raise ItemError(
            line,
            f"{name} '{written}' holds a user name or password, which feeds and digests would "
            f"publish; remove '{userinfo}'",
        )


def _summary(fields: Fields, body: str, relpath: str) -> str:
    found = first(
        fields,
        "summary",
        "openGraphMetaData.ogdescription",
        "twitterMetaData.twitterdescription",
        "description",
    )
    if found is not None:
        return bodies.summarize(text_of(text(found, "write the summary as text")))
    return bodies.summarize(plain_text(bodies.to_html(body, relpath)))


def _authors(fields: Fields) -> tuple[str, ...]:
    """The names, as text: markup in one is shown as tags by every reader, as in a title."""
    found = lookup(fields, "author")
    if found is None:
        return ()
    names = (text_of(name) for name in texts(found, "write names as text") if name)
    return tuple(name for name in names if name)


def _draft(fields: Fields) -> bool:
    draft = flag(lookup(fields, "draft"))
    status = lookup(fields, "status")
    return draft or (
        status is not None and isinstance(status.value, str) and status.value.strip().lower() == "draft"
    )


def _page(fields: Fields, config: Config) -> str | None:
    found = lookup(fields, "slug")
    if found is None:
        return None
    slug = text(found, "write the slug as text").strip("/")
    base = lookup(fields, "basePath")
    base_path = text(base, "write the base path as text").strip("/") if base else ""
    path = "/".join(part for part in (base_path, slug) if part)
    return join_url(config.site_url, quote(path, safe="/-._~") + "/")


# A relative path of plain segments: no scheme, query, fragment, empty or dot segment.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_~%-][A-Za-z0-9._~%-]*(?:/[A-Za-z0-9_~%-][A-Za-z0-9._~%-]*)*/?")


def join_url(base: str, relative: str) -> str:
    """urljoin(base, relative), without urljoin's cost for the usual file name or path."""
    if _PLAIN_PATH.fullmatch(relative) and _appends(base):
        return base + relative
    return urljoin(base, relative)


def _appends(base: str) -> bool:
    """Whether urljoin appends a plain relative path to `base` as it is: an http(s) folder
    URL with no query, fragment, empty or dot segment."""
    if not base.endswith("/") or "?" in base or "#" in base:
        return False
    scheme, found, rest = base.partition("://")
    if not found or scheme.lower() not in ("http", "https"):
        return False
    path = rest[rest.find("/") :]
    return "//" not in path and "/./" not in path and "/../" not in path


def _limited_topics(
    fields: Fields, relpath: str, problems: list[Problem]
) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """The item's topics, with a warning for names over MAX_TOPIC_NAME and topics past
    MAX_TOPICS, which are left out."""
    topics, topic_urls = _visible_topics(fields, relpath, problems)
    long = [len(name) for name in topics if len(name) > MAX_TOPIC_NAME]
    if long:
        says = (
            f"has {len(long):,} topic name(s) longer than {MAX_TOPIC_NAME} characters (up to "
            f"{max(long):,}); they are left out: name each topic in a few words"
        )
        problems.append(_topics_warning(fields, relpath, says))
        kept = [(n, u) for n, u in zip(topics, topic_urls, strict=True) if len(n) <= MAX_TOPIC_NAME]
        topics, topic_urls = tuple(n for n, _ in kept), tuple(u for _, u in kept)
    if len(topics) > MAX_TOPICS:
        says = f"lists {len(topics):,} topics; only the first {MAX_TOPICS} are used: "
        says += "keep the few this item is about"
        problems.append(_topics_warning(fields, relpath, says))
        topics, topic_urls = topics[:MAX_TOPICS], topic_urls[:MAX_TOPICS]
    return topics, topic_urls


def _visible_topics(
    fields: Fields, relpath: str, problems: list[Problem]
) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """The item's topics, less (with a warning) names of only invisible characters, which
    would make a topic, a page and a feed with no visible name."""
    topics, topic_urls = _topics(fields, relpath, problems)
    blank = [name for name in topics if all(_invisible(c) for c in name)]
    if blank:
        codes = ", ".join(sorted({f"U+{ord(c):04X}" for name in blank for c in name if not c.isspace()}))
        says = f"has a topic name of only invisible characters ({codes}); it is left out: write its name"
        problems.append(_topics_warning(fields, relpath, says))
        kept = [(n, u) for n, u in zip(topics, topic_urls, strict=True) if n not in blank]
        topics, topic_urls = tuple(n for n, _ in kept), tuple(u for _, u in kept)
    return topics, topic_urls


def _topics_warning(fields: Fields, relpath: str, says: str) -> Problem:
    """A warning about the topics, on the line of the field that lists them."""
    found = first(fields, "categories", "openProjectCustomFields.medigyTopics", "topics")
    name = found.name if found else "categories"
    return Problem(relpath, found.line if found else None, "warning", f"{name} {says}")


def _topics(
    fields: Fields, relpath: str, problems: list[Problem]
) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    fix = "write topic names as text"
    found = lookup(fields, "categories")
    topics = found or first(fields, "openProjectCustomFields.medigyTopics", "topics")
    if topics is not None and isinstance(topics.value, str) and "," in topics.value:
        problems.extend(comma_topics(topics, relpath))
    if found is not None:
        names = texts(found, fix)
        urls_found = lookup(fields, "categoryUrl")
        urls = texts(urls_found, "write topic URLs as text") if urls_found else []
        pairs = [
            (
                name,
                (urls[i] or "").rstrip("/").rsplit("/", 1)[-1] if i < len(urls) and urls[i] else None,
            )
            for i, name in enumerate(names)
        ]
    else:
        pairs = [(name, None) for name in texts(topics, fix)] if topics else []
    pairs = [(text_of(name) if name else None, url) for name, url in pairs]  # feed titles
    kept = [(name, url) for name, url in pairs if name]
    return tuple(n for n, _ in kept), tuple(u for _, u in kept)


def _image(fields: Fields, base: str) -> Image | None:
    image = lookup(fields, "featuredImage")
    if image is None:
        return None
    if not isinstance(image.value, dict):
        raise ItemError(image.line, f"{image.name} is {kind(image.value)}; write href, alt, size under it")
    sub = cast("Fields", image.value)
    valid = lookup(sub, "valid")
    if valid is not None and not flag(image.within(valid)):
        return None
    href = lookup(sub, "href")
    if href is None:
        return None
    try:
        url = join_url(base, text(image.within(href)).replace(" ", "%20"))
        web = url.startswith(("http://", "https://")) or urlsplit(url).scheme in ("http", "https")
        problem = url_problem(url) if web else None
    except ValueError as exc:  # unclosed or invalid [IPv6] brackets
        web, problem = True, str(exc)
    if not web:
        raise ItemError(
            href.line,
            f"{image.name}.{href.name} '{href.value}' is not an http(s) image URL; "
            "write a file name or an https:// address",
        )
    if problem is not None:
        raise ItemError(
            href.line,
            f"{image.name}.{href.name} '{href.value}' is not an address browsers can open "
            f"({problem}); write a file name or an https:// address",
        )
    _refuse_credentials(url, f"{image.name}.{href.name}", href.value, href.line)
    alt = lookup(sub, "alt")
    width, height = _size(image, lookup(sub, "size"))
    return Image(
        url=as_uri(url),
        alt=text(image.within(alt)) if alt else None,
        width=width,
        height=height,
        mime_type=_mime(image, lookup(sub, "format"), url),
    )


def _size(image: Found, size: Found | None) -> tuple[int | None, int | None]:
    if size is None:
        return None, None
    values = size.value
    try:
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError
        width, height = (int(str(v)) for v in values)
        if width <= 0 or height <= 0:
            raise ValueError
    except (ValueError, TypeError):
        raise ItemError(
            size.line,
            f"{image.name}.{size.name} is not [width, height]; write two whole numbers of pixels",
        ) from None
    return width, height


def _mime(image: Found, fmt: Found | None, url: str) -> str | None:
    mime = _MIME.get(text(image.within(fmt)).lower()) if fmt is not None else None
    return mime or _MIME.get(urlsplit(url).path.rsplit(".", 1)[-1].lower())
