"""The pipeline, top to bottom: read items → group by topic → write feeds → write digests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .config import Config
from .dates import local_day
from .errors import RefusedError
from .feeds.writer import write_feeds
from .output import Written
from .report import Progress, Report, counted
from .site.reader import Site, read_site
from .site.walk import Walked
from .urls import Urls

if TYPE_CHECKING:  # digests load only when a build writes them (not for `bulletin feeds`)
    from .digests.archive import DigestResult


@dataclass
class Built:
    """What a build did: the site it read, the feeds written, the digests (None: skipped)."""

    site: Site
    feeds: Written
    digests: list[DigestResult] | None = None
    digests_written: Written = field(default_factory=Written)


def build_site(
    config: Config,
    report: Report,
    now: datetime,
    progress: Progress | None = None,
    *,
    strict: bool = False,
    digests: bool = True,
    walked: Walked | None = None,
    one_shot: bool = False,
) -> Built:
    """Read the site, then write the feeds and (with `digests`, when the mail keys are set)
    the recent digests. Under `strict`, any problem stops the run before anything is written.
    `walked`: a walk of content/ made moments ago (to tell whether anything changed).

    `one_shot`: the process ends after this build, so what it read is frozen out of the
    cyclic garbage collector (`gc.freeze`): the items hold no cycles, and every collection
    would otherwise scan their millions of objects again (0.3 s a time at 100,000 items).
    A long-running caller leaves it False."""
    site = read_site(config, report, now, progress, walked, freeze=one_shot)
    refuse_if_strict(report, strict)
    built = Built(site, write_feeds(site, progress))
    if digests and config.digest.sender and config.digest.address:
        from .digests.archive import write_recent_digests

        built.digests, built.digests_written = write_recent_digests(site, report)
    return built


def refuse_if_strict(report: Report, strict: bool) -> None:
    """Under --strict, any error or warning stops the run before anything is written."""
    if strict and report.problems:
        count = len(report.problems)
        found = f"{counted(count, 'problem')} found"
        raise RefusedError(f"--strict: {found}; nothing was written")


def topic_rows(site: Site) -> list[tuple[str, str, int, str, str]]:
    """Each topic by name: name, slug, item count, newest item's date, RSS feed URL."""
    zone = site.config.timezone
    newest = {key: local_day(items[0].published, zone) for key, items in site.by_topic.items() if items}
    urls = Urls(site.config)
    return [
        (
            topic.name,
            topic.slug,
            topic.count,
            newest.get(topic.key, ""),
            urls.feed(f"topic/{topic.slug}/", "rss.xml"),
        )
        for topic in site.topics.sorted()
    ]
