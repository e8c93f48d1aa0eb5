"""`bulletin status`: the list's health in plain text, for a terminal or a cron mail."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..ledger import Ledger
from ..subscriptions import STATUSES, Subscriptions

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
