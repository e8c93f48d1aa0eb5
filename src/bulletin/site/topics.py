"""Topics: which category names are one topic, its display name and its slug."""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from ..report import Report
from ..slugs import MAX_SLUG, SLUG, shorten, slugify
from .items import Item


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic: every spelling of one category name, shown by its most common spelling."""

    key: str
    name: str
    slug: str
    count: int


@lru_cache(maxsize=4096)
def topic_key(name: str) -> str:
    """Names equal after NFKC, case-folding and removing all whitespace are one topic."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of a build, and which topics each item belongs to."""

    by_key: dict[str, Topic]
    _of: dict[tuple[str, ...], tuple[Topic, ...]] = field(default_factory=dict, compare=False, repr=False)
    _slugs: dict[str, Topic] = field(default_factory=dict, compare=False, repr=False)

    def of(self, item: Item) -> tuple[Topic, ...]:
        """The item's topics in the order it lists them, each once."""
        known = self._of.get(item.topics)
        if known is not None:
            return known
        seen: dict[str, Topic] = {}
        for name in item.topics:
            key = topic_key(name)
            if key and key not in seen:
                seen[key] = self.by_key[key]
        self._of[item.topics] = result = tuple(seen.values())
        return result

    def by_slug(self) -> dict[str, Topic]:
        if len(self._slugs) != len(self.by_key):  # built once, on first use
            self._slugs.update((topic.slug, topic) for topic in self.by_key.values())
        return self._slugs

    def sorted(self) -> list[Topic]:
        """By name, case-insensitively; ties by slug."""
        return sorted(self.by_key.values(), key=lambda t: (t.name.casefold(), t.slug))


def assign_topics(items: Iterable[Item], report: Report) -> Topics:
    """Decide each topic's name and slug once for this build; report slug collisions."""
    seen = _gather(items)
    chosen: dict[str, tuple[str, str]] = {}
    for key, names in seen.spellings.items():
        name = min(names, key=lambda n: (-names[n], n))
        urls = seen.url_slugs.get(key)
        if urls:
            slug = min(urls, key=lambda s: (-urls[s], s))
        else:
            slug = slugify(name) or "topic-" + hashlib.sha1(name.encode()).hexdigest()[:8]
        if len(slug) > MAX_SLUG:
            shown = name if len(name) <= 40 else name[:40] + "…"
            report.warning(
                seen.earliest[key][2],
                None,
                f"topic '{shown}' would have a slug of {len(slug)} characters; it is cut to "
                f"'{shorten(slug)}' (at most {MAX_SLUG}): shorten the category name",
            )
        chosen[key] = (name, shorten(slug))
    return Topics(dict(sorted(_kept_apart(chosen, seen, report).items())))


@dataclass
class _Seen:
    """What the items say about each topic key: spellings, categoryUrl slugs, item counts."""

    spellings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    url_slugs: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    counts: Counter[str] = field(default_factory=Counter)
    earliest: dict[str, tuple[datetime, str, str]] = field(default_factory=dict)  # published, id, path


def _gather(items: Iterable[Item]) -> _Seen:
    seen = _Seen()
    for item in items:
        keys_seen: set[str] = set()
        for name, url in zip(item.topics, item.topic_urls or (None,) * len(item.topics), strict=False):
            key = topic_key(name)
            if not key:
                continue
            seen.spellings[key][name] += 1
            if url and SLUG.match(url):
                seen.url_slugs[key][url] += 1
            if key not in keys_seen:
                seen.counts[key] += 1
                keys_seen.add(key)
                first = (item.published, item.id, item.path)
                if key not in seen.earliest or first[:2] < seen.earliest[key][:2]:
                    seen.earliest[key] = first
    return seen


def _numbered(slug: str, number: int) -> str:
    """slug-2, slug-3…, never longer than MAX_SLUG."""
    suffix = f"-{number}"
    return shorten(slug, MAX_SLUG - len(suffix)) + suffix


def _kept_apart(chosen: dict[str, tuple[str, str]], seen: _Seen, report: Report) -> dict[str, Topic]:
    """Same slug for different topics: the earliest keeps it, the others get -2, -3..."""
    by_slug: dict[str, list[str]] = defaultdict(list)
    for key, (_, slug) in chosen.items():
        by_slug[slug].append(key)
    taken = set(by_slug)
    topics: dict[str, Topic] = {}
    for slug in sorted(by_slug):
        keys = sorted(by_slug[slug], key=lambda k: (seen.earliest[k][:2], chosen[k][0]))
        topics[keys[0]] = Topic(keys[0], chosen[keys[0]][0], slug, seen.counts[keys[0]])
        number = 2
        for key in keys[1:]:
            while _numbered(slug, number) in taken:
                number += 1
            new = _numbered(slug, number)
            taken.add(new)
            topics[key] = Topic(key, chosen[key][0], new, seen.counts[key])
            report.warning(
                "content",
                None,
                f"topics '{chosen[keys[0]][0]}' and '{chosen[key][0]}' share the slug '{slug}'; "
                f"'{chosen[key][0]}' uses '{new}': rename one of them or fix its categoryUrl",
            )
    return topics
