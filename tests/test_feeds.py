"""Feeds — read back by feedparser, validated by the Atom grammar and the JSON Feed
schema, plus what the grammar cannot see."""

from __future__ import annotations

import html
import json
import os
import random
import re
import shutil
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import jsonschema
import pytest
from lxml import etree

from bulletin.dates import rfc822
from bulletin.feeds.writer import write_feeds
from bulletin.report import Report
from bulletin.site.reader import read_site

from .conftest import DATA, SiteMaker

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"


@pytest.fixture(scope="module")
def atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(DATA / "atom.rng")))


@pytest.fixture(scope="module")
def json_schema() -> dict[str, object]:
    return json.loads((DATA / "jsonfeed-1.1.schema.json").read_text())  # type: ignore[no-any-return]


def build(site: SiteMaker) -> tuple[Path, list[str]]:
    config = site.config()
    written = write_feeds(read_site(config, Report(), NOW))
    return config.feeds_dir, written.changed


def populate(site: SiteMaker) -> None:
    site.item(
        "news/one.md",
        id="one",
        title="First <b>bold</b> & co",
        date="2026-11-20T08:00:00-05:00",
        lastMod="2026-11-21T09:00:00Z",
        author=["Ann Author", "Bob Writer"],
        categories=["Gartner: Healthcare", "Medigy: Café Talks"],
        categoryUrl=["topic/gartner-healthcare"],
        link={"href": "https://www.source.example/a/one", "brand": "Source"},
        description="A summary with <script>alert(1)</script> text.",
        featuredImage={"href": "one.jpeg", "alt": "One", "size": [600, 400], "format": "JPEG"},
        basePath="/news/",
        slug="one",
        body='<p onclick="x()">Hello <a href="/rel">relative</a><script>bad()</script></p>',
    )
    site.item(
        "news/two.md",
        id="two/with space?",
        title="Second",
        date="2026-11-19",
        categories=["gartner:  healthcare"],
        href="https://two.example/story",
        body="Markdown *body* with [link](https://two.example/x).",
    )
    site.item("news/three.md", id="three", title="No topics", date="2026-11-18", href="https://t.example/")
    site.item("news/draft.md", id="draft", title="Draft", draft=True, categories=["Secret"])


def test_every_feed_is_valid(
    site: SiteMaker, atom_schema: etree.RelaxNG, json_schema: dict[str, object]
) -> None:
    populate(site)
    feeds, _ = build(site)
    xml_files = sorted(feeds.rglob("*.xml"))
    assert {p.relative_to(feeds).as_posix() for p in feeds.rglob("*") if p.is_file()} == {
        "rss.xml", "atom.xml", "feed.json", "index.html", "feeds.opml",
        "topic/gartner-healthcare/rss.xml", "topic/gartner-healthcare/atom.xml",
        "topic/gartner-healthcare/feed.json", "topic/gartner-healthcare/index.html",
        "topic/medigy-cafe-talks/rss.xml", "topic/medigy-cafe-talks/atom.xml",
        "topic/medigy-cafe-talks/feed.json", "topic/medigy-cafe-talks/index.html",
    }  # fmt: skip
    for path in xml_files:
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        if path.name == "atom.xml":
            document = etree.parse(str(path))
            assert atom_schema.validate(document), (path, atom_schema.error_log)
    for path in feeds.rglob("feed.json"):
        jsonschema.validate(json.loads(path.read_bytes()), json_schema)
    etree.parse(str(feeds / "feeds.opml"))  # well-formed


def test_entries_are_newest_first_with_permanent_tag_ids(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    rss = feedparser.parse((feeds / "rss.xml").read_bytes())
    atom = feedparser.parse((feeds / "atom.xml").read_bytes())
    data = json.loads((feeds / "feed.json").read_bytes())
    expected = [
        "tag:news.example.org,2000:one",
        "tag:news.example.org,2000:two/with%20space?",
        "tag:news.example.org,2000:three",
    ]
    assert [e.id for e in rss.entries] == expected
    assert [e.id for e in atom.entries] == expected
    assert [e["id"] for e in data["items"]] == expected
    assert '<guid isPermaLink="false">tag:news.example.org,2000:one</guid>' in (feeds / "rss.xml").read_text()
    # the draft is in no feed
    assert all("Draft" not in p.read_text() for p in feeds.rglob("*.*"))


def test_topic_feeds_hold_their_topic_only(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    health = feedparser.parse((feeds / "topic/gartner-healthcare/atom.xml").read_bytes())
    cafe = feedparser.parse((feeds / "topic/medigy-cafe-talks/atom.xml").read_bytes())
    assert [e.title for e in health.entries] == ["First bold & co", "Second"]  # markup reduced to text
    assert [e.title for e in cafe.entries] == ["First bold & co"]
    # two spellings, one topic shown by the most common (ties: the smaller) spelling
    assert [t.term for t in health.entries[1].tags] == ["Gartner: Healthcare"]
    assert health.feed.title == "Test News: Gartner: Healthcare"


def test_atom_entry_links_dates_authors_and_media(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    root = etree.parse(str(feeds / "atom.xml")).getroot()
    first = root.find(f"{ATOM}entry")
    assert first is not None
    links = [(link.get("rel"), link.get("type"), link.get("href")) for link in first.findall(f"{ATOM}link")]
    assert links == [
        ("alternate", "text/html", "https://www.source.example/a/one"),
        ("enclosure", "image/jpeg", "https://news.example.org/news/one/one.jpeg"),
    ]
    assert [e.text for e in first.findall(f"{ATOM}author/{ATOM}name")] == [
        "Ann Author",
        "Bob Writer",
    ]
    assert first.findtext(f"{ATOM}published") == "2026-11-20T08:00:00-05:00"
    assert first.findtext(f"{ATOM}updated") == "2026-11-21T09:00:00+00:00"
    assert first.find(f"{ATOM}content").get("type") == "html"  # type: ignore[union-attr]
    media = first.findall(f"{MEDIA}content")
    assert [(m.get("url"), m.get("width"), m.get("height"), m.get("type")) for m in media] == [
        ("https://news.example.org/news/one/one.jpeg", "600", "400", "image/jpeg")
    ]
    assert root.find(f".//{MEDIA}group") is None
    # every entry has exactly one alternate link; every date has an offset
    for entry in root.findall(f"{ATOM}entry"):
        assert [link.get("rel") for link in entry.findall(f"{ATOM}link")].count("alternate") == 1
        assert all(link.get("rel") for link in entry.findall(f"{ATOM}link"))
    for element in root.iter(f"{ATOM}updated", f"{ATOM}published"):
        assert re.search(r"([+-]\d\d:\d\d|Z)$", element.text or ""), element.text


def test_links_site_puts_the_page_first_and_the_source_as_via(site: SiteMaker) -> None:
    populate(site)
    site.write_config(links="site")
    feeds, _ = build(site)
    root = etree.parse(str(feeds / "atom.xml")).getroot()
    first = root.find(f"{ATOM}entry")
    assert first is not None
    assert [(link.get("rel"), link.get("href")) for link in first.findall(f"{ATOM}link")][:2] == [
        ("alternate", "https://news.example.org/news/one/"),
        ("via", "https://www.source.example/a/one"),
    ]
    item = json.loads((feeds / "feed.json").read_bytes())["items"][0]
    assert (item["url"], item["external_url"]) == (
        "https://news.example.org/news/one/",
        "https://www.source.example/a/one",
    )


def test_rss_channel_and_items(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    text = (feeds / "rss.xml").read_text()
    root = etree.fromstring(text.encode())
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("link") == "https://news.example.org/"
    self_link = channel.find(f"{ATOM}link")
    assert self_link is not None
    assert (self_link.get("rel"), self_link.get("href")) == (
        "self",
        "https://news.example.org/feeds/rss.xml",
    )
    assert channel.findtext("generator") == "bulletin"
    assert "feedgen" not in text
    # the channel date is the newest updated among the entries, never the clock
    assert parsedate_to_datetime(channel.findtext("lastBuildDate") or "") == datetime(
        2026, 11, 21, 9, tzinfo=UTC
    )
    assert 'length="None"' not in text
    first = channel.find("item")
    assert first is not None
    tags = [child.tag for child in first]
    assert tags.index("description") < tags.index(f"{CONTENT}encoded")
    assert "author" not in tags  # dc:creator only, never both
    assert [c.text for c in first.findall(f"{DC}creator")] == ["Ann Author", "Bob Writer"]
    enclosure = first.find("enclosure")
    assert enclosure is not None and enclosure.get("length") == "0"
    # an HTML description becomes its text (see test_titles_and_summaries_are_text_in_every_format)
    assert first.findtext("description") == "A summary with text."
    assert first.findtext("title") == "First bold & co"


def test_content_is_sanitised_and_absolute(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    atom = feedparser.parse((feeds / "atom.xml").read_bytes(), sanitize_html=False)
    content = atom.entries[0].content[0].value
    assert content == '<p>Hello <a href="https://www.source.example/rel">relative</a></p>'
    markdown = atom.entries[1].content[0].value
    assert markdown == '<p>Markdown <em>body</em> with <a href="https://two.example/x">link</a>.</p>'


def test_long_content_is_cut_at_an_element_and_links_to_the_source(site: SiteMaker) -> None:
    site.write_config(feed_content_kb=1)
    paragraphs = "".join(f"<p>Paragraph {n} " + "text " * 40 + "</p>" for n in range(20))
    site.item(
        "long.md",
        title="Long",
        href="https://src.example/long",
        link={"brand": "Src"},
        body=paragraphs,
    )
    feeds, _ = build(site)
    data = json.loads((feeds / "feed.json").read_bytes())
    html = data["items"][0]["content_html"]
    assert len(html.encode()) <= 1024
    assert html.endswith('</p><p><a href="https://src.example/long">Read the full article at Src</a></p>')
    assert html.count("<p>") == html.count("</p>")


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        # A CMS export: the whole article in one wrapper. The cut used to keep nothing.
        ("<div class='post'>" + "".join(f"<p>P{n} " + "text " * 40 + "</p>" for n in range(40)) + "</div>",
         "<p>P0 "),
        ("<ul>" + "".join(f"<li>L{n} " + "text " * 30 + "</li>" for n in range(60)) + "</ul>", "<li>L0 "),
        ("<table><tbody>" + "".join(f"<tr><td>R{n}</td><td>" + "x " * 40 + "</td></tr>" for n in range(60))
         + "</tbody></table>", "<td>R0</td>"),
        ("<p>" + "word " * 2000 + "</p>", "<p>word word"),  # one long paragraph: cut at a space
        # a space only in the text before a long link: the cut goes back there
        ("<p>" + "Some words. " * 60 + '<a href="https://x.example/">' + "y" * 3000 + "</a> more</p>",
         "<p>Some words. Some"),
    ],
    ids=["wrapper", "list", "table", "paragraph", "long-link"],
)  # fmt: skip
def test_a_long_body_is_cut_inside_its_elements_which_are_closed(
    site: SiteMaker, body: str, kept: str
) -> None:
    site.write_config(feed_content_kb=1)
    site.item("long.md", title="Long", href="https://src.example/long", link={"brand": "Src"}, body=body)
    feeds, _ = build(site)
    html = json.loads((feeds / "feed.json").read_bytes())["items"][0]["content_html"]
    assert len(html.encode()) <= 1024
    assert kept in html and len(html) > 600, html
    assert html.endswith('<p><a href="https://src.example/long">Read the full article at Src</a></p>')
    assert _balanced(html)


def _balanced(html: str) -> bool:
    """Whether every element that opens in `html` closes, innermost first."""
    opened: list[str] = []
    balanced = [True]

    class Tags(HTMLParser):
        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag not in ("br", "hr", "img", "wbr", "col", "area"):
                opened.append(tag)

        def handle_endtag(self, tag: str) -> None:
            if not opened or opened.pop() != tag:
                balanced[0] = False

    Tags().feed(html)
    return balanced[0] and not opened


def test_a_body_cut_before_rendering_still_links_to_the_source(site: SiteMaker) -> None:
    # Cut at 200 K characters (twice feed_content_kb), inside the comment: what is left
    # renders well under the cap, and the entry must still say that it is not all.
    body = "<p>Start.</p><!--" + "y" * 300_000 + "--><p>Never shown.</p>"
    site.item("long.md", title="Long", href="https://src.example/long", link={"brand": "Src"}, body=body)
    feeds, _ = build(site)
    html = json.loads((feeds / "feed.json").read_bytes())["items"][0]["content_html"]
    assert html == '<p>Start.</p><p><a href="https://src.example/long">Read the full article at Src</a></p>'


def test_feed_items_limits_every_feed(site: SiteMaker) -> None:
    site.write_config(feed_items=2)
    for n in range(5):
        site.item(f"i{n}.md", id=f"i{n}", date=f"2026-11-1{n}", categories=["T"])
    feeds, _ = build(site)
    for path in ("rss.xml", "topic/t/rss.xml"):
        assert [e.id.rsplit(":", 1)[1] for e in feedparser.parse((feeds / path).read_bytes()).entries] == [
            "i4",
            "i3",
        ]


def test_control_characters_and_hostile_text_cannot_break_a_feed(
    site: SiteMaker, atom_schema: etree.RelaxNG
) -> None:
    site.item(
        "x.md",
        title='Quote " and ]]> and \x0b vertical tab',
        description="Nul\x00 and \ufffe",
        categories=["../../etc/passwd", "  ", "con/../x"],
        author="<img src=x onerror=alert(1)>",
        body="<p>\x1b[31mred</p>",
    )
    feeds, _ = build(site)
    for path in feeds.rglob("*.xml"):
        assert not feedparser.parse(path.read_bytes()).bozo
    assert atom_schema.validate(etree.parse(str(feeds / "atom.xml")))
    slugs = sorted(p.name for p in (feeds / "topic").iterdir())
    assert slugs == ["con-x", "etc-passwd"]
    assert all(p.resolve().is_relative_to(feeds.resolve()) for p in feeds.rglob("*"))


def test_a_rebuild_with_nothing_changed_touches_nothing(site: SiteMaker) -> None:
    populate(site)
    feeds, written = build(site)
    assert len(written) == 13
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in feeds.rglob("*") if p.is_file()}
    _, written = build(site)
    assert written == []
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in feeds.rglob("*") if p.is_file()} == before


def test_output_is_byte_identical_without_the_cache(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    before = {p: p.read_bytes() for p in feeds.rglob("*") if p.is_file()}
    import shutil

    shutil.rmtree(site.root / ".bulletin")
    shutil.rmtree(feeds)
    build(site)
    assert {p: p.read_bytes() for p in feeds.rglob("*") if p.is_file()} == before


def thirty_topics(site: SiteMaker) -> None:
    """60 items in 30 topics: enough feeds and pages to render in worker processes."""
    for n in range(60):
        site.item(
            f"news/i{n:02d}.md", id=f"i{n}", date=f"2026-11-{1 + n % 24:02d}", categories=[f"Topic {n % 30}"]
        )


def from_scratch(site: SiteMaker, monkeypatch: pytest.MonkeyPatch, jobs: str) -> None:
    """The next build in `jobs` processes, with no cache and no output."""
    monkeypatch.setenv("BULLETIN_JOBS", jobs)
    shutil.rmtree(site.root / ".bulletin", ignore_errors=True)
    shutil.rmtree(site.root / "feeds", ignore_errors=True)


def test_rendering_in_processes_writes_the_same_bytes_and_counts(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enough topics for the feeds and pages to render in two processes: the files, the
    list of files written and the second run's nothing-to-do are those of one process."""
    from bulletin import output

    pools: list[int] = []
    real_pool = output.process_pool

    def counted(jobs: int) -> object:
        pools.append(jobs)
        return real_pool(jobs)

    monkeypatch.setattr(output, "process_pool", counted)
    thirty_topics(site)
    results = {}
    for jobs in ("1", "2"):
        from_scratch(site, monkeypatch, jobs)
        feeds, written = build(site)
        files = {p.relative_to(feeds).as_posix(): p.read_bytes() for p in feeds.rglob("*") if p.is_file()}
        assert build(site)[1] == []  # the fingerprints were recorded for every file
        results[jobs] = (files, written)
    assert pools == [2]  # 30 topics' feeds and pages: over the 64 renders that start processes
    assert len(results["1"][0]) > 64
    assert results["2"] == results["1"]


def test_rendering_in_processes_makes_each_feeds_entries_once(
    site: SiteMaker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed's three files share its entries (each body read and sanitised): one worker
    renders all three, so two processes make no more entries than one."""
    from bulletin.feeds import writer

    made = tmp_path / "made.log"
    real_make_entry = writer.make_entry

    def logged(item: object, *args: object) -> object:
        with made.open("a") as log:  # one short line per write: the workers' lines stay whole
            log.write(f"{os.getpid()} {item.id}\n")  # type: ignore[attr-defined]
        return real_make_entry(item, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "make_entry", logged)
    thirty_topics(site)
    counts = {}
    for jobs in ("1", "2"):
        from_scratch(site, monkeypatch, jobs)
        made.unlink(missing_ok=True)
        build(site)
        lines = made.read_text().splitlines()
        counts[jobs] = (len(lines), len({line.split()[0] for line in lines}))
    # the all-items feed shows the newest 50, each of the 30 topics' feeds its 2
    assert counts == {"1": (110, 1), "2": (110, 2)}


def test_one_changed_item_rewrites_only_its_feeds(site: SiteMaker) -> None:
    populate(site)
    build(site)
    site.item(
        "news/three.md",
        id="three",
        title="No topics, edited",
        date="2026-11-18",
        href="https://t.example/",
    )
    _, written = build(site)
    assert sorted(written) == ["feeds/atom.xml", "feeds/feed.json", "feeds/rss.xml"]


def test_a_deleted_output_file_is_written_again(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    (feeds / "topic/gartner-healthcare/atom.xml").unlink()
    _, written = build(site)
    assert written == ["feeds/topic/gartner-healthcare/atom.xml"]


def test_an_interrupted_build_leaves_the_previous_feeds_intact(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(site)
    feeds, _ = build(site)
    before = {p: p.read_bytes() for p in feeds.rglob("*") if p.is_file()}
    site.item(
        "news/four.md",
        id="four",
        title="Fourth",
        date="2026-11-22",
        categories=["Gartner: Healthcare"],
    )
    calls = {"n": 0}
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        build(site)
    monkeypatch.undo()
    after = {p: p.read_bytes() for p in feeds.rglob("*") if p.is_file()}
    assert set(after) == set(before)  # no temporary file left behind
    changed = [p for p in before if before[p] != after[p]]
    assert len(changed) <= 1  # the one file replaced before the failure is whole
    for path in changed:
        assert feedparser.parse(after[path]).bozo == 0
    # the next run completes the job
    _, written = build(site)
    assert "feeds/topic/gartner-healthcare/atom.xml" in written


def test_index_and_opml_list_every_feed(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    index = (feeds / "index.html").read_text()
    for slug in ("gartner-healthcare", "medigy-cafe-talks"):
        for name, kind in (
            ("rss.xml", "application/rss+xml"),
            ("atom.xml", "application/atom+xml"),
            ("feed.json", "application/feed+json"),
        ):
            url = f"https://news.example.org/feeds/topic/{slug}/{name}"
            assert f'<link rel="alternate" type="{kind}"' in index
            assert f'href="{url}"' in index
    opml = etree.parse(str(feeds / "feeds.opml")).getroot()
    assert [o.get("xmlUrl") for o in opml.iter("outline")] == [
        "https://news.example.org/feeds/rss.xml",
        "https://news.example.org/feeds/topic/gartner-healthcare/rss.xml",
        "https://news.example.org/feeds/topic/medigy-cafe-talks/rss.xml",
    ]
    page = (feeds / "topic/gartner-healthcare/index.html").read_text()
    assert "First bold &amp; co" in page
    assert 'href="https://news.example.org/feeds/topic/gartner-healthcare/atom.xml"' in page


def test_an_item_older_than_every_feed_still_counts_in_the_index(site: SiteMaker) -> None:
    """An item too old for any feed changes no feed, but the feeds index counts it."""
    site.write_config(feed_items=1)
    for n in (1, 2):
        site.item(f"news/n{n}.md", id=f"n{n}", date=f"2026-11-2{n}", categories=["Gartner: Healthcare"])
    feeds, _ = build(site)
    site.item("news/old.md", id="old", date="2019-01-01", categories=["Gartner: Healthcare"])
    _, written = build(site)
    counts = re.findall(r'class="count">(\d+)<', (feeds / "index.html").read_text())
    assert counts == ["3", "3"]
    assert "feeds/topic/gartner-healthcare/index.html" in written
    assert "feeds/rss.xml" not in written  # the newest item is the same: the feeds stay as they are


def test_an_empty_site_still_has_valid_feeds(site: SiteMaker, atom_schema: etree.RelaxNG) -> None:
    feeds, _ = build(site)
    assert not feedparser.parse((feeds / "rss.xml").read_bytes()).bozo
    assert atom_schema.validate(etree.parse(str(feeds / "atom.xml")))
    assert "2000-01-01" in (feeds / "atom.xml").read_text()


def test_a_vanished_topic_loses_its_feeds_but_not_foreign_files(site: SiteMaker) -> None:
    populate(site)
    feeds, _ = build(site)
    (feeds / "topic" / "hand-made").mkdir()
    (feeds / "topic" / "hand-made" / "notes.txt").write_text("mine")
    site.item("news/one.md", id="one", title="First", date="2026-11-20", categories=["Gartner: Healthcare"])
    written = write_feeds(read_site(site.config(), Report(), NOW))
    assert written.removed == ["feeds/topic/medigy-cafe-talks/"]
    assert not (feeds / "topic" / "medigy-cafe-talks").exists()
    assert (feeds / "topic" / "hand-made" / "notes.txt").read_text() == "mine"
    assert "medigy-cafe-talks" not in (feeds / "index.html").read_text()


# -- the published pages ------------------------------------------------------------------------


def _many(site: SiteMaker, count: int) -> None:
    for n in range(count):
        site.item(f"many/{n:03d}.md", id=f"m{n}", title=f"Story {n}", date=f"2026-10-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                  categories=["Alpha"], href=f"https://src.example/{n}")  # fmt: skip


def test_topic_pages_show_every_item_with_older_pages(site: SiteMaker) -> None:
    site.write_config(feed_items=10)
    _many(site, 120)
    folder, _ = build(site)
    topic = folder / "topic" / "alpha"
    first, second, third = (topic / "index.html", topic / "page/2/index.html", topic / "page/3/index.html")
    assert first.read_text().count('class="entry"') == 50 and third.read_text().count('class="entry"') == 20
    assert (
        'href="https://news.example.org/feeds/topic/alpha/page/2/index.html" rel="next"' in first.read_text()
    )
    page2 = second.read_text()
    assert 'href="https://news.example.org/feeds/topic/alpha/index.html" rel="prev"' in page2
    assert "page 2 of 3" in page2
    assert len(re.findall(r"<entry>", (topic / "atom.xml").read_text())) == 10  # feeds keep feed_items
    for path in sorted((site.root / "content" / "many").iterdir())[60:]:
        path.unlink()
    build(site)
    assert second.exists() and not third.exists() and not (topic / "page" / "3").exists()


def test_thumbnails_have_their_size_so_nothing_shifts(site: SiteMaker) -> None:
    site.item("a.md", title="With image", categories=["Alpha"],
              featuredImage={"href": "https://img.example/a.jpg", "alt": "A chart", "size": [600, 400]})  # fmt: skip
    folder, _ = build(site)
    page = (folder / "topic" / "alpha" / "index.html").read_text()
    assert (
        '<img class="thumb" src="https://img.example/a.jpg" alt="A chart" width="96" height="64" loading="lazy">'
        in page
    )


def test_a_thumbnail_keeps_a_sane_shape_whatever_size_is_written(site: SiteMaker) -> None:
    """size: [10, 5000] (a typo, or a long infographic) made a 96 x 48,000 box."""
    site.item("tall.md", title="Tall", categories=["Alpha"],
              featuredImage={"href": "https://img.example/t.jpg", "size": [10, 5000]})  # fmt: skip
    site.item("wide.md", title="Wide", categories=["Alpha"],
              featuredImage={"href": "https://img.example/w.jpg", "size": [5000, 10]})  # fmt: skip
    folder, _ = build(site)
    page = (folder / "topic" / "alpha" / "index.html").read_text()
    assert 'src="https://img.example/t.jpg" alt="" width="96" height="144"' in page
    assert 'src="https://img.example/w.jpg" alt="" width="96" height="24"' in page


def test_pages_date_items_in_the_site_time_zone(site: SiteMaker) -> None:
    """As the digest does: 23:30 at UTC-11:30 is the next day in Berlin."""
    site.write_config(timezone="Europe/Berlin")
    site.item("a.md", title="Late", categories=["Alpha"], date="2026-11-17T23:30:00-11:30")
    folder, _ = build(site)
    page = (folder / "topic" / "alpha" / "index.html").read_text()
    assert '<div class="meta">2026-11-18' in page
    assert "2026-11-17" not in page
    assert "2026-11-18" in (folder / "index.html").read_text()


def test_names_in_a_meta_line_are_isolated_for_right_to_left_scripts(site: SiteMaker) -> None:
    """Without <bdi>, Hebrew and Arabic topic names beside each other came out in reverse order."""
    site.item("a.md", title="RTL", categories=["עברית", "الذكاء الاصطناعي"], link={"brand": "מקור"},
              href="https://src.example/a")  # fmt: skip
    folder, _ = build(site)
    page = next((folder / "topic").glob("*/index.html")).read_text()
    assert " · <bdi>מקור</bdi> · <bdi>עברית</bdi> · <bdi>الذكاء الاصطناعي</bdi></div>" in page


def test_source_and_image_addresses_are_written_as_uris(site: SiteMaker) -> None:
    """Written as authors paste them (a space, 'ß', an IDN host, '|' and '{}' in a query),
    they made the W3C validator report errors: feeds carry them as RFC 3986 URIs."""
    site.item("a.md", title="Odd links", categories=["Alpha"],
              href="https://bücher.example/wiki/Straße 1?q=a|b&y={z}#teil 2",
              featuredImage={"href": "https://img.example/Bild ä.jpg", "size": [600, 400]})  # fmt: skip
    site.item("b.md", title="Plain", categories=["Alpha"], href="https://plain.example/a?b=1&c=2#top")
    folder, _ = build(site)
    wanted = "https://xn--bcher-kva.example/wiki/Stra%C3%9Fe%201?q=a%7Cb&y=%7Bz%7D#teil%202"
    items = {i["title"]: i for i in json.loads((folder / "feed.json").read_bytes())["items"]}
    assert items["Odd links"]["url"] == wanted
    assert items["Odd links"]["image"] == "https://img.example/Bild%20%C3%A4.jpg"
    assert items["Plain"]["url"] == "https://plain.example/a?b=1&c=2#top"  # already a URI: as written
    entry = next(e for e in feedparser.parse(folder / "rss.xml").entries if e.title == "Odd links")
    assert entry.link == wanted
    assert "https://img.example/Bild%20%C3%A4.jpg" in (folder / "topic" / "alpha" / "index.html").read_text()


def test_rss_titles_write_ampersands_and_angles_as_the_validator_asks(site: SiteMaker) -> None:
    """The W3C validator warned: in RSS, '&' and '<' in plain text go as &#x26; and &#x3C;.
    Readers get the same text; an author's name loses its markup, as a title does."""
    site.item("a.md", title="Why List<T> beats 3 < 4 & more", categories=["A & B"],
              author=["Jane <b>Doe</b>"], href="https://src.example/a")  # fmt: skip
    folder, _ = build(site)
    raw = (folder / "rss.xml").read_text()
    assert "<title>Why List&#x3C;T&gt; beats 3 &#x3C; 4 &#x26; more</title>" in raw
    parsed = feedparser.parse(folder / "rss.xml")
    assert parsed.entries[0].title == "Why List<T> beats 3 < 4 & more"
    assert parsed.entries[0].author == "Jane Doe"
    assert "<name>Jane Doe</name>" in (folder / "atom.xml").read_text()


def test_atom_text_holding_a_tag_is_declared_html_and_escaped(site: SiteMaker) -> None:
    """An escaped tag in a title or summary is text that names a tag. As an Atom text
    construct it made the W3C validator warn ("should not contain HTML unless declared in
    the type attribute"), and a reader that renders it could meet a live `<img onerror>`.
    It goes as type="html", escaped once more; "(<25 beds)" holds no tag and stays text."""
    site.item("a.md", title="Breaking &lt;img src=x onerror=alert(1)&gt;",
              description="Summary &lt;script&gt;alert(1)&lt;/script&gt;.", categories=["A"])  # fmt: skip
    site.item("b.md", title="Rural hospitals (<25 beds) lag", description="Plain.", categories=["A"])
    folder, _ = build(site)
    atom = (folder / "atom.xml").read_text()
    assert '<title type="html">Breaking &amp;lt;img src=x onerror=alert(1)&amp;gt;</title>' in atom
    assert (
        '<summary type="html">Summary &amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;.</summary>'
        in atom
    )
    assert "<title>Rural hospitals (&lt;25 beds) lag</title>" in atom
    site.write_config(description="<i>Curated</i> <svg onload=alert(6)> news")  # the feed's own
    folder, _ = build(site)
    assert (
        '<subtitle type="html">Curated &amp;lt;svg onload=alert(6)&amp;gt; news</subtitle>'
        in (folder / "atom.xml").read_text()
    )
    entries = {e.id.rsplit(":", 1)[1]: e for e in feedparser.parse(folder / "atom.xml").entries}
    assert entries["a"].title_detail.type == "text/html"
    assert entries["a"].title == "Breaking &lt;img src=x onerror=alert(1)&gt;"  # shows as the text
    assert entries["b"].title == "Rural hospitals (<25 beds) lag"


def test_the_site_description_goes_into_the_feeds_as_text(site: SiteMaker) -> None:
    """The W3C validator warned "description should not contain HTML" for `<b>` in the
    configured description; feeds, pages and the JSON feed now carry its text."""
    site.write_config(description="Weekly <b>health</b> news & notes")
    site.item("a.md", categories=["Alpha"])
    folder, _ = build(site)
    assert "<description>Weekly health news &#x26; notes</description>" in (folder / "rss.xml").read_text()
    assert "<subtitle>Weekly health news &amp; notes</subtitle>" in (folder / "atom.xml").read_text()
    assert json.loads((folder / "feed.json").read_text())["description"] == "Weekly health news & notes"
    assert '<p class="tagline">Weekly health news &amp; notes</p>' in (folder / "index.html").read_text()


def test_brand_accent_and_logo_reach_the_pages(site: SiteMaker) -> None:
    site.write_config(brand={"accent": "#1D4ED8", "logo": "logo.png"})
    site.item("a.md", categories=["Alpha"])
    folder, _ = build(site)
    page = (folder / "index.html").read_text()
    assert "--accent: #1d4ed8;" in page and "--accent: #99afed;" in page  # and its dark-mode tint
    assert '<img src="https://news.example.org/logo.png" alt="" height="32">' in page


def test_a_bad_brand_is_a_configuration_error(site: SiteMaker) -> None:
    from click.testing import CliRunner

    from bulletin.cli import main

    site.write_config(brand={"accent": "teal", "logo": "javascript:alert(1)"})
    result = CliRunner().invoke(main, ["build", "--site", str(site.root)])
    assert result.exit_code == 2
    assert "bulletin.toml:6: error: brand.accent: 'teal' is not a colour" in result.stderr
    assert "bulletin.toml:7: error: brand.logo: 'javascript:alert(1)' is not an image URL" in result.stderr


def test_titles_and_summaries_are_text_in_every_format(site: SiteMaker, atom_schema: etree.RelaxNG) -> None:
    site.item(
        "tags.md",
        id="tags",
        title="Tags <b>bold</b> &amp; more",
        description="<p>Hello <em>world</em> &amp; more.</p>",
        categories=["Topic <i>one</i>"],
        href="https://src.example/tags",
    )
    feeds, _ = build(site)
    for path in ("atom.xml", "rss.xml", "topic/topic-one/atom.xml", "topic/topic-one/rss.xml"):
        data = (feeds / path).read_bytes()
        assert b"&lt;b&gt;" not in data and b"&lt;em&gt;" not in data and b"&lt;i&gt;" not in data, path
    atom = etree.parse(str(feeds / "atom.xml")).getroot()
    entry = atom.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}title") == "Tags bold & more"
    assert entry.findtext(f"{ATOM}summary") == "Hello world & more."
    rss = etree.parse(str(feeds / "rss.xml")).getroot().find("channel/item")
    assert rss is not None
    assert rss.findtext("title") == "Tags bold & more"
    assert rss.findtext("description") == "Hello world &amp; more."  # HTML: the text, escaped once
    item = json.loads((feeds / "feed.json").read_bytes())["items"][0]
    assert (item["title"], item["summary"]) == ("Tags bold & more", "Hello world & more.")
    topic = etree.parse(str(feeds / "topic/topic-one/atom.xml")).getroot()
    assert topic.findtext(f"{ATOM}title") == "Test News: Topic one"
    page = (feeds / "topic/topic-one/index.html").read_text()
    assert "Tags bold &amp; more" in page and "&lt;" not in page
    assert atom_schema.validate(etree.parse(str(feeds / "atom.xml")))


def test_an_update_dated_after_the_build_leaves_the_feeds_dated_as_published(site: SiteMaker) -> None:
    """lastMod: '2099-01-01' made every feed's last update 2099 (the W3C validator: "Implausible
    date"); until that day the item counts as updated when published, in the same bytes."""
    site.item("a.md", title="Future", date="2026-11-20", lastMod="2099-01-01", categories=["Alpha"])
    site.item("b.md", title="Older", date="2026-11-18", categories=["Alpha"])
    config = site.config()
    write_feeds(read_site(config, Report(), NOW))
    before = {p: p.read_bytes() for p in config.feeds_dir.rglob("*") if p.is_file()}
    assert not write_feeds(read_site(config, Report(), NOW + timedelta(days=400))).changed
    assert {p: p.read_bytes() for p in config.feeds_dir.rglob("*") if p.is_file()} == before
    rss = etree.parse(str(config.feeds_dir / "rss.xml")).getroot()
    assert rss.findtext("channel/lastBuildDate") == "Fri, 20 Nov 2026 00:00:00 +0000"
    atom = etree.parse(str(config.feeds_dir / "topic/alpha/atom.xml")).getroot()
    assert atom.findtext(f"{ATOM}updated") == "2026-11-20T00:00:00+00:00"
    assert json.loads((config.feeds_dir / "feed.json").read_bytes())["items"][0]["date_modified"] == (
        "2026-11-20T00:00:00+00:00"
    )
    # From that day on the update is the item's: the feeds are written again and carry it
    # (the render fingerprints did not see the clamp, and kept the old files).
    later = datetime(2099, 6, 1, tzinfo=UTC)
    assert write_feeds(read_site(config, Report(), later)).changed
    atom = etree.parse(str(config.feeds_dir / "topic/alpha/atom.xml")).getroot()
    assert atom.findtext(f"{ATOM}updated") == "2099-01-01T00:00:00+00:00"


def test_a_title_that_names_an_element_is_published_whole(site: SiteMaker) -> None:
    """'<title>' in a title was read as HTML: the feeds said "Google now rewrites the"."""
    title = "Google now rewrites the <title> element in 60% of results"
    summary = 'Engines ignore the <title> and <meta name="description"> tags sites write.'
    site.item("a.md", title=title, description=summary, categories=["Alpha"])
    feeds, _ = build(site)
    assert feedparser.parse(feeds / "rss.xml").entries[0].title == title
    # Atom: text that holds a tag goes as type="html", escaped, and reads back as the text
    entry = feedparser.parse(feeds / "atom.xml").entries[0]
    assert (entry.title_detail.type, html.unescape(entry.title)) == ("text/html", title)
    atom = etree.parse(str(feeds / "atom.xml")).getroot().find(f"{ATOM}entry")
    assert atom is not None and html.unescape(atom.findtext(f"{ATOM}summary") or "") == summary
    item = json.loads((feeds / "feed.json").read_bytes())["items"][0]
    assert (item["title"], item["summary"]) == (title, summary)
    assert "rewrites the &lt;title&gt; element" in (feeds / "topic/alpha/index.html").read_text()


def test_an_empty_body_leaves_out_the_content(
    site: SiteMaker, atom_schema: etree.RelaxNG, json_schema: dict[str, object]
) -> None:
    site.item(
        "empty.md",
        "",
        id="empty",
        title="No body",
        description="Only a summary.",
        href="https://src.example/e",
    )
    site.item(
        "bare.md",
        "",
        id="bare",
        title="No body, no link",
        description="Just this.",
        date="2026-11-17",
        href=None,
    )
    feeds, _ = build(site)
    atom = etree.parse(str(feeds / "atom.xml"))
    assert atom_schema.validate(atom), atom_schema.error_log
    entries = {e.findtext(f"{ATOM}id"): e for e in atom.getroot().iter(f"{ATOM}entry")}
    assert entries["tag:news.example.org,2000:empty"].find(f"{ATOM}content") is None
    # Atom needs content or an alternate link: an entry with neither shows its summary.
    bare = entries["tag:news.example.org,2000:bare"].find(f"{ATOM}content")
    assert bare is not None and (bare.get("type"), bare.text) == ("html", "Just this.")
    rss = etree.parse(str(feeds / "rss.xml")).getroot()
    for item in rss.iter("item"):
        assert item.find(f"{CONTENT}encoded") is None
        assert item.findtext("description")
    data = json.loads((feeds / "feed.json").read_bytes())
    jsonschema.validate(data, json_schema)
    items = {i["id"].rsplit(":", 1)[1]: i for i in data["items"]}
    assert "content_html" not in items["empty"] and items["empty"]["content_text"] == "Only a summary."
    assert "content_html" not in items["bare"] and items["bare"]["content_text"] == "Just this."
    for path in feeds.rglob("*.xml"):
        assert not feedparser.parse(path.read_bytes()).bozo


class _Attributes(HTMLParser):
    """Every attribute in some HTML, character references decoded as a browser does."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend((tag, name, value or "") for name, value in attrs)

    handle_startendtag = handle_starttag


def published_attributes(feeds: Path) -> list[tuple[str, str, str, str]]:
    """(file, tag, attribute, value) for every attribute of every entry's HTML, in every feed."""
    html_parts = []
    for path in sorted(feeds.rglob("*")):
        if path.name == "feed.json":
            html_parts += [(path, i.get("content_html", "")) for i in json.loads(path.read_bytes())["items"]]
        elif path.name in ("atom.xml", "rss.xml"):
            root = etree.parse(str(path)).getroot()
            html_parts += [(path, e.text or "") for e in root.iter(f"{ATOM}content", f"{CONTENT}encoded")]
        elif path.suffix == ".html":
            html_parts.append((path, path.read_text()))
    found = []
    for path, page in html_parts:
        parser = _Attributes()
        parser.feed(page)
        parser.close()
        found += [(path.relative_to(feeds).as_posix(), *attribute) for attribute in parser.found]
    return found


_RASTER = re.compile(r"data:image/(png|jpeg|gif|webp)[;,]")


def dangerous(tag: str, name: str, value: str) -> bool:
    """A javascript:, vbscript: or (but in img src, a raster image) data: URL, read as a browser
    reads it: tabs and line breaks removed, leading and trailing controls and spaces stripped."""
    url = re.sub(r"[\t\n\r]", "", value).strip("".join(map(chr, range(0x21)))).lower()
    if url.startswith(("javascript:", "vbscript:")):
        return True
    return url.startswith("data:") and not (tag == "img" and name == "src" and _RASTER.match(url))


@pytest.mark.parametrize(
    "markup",
    [
        '<blockquote cite="javascript:alert(1)">Quoted.</blockquote>',
        '<p><q cite="data:text/html,x">Quoted.</q></p>',
        '<p><del cite="vbscript:msgbox(1)">Old.</del><ins cite=" JavaScript:x">New.</ins></p>',
        '<blockquote cite="&#x6a;avascript:x">Quoted.</blockquote>',
        '<p><img longdesc="javascript:x" src="a.png" alt="A"></p>',
        '<p><img longdesc="da&#10;ta:text/html,x" src="a.png" alt="A"></p>',
        '<p><a href=" data:text/html,x">Link</a></p>',
        '<p><a href="&#x20;data:text/html,x">Link</a></p>',
        '<p><a href="da&#10;ta:text/html,x">Link</a></p>',
        '<p><a href="java&#x09;script:alert(1)">Link</a></p>',
        '<p><a href="data:image/png;base64,AAAA">A raster image, but not in img src</a></p>',
        '<p><img src="data:image/svg+xml;base64,PHN2Zz4=" alt="B"></p>',
        '<p><img src=" data:image/svg+xml,&lt;svg/&gt;" alt="B"></p>',
        '<map name="m"><area href="data:text/html,x" alt="C"></map>',
        "Markdown: [link](<data:text/html,x>) and ![img](data:image/svg+xml;base64,PHN2Zz4=)",
    ],
    ids=[
        "blockquote-cite", "q-cite", "del-ins-cite", "cite-entity", "img-longdesc",
        "longdesc-newline-entity", "href-space", "href-entity-space", "href-newline-entity",
        "href-tab-entity", "href-raster-data", "img-svg-data", "img-space-svg-data", "area-href",
        "markdown",
    ],
)  # fmt: skip
def test_no_script_or_data_url_survives_sanitising(site: SiteMaker, markup: str) -> None:
    name = "x.md" if markup.startswith("Markdown") else "x.html"
    site.item(
        name, f"<p>Before.</p>\n{markup}\n<p>After.</p>", title="Payload", href="https://src.example/a/x"
    )
    feeds, _ = build(site)
    found = published_attributes(feeds)
    assert found, "no attributes seen: the check checks nothing"
    assert [f for f in found if dangerous(*f[1:])] == []


def test_safe_urls_in_every_url_attribute_stay_and_become_absolute(site: SiteMaker) -> None:
    body = (
        '<blockquote cite="/quotes/1">Q.</blockquote><p><q cite="https://ok.example/q">q</q>'
        '<img src="data:image/png;base64,AAAA" longdesc="desc.html" alt="A">'
        '<a href="mailto:ed@example.org">mail</a></p>'
    )
    site.item("x.html", body, title="Safe", href="https://src.example/a/x")
    feeds, _ = build(site)
    assert json.loads((feeds / "feed.json").read_bytes())["items"][0]["content_html"] == (
        '<blockquote cite="https://src.example/quotes/1">Q.</blockquote>'
        '<p><q cite="https://ok.example/q">q</q>'
        '<img src="data:image/png;base64,AAAA" longdesc="https://src.example/a/desc.html" alt="A">'
        '<a href="mailto:ed@example.org">mail</a></p>'
    )


def test_a_build_beside_other_threads_renders_in_its_own_process(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork copies only the forking thread, so a build in a threaded process (serve
    --watch) must not fork for rendering: a lock another thread held would stay locked."""
    import threading

    from bulletin import output

    pools: list[int] = []
    monkeypatch.setattr(output, "process_pool", lambda jobs: pools.append(jobs))
    monkeypatch.setenv("BULLETIN_JOBS", "2")
    for n in range(60):
        site.item(f"news/i{n:02d}.md", id=f"i{n}", categories=[f"Topic {n % 30}"])
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        _, written = build(site)
    finally:
        stop.set()
        other.join()
    assert pools == [] and len(written) > 64


def test_rfc822_dates_are_written_as_the_email_package_writes_them() -> None:
    """The feed list's date is made without loading the email package: the same text for
    any instant, in zones east and west, with odd historical offsets, and naive."""
    rng = random.Random(822)
    zones = [
        None,
        UTC,
        *(
            ZoneInfo(name)
            for name in ("Europe/Amsterdam", "America/St_Johns", "Asia/Kolkata", "Pacific/Chatham")
        ),
    ]
    for _ in range(3000):
        moment = datetime(1, 1, 2) + timedelta(
            seconds=rng.randrange(0, 315_000_000_000), microseconds=rng.randrange(10**6)
        )
        zone = rng.choice(zones)
        if zone is not None:
            moment = moment.replace(tzinfo=UTC).astimezone(zone)
        assert rfc822(moment) == format_datetime(moment), moment


def test_a_topic_page_entry_is_kept_only_for_the_pages_still_to_come(site: SiteMaker) -> None:
    """Each item's entry is rendered once for all its topics' pages, and dropped after the
    last of them: none is kept for an item with one topic, none is left at the end."""
    from bulletin.feeds import pages
    from bulletin.feeds.model import feeds_of

    for n in range(6):
        topics = ["Alpha", "Beta", "Gamma"][: 1 + n % 3]
        site.item(f"i{n}.md", title=f"Item {n}", categories=topics, date=f"2026-11-1{n}")
    built = read_site(site.config(), Report(), NOW)
    rendered: list[str] = []
    real = pages.page_entry

    def counting(config: object, item: object, names: object, template: object) -> object:
        rendered.append(item.title)  # type: ignore[attr-defined]
        return real(config, item, names, template)  # type: ignore[arg-type]

    pages.page_entry = counting  # type: ignore[assignment]
    try:
        known: dict[str, tuple[pages.PageEntry, int]] = {}
        sizes = []
        for feed in feeds_of(built)[1:]:
            items = built.by_topic[pages.topic_of(built, feed).key]
            html = pages.render_topic_page(built, feed, items, 1, 1, known).decode()
            assert all(item.title in html for item in items)
            sizes.append(len(known))
    finally:
        pages.page_entry = real  # type: ignore[assignment]
    assert sorted(rendered) == [f"Item {n}" for n in range(6)]  # once each
    assert sizes[-1] == 0  # nothing kept past its last page
    assert max(sizes) <= 4  # the two one-topic items were never kept
