"""`bulletin bounces`: delivery reports from a Maildir, an mbox or standard input, matched to
subscribers and applied to the ledger (README, "Bounces and complaints").

A report is matched by the VERP return path it was sent to (`digest.bounce_address` with a
tag), else by the original Message-ID recorded when the message was sent, else by its
Final-Recipient when that address was ever mailed; never guessed. A permanent failure marks
the address bounced, three transient ones in separate weeks do too, a complaint marks it
complained at once. Each report is recorded by its key, so reading it twice changes nothing.
"""

from __future__ import annotations

import mailbox
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ..addresses import normalise_address
from ..config import Config
from ..errors import UsageError
from ..ledger import Ledger
from ..report import Report
from ..subscriptions import Subscriptions
from ..tokens import verp_tag
from .reports import MAX_REPORT_BYTES, ReportError, read_report
from .reports import Report as DeliveryReport

ASIDE = ".Unmatched"  # the Maildir++ folder where reports that matched nobody are kept


@dataclass
class BounceSummary:
    """What reading a batch of reports did."""

    read: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        order = ("bounced", "complained", "transient", "already read", "ignored", "unmatched", "unreadable")
        parts = [f"{self.outcomes[name]} {name}" for name in order if self.outcomes[name]]
        return f"bounces: {self.read} report(s) read" + (f": {', '.join(parts)}" if parts else "")


@dataclass(frozen=True, slots=True)
class _Message:
    """One report as its source holds it."""

    where: str  # the Maildir file, "mbox:N", the saved message, or "-"
    data: bytes
    path: Path | None = None  # a Maildir file, moved once handled


def read_bounces(
    config: Config, source: str, ledger: Ledger, secret: str, report: Report, now: datetime, stdin: BinaryIO
) -> BounceSummary:
    """Read every new report in `source` (a Maildir, an mbox file, one saved message, or "-")
    and apply it."""
    summary = BounceSummary()
    matcher = _Matcher(config, ledger, secret)
    for message in _messages(source, stdin):
        summary.read += 1
        try:
            parsed = read_report(message.data, _envelope_from_environment() if message.where == "-" else ())
        except Exception as error:  # one report must never stop the others: skip it, and say why
            why = str(error)
            if not isinstance(error, ReportError):
                why = f"cannot be read: {type(error).__name__}: {why}; this is a bug in bulletin, report it"
            report.error(message.where, None, f"{why}; skipped, and {_kept(message)} for you to look at")
            summary.outcomes["unreadable"] += 1
            _aside(message, config)
            continue
        outcome = _apply(parsed, matcher, ledger, message.where, now)
        summary.outcomes[outcome] += 1
        if outcome == "unmatched":
            report.warning(message.where, None, f"matches no subscriber: {_kept(message)}, nothing changed")
            _aside(message, config)
        else:
            _done(message)
    return summary


def _apply(parsed: DeliveryReport, matcher: _Matcher, ledger: Ledger, where: str, now: datetime) -> str:
    store = Subscriptions(ledger)
    kind = parsed.kind
    if kind == "ignored":
        store.record_report(parsed.key, "ignored", None, None, "", "", parsed.date or now, where)
        return "ignored"
    found = matcher.match(parsed)
    notice = next((n for n in parsed.notices if n.kind == kind), parsed.notices[0])
    if found is None or kind == "unknown":
        recorded = store.record_report(
            parsed.key, "unmatched", None, None, notice.status, notice.diagnostic, parsed.date or now, where
        )
        return "already read" if recorded == "already" else "unmatched"
    address, how = found
    recorded = store.record_report(
        parsed.key, kind, address, how, notice.status, notice.diagnostic, parsed.date or now, where
    )
    return {"already": "already read"}.get(recorded, recorded)


class _Matcher:
    """Finds the subscriber a report is about; nothing is guessed."""

    def __init__(self, config: Config, ledger: Ledger, secret: str) -> None:
        self.ledger = ledger
        self.secret = secret
        bounce = config.digest.bounce_address
        local, _, domain = (bounce or "").rpartition("@")
        self.verp = (
            re.compile(rf"{re.escape(local)}\+([a-z0-9]{{16}})@{re.escape(domain)}", re.I) if bounce else None
        )
        self._tags: dict[str, str] | None = None

    def known(self) -> set[str]:
        """Every address bulletin ever mailed or keeps."""
        rows = self.ledger.db.execute(
            "SELECT address FROM sent UNION SELECT address FROM subscribers"
            " UNION SELECT address FROM suppressed"
        )
        return {row[0] for row in rows}

    def tags(self) -> dict[str, str]:
        if self._tags is None:
            self._tags = {verp_tag(address, self.secret): address for address in self.known()}
        return self._tags

    def match(self, parsed: DeliveryReport) -> tuple[str, str] | None:
        if self.verp is not None:
            for address in parsed.envelope:
                tag = self.verp.fullmatch(address.strip())
                if tag and tag.group(1).lower() in self.tags():
                    return self.tags()[tag.group(1).lower()], "verp"
        for message_id in parsed.message_ids:
            row = self.ledger.db.execute(
                "SELECT address FROM sent WHERE message_id = ?", (message_id,)
            ).fetchone()
            if row is not None:
                return str(row[0]), "message-id"
        if self.verp is not None:
            # Every report of a mail bulletin sent comes back to its tagged return path, or
            # quotes its Message-ID. One that only names an address may come from anyone:
            # the bounce address is in every digest.
            return None
        mailed = self.mailed()
        for notice in parsed.notices:
            if notice.recipient and normalise_address(notice.recipient) in mailed:
                return normalise_address(notice.recipient), "final-recipient"
        return None

    def mailed(self) -> set[str]:
        """Every address bulletin sent a digest to: no report can be about anyone else."""
        return {row[0] for row in self.ledger.db.execute("SELECT DISTINCT address FROM sent")}


def _envelope_from_environment() -> tuple[str, ...]:
    # Postfix tells a piped command whom the report was for.
    return tuple(v for v in (os.environ.get("ORIGINAL_RECIPIENT"), os.environ.get("RECIPIENT")) if v)


# -- sources ---------------------------------------------------------------------------------


def _messages(source: str, stdin: BinaryIO) -> Iterator[_Message]:
    if source == "-":
        if stdin.isatty():  # nothing piped in: reading would wait for typing
            raise UsageError(
                "no report given: name a Maildir or an mbox file, or pipe one report in "
                "(bulletin bounces < report.eml)"
            )
        data = stdin.read()
        if data.strip():  # an empty input is no report, not an unreadable one
            yield _Message("-", data)
        return
    path = Path(source)
    if path.is_dir():
        if not (path / "new").is_dir() or not (path / "cur").is_dir():
            raise UsageError(f"{source}: a folder, but not a Maildir (no new/ and cur/ in it)")
        for entry in sorted((path / "new").iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                yield _Message(str(entry), entry.read_bytes(), entry)
        return
    if not path.is_file():
        raise UsageError(f"{source}: no such Maildir or mbox file")
    start, bom = _start(path)
    if not start:  # an empty spool (emptied by the last run): no report, as with empty input
        return
    if not start.startswith(b"From "):  # one saved message (report.eml), not an mbox
        with path.open("rb") as handle:  # no more than a report may hold: a larger one is refused
            data = handle.read(MAX_REPORT_BYTES + 1)
        yield _Message(source, data.removeprefix(_BOM).lstrip())
        return
    if bom:  # the mbox reader would miss the first From line behind it: split it here
        text = path.read_bytes().removeprefix(_BOM)
        for number, part in enumerate((p for p in _FROM_LINE.split(text) if p.strip()), start=1):
            yield _Message(f"{source}:{number}", part)
        return
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield _Message(f"{source}:{number}", box.get_bytes(key))
    finally:
        box.close()


_BOM = b"\xef\xbb\xbf"
_FROM_LINE = re.compile(rb"^From [^\n]*\n", re.MULTILINE)


def _start(path: Path) -> tuple[bytes, bool]:
    """The file's first bytes after a UTF-8 byte order mark and blank space (b"" when it holds
    nothing else), and whether it had the mark."""
    with path.open("rb") as handle:
        head = handle.read(4096)
        bom = head.startswith(_BOM)
        head = head.removeprefix(_BOM)
        while head and not head.strip():  # blank for now: read on (an mbox may start so)
            head = handle.read(65536)
    return head.lstrip()[:5], bom


def _done(message: _Message) -> None:
    """A Maildir message handled: into cur/, marked seen. Nothing is deleted."""
    if message.path is not None:
        _move(message.path, message.path.parent.parent / "cur")


def _kept(message: _Message) -> str:
    """Where _aside puts the message, in words."""
    if message.path is not None:
        return f"moved to {message.path.parent.parent / ASIDE}/"
    return "kept in .bulletin/unmatched/"


def _aside(message: _Message, config: Config) -> None:
    """Keep a report that matched nobody (or could not be read) for a person to look at."""
    if message.path is not None:
        folder = message.path.parent.parent / ASIDE
        for sub in ("new", "cur", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        _move(message.path, folder / "cur")
        return
    box = mailbox.Maildir(config.state_dir / "unmatched", create=True)
    box.add(message.data)


def _move(path: Path, folder: Path) -> None:
    name = path.name.split(":2,")[0]
    os.replace(path, folder / f"{name}:2,S")
