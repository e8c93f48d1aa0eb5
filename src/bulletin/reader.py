"""Read curated files from `content/` into Items; report every file that cannot become one."""

from __future__ import annotations

import gc
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urljoin, urlsplit
from zoneinfo import ZoneInfo

from . import bodies
from .cache import Cache, Stamp
from .config import Config
from .items import Image, Item
from .report import Problem, Report

if TYPE_CHECKING:
    from .build import Progress
    from .frontmatter import Fields

CONTENT_SUFFIXES = (".md", ".markdown", ".html")
MAX_FILE_BYTES = 20 * 1024 * 1024

# C0 controls other than tab, LF and CR, DEL, and C1 controls but NEL: libyaml rejects them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x84\x86-\x9f]")
_CLOSING = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_OPENING = re.compile(r"---[ \t]*\n")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r" ?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?"
)
_MIME = {
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
}
_TRUE = frozenset(("true", "yes", "on", "1"))
_FALSE = frozenset(("false", "no", "off", "0"))


class FieldError(Exception):
    """A field's value cannot be used; the item is skipped."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


# -- looking fields up ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Found:
    name: str  # the dotted name as the author spelled it
    value: Any
    line: int | None


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, dict)):
        return not value
    return False


def _lookup(fields: Fields, dotted: str) -> _Found | None:
    node: Any = fields
    spelled: list[str] = []
    line = None
    for part in dotted.lower().split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        mapping = cast("Fields", node)  # every mapping the front matter gives is Fields
        spelled.append(mapping.names[part])
        line = mapping.lines[part]
        node = mapping[part]
    if _empty(node):
        return None
    return _Found(".".join(spelled), node, line)


def _first(fields: Fields, *names: str) -> _Found | None:
    """The first of `names` with a non-empty value."""
    for name in names:
        found = _lookup(fields, name)
        if found is not None:
            return found
    return None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "text"


def _text(found: _Found, fix: str = "write it as one line of text") -> str:
    if not isinstance(found.value, str):
        raise FieldError(found.line, f"{found.name} is {_kind(found.value)}; {fix}")
    return " ".join(bodies.strip_forbidden(found.value).split())


def _texts(found: _Found, fix: str) -> list[str | None]:
    """A string or a list of strings, as a list; empty entries kept as None (for pairing)."""
    values = found.value if isinstance(found.value, list) else [found.value]
    out: list[str | None] = []
    for value in values:
        if value is None:
            out.append(None)
        elif isinstance(value, str):
            out.append(" ".join(bodies.strip_forbidden(value).split()) or None)
        else:
            raise FieldError(found.line, f"{found.name} contains {_kind(value)}; {fix}")
    return out


def _flag(found: _Found | None) -> bool:
    if found is None:
        return False
    value = _text(found, "write true or false").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FieldError(found.line, f"{found.name} '{found.value}' is not true or false; write true or false")


# -- dates -----------------------------------------------------------------------------------


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of `day` in `tz`; when midnight does not exist, the end of the gap."""
    moment = datetime.combine(day, time(0), tzinfo=tz)
    utc = moment.astimezone(UTC)
    if utc.astimezone(tz).date() == day and utc.astimezone(tz).time() == time(0):
        return moment
    # Midnight falls in a gap: search the whole seconds for the first one on `day`.
    low = int(datetime.combine(day, time(0), tzinfo=UTC).timestamp()) - 86400
    high = low + 2 * 86400
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).date() >= day:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, tz)


def parse_date(value: str, tz: ZoneInfo) -> datetime | None:
    """An aware datetime from the accepted forms, naive ones in `tz`; None if not a date."""
    value = value.strip()
    try:
        match = _DATE.fullmatch(value)
        if match:
            return local_midnight(date(*map(int, match.groups())), tz)
        match = _DATETIME.fullmatch(value)
        if not match:
            return None
        year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        if zulu:
            zone: Any = UTC
        elif sign:
            hours, minutes = int(off_h), int(off_m or 0)
            if hours > 23 or minutes > 59:
                return None
            delta = timedelta(hours=hours, minutes=minutes)
            zone = timezone(delta if sign == "+" else -delta)
        else:
            zone = tz
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            micro,
            tzinfo=zone,
        )
    except ValueError:
        return None


def _date(found: _Found, tz: ZoneInfo) -> datetime:
    text = _text(found, "write YYYY-MM-DD or an ISO 8601 date-time")
    parsed = parse_date(text, tz)
    if parsed is None:
        raise FieldError(
            found.line,
            f"{found.name} '{text}' is not a date; write YYYY-MM-DD or an ISO 8601 date-time",
        )
    return parsed


# -- one file ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one file gave: an item (None when skipped), its problems, and counters."""

    item: Item | None
    problems: tuple[Problem, ...]
    clamped: bool = False


def decode(raw: bytes) -> str:
    """The file's text with LF line endings and no BOM; FieldError unless UTF-8 or UTF-16."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise FieldError(
                line,
                f"byte 0x{raw[exc.start]:02x} is not UTF-8; save the file as UTF-8",
            ) from None
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def parse_item(raw: bytes, relpath: str, config: Config) -> Parsed:
    """Turn one file's bytes into an Item, or into problems saying why it cannot be one."""
    problems: list[Problem] = []
    fingerprint = _digest(raw)
    try:
        item, clamped = _parse(raw, relpath, config, fingerprint, problems)
    except FieldError as exc:
        problems.append(Problem(relpath, exc.line, "error", exc.message))
        return Parsed(None, tuple(problems))
    return Parsed(item, tuple(problems), clamped)


def _parse(
    raw: bytes, relpath: str, config: Config, fingerprint: str, problems: list[Problem]
) -> tuple[Item, bool]:
    if len(raw) > MAX_FILE_BYTES:
        raise FieldError(
            None,
            f"is {len(raw) / 1e6:.1f} MB; items are limited to {MAX_FILE_BYTES // 2**20} MB: "
            "shorten the body or link to the article",
        )
    if not raw.strip():
        raise FieldError(None, "is empty; an item starts with a '---' line, YAML fields, then '---'")
    text = decode(raw)
    opening = _OPENING.match(text)
    if not opening:
        raise FieldError(
            1, "has no front matter; start the file with a '---' line, then YAML fields, then '---'"
        )
    closing = _CLOSING.search(text, opening.end())
    if not closing:
        raise FieldError(1, "front matter is not closed; add a '---' line after the last field")
    front = text[opening.end() : closing.start()]
    body_offset = closing.end() + 1
    if _CONTROL.search(front):
        for number, line in enumerate(front.split("\n"), start=2):
            if _CONTROL.search(line):
                codes = ", ".join(sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(line)}))
                problems.append(
                    Problem(
                        relpath,
                        number,
                        "warning",
                        f"control character {codes} removed; delete it from the file",
                    )
                )
        front = _CONTROL.sub("", front)
    from .frontmatter import Fields, FrontMatterError, parse_front_matter

    try:
        fields = parse_front_matter(front, first_line=2)
    except FrontMatterError as exc:
        raise FieldError(exc.line, exc.message) from None
    if fields is None:
        fields = Fields()
    if not isinstance(fields, Fields):
        raise FieldError(2, f"front matter is {_kind(fields)}, not fields; write 'name: value' lines")
    return _item_from(fields, text, body_offset, relpath, config, fingerprint)


def _item_from(
    fields: Fields, text: str, body_offset: int, relpath: str, config: Config, fingerprint: str
) -> tuple[Item, bool]:
    tz = config.timezone
    stem = relpath.removeprefix("content/").rsplit(".", 1)[0]
    found = _lookup(fields, "id")
    item_id = _text(found, "write the id as text") if found else unicodedata.normalize("NFC", stem)

    found = _first(fields, "title", "openGraphMetaData.ogtitle", "twitterMetaData.twittertitle")
    if found is None:
        raise FieldError(None, "title is missing; add a line title: 'The article title'")
    title = _text(found)
    if not title:
        raise FieldError(found.line, f"{found.name} has no visible text; write the article's title")

    found = _first(fields, "date", "publishDate")
    if found is None:
        raise FieldError(None, "date is missing; add a line date: 'YYYY-MM-DD'")
    published = _date(found, tz)
    found = _first(fields, "lastMod", "updated")
    updated = _date(found, tz) if found else published
    clamped = updated < published
    if clamped:
        updated = published

    found = _first(fields, "link.href", "href", "original", "openProjectCustomFields.sourceUrl")
    link = None
    if found is not None:
        link = _text(found, "write the article's full https:// address")
        parts = urlsplit(link)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise FieldError(
                found.line,
                f"{found.name} '{link}' is not an absolute http(s) URL; "
                "write the article's full https:// address",
            )
    found = _lookup(fields, "link.brand")
    if found is not None:
        source_name: str | None = _text(found)
    elif link:
        source_name = (urlsplit(link).hostname or "").removeprefix("www.") or None
    else:
        source_name = None

    page = _page(fields, config)
    found = _first(
        fields,
        "summary",
        "openGraphMetaData.ogdescription",
        "twitterMetaData.twitterdescription",
        "description",
    )
    if found is not None:
        summary = bodies.summarize(_text(found, "write the summary as text"))
    else:
        body = text[body_offset:]
        summary = bodies.summarize(bodies.plain_text(bodies.to_html(body, relpath)))

    found = _lookup(fields, "author")
    authors = tuple(a for a in _texts(found, "write names as text") if a) if found else ()

    topics, topic_urls = _topics(fields)
    image = _image(fields, page or config.site_url)
    draft = _flag(_lookup(fields, "draft"))
    status = _lookup(fields, "status")
    if status is not None and isinstance(status.value, str) and status.value.strip().lower() == "draft":
        draft = True
    item = Item(
        id=item_id,
        path=relpath,
        title=title,
        published=published,
        updated=updated,
        link=link,
        source_name=source_name,
        summary=summary,
        authors=authors,
        topics=topics,
        topic_urls=topic_urls,
        image=image,
        page=page,
        draft=draft,
        body_offset=body_offset,
        fingerprint=fingerprint,
    )
    return item, clamped


def _page(fields: Fields, config: Config) -> str | None:
    found = _lookup(fields, "slug")
    if found is None:
        return None
    slug = _text(found, "write the slug as text").strip("/")
    base = _lookup(fields, "basePath")
    base_path = _text(base, "write the base path as text").strip("/") if base else ""
    path = "/".join(part for part in (base_path, slug) if part)
    return urljoin(config.site_url, quote(path, safe="/-._~") + "/")


def _topics(fields: Fields) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    fix = "write topic names as text"
    found = _lookup(fields, "categories")
    if found is not None:
        names = _texts(found, fix)
        urls_found = _lookup(fields, "categoryUrl")
        urls = _texts(urls_found, "write topic URLs as text") if urls_found else []
        pairs = [
            (
                name,
                (urls[i] or "").rstrip("/").rsplit("/", 1)[-1] if i < len(urls) and urls[i] else None,
            )
            for i, name in enumerate(names)
        ]
    else:
        found = _first(fields, "openProjectCustomFields.medigyTopics", "topics")
        pairs = [(name, None) for name in _texts(found, fix)] if found else []
    kept = [(name, url) for name, url in pairs if name]
    return tuple(n for n, _ in kept), tuple(u for _, u in kept)


def _image(fields: Fields, base: str) -> Image | None:
    image = _lookup(fields, "featuredImage")
    if image is None:
        return None
    if not isinstance(image.value, dict):
        raise FieldError(image.line, f"{image.name} is {_kind(image.value)}; write href, alt, size under it")
    sub = cast("Fields", image.value)
    valid = _lookup(sub, "valid")
    if valid is not None and not _flag(_Found(f"{image.name}.{valid.name}", valid.value, valid.line)):
        return None
    href = _lookup(sub, "href")
    if href is None:
        return None
    where = f"{image.name}."
    url = urljoin(base, _text(_Found(where + href.name, href.value, href.line)).replace(" ", "%20"))
    if urlsplit(url).scheme not in ("http", "https"):
        raise FieldError(
            href.line,
            f"{where}{href.name} '{href.value}' is not an http(s) image URL; "
            "write a file name or an https:// address",
        )
    alt = _lookup(sub, "alt")
    alt_text = _text(_Found(where + alt.name, alt.value, alt.line)) if alt else None
    width = height = None
    size = _lookup(sub, "size")
    if size is not None:
        values = size.value
        try:
            if not isinstance(values, list) or len(values) != 2:
                raise ValueError
            width, height = (int(str(v)) for v in values)
            if width <= 0 or height <= 0:
                raise ValueError
        except (ValueError, TypeError):
            raise FieldError(
                size.line,
                f"{where}{size.name} is not [width, height]; write two whole numbers of pixels",
            ) from None
    mime = None
    fmt = _lookup(sub, "format")
    if fmt is not None:
        mime = _MIME.get(_text(_Found(where + fmt.name, fmt.value, fmt.line)).lower())
    if mime is None:
        mime = _MIME.get(urlsplit(url).path.rsplit(".", 1)[-1].lower())
    return Image(url=url, alt=alt_text, width=width, height=height, mime_type=mime)


# -- the whole folder ----------------------------------------------------------------------


def find_item_files(content_dir: Path) -> Iterator[tuple[str, str]]:
    """Every item file under content/ as (path relative to the site, path to open), any
    depth, hidden files and folders skipped, in a stable order. Strings, not Paths: this
    runs for every file on every build."""
    root = os.fspath(content_dir)
    prefix = content_dir.name
    stack = [("", root)]
    while stack:
        relative, folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        folders = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir():
                if not name.startswith("_"):
                    folders.append((f"{relative}{name}/", entry.path))
            elif name.endswith(CONTENT_SUFFIXES):
                yield f"{prefix}/{relative}{name}", entry.path
        stack.extend(reversed(folders))


def read_body(item: Item, config: Config) -> str:
    """The item's body as sanitised HTML, URLs absolute, ready for a feed or a digest."""
    raw = (config.site / item.path).read_bytes()
    text = decode(raw)
    body_html = bodies.to_html(bodies.strip_forbidden(text[item.body_offset :]), item.path)
    return bodies.sanitize(body_html, item.link or item.page or config.site_url)


@dataclass(frozen=True, slots=True)
class Collection:
    """The items a build publishes, newest first, with what was held back and why."""

    items: tuple[Item, ...]
    drafts: int
    scheduled: tuple[Item, ...]
    files: int


def read_items(
    config: Config,
    report: Report,
    now: datetime,
    progress: Progress | None = None,
    jobs: int | None = None,
) -> Collection:
    """Read every item file (through the parse cache), report problems, drop duplicates.

    Files the cache cannot answer for are parsed in `jobs` processes (default: one per CPU)
    when there are enough of them to pay for starting the processes.
    """
    # Reading creates many long-lived objects and no cycles: the cyclic GC would only
    # rescan them over and over (a third of a warm build's time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _read_items(config, report, now, progress, jobs)
    finally:
        if gc_was_enabled:
            gc.enable()


def _read_items(
    config: Config, report: Report, now: datetime, progress: Progress | None, jobs: int | None
) -> Collection:
    cache = Cache(config.cache_dir, "items", config.fingerprint, shards=16)
    files = list(find_item_files(config.content_dir))
    if progress is not None:
        progress.start("Reading items", len(files))
    results: dict[str, Parsed] = {}
    stale: list[_Stale] = []
    for relpath, path in files:
        hit = _cached(relpath, path, cache)
        if isinstance(hit, Parsed):
            results[relpath] = hit
            if progress is not None:
                progress.advance()
        else:
            stale.append(hit)
    if stale:
        from .frontmatter import LIBYAML

        if not LIBYAML:
            report.warning(
                "bulletin",
                None,
                "PyYAML has no libyaml here: reading items is 11-14 "
                "times slower; reinstall PyYAML from a wheel that includes it",
            )
    for relpath, stamp, digest, result in _parse_all(stale, config, _jobs(jobs, len(stale))):
        results[relpath] = result
        cache.put(relpath, _to_row(stamp, digest, result))
        if progress is not None:
            progress.advance()
    if progress is not None:
        progress.finish()
    cache.keep_only(set(results))
    cache.save()

    by_id: dict[str, Item] = {}
    clamped = 0
    for relpath, _ in files:
        result = results[relpath]
        report.extend(list(result.problems))
        clamped += result.clamped
        item = result.item
        if item is None:
            continue
        other = by_id.get(item.id)
        if other is None:
            by_id[item.id] = item
            continue
        keep, drop = (
            (item, other) if (item.updated, item.path) > (other.updated, other.path) else (other, item)
        )
        by_id[item.id] = keep
        report.warning(
            drop.path,
            None,
            f"id '{item.id}' is also used by {keep.path}, which is newer "
            "and wins; give this item its own id or delete it",
        )
    if clamped:
        report.note(f"{clamped} item(s) had lastMod before date; updated was set to the date")
    drafts = sum(1 for item in by_id.values() if item.draft)
    scheduled = tuple(sorted((i for i in by_id.values() if not i.draft and i.published > now), key=_ORDER))
    for item in scheduled:
        report.note(f"{item.path}: scheduled for {item.published.isoformat()}, held back")
    items = tuple(
        sorted(
            (i for i in by_id.values() if not i.draft and i.published <= now),
            key=_ORDER,
            reverse=True,
        )
    )
    return Collection(items=items, drafts=drafts, scheduled=scheduled, files=len(files))


# Published, then updated, then id: a total order (ids are unique after de-duplication).
_ORDER = attrgetter("published", "updated", "id")
_PARALLEL_MIN = 400  # below this, starting processes costs more than it saves


def _jobs(jobs: int | None, stale: int) -> int:
    if jobs is None:
        env = os.environ.get("BULLETIN_JOBS", "")
        jobs = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    return 1 if stale < _PARALLEL_MIN else max(1, min(jobs, 8))


@dataclass(frozen=True, slots=True)
class _Stale:
    """A file the cache cannot vouch for: new, or its stamp moved."""

    relpath: str
    path: str
    stamp: Stamp
    digest: str | None = None  # of the bytes the cached result was parsed from
    result: Parsed | None = None


def _to_row(stamp: Stamp, digest: str, parsed: Parsed) -> tuple[object, ...]:
    """A cache entry: plain tuples only, which load several times faster than objects."""
    item = None if parsed.item is None else parsed.item.to_row()
    problems = tuple((p.path, p.line, p.level, p.message) for p in parsed.problems)
    return (
        stamp.size,
        stamp.mtime_ns,
        stamp.ctime_ns,
        stamp.inode,
        digest,
        item,
        problems,
        parsed.clamped,
    )


def _from_row(row: tuple[Any, ...]) -> Parsed:
    item = None if row[5] is None else Item.from_row(row[5])
    return Parsed(item, tuple(Problem(*p) for p in row[6]), row[7])


def _cached(relpath: str, path: str, cache: Cache) -> Parsed | _Stale:
    """The cached result when the file's stamp is unchanged; else a _Stale to parse."""
    try:
        stamp = Stamp.of(os.stat(path))
    except OSError:
        return _Stale(relpath, path, Stamp(-1, -1, -1, -1))
    row = cache.get(relpath)
    if row is None:
        return _Stale(relpath, path, stamp)
    if row[:4] == (stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.inode):
        return _from_row(row)
    # The stamp moved (touched, copied, checked out): re-parse only if the bytes changed.
    return _Stale(relpath, path, stamp, row[4], _from_row(row))


def _parse_one(relpath: str, path: str, known: str | None, config: Config) -> tuple[str, Parsed | None]:
    """The file's digest and its parse; None instead of a parse when the digest is `known`."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return "", Parsed(None, (Problem(relpath, None, "error", f"cannot be read: {exc.strerror}"),))
    digest = _digest(raw)
    if digest == known:
        return digest, None
    return digest, parse_item(raw, relpath, config)


def _parse_chunk(chunk: list[tuple[str, str, str | None]], config: Config) -> list[tuple[str, Parsed | None]]:
    return [_parse_one(relpath, path, known, config) for relpath, path, known in chunk]


def _parse_all(stale: list[_Stale], config: Config, jobs: int) -> Iterator[tuple[str, Stamp, str, Parsed]]:
    """Parse the files the cache could not answer for, in order, in `jobs` processes."""
    work = [(s.relpath, s.path, s.digest) for s in stale]
    results: Iterator[tuple[str, Parsed | None]]
    if jobs > 1:
        results = _in_processes(work, config, jobs)
    else:
        results = (_parse_one(relpath, path, known, config) for relpath, path, known in work)
    for entry, (digest, result) in zip(stale, results, strict=True):
        parsed = result if result is not None else entry.result
        assert parsed is not None
        yield entry.relpath, entry.stamp, digest, parsed


def _in_processes(
    work: list[tuple[str, str, str | None]], config: Config, jobs: int
) -> Iterator[tuple[str, Parsed | None]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork starts workers without re-importing bulletin; elsewhere the platform default.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    size = max(50, len(work) // (jobs * 8))
    chunks = [work[i : i + size] for i in range(0, len(work), size)]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method)) as pool:
        for chunk in pool.map(_parse_chunk, chunks, [config] * len(chunks)):
            yield from chunk


def _digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()
