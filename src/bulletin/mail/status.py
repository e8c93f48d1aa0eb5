"""`bulletin status`: the list's health in plain text, for a terminal or a cron mail."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..addresses import display_address
from ..ledger import Ledger
from ..subscriptions import STATUSES, Row, Subscriptions

WEEKS_SHOWN = 8
SENDS_SHOWN = 5


@dataclass
class Status:
    """The numbers `bulletin status` shows."""

    subscribers: dict[str, int]
    per_topic: list[tuple[str, str, int]]  # name, slug, active subscribers who get it
    every_topic: int  # active subscribers who take every topic
    sends: list[tuple[str, str, int, int, int, int, str]] = field(default_factory=list)
    weeks: list[tuple[str, int, int, int]] = field(
        default_factory=list
    )  # week, bounced, transient, complaints
    complaint_rate: tuple[int, int] | None = None  # complaints since the last send, its messages
    complaint_window: str = ""  # the last send's week (or days)
    held: int = 0  # active, but suppressed after failed sends: send skips them

    def lines(self) -> list[str]:
        total = sum(self.subscribers.values())
        out = [f"Subscribers: {total}"]
        out += [f"  {status:<13}{count:>7}" for status, count in self.subscribers.items()]
        if self.held:
            out.append(
                f"  ({self.held} active but suppressed: three sends failed for good; send skips "
                "them, send --retry-failed tries them again)"
            )
        out += ["", "Active subscribers per topic:", f"  {'(every topic)':<40}{self.every_topic:>7}"]
        out += [f"  {name[:38]:<40}{count:>7}  {slug}" for name, slug, count in self.per_topic]
        out += ["", "Last sends:"]
        if not self.sends:
            out.append("  none yet")
        for window, finished, sent, already, suppressed, failed, aborted in self.sends:
            stop = f"  STOPPED: {aborted}" if aborted else ""
            out.append(
                f"  {window:<9} {finished[:16]}  {sent} sent, {already} already sent, "
                f"{suppressed} suppressed, {failed} failed{stop}"
            )
        out += ["", "Bounces and complaints per week (by report date):"]
        if not self.weeks:
            out.append("  none")
        out += [f"  {week}  {b} bounced, {t} transient, {c} complaint(s)" for week, b, t, c in self.weeks]
        if self.complaint_rate is not None:
            complaints, sent = self.complaint_rate
            rate = complaints / sent if sent else 0.0
            warn = "  ABOVE 0.3%: Gmail and Yahoo throttle such senders" if rate > 0.003 else ""
            out += [
                "",
                f"Complaint rate of the last send ({self.complaint_window}): "
                f"{rate:.2%} ({complaints} of {sent}){warn}",
            ]
        return out


def collect_status(ledger: Ledger, topics: list[tuple[str, str]]) -> Status:
    """Read the ledger: subscribers, the last sends, reports per week."""
    store = Subscriptions(ledger)
    active = store.rows(status="active")
    chosen: Counter[str] = Counter(slug for row in active for slug in (row.topics or ()))
    every = sum(1 for row in active if row.topics is None)
    status = Status(
        {s: n for s, n in store.counts().items() if s in STATUSES},
        [(name, slug, chosen[slug] + every) for name, slug in topics],
        every,
    )
    db = ledger.db
    status.held = db.execute(
        "SELECT COUNT(*) FROM subscribers JOIN suppressed USING (address) WHERE status = 'active'"
    ).fetchone()[0]
    status.sends = [
        tuple(row)
        for row in db.execute(
            "SELECT window, finished, sent, already_sent, suppressed, failed, aborted FROM runs"
            # A re-run that found everyone mailed already (cron, every hour) sent nothing.
            " WHERE sent > 0 OR failed > 0 OR COALESCE(aborted, '') != ''"
            " ORDER BY finished DESC LIMIT ?",
            (SENDS_SHOWN,),
        )
    ]
    status.weeks = [
        (week, int(b), int(t), int(c))
        for week, b, t, c in db.execute(
            "SELECT week, SUM(kind = 'permanent'), SUM(kind = 'transient'), SUM(kind = 'complaint')"
            " FROM reports WHERE address IS NOT NULL GROUP BY week ORDER BY week DESC LIMIT ?",
            (WEEKS_SHOWN,),
        )
    ]
    last = db.execute("SELECT window FROM runs WHERE sent > 0 ORDER BY finished DESC LIMIT 1").fetchone()
    if last is not None:
        status.complaint_window = str(last[0])
        status.complaint_rate = _complaint_rate(ledger, status.complaint_window)
    return status


def _complaint_rate(ledger: Ledger, window: str) -> tuple[int, int]:
    """How many of the window's recipients complained since its first message, and its messages:
    over every run that sent it (a send resumed after a stop is one send)."""
    mailed = dict(ledger.db.execute("SELECT address, sent_at FROM sent WHERE window = ?", (window,)))
    if not mailed:
        return 0, 0
    first = min(_instant(at) for at in mailed.values())
    complained = {  # people, not reports: one may mark several digests as spam at once
        address
        for address, received in ledger.db.execute(
            "SELECT address, received FROM reports WHERE kind = 'complaint'"
        )
        if address in mailed and _instant(received) >= first
    }
    return len(complained), len(mailed)


def _instant(text: str) -> datetime:
    """A stored ISO 8601 time, comparable with any other (a naive one taken as UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def subscriber_lines(ledger: Ledger, address: str) -> list[str]:
    """What the ledger holds about one address, for `bulletin subscribers show`: the row,
    its suppression, every status change and report with its reason, and whether each of
    the last sends mailed it. Text from outside (names, diagnostics) is the caller's to
    escape."""
    db = ledger.db
    row = Subscriptions(ledger).get(address)
    suppressed = db.execute("SELECT reason, since FROM suppressed WHERE address = ?", (address,)).fetchone()
    changes = db.execute(
        # In the order the ledger took them: a report's time is when the relay wrote it.
        "SELECT at, status, reason FROM status_changes WHERE address = ? ORDER BY rowid",
        (address,),
    ).fetchall()
    reports = db.execute(
        "SELECT received, kind, status, diagnostic, matched_by FROM reports WHERE address = ?"
        " ORDER BY julianday(received)",  # stored with the relay's offset: compared as instants
        (address,),
    ).fetchall()
    sends, mailed = _sends_to(ledger, address)
    failed = db.execute("SELECT 1 FROM failures WHERE address = ? LIMIT 1", (address,)).fetchone()
    if row is None and suppressed is None and not (changes or reports or failed or mailed):
        # Known to no table but `sent`, if any: mailed from a file before sends were summed up
        # in `runs`. Only here is `sent` read by address alone, which is a scan of all of it.
        last = db.execute(
            "SELECT window, sent_at FROM sent WHERE address = ? ORDER BY julianday(sent_at) DESC LIMIT 1",
            (address,),
        ).fetchone()
        if last is None:
            return [f"{address}: not in the ledger: never subscribed, mailed or reported"]
        sends.append(f"{last[0]:<9} sent {_when(last[1])} (the last copy it got)")
    shown = display_address(address)
    out = [address if shown == address else f"{address} ({shown})"]
    if row is not None:
        since = next((at for at, status, _ in reversed(changes) if status == row.status), row.changed)
        out += _row_lines(row, since)
    if suppressed is not None:
        reason, since = suppressed
        out.append(f"  {'suppressed':<12}{reason} since {_when(since)}: send skips this address")
    out += ["History:", *(f"  {_when(at)}  {status:<13}{reason}" for at, status, reason in changes)]
    if not changes:
        out.append("  none")
    out.append("Reports:")
    for received, kind, status, diagnostic, matched_by in reports:
        out.append(f"  {_when(received)}  {kind:<10}{status}  {diagnostic}  (matched by {matched_by})")
    if not reports:
        out.append("  none")
    out += ["Last sends:", *(f"  {line}" for line in sends or ["none yet"])]
    return out


def _row_lines(row: Row, since: str) -> list[str]:
    topics = "every topic" if row.topics is None else "; ".join(sorted(row.topics)) or "none"
    joined = f"{_when(row.created)} ({row.source})"
    if row.confirmed:
        joined += f", confirmed {_when(row.confirmed)}"
    lines = [
        f"  {'status':<12}{row.status} since {_when(since)}",
        f"  {'name':<12}{row.name or '(none)'}",
        f"  {'topics':<12}{topics}",
        f"  {'joined':<12}{joined}",
    ]
    if row.consent_at:
        where = f" at {row.consent_url}" if row.consent_url else ""
        origin = f" from {row.consent_ip}" if row.consent_ip else ""
        lines.append(f"  {'consent':<12}{_when(row.consent_at)}{where}{origin}: {row.consent_text or ''}")
    return lines


def _sends_to(ledger: Ledger, address: str) -> tuple[list[str], bool]:
    """For each of the last sends' weeks: when the digest went to `address`, or that it did
    not (and the relay's answer, if it refused it); then, when none of them mailed it, the
    last copy it got before. And whether any send mailed it."""
    db = ledger.db
    windows = db.execute(
        "SELECT window FROM runs GROUP BY window ORDER BY max(julianday(finished)) DESC"
    ).fetchall()
    lines: list[str] = []
    mailed = False
    for number, (window,) in enumerate(windows):  # (window, address) is `sent`'s key: a lookup each
        if number >= SENDS_SHOWN and mailed:
            break
        sent = db.execute(
            "SELECT sent_at FROM sent WHERE window = ? AND address = ?", (window, address)
        ).fetchone()
        if sent is not None:
            later = " (the last copy it got)" if number >= SENDS_SHOWN else ""
            lines.append(f"{window:<9} sent {_when(sent[0])}{later}")
            mailed = True
        elif number < SENDS_SHOWN:
            failed = db.execute(
                "SELECT code, message FROM failures JOIN runs USING (run) WHERE address = ? AND window = ?"
                " ORDER BY at DESC LIMIT 1",
                (address, window),
            ).fetchone()
            lines.append(f"{window:<9} not sent" + (f": failed, {failed[0]} {failed[1]}" if failed else ""))
    return lines, mailed


def _when(moment: str) -> str:
    """An ISO 8601 time from the ledger, to the minute, in UTC."""
    try:
        return _instant(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return moment
