"""Write digests under emails/: the HTML page, the text part, the .eml, and the archive index."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .. import __version__
from ..feeds.pages import navigation
from ..output import Written
from ..report import Report
from ..site.items import Item
from ..site.reader import Site
from ..templates import environment, templates_fingerprint
from ..urls import Urls
from .editions import Edition, frozen_editions
from .message import archive_personal, fill
from .personal import sender_domain
from .plan import Digest, plan_digest, warn_unknown_topics
from .render import Rendered, render_digest, window_folder
from .windows import Window, week_containing, week_of

_WEEK_FOLDER = re.compile(r"^(\d{4})-W(\d{2})$")
DIGEST_FILES = ("digest.html", "digest.txt", "digest.eml", "digest.json")
HEADLINES = 3  # top headlines of each week in the archive


@dataclass(frozen=True, slots=True)
class DigestResult:
    """What writing one digest did."""

    folder: str
    digest: Digest
    written: Written
    rendered: bool  # False when the fingerprint matched and nothing was rendered


def digest_fingerprint(site: Site, digest: Digest, folder: str, templates_fp: str) -> str:
    """Everything a digest's files depend on: a rebuild with the same hash renders nothing."""
    hasher = hashlib.sha256()
    hasher.update(f"{__version__}\0{site.config.fingerprint}\0{templates_fp}\0{folder}".encode())
    hasher.update(f"\0{digest.window.start.isoformat()}\0{digest.window.end.isoformat()}".encode())
    for item in digest.items():
        names = "\x1f".join(f"{t.name}\x1e{t.slug}" for t in site.topics.of(item))
        late = "L" if item.id in digest.late else ""
        hasher.update(f"\0{item.id}\0{item.fingerprint}\0{names}\0{late}".encode())
    for section in digest.sections:
        hasher.update(f"\0{section.name}\0{len(section.items)}".encode())
    return hasher.hexdigest()


def write_digest(
    site: Site,
    window: Window,
    report: Report,
    only: Sequence[str] | None = None,
    edition: Edition | None = None,
) -> DigestResult | None:
    """Plan, render and write one digest; None when the window has no items (nothing written).

    `edition` is the window's frozen item list when it was sent; else every published item
    is a candidate.
    """
    config = site.config
    config.require_mail()
    candidates: Sequence[Item] = site.items if edition is None else edition.candidates
    late = sorted(edition.late) if edition is not None else ()
    digest = plan_digest(config, site.topics, window, candidates, only, late)
    if digest.empty:
        return None
    folder = window_folder(window, list(only) if only is not None else None)
    fingerprint = digest_fingerprint(site, digest, folder, templates_fingerprint(config))
    target = config.emails_dir / folder
    written = Written()
    results: list[Rendered] = []

    def render() -> tuple[bytes, bytes, bytes, bytes]:
        rendered = render_digest(config, site.topics, digest, folder)
        results.append(rendered)
        if rendered.cuts:
            report.warning(
                f"emails/{folder}",
                None,
                f"{rendered.cuts} item(s) moved behind 'and N more' to keep the message under "
                "90,000 bytes (Gmail clips longer mail); lower digest.section_items to show fewer",
            )
        return archive_files(site, rendered, window)

    paths = [target / name for name in DIGEST_FILES]
    site.outputs.write(f"emails/{folder}", fingerprint, paths, render, written)
    site.outputs.save()
    if not results:
        return DigestResult(folder, digest, written, rendered=False)
    return DigestResult(folder, results[0].digest, written, rendered=True)


def write_window_digest(
    site: Site, window: Window, report: Report, only: Sequence[str] | None = None
) -> tuple[DigestResult | None, Written]:
    """One window's digest as its subscribers got it (its frozen edition once sent), and for
    a whole-week digest the archive index; None when the window has no items."""
    warn_unknown_topics(site, report)
    result = write_digest(site, window, report, only, frozen_editions(site, [window]).get(window.name))
    if result is None:
        return None, Written()
    written = Written()
    written.add(result.written)
    if window.is_week and only is None:
        written.add(write_archive_index(site))
    return result, written


def archive_files(site: Site, rendered: Rendered, window: Window) -> tuple[bytes, bytes, bytes, bytes]:
    """digest.html, .txt and .eml: the non-personal copy, byte-stable; and digest.json, what
    the archive lists of it (subject, item count, top headlines)."""
    config = site.config
    manage = Urls(config, in_mail=True).manage()
    page = fill(rendered.html, "", html.escape(manage, quote=True))
    text = fill(rendered.text, "", manage)
    personal = archive_personal(
        rendered.template,
        manage,
        config.digest.unsubscribe_mailto,
        window.end.astimezone(config.timezone),
        sender_domain(config),
    )
    summary = {
        "subject": rendered.subject,
        "count": rendered.digest.count,
        "headlines": [section.items[0].title for section in rendered.digest.sections][:HEADLINES],
    }
    listing = json.dumps(summary, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    return page.encode(), text.encode(), rendered.template.render(personal), listing.encode()


def weeks_with_items(items: Sequence[Item], site: Site, now: datetime) -> list[Window]:
    """Complete ISO weeks (ended by `now`) that have items, newest first."""
    tz = site.config.timezone
    seen: dict[str, Window] = {}
    for item in items:
        week = week_containing(item.published, tz)
        if week.end <= now and week.name not in seen:
            seen[week.name] = week
    return sorted(seen.values(), key=lambda w: w.start, reverse=True)


def write_recent_digests(site: Site, report: Report) -> tuple[list[DigestResult], Written]:
    """The digests of the newest digest.archive_weeks complete weeks with items, and the index.

    A week already sent shows the item list frozen in the ledger, as its subscribers got it.
    """
    warn_unknown_topics(site, report)
    weeks = weeks_with_items(site.items, site, site.now)[: site.config.digest.archive_weeks]
    frozen = frozen_editions(site, weeks)
    results = []
    written = Written()
    for week in weeks:
        result = write_digest(site, week, report, edition=frozen.get(week.name))
        if result is not None:
            results.append(result)
            written.add(result.written)
    written.removed.extend(_remove_emptied_weeks(site, weeks))
    written.add(write_archive_index(site))
    return results, written


def _remove_emptied_weeks(site: Site, weeks: list[Window]) -> list[str]:
    """Delete the digest of a recent week that has no items any more (each was deleted, made
    a draft or moved to another week) and was never sent: what a build from scratch writes.

    Recent: newer than the oldest week this build writes, or any week when it writes fewer
    than digest.archive_weeks (none was left out for age). Older digests stay, as the README
    says, and so does a week sent (the ledger keeps what its subscribers got). Only folders
    holding nothing but bulletin's four files go.
    """
    folder = site.config.emails_dir
    if not folder.is_dir():
        return []
    current = {week.name for week in weeks}
    oldest = weeks[-1].name if len(weeks) >= site.config.digest.archive_weeks else ""
    candidates = []
    for path in sorted(folder.iterdir()):
        week = _folder_week(path.name, site.config.timezone)
        if week is None or week.name in current or week.name <= oldest or not path.is_dir():
            continue
        entries = list(path.iterdir())
        if entries and all(e.is_file() and e.name in DIGEST_FILES for e in entries):
            candidates.append((path, entries, week))
    sent = frozen_editions(site, [week for _, _, week in candidates])
    removed = []
    for path, entries, week in candidates:
        if week.name in sent:
            continue
        for entry in sorted(entries):
            entry.unlink()
            removed.append(f"emails/{path.name}/{entry.name}")
        path.rmdir()
        site.outputs.forget(f"emails/{path.name}")
    return removed


def write_archive_index(site: Site) -> Written:
    """emails/index.html: every weekly digest in emails/, newest first (custom ones never)."""
    config = site.config
    urls = Urls(config, in_mail=True)
    entries = []
    if config.emails_dir.is_dir():
        for folder in sorted(config.emails_dir.iterdir(), key=lambda p: p.name, reverse=True):
            week = _folder_week(folder.name, config.timezone)
            if week is None or not (folder / "digest.html").is_file():
                continue
            entries.append(
                {
                    "name": week.name,
                    "start": week.since.isoformat(),
                    "last": (week.until - timedelta(days=1)).isoformat(),
                    "url": urls.digest_page(week.name),
                    **_listed(folder / "digest.json"),
                }
            )
    fingerprint = hashlib.sha256(
        f"{__version__}\0{config.fingerprint}\0{templates_fingerprint(config)}\0{entries}".encode()
    ).hexdigest()

    def render() -> list[bytes]:
        page = environment(config).get_template("emails_index.html.j2").render(
            site=config, version=__version__, digests=entries, feeds_url=urls.feeds_index(),
            nav=navigation(site), subscribe_url=urls.subscribe(),
        )  # fmt: skip
        return [page.encode()]

    written = Written()
    site.outputs.write("emails/index.html", fingerprint, [config.emails_dir / "index.html"], render, written)
    site.outputs.save()
    return written


def _folder_week(name: str, tz: ZoneInfo) -> Window | None:
    """The week a folder under emails/ is named for (2026-W47); None for any other name,
    2026-W60 included."""
    match = _WEEK_FOLDER.match(name)
    if match is None:
        return None
    try:
        week = week_of(date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1), tz)
    except (ValueError, OverflowError):
        return None
    return week if week.name == name else None


def _listed(path: Path) -> dict[str, object]:
    """What digest.json says of a week (an older digest may have none): count, headlines."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested thousands deep
        return {"count": None, "headlines": []}
    count = found.get("count") if isinstance(found, dict) else None
    headlines = found.get("headlines") if isinstance(found, dict) else None
    return {
        "count": count if isinstance(count, int) else None,
        "headlines": [h for h in headlines if isinstance(h, str)][:HEADLINES]
        if isinstance(headlines, list)
        else [],
    }
