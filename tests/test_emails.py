"""Digests written to emails/ — the message parsed back, the HTML, the budget."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from bulletin.cli import main
from bulletin.digests import render
from bulletin.digests.archive import write_digest
from bulletin.digests.message import BUDGET
from bulletin.digests.windows import iso_week
from bulletin.report import Report
from bulletin.site.reader import read_site

from .conftest import REPO, Counter, SiteMaker

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
MAIL = {
    "from": "Health Weekly <digest@news.example.org>",
    "reply_to": "editors@news.example.org",
    "address": "100 Main Street, Springfield",
    "unsubscribe_mailto": "unsubscribe@news.example.org",
    "unsubscribe_url": "https://news.example.org/u?t={token}",
}


@pytest.fixture
def mail_site(site: SiteMaker) -> SiteMaker:
    site.write_config(timezone="America/New_York", digest=dict(MAIL))
    return site


def week(site: SiteMaker, n: int = 6) -> None:
    for i in range(n):
        site.item(
            f"w{i}.md",
            id=f"w{i}",
            title=f"Story {i} & <friends>",
            date=f"2026-11-{16 + i}",
            categories=["Gartner: Healthcare"] if i % 2 else ["Medigy: Café Talks", "Gartner: Healthcare"],
            href=f"https://src.example/{i}?a=1&b=2",
            description=f"Summary {i}.",
            featuredImage={"href": f"img{i}.png", "alt": f"Alt {i}", "size": [400, 300]},
            basePath="/news/",
            slug=f"story-{i}",
        )


def write(site: SiteMaker, name: str = "2026-W47", report: Report | None = None):  # type: ignore[no-untyped-def]
    read = read_site(site.config(), Report(), NOW)
    return write_digest(read, iso_week(name, read.config.timezone), report or Report())


def parse(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def test_the_message_parses_back(mail_site: SiteMaker) -> None:
    week(mail_site)
    result = write(mail_site)
    folder = mail_site.root / "emails" / "2026-W47"
    assert result.written.changed == [
        f"emails/2026-W47/{n}" for n in ("digest.html", "digest.txt", "digest.eml", "digest.json")
    ]
    message = parse(folder / "digest.eml")
    assert message.defects == []
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in parts)
    assert message["Subject"] == "Test News: Story 5 & <friends>"  # the top headline
    assert message["From"] == "Health Weekly <digest@news.example.org>"
    assert message["Reply-To"] == "editors@news.example.org"
    assert message["List-Id"] == '"Test News" <test-news.news.example.org>'
    assert message["Date"] == "Mon, 23 Nov 2026 00:00:00 -0500"  # the window's end
    assert re.fullmatch(r"<digest-[0-9a-f]{32}@news\.example\.org>", message["Message-ID"])
    assert message["To"] is None
    assert message["List-Unsubscribe-Post"] is None  # only a personal copy can honour it
    raw = (folder / "digest.eml").read_bytes()
    header = re.search(rb"\r\nList-Unsubscribe: ([^\r\n]*)\r\n", raw)
    assert header is not None
    uris = re.findall(rb"<([^>]*)>", header.group(1))
    assert uris == [b"mailto:unsubscribe@news.example.org", b"https://news.example.org/emails/"]
    # both parts are the archive files, byte for byte apart from line endings
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert text == (folder / "digest.txt").read_text()
    assert html == (folder / "digest.html").read_text()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_both_parts_carry_every_item_and_the_more_links(mail_site: SiteMaker) -> None:
    mail_site.write_config(digest={**MAIL, "section_items": 2})
    week(mail_site)
    write(mail_site)
    folder = mail_site.root / "emails" / "2026-W47"
    text = (folder / "digest.txt").read_text()
    html = (folder / "digest.html").read_text()
    # Gartner: Healthcare has all 6 items (counts before placing), shows 2, cuts 4.
    for i in (5, 4):
        assert f"* Story {i} & <friends>\n" in text
        assert f"Story {i} &amp; &lt;friends&gt;" in html
        assert f"https://src.example/{i}?a=1&b=2" in text
        assert f'href="https://src.example/{i}?a=1&amp;b=2"' in html
    for i in (3, 2, 1, 0):
        assert f"Story {i} " not in text
    more = "https://news.example.org/feeds/topic/gartner-healthcare/index.html"
    assert f"And 4 more in Gartner: Healthcare: {more}\n" in text
    assert f'<a href="{more}" style="color:#0f766e">And 4 more in Gartner: Healthcare</a>' in html
    assert "== Medigy: Café Talks ==" not in text  # all of its items were placed in Gartner
    assert "6 items in 1 topic this week." in text


def test_the_html_is_for_mail_clients(mail_site: SiteMaker) -> None:
    week(mail_site)
    write(mail_site)
    html = (mail_site.root / "emails/2026-W47/digest.html").read_text()
    assert '<meta name="color-scheme" content="light dark">' in html
    assert 'class="preheader"' in html and "Story 5 &amp; &lt;friends&gt;" in html.split("</div>")[0]
    assert re.search(r'<table role="presentation" class="container" width="600"', html)
    for tag in re.findall(r"<img [^>]*>", html):
        assert re.search(r'alt="[^"]+"', tag), tag
    for url in re.findall(r'(?:href|src)="([^"]+)"', html):
        assert url.startswith(("https://", "mailto:")), url
    assert "100 Main Street, Springfield" in html
    assert 'href="https://news.example.org/emails/">Unsubscribe or manage your topics' in html.replace(
        'class="footer-link" ', ""
    ).replace(' style="color:#4b5563"', "")
    # premailer inlined the CSS, and the media queries stay in a <style> block, !important kept
    assert 'style="' in html
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(styles) == 1
    assert "@media only screen and (max-width: 620px)" in styles[0]
    assert re.search(r"\.container \{\s*width: 100% !important", styles[0])
    assert "!important" in styles[0]


def test_a_rebuild_renders_and_writes_nothing(mail_site: SiteMaker, premailer_runs: Counter) -> None:
    week(mail_site)
    write(mail_site)
    folder = mail_site.root / "emails" / "2026-W47"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    runs = premailer_runs.count
    result = write(mail_site)
    assert result.rendered is False and result.written.changed == []
    assert premailer_runs.count == runs
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before


def test_digests_are_byte_stable(mail_site: SiteMaker) -> None:
    week(mail_site)
    write(mail_site)
    folder = mail_site.root / "emails" / "2026-W47"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    shutil.rmtree(mail_site.root / ".bulletin")
    shutil.rmtree(mail_site.root / "emails")
    result = write(mail_site)
    assert result.rendered is True
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_an_edited_item_renders_again(mail_site: SiteMaker) -> None:
    week(mail_site)
    write(mail_site)
    mail_site.item("w0.md", id="w0", title="Edited", date="2026-11-16", categories=["Gartner: Healthcare"])
    result = write(mail_site)
    assert result.rendered is True
    assert "* Edited\n" in (mail_site.root / "emails/2026-W47/digest.txt").read_text()


def test_a_site_template_overrides_the_shipped_one(mail_site: SiteMaker) -> None:
    week(mail_site, 2)
    (mail_site.root / "templates").mkdir()
    (mail_site.root / "templates" / "_digest_item.html.j2").write_text(
        '<tr><td class="item"><b class="mine">{{ item.title }}</b></td></tr>\n'
    )
    write(mail_site)
    html = (mail_site.root / "emails/2026-W47/digest.html").read_text()
    assert '<b class="mine">Story 1 &amp; &lt;friends&gt;</b>' in html
    assert 'class="item-title"' not in html


def test_the_size_budget_cuts_the_largest_section(mail_site: SiteMaker) -> None:
    mail_site.write_config(digest={**MAIL, "section_items": 1000})
    long = "word " * 55 + "end."
    for i in range(300):
        mail_site.item(
            f"big/{i}.md", id=f"b{i}", title=f"A long headline number {i} " + "x" * 80,
            date=f"2026-11-{16 + i % 7}T{6 + i % 17:02d}:00:00Z", categories=[f"Topic {i % 3}"],
            href=f"https://src.example/articles/{i}/" + "p" * 60, description=long,
        )  # fmt: skip
    report = Report()
    result = write(mail_site, report=report)
    folder = mail_site.root / "emails" / "2026-W47"
    assert len((folder / "digest.eml").read_bytes()) <= BUDGET
    digest = result.digest
    read = read_site(mail_site.config(), Report(), NOW)
    rendered = render.render_digest(read.config, read.topics, digest, "2026-W47")
    # the fewest cuts that fit: one item more would not (an item is under 5,000 bytes)
    assert BUDGET - 5000 < rendered.size <= BUDGET
    assert digest.count == 300
    cut = sum(s.more for s in digest.sections)
    assert cut > 0
    text = (folder / "digest.txt").read_text()
    for section in digest.sections:
        if section.more:
            assert f"And {section.more} more in {section.name}: " in text
        assert text.count("\n* ") == digest.shown
    # the largest section lost first: shown counts differ by at most one
    shown = [s.shown for s in digest.sections]
    assert max(shown) - min(shown) <= 1
    assert [str(p) for p in report.problems] == [
        f"emails/2026-W47: warning: {cut} item(s) moved behind 'and N more' to keep the message "
        "under 90,000 bytes (Gmail clips longer mail); lower digest.section_items to show fewer"
    ]
    # and re-rendering the final plan needs no further cut
    assert rendered.cuts == 0


def test_an_empty_week_writes_nothing_and_says_so(mail_site: SiteMaker) -> None:
    week(mail_site)
    result = CliRunner().invoke(
        main, ["digest", "--week", "2026-W40", "--site", str(mail_site.root), "--now", "2026-11-25"]
    )
    assert (result.exit_code, result.stdout) == (
        0,
        "digest 2026-W40: no items in this window; nothing written\n",
    )
    assert not (mail_site.root / "emails").exists()


def test_digest_command_and_archive_index(mail_site: SiteMaker) -> None:
    week(mail_site)
    mail_site.item("old.md", id="old", date="2026-11-03", categories=["Gartner: Healthcare"])
    run = CliRunner().invoke(main, ["digest", "--site", str(mail_site.root), "--now", "2026-11-25T12:00"])
    assert run.exit_code == 0, run.output
    assert run.stdout == "digest 2026-W47: 6 items in 1 section; emails/2026-W47: 5 written, 0 unchanged\n"
    run = CliRunner().invoke(main, ["digest", "--week", "2026-W45", "--site", str(mail_site.root)])
    assert run.exit_code == 0, run.output
    index = (mail_site.root / "emails/index.html").read_text()
    assert index.index("2026-W47") < index.index("2026-W45")
    assert 'href="https://news.example.org/emails/2026-W45/digest.html"' in index
    # custom windows and topic subsets live under emails/custom/ and stay out of the index
    run = CliRunner().invoke(
        main, ["digest", "--since", "2026-11-16", "--until", "2026-11-19", "--topics", "medigy-cafe-talks",
               "--site", str(mail_site.root)],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    custom = mail_site.root / "emails/custom/2026-11-16_2026-11-19_medigy-cafe-talks"
    assert sorted(p.name for p in custom.iterdir()) == [
        "digest.eml",
        "digest.html",
        "digest.json",
        "digest.txt",
    ]
    assert "custom" not in (mail_site.root / "emails/index.html").read_text()
    both = [
        "--topics",
        "gartner-healthcare;medigy-cafe-talks",
        "--since",
        "2026-11-16",
        "--until",
        "2026-11-19",
    ]
    run = CliRunner().invoke(main, ["digest", *both, "--site", str(mail_site.root)])
    assert run.exit_code == 0 and "_gartner-healthcare+medigy-cafe-talks:" in run.stdout  # ";" as in a CSV
    bad = CliRunner().invoke(main, ["digest", "--topics", "nope", "--site", str(mail_site.root)])
    assert bad.exit_code == 2
    assert bad.stderr == (
        "bulletin: --topics: unknown topic slug nope; known: gartner-healthcare, medigy-cafe-talks "
        "(see bulletin topics)\n"
    )


def test_build_writes_recent_weeks_and_keeps_older_digests(mail_site: SiteMaker) -> None:
    mail_site.write_config(digest={**MAIL, "archive_weeks": 1})
    week(mail_site)
    mail_site.item("old.md", id="old", date="2026-11-03", categories=["Gartner: Healthcare"])
    old = mail_site.root / "emails/2026-W45"
    old.mkdir(parents=True)
    (old / "digest.html").write_text("kept")
    run = CliRunner().invoke(main, ["build", "--site", str(mail_site.root), "--now", "2026-11-25T12:00"])
    assert run.exit_code == 0, run.output
    assert "digests: 5 written, 0 unchanged (weeks: 2026-W47)" in run.stdout
    index = (mail_site.root / "emails/index.html").read_text()
    assert "2026-W47" in index and "2026-W45" in index
    assert (old / "digest.html").read_text() == "kept"


def test_a_recent_week_whose_items_are_all_gone_loses_its_digest(mail_site: SiteMaker) -> None:
    """A story taken down (its file deleted) must leave the archive: it stayed there, in a
    week's digest, when it was the week's only item, though it went when others remained."""
    week(mail_site)  # 2026-W47
    mail_site.item("w46.md", id="w46", title="Story to take down", date="2026-11-11")
    argv = ["build", "--site", str(mail_site.root), "--now", "2026-11-25T12:00"]
    assert CliRunner().invoke(main, argv).exit_code == 0
    emails = mail_site.root / "emails"
    assert (emails / "2026-W46/digest.html").is_file()
    (mail_site.root / "content/w46.md").unlink()
    mine = emails / "2026-W45"  # a folder someone else keeps there stays
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (emails / "2026-W60").mkdir()  # named like a week there is not: neither read nor removed
    (emails / "2026-W60/digest.html").write_text("odd")
    run = CliRunner().invoke(main, argv)
    assert run.exit_code == 0, run.output
    assert "digests: 1 written, 4 unchanged, 4 removed (weeks: 2026-W47)" in run.stdout
    assert not (emails / "2026-W46").exists() and (mine / "notes.txt").read_text() == "mine"
    assert (emails / "2026-W60/digest.html").read_text() == "odd"
    assert "2026-W46" not in (emails / "index.html").read_text()
    assert not any("Story to take down" in path.read_text() for path in emails.rglob("*.*"))
    again = CliRunner().invoke(main, argv)  # and the next run has nothing to do
    assert "digests: 0 written, 5 unchanged (weeks: 2026-W47)" in again.stdout


def test_mail_keys_are_required_by_digest(site: SiteMaker) -> None:
    week(site)
    run = CliRunner().invoke(main, ["digest", "--site", str(site.root)])
    assert run.exit_code == 2
    assert run.stderr == (
        'bulletin.toml: error: digest.from: required for all mail; write from = "Name <news@example.org>" under [digest]\n'
        'bulletin.toml: error: digest.address: required for all mail; write the sender\'s postal address as address = "…" under [digest]\n'
    )


def _vnu() -> list[str] | None:
    jar = os.environ.get("VNU_JAR") or str(REPO / ".cache/vnu/node_modules/vnu-jar/build/dist/vnu.jar")
    if not shutil.which("java") or not Path(jar).is_file():
        return None
    return ["java", "-jar", jar]


# What the deliberate mail-client hacks cause; anything else is a failure.
ALLOWED = (
    "Attribute “xmlns:v” not allowed here.",
    "Attribute “xmlns:o” not allowed here.",
    "CSS: “mso-hide”: Property “mso-hide” doesn't exist.",
    "Element “meta” is missing one or more of the following attributes: “content”, “property”.",
)


@pytest.mark.skipif(_vnu() is None, reason="the Nu HTML Checker needs Java and vnu.jar "
                    "(npm install --prefix .cache/vnu vnu-jar@26, or set VNU_JAR)")  # fmt: skip
def test_the_nu_html_checker_finds_no_error(mail_site: SiteMaker) -> None:
    week(mail_site)
    write(mail_site)
    command = _vnu()
    assert command is not None
    page = mail_site.root / "emails/2026-W47/digest.html"
    checked = subprocess.run([*command, "--format", "text", "--errors-only", str(page)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    errors = [
        line.removeprefix("Error: ") for line in checked.stderr.splitlines() if line.startswith("Error: ")
    ]
    assert errors, "vnu reported nothing: the allowed hacks should show"
    assert [e for e in errors if e not in ALLOWED] == []


@pytest.mark.parametrize(
    ("language", "subject", "expected"),
    [
        (
            "en",
            "{title}, {start} to {end}: {count} items",
            "Test News, November 16, 2026 to November 22, 2026: 6 items",
        ),
        ("de", "{title} vom {start}", "Test News vom 16. November 2026"),
        ("en-GB", "{end} · {headline}", "22 November 2026 · Story 5 & <friends>"),
        ("en", "{title} — {week}", "Test News — 2026-W47"),
    ],
)
def test_subjects_people_read(mail_site: SiteMaker, language: str, subject: str, expected: str) -> None:
    mail_site.write_config(language=language, digest={**MAIL, "subject": subject})
    week(mail_site)
    write(mail_site)
    assert parse(mail_site.root / "emails" / "2026-W47" / "digest.eml")["Subject"] == expected


def test_the_dates_in_a_digest_are_in_the_sites_language(mail_site: SiteMaker) -> None:
    """With language = "de" the subject's dates were German, and the week's dates and the
    day headings in the body English: every date a digest writes is now in one language."""
    mail_site.write_config(language="de", digest={**MAIL, "section_items": 2})
    week(mail_site)
    write(mail_site)
    text = (mail_site.root / "emails/2026-W47/digest.txt").read_text()
    page = (mail_site.root / "emails/2026-W47/digest.html").read_text()
    for body in (text, page):
        assert "16.–22. Nov. 2026" in body and "Samstag, 21. November 2026" in body
        assert "16 – 22 November 2026" not in body
        assert not re.search(r"(Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day", body)
    english = mail_site.root / "en"
    shutil.copytree(mail_site.root, english)
    in_english = SiteMaker(english)
    in_english.write_config(
        language="en-GB", timezone="America/New_York", digest={**MAIL, "section_items": 2}
    )
    write(in_english)  # English stays bulletin's own wording, without CLDR's comma
    assert "Saturday 21 November 2026" in (english / "emails/2026-W47/digest.txt").read_text()


def test_a_week_that_has_not_ended_needs_partial_and_stays_out_of_the_archive(mail_site: SiteMaker) -> None:
    week(mail_site)
    args = ["digest", "--week", "2026-W47", "--site", str(mail_site.root), "--now", "2026-11-20T12:00"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 3
    assert (
        "2026-W47 has not ended yet (its last day is 2026-11-22); its digest would miss the rest of the week: "
        "pass --partial" in refused.stderr
    )
    assert not (mail_site.root / "emails").exists()
    partial = CliRunner().invoke(main, [*args, "--partial"])
    assert partial.exit_code == 0, partial.output
    assert (mail_site.root / "emails" / "custom" / "2026-11-16_2026-11-23" / "digest.html").is_file()
    assert (
        not (mail_site.root / "emails" / "2026-W47").exists()
        and not (mail_site.root / "emails" / "index.html").exists()
    )


def test_many_long_topic_slugs_still_make_a_folder_name() -> None:
    from bulletin.digests.render import window_folder

    slugs = [f"topic-{n}-" + "x" * 72 for n in range(6)]
    folder = window_folder(iso_week("2026-W47", ZoneInfo("UTC")), slugs)
    name = folder.removeprefix("custom/")
    assert len(name.encode()) < 255 and name.startswith("2026-11-16_2026-11-23_topic-0-")
    assert folder != window_folder(iso_week("2026-W47", ZoneInfo("UTC")), slugs[:5])
