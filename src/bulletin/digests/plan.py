"""Plan a digest: which items of a window it shows, in which section, in which order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..config import CONFIG_NAME, Config
from ..report import Report
from ..site.items import Item
from ..site.topics import Topic, Topics
from ..slugs import did_you_mean
from .windows import Window

if TYPE_CHECKING:
    from ..site.reader import Site

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


def day_label(day: date, language: str = "en") -> str:
    """'Friday 20 November 2026' in English, whatever the machine's locale; in the site's
    `language`, as CLDR writes a full date ('Freitag, 20. November 2026')."""
    locale = cldr_locale(language)
    if locale is None:
        return f"{_WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"
    from babel.dates import format_date

    return format_date(day, "full", locale=locale)


@lru_cache(maxsize=8)
def cldr_locale(language: str) -> Any:
    """Babel's locale for a language tag; None for English (bulletin's own wording) and for a
    language CLDR does not know, which get English dates."""
    if language.split("-")[0].lower() == "en":
        return None
    from babel import Locale, UnknownLocaleError  # loaded only for a site in another language

    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Section:
    """One topic's part of a digest (or "Other"), its items newest first."""

    name: str
    topic: Topic | None  # None for "Other"
    items: tuple[Item, ...]  # every item placed here, newest first
    shown: int  # how many of them the digest shows; the rest are "and N more"

    @property
    def more(self) -> int:
        return len(self.items) - self.shown


@dataclass(frozen=True, slots=True)
class Digest:
    """What one digest shows: a window, a topic subset, its sections."""

    window: Window
    topics: frozenset[str] | None  # slugs; None for every topic
    sections: tuple[Section, ...]
    late: frozenset[str] = field(default_factory=frozenset)  # ids of late items

    @property
    def count(self) -> int:
        """Items the digest covers, including those behind "and N more"."""
        return sum(len(section.items) for section in self.sections)

    @property
    def shown(self) -> int:
        return sum(section.shown for section in self.sections)

    @property
    def empty(self) -> bool:
        return not self.sections

    def items(self) -> list[Item]:
        """Every item the digest covers, in the order it shows them."""
        return [item for section in self.sections for item in section.items]

    def cut_largest(self) -> Digest | None:
        """The digest with the largest section's last shown item moved behind "and N more";
        None when nothing is left to cut. Ties: the section shown last loses first."""
        candidates = [(s.shown, n) for n, s in enumerate(self.sections) if s.shown > 0]
        if not candidates or sum(s.shown for s in self.sections) <= 1:
            return None
        _, number = max(candidates)
        sections = list(self.sections)
        sections[number] = replace(sections[number], shown=sections[number].shown - 1)
        return replace(self, sections=tuple(sections))


def _newest_first(item: Item) -> tuple[object, ...]:
    return (item.published, item.updated, item.id)


def plan_digest(
    config: Config,
    topics: Topics,
    window: Window,
    items: Iterable[Item],
    only: Sequence[str] | None = None,
    late: Iterable[str] = (),
) -> Digest:
    """Place the window's items in sections (README, "Digests"), capped at digest.section_items each.

    `items` are the candidates (normally every published item; the ledger adds late ones,
    named in `late`); `only` restricts the digest to those topic slugs.
    """
    late_ids = frozenset(late)
    chosen = [item for item in items if item.published in window or item.id in late_ids]
    shown_slugs = frozenset(only) if only is not None else None

    def shows(topic: Topic) -> bool:
        return shown_slugs is None or topic.slug in shown_slugs

    order = topic_order(config, topics, chosen, shows)
    rank = {topic.key: n for n, topic in enumerate(order)}

    placed: dict[str, list[Item]] = {topic.key: [] for topic in order}
    other: list[Item] = []
    for item in chosen:
        mine = [topic for topic in topics.of(item) if topic.key in rank]
        if mine:
            placed[min(mine, key=lambda t: rank[t.key]).key].append(item)
        elif shown_slugs is None and not topics.of(item):
            other.append(item)

    cap = config.digest.section_items
    sections = []
    for topic in order:
        members = tuple(sorted(placed[topic.key], key=_newest_first, reverse=True))
        if members:
            sections.append(Section(topic.name, topic, members, min(cap, len(members))))
    if other:
        members = tuple(sorted(other, key=_newest_first, reverse=True))
        sections.append(Section("Other", None, members, min(cap, len(members))))
    return Digest(window, shown_slugs, tuple(sections), late_ids)


def warn_unknown_topics(site: Site, report: Report) -> None:
    """digest.topics names slugs whose sections come first; one that is no topic's slug (a
    typo, a topic renamed) would be ignored without a word."""
    slugs = site.topics.names()
    for slug in site.config.digest.topics:
        if slug not in slugs:
            meant = did_you_mean([slug], slugs)
            report.warning(
                CONFIG_NAME,
                site.config.lines.get("digest.topics"),
                f"digest.topics names '{slug}', which is no topic's slug; it is ignored"
                f"{f' ({meant})' if meant else ''}: write the slugs as 'bulletin topics' lists them",
            )


def topic_order(
    config: Config, topics: Topics, chosen: Sequence[Item], shows: Callable[[Topic], bool] = lambda _: True
) -> list[Topic]:
    """The shown topics of `chosen` in section order: digest.topics first, then by how many
    items each has (an item counts once for each topic it has), then by name. A topic's
    count does not depend on which other topics are shown."""
    counts: Counter[str] = Counter()
    for item in chosen:
        for topic in topics.of(item):
            if shows(topic):
                counts[topic.key] += 1
    preferred = {slug: n for n, slug in enumerate(config.digest.topics)}
    return sorted(
        (topics.by_key[key] for key in counts),
        key=lambda t: (
            preferred.get(t.slug, len(preferred)),
            -counts[t.key],
            t.name.casefold(),
            t.name,
        ),
    )
