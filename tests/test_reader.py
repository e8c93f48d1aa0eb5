"""Reading items — YAML rules, every field's precedence, hostile input."""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from bulletin.cli import main
from bulletin.dates import local_midnight, parse_date
from bulletin.report import Report
from bulletin.site import bodies, walk
from bulletin.site.parse import Parsed, parse_item, surely_clean
from bulletin.site.reader import read_body, read_items
from bulletin.text import strip_forbidden

from .conftest import DATA, SiteMaker, front_matter

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def parse(site: SiteMaker, text: str | bytes, name: str = "news/a.md") -> Parsed:
    path = site.raw(name, text)
    return parse_item(path.read_bytes(), f"content/{name}", site.config())


def messages(parsed: Parsed) -> list[str]:
    return [str(p) for p in parsed.problems]


def item_of(site: SiteMaker, body: str = "<p>Body.</p>", **fields: object):
    fields.setdefault("title", "A title")
    fields.setdefault("date", "2026-11-18")
    parsed = parse(site, front_matter(fields, body))
    assert parsed.item is not None, messages(parsed)
    return parsed.item


# -- YAML -------------------------------------------------------------------------------------


def test_scalars_stay_as_written(site: SiteMaker) -> None:
    text = "---\nid: 0123\ntitle: no\ndate: 2026-11-18\nauthor: 12:30\n---\nBody\n"
    item = parse(site, text).item
    assert item is not None
    assert item.id == "0123"
    assert item.title == "no"
    assert item.authors == ("12:30",)
    assert item.published == datetime(2026, 11, 18, tzinfo=ZoneInfo("UTC"))


def test_null_tilde_and_empty_mean_absent_but_quoted_null_is_text(site: SiteMaker) -> None:
    text = "---\ntitle: ~\nopenGraphMetaData:\n  ogtitle: 'null'\ndate: '2026-11-18'\nsummary:\n---\nBody text.\n"
    item = parse(site, text).item
    assert item is not None
    assert item.title == "null"
    assert item.summary == "Body text."


def test_python_tags_construct_nothing(site: SiteMaker) -> None:
    text = "---\ntitle: !!python/object/apply:os.system ['echo pwned']\ndate: '2026-11-18'\n---\nx\n"
    parsed = parse(site, text)
    assert parsed.item is None
    assert messages(parsed) == [
        "content/news/a.md:2: error: YAML tag '!!python/object/apply:os.system' is not allowed "
        "in front matter; remove it (values are plain text)"
    ]


def test_other_tags_are_refused_too(site: SiteMaker) -> None:
    parsed = parse(site, "---\ntitle: !!int 5\ndate: '2026-11-18'\n---\nx\n")
    assert parsed.item is None
    assert "YAML tag '!!int'" in messages(parsed)[0]


def test_broken_yaml_names_the_line_and_the_fix(site: SiteMaker) -> None:
    parsed = parse(site, "---\ndate: '2026-11-18'\ntitle: Stem cells: the safety\n---\nx\n")
    assert parsed.item is None
    assert messages(parsed) == [
        "content/news/a.md:3: error: front matter is not valid YAML: mapping values are not "
        "allowed in this context; quote the value in single quotes; it contains ': '"
    ]


def test_front_matter_that_is_not_a_mapping(site: SiteMaker) -> None:
    parsed = parse(site, "---\n- a\n- b\n---\nx\n")
    assert messages(parsed) == [
        "content/news/a.md:2: error: front matter is a list, not fields; write 'name: value' lines"
    ]


def test_keys_differing_only_in_case_are_an_error(site: SiteMaker) -> None:
    parsed = parse(site, "---\ntitle: A\ndate: '2026-11-18'\nTitle: B\n---\nx\n")
    assert messages(parsed) == [
        "content/news/a.md:4: error: key 'Title' repeats 'title' (line 2); keys differing only "
        "in case are the same field: keep one"
    ]


def test_field_names_are_case_insensitive(site: SiteMaker) -> None:
    item = parse(
        site, "---\nTITLE: Loud\nDate: '2026-11-18'\nLINK:\n  HREF: https://a.example/x\n---\nx\n"
    ).item
    assert item is not None
    assert (item.title, item.link) == ("Loud", "https://a.example/x")


def test_aliases_are_built_once(site: SiteMaker) -> None:
    # A "billion laughs" document would take forever if aliases were expanded.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 30):
        lines.append(f"a{n}: &a{n} [*a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}]")
    text = "---\ntitle: T\ndate: '2026-11-18'\n" + "\n".join(lines) + "\n---\nx\n"
    assert parse(site, text).item is not None


def test_raw_control_characters_are_removed_with_a_warning(site: SiteMaker) -> None:
    parsed = parse(
        site, "---\ntitle: Bell\x07 here\ndate: '2026-11-18'\nhref: https://src.example/\n---\nx\n"
    )
    assert parsed.item is not None and parsed.item.title == "Bell here"
    assert messages(parsed) == [
        "content/news/a.md:2: warning: control character U+0007 removed; delete it from the file"
    ]


@pytest.mark.parametrize(
    "character",
    # Noncharacters too (U+FDD0-U+FDEF, U+nFFFE, U+nFFFF): the W3C validator called them "Invalid HTML".
    ["\x01", "\x7f", "\x80", "\x9b", "\ufffe", "\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff"],
)
def test_every_forbidden_character_is_found_in_utf8_files(site: SiteMaker, character: str) -> None:
    in_title = character if character != "\ufffe" else ""  # which libyaml refuses outright
    text = f"---\ntitle: A{in_title}B\ndate: '2026-11-18'\n---\n<p>C{character}D.</p>\n"
    parsed = parse(site, text.encode())
    assert parsed.item is not None
    assert (parsed.item.title, parsed.item.summary) == ("AB", "CD.")
    assert read_body(parsed.item, site.config()) == "<p>CD.</p>"


def test_every_noncharacter_is_removed_and_found_by_the_quick_check() -> None:
    """surely_clean lets a body skip strip_forbidden: it must find every character that
    strip_forbidden removes, in every plane, and the noncharacters among them."""
    planes = range(0x10000, 0x110000, 0x10000)
    nonchars = [*range(0xFDD0, 0xFDF0), 0xFFFE, 0xFFFF, *(p + n for p in planes for n in (0xFFFE, 0xFFFF))]
    for point in nonchars:
        assert strip_forbidden(f"a{chr(point)}b") == "ab", hex(point)
        assert not surely_clean(f"a{chr(point)}b".encode()), hex(point)
    others = [*range(0xD800), *range(0xE000, 0x10000), *(p + n for p in planes for n in (0, 0xFFFD))]
    for point in others:
        assert surely_clean(chr(point).encode()) == (strip_forbidden(chr(point)) != ""), hex(point)


def test_escaped_control_characters_are_removed_from_text(site: SiteMaker) -> None:
    item = parse(site, "---\ntitle: \"Esc\\x01aped\\x1b\"\ndate: '2026-11-18'\n---\nx\n").item
    assert item is not None and item.title == "Escaped"


def test_bom_and_crlf(site: SiteMaker) -> None:
    text = "\ufeff---\r\ntitle: Windows\r\ndate: '2026-11-18'\r\n---\r\n<p>Body</p>\r\n"
    item = parse(site, text.encode("utf-8")).item
    assert item is not None and item.title == "Windows"


def test_utf16_with_bom_is_read(site: SiteMaker) -> None:
    text = "---\ntitle: Wide\ndate: '2026-11-18'\n---\n<p>Body</p>\n"
    item = parse(site, text.encode("utf-16")).item
    assert item is not None and item.title == "Wide"


def test_utf16_with_an_odd_number_of_bytes_is_an_error(site: SiteMaker) -> None:
    raw = b"\xff\xfe" + "---\ntitle: X\n".encode("utf-16-le") + b"x"
    assert messages(parse(site, raw)) == [
        "content/news/a.md:3: error: is not UTF-16: truncated data at byte 28; save the file as UTF-8"
    ]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_wide_text_without_a_byte_order_mark_says_so(site: SiteMaker, encoding: str) -> None:
    """It used to be told it has no front matter, which it has."""
    raw = "---\ntitle: Wide\ndate: '2026-11-18'\n---\n<p>Body</p>\n".encode(encoding)
    assert messages(parse(site, raw)) == [
        "content/news/a.md: error: looks like UTF-16 or UTF-32 without a byte order mark; save the file as UTF-8"
    ]


def test_a_failure_inside_bulletin_skips_the_file_and_says_so(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise OverflowError("date value out of range")

    monkeypatch.setattr("bulletin.site.parse._item_from", broken)
    assert messages(parse(site, front_matter({"title": "T", "date": "2026-11-18"}))) == [
        "content/news/a.md: error: cannot be read: OverflowError: date value out of range; "
        "this is a bug in bulletin, please report it"
    ]


def test_non_utf8_bytes_name_the_line(site: SiteMaker) -> None:
    raw = "---\ntitle: ok\ndate: '2026-11-18'\nauthor: Jos\xe9\n---\nx\n".encode("latin-1")
    parsed = parse(site, raw)
    assert messages(parsed) == ["content/news/a.md:4: error: byte 0xe9 is not UTF-8; save the file as UTF-8"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "content/news/a.md: error: is empty; an item starts with a '---' line, YAML fields, then '---'",
        ),
        (
            "<p>Just a body</p>\n",
            "content/news/a.md:1: error: has no front matter; start the file with a '---' line, then "
            "YAML fields, then '---'",
        ),
        (
            "---\ntitle: x\n",
            "content/news/a.md:1: error: front matter is not closed; add a '---' line after the last field",
        ),
    ],
)
def test_files_that_are_not_items(site: SiteMaker, text: str, message: str) -> None:
    assert messages(parse(site, text)) == [message]


UNCLOSED = (
    "---\ntitle: 'T'\ndate: '2026-11-18'\nlink:\n  href: 'https://src.example/a'\n\n{first}\n\n---\n\n"
    "More text after a rule.\n"
)


def test_front_matter_not_closed_before_the_body_is_named_on_the_bodys_first_line(site: SiteMaker) -> None:
    """The body's '---' rule closed the front matter: its first paragraph, read as a field, vanished
    without a word; without a colon, libyaml's error pointed at the rule, with the wrong fix."""
    parsed = parse(site, UNCLOSED.format(first="The body starts here, with a colon: see below."))
    assert messages(parsed) == [
        "content/news/a.md:7: warning: 'The body starts here, with a colon' reads as a sentence, not "
        "a field name: the front matter seems not closed before this line; add a '---' line after "
        "the front matter"
    ]
    parsed = parse(site, UNCLOSED.format(first="The body starts here, without one."))
    assert messages(parsed) == [
        "content/news/a.md:7: error: front matter seems not closed before this line: YAML reads the "
        "text from here on as fields (on line 9: could not find expected ':'); add a '---' line "
        "after the front matter"
    ]
    parsed = parse(site, UNCLOSED.format(first="author Jane"))  # a body's heading, or a field's typo
    assert messages(parsed) == [
        "content/news/a.md:7: error: front matter seems not closed before this line: YAML reads the "
        "text from here on as fields (on line 9: could not find expected ':'); add a '---' line "
        "after the front matter (or, if this line is a field, a ':' after its name)"
    ]


def test_a_file_over_20_mb_is_refused(site: SiteMaker) -> None:
    parsed = parse(site, front_matter({"title": "T", "date": "2026-11-18"}, "x" * 21_000_000))
    assert messages(parsed) == [
        "content/news/a.md: error: is 20.1 MB; items are limited to 20 MB: shorten the body or link to the article"
    ]


def test_a_huge_body_is_cut_before_it_is_rendered_and_says_so(site: SiteMaker) -> None:
    body = "<p>" + "word " * 1_000_000 + "</p>"  # 5 MB
    parsed = parse(
        site, front_matter({"title": "T", "date": "2026-11-18", "href": "https://src.example/"}, body)
    )
    assert messages(parsed) == [
        "content/news/a.md: warning: body is 5,000,008 characters long; only its first 204,800 are "
        "used (twice feed_content_kb, 64 KB to 1 MB): shorten it or link to the article"
    ]
    assert parsed.item is not None
    html = read_body(parsed.item, site.config())
    assert html.startswith("<p>word word") and html.endswith("</p>")
    assert 200_000 < len(html) <= 204_800 + len("</p>")
    assert parsed.item.summary.startswith("word word")


@pytest.mark.parametrize(("kb", "limit"), [(1, 65_536), (100, 204_800), (512, 1_048_576), (5000, 1_048_576)])
def test_the_cut_follows_feed_content_kb_within_bounds(kb: int, limit: int) -> None:
    assert bodies.body_limit(kb) == limit


def test_a_cut_falls_on_a_line_or_a_tag() -> None:
    text = ("<p>" + "x" * 50 + "</p>\n") * 5000  # 290,000 characters
    prepared = bodies.prepare(text, 100_000)
    assert prepared.cut and prepared.length == 290_000
    assert prepared.text.endswith("</p>\n") and len(prepared.text) <= 100_000


def test_nesting_deeper_than_64_drops_the_deeper_tags_and_keeps_their_text() -> None:
    html = "<div>" * 100 + "text" + "</div>" * 100 + "<p>after</p>"
    flat, first = bodies.limit_depth(html)
    assert flat == "<div>" * 64 + "text" + "</div>" * 64 + "<p>after</p>"
    assert first == 64 * len("<div>")


def test_the_depth_pass_leaves_ordinary_html_alone() -> None:
    paragraphs = "".join(f"<p>para {n}<br><img src=x.png>" for n in range(200))  # never closed
    items = "<ul>" + "".join(f"<li>item <b>{n}</b>" for n in range(200)) + "</ul>"
    rows = "<table>" + "".join(f"<tr><td>{n}<td>{n}" for n in range(200)) + "</table>"
    comment = "<!--" + "<div>" * 100 + "-->"
    script = "<script>" + "<div>" * 100 + "</script>"
    links = "".join(f"<https://example.org/{n}> <a@b.example>" for n in range(100))  # Markdown autolinks
    for html in (paragraphs, items, rows, comment, script, links):
        assert bodies.limit_depth(html) == (html, None)


def test_raw_text_elements_too_deep_go_whole() -> None:
    html = "<div>" * 64 + "<script>alert('<b>')</script>" + "<style>p {}</style>" + "</div>" * 64
    flat, _ = bodies.limit_depth(html)
    assert flat == "<div>" * 64 + "</div>" * 64


def test_deep_nesting_is_reported_with_its_line(site: SiteMaker) -> None:
    body = "<p>Intro</p>\n" + "<div>" * 70 + "deep" + "</div>" * 70
    parsed = parse(
        site, front_matter({"title": "T", "date": "2026-11-18", "href": "https://src.example/"}, body)
    )
    assert messages(parsed) == [
        "content/news/a.md:7: warning: body nests elements more than 64 deep; the deeper tags "
        "are dropped and their text kept: simplify its HTML"
    ]
    assert parsed.item is not None
    assert read_body(parsed.item, site.config()).count("<div>") == 64


# -- fields -----------------------------------------------------------------------------------


def test_id_defaults_to_the_path_without_extension(site: SiteMaker) -> None:
    parsed = parse(site, front_matter({"title": "T", "date": "2026-11-18"}), name="news/2026/Café.md")
    assert parsed.item is not None and parsed.item.id == "news/2026/Café"


def test_title_precedence_first_non_empty_wins(site: SiteMaker) -> None:
    item = item_of(
        site,
        title="  ",
        openGraphMetaData={"ogtitle": "OG"},
        twitterMetaData={"twittertitle": "TW"},
    )
    assert item.title == "OG"
    item = item_of(site, title=None, twitterMetaData={"twittertitle": "TW"})
    assert item.title == "TW"


def test_title_is_plain_text_never_html(site: SiteMaker) -> None:
    # HTML in a title is reduced to its text: a feed reader would show the tags, or obey them.
    item = item_of(site, title="<script>alert(1)</script> <b>Bold</b> &amp;   spaced\n out")
    assert item.title == "Bold & spaced out"
    # Angle brackets around no HTML element, and a bare &, are text.
    item = item_of(site, title="Story & <friends> (<25 beds), List<T>")
    assert item.title == "Story & <friends> (<25 beds), List<T>"
    # Beside markup too: an HTML parser would take <T> for a tag, '<y then' for one unclosed.
    item = item_of(
        site,
        title="Why <i>List<T></i> &amp; Map<K, V> beat x<y then <3",
        summary="<p>Generics: List<T> in <b>Java</b>, if a<b and <!-- a note --> c</p>",
    )
    assert item.title == "Why List<T> & Map<K, V> beat x<y then <3"
    assert item.summary == "Generics: List<T> in Java, if a<b and c…"


@pytest.mark.parametrize(
    ("written", "read"),
    [
        # Text that names an element: an HTML parser cut it there, or dropped the tag.
        ("Google now rewrites the <title> element in 60% of results", None),
        ('Engines ignore the <title> and <meta name="description"> tags sites write', None),
        ("Browsers speed up <canvas> rendering", None),
        ("Hello <!-- world", None),
        ("x <style>y", None),
        # Beside markup, a named element is still text; the markup is reduced.
        ("AT&amp;T names the <title> tag", "AT&T names the <title> tag"),
        ("<b>New:</b> a <canvas> in <script> tags", "New: a <canvas> in <script> tags"),
        (
            "Styled <style>p {}</style><title>T</title>text <!-- note --> and <!-- this",
            "Styled text and <!-- this",
        ),
        ("<ul><li>One <li>Two <br>Three</ul> <img src=x.png>on a <canvas>", "One Two Three on a <canvas>"),
    ],
)
def test_text_that_names_an_element_stays_text(site: SiteMaker, written: str, read: str | None) -> None:
    """A tag counts as markup only when its element is closed in the value or is one that
    stands in text alone (br, img); a comment only when it is closed."""
    item = item_of(site, title=written, description=written)
    assert item.title == (read or written)
    assert item.summary == (read or written) + "…"  # unfinished sentences end so


def test_a_title_that_is_only_markup_is_an_error(site: SiteMaker) -> None:
    parsed = parse(site, front_matter({"title": "<b></b><script>x</script>", "date": "2026-11-18"}))
    assert messages(parsed) == [
        "content/news/a.md:2: error: title has no visible text; write the article's title"
    ]


@pytest.mark.parametrize(
    ("title", "codes"),
    [
        ("\u200b\u200b\u200b", "U+200B"),
        ("\u200c \u200d", "U+200C, U+200D"),
        ("\u2060\ufeff", "U+2060, U+FEFF"),
        ("<b>\u200b</b>", "U+200B"),
    ],
)
def test_an_invisible_title_is_an_error(site: SiteMaker, title: str, codes: str) -> None:
    parsed = parse(site, front_matter({"title": title, "date": "2026-11-18"}))
    assert messages(parsed) == [
        f"content/news/a.md:2: error: title has only invisible characters ({codes}); "
        "write the article's title"
    ]


def test_joiners_inside_visible_text_stay(site: SiteMaker) -> None:
    assert (
        item_of(site, title="می\u200cخواهم \U0001f468\u200d\U0001f469").title
        == "می\u200cخواهم \U0001f468\u200d\U0001f469"
    )


def test_bidirectional_controls_are_stripped_from_text_fields(site: SiteMaker) -> None:
    item = item_of(
        site,
        title="Safe\u202e3pm.exe",
        categories=["Health\u202eCare", "\u2066Isolated\u2069"],
        author="An\u202dna",
        link={"href": "https://src.example/a", "brand": "Br\u202aand\u202c"},
        description="Sum\u2067mary\u2068.",
    )
    assert (item.title, item.topics, item.authors) == ("Safe3pm.exe", ("HealthCare", "Isolated"), ("Anna",))
    assert (item.source_name, item.summary) == ("Brand", "Summary.")
    assert item_of(site, body="<p>Body \u202ewith\u202c override.</p>").summary == "Body with override."


def test_a_title_that_is_a_list_is_an_error(site: SiteMaker) -> None:
    parsed = parse(site, front_matter({"title": ["a", "b"], "date": "2026-11-18"}))
    assert messages(parsed) == ["content/news/a.md:2: error: title is a list; write it as one line of text"]


def test_missing_title_and_date(site: SiteMaker) -> None:
    assert messages(parse(site, front_matter({"date": "2026-11-18"}))) == [
        "content/news/a.md: error: title is missing; add a line title: 'The article title'"
    ]
    assert messages(parse(site, front_matter({"title": "T"}))) == [
        "content/news/a.md: error: date is missing; add a line date: 'YYYY-MM-DD'"
    ]


def test_bad_date_message(site: SiteMaker) -> None:
    parsed = parse(site, "---\ntitle: T\n\ndate: '2022-13-45'\n---\nx\n")
    assert messages(parsed) == [
        "content/news/a.md:4: error: date '2022-13-45' is not a date: there is no such day or time; "
        "write one on the calendar"
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (
            "2026-11-17T00:00:00+23:59",
            "is not a date: its UTC offset is over 14:00, which no time zone has; write the real one",
        ),
        (
            "2026-11-17T00:00:00-14:30",
            "is not a date: its UTC offset is over 14:00, which no time zone has; write the real one",
        ),
        ("0002-01-01T00:00:00+01:00", "is out of range; bulletin takes dates from the year 0002 to 9998"),
        ("9998-12-31T23:00:00-05:00", "is out of range; bulletin takes dates from the year 0002 to 9998"),
        ("2026-11-17 soon", "is not a date; write YYYY-MM-DD or an ISO 8601 date-time"),
    ],
)
def test_a_refused_date_says_why(site: SiteMaker, value: str, says: str) -> None:
    """An offset no time zone has used to pass (and made atom.xml invalid); a year out of
    range was told to write YYYY-MM-DD, which it was."""
    parsed = parse(site, f"---\ntitle: T\ndate: '{value}'\n---\nx\n")
    assert messages(parsed) == [f"content/news/a.md:3: error: date '{value}' {says}"]


def test_a_year_before_1900_is_an_error_on_its_line(site: SiteMaker) -> None:
    """'0999-06-15' was published as <pubDate>Sat, 15 Jun 999 …</pubDate>, which is no RFC 822
    date; feedparser reads a year 0099 as 1999."""
    for field, value in (("date", "0999-06-15"), ("date", "1899-12-31T23:00:00Z"), ("lastMod", "0206-11-20")):
        fields = {"title": "T", "date": "2026-11-18", field: value, "href": "https://src.example/"}
        line = 3 if field == "date" else 4
        assert messages(parse(site, front_matter(fields))) == [
            f"content/news/a.md:{line}: error: {field} '{value}' is before the year 1900; check the year"
        ]
    assert item_of(site, date="1900-01-01").published.year == 1900


def test_the_furthest_offsets_are_dates(site: SiteMaker) -> None:
    for value in ("2026-11-17T00:00:00+14:00", "2026-11-17T00:00:00-12:00"):
        assert (
            messages(parse(site, f"---\ntitle: T\ndate: '{value}'\nhref: https://x.example/\n---\nx\n")) == []
        )


def test_publish_date_is_the_fallback(site: SiteMaker) -> None:
    item = item_of(site, date=None, publishDate="2026-11-10")
    assert item.published.date().isoformat() == "2026-11-10"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-18", datetime(2026, 11, 18, tzinfo=ZoneInfo("America/New_York"))),
        ("2026-11-18T09:30", datetime(2026, 11, 18, 9, 30, tzinfo=ZoneInfo("America/New_York"))),
        (
            "2026-11-18 09:30:15",
            datetime(2026, 11, 18, 9, 30, 15, tzinfo=ZoneInfo("America/New_York")),
        ),
        ("2026-11-18T09:30:15.123456789Z", datetime(2026, 11, 18, 9, 30, 15, 123456, tzinfo=UTC)),
        ("2026-11-18T09:30:15+05:30", datetime(2026, 11, 18, 4, 0, 15, tzinfo=UTC)),
        ("2026-11-18T09:30:15-0500", datetime(2026, 11, 18, 14, 30, 15, tzinfo=UTC)),
        ("2026-11-18T09:30:15,5+01", datetime(2026, 11, 18, 8, 30, 15, 500000, tzinfo=UTC)),
    ],
)
def test_accepted_dates(value: str, expected: datetime) -> None:
    parsed = parse_date(value, ZoneInfo("America/New_York"))
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() is not None


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30",
        "18/11/2026",
        "2026-11-18T25:00",
        "2026W47",
        "yesterday",
        "2026-11-18T09:30+24:00",
        "٢٠٢٦-١١-٢٠",  # Arabic-Indic digits: int() reads them, people and other tools do not
        "2026-11-18T０９:30",
        "２０２６-11-18",
    ],
)
def test_rejected_dates(value: str) -> None:
    assert parse_date(value, ZoneInfo("UTC")) is None


@pytest.mark.parametrize(
    ("value", "zone"),
    [
        ("0001-01-01T00:00:00+14:00", "UTC"),
        ("0001-01-01", "Asia/Tokyo"),
        ("0001-01-01T00:00:00", "Pacific/Kiritimati"),
        ("9999-12-31T23:59:59-14:00", "UTC"),
        ("9999-12-31", "America/New_York"),
        ("0001-01-03", "UTC"),  # representable, but a week or a late window around it is not
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_refused(value: str, zone: str) -> None:
    assert parse_date(value, ZoneInfo(zone)) is None


def test_a_date_at_the_end_of_the_calendar_is_the_usual_error(site: SiteMaker) -> None:
    parsed = parse(site, "---\ntitle: T\ndate: '0001-01-01T00:00:00+14:00'\n---\nx\n")
    assert messages(parsed) == [
        "content/news/a.md:3: error: date '0001-01-01T00:00:00+14:00' is out of range; bulletin takes "
        "dates from the year 0002 to 9998"
    ]


def test_midnight_that_does_not_exist_is_the_first_instant_of_the_day() -> None:
    # Chile moved its clocks from 00:00 to 01:00 on 2026-09-06.
    tz = ZoneInfo("America/Santiago")
    start = local_midnight(datetime(2026, 9, 6).date(), tz)
    assert start.astimezone(tz).date().isoformat() == "2026-09-06"
    before = start.astimezone(UTC) - timedelta(seconds=1)
    assert before.astimezone(tz).date().isoformat() == "2026-09-05"
    assert start.astimezone(UTC) == datetime(2026, 9, 6, 4, tzinfo=UTC)


def test_naive_dates_are_in_the_site_time_zone(site: SiteMaker) -> None:
    site.write_config(timezone="Asia/Tokyo")
    item = item_of(site, date="2026-11-18T09:00")
    assert item.published == datetime(2026, 11, 18, 0, 0, tzinfo=UTC)


def test_updated_defaults_to_published_and_is_clamped(site: SiteMaker) -> None:
    item = item_of(site, date="2026-11-18")
    assert item.updated == item.published
    fields = {"title": "T", "date": "2026-11-18", "lastMod": "2026-11-01", "href": "https://src.example/"}
    parsed = parse(site, front_matter(fields))
    assert parsed.item is not None and parsed.item.updated == parsed.item.published
    assert parsed.clamped and not parsed.problems
    item = item_of(site, lastMod=None, updated="2026-11-20T10:00:00Z")
    assert item.updated == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_an_update_after_the_build_is_a_warning_and_the_date_until_then(site: SiteMaker) -> None:
    """A lastMod in the future made every feed's last update that day, frozen there."""
    site.item("future.md", title="Future", date="2026-11-20", lastMod="2099-01-01")
    site.item("past.md", title="Past", date="2026-11-20", updated="2026-11-21T08:00:00Z")
    site.item("later.md", title="Scheduled", date="2026-12-01", lastMod="2099-01-01")  # held back
    site.item("draft.md", title="Draft", date="2026-11-20", lastMod="2099-01-01", draft=True)
    for _ in range(2):  # parsed, then from the cache
        report = Report()
        items = {i.title: i for i in read_items(site.config(), report, NOW).items}
        assert [str(p) for p in report.sorted()] == [
            "content/future.md:4: warning: lastMod '2099-01-01' is after this build's time; until "
            "then feeds give the item's date as its last update: correct it"
        ]
        assert items["Future"].updated == items["Future"].published
        assert items["Past"].updated == datetime(2026, 11, 21, 8, tzinfo=UTC)
    report = Report()
    items = {i.title: i for i in read_items(site.config(), report, datetime(2099, 1, 2, tzinfo=UTC)).items}
    assert items["Future"].updated == datetime(2099, 1, 1, tzinfo=UTC) and not report.warnings


def test_source_link_precedence_and_name(site: SiteMaker) -> None:
    item = item_of(
        site,
        link={"href": "", "brand": "Brand"},
        href="https://www.a.example/1",
        original="https://b.example/2",
    )
    assert (item.link, item.source_name) == ("https://www.a.example/1", "Brand")
    item = item_of(site, openProjectCustomFields={"sourceUrl": "https://www.c.example/3"})
    assert (item.link, item.source_name) == ("https://www.c.example/3", "c.example")


def test_a_source_link_must_be_absolute_http(site: SiteMaker) -> None:
    parsed = parse(site, front_matter({"title": "T", "date": "2026-11-18", "href": "javascript:alert(1)"}))
    assert messages(parsed) == [
        "content/news/a.md:4: error: href 'javascript:alert(1)' is not an absolute http(s) URL; "
        "write the article's full https:// address"
    ]


@pytest.mark.parametrize(
    ("href", "problem"),
    [
        ("https://e.com:99999/x", "Port out of range 0-65535"),
        ("https://e.com:abc/", "Port could not be cast to integer value as 'abc'"),
        ("https://[::1/", "Invalid IPv6 URL"),
        ("https://e x.com/", "invalid international domain name"),
        ("https://e<x.com/", "invalid international domain name"),
        ("https://e%00x.com/", "invalid international domain name"),
        ("https://xn--a.com/", "invalid international domain name"),
        ("https://999.1.1.1/", "invalid IPv4 address"),
        ("https://1.2.3.4.5/", "invalid IPv4 address"),
    ],
)
def test_a_source_link_browsers_cannot_open_is_an_error_on_its_line(
    site: SiteMaker, href: str, problem: str
) -> None:
    """Python's urlsplit takes these; the sanitiser, given the link as the base for the body's
    relative links, used to stop the whole build with a traceback."""
    parsed = parse(site, front_matter({"title": "T", "date": "2026-11-18", "href": href}))
    assert messages(parsed) == [
        f"content/news/a.md:4: error: href '{href}' is not an address browsers can open ({problem}); "
        "write the article's full https:// address"
    ]


def test_an_image_address_browsers_cannot_open_is_an_error_on_its_line(site: SiteMaker) -> None:
    for href, problem in (
        ("https://[1:2:3]/x.png", "'1:2:3' does not appear to be an IPv4 or IPv6 address"),
        ("https://e^x.com/x.png", "invalid international domain name"),
    ):
        parsed = parse(
            site, front_matter({"title": "T", "date": "2026-11-18", "featuredImage": {"href": href}})
        )
        assert messages(parsed) == [
            f"content/news/a.md:5: error: featuredImage.href '{href}' is not an address browsers can "
            f"open ({problem}); write a file name or an https:// address"
        ]


@pytest.mark.parametrize(
    ("fields", "line", "says"),
    [
        ({"link": {"href": "https://user:secret@src.example/a"}}, 5, "link.href 'https://user:secret@src.example/a'"),
        ({"href": "https://token@src.example/a@b"}, 4, "href 'https://token@src.example/a@b'"),
        ({"featuredImage": {"href": "https://user:secret@img.example/x.jpg"}}, 5, "featuredImage.href 'https://user:secret@img.example/x.jpg'"),
        ({"featuredImage": {"href": "//token@img.example/x.jpg"}}, 5, "featuredImage.href '//token@img.example/x.jpg'"),
    ],
)  # fmt: skip
def test_a_link_with_a_user_name_or_password_is_an_error_on_its_line(
    site: SiteMaker, fields: dict[str, object], line: int, says: str
) -> None:
    """Browsers open them, so they were published: every feed and digest carried the password
    (and the W3C validator refused the image's enclosure)."""
    parsed = parse(site, front_matter({"title": "T", "date": "2026-11-18", **fields}))
    userinfo = "token@" if "token@" in says else "user:secret@"
    assert messages(parsed) == [
        f"content/news/a.md:{line}: error: {says} holds a user name or password, which feeds and "
        f"digests would publish; remove '{userinfo}'"
    ]


def test_a_site_with_one_unopenable_link_builds_everything_else(site: SiteMaker) -> None:
    site.item("good.md", title="Good", body="<p>Good <a href='/more'>more</a></p>")
    site.raw(
        "bad.md",
        front_matter({"title": "Bad", "date": "2026-11-18", "href": "https://e.com:99999/x"}) + "<p>Body</p>",
    )
    result = CliRunner().invoke(main, ["--site", str(site.root), "--now", NOW.isoformat(), "feeds"])
    assert result.exit_code == 1, result.output
    assert "content/bad.md:4: error: href 'https://e.com:99999/x' is not an address" in result.output
    feed = (site.root / "feeds/rss.xml").read_text()
    assert "Good" in feed and "Bad" not in feed


def test_summary_precedence(site: SiteMaker) -> None:
    fields = {
        "summary": "",
        "openGraphMetaData": {"ogdescription": "From OG."},
        "twitterMetaData": {"twitterdescription": "From Twitter."},
        "description": "From description.",
        "htmlMetaData": {"description": "Never read."},
    }
    assert item_of(site, **fields).summary == "From OG."
    del fields["openGraphMetaData"]
    assert item_of(site, **fields).summary == "From Twitter."
    del fields["twitterMetaData"]
    assert item_of(site, **fields).summary == "From description."
    del fields["description"]
    assert item_of(site, body="<p>From the <b>body</b> &amp; more.</p>", **fields).summary == (
        "From the body & more."
    )


def test_summary_is_cut_at_a_word_and_marked(site: SiteMaker) -> None:
    assert item_of(site, description="Cut mid sentence, like the seed").summary == (
        "Cut mid sentence, like the seed…"
    )
    long = ("word " * 100).strip() + "."
    summary = item_of(site, description=long).summary
    assert len(summary) <= 300 and summary.endswith("word…")
    assert item_of(site, description="Complete sentence.").summary == "Complete sentence."


def test_authors(site: SiteMaker) -> None:
    assert item_of(site, author="Solo").authors == ("Solo",)
    assert item_of(site, author=["A", "", "B"]).authors == ("A", "B")
    assert item_of(site).authors == ()


def test_topics_precedence_and_pairing(site: SiteMaker) -> None:
    item = item_of(site, categories=["A: One", "", "B"], categoryUrl=["topic/a-one", "x", "topic/b"])
    assert item.topics == ("A: One", "B")
    assert item.topic_urls == ("a-one", "b")
    item = item_of(site, categories="Single")
    assert item.topics == ("Single",)
    item = item_of(
        site, openProjectCustomFields={"medigyTopics": ["M"]}, topics=["T"], categoryUrl=["topic/z"]
    )
    assert item.topics == ("M",) and item.topic_urls == (None,)
    assert item_of(site, topics="T").topics == ("T",)


def test_image_fields(site: SiteMaker) -> None:
    item = item_of(
        site,
        basePath="/news/",
        slug="my-item",
        featuredImage={
            "href": "pic one.webp",
            "alt": "Alt",
            "size": [549, 732],
            "format": "WEBP",
            "valid": True,
            "wpAttachment": {"link": "/api/never"},
        },
    )
    assert item.image is not None
    assert item.image.url == "https://news.example.org/news/my-item/pic%20one.webp"
    assert (item.image.alt, item.image.width, item.image.height) == ("Alt", 549, 732)
    assert item.image.mime_type == "image/webp"
    assert item_of(site, featuredImage={"href": "x.png", "valid": "false"}).image is None


def test_image_with_a_bad_size(site: SiteMaker) -> None:
    parsed = parse(
        site,
        front_matter(
            {
                "title": "T",
                "date": "2026-11-18",
                "featuredImage": {"href": "x.png", "size": ["wide"]},
            }
        ),
    )
    assert messages(parsed) == [
        "content/news/a.md:6: error: featuredImage.size is not [width, height]; write two whole "
        "numbers of pixels"
    ]


def test_page_url(site: SiteMaker) -> None:
    site.write_config(site_url="https://www.example.org/base")
    item = item_of(site, basePath="/news/", slug="story")
    assert item.page == "https://www.example.org/base/news/story/"


@pytest.mark.parametrize(
    ("fields", "draft"),
    [
        ({"draft": True}, True),
        ({"draft": "no"}, False),
        ({"status": "Draft"}, True),
        ({"status": ""}, False),
    ],
)
def test_drafts(site: SiteMaker, fields: dict[str, object], draft: bool) -> None:
    assert item_of(site, **fields).draft is draft


def test_never_read_fields(site: SiteMaker) -> None:
    item = item_of(
        site,
        title=None,
        htmlMetaData={"ogtitle": "Wrong", "author": "Wrong"},
        twitterMetaData={"twittertitle": "Right", "twitterimage": "https://wrong.example/x.png"},
        categorySlug=["wrong"],
        categoryLabel=["Wrong"],
        relatedOfferings=[{"label": "x", "categories": ["Wrong"]}],
    )
    assert item.title == "Right"
    assert item.topics == () and item.image is None and item.authors == ()


# -- bodies -----------------------------------------------------------------------------------


def test_html_body_is_sanitised_and_made_absolute(site: SiteMaker) -> None:
    body = (
        '<p onclick="x()" style="color:red">Hi <a href="/articles/1" onmouseover="y">rel</a>'
        '<a href="javascript:alert(1)">js</a><img src="pic.png" alt="p">'
        '<img src="data:image/png;base64,AAAA" alt="inline"><a href="data:text/html,x">d</a></p>'
        "<script>alert(1)</script><style>p{}</style><iframe src='https://e.example'></iframe>"
        "<form><input></form><mark>m</mark><ruby>r</ruby><details><summary>s</summary></details>"
    )
    item = item_of(site, body=body, href="https://src.example/a/b")
    html = read_body(item, site.config())
    assert html == (
        '<p>Hi <a href="https://src.example/articles/1">rel</a><a>js</a>'
        '<img src="https://src.example/a/pic.png" alt="p">'
        '<img src="data:image/png;base64,AAAA" alt="inline"><a>d</a></p>mrs'
    )


def test_markdown_body(site: SiteMaker) -> None:
    item = item_of(
        site,
        body="## Heading\n\nSome *text* and [a link](/x).\n\n<b>raw</b>",
        href="https://src.example/a",
    )
    assert read_body(item, site.config()) == (
        '<h2>Heading</h2>\n<p>Some <em>text</em> and <a href="https://src.example/x">a link</a>.</p>\n'
        "<p><b>raw</b></p>"
    )


def test_html_file_extension_means_html(site: SiteMaker) -> None:
    path = site.raw("page.html", front_matter({"title": "T", "date": "2026-11-18"}, "Plain *text*"))
    parsed = parse_item(path.read_bytes(), "content/page.html", site.config())
    assert parsed.item is not None
    assert read_body(parsed.item, site.config()) == "Plain *text*"


def test_xml_forbidden_characters_leave_bodies(site: SiteMaker) -> None:
    item = item_of(site, body="<p>a\x00b\x0bc\ufffed\x85</p>")
    assert read_body(item, site.config()) == "<p>abcd\x85</p>"


@pytest.mark.parametrize(
    ("name", "body", "codes"),
    [
        ("a.html", "<p>Vertical\x0btab, &#11;entity, &#x1b;[31mescape &#X0C;feed.</p>", "U+000B"),
        ("a.md", "Vertical\x0btab, &#11;entity, &#x1b;[31mescape, *emphasis*\x1b.", "U+000B, U+001B"),
    ],
    ids=["html", "markdown"],
)
def test_control_characters_leave_bodies_and_their_summaries(
    site: SiteMaker, name: str, body: str, codes: str
) -> None:
    text = front_matter({"title": "T", "date": "2026-11-18", "href": "https://src.example/"}, body)
    parsed = parse(site, text, name=f"news/{name}")
    assert parsed.item is not None
    forbidden = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    assert not forbidden.search(parsed.item.summary), repr(parsed.item.summary)
    assert parsed.item.summary.startswith("Verticaltab,")
    html = read_body(parsed.item, site.config())
    assert not forbidden.search(html), repr(html)
    # Raw ones are reported like those in front matter; written as entities, they are text.
    assert messages(parsed) == [
        f"content/news/{name}:6: warning: control character {codes} removed from the body; "
        "delete it from the file"
    ]


# -- the folder -------------------------------------------------------------------------------


def test_bad_files_are_skipped_and_the_rest_read(site: SiteMaker) -> None:
    site.item("good.md", title="Good")
    site.raw("bad.md", "---\ntitle: [unclosed\n---\n")
    site.raw("notes.txt", "not an item")
    site.raw(".hidden.md", "---\n: bad\n---\n")
    report = Report()
    collection = read_items(site.config(), report, NOW)
    assert [i.title for i in collection.items] == ["Good"]
    assert [p.path for p in report.errors] == ["content/bad.md"]


def read_all(site: SiteMaker) -> tuple[list[str], list[str]]:
    """The titles of the items read (sorted) and every problem reported."""
    report = Report()
    collection = read_items(site.config(), report, NOW)
    return sorted(i.title for i in collection.items), [str(p) for p in report.sorted()]


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging when the block blocks (SIGALRM interrupts a blocking open)."""

    def expired(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(params=[True, False], ids=["by-descriptor", "by-path"])
def listing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Walk content/ in Python, listing folders through descriptors (where the platform can)
    and by path (elsewhere): the same files, stamps and problems either way. (The compiled
    walk, which tests/test_walk_compiled.py compares with this one, leaves every tree with
    a link or an unreadable folder to it, and calls no os function a test could patch.)"""
    monkeypatch.setattr(walk, "_compiled", None)
    monkeypatch.setattr(walk, "_BY_DESCRIPTOR", request.param)


def test_symlink_loops_are_reported_and_every_item_read_once(site: SiteMaker, listing: None) -> None:
    site.item("good.md", title="Good")
    site.item("sub/inner.md", title="Inner")
    content = site.root / "content"
    (content / "self.md").symlink_to("self.md")  # a link to itself
    (content / "sub/back").symlink_to("..")  # a folder containing itself
    (site.root / "shared").mkdir()  # outside content/, inside the site: read through the link
    site.raw(
        "../shared/extra.md",
        front_matter({"title": "Extra", "date": "2026-11-18", "href": "https://src.example/"}),
    )
    (site.root / "shared/again").symlink_to(".")
    (content / "shared").symlink_to("../shared")
    assert read_all(site) == (
        ["Extra", "Good", "Inner"],
        [
            "content/self.md: error: cannot be read: Too many levels of symbolic links; fix or remove it",
            "content/shared/again: warning: is a link to shared/, which is already read; not read "
            "twice: remove the link",
            "content/sub/back: warning: is a link to content/, which is already read; not read "
            "twice: remove the link",
        ],
    )


def test_symlinks_out_of_the_site_are_not_read(site: SiteMaker, tmp_path: Path, listing: None) -> None:
    site.item("good.md", title="Good")
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.md").write_text(front_matter({"title": "Secret", "date": "2026-11-18"}))
    (outside / "folder/secret2.md").write_text(front_matter({"title": "Secret 2", "date": "2026-11-18"}))
    (site.root / "content/leak.md").symlink_to(outside / "secret.md")
    (site.root / "content/elsewhere").symlink_to(outside / "folder")
    (site.root / "inside.md").symlink_to(outside / "secret.md")  # in the site, but leading out
    (site.root / "content/chained.md").symlink_to("../inside.md")
    assert read_all(site) == (
        ["Good"],
        [
            f"content/chained.md: warning: is a link to {outside / 'secret.md'}, outside the site "
            "folder; not read: copy it into the site or remove the link",
            f"content/elsewhere: warning: is a link to {outside / 'folder'}, outside the site "
            "folder; not read: copy it into the site or remove the link",
            f"content/leak.md: warning: is a link to {outside / 'secret.md'}, outside the site "
            "folder; not read: copy it into the site or remove the link",
        ],
    )


def test_a_link_to_the_site_folder_is_not_read(site: SiteMaker, listing: None) -> None:
    """It led back to content/ and on to feeds/ and emails/, whose pages were read as items."""
    site.item("good.md", title="Good")
    site.raw("../feeds/index.html", "<!DOCTYPE html><p>a page bulletin wrote</p>\n")
    (site.root / "content/loop").symlink_to("..")
    (site.root / "content/sub").mkdir()
    (site.root / "content/sub/up").symlink_to("../..")
    assert read_all(site) == (
        ["Good"],
        [
            "content/loop: warning: is a link to the site folder, which holds content/ itself; not "
            "read: remove the link",
            "content/sub/up: warning: is a link to the site folder, which holds content/ itself; not "
            "read: remove the link",
        ],
    )


def test_a_link_into_what_bulletin_writes_is_not_read(site: SiteMaker, listing: None) -> None:
    """A link to feeds/ made every page bulletin wrote an item, each one an error."""
    site.item("good.md", title="Good")
    site.raw("../feeds/index.html", "<!DOCTYPE html><p>a page bulletin wrote</p>\n")
    site.raw("../emails/2026-W47/digest.html", "<!DOCTYPE html><p>a digest</p>\n")
    (site.root / "content/published").symlink_to("../feeds")
    (site.root / "content/digest.html").symlink_to("../emails/2026-W47/digest.html")
    (site.root / ".bulletin").mkdir(exist_ok=True)
    (site.root / "content/state").symlink_to("../.bulletin")
    assert read_all(site) == (
        ["Good"],
        [
            "content/digest.html: warning: is a link into emails/, which bulletin writes; not read: "
            "remove the link",
            "content/published: warning: is a link into feeds/, which bulletin writes; not read: remove the link",
            "content/state: warning: is a link into .bulletin/, which bulletin writes; not read: remove the link",
        ],
    )


def test_content_may_itself_live_elsewhere(site: SiteMaker, tmp_path: Path, listing: None) -> None:
    elsewhere = tmp_path / "volume/news"
    elsewhere.mkdir(parents=True)
    (site.root / "content").rmdir()
    (site.root / "content").symlink_to(elsewhere)
    site.item("2026/a.md", title="A")
    (elsewhere / "latest").symlink_to("2026")  # a second way in: not read twice
    (elsewhere / "b.md").symlink_to("2026/a.md")  # a file link inside content/: read
    (elsewhere / "site").symlink_to(site.root)  # the site folder, elsewhere than content/
    site.raw("../feeds/index.html", "<!DOCTYPE html><p>a page bulletin wrote</p>\n")
    assert read_all(site) == (
        ["A", "A"],
        [
            "content/latest: warning: is a link to content/2026/, which is already read; not read twice: remove the link",
            "content/site: warning: is a link to the site folder, which holds content/ itself; not read: "
            "remove the link",
        ],
    )


def test_the_walk_by_descriptor_and_by_path_agree(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file, in order, with its stamp: hidden and '_' folders skipped, other suffixes too."""
    for name in ("b.md", "a.markdown", "c.html", "z/y/deep.md", "z/a.md", "m/n.md"):
        site.item(name, title=name)
    site.raw(".hidden.md", "---\ntitle: x\n---\n")
    site.raw("_drafts/x.md", "---\ntitle: x\n---\n")
    site.raw(".git/x.md", "---\ntitle: x\n---\n")
    site.raw("notes.txt", "not an item")
    content = site.root / "content"
    monkeypatch.setattr(walk, "_compiled", None)
    monkeypatch.setattr(walk, "_BY_DESCRIPTOR", False)
    by_path = walk.walk_items(content)
    monkeypatch.setattr(walk, "_BY_DESCRIPTOR", True)
    by_descriptor = walk.walk_items(content)
    assert by_descriptor.files == by_path.files
    assert [relpath for relpath, _ in by_path.files] == [
        "content/a.markdown",
        "content/b.md",
        "content/c.html",
        "content/m/n.md",
        "content/z/a.md",
        "content/z/y/deep.md",
    ]
    assert all(Path(path).is_file() for _, path in by_path.files)
    assert by_descriptor.stamps == by_path.stamps
    assert all(stamp.size > 0 and stamp.inode > 0 for stamp in by_path.stamps)


def test_an_item_file_with_its_suffix_in_upper_case_is_named_not_skipped_unsaid(site: SiteMaker) -> None:
    """Story.MD looked like an item and was skipped without a word, and not counted."""
    site.item("good.md", title="Good")
    site.item("news/Story.MD", title="Story")
    site.item("Page.Html", title="Page")
    (site.root / "content/notes.TXT").touch()  # not an item in any case: not mentioned
    assert read_all(site) == (
        ["Good"],
        [
            "content/Page.Html: warning: not read: item files end in .md, .markdown or .html; rename it Page.html",
            "content/news/Story.MD: warning: not read: item files end in .md, .markdown or .html; rename it Story.md",
        ],
    )


def test_names_that_are_not_utf8_are_reported_and_the_rest_read(site: SiteMaker, listing: None) -> None:
    """A file or folder name in another encoding (Latin-1 'é' here) used to stop the run with
    a traceback when the name was hashed; now it is named, with its bytes, and skipped."""
    site.item("good.md", title="Good")
    site.item("café.md", title="Café")  # UTF-8, and read
    content = os.fsencode(site.root / "content")
    try:
        with open(os.path.join(content, b"caf\xe9-latin1.md"), "wb") as file:
            file.write(front_matter({"title": "Latin", "date": "2026-11-18"}).encode())
        os.mkdir(os.path.join(content, b"dossier-\xe9"))
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    with open(os.path.join(content, b"dossier-\xe9", b"inside.md"), "wb") as file:
        file.write(front_matter({"title": "Inside", "date": "2026-11-18"}).encode())
    (site.root / "content/notes-\udce9.txt").touch()  # not an item: not mentioned
    assert read_all(site) == (
        ["Café", "Good"],
        [
            "content/caf\\xe9-latin1.md: error: its name is not UTF-8 text; not read: rename it",
            "content/dossier-\\xe9/: error: its name is not UTF-8 text; not read: rename it",
        ],
    )


def test_a_link_to_a_folder_that_is_not_there_is_an_error(
    site: SiteMaker, tmp_path: Path, listing: None
) -> None:
    """A folder of items on a disk that is not mounted: its items used to vanish from every
    feed without a word."""
    site.item("good.md", title="Good")
    (site.root / "content/archive").symlink_to(tmp_path / "unmounted/archive")
    (site.root / "content/notes.txt").symlink_to(tmp_path / "nowhere.txt")  # not a folder name
    (site.root / "content/_old").symlink_to(tmp_path / "nowhere")  # '_' folders are not read
    assert read_all(site) == (
        ["Good"],
        [
            f"content/archive: error: is a link to {tmp_path / 'unmounted/archive'}, which is not "
            "there; what it holds is not read: mount or fix it",
            f"content/notes.txt: error: is a link to {tmp_path / 'nowhere.txt'}, which is not "
            "there; what it holds is not read: mount or fix it",
        ],
    )


def test_a_fifo_is_reported_not_opened(site: SiteMaker) -> None:
    site.item("good.md", title="Good")
    os.mkfifo(site.root / "content/x.md")
    with deadline(10):
        assert read_all(site) == (
            ["Good"],
            [
                "content/x.md: error: is a named pipe (FIFO), not a file; only regular files are read: remove it"
            ],
        )


def test_an_unreadable_folder_is_reported_and_the_rest_read(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch, listing: None
) -> None:
    site.item("good.md", title="Good")
    site.item("locked/inside.md", title="Inside")
    locked = os.fspath(site.root / "content/locked")
    scandir, open_ = os.scandir, os.open

    def refusing(path: str | int) -> object:  # a folder is listed by path or by descriptor
        if not isinstance(path, int) and os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    def refusing_open(path: str, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return open_(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", refusing)
    monkeypatch.setattr(os, "open", refusing_open)
    assert read_all(site) == (
        ["Good"],
        [
            "content/locked/: error: folder cannot be read: Permission denied; its items are skipped: "
            "give bulletin's user permission to read it, or move it out of content/"
        ],
    )


def test_an_unreadable_file_is_reported_and_the_rest_read(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.item("good.md", title="Good")
    locked = os.fspath(site.item("locked.md", title="Locked"))
    real_open = os.open

    def refusing(path: str, *args: object, **kwargs: object) -> int:
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing)
    assert read_all(site) == (
        ["Good"],
        [
            "content/locked.md: error: cannot be read: Permission denied; give bulletin's user "
            "permission to read it, or move it out of content/"
        ],
    )


def test_duplicate_ids_newer_wins(site: SiteMaker) -> None:
    site.item("a.md", id="same", title="Old", lastMod="2026-11-18T10:00:00Z")
    site.item("b.md", id="same", title="New", lastMod="2026-11-19T10:00:00Z")
    site.item("c.md", id="tie", title="First")
    site.item("d.md", id="tie", title="Later path")
    report = Report()
    items = read_items(site.config(), report, NOW).items
    assert sorted(i.title for i in items) == ["Later path", "New"]
    assert [str(p) for p in report.sorted()] == [
        "content/a.md: warning: id 'same' is also used by content/b.md, which is newer and wins; "
        "give this item its own id or delete it",
        "content/c.md: warning: id 'tie' is also used by content/d.md, which has the same date and "
        "comes later by path and wins; "
        "give this item its own id or delete it",
    ]


def test_drafts_and_scheduled_items_are_held_back(site: SiteMaker) -> None:
    site.item("draft.md", draft=True)
    site.item("future.md", date="2026-11-26")
    site.item("now.md", date="2026-11-25T12:00:00Z")
    report = Report()
    collection = read_items(site.config(), report, NOW)
    assert [i.path for i in collection.items] == ["content/now.md"]
    assert collection.drafts == 1
    assert [i.path for i in collection.scheduled] == ["content/future.md"]
    assert report.notes == ["content/future.md: scheduled for 2026-11-26T00:00:00+00:00, held back"]


def test_items_are_sorted_newest_first_totally(site: SiteMaker) -> None:
    site.item("a.md", id="a", date="2026-11-18")
    site.item("b.md", id="b", date="2026-11-18")
    site.item("c.md", id="c", date="2026-11-18", lastMod="2026-11-19")
    site.item("d.md", id="d", date="2026-11-19")
    items = read_items(site.config(), Report(), NOW).items
    assert [i.id for i in items] == ["d", "c", "b", "a"]


def test_cache_sees_an_edit_that_keeps_size_and_mtime(site: SiteMaker) -> None:
    path = site.item("a.md", title="Alpha")
    config = site.config()
    assert read_items(config, Report(), NOW).items[0].title == "Alpha"
    stat = path.stat()
    path.write_bytes(path.read_bytes().replace(b"Alpha", b"Omega"))
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert read_items(config, Report(), NOW).items[0].title == "Omega"


def test_cache_is_keyed_by_configuration(site: SiteMaker) -> None:
    site.item("a.md", date="2026-11-18T09:00")
    first = read_items(site.config(), Report(), NOW).items[0]
    site.write_config(timezone="Asia/Tokyo")
    second = read_items(site.config(), Report(), NOW).items[0]
    assert first.published - second.published == timedelta(hours=9)


def test_cache_keeps_problems(site: SiteMaker) -> None:
    site.raw("bad.md", "---\ntitle: T\ndate: nope\n---\n")
    for _ in range(2):
        report = Report()
        read_items(site.config(), report, NOW)
        assert [str(p) for p in report.errors] == [
            "content/bad.md:3: error: date 'nope' is not a date; write YYYY-MM-DD or an ISO 8601 date-time"
        ]


def test_fixed_offsets_survive(site: SiteMaker) -> None:
    item = item_of(site, date="2026-11-18T09:30:00-05:00")
    assert item.published.utcoffset() == timezone(timedelta(hours=-5)).utcoffset(None)


def test_seed_item_is_read_field_by_field(site: SiteMaker) -> None:
    seed = Path(__file__).parent / "data" / "seed.md"
    site.write_config(site_url="https://www.medigy.com/")
    parsed = parse(site, seed.read_bytes(), name="news/seed.md")
    item = parsed.item
    assert parsed.problems == ()
    assert item is not None
    assert item.id == "11904"
    assert item.title == "Stem cell therapy for multiple sclerosis: Explanation and safety"
    assert item.published == datetime(2022, 3, 12, tzinfo=UTC)
    assert item.updated == datetime(2022, 3, 12, 20, 33, 57, 639377, tzinfo=UTC)
    assert item.link == "https://www.medicalnewstoday.com/articles/stem-cell-multiple-sclerosis"
    assert item.source_name == "medicalnewstoday.com"
    # summary: openGraphMetaData.ogdescription comes before description (which is cut).
    assert item.summary == (
        "Stem cell therapy is proving to be promising as a treatment for people with multiple "
        "sclerosis. Learn more."
    )
    assert item.authors == ("Radhika Narayanan",)
    assert item.topics == ("Gartner: Healthcare",)
    assert item.topic_urls == ("gartner-healthcare",)
    page = (
        "https://www.medigy.com/news/"
        "medicalnewstoday-stem-cell-therapy-for-multiple-sclerosis-explanation-and-safety/"
    )
    assert item.page == page
    assert item.image is not None
    assert item.image.url == page + "82979524-fe34-599e-a868-72a6cc4e38d3-featuredImage.jpeg"
    assert item.image.alt == "Stem cell therapy for multiple sclerosis: Explanation and safety"
    assert (item.image.width, item.image.height, item.image.mime_type) == (549, 732, "image/jpeg")
    assert item.draft is False
    body = read_body(item, site.config())
    assert body.startswith("<p>Multiple sclerosis (MS) is an autoimmune disease")
    assert body.endswith("<p><strong>What are stem cells? Why are they important?</strong></p>")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"category": "Alpha"},
            "content/news/a.md:4: warning: 'category' is not a field bulletin reads; did you mean 'categories'?",
        ),
        (
            {"titel": "Typo"},
            "content/news/a.md:4: warning: 'titel' is not a field bulletin reads; did you mean 'title'?",
        ),
        (
            {"descripton": "Typo"},
            "content/news/a.md:4: warning: 'descripton' is not a field bulletin reads; did you mean 'description'?",
        ),
        (
            {"link": "https://src.example/x"},
            "content/news/a.md:4: warning: link is text, so bulletin finds no link in it; write it as link:, then on the next line href: 'https://src.example/x' (indented)",
        ),
    ],
)
def test_lint_warns_of_what_would_pass_silently(
    site: SiteMaker, fields: dict[str, str], message: str
) -> None:
    text = front_matter({"title": "T", "date": "2026-11-18", **fields, "href": "https://src.example/"})
    if "link" in fields:
        text = text.replace("href: https://src.example/\n", "")
        assert messages(parse(site, text)) == [message]  # one mistake, one warning: not also "no source"
    assert message in messages(parse(site, text))


def test_lint_warns_of_an_item_with_no_source_link_and_says_what_happens(site: SiteMaker) -> None:
    assert messages(parse(site, front_matter({"title": "T", "date": "2026-11-18"}))) == [
        "content/news/a.md: warning: has no source link, so its feed entries have no link and the "
        "digest links the site instead; add link: with href: 'https://…' under it"
    ]
    with_page = front_matter({"title": "T", "date": "2026-11-18", "slug": "t"})
    assert messages(parse(site, with_page)) == [
        "content/news/a.md: warning: has no source link, so feeds and the digest link to its page "
        "on the site instead; add link: with href: 'https://…' under it"
    ]


def test_topics_written_as_one_text_with_commas_are_a_warning(site: SiteMaker) -> None:
    """`categories: Cybersecurity, Interoperability` made one topic, cybersecurity-interoperability."""
    text = "---\ntitle: T\ndate: '2026-11-18'\nhref: https://src.example/\ncategories: A, it's B\n---\nx\n"
    parsed = parse(site, text)
    assert parsed.item is not None and parsed.item.topics == ("A, it's B",)  # as written: a warning only
    assert messages(parsed) == [
        "content/news/a.md:5: warning: categories 'A, it's B' is one topic whose name holds a comma; "
        "for several topics write a list, categories: ['A', 'it''s B'] (for one such topic, a list of one)"
    ]
    nested = {"openProjectCustomFields": {"medigyTopics": "Health, Policy"}, "href": "https://src.example/"}
    assert messages(parse(site, front_matter({"title": "T", "date": "2026-11-18", **nested}))) == [
        "content/news/a.md:5: warning: openProjectCustomFields.medigyTopics 'Health, Policy' is one "
        "topic whose name holds a comma; for several topics write a list, medigyTopics: ['Health', "
        "'Policy'] (for one such topic, a list of one)"
    ]
    listed = {"categories": ["Health, Policy", "Care"], "href": "https://src.example/"}
    parsed = parse(site, front_matter({"title": "T", "date": "2026-11-18", **listed}))
    assert parsed.item is not None and parsed.item.topics == ("Health, Policy", "Care")
    assert messages(parsed) == []


def test_block_tags_in_a_text_field_part_its_words() -> None:
    """`AT&amp;T <p>one<p>two` was read as "AT&T onetwo": nh3 drops a tag without a space."""
    from bulletin.text import text_of

    assert text_of("AT&amp;T <p>one<p>two") == "AT&T one two"
    assert text_of("<ul><li>a<li>b</ul>") == "a b"
    assert text_of("Line<br>break, <b>bold</b>ly") == "Line break, boldly"


def test_a_misspelled_field_inside_link_or_featured_image_is_named(site: SiteMaker) -> None:
    """`featuredImage: herf:` gave no image and `link: - href:` no link, without a word
    (or only "has no source link"): the field that was meant is named."""
    text = (
        "---\ntitle: T\ndate: '2026-11-18'\nhref: https://src.example/\n"
        "featuredImage:\n  herf: pic.jpg\n  Alt: A picture\n  workPackage: 7\n---\nx\n"
    )
    assert messages(parse(site, text)) == [
        "content/news/a.md:6: warning: 'featuredImage.herf' is not a field bulletin reads; "
        "did you mean 'featuredImage.href'?"
    ]
    listed = "---\ntitle: T\ndate: '2026-11-18'\nlink:\n  - href: https://src.example/\n---\nx\n"
    assert "content/news/a.md:4: warning: link is a list (its fields start with '- '), so bulletin reads " \
        "none of them; remove the '- '" in messages(parse(site, listed))  # fmt: skip
    fine = "---\ntitle: T\ndate: '2026-11-18'\nlink:\n  href: https://src.example/\n  hrefs: x\n---\nx\n"
    assert messages(parse(site, fine)) == []  # href is there: a field near it is another field


def test_a_draft_is_not_told_it_has_no_source_link(site: SiteMaker) -> None:
    """It is held back, so nothing links anywhere yet; its other mistakes are still named."""
    for draft in ({"draft": True}, {"status": "Draft"}):
        assert messages(parse(site, front_matter({"title": "T", "date": "2026-11-18", **draft}))) == []
    fields = {"title": "T", "date": "2026-11-18", "draft": True, "titel": "Typo"}
    assert messages(parse(site, front_matter(fields))) == [
        "content/news/a.md:5: warning: 'titel' is not a field bulletin reads; did you mean 'title'?"
    ]


def test_fields_curation_tools_write_are_not_typos(site: SiteMaker) -> None:
    seed = (DATA / "seed.md").read_bytes()
    assert [p for p in parse(site, seed).problems if "did you mean" in p.message] == []


# -- parse workers ----------------------------------------------------------------------------


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, each with its start time (pids are reused)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found[int(entry)] = fields[19]
    return found


def _alive(pid: int, started: str) -> bool:
    """Still running: not gone, not a zombie, not another process under a reused pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == started


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the workers")
def test_parse_workers_die_with_a_killed_build(site: SiteMaker) -> None:
    body = "\n\n".join(
        f"Paragraph {n} of *Markdown* with [a link](https://src.example/{n})." for n in range(40)
    )
    for n in range(1000):  # above the 400 stale files that start parallel parsing
        site.item(f"i{n:04d}.md", body, id=f"i{n}", categories=[f"T{n % 7}"])
    command = [sys.executable, "-m", "bulletin", "feeds", "--site", str(site.root), "--now", "2026-11-25"]
    build = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "BULLETIN_JOBS": "2"}
    )
    workers: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 30
        while not workers and build.poll() is None and time.monotonic() < deadline:
            workers = _children(build.pid)
            time.sleep(0.005)
        assert workers, "the build never started its parse workers"
        build.kill()  # SIGKILL: no chance to clean up
        with contextlib.suppress(subprocess.TimeoutExpired):
            build.communicate(timeout=5)  # returns once nothing holds its stdout and stderr open
        assert build.returncode is not None, "the killed build's output stayed open: its workers live on"
        time.sleep(0.2)
        assert [pid for pid, started in workers.items() if _alive(pid, started)] == []
    finally:
        for pid, started in workers.items():
            if _alive(pid, started):
                os.kill(pid, signal.SIGKILL)
        build.kill()
        build.communicate()


def test_join_url_is_urljoin() -> None:
    """The shortcut for plain relative paths gives urljoin's answer for any base and path."""
    from urllib.parse import urljoin

    from bulletin.site.parse import join_url

    rng = random.Random(7)
    bases = [
        "https://news.example.org/",
        "https://news.example.org",
        "https://news.example.org/news/item/",
        "https://news.example.org/news/item",
        "https://news.example.org/a/../b/",
        "https://news.example.org/a/./b/",
        "https://news.example.org/a//b/",
        "https://news.example.org/a/?q=1",
        "https://news.example.org/a/#top",
        "http://x.example:8080/p%20q/",
        "file:///srv/site/",
        "",
    ]
    pieces = ["a", "b.jpeg", ".", "..", "", "%20", "~x", "-", "_", "é", "?q", "#f", ":", "//h", " ", "x.y"]
    for _ in range(20_000):
        relative = "/".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.2:
            relative += "/"
        base = rng.choice(bases)
        assert join_url(base, relative) == urljoin(base, relative), (base, relative)


def test_items_from_rows_share_what_they_repeat_and_stay_equal() -> None:
    """from_row keeps one object for values many items repeat, and changes no value."""
    from bulletin.site.items import Image, Item

    def item(n: int) -> Item:
        when = datetime(2026, 11, 18, tzinfo=UTC)
        return Item(
            id=f"i{n}",
            path=f"content/i{n}.md",
            title=f"Title {n}",
            published=when,
            updated=datetime(2026, 11, 18, tzinfo=UTC),
            link=f"https://source.example/{n}",
            source_name="source" + ".example",
            summary="Summary.",
            authors=("Ann " + "Author",),
            topics=("Gartner: " + "Healthcare", "KLAS: Imaging"),
            topic_urls=(None, "klas-imaging"),
            image=Image(f"https://news.example.org/i{n}.jpeg", f"Title {n}", 600, 400, "image/jpeg"),
            page=None,
            draft=False,
            body_offset=120,
            fingerprint="f" * 64,
        )

    first, second = (Item.from_row(item(n).to_row()) for n in (1, 2))
    assert (first, second) == (item(1), item(2))
    assert type(first) is Item and type(first.image) is Image  # items are tuples: equal is not enough
    assert first.topics is second.topics and first.authors is second.authors
    assert first.source_name is second.source_name
    assert first.updated is first.published
    assert first.image is not None and first.image.alt is first.title

    # The parse cache pickles the items themselves: they come back as Items, sharing as before.
    third, fourth = pickle.loads(pickle.dumps([first, second], pickle.HIGHEST_PROTOCOL))
    assert (third, fourth) == (item(1), item(2))
    assert type(third) is Item and type(third.image) is Image and type(fourth.image) is Image
    assert third.topics is fourth.topics and third.updated is third.published
    assert third.image is not None and third.image.alt is third.title


def test_closing_line_is_the_first_line_of_only_dashes_or_dots() -> None:
    """closing_line finds what `^(?:---|\\.\\.\\.)[ \\t]*$` (multi-line) finds, on random texts."""
    from bulletin.site.parse import closing_line

    pattern = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
    pieces = ["---", "...", "--", "----", "..", " ", "\t", "a: b", "\n", "\n", "- x", "-- -", ". . ."]
    rng = random.Random(11)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        start = rng.choice([0, *(i + 1 for i, c in enumerate(text) if c == "\n")])
        found = pattern.search(text, start)
        assert closing_line(text, start) == (None if found is None else found.span()), (text, start)


def test_one_line_shortcut_matches_the_full_rule() -> None:
    """one_line's shortcut for plain ASCII gives what removing and collapsing gives."""
    from bulletin.text import _NOT_IN_TEXT, _without_astral_noncharacters, one_line

    pieces = [
        "a",
        "Bc",
        " ",
        "  ",
        "\t",
        "\n",
        "\x0b",
        "\x0c",
        "\x1f",
        "\x7f",
        "é",
        "\u202e",
        "\xa0",
        ".",
        "",
    ]
    rng = random.Random(5)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert one_line(text) == " ".join(
            _without_astral_noncharacters(_NOT_IN_TEXT.sub("", text)).split()
        ), repr(text)


def test_a_link_nh3_refuses_as_a_base_leaves_the_body_relative_links_out() -> None:
    """Defence in depth: a base the sanitiser's URL parser refuses (the reader no longer
    accepts such links, but a parse cached before might hold one) drops relative links
    instead of stopping the build."""
    html = bodies.sanitize(
        "<p><a href='/more'>more</a> <a href='https://a.example/'>a</a></p>", "https://e.com:99999/"
    )
    assert html == '<p><a>more</a> <a href="https://a.example/">a</a></p>'


def test_an_item_with_hundreds_of_topics_keeps_the_first_hundred_and_says_so(site: SiteMaker) -> None:
    """Each topic's feed lists all of an item's topics, so the work grew with the cube of
    their number: 1,000 topics took 47 s, 2,000 more than five minutes."""
    names = [f"Topic {n}" for n in range(1, 301)]
    parsed = parse(site, front_matter({"title": "T", "date": "2026-11-18", "categories": names}))
    assert parsed.item is not None
    assert parsed.item.topics == tuple(names[:100])
    assert messages(parsed)[0] == (
        "content/news/a.md:4: warning: categories lists 300 topics; only the first 100 are used: "
        "keep the few this item is about"
    )


def test_a_markdown_reference_used_thousands_of_times_cannot_blow_up(site: SiteMaker) -> None:
    """100 kB of Markdown, one 50,000-character reference used 12,000 times, rendered to
    600 MB and took 3 GB to build; now the links past the limit keep only their text."""
    body = "[a]: <https://e.example/" + "x" * 50_000 + ">\n\n" + "[a] " * 12_000 + "\n"
    parsed = parse(
        site, front_matter({"title": "T", "date": "2026-11-18", "href": "https://src.example/"}, body)
    )
    assert messages(parsed) == [
        "content/news/a.md: warning: body's reference links repeat their addresses past 64 kB more "
        "than the body itself; 11,997 of them keep their text without an address: use each "
        "reference fewer times"
    ]
    html = bodies.to_html(body, "a.md")
    assert len(html) < 2 * len(body) + 2 * bodies.REPEATED_LINKS
    assert html.count('href="https://e.example/') == 3 and html.count("<a>a</a>") == 11_997
    ampersands = "[a]: <https://e.example/" + "&" * 20_000 + ">\n\n" + "[a] " * 8_000 + "\n"
    html = bodies.to_html(ampersands, "a.md")  # each '&' is written '&amp;': five times as long
    assert len(html) < 2 * (len(ampersands) + bodies.REPEATED_LINKS)
    normal = "[one][r] and [two][r] and [three](https://e.example/3)\n\n[r]: https://e.example/r\n"
    assert bodies.to_html(normal, "a.md").count('href="https://e.example/') == 3


def test_invisible_line_breaks_do_not_shift_the_lines_reported(site: SiteMaker) -> None:
    """libyaml counts U+2028, U+2029 and U+0085 as line breaks; the file's lines do not."""
    parsed = parse(site, "---\ntitle: Hospital\u2028news\ndate: '2026-11-18'\n---\n<p>B</p>\n")
    assert messages(parsed) == [
        "content/news/a.md:3: error: front matter is not valid YAML: could not find expected ':'; "
        "a line is missing ':' or a quoted value is not closed (line 2 holds U+2028, which YAML "
        "reads as a line break: delete it)"
    ]
    quoted = (
        "---\ntitle: 'Hospital\u2028news'\ndate: '2026-11-18'\nhref: https://src.example/\nsumary: x\n---\n"
    )
    assert messages(parse(site, quoted)) == [
        "content/news/a.md:5: warning: 'sumary' is not a field bulletin reads; did you mean 'summary'?"
    ]


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        (  # closed by the next value's quote: libyaml stops a line later
            "title: 'Hospitals adopt AI\ndate: '2026-11-18'\nhref: https://src.example/\n",
            "a.md:2: error: front matter is not valid YAML: the quote opened on this line is not "
            "closed on it; close it (YAML reads on, and on line 3: did not find expected key)",
        ),
        (
            "title: T\ncategories:\n  - 'Alpha\n  - 'Beta'\ndate: '2026-11-18'\n",
            "a.md:4: error: front matter is not valid YAML: the quote opened on this line is not "
            "closed on it; close it (YAML reads on, and on line 5: did not find expected '-' indicator)",
        ),
        (  # closed by nothing: libyaml names the opening line itself
            'date: 2026-11-18\ntitle: "Hospitals\n',
            "a.md:3: error: front matter is not valid YAML: a quote opened on this line is not "
            "closed; close it",
        ),
        (
            "title: T\ncategories: [Alpha, Beta\ndate: 2026-11-18\n",
            "a.md:3: error: front matter is not valid YAML: a bracket opened on this line is not "
            "closed; close it",
        ),
        (  # a value over two lines, meant so: the error later is not blamed on it
            "title: 'Hospitals\n  adopt AI'\ndate: 2026-11-18\nnote: a: b\n",
            "a.md:5: error: front matter is not valid YAML: mapping values are not allowed in this "
            "context; quote the value in single quotes; it contains ': '",
        ),
        (  # nor when it closed on the line just before the error
            "title: T\ndescription: 'line one\n  line two'\nfoo: bar: baz\n",
            "a.md:5: error: front matter is not valid YAML: mapping values are not allowed in this "
            "context; quote the value in single quotes; it contains ': '",
        ),
        (  # a quote in a '>' block is a letter ('Tis)
            "title: T\ndescription: >-\n  'Tis the season\n  to be jolly\nfoo: bar: baz\n",
            "a.md:6: error: front matter is not valid YAML: mapping values are not allowed in this "
            "context; quote the value in single quotes; it contains ': '",
        ),
        (  # closed, with something wrong inside: libyaml's own line and words
            "title: T\ncategories: [a, b}]\n",
            "a.md:3: error: front matter is not valid YAML: did not find expected ',' or ']'; check "
            "the quoting and indentation around it",
        ),
        (
            "title: T\ncategories: [\n  a,\n  b c: d: e,\n]\n",
            "a.md:5: error: front matter is not valid YAML: did not find expected ',' or ']'; check "
            "the quoting and indentation around it",
        ),
    ],
)
def test_an_unclosed_quote_is_reported_where_it_opens(site: SiteMaker, front: str, expected: str) -> None:
    """libyaml finds the error where a later quote closes the value, lines further on."""
    parsed = parse(site, f"---\n{front}---\n<p>B</p>\n")
    assert messages(parsed) == ["content/news/" + expected]


def test_a_tab_that_starts_a_line_is_named_as_a_tab(site: SiteMaker) -> None:
    parsed = parse(site, "---\ntitle: T\nlink:\n\thref: https://src.example/\n---\n")
    assert messages(parsed) == [
        "content/news/a.md:4: error: front matter is not valid YAML: found character that cannot "
        "start any token; indent with spaces, not tabs"
    ]


def test_topic_names_of_only_invisible_characters_are_left_out(site: SiteMaker) -> None:
    """A zero-width space made a topic whose link, heading and feed title were all blank."""
    text = "---\ntitle: T\ndate: '2026-11-18'\ncategories: ['\u200b', 'Real', '\u2060 ', '\ufe0f\u034f']\nhref: https://x.example/\n---\nx\n"
    parsed = parse(site, text)
    assert parsed.item is not None and parsed.item.topics == ("Real",)
    assert messages(parsed) == [
        "content/news/a.md:4: warning: categories has a topic name of only invisible characters "
        "(U+034F, U+200B, U+2060, U+FE0F); it is left out: write its name"
    ]


def test_topic_names_longer_than_three_hundred_characters_are_left_out(site: SiteMaker) -> None:
    """A hundred topics of 20,000 characters each made one 2 MB item write 800 MB of feeds."""
    names = ["Short one", "Long " + "x" * 20_000, "Also short", "y" * 301, "z" * 300]
    parsed = parse(site, front_matter({"title": "T", "date": "2026-11-18", "categories": names}))
    assert parsed.item is not None
    assert parsed.item.topics == ("Short one", "Also short", "z" * 300)
    assert messages(parsed)[0] == (
        "content/news/a.md:4: warning: categories has 2 topic name(s) longer than 300 characters "
        "(up to 20,005); they are left out: name each topic in a few words"
    )


def test_a_cite_address_that_cannot_be_joined_is_dropped_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    html = bodies.sanitize(
        '<blockquote cite="//[::1">q</blockquote><p><a href="/ok">ok</a></p>', "https://src.example/"
    )
    assert html == '<blockquote>q</blockquote><p><a href="https://src.example/ok">ok</a></p>'
    assert capfd.readouterr().err == ""  # raised inside nh3, it printed a traceback


def test_a_character_yaml_does_not_allow_is_named_on_its_line(site: SiteMaker) -> None:
    parsed = parse(
        site, "---\ntitle: T\ndate: '2026-11-18'\nhref: https://src.example/\nnote: x\ufffey\n---\n"
    )
    assert messages(parsed) == [
        "content/news/a.md:5: error: front matter holds U+FFFE, which YAML does not allow; delete it"
    ]
