"""Item bodies: Markdown to HTML, sanitising to the feed validator's HTML, plain text, caps."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

import nh3

from ..text import DROP_WITH_CONTENT, strip_forbidden

# The W3C feed validator's list of acceptable HTML, less the tags it flags in
# practice (form controls, HTML5 novelties such as mark, ruby, summary, data),
# which nh3's defaults would let through.
ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "acronym",
        "address",
        "area",
        "article",
        "aside",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "del",
        "dfn",
        "dir",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "font",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "i",
        "img",
        "ins",
        "kbd",
        "li",
        "map",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "samp",
        "section",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "tt",
        "u",
        "ul",
        "var",
    }
)
_COMMON = {"title", "lang", "dir"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": _COMMON,
    "a": {"href", "hreflang", "name"},
    "abbr": {"title"},
    "area": {"href", "alt", "shape", "coords"},
    "blockquote": {"cite"},
    "col": {"span", "width", "align", "valign"},
    "colgroup": {"span", "width", "align", "valign"},
    "del": {"cite", "datetime"},
    "img": {"src", "alt", "width", "height", "longdesc"},
    "ins": {"cite", "datetime"},
    "map": {"name"},
    "ol": {"start", "type", "reversed"},
    "li": {"value"},
    "q": {"cite"},
    "table": {"border", "cellpadding", "cellspacing", "width", "summary", "align"},
    "td": {"colspan", "rowspan", "align", "valign", "headers", "abbr", "width"},
    "th": {"colspan", "rowspan", "align", "valign", "headers", "abbr", "scope", "width"},
    "time": {"datetime"},
}
_URL_SCHEMES = {"http", "https", "mailto", "data"}
# Every attribute the allowed tags have whose value is a URL; nh3 checks only href and src.
_URL_ATTRIBUTES = frozenset(("href", "src", "cite", "longdesc"))
_SAFE_SCHEMES = frozenset(("http", "https", "mailto"))
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")
_RASTER_DATA = re.compile(r"data:image/(?:png|jpeg|gif|webp)[;,]")
# Browsers drop tabs and line breaks anywhere in a URL and trim spaces and controls around it;
# dropping every one of them anywhere is stricter still.
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")


# Rendering a body costs time and memory that grow with its size (markdown-it, nh3), and
# nh3's with the square of its nesting depth: a body is cut, and its deepest tags dropped,
# before either sees it, so that one hostile file costs seconds, not minutes and gigabytes.
BODY_MIN = 64 * 1024
BODY_MAX = 1024 * 1024
DEPTH_LIMIT = 64


def body_limit(feed_content_kb: int) -> int:
    """How many characters of a body are rendered: twice what a feed shows, 64 K to 1 M."""
    return min(max(2 * feed_content_kb * 1024, BODY_MIN), BODY_MAX)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A body ready for Markdown and sanitising, and what was done to it to get there."""

    text: str
    length: int  # characters before the cut
    cut: bool
    dropped_at: int | None  # where in `text` the first tag too deep was dropped


def prepare(body: str, limit: int, clean: bool = False) -> Prepared:
    """The body cut to `limit` characters (at a line or a tag), XML-forbidden characters
    removed (unless it is known to be `clean` of them), tags nested deeper than DEPTH_LIMIT
    dropped (their text stays)."""
    text = _cut(body, limit) if len(body) > limit else body
    text, dropped_at = limit_depth(text if clean else strip_forbidden(text))
    return Prepared(text, len(body), len(body) > limit, dropped_at)


def _cut(text: str, limit: int) -> str:
    window = text[max(0, limit - 4096) : limit]
    at = max(window.rfind("\n"), window.rfind("<"))
    end = limit - len(window) + at if at > 0 else limit
    return text[: end + 1] if text[end] == "\n" else text[:end]


_TOKEN = re.compile(r"<(?:(!--)|(/?)([A-Za-z][A-Za-z0-9-]*)(?=[\s/>])[^<>]*>)")
_VOID_ELEMENTS = frozenset(
    (
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    )
)
# Elements whose content is not markup: one leaf, kept or dropped whole.
_RAW_TEXT = frozenset(
    ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext")
)
# Start tags that close an open element of these names first (<p>a<p>b is two paragraphs).
_CLOSES = {
    "p": frozenset(("p",)),
    "li": frozenset(("li",)),
    "dt": frozenset(("dt", "dd")),
    "dd": frozenset(("dt", "dd")),
    "td": frozenset(("td", "th")),
    "th": frozenset(("td", "th")),
    "tr": frozenset(("td", "th", "tr")),
    "option": frozenset(("option",)),
}


def limit_depth(html: str, limit: int = DEPTH_LIMIT) -> tuple[str, int | None]:
    """The markup without the tags nested deeper than `limit` (their text stays), and where
    the first was dropped. One pass, linear in the length; ordinary HTML comes back as is."""
    # Only a start tag opens an element: with few of them there is nothing to scan for.
    starts = html.count("<")
    if starts <= limit or starts - html.count("</") - html.count("<!") <= limit:
        return html, None
    open_: list[str] = []  # the elements open here, as far as a linear scan can tell
    counts: dict[str, int] = {}
    pieces: list[str] = []
    kept_from, position, first = 0, 0, None
    for match in _TOKEN.finditer(html):
        start = match.start()
        if start < position:  # inside a comment or a raw-text element skipped over
            continue
        position = match.end()
        comment, closing, name = match.group(1, 2, 3)
        if comment:  # nothing in it is a tag
            end = html.find("-->", position)
            position = len(html) if end < 0 else end + 3
            continue
        name, depth = name.lower(), len(open_)  # the depth of this tag's element
        if closing:
            if not counts.get(name):
                continue  # a stray end tag: closes nothing, harmless
            while (top := open_.pop()) != name:  # closes what is open inside it too
                counts[top] -= 1
            counts[name] -= 1
            depth = len(open_)
        elif name in _RAW_TEXT:
            position = _raw_text_end(html, name, position)
        elif name not in _VOID_ELEMENTS:
            closes = _CLOSES.get(name)
            while closes and open_ and open_[-1] in closes:  # <p>a<p>b: two paragraphs
                counts[open_.pop()] -= 1
            depth = len(open_)
            open_.append(name)
            counts[name] = counts.get(name, 0) + 1
        if depth >= limit:
            first = start if first is None else first
            pieces.append(html[kept_from:start])
            kept_from = position
    if first is None:
        return html, None
    pieces.append(html[kept_from:])
    return "".join(pieces), first


def _raw_text_end(html: str, name: str, position: int) -> int:
    """Where a raw-text element that starts before `position` ends: after its end tag."""
    end = re.compile(rf"</{name}[^<>]*>", re.IGNORECASE).search(html, position)
    return len(html) if end is None else end.end()


def is_html(body: str, filename: str) -> bool:
    """True when the body is HTML: it starts with a tag, or the file is .html."""
    return filename.endswith(".html") or body.lstrip().startswith("<")


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True})


def to_html(body: str, filename: str) -> str:
    """The body as HTML, rendering Markdown (CommonMark, raw HTML allowed) when it is not."""
    if is_html(body, filename):
        return body
    return _render_markdown(body)[0]


def links_left_bare(body: str, filename: str) -> int:
    """How many links of a Markdown body lose their address to the REPEATED_LINKS limit."""
    if is_html(body, filename) or _REFERENCE.search(body) is None:
        return 0  # only a reference, written once and used many times, can repeat an address
    return _render_markdown(body)[1]


# A reference definition: `[label]: address`, up to three spaces in.
_REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:", re.MULTILINE)


def _render_markdown(body: str) -> tuple[str, int]:
    """The HTML, and the number of links and images whose addresses (and titles) were left
    out: a reference used thousands of times repeats its address in every one, so 100 kB of
    Markdown could render to gigabytes; past as many characters of them as the body has, plus
    REPEATED_LINKS, a link keeps its text and loses its address."""
    markdown = _markdown()
    env: dict[str, Any] = {}
    tokens = markdown.parse(body, env)
    budget = len(body) + REPEATED_LINKS
    bare = 0
    sizes: dict[str, int] = {}  # a reference's address is one string, however often it is used
    for token in tokens:
        for child in token.children or ():
            if child.type not in ("link_open", "image"):
                continue
            size = 0
            for name in ("href", "src", "title"):
                value = str(child.attrs.get(name, ""))
                known = sizes.get(value)
                if known is None:
                    known = sizes[value] = _escaped_length(value)
                size += known
            if size <= budget:
                budget -= size
            else:
                bare += 1
                for name in ("href", "src", "title"):
                    child.attrs.pop(name, None)
    return str(markdown.renderer.render(tokens, markdown.options, env)), bare


REPEATED_LINKS = 64 * 1024  # characters of addresses beyond the body's own length


def _escaped_length(value: str) -> int:
    """The length of `value` in an HTML attribute: '&' and '"' take 5 and 6 characters."""
    return (
        len(value) + 4 * value.count("&") + 5 * value.count('"') + 3 * (value.count("<") + value.count(">"))
    )


def url_allowed(tag: str, attribute: str, value: str) -> bool:
    """Whether a URL attribute may stay, decided on the URL a browser would follow: character
    references decoded (twice over, in case a reader decodes once more), ASCII whitespace and
    controls removed, the scheme lower-cased. Relative, http(s) and mailto URLs may; a data:
    URL only as a raster image (PNG, JPEG, GIF, WebP) in img src; anything else may not."""
    url = _URL_NOISE.sub("", html.unescape(html.unescape(value))).lower()
    scheme = _SCHEME.match(url)
    if scheme is None:
        return True  # relative: made absolute against the source
    if scheme.group(1) == "data":
        return tag == "img" and attribute == "src" and _RASTER_DATA.match(url) is not None
    return scheme.group(1) in _SAFE_SCHEMES


def _url_filter(base_url: str | None) -> Callable[[str, str, str], str | None]:
    """nh3's attribute filter: every URL attribute checked alike; the ones nh3 does not know
    as URLs (cite, longdesc) made absolute here, as it makes href and src."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in _URL_ATTRIBUTES:
            return value
        if not url_allowed(tag, attribute, value):
            return None
        if attribute in ("cite", "longdesc") and _SCHEME.match(value.strip().lower()) is None:
            try:
                return urljoin(base_url, value.strip()) if base_url else None
            except ValueError:  # '//[::1': raised inside nh3, it would only print a traceback
                return None
        return value

    return keep


def sanitize(body_html: str, base_url: str | None) -> str:
    """Sanitise to the feed validator's HTML; relative URLs become absolute against base_url."""
    try:
        return _sanitize(body_html, base_url)
    except ValueError:  # a base nh3's URL parser refuses: the reader refuses such links, but
        return _sanitize(body_html, None)  # one kept from before must not stop a build


def _sanitize(body_html: str, base_url: str | None) -> str:
    cleaned = nh3.clean(
        body_html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_url_filter(base_url),
        url_schemes=_URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
        url_relative=("rewrite_with_base", base_url) if base_url else "deny",
    )
    return strip_forbidden(cleaned).strip()


_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")


def summarize(text: str, limit: int = 300) -> str:
    """Plain text of at most `limit` characters, cut at a word; cut or unfinished text ends in …"""
    text = " ".join(text.split())
    if not text or (len(text) <= limit and _SENTENCE_END.search(text)):
        return text
    if text.endswith("..."):
        text = text[:-3].rstrip()
    if len(text) < limit:
        return text.rstrip(" ,;:-–—") + "…"
    cut = text[: limit - 1]
    if text[limit - 1] != " ":
        space = cut.rfind(" ")
        if space > limit // 2:
            cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"


_TAG = re.compile(rb"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*?(/?)>")
_VOID = {b"area", b"br", b"col", b"hr", b"img", b"wbr"}


def cap(
    body_html: str, limit_bytes: int, source: str | None, source_name: str | None, cut: bool = False
) -> str:
    """Cut sanitised HTML longer than limit_bytes after the last element that fits, closing
    the elements left open (a long article in one <div> or <article>, a long list or table,
    keeps its start); link to the source.

    `cut`: the body was already cut before it was rendered, so the link goes on anyway."""
    data = body_html.encode()
    more = _more(source, source_name)
    if len(data) <= limit_bytes:
        return body_html + more if cut else body_html
    budget = limit_bytes - len(more.encode())
    opened: list[bytes] = []  # the (well-formed, sanitised) markup's open elements
    closers = 0  # the bytes of their end tags
    best: tuple[int, list[bytes]] = (0, [])  # the latest cut after a block that fits, and what it leaves open
    spaced: tuple[int, list[bytes]] = (0, [])  # the latest cut at a space in the text that fits
    text_from = 0  # where the text after the last tag starts
    for match in _TAG.finditer(data):
        spaced = _space_before(data, text_from, match.start(), budget - closers, opened) or spaced
        if match.end() + closers > budget:
            break
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if closing:
            if name in opened:  # up to the element it closes
                while opened:
                    closers -= len(opened[-1]) + 3
                    if opened.pop() == name:
                        break
            if name in _BLOCK or not opened:
                best = (match.end(), list(opened))
        elif name not in _VOID and not self_closing:
            opened.append(name)
            closers += len(name) + 3
        elif name in _BLOCK:
            best = (match.end(), list(opened))
        text_from = match.end()
    else:
        spaced = _space_before(data, text_from, len(data), budget - closers, opened) or spaced
    if best[0] == 0:  # no block ends in time (one long paragraph): cut its text at a space
        best = spaced
    position, still_open = best
    ends = "".join(f"</{name.decode()}>" for name in reversed(still_open))
    ellipsis = _ELLIPSIS.decode() if position and data[position : position + 1] == b" " else ""
    return data[:position].decode() + ellipsis + ends + more


_ELLIPSIS = " …".encode()


def _space_before(
    data: bytes, start: int, end: int, room: int, opened: list[bytes]
) -> tuple[int, list[bytes]] | None:
    """The last space in the text data[start:end] where a cut, " …" and the end tags of
    `opened` fit in `room` bytes, with those elements; None when there is none."""
    space = data.rfind(b" ", start, min(end, room - len(_ELLIPSIS)))
    return (space, list(opened)) if space > start else None


# Elements after whose end (or, void, after which) a cut leaves whole blocks: not a cell,
# which would leave its row short.
_BLOCK = {
    b"address", b"article", b"aside", b"blockquote", b"details", b"div", b"dl", b"figcaption",
    b"figure", b"footer", b"h1", b"h2", b"h3", b"h4", b"h5", b"h6", b"header", b"hr", b"li",
    b"main", b"nav", b"ol", b"p", b"pre", b"section", b"table", b"tbody", b"tfoot", b"thead",
    b"tr", b"ul",
}  # fmt: skip


def _more(source: str | None, source_name: str | None) -> str:
    if source:
        name = html.escape(source_name or source)
        link = html.escape(source, quote=True)
        return f'<p><a href="{link}">Read the full article at {name}</a></p>'
    return "<p>(The rest of this article is not included in the feed.)</p>"
