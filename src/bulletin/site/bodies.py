"""Item bodies: Markdown to HTML, sanitising to the feed validator's HTML, plain text, caps."""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

import nh3

# Characters XML 1.0 forbids anywhere in a document, plus the C1 controls and
# U+FFFD that the W3C feed validator reports as "bad characters".
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffd-\uffff]")

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
# Removed with everything inside them, not just unwrapped.
_DROP_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "form",
    "template",
    "noscript",
    "textarea",
    "select",
    "button",
    "svg",
    "math",
    "title",
    "noembed",
    "noframes",
}
_URL_SCHEMES = {"http", "https", "mailto", "data"}
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);", re.IGNORECASE)


def strip_forbidden(text: str) -> str:
    """Remove characters that XML 1.0 (and the feed validator) reject."""
    return _XML_FORBIDDEN.sub("", text)


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
    return str(_markdown().render(body))


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    # data: URLs survive only as inline raster images.
    if value[:5].lower() == "data:" and not (
        tag == "img" and attribute == "src" and _DATA_IMAGE.match(value)
    ):
        return None
    return value


def sanitize(body_html: str, base_url: str | None) -> str:
    """Sanitise to the feed validator's HTML; relative URLs become absolute against base_url."""
    cleaned = nh3.clean(
        body_html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes=_URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
        url_relative=("rewrite_with_base", base_url) if base_url else "deny",
    )
    return strip_forbidden(cleaned).strip()


def plain_text(body_html: str) -> str:
    """The text of some HTML, tags dropped, entities decoded, whitespace collapsed.

    Characters XML forbids are removed after decoding: `&#11;` is one too."""
    text = nh3.clean(body_html, tags=set(), clean_content_tags=_DROP_WITH_CONTENT)
    return " ".join(strip_forbidden(html.unescape(text)).split())


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


def cap(body_html: str, limit_bytes: int, source: str | None, source_name: str | None) -> str:
    """Cut sanitised HTML longer than limit_bytes at an element boundary; link to the source."""
    data = body_html.encode()
    if len(data) <= limit_bytes:
        return body_html
    # Walk the (well-formed, sanitised) markup keeping a depth count: a cut is
    # allowed only where depth returns to zero, so no element is left open.
    budget = limit_bytes - 300
    depth = 0
    last_cut = 0
    for match in _TAG.finditer(data):
        if match.end() > budget:
            break
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if name not in _VOID and not self_closing:
            depth += -1 if closing else 1
        if depth <= 0:
            depth = 0
            last_cut = match.end()
    kept = data[:last_cut].decode()
    if source:
        name = html.escape(source_name or source)
        link = html.escape(source, quote=True)
        more = f'<p><a href="{link}">Read the full article at {name}</a></p>'
    else:
        more = "<p>(The rest of this article is not included in the feed.)</p>"
    return kept + more
