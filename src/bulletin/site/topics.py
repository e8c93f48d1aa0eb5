"""Topics: which category names are one topic, its display name and its slug."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING

from ..report import Report
from ..slugs import MAX_SLUG, SLUG, SLUGS_FILE, shorten, slugify

if TYPE_CHECKING:
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
    # What .bulletin/slugs.json held when the topics were decided; None: it could not be read.
    published: dict[str, str] | None = field(default=None, compare=False, repr=False)
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

    def names(self) -> dict[str, str]:
        """slug → name: what a slug that is none of them may have meant (slugs.did_you_mean)."""
        return {slug: topic.name for slug, topic in self.by_slug().items()}

    def sorted(self) -> list[Topic]:
        """By name, case-insensitively; ties by slug."""
        return sorted(self.by_key.values(), key=lambda t: (t.name.casefold(), t.slug))


def assign_topics(
    items: Iterable[Item], report: Report, published: Mapping[str, str] | None = None
) -> Topics:
    """Decide each topic's name and slug once for this build; report slug collisions.

    `published` holds the slug each topic key was published under (.bulletin/slugs.json): the
    topic keeps it whatever its name gives now, and no other topic takes it. None: unknown."""
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
    known = dict(published or {})
    topics = _keep_published(chosen, seen, known, report)
    topics.update(_kept_apart(chosen, seen, known, report))
    _warn_near_misses(topics, seen, known, report)
    return Topics(dict(sorted(topics.items())), published=None if published is None else known)


_NEW_CHECKED = 100  # more new topics at once is an import, not a typo
# Over this many, names that share most of their letters are a scheme, not typos, and
# checking each new one against them all would cost seconds.
_TOPICS_CHECKED = 1000
_TYPO_MIN = 6  # shorter names a letter apart are most often meant ('AI', 'AR')
_WORD_MIN = 3  # nor is a word this short the typo: 'Hepatitis B' and 'C', 'Phase II' and 'III'


def _warn_near_misses(
    topics: dict[str, Topic], seen: _Seen, published: dict[str, str], report: Report
) -> None:
    """A topic new to a site that has published some, a letter away from another (one
    added, dropped, changed, or swapped with its neighbour) inside a word of three letters
    or more: most likely a typo in a category, which would take its slug for good. Names
    that differ only in their digits are different topics ('Python 3.11', 'Python 3.12')."""
    new = [key for key in topics if key not in published and len(key) >= _TYPO_MIN]
    every = set(topics) | set(published)
    if not published or not new or len(new) > _NEW_CHECKED or len(every) > _TOPICS_CHECKED:
        return
    # Keys a letter apart agree on their first or their last half (of the shorter one's
    # length): an index of halves finds them without comparing every pair of topics.
    halves: dict[tuple[int, str, str], list[str]] = defaultdict(list)
    for key in every:
        for size in {(len(key) - 1) // 2, (len(key) - 2) // 2}:  # as the longer and the shorter
            halves[len(key), "<", key[:size]].append(key)
            halves[len(key), ">", key[len(key) - size :]].append(key)
    for key in new:
        candidates: set[str] = set()
        for length in (len(key) - 1, len(key), len(key) + 1):
            size = (min(length, len(key)) - 1) // 2
            candidates.update(halves.get((length, "<", key[:size]), ()))
            candidates.update(halves.get((length, ">", key[len(key) - size :]), ()))
        found = [
            other
            for other in candidates
            if (at := _one_edit(key, other)) is not None
            and _in_a_word(topics[key].name, at)
            and _NUMBERS.sub("", other) != _NUMBERS.sub("", key)
        ]
        if not found:
            continue
        other = min(found)
        shown = (
            f"'{topics[other].name}'" if other in topics else f"the topic published as '{published[other]}'"
        )
        topic = topics[key]
        report.warning(
            seen.earliest[key][2],
            None,
            f"topic '{topic.name}' is new, and a letter away from {shown}; if it is a typo, correct "
            f"the category, then delete '{topic.slug}' from {SLUGS_FILE}, which keeps a published "
            "topic's slug for good",
        )


_NUMBERS = re.compile(r"\d+")


def _one_edit(a: str, b: str) -> int | None:
    """Where in `a` the one edit that makes `b` is (a letter added, dropped, changed, or
    swapped with the next); None when `b` is `a`, or more than one edit away."""
    if a == b or abs(len(a) - len(b)) > 1:
        return None
    at = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    if len(a) == len(b):
        if a[at + 1 :] == b[at + 1 :]:
            return at  # changed
        if a[at + 2 :] == b[at + 2 :] and a[at : at + 2] == b[at : at + 2][::-1]:
            return at  # swapped
        return None
    if len(a) > len(b):
        return at if a[at + 1 :] == b[at:] else None  # dropped from b
    return min(at, len(a) - 1) if a[at:] == b[at + 1 :] else None  # added in b


def _in_a_word(name: str, at: int) -> bool:
    """Whether the key's character `at` (the key: the name without its spaces) falls in a
    word of the name with at least _WORD_MIN letters or digits."""
    for word in unicodedata.normalize("NFKC", name).casefold().split():
        if at < len(word):
            return sum(c.isalnum() for c in word) >= _WORD_MIN
        at -= len(word)
    return False


@dataclass
class _Seen:
    """What the items say about each topic key: spellings, categoryUrl slugs, item counts."""

    spellings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    url_slugs: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    counts: Counter[str] = field(default_factory=Counter)
    earliest: dict[str, tuple[datetime, str, str]] = field(default_factory=dict)  # published, id, path


_EARLIEST = attrgetter("published", "id")


def _gather(items: Iterable[Item]) -> _Seen:
    # Items share few distinct topic lists: each list is looked at once, for all its items.
    groups: dict[tuple[tuple[str, ...], tuple[str | None, ...]], list[Item]] = defaultdict(list)
    for item in items:
        groups[item.topics, item.topic_urls].append(item)
    seen = _Seen()
    for (topics, urls), members in groups.items():
        count = len(members)
        earliest = min(members, key=_EARLIEST)
        keys_seen: set[str] = set()
        for name, url in zip(topics, urls or (None,) * len(topics), strict=False):
            key = topic_key(name)
            if not key:
                continue
            seen.spellings[key][name] += count
            if url and SLUG.match(url):
                seen.url_slugs[key][url] += count
            if key not in keys_seen:
                seen.counts[key] += count
                keys_seen.add(key)
                first = (earliest.published, earliest.id, earliest.path)
                if key not in seen.earliest or first[:2] < seen.earliest[key][:2]:
                    seen.earliest[key] = first
    return seen


def _numbered(slug: str, number: int) -> str:
    """slug-2, slug-3…, never longer than MAX_SLUG."""
    suffix = f"-{number}"
    return shorten(slug, MAX_SLUG - len(suffix)) + suffix


def _keep_published(
    chosen: dict[str, tuple[str, str]], seen: _Seen, published: dict[str, str], report: Report
) -> dict[str, Topic]:
    """The topics published before: their slug stays, whatever their name gives now."""
    topics = {}
    for key, (name, slug) in chosen.items():
        kept = published.get(key)
        if kept is None:
            continue
        topics[key] = Topic(key, name, kept, seen.counts[key])
        number = kept.rsplit("-", 1)[-1]
        if kept != slug and not (number.isdigit() and _numbered(slug, int(number)) == kept):
            report.warning(
                "content",
                None,
                f"topic '{name}' keeps its published slug '{kept}' (its name now gives '{slug}'); "
                f"to change it on purpose, delete its entry from {SLUGS_FILE}",
            )
    return topics


def _kept_apart(
    chosen: dict[str, tuple[str, str]], seen: _Seen, published: dict[str, str], report: Report
) -> dict[str, Topic]:
    """The topics not published before. Same slug for different topics: a published topic
    keeps it, else the earliest does; the others get -2, -3..."""
    owners = {slug: key for key, slug in published.items()}
    by_slug: dict[str, list[str]] = defaultdict(list)
    for key, (_, slug) in chosen.items():
        if key not in published:
            by_slug[slug].append(key)
    taken = set(by_slug) | set(owners)
    topics: dict[str, Topic] = {}
    for slug in sorted(by_slug):
        keys = sorted(by_slug[slug], key=lambda k: (seen.earliest[k][:2], chosen[k][0]))
        owner = owners.get(slug)
        if owner is None:
            owner = keys.pop(0)
            topics[owner] = Topic(owner, chosen[owner][0], slug, seen.counts[owner])
        number = 2
        for key in keys:
            while _numbered(slug, number) in taken:
                number += 1
            new = _numbered(slug, number)
            taken.add(new)
            name = chosen[key][0]
            topics[key] = Topic(key, name, new, seen.counts[key])
            report.warning("content", None, _shared(slug, owner, chosen, name, new))
    return topics


def _shared(slug: str, owner: str, chosen: dict[str, tuple[str, str]], name: str, new: str) -> str:
    if owner in chosen:
        return (
            f"topics '{chosen[owner][0]}' and '{name}' share the slug '{slug}'; '{name}' uses "
            f"'{new}': rename one of them or fix its categoryUrl"
        )
    return (
        f"the slug '{slug}' was published for the topic '{owner}' (see {SLUGS_FILE}); '{name}' uses "
        f"'{new}': rename it, or delete that entry to give '{slug}' to it"
    )


def load_published(site: Path, report: Report) -> dict[str, str] | None:
    """The slug each topic key was published under ({} before the first build); None, with a
    warning, when the file cannot be read: it is then left as it is for a person to fix."""
    try:
        data = json.loads((site / SLUGS_FILE).read_bytes())
        if not isinstance(data, dict):
            raise ValueError("it is not an object of topic keys and slugs")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            reason = f"{exc.msg}: line {exc.lineno} column {exc.colno}"
        elif isinstance(exc, RecursionError):
            reason = "it is nested too deeply"
        else:
            reason = str(exc)
        report.warning(
            SLUGS_FILE,
            None,
            f"cannot be read ({reason}); slugs are decided afresh and the file is left as it is: "
            "fix it or delete it",
        )
        return None
    published: dict[str, str] = {}
    for key, slug in sorted(data.items()):
        if not (isinstance(slug, str) and SLUG.match(slug) and len(slug) <= MAX_SLUG):
            report.warning(
                SLUGS_FILE,
                None,
                f"the slug '{slug}' of topic '{key}' is not a slug; it is ignored: write lower-case "
                "words joined by '-'",
            )
        elif slug in published.values():
            report.warning(SLUGS_FILE, None, f"the slug '{slug}' is given twice; topic '{key}' loses it")
        else:
            published[key] = slug
    return published


def save_published(site: Path, topics: Topics) -> bool:
    """Record the slug of every topic (keeping those of topics gone for now) when it changed."""
    if topics.published is None:
        return False
    slugs = {**topics.published, **{t.key: t.slug for t in topics.by_key.values()}}
    if slugs == topics.published:
        return False
    data = json.dumps(dict(sorted(slugs.items())), ensure_ascii=False, indent=2) + "\n"
    from ..files import write_atomic

    write_atomic(site / SLUGS_FILE, data.encode())
    return True
