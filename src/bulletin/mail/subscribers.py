"""Subscriber lists: the CSV file (`email,name,topics`, every bad row reported) and the
subscribers kept in the ledger, imported, exported, added and removed by the operator."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..addresses import (
    address_fix,
    ascii_address,
    normalise_address,
    recipient_address,
    valid_address,
    visible,
)
from ..errors import Interrupted, UsageError
from ..ledger import Ledger
from ..report import Report
from ..slugs import did_you_mean
from ..subscriptions import RESTORED, STATUSES, SUPPRESSED, Row, Subscriptions, clean_name

if TYPE_CHECKING:
    from _csv import Reader

    from ..config import Config

# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"): the
# export writes such a cell after a single quote, as OWASP advises, and reading drops it again.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One row: an address (as written, for To), a name for the greeting, and the topics
    (slugs; None: all)."""

    email: str
    name: str
    topics: frozenset[str] | None
    line: int
    status: str = "active"  # a list exported elsewhere says who left, bounced or never confirmed
    record: Mapping[str, str] = field(default_factory=dict)  # an export's history of the row (RESTORED)


def read_subscribers(path: Path, topics: Mapping[str, str], report: Report) -> list[Subscriber]:
    """Every usable row; each bad row is reported (file:line) and skipped, never widened to all.
    `topics`: the site's, slug → name."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{shown}: cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{shown}:{line}: error: not UTF-8; save the file as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_separator(text))
    rows = _rows(reader, shown)
    header = next(rows, None)
    columns = [name.strip().lower() for name in header or []]
    if "email" not in columns:
        raise UsageError(f"{shown}:1: error: no 'email' column; the first row must be email,name,topics")
    where: dict[str, int] = {
        name: columns.index(name)
        for name in ("email", "name", "topics", "status", *RESTORED)
        if name in columns
    }
    seen: dict[str, int] = {}
    subscribers = []
    for row in rows:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str:
            index = where.get(name)
            return _unquoted(row[index].strip()) if index is not None and index < len(row) else ""

        written = cell("email")
        address = ascii_address(written)
        if not valid_address(address):
            report.error(shown, line, f"address '{visible(written)}' is not valid; {address_fix(written)}")
            continue
        key = normalise_address(address)
        if key in seen:
            report.error(
                shown, line, f"{address} is already on line {seen[key]}; the first row wins: delete this one"
            )
            continue
        status = _status(cell("status"), shown, line, report)
        if status is None:
            continue
        usable, chosen = _chosen(status, cell("topics"), topics, shown, line, report)
        if not usable:
            continue
        seen[key] = line
        record = _record(cell, shown, line, report)
        subscribers.append(
            Subscriber(recipient_address(address), clean_name(cell("name")), chosen, line, status, record)
        )
    return subscribers


def _chosen(
    status: str, value: str, topics: Mapping[str, str], shown: str, line: int, report: Report
) -> tuple[bool, frozenset[str] | None]:
    """A row's topics: checked for one to mail; as the export wrote them for one that left
    (of no use to anyone not mailed, but part of their record)."""
    if status == "active":
        return _topics(value, topics, shown, line, report)
    return True, frozenset(_slugs(value)) or None


def _slugs(value: str) -> list[str]:
    """A topics cell's slugs. Slugs hold neither ';' nor ',': a file whose columns are
    separated by ';' may separate them by ','."""
    return [slug.strip() for slug in value.replace(",", ";").split(";") if slug.strip()]


def _status(written: str, shown: str, line: int, report: Report) -> str | None:
    """A row's status column (empty: active); None, reported, when it is no status."""
    status = written.lower() or "active"
    if status not in STATUSES:
        says = f"status '{written}' is not one of {', '.join(STATUSES)}"
        report.error(shown, line, f"{says}; write one of them, or leave it empty for active")
        return None
    return status


def _record(cell: Callable[[str], str], shown: str, line: int, report: Report) -> dict[str, str]:
    """An export's history of a row: its source, and its dates and consent where they are
    instants (a date that is not one is left out, with a warning)."""
    record = {name: cell(name) for name in RESTORED if cell(name)}
    for name in ("created", "confirmed", "consent_at"):
        if name in record:
            instant = _instant(record[name])
            if instant is None:
                says = f"{name} '{visible(record.pop(name))}' is not a date-time with its offset; left out"
                report.warning(shown, line, says)
            else:
                record[name] = instant
    if "consent_at" not in record:  # a consent record is kept whole or not at all
        record = {k: v for k, v in record.items() if not k.startswith("consent_")}
    return record


def _instant(value: str) -> str | None:
    """An ISO 8601 date-time with its offset, as the ledger writes one (in UTC), so that
    instants compare as text; None for anything else, a year past the calendar's ends too."""
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC).isoformat() if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _separator(text: str) -> str:
    """The file's column separator: a comma, unless the header row names an email column
    only when split at ';' (a spreadsheet where a comma is the decimal point saves
    `email;name;topics`) or at a tab."""
    first = text.partition("\n")[0]
    for separator in (",", ";", "\t"):
        header = next(csv.reader([first], delimiter=separator), [])
        if "email" in (name.strip().lower() for name in header):
            return separator
    return ","


def _unquoted(value: str) -> str:
    """A cell as the export wrote it, without the quote that kept it from being a formula."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA) else value


def _rows(reader: Reader, shown: str) -> Iterator[list[str]]:
    """The reader's rows; a row csv cannot read (a field over its 128 KB limit) stops the file."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fix = "check the quotes there: a quote that is never closed runs on to the end of the file"
            raise UsageError(f"{shown}:{start}: error: cannot read the row: {exc}; {fix}") from None
        yield row


def _topics(
    value: str, known: Mapping[str, str], shown: str, line: int, report: Report
) -> tuple[bool, frozenset[str] | None]:
    """Whether the row is usable, and its slugs (None: all topics)."""
    slugs = _slugs(value)
    if not slugs or slugs == ["*"]:
        return True, None
    unknown = [slug for slug in slugs if slug not in known]
    kept = frozenset(slug for slug in slugs if slug in known)
    meant = did_you_mean(unknown, known)
    if not kept:
        report.error(
            shown,
            line,
            f"no known topic in '{value}'{f' ({meant})' if meant else ''}; write slugs from "
            "`bulletin topics` separated by ';', or leave it empty for all topics",
        )
        return False, None
    if unknown:
        dropped = f"unknown topic(s) {', '.join(unknown)} dropped{f' ({meant})' if meant else ''}"
        report.warning(shown, line, f"{dropped}; see `bulletin topics` for the slugs")
    return True, kept


# -- the subscribers kept in the ledger (`bulletin subscribers …`) ----------------------------

EXPORT_COLUMNS = (
    "email",
    "name",
    "topics",
    "status",
    "source",
    "created",
    "confirmed",
    "changed",
    "consent_at",
    "consent_url",
    "consent_text",
    "consent_ip",
)


def import_subscribers(subscribers: list[Subscriber], ledger: Ledger, now: datetime) -> dict[str, int]:
    """Add subscribers read from a CSV as active (the operator vouches for them); an address
    that left or bounced stays so. A row whose status (an export's column) says the address
    left, bounced or complained is kept from mail here too; one that never confirmed is not
    imported ("pending"). Counts by resulting status."""
    store = Subscriptions(ledger)
    counts: dict[str, int] = {}
    try:
        for subscriber in subscribers:
            if subscriber.status == "pending":
                status = "pending (not imported: never confirmed)"
            elif subscriber.status in SUPPRESSED:
                store.restore(subscriber, now)
                store.leave(subscriber.email, now, subscriber.status, "import")
                status = subscriber.status
            else:
                status = store.add(subscriber.email, subscriber.name, subscriber.topics, now, "import")
                store.restore(subscriber, now)
            counts[status] = counts.get(status, 0) + 1
    except KeyboardInterrupt:  # each row is its own transaction: the count is exact
        done = sum(counts.values())
        raise Interrupted(
            f"{done:,} of {len(subscribers):,} subscribers imported; the same command imports "
            "the rest (those in already stay as they are)"
        ) from None
    return counts


def export_subscribers(ledger: Ledger, out: TextIO) -> int:
    """Every subscriber as CSV (the import format's columns first, then status and consent)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    rows = Subscriptions(ledger).rows()
    held = ledger.suppressed()  # active rows held after failed sends go out as what holds them
    for row in rows:
        topics = ";".join(sorted(row.topics)) if row.topics is not None else ""
        status = held.get(row.address, row.status) if row.status == "active" else row.status
        writer.writerow(
            _neutral(cell)
            for cell in (
                row.email,
                row.name,
                topics,
                status,
                row.source,
                row.created,
                row.confirmed or "",
                row.changed,
                row.consent_at or "",
                row.consent_url or "",
                row.consent_text or "",
                row.consent_ip or "",
            )
        )
    return len(rows)


def _neutral(cell: str) -> str:
    """A cell no spreadsheet takes for a formula."""
    return "'" + cell if cell.startswith(_FORMULA) else cell


def parse_topics(value: str | None, known: Mapping[str, str]) -> frozenset[str] | None:
    """--topics a;b: known slugs (`known`: slug → name), or None for every topic; UsageError
    names unknown ones."""
    slugs = [s.strip() for s in (value or "").replace(",", ";").split(";") if s.strip()]
    if not slugs or slugs == ["*"]:
        return None
    unknown = sorted(set(slugs) - set(known))
    if unknown:
        raise UsageError(unknown_topics("--topics", unknown, known))
    return frozenset(slugs)


def unknown_topics(option: str, unknown: list[str], known: Mapping[str, str]) -> str:
    """`--topics: unknown topic slug x; did you mean 'y'? known: …`."""
    meant = did_you_mean(unknown, known)
    listed = ", ".join(sorted(known)) or "none"
    given = f"slug{'' if len(unknown) == 1 else 's'} {', '.join(unknown) or '(none given)'}"
    hint = f"{meant} " if meant else ""
    return f"{option}: unknown topic {given}; {hint}known: {listed} (see bulletin topics)"


def check_address(address: str, option: str = "ADDRESS", *, stored: bool = False) -> str:
    """A valid address, stripped, its domain in ASCII; UsageError otherwise. `stored`: one
    to find in the ledger, which may hold addresses refused since (see valid_address)."""
    written = address.strip()
    address = ascii_address(written)
    if not valid_address(address, stored=stored):
        raise UsageError(f"{option}: '{visible(written)}' is not an email address; {address_fix(written)}")
    return address


def rows_for_topic(config: Config, now: datetime, slug: str, rows: list[Row], report: Report) -> list[Row]:
    """The ledger's `rows` that --topic `slug` lists. A slug the site does not have is a typo
    (the rows would be only those who get every topic), unless some still chose it, from a
    topic gone since: then only they are, as nobody else gets it. Without content/, the
    slugs last published say which topics there are."""
    from ..errors import NoContentError
    from ..site.reader import read_site
    from ..site.topics import load_published
    from ..slugs import SLUGS_FILE

    known: dict[str, str]
    try:  # its own report: the items' problems are the build's to tell
        known = read_site(config, Report(), now).topics.names()
    except NoContentError:
        recorded = config.out if (config.out / SLUGS_FILE).exists() else config.site
        known = {slug: slug for slug in (load_published(recorded, Report()) or {}).values()}
        if not known:
            missing = f"{config.content_dir.name}/ and {SLUGS_FILE} are missing or unreadable"
            says = (
                f"--topic: cannot tell whether the site has '{slug}': {missing}; listed as the ledger has it"
            )
            report.warning("bulletin", None, says)
            return rows
    if slug in known:
        return rows
    kept = [row for row in rows if row.topics is not None and slug in row.topics]
    if kept:
        says = f"--topic: the site has no topic '{slug}' now; listed are those who still chose it"
        report.warning("bulletin", None, says)
        return kept
    raise UsageError(unknown_topics("--topic", [slug], known))
