"""Text fields: one line, no characters XML forbids, and markup reduced to its text.

Used by every layer that takes text from people: the items' fields, and bulletin.toml's
title and description, which feeds carry as text."""

from __future__ import annotations

import html
import re

import nh3

# Characters XML 1.0 forbids anywhere in a document, plus the C1 controls and U+FFFD that
# the W3C feed validator reports as "bad characters", and Unicode's noncharacters in the
# first plane (U+FDD0-U+FDEF, U+FFFE, U+FFFF): the validator reports "Invalid HTML" for
# them, the Nu checker "Forbidden code point".
_FORBIDDEN = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffd-\uffff"
_XML_FORBIDDEN = re.compile(f"[{_FORBIDDEN}]")
# The noncharacters of the other planes, U+1FFFE, U+1FFFF ... U+10FFFF. Apart: a character
# class that holds them is searched eight times slower, so it is searched only in text that
# has a character past the first plane at all (an emoji, a rare script).
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ASTRAL_NONCHARACTER = re.compile(
    "["
    + "".join(f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0x10000, 0x110000, 0x10000))
    + "]"
)

# Removed with everything inside them, not just unwrapped.
DROP_WITH_CONTENT = {
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


# Bidirectional embeddings, overrides and isolates: in a name or a title they reorder what a
# reader sees ("Safe\u202eexe.pdf" shows as "Safefdp.exe"); no text field needs them. Text
# fields lose them with the characters XML forbids, in one pass.
_NOT_IN_TEXT = re.compile(f"[{_FORBIDDEN}\u202a-\u202e\u2066-\u2069]")


def strip_forbidden(text: str) -> str:
    """Remove characters that XML 1.0 (and the feed validator) reject."""
    return _without_astral_noncharacters(_XML_FORBIDDEN.sub("", text))


def _without_astral_noncharacters(text: str) -> str:
    return _ASTRAL_NONCHARACTER.sub("", text) if _ASTRAL.search(text) else text


def one_line(text: str) -> str:
    """A text field's value: XML-forbidden characters and bidirectional controls removed,
    whitespace collapsed to single spaces."""
    if text.isascii() and text.isprintable():  # the usual field: nothing to remove
        if "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text
        return " ".join(text.split())
    return " ".join(_without_astral_noncharacters(_NOT_IN_TEXT.sub("", text)).split())


def plain_text(body_html: str) -> str:
    """The text of some HTML, tags dropped, entities decoded, whitespace collapsed.

    Characters XML forbids are removed after decoding: `&#11;` is one too."""
    text = nh3.clean(body_html, tags=set(), clean_content_tags=DROP_WITH_CONTENT)
    return one_line(html.unescape(text))


# HTML's elements, old and new: a title holding one of these holds markup; `<friends>` or
# `<T>` is text that happens to use angle brackets.
_HTML_ELEMENTS = (
    "a|abbr|acronym|address|applet|area|article|aside|audio|b|base|basefont|bdi|bdo|big|blink|"
    "blockquote|body|br|button|canvas|caption|center|cite|code|col|colgroup|data|datalist|dd|del|"
    "details|dfn|dialog|dir|div|dl|dt|em|embed|fieldset|figcaption|figure|font|footer|form|frame|"
    "frameset|h1|h2|h3|h4|h5|h6|head|header|hgroup|hr|html|i|iframe|img|input|ins|kbd|label|"
    "legend|li|link|main|map|mark|marquee|math|menu|meta|meter|nav|nobr|noembed|noframes|"
    "noscript|object|ol|optgroup|option|output|p|param|picture|plaintext|pre|progress|q|rp|rt|"
    "ruby|s|samp|script|search|section|select|slot|small|source|span|strike|strong|style|sub|"
    "summary|sup|svg|table|tbody|td|template|textarea|tfoot|th|thead|time|title|tr|track|tt|u|ul|"
    "var|video|wbr|xmp"
)
# A comment, closed; a tag of an HTML element (its '/' and name); or any other '<'. A comment
# or a tag is found whole, so that a '<' inside a comment is not looked at again.
_PIECE = re.compile(rf"(<!--.*?-->)|<(/?)({_HTML_ELEMENTS})(?=[\s/>])[^<>]*>|<", re.IGNORECASE | re.DOTALL)
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
# Void elements that stand in running text: a tag of one is markup on its own. (<meta> or
# <input>, on the other hand, is far likelier named in a title than used in one.)
_VOID_IN_TEXT = frozenset(("br", "wbr", "img", "hr"))
# Elements that start a line or a block of their own: their tags part the words around them.
_BLOCKS = frozenset(
    (
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav",
        "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
    )
)  # fmt: skip
# Elements whose end tag HTML lets one leave out (`<li>one<li>two`): in a value that holds
# markup, an open one is markup too.
_END_OPTIONAL = frozenset(
    ("p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "rt", "rp")
)


def text_of(value: str) -> str:
    """A field that should be text, as text: when it holds markup, its text (`Tags <b>bold</b>`
    → `Tags bold`); else as it is (`rural & critical (<25 beds)`).

    Markup is an entity (`&amp;`), a closed comment, a tag of an element closed later in the
    value (`<b>x</b>`) or of a void element that stands in text (`<br>`, `<img …>`). A tag
    that only names an element stays text (`rewrites the <title> element`, `speeds up
    <canvas>`), so that an element whose content is dropped (script, style, title…) never
    takes the rest of the value with it, nor does an unclosed `<!--`. Beside markup, a '<'
    that is no markup is text too (`List<T> in <b>Java</b>` → `List<T> in Java`), where an
    HTML parser would take `<T>` for a tag and drop it."""
    if "<" not in value and "&" not in value:
        return value
    pieces = list(_PIECE.finditer(value)) if "<" in value else []
    markup = _markup(pieces)
    if not markup and not _ENTITY.search(value):
        return value
    markup.update(n for n, piece in enumerate(pieces) if _open_optional(piece))
    kept = []
    at = 0
    for n, piece in enumerate(pieces):
        kept.append(value[at : piece.start()])
        if n not in markup:
            kept.append("&lt;" + piece[0][1:])
        else:  # a block's tag parts words as the block did (`<p>one<p>two`: "one two")
            kept.append(piece[0] + (" " if (piece[3] or "").lower() in _BLOCKS else ""))
        at = piece.end()
    kept.append(value[at:])
    return plain_text("".join(kept))


def _markup(pieces: list[re.Match[str]]) -> set[int]:
    """Which pieces are surely markup: a closed comment, a tag of an element opened and
    closed in the value, a tag of a void element that stands in text."""
    opened: dict[str, int] = {}  # each element's first start tag
    closed: dict[str, int] = {}  # and its last end tag
    for n, piece in enumerate(pieces):
        if piece[3]:
            name = piece[3].lower()
            if piece[2]:
                closed[name] = n
            else:
                opened.setdefault(name, n)
    found = set()
    for n, piece in enumerate(pieces):
        name = (piece[3] or "").lower()
        if piece[2]:  # an end tag: of an element opened before it
            surely = opened.get(name, n) < n
        elif name:  # a start tag: of an element closed after it, or a void one
            surely = name in _VOID_IN_TEXT or closed.get(name, -1) > n
        else:  # a closed comment, or a '<' that starts neither
            surely = piece[1] is not None
        if surely:
            found.add(n)
    return found


def _open_optional(piece: re.Match[str]) -> bool:
    return bool(piece[3]) and not piece[2] and piece[3].lower() in _END_OPTIONAL
