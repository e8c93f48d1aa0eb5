"""Write digests under emails/: the HTML page, the text part, the .eml, and the archive index."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from . import __version__
from .build import Site, Written
from .cache import Cache
from .digest import Digest, plan_digest
from .items import Item
from .message import GREETING, UNSUBSCRIBE, archive_personal
from .output import write_if_changed
from .render import Rendered, https, render_digest, sender_domain, window_folder
from .report import Report
from .templates import environment, templates_fingerprint
from .windows import Window, week_containing, week_of

if TYPE_CHECKING:
    from .editions import Edition

_WEEK_FOLDER = re.compile(r"^(\d{4})-W(\d{2})$")


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
    candidates: Sequence[Item] | None = None,
    late: Sequence[str] = (),
) -> DigestResult | None:
    """Plan, render and write one digest; None when the window has no items (nothing written)."""
    config = site.config
    config.require_mail()
    digest = plan_digest(
        config, site.topics, window, site.items if candidates is None else candidates, only, late
    )
    if digest.empty:
        return None
    folder = window_folder(window, list(only) if only is not None else None)
    renders = Cache(config.cache_dir, "renders", config.fingerprint)
    fingerprint = digest_fingerprint(site, digest, folder, templates_fingerprint(config))
    names = ("digest.html", "digest.txt", "digest.eml")
    target = config.emails_dir / folder
    written = Written()
    if renders.get(f"emails/{folder}") == fingerprint and all((target / n).exists() for n in names):
        written.unchanged += len(names)
        return DigestResult(folder, digest, written, rendered=False)
    rendered = render_digest(config, site.topics, digest, folder)
    if rendered.cuts:
        report.warning(
            f"emails/{folder}",
            None,
            f"{rendered.cuts} item(s) moved behind 'and N more' to keep the message under "
            "90,000 bytes (Gmail clips longer mail); lower digest.section_items to show fewer",
        )
    for name, data in zip(names, archive_files(site, rendered, window), strict=True):
        if write_if_changed(target / name, data):
            written.changed.append(f"emails/{folder}/{name}")
        else:
            written.unchanged += 1
    renders.put(f"emails/{folder}", fingerprint)
    renders.save()
    return DigestResult(folder, rendered.digest, written, rendered=True)


def archive_files(site: Site, rendered: Rendered, window: Window) -> tuple[bytes, bytes, bytes]:
    """digest.html, digest.txt and digest.eml: the non-personal copy, byte-stable."""
    config = site.config
    manage = https(config.digest.manage_url, config)
    page = rendered.html.replace(GREETING, "").replace(UNSUBSCRIBE, html.escape(manage, quote=True))
    text = rendered.text.replace(GREETING, "").replace(UNSUBSCRIBE, manage)
    personal = archive_personal(
        rendered.template,
        manage,
        config.digest.unsubscribe_mailto,
        window.end.astimezone(config.timezone),
        sender_domain(config),
    )
    return page.encode(), text.encode(), rendered.template.render(personal)


def weeks_with_items(items: Sequence[Item], site: Site, now: datetime) -> list[Window]:
    """Complete ISO weeks (ended by `now`) that have items, newest first."""
    tz = site.config.timezone
    seen: dict[str, Window] = {}
    for item in items:
        week = week_containing(item.published, tz)
        if week.end <= now and week.name not in seen:
            seen[week.name] = week
    return sorted(seen.values(), key=lambda w: w.start, reverse=True)


def frozen_editions(site: Site, windows: Sequence[Window]) -> dict[str, Edition]:
    """The item lists frozen in the ledger for these windows (those already sent), if any."""
    from .editions import edition
    from .ledger import Ledger

    path = site.config.state_dir / "ledger.sqlite"
    if not path.exists():
        return {}
    with Ledger.open(path) as ledger:
        found = {w.name: edition(site, w, ledger, freeze=False) for w in windows}
    return {name: chosen for name, chosen in found.items() if chosen.frozen}


def write_recent_digests(site: Site, report: Report) -> tuple[list[DigestResult], Written]:
    """The digests of the newest digest.archive_weeks complete weeks with items, and the index.

    A week already sent shows the item list frozen in the ledger, as its subscribers got it.
    """
    weeks = weeks_with_items(site.items, site, site.now)[: site.config.digest.archive_weeks]
    frozen = frozen_editions(site, weeks)
    results = []
    written = Written()
    for week in weeks:
        chosen = frozen.get(week.name)
        if chosen is not None:
            result = write_digest(site, week, report, candidates=chosen.candidates, late=sorted(chosen.late))
        else:
            result = write_digest(site, week, report)
        if result is not None:
            results.append(result)
            written.add(result.written)
    written.add(write_archive_index(site))
    return results, written


def write_archive_index(site: Site) -> Written:
    """emails/index.html: every weekly digest in emails/, newest first (custom ones never)."""
    config = site.config
    entries = []
    if config.emails_dir.is_dir():
        for folder in sorted(config.emails_dir.iterdir(), key=lambda p: p.name, reverse=True):
            match = _WEEK_FOLDER.match(folder.name)
            if not match or not (folder / "digest.html").is_file():
                continue
            week = week_of(date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1), config.timezone)
            entries.append(
                {
                    "name": week.name,
                    "start": week.since.isoformat(),
                    "last": (week.until - timedelta(days=1)).isoformat(),
                    "url": https(f"{config.base_url}emails/{week.name}/digest.html", config),
                }
            )
    written = Written()
    renders = Cache(config.cache_dir, "renders", config.fingerprint)
    fingerprint = hashlib.sha256(
        f"{__version__}\0{config.fingerprint}\0{templates_fingerprint(config)}\0{entries}".encode()
    ).hexdigest()
    index = config.emails_dir / "index.html"
    if renders.get("emails/index.html") == fingerprint and index.exists():
        written.unchanged += 1
        return written
    page = environment(config).get_template("emails_index.html.j2").render(
        site=config, version=__version__, digests=entries,
        feeds_url=https(f"{config.base_url}feeds/index.html", config),
    )  # fmt: skip
    if write_if_changed(index, page.encode()):
        written.changed.append("emails/index.html")
    else:
        written.unchanged += 1
    renders.put("emails/index.html", fingerprint)
    renders.save()
    return written
