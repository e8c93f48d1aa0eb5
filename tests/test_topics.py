"""Topic identity, display names and slugs."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from bulletin.report import Report
from bulletin.site.items import Item
from bulletin.site.topics import assign_topics, topic_key
from bulletin.slugs import slugify as transliterate


def make(item_id: str, topics: list[str], urls: list[str | None] | None = None, day: int = 1) -> Item:
    when = datetime(2026, 11, day, tzinfo=UTC)
    return Item(
        id=item_id, path=f"content/{item_id}.md", title=item_id, published=when, updated=when,
        link=None, source_name=None, summary="", authors=(), topics=tuple(topics),
        topic_urls=tuple(urls) if urls is not None else (None,) * len(topics), image=None,
        page=None, draft=False, body_offset=0, fingerprint=item_id,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Gartner: Healthcare", "gartner-healthcare"),
        ("Medigy: Café Talks", "medigy-cafe-talks"),
        ("Medigy: Über-Care Models", "medigy-uber-care-models"),
        ("Straße & Œuvre", "strasse-oeuvre"),
        ("Łódź Ærø Đakovo Þing", "lodz-aero-dakovo-thing"),
        ("Interoperability / FHIR", "interoperability-fhir"),
        ("../../etc/passwd", "etc-passwd"),
        ("  --Trim--  ", "trim"),
    ],
)
def test_transliterated_slugs(name: str, slug: str) -> None:
    assert transliterate(name) == slug


def test_names_equal_after_nfkc_casefold_and_whitespace_are_one_topic() -> None:
    assert (
        topic_key("Gartner: Healthcare")
        == topic_key("GARTNER:\u00a0 health care")
        == topic_key("ｇａｒｔｎｅｒ:healthcare")
    )


def test_most_common_spelling_wins_ties_by_smaller() -> None:
    items = [make("a", ["Gartner: healthcare"]), make("b", ["Gartner: Healthcare"]),
             make("c", ["Gartner: Healthcare"]), make("d", ["Other"]), make("e", ["other"])]  # fmt: skip
    topics = assign_topics(items, Report())
    assert sorted(t.name for t in topics.by_key.values()) == ["Gartner: Healthcare", "Other"]
    assert {t.name: t.count for t in topics.by_key.values()} == {
        "Gartner: Healthcare": 3,
        "Other": 2,
    }


def test_slug_from_the_most_common_valid_category_url() -> None:
    items = [
        # Items hold the last segment of categoryUrl (see test_reader).
        make("a", ["Health"], ["health-it"]),
        make("b", ["Health"], ["health-it"]),
        make("c", ["Health"], ["Health_IT"]),  # not a valid slug, ignored
        make("d", ["Health"], ["Health_IT"]),
        make("e", ["Health"], ["health"]),
    ]
    topics = assign_topics(items, Report())
    assert [t.slug for t in topics.by_key.values()] == ["health-it"]


def test_slug_falls_back_to_transliteration_and_then_a_hash() -> None:
    items = [make("a", ["Café"], [None]), make("b", ["日本"])]
    topics = assign_topics(items, Report())
    assert sorted(t.slug for t in topics.by_key.values()) == ["cafe", "topic-44da6bbc"]


def test_colliding_slugs_are_kept_apart_and_reported() -> None:
    items = [
        make("new", ["A+B"], day=5),
        make("old", ["A B"], day=1),  # earliest item: keeps the plain slug
        make("third", ["a-b"], day=3),
    ]
    report = Report()
    topics = assign_topics(items, report)
    assert {t.name: t.slug for t in topics.by_key.values()} == {
        "A B": "a-b",
        "a-b": "a-b-2",
        "A+B": "a-b-3",
    }
    assert [str(p) for p in report.problems] == [
        "content: warning: topics 'A B' and 'a-b' share the slug 'a-b'; 'a-b' uses 'a-b-2': rename one of them or fix its categoryUrl",
        "content: warning: topics 'A B' and 'A+B' share the slug 'a-b'; 'A+B' uses 'a-b-3': rename one of them or fix its categoryUrl",
    ]


def test_a_new_topic_a_letter_away_from_another_is_reported_as_a_likely_typo() -> None:
    items = [
        make("a", ["Environment"], day=1),
        make("b", ["Enviroment"], day=2),  # the typo
        make("c", ["Gartner: Health Analytics"], day=3),  # new, and unlike the others
        make("d", ["Python 3.12"], day=4),  # only its number differs from a published one
        make("e", ["AR"], day=5),  # a letter from 'AI', but two letters are too few to tell
        make("f", ["Hepatitis C"], day=6),  # the letter is a word of its own: meant
        make("g", ["Cerner"], day=7),  # two letters from 'Center', which is no typo of it
    ]
    published = {"environment": "environment", "gartner:healthcare": "gartner-healthcare",
                 "python3.11": "python-3-11", "ai": "ai", "hepatitisb": "hepatitis-b",
                 "center": "center"}  # fmt: skip
    report = Report()
    topics = assign_topics(items, report, published)
    assert topics.by_key["enviroment"].slug == "enviroment"
    assert [str(p) for p in report.problems] == [
        "content/b.md: warning: topic 'Enviroment' is new, and a letter away from 'Environment'; "
        "if it is a typo, correct the category, then delete 'enviroment' from .bulletin/slugs.json, "
        "which keeps a published topic's slug for good"
    ]
    gone = Report()  # the published topic has no items left: the typo is still caught
    assign_topics(items[1:], gone, published)
    assert [p.message.split(";")[0] for p in gone.problems] == [
        "topic 'Enviroment' is new, and a letter away from the topic published as 'environment'"
    ]
    first_build = Report()  # nothing published yet: every topic is new, none is a typo of another
    assign_topics(items, first_build, {})
    assert first_build.problems == []


def test_looking_for_typos_among_many_topics_takes_little_time() -> None:
    """Each new topic is looked up in an index of halves, not compared with every topic
    (100 new among 5,000 used to take 8 s); over 1,000 topics the check is left out."""
    published = {
        f"clinicalinformaticstopic{n:04d}": f"clinical-informatics-topic-{n:04d}" for n in range(800)
    }
    items = [make(f"i{n}", [f"Clinical informatics topix {n:04d}"], day=1 + n % 28) for n in range(100)]
    items += [make(f"k{n}", [f"Clinical informatics topic {n:04d}"]) for n in range(100, 800)]
    report = Report()
    started = time.perf_counter()
    assign_topics(items, report, published)
    assert time.perf_counter() - started < 2.0
    assert len(report.problems) == 100
    assert all("is new, and a letter away from the topic published as" in p.message for p in report.problems)
    many = {f"clinicalinformaticstopic{n:04d}": f"clinical-informatics-topic-{n:04d}" for n in range(5000)}
    more = Report()
    started = time.perf_counter()
    assign_topics(items, more, many)
    assert time.perf_counter() - started < 2.0 and more.problems == []


def test_an_item_lists_each_topic_once_in_its_order() -> None:
    item = make("a", ["Beta", "alpha", "BETA"])
    topics = assign_topics([item], Report())
    # "BETA" and "Beta" are used once each: the lexicographically smaller one shows.
    assert [t.name for t in topics.of(item)] == ["BETA", "alpha"]
    assert [t.count for t in topics.of(item)] == [1, 1]


def test_long_slugs_are_cut_to_80_characters_at_a_hyphen_and_stay_apart() -> None:
    words = " ".join(f"word{n}" for n in range(60))  # word0-word1-…: 400 characters
    items = [
        make("a", [words], day=1),
        make("b", [words + " but another ending"], day=2),
        make("c", ["x" * 300], day=3),  # one word: cut where it must be
    ]
    report = Report()
    topics = assign_topics(items, report)
    plain = "word0-word1-word2-word3-word4-word5-word6-word7-word8-word9-word10-word11-word12"
    assert len(plain) == 80
    assert sorted(t.slug for t in topics.by_key.values()) == sorted(
        [plain, "word0-word1-word2-word3-word4-word5-word6-word7-word8-word9-word10-word11-2", "x" * 80]
    )
    assert all(len(t.slug) <= 80 for t in topics.by_key.values())
    assert [str(p) for p in report.problems] == [
        f"content/a.md: warning: topic '{words[:40]}…' would have a slug of "
        f"{len(words)} characters; it is cut to '{plain}' (at most 80): shorten the category name",
        f"content/b.md: warning: topic '{words[:40]}…' would have a slug of "
        f"{len(words) + 19} characters; it is cut to '{plain}' (at most 80): shorten the category name",
        "content/c.md: warning: topic 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' would have a slug of "
        "300 characters; it is cut to '" + "x" * 80 + "' (at most 80): shorten the category name",
        f"content: warning: topics '{words}' and '{words} but another ending' share the slug '{plain}'; "
        f"'{words} but another ending' uses 'word0-word1-word2-word3-word4-word5-word6-word7-word8-word9-word10-word11-2': "
        "rename one of them or fix its categoryUrl",
    ]


def test_a_published_slug_stays_when_the_name_would_give_another() -> None:
    items = [make(f"h{n}", ["Health"]) for n in range(3)] + [make(f"s{n}", ["Heal th"]) for n in range(4)]
    report = Report()
    topics = assign_topics(items, report, published={"health": "health"})
    assert [(t.name, t.slug) for t in topics.by_key.values()] == [("Heal th", "health")]
    assert [str(p) for p in report.problems] == [
        "content: warning: topic 'Heal th' keeps its published slug 'health' (its name now gives "
        "'heal-th'); to change it on purpose, delete its entry from .bulletin/slugs.json"
    ]


def test_a_published_slug_beats_a_new_topic_that_wants_it() -> None:
    items = [make("new", ["A+B"], day=1), make("old", ["A B"], day=5)]  # the new topic is earlier
    report = Report()
    topics = assign_topics(items, report, published={"ab": "a-b"})
    assert {t.name: t.slug for t in topics.by_key.values()} == {"A B": "a-b", "A+B": "a-b-2"}
    assert [str(p) for p in report.problems] == [
        "content: warning: topics 'A B' and 'A+B' share the slug 'a-b'; 'A+B' uses 'a-b-2': "
        "rename one of them or fix its categoryUrl"
    ]


def test_the_slug_of_a_topic_gone_for_now_is_not_given_away() -> None:
    report = Report()
    topics = assign_topics([make("a", ["News"])], report, published={"oldnews": "news"})
    assert [t.slug for t in topics.by_key.values()] == ["news-2"]
    assert [str(p) for p in report.problems] == [
        "content: warning: the slug 'news' was published for the topic 'oldnews' (see "
        ".bulletin/slugs.json); 'News' uses 'news-2': rename it, or delete that entry to give "
        "'news' to it"
    ]


def test_published_numbered_slugs_are_not_reported_again() -> None:
    items = [make("a", ["A B"], day=1), make("b", ["A+B"], day=2)]
    report = Report()
    topics = assign_topics(items, report, published={"ab": "a-b", "a+b": "a-b-2"})
    assert {t.name: t.slug for t in topics.by_key.values()} == {"A B": "a-b", "A+B": "a-b-2"}
    assert report.problems == []
