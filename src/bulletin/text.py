"""Text fields: one line, no characters XML forbids, and markup reduced to its text.

Used by every layer that takes text from people: the items' fields, and bulletin.toml's
title and description, which feeds carry as text."""

from __future__ import annotations

import html
import re

import nh3

# Characters XML 1.0 forbids anywhere in a document, plus the C1 controls and
# U+FFFD that the W3C feed validator reports as "bad characters".
_FORBIDDEN = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffd-\uffff"
_XML_FORBIDDEN = re.compile(f"[{_FORBIDDEN}]")

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
    return _XML_FORBIDDEN.sub("", text)


def one_line(text: str) -> str:
    """A text field's value: XML-forbidden characters and bidirectional controls removed,
    whitespace collapsed to single spaces."""
    if text.isascii() and text.isprintable():  # the usual field: nothing to remove
        if "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text
        return " ".join(text.split())
    return " ".join(_NOT_IN_TEXT.sub("", text).split())


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
_HTML_TAG = rf"</?(?:{_HTML_ELEMENTS})(?=[\s/>])[^<>]*>"
# An HTML tag, a comment or a character reference: what makes a field's value HTML, not text.
_MARKUP = re.compile(rf"{_HTML_TAG}|<!--|&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);", re.IGNORECASE)
# In such a value, a '<' that starts an HTML tag or a comment, or any other '<'.
_ANGLE = re.compile(rf"({_HTML_TAG}|<!--)|<", re.IGNORECASE)


def text_of(value: str) -> str:
    """A field that should be text, as text: when it holds markup (an HTML tag, an entity), its
    text (`Tags <b>bold</b>` → `Tags bold`); else as it is (`rural & critical (<25 beds)`).
    Beside markup, a '<' that starts no HTML tag is still text (`List<T> in <b>Java</b>` →
    `List<T> in Java`), where an HTML parser would take `<T>` for a tag and drop it."""
    if not _MARKUP.search(value):
        return value
    return plain_text(_ANGLE.sub(_kept_or_escaped, value))


def _kept_or_escaped(found: re.Match[str]) -> str:
    return found.group(1) or "&lt;"
