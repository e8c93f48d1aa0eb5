"""Digests assembled from parts inlined once per send: the same as a full render."""

from __future__ import annotations

import email
import email.policy
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulletin.cli import main
from bulletin.digests.assemble import Copies, as_inlined
from bulletin.digests.editions import edition
from bulletin.digests.message import BUDGET, Personal
from bulletin.digests.personal import worst_case
from bulletin.digests.plan import plan_digest
from bulletin.digests.render import Rendered, render_plan
from bulletin.digests.windows import iso_week
from bulletin.report import Report
from bulletin.site.reader import read_site

from .conftest import Counter, SiteMaker

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
MAIL = {
    "from": "Health Weekly <digest@news.example.org>",
    "address": "100 Main Street, Springfield",
    "unsubscribe_url": "https://news.example.org/u?t={token}",
}
TOPICS = [f"Topic {name}" for name in "ABCDEFGHIJKL"] + ["R&D <labs>", "Ünïcode: Café", 'Q\'s "quoted"']
TITLES = [
    "Plain title",
    "Ampersands & <angle> brackets",
    "Quotes 'single' and \"double\"",
    "Non\u00a0breaking\u00a0spaces and emoji \U0001f600",
    "=?utf-8?b?SGk=?= looks encoded",
    "A very long headline " + "word " * 30,
    "Entities &amp; written out &lt;b&gt;",
]


def week_site(
    site: SiteMaker, items: int, seed: int, summary_words: int = 12, language: str = "en"
) -> SiteMaker:
    """A week of items over 15 topics (some with none: "Other"), hostile titles included."""
    site.write_config(timezone="UTC", language=language, digest={**MAIL, "section_items": 4})
    chooser = random.Random(seed)
    for n in range(items):
        topics = chooser.sample(TOPICS, chooser.choice([0, 1, 1, 2, 3]))
        site.item(
            f"i{n:03}.md",
            id=f"i{n:03}",
            title=f"{chooser.choice(TITLES)} {n}",
            date=f"2026-11-{16 + n % 7:02}T{n % 24:02}:00:00Z",
            categories=topics,
            description=" ".join(
                chooser.choice(["health", "care", "R&D", "<ok>", "data"]) for _ in range(summary_words)
            ),
            featuredImage={"href": f"img{n}.png", "alt": f"Alt {n}", "size": [400, 300]} if n % 3 else None,
        )
    return site


def copies_of(site: SiteMaker) -> tuple[Copies, object]:
    config = site.config()
    built = read_site(config, Report(), NOW)
    window = iso_week("2026-W47", config.timezone)
    chosen = edition(built, window, None, freeze=False)
    return Copies(config, built.topics, window, chosen, window.name), (config, built, window, chosen)


def random_sets(copies: Copies, count: int, seed: int) -> list[frozenset[str] | None]:
    slugs = sorted(copies.planner.by_slug)
    chooser = random.Random(seed)
    return [None] + [frozenset(chooser.sample(slugs, chooser.randint(1, 6))) for _ in range(count)]


PERSON = Personal(
    greeting_html="Hi Ann &amp; Bob,",
    greeting_text="Hi Ann & Bob,",
    unsubscribe_url="https://news.example.org/u?t=abc&x=1",
    list_unsubscribe="<https://news.example.org/u?t=abc&x=1>",
    one_click=True,
    message_id="<1@news.example.org>",
    date="Wed, 25 Nov 2026 12:00:00 +0000",
    to="ann@example.org",
)


def _parts(data: bytes) -> tuple[str, str, str]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return str(message["Subject"]), text, html


@pytest.mark.parametrize("language", ["en", "de"])  # de: the day headings come from CLDR
def test_assembled_copies_match_full_renders_on_random_sets(site: SiteMaker, language: str) -> None:
    copies, (config, built, window, chosen) = copies_of(week_site(site, 70, seed=1, language=language))  # type: ignore[misc]
    assert copies.parts is not None, copies.why_full
    worst = worst_case(config)
    compared = 0
    for slugs in random_sets(copies, 60, seed=2):
        plan = copies.planner.plan(slugs)
        only = sorted(slugs) if slugs is not None else None
        assert plan == plan_digest(config, built.topics, window, chosen.candidates, only, chosen.late)
        if plan.empty:
            continue
        assembled = copies.parts.rendered(plan)
        full = render_plan(config, built.topics, assembled.digest, window.name, assembled.cuts)
        # The same elements, text and inline styles: the same characters.
        assert (assembled.subject, assembled.html, assembled.text) == (full.subject, full.html, full.text)
        # The size the budget sees is the size of the largest copy, to the byte.
        assert assembled.size == len(assembled.template.render(worst))
        # As mail: the same decoded parts, the same headers but the MIME boundary.
        mine, theirs = assembled.template.render(PERSON), full.template.render(PERSON)
        assert _parts(mine) == _parts(theirs)
        assert _headers(mine) == _headers(theirs)
        compared += 1
    assert compared > 50


def _headers(data: bytes) -> list[tuple[str, str]]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    return [(name, value if name != "Content-Type" else "") for name, value in message.items()]


def test_the_plans_show_and_more_lines_and_other(site: SiteMaker) -> None:
    copies, _ = copies_of(week_site(site, 70, seed=3))
    assert copies.parts is not None
    everything = copies.rendered(None)
    assert everything is not None
    assert "== Other ==" in everything.text
    assert "And " in everything.text and " more in " in everything.text
    assert "R&amp;D &lt;labs&gt;" in everything.html and "R&D <labs>" in everything.text


def test_a_week_over_the_budget_is_cut_to_the_fewest_cuts_that_fit(site: SiteMaker) -> None:
    week_site(site, 160, seed=4, summary_words=60)
    site.write_config(digest={**MAIL, "section_items": 1000})
    copies, (config, built, window, _) = copies_of(site)  # type: ignore[misc]
    assert copies.parts is not None
    rendered = copies.rendered(None)
    assert rendered is not None and rendered.cuts > 0
    assert rendered.size <= BUDGET
    assert rendered.size == len(rendered.template.render(worst_case(config)))
    # one cut fewer would not fit
    uncut = copies.planner.plan(None)
    for _ in range(rendered.cuts - 1):
        following = uncut.cut_largest()
        assert following is not None
        uncut = following
    assert copies.parts._assemble(uncut, rendered.cuts - 1).size > BUDGET
    full = render_plan(config, built.topics, rendered.digest, window.name, rendered.cuts)
    assert (rendered.html, rendered.text) == (full.html, full.text)


@pytest.mark.parametrize(
    "text",
    ["a &amp; b", "&lt;x&gt; &#39;q&#39; &#34;d&#34;", "\u00a0é😀", "&amp;amp;", "tab\there", "bell\x07x"],
)
def test_a_text_line_reads_as_the_inlined_document_has_it(text: str) -> None:
    import lxml.html
    from lxml import etree

    element = lxml.html.fragment_fromstring(f"<p>{text}</p>")
    assert as_inlined(text) == etree.tostring(element, method="html", encoding="utf-8").decode()[3:-4]


def _dry_run(site: SiteMaker, sets: list[str]) -> Path:
    path = site.root / "subscribers.csv"
    rows = [f"s{n}@example.org,S{n},{topics}" for n, topics in enumerate(sets)]
    path.write_text("email,name,topics\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "send",
            "--dry-run",
            "--subscribers",
            str(path),
            "--site",
            str(site.root),
            "--now",
            "2026-11-25T12:00",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return site.root / ".bulletin" / "outbox" / "new"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", "test-secret-0123456789")


@pytest.mark.usefixtures("secret")
def test_premailer_runs_do_not_grow_with_the_topic_sets(site: SiteMaker, premailer_runs: Counter) -> None:
    week_site(site, 40, seed=5)
    slugs = sorted(copies_of(site)[0].planner.by_slug)
    chooser = random.Random(6)
    few = [";".join(chooser.sample(slugs, 2)) for _ in range(3)]
    many = [";".join(chooser.sample(slugs, chooser.randint(1, 6))) for _ in range(40)]
    _dry_run(site, few)  # writes the archive copy, which later runs find unchanged
    runs = []
    for sets in (few, many):
        before = premailer_runs.count
        outbox = _dry_run(site, sets)
        runs.append(premailer_runs.count - before)
        assert len(list(outbox.iterdir())) == len(sets)
    assert runs[0] == runs[1] == 3  # the parts, and two copies checked in full


@pytest.mark.usefixtures("secret")
def test_templates_that_parts_cannot_reproduce_are_rendered_in_full(site: SiteMaker) -> None:
    week_site(site, 30, seed=7)
    # The footer tells how many items a copy shows: the frame differs from set to set.
    (site.root / "templates").mkdir()
    shipped = Path(__file__).parent.parent / "src/bulletin/templates/digest.html.j2"
    frame = shipped.read_text(encoding="utf-8").replace(
        '<p class="address">', '<p class="shown">{{ digest.shown }} shown.</p>\n<p class="address">'
    )
    (site.root / "templates" / "digest.html.j2").write_text(frame, encoding="utf-8")
    copies, (config, built, window, _) = copies_of(site)  # type: ignore[misc]
    slugs = sorted(copies.planner.by_slug)
    results: list[Rendered] = []
    for topics in (None, frozenset(slugs[:2]), frozenset(slugs[2:5])):
        rendered = copies.rendered(topics)
        assert rendered is not None
        results.append(rendered)
    assert copies.parts is None and "HTML part" in copies.why_full
    for rendered in results:
        full = render_plan(config, built.topics, rendered.digest, window.name, rendered.cuts)
        assert rendered.html == full.html
        assert f"{rendered.digest.shown} shown." in rendered.html


def test_quoted_printable_lines_stay_within_76_characters_around_splices() -> None:
    """RFC 2045 caps an encoded line at 76 characters; a line before a splice point, and a
    spliced value's last line, each gained a soft break's '=' beyond it (77)."""
    import quopri

    from bulletin.digests.message import MANAGE, UNSUBSCRIBE, encode_parts, encode_value, fill

    rng = random.Random(2045)
    alphabet = "abcdefghij klmnopqrstuvwxyz=é€ABC.:/?&"
    for _ in range(300):
        pieces = []
        for _ in range(rng.randint(1, 4)):
            pieces.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))))
            pieces.append(rng.choice([UNSUBSCRIBE, MANAGE, "\n"]))
        text = "".join(pieces)
        url = "https://news.example.org/u/" + "".join(
            rng.choice("abcdef0123=&?") for _ in range(rng.randint(1, 150))
        )
        manage = "https://news.example.org/m/" + "x" * rng.randint(0, 120)
        values = {"unsubscribe": encode_value(url), "manage": encode_value(manage)}
        body = b"".join(
            part if isinstance(part, bytes) else values[part[0]] for part in encode_parts(text, False)
        )
        assert max(len(line) for line in body.split(b"\r\n")) <= 76, body
        decoded = quopri.decodestring(body).decode("utf-8").replace("\r\n", "\n")
        assert decoded == fill(text, "", url, manage)
