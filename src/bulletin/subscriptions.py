"""Subscribers kept in the ledger: status, topics, consent, and the web side's guards.

One row per normalised address. Statuses: `pending` (asked, not confirmed), `active`,
`unsubscribed`, `bounced`, `complained`. The last three are also in the ledger's
suppression list, which `send` honours whatever the subscriber's source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from .addresses import mailbox_key, normalise_address
from .ledger import Ledger
from .report import CONTROLS

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
SUPPRESSED = frozenset(("unsubscribed", "bounced", "complained"))
# Never mailed again, not even a confirmation: a dead mailbox, or someone who called our mail
# spam. (Whoever unsubscribed may subscribe again, by double opt-in.)
NEVER_MAILED = frozenset(("bounced", "complained"))
TRANSIENT_WEEKS = 3  # transient failures in this many separate weeks make an address bounced
_RANK = {"unsubscribed": 1, "bounced": 2, "complained": 3}
MAILS_PER_DAY = 3  # confirmation or manage-link mails one mailbox (mailbox_key) can get in a day


@dataclass(frozen=True, slots=True)
class Consent:
    """What a person agreed to, and where: kept with their row."""

    at: datetime
    url: str
    text: str
    ip: str | None


# The columns of an export that `restore` takes back: how and when a row joined and consented.
RESTORED = ("source", "created", "confirmed", "consent_at", "consent_url", "consent_text", "consent_ip")


class Restored(Protocol):
    """A row of an export, as `restore` reads it (mail.subscribers.Subscriber is one)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def topics(self) -> frozenset[str] | None: ...
    @property
    def status(self) -> str: ...
    @property
    def record(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class Row:
    """One subscriber as the ledger keeps them."""

    address: str
    email: str
    name: str
    topics: frozenset[str] | None  # slugs; None: every topic
    status: str
    source: str
    created: str
    confirmed: str | None
    changed: str
    consent_at: str | None
    consent_url: str | None
    consent_text: str | None
    consent_ip: str | None


def clean_name(value: str) -> str:
    """A subscriber's name as kept: control characters become spaces, white space one space."""
    return " ".join(CONTROLS.sub(" ", value).split())  # no name needs a control character


def join_topics(topics: Iterable[str] | None) -> str | None:
    return None if topics is None else ";".join(sorted(set(topics)))


def _split_topics(value: str | None) -> frozenset[str] | None:
    return None if value is None else frozenset(t for t in value.split(";") if t)


class Subscriptions:
    """The subscribers table of an open ledger; every change is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.db = ledger.db

    # -- reading -----------------------------------------------------------------------------

    def get(self, address: str) -> Row | None:
        found = self.db.execute(
            "SELECT * FROM subscribers WHERE address = ?", (normalise_address(address),)
        ).fetchone()
        return None if found is None else _row(found)

    def rows(self, status: str | None = None, topic: str | None = None) -> list[Row]:
        """Every subscriber, by address; only `status`, only those who get `topic`."""
        query, args = "SELECT * FROM subscribers", []
        if status is not None:
            query, args = query + " WHERE status = ?", [status]
        found = [_row(r) for r in self.db.execute(query + " ORDER BY address", args)]
        return [r for r in found if topic is None or r.topics is None or topic in r.topics]

    def never_mailed(self, address: str) -> bool:
        """Whether `address` bounced or complained, as a subscriber or in the suppression list
        (a CSV subscriber has no row): it gets no mail at all."""
        return any(reason in NEVER_MAILED for reason in self._stops(address))

    def left(self, address: str) -> bool:
        """Whether `address` is mailed no more: it unsubscribed, bounced or complained, as a
        subscriber or in the suppression list (where a CSV subscriber's leaving is kept)."""
        return any(reason in SUPPRESSED for reason in self._stops(address))

    def _stops(self, address: str) -> list[str]:
        """The address's status as a subscriber and its reason in the suppression list."""
        address = normalise_address(address)
        found = self.db.execute(
            "SELECT status FROM subscribers WHERE address = ?"
            " UNION ALL SELECT reason FROM suppressed WHERE address = ?",
            (address, address),
        )
        return [str(reason) for (reason,) in found]

    def counts(self) -> dict[str, int]:
        """Subscribers per status."""
        found = dict(self.db.execute("SELECT status, COUNT(*) FROM subscribers GROUP BY status"))
        return {status: int(found.get(status, 0)) for status in STATUSES}

    # -- changes -----------------------------------------------------------------------------

    def request(self, email: str, name: str, topics: Iterable[str] | None, consent: Consent) -> str:
        """Someone asked to subscribe: a pending row (unless already active); the status
        before the request ("new" when unknown), so the caller mails the right link."""
        address = normalise_address(email)
        with self._transaction():
            before = self._status(address)
            if before == "active":
                return before
            at = consent.at.isoformat()
            self.db.execute(
                "INSERT INTO subscribers (address, email, name, topics, status, source, created, changed,"
                " consent_at, consent_url, consent_text, consent_ip)"
                " VALUES (?, ?, ?, ?, 'pending', 'web', ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (address) DO UPDATE SET email = excluded.email, name = excluded.name,"
                " topics = excluded.topics, status = 'pending', source = 'web', changed = excluded.changed,"
                " consent_at = excluded.consent_at, consent_url = excluded.consent_url,"
                " consent_text = excluded.consent_text, consent_ip = excluded.consent_ip",
                (
                    address,
                    email.strip(),
                    name,
                    join_topics(topics),
                    at,
                    at,
                    at,
                    consent.url,
                    consent.text,
                    consent.ip,
                ),
            )
            return before or "new"

    def expire_pending(self, now: datetime, hours: int) -> int:
        """Forget the requests not confirmed within `hours`, whose links no longer work: an
        address that had left is so again, any other row goes. How many expired."""
        cutoff = (now - timedelta(hours=hours)).isoformat()
        stale = "status = 'pending' AND julianday(changed) < julianday(?)"  # julianday() reads offsets
        with self._transaction():
            back = self.db.execute(
                "UPDATE subscribers SET changed = ?, status ="
                " (SELECT reason FROM suppressed WHERE suppressed.address = subscribers.address)"
                f" WHERE {stale} AND address IN (SELECT address FROM suppressed)",
                (now.isoformat(), cutoff),
            ).rowcount
            gone = self.db.execute(f"DELETE FROM subscribers WHERE {stale}", (cutoff,)).rowcount
            return int(back) + int(gone)

    def confirm(self, address: str, at: datetime, request: str = "") -> bool:
        """A pending subscription becomes active (an active one stays); False when unknown,
        or when `request` (when the link's request was made) is not the one pending: a later
        request replaced it, and only that request's own link confirms what it asked for."""
        address = normalise_address(address)
        with self._transaction():
            row = self.get(address)
            if row is None or not confirms(row, request):
                return False  # an old link never undoes a later unsubscribe (or a bounce)
            status = row.status
            if status != "active":
                self.db.execute(
                    "UPDATE subscribers SET status = 'active', confirmed = ?, changed = ? WHERE address = ?",
                    (at.isoformat(), at.isoformat(), address),
                )
                # They asked again and proved the mailbox is theirs: mail them again.
                self.db.execute("DELETE FROM suppressed WHERE address = ?", (address,))
                self._log(address, at, "active", "confirmed")
            return True

    def update(self, address: str, name: str, topics: Iterable[str] | None, at: datetime) -> bool:
        """Change an active subscriber's name and topics; False when not active."""
        address = normalise_address(address)
        with self._transaction():
            changed = self.db.execute(
                "UPDATE subscribers SET name = ?, topics = ?, changed = ?"
                " WHERE address = ? AND status = 'active'",
                (name, join_topics(topics), at.isoformat(), address),
            ).rowcount
            return bool(changed)

    def leave(self, address: str, at: datetime, status: str = "unsubscribed", reason: str = "") -> None:
        """Stop mailing `address` (unsubscribed, bounced or complained), subscriber or not."""
        with self._transaction():
            self._leave(normalise_address(address), at, status, reason or status)

    def _leave(self, address: str, at: datetime, status: str, reason: str) -> None:
        assert status in SUPPRESSED
        found = self.db.execute("SELECT reason FROM suppressed WHERE address = ?", (address,)).fetchone()
        if (
            found is not None
            and _RANK.get(str(found[0]), 0) >= _RANK[status]
            and self._status(address) in (None, str(found[0]))
        ):
            return  # already so: nothing to record (a repeated one-click must not grow the ledger)
        if found is not None and _RANK.get(str(found[0]), 0) > _RANK[status]:
            status = str(found[0])  # a complaint is never turned back into a mere bounce
        self.db.execute(
            "UPDATE subscribers SET status = ?, changed = ? WHERE address = ?",
            (status, at.isoformat(), address),
        )
        self.db.execute(
            "INSERT INTO suppressed (address, reason, since) VALUES (?, ?, ?) "
            "ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, since = excluded.since",
            (address, status, at.isoformat()),
        )
        self._log(address, at, status, reason)

    def record_report(
        self,
        key: str,
        kind: str,
        address: str | None,
        how: str | None,
        status: str,
        diagnostic: str,
        received: datetime,
        source: str,
    ) -> str:
        """Record one delivery report and apply it; "already" when it was read before, else
        what it did: "bounced", "complained", "transient", or its kind."""
        week = "{}-W{:02d}".format(*received.isocalendar()[:2])
        with self._transaction():
            if self.db.execute("SELECT 1 FROM reports WHERE key = ?", (key,)).fetchone():
                return "already"
            self.db.execute(
                "INSERT INTO reports"
                " (key, kind, address, matched_by, status, diagnostic, received, week, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, kind, address, how, status, diagnostic, received.isoformat(), week, source),
            )
            if address is None:
                return kind
            reason = f"{kind} report {status} {diagnostic}".strip()
            if kind == "permanent":
                self._leave(address, received, "bounced", reason)
                return "bounced"
            if kind == "complaint":
                self._leave(address, received, "complained", reason)
                return "complained"
            if kind == "transient":
                (weeks,) = self.db.execute(
                    "SELECT COUNT(DISTINCT week) FROM reports WHERE address = ? AND kind = 'transient'",
                    (address,),
                ).fetchone()
                if weeks >= TRANSIENT_WEEKS:
                    self._leave(
                        address, received, "bounced", f"transient failures in {weeks} weeks; {reason}"
                    )
                    return "bounced"
            return kind

    def add(self, email: str, name: str, topics: Iterable[str] | None, at: datetime, source: str) -> str:
        """An operator adds someone (they vouch for them): active, unless the address left or
        bounced, which it stays. Returns the status the address has afterwards."""
        address = normalise_address(email)
        with self._transaction():
            suppressed = self.db.execute(
                "SELECT reason FROM suppressed WHERE address = ?", (address,)
            ).fetchone()
            status = self._status(address)
            if suppressed is not None or status in SUPPRESSED:
                return status if status in SUPPRESSED else str(suppressed[0])
            self.db.execute(
                "INSERT INTO subscribers"
                " (address, email, name, topics, status, source, created, confirmed, changed)"
                " VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?)"
                " ON CONFLICT (address) DO UPDATE SET email = excluded.email, name = excluded.name,"
                " topics = excluded.topics, status = 'active', changed = excluded.changed,"
                " confirmed = COALESCE(subscribers.confirmed, excluded.confirmed)",
                (
                    address,
                    email.strip(),
                    name,
                    join_topics(topics),
                    source,
                    at.isoformat(),
                    at.isoformat(),
                    at.isoformat(),
                ),
            )
            if status != "active":
                self._log(address, at, "active", source)
            return "active"

    def restore(self, row: Restored, at: datetime) -> None:
        """What an export says of a row (`record`: its source, created, confirmed and consent
        columns) where this ledger holds nothing of its own: a row that joined on the web
        keeps when and how it consented. An address that left gets its row back, with its
        status, so that `status` and `subscribers list` count it as the other ledger did."""
        address = normalise_address(row.email)
        given = {key: row.record.get(key) or None for key in RESTORED}
        with self._transaction():
            if row.status in SUPPRESSED and self._status(address) is None:
                self.db.execute(
                    "INSERT INTO subscribers (address, email, name, topics, status, source, created, changed)"
                    " VALUES (?, ?, ?, ?, ?, 'import', ?, ?)",
                    (address, row.email.strip(), row.name, join_topics(row.topics), row.status,
                     at.isoformat(), at.isoformat()),
                )  # fmt: skip
            self.db.execute(
                "UPDATE subscribers SET"
                " source = CASE WHEN source = 'import' THEN COALESCE(:source, source) ELSE source END,"
                " created = MIN(created, COALESCE(:created, created)),"
                " confirmed = CASE WHEN :confirmed IS NULL THEN confirmed"
                "   ELSE MIN(COALESCE(confirmed, :confirmed), :confirmed) END,"
                " consent_url = CASE WHEN consent_at IS NULL THEN :consent_url ELSE consent_url END,"
                " consent_text = CASE WHEN consent_at IS NULL THEN :consent_text ELSE consent_text END,"
                " consent_ip = CASE WHEN consent_at IS NULL THEN :consent_ip ELSE consent_ip END,"
                " consent_at = COALESCE(consent_at, :consent_at)"
                " WHERE address = :address",
                {**given, "address": address},
            )

    # -- the web side's guards ---------------------------------------------------------------

    def use_nonce(self, nonce: str, now: float, keep: float) -> bool:
        """Record a form's nonce; False when it was used already (a replayed form)."""
        with self._transaction():
            self.db.execute("DELETE FROM form_nonces WHERE at < ?", (now - keep,))
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO form_nonces (nonce, at) VALUES (?, ?)", (nonce, now)
            ).rowcount
            return bool(inserted)

    def hit(self, client: str, now: float, per_minute: int) -> bool:
        """Count one request from `client`; False when it made `per_minute` in the last minute."""
        with self._transaction():
            self.db.execute("DELETE FROM hits WHERE at < ?", (now - 60,))
            (count,) = self.db.execute("SELECT COUNT(*) FROM hits WHERE client = ?", (client,)).fetchone()
            if count >= per_minute:
                return False
            self.db.execute("INSERT INTO hits (client, at) VALUES (?, ?)", (client, now))
            return True

    def may_mail(self, address: str, now: float) -> bool:
        """Count one confirmation (or manage-link) mail; False past MAILS_PER_DAY a day.
        Counted by mailbox: ann+1@, ann+2@… would otherwise each get three in one inbox."""
        address = mailbox_key(address)
        with self._transaction():
            self.db.execute("DELETE FROM mails_asked WHERE at < ?", (now - 86400,))
            (count,) = self.db.execute(
                "SELECT COUNT(*) FROM mails_asked WHERE address = ?", (address,)
            ).fetchone()
            if count >= MAILS_PER_DAY:
                return False
            self.db.execute("INSERT INTO mails_asked (address, at) VALUES (?, ?)", (address, now))
            return True

    def forget_mail(self, address: str, now: float) -> None:
        """Undo may_mail when the mail could not be sent."""
        with self._transaction():
            self.db.execute(
                "DELETE FROM mails_asked WHERE address = ? AND at = ?", (mailbox_key(address), now)
            )

    def undo_request(self, email: str, before: str, row: Row | None, asked: str) -> None:
        """Put a row back as it was before request() (the confirmation mail failed), unless a
        later request (`asked`: this one's consent time) has replaced it since: that one's
        mail may have gone out, and its link must keep working."""
        address = normalise_address(email)
        ours = "address = ? AND status = 'pending' AND consent_at = ?"
        with self._transaction():
            if row is None:
                self.db.execute(f"DELETE FROM subscribers WHERE {ours}", (address, asked))
                return
            self.db.execute(
                "UPDATE subscribers SET email = ?, name = ?, topics = ?, status = ?, source = ?, changed = ?,"
                f" consent_at = ?, consent_url = ?, consent_text = ?, consent_ip = ? WHERE {ours}",
                (
                    row.email,
                    row.name,
                    join_topics(row.topics),
                    row.status,
                    row.source,
                    row.changed,
                    row.consent_at,
                    row.consent_url,
                    row.consent_text,
                    row.consent_ip,
                    address,
                    asked,
                ),
            )

    # -- inside ------------------------------------------------------------------------------

    def _status(self, address: str) -> str | None:
        found = self.db.execute("SELECT status FROM subscribers WHERE address = ?", (address,)).fetchone()
        return None if found is None else str(found[0])

    def _log(self, address: str, at: datetime, status: str, reason: str) -> None:
        self.db.execute(
            "INSERT INTO status_changes (address, at, status, reason) VALUES (?, ?, ?, ?)",
            (address, at.isoformat(), status, reason),
        )

    def _transaction(self) -> AbstractContextManager[None]:
        return self.ledger.writing()


def confirms(row: Row, request: str) -> bool:
    """Whether a confirm link for `request` confirms `row` (what `confirm` does with it): the
    address is active already, or pending from `request` ("": any request)."""
    if row.status == "pending":
        return not request or row.consent_at == request
    return row.status == "active"


def _row(values: tuple[object, ...]) -> Row:
    fields = list(values)
    fields[3] = _split_topics(fields[3])  # type: ignore[arg-type]
    return Row(*fields)  # type: ignore[arg-type]
