"""Which items a digest shows, in which section and order, and the caps."""

from __future__ import annotations

from datetime import UTC, datetime

from bulletin.digests.plan import day_label, plan_digest
from bulletin.digests.windows import iso_week
from bulletin.report import Report
from bulletin.site.reader import read_site

from .conftest import SiteMaker

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
W47 = iso_week("2026-W47", UTC)  # type: ignore[arg-type]


def plan(site: SiteMaker, only: list[str] | None = None):  # type: ignore[no-untyped-def]
    read = read_site(site.config(), Report(), NOW)
    return plan_digest(read.config, read.topics, W47, read.items, only)


def layout(digest) -> list[tuple[str, list[str], int]]:  # type: ignore[no-untyped-def]
    return [(s.name, [i.id for i in s.items[: s.shown]], s.more) for s in digest.sections]


def test_counts_decide_order_and_each_item_appears_once(site: SiteMaker) -> None:
    site.item("a.md", id="a", date="2026-11-16", categories=["Small", "Big"])
    site.item("b.md", id="b", date="2026-11-17", categories=["Big"])
    site.item("c.md", id="c", date="2026-11-18", categories=["Big", "Small"])
    site.item("d.md", id="d", date="2026-11-19", categories=["Small"])
    site.item("e.md", id="e", date="2026-11-20", categories=["Alone"])
    # Counts before placing: Big 3, Small 3 -> tie, by name; Alone 1.
    assert layout(plan(site)) == [
        ("Big", ["c", "b", "a"], 0),
        ("Small", ["d"], 0),
        ("Alone", ["e"], 0),
    ]


def test_configured_topics_come_first(site: SiteMaker) -> None:
    site.write_config(digest={"topics": ["alone"]})
    site.item("a.md", id="a", categories=["Big"])
    site.item("b.md", id="b", categories=["Big"])
    site.item("e.md", id="e", categories=["Alone", "Big"])
    assert [s.name for s in plan(site).sections] == ["Alone", "Big"]


def test_items_without_topics_go_to_other_last(site: SiteMaker) -> None:
    site.item("a.md", id="a", categories=["Topic"])
    site.item("n.md", id="n", date="2026-11-20")
    digest = plan(site)
    assert layout(digest) == [("Topic", ["a"], 0), ("Other", ["n"], 0)]
    assert digest.sections[-1].topic is None


def test_a_topic_subset_shows_only_its_topics_and_no_other(site: SiteMaker) -> None:
    site.item("a.md", id="a", categories=["Big", "Small"])
    site.item("b.md", id="b", categories=["Big"])
    site.item("n.md", id="n")
    digest = plan(site, only=["small"])
    assert layout(digest) == [("Small", ["a"], 0)]
    assert digest.topics == frozenset({"small"})


def test_window_edges_select_items(site: SiteMaker) -> None:
    site.item("before.md", id="before", date="2026-11-15T23:59:59Z", categories=["T"])
    site.item("first.md", id="first", date="2026-11-16T00:00:00Z", categories=["T"])
    site.item("last.md", id="last", date="2026-11-22T23:59:59Z", categories=["T"])
    site.item("after.md", id="after", date="2026-11-23T00:00:00Z", categories=["T"])
    assert layout(plan(site)) == [("T", ["last", "first"], 0)]


def test_days_newest_first_and_the_cap(site: SiteMaker) -> None:
    site.write_config(digest={"section_items": 3})
    for n in range(5):
        site.item(f"{n}.md", id=f"i{n}", date=f"2026-11-{16 + n}", categories=["T"])
    digest = plan(site)
    assert layout(digest) == [("T", ["i4", "i3", "i2"], 2)]
    assert digest.count == 5 and digest.shown == 3


def test_cutting_takes_from_the_largest_section(site: SiteMaker) -> None:
    for n in range(4):
        site.item(f"a{n}.md", id=f"a{n}", date=f"2026-11-{16 + n}", categories=["A"])
    for n in range(2):
        site.item(f"b{n}.md", id=f"b{n}", date=f"2026-11-{16 + n}", categories=["B"])
    digest = plan(site)
    once = digest.cut_largest()
    assert once is not None
    assert layout(once) == [("A", ["a3", "a2", "a1"], 1), ("B", ["b1", "b0"], 0)]
    thrice = once.cut_largest().cut_largest()  # type: ignore[union-attr]
    assert layout(thrice) == [("A", ["a3", "a2"], 2), ("B", ["b1"], 1)]


def test_day_labels_do_not_depend_on_the_locale() -> None:
    assert day_label(datetime(2026, 11, 20).date()) == "Friday 20 November 2026"
