"""Send a week's digest to each subscriber: their topics only, once, recorded in the ledger.

The run decides its mode once (a test copy, a dry run, or the real thing), then goes through
the recipients: skip (suppressed, already sent) → their copy → deliver it → record it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime, parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from ..addresses import address_fix, ascii_address, clipped, encoded_word, normalise_address, valid_address
from ..config import Config
from ..dates import local_day
from ..digests.archive import write_archive_index, write_digest
from ..digests.assemble import Copies
from ..digests.editions import Edition, edition
from ..digests.message import fresh_message_id
from ..digests.personal import personal_copy, sender_domain
from ..digests.plan import warn_unknown_topics
from ..digests.render import Rendered
from ..digests.windows import Window
from ..errors import Interrupted, NoLedgerError, RefusedError, UsageError, note_sigterm, stop_on_sigterm
from ..ledger import BOUNCES_TO_SUPPRESS, Ledger
from ..report import NoProgress, Progress, Report
from ..site.reader import Site
from ..subscriptions import Subscriptions
from ..tokens import make_purpose_token, make_token, verp_tag
from ..urls import loopback
from .mailer import DeliveryError, MailerPool, Pacing, RelayError, SmtpMailer, Stopped
from .outbox import Outbox, write_preview
from .subscribers import Subscriber, read_subscribers

STALE_AFTER = timedelta(days=7)
MAX_FAILURES_IN_A_ROW = 20


@dataclass(frozen=True, slots=True)
class SendOptions:
    """What the operator asked `bulletin send` to do."""

    subscribers: Path | None  # a CSV; None: the ledger's active subscribers
    window: Window
    dry_run: bool = False
    rate: float | None = None
    force: bool = False
    to: str | None = None
    new_ledger: bool = False
    retry_failed: bool = False
    preview: str | None = None  # write this subscriber's copy to .bulletin/preview/ instead
    connections: int = 4  # SMTP connections to the relay at once
    local_links: bool = False  # send even though the mail's links lead to this machine

    def __post_init__(self) -> None:
        if self.to is None:
            return
        to = ascii_address(self.to)
        if not valid_address(to):
            fix = address_fix(self.to, "write one address, e.g. --to you@example.org")
            raise UsageError(f"--to: {clipped(self.to)!r} is not an email address; {fix}")
        object.__setattr__(self, "to", to)  # frozen: the one address the copy goes to, in ASCII

    @property
    def test_copy(self) -> bool:
        """One copy to --to, outside the ledger."""
        return self.to is not None

    @property
    def real(self) -> bool:
        """Mail the subscribers and record it: not a dry run, a test copy or a preview."""
        return not self.dry_run and self.to is None and self.preview is None


@dataclass
class SendSummary:
    """What a send did, for the closing summary line."""

    window: str
    sent: int = 0
    already_sent: int = 0
    suppressed: int = 0
    no_items: int = 0
    failed: int = 0
    not_reached: int = 0  # when the run stopped: recipients it never came to, or whose copy was under way
    topic_sets: int = 0
    seconds: float = 0.0
    aborted: bool = False
    reason: str = ""  # why the run stopped, when it did
    dry_run: bool = False
    emptied: int = 0  # messages of the last dry run removed from the outbox
    recipients: list[tuple[str, str, int, int]] = field(default_factory=list)  # dry run: who got what
    previews: tuple[Path, ...] = ()

    def line(self) -> str:
        if self.previews:
            return f"send {self.window}: one subscriber's copy written (above), nothing sent"
        verb = "written to .bulletin/outbox" if self.dry_run else "sent"
        return (
            f"send {self.window}: {self.sent} {verb}, {self.already_sent} already sent, "
            f"{self.suppressed} suppressed, {self.no_items} with no items, {self.failed} failed, "
            + (f"{self.not_reached} not reached, " if self.not_reached else "")
            + f"{self.seconds:.1f} s"
        )

    def counted(self) -> int:
        """Recipients the run came to and settled: sent, skipped or failed."""
        return self.sent + self.already_sent + self.suppressed + self.no_items + self.failed

    def abort(self, reason: str) -> None:
        """Stop the run, for the first reason given (messages still under way end after it)."""
        if not self.aborted:
            self.aborted, self.reason = True, reason


def send_digest(
    site: Site,
    options: SendOptions,
    report: Report,
    secret: str,
    password: str | None,
    progress: Progress | None = None,
    mailer: SmtpMailer | None = None,
    clock: Callable[[], datetime] | None = None,
) -> SendSummary:
    """Send (or, with dry_run, write to the outbox) the window's digest to every subscriber."""
    config = site.config
    config.require_mail(send=True)
    _refuse_stale(options, site.now)
    if options.real and not options.local_links:
        _refuse_local_links(config)
    warn_unknown_topics(site, report)
    ledger_path = config.state_dir / "ledger.sqlite"
    ledger: Ledger | None = None
    if options.real and options.subscribers is None and not options.new_ledger and not ledger_path.exists():
        raise NoLedgerError(
            f"no ledger at {_shown(ledger_path, config)} yet, so no subscribers to mail: {_START}"
        )
    if options.real:  # every page read before anyone is mailed: damage stops the run here
        ledger = Ledger.open(ledger_path, create=options.new_ledger, verify=True)
    elif not options.test_copy:
        ledger = _ledger_to_read(ledger_path, options.new_ledger)
    try:
        if options.real and ledger is not None:
            ledger.lock(config.state_dir / "send.lock")
        run = _Send(site, options, report, ledger, secret, clock or (lambda: datetime.now(site.now.tzinfo)))
        return run.run(progress or NoProgress(), mailer, password)
    finally:
        if ledger is not None:
            ledger.close()


# How a list begins: --new-ledger alone would start an empty one, and mail nobody.
_START = (
    "'bulletin subscribers import FILE --new-ledger' or 'subscribers add ADDRESS --new-ledger' "
    "creates it with subscribers (or restore it from a backup), or pass --subscribers FILE"
)


def _ledger_to_read(path: Path, new_ledger: bool) -> Ledger | None:
    """A dry run's or a preview's ledger. None yet is no list yet; an empty file is a lost
    ledger, which the real send would refuse (unless --new-ledger starts a new list), so the
    rehearsal refuses it too."""
    if not path.exists():
        return None
    try:
        return Ledger.open(path)
    except NoLedgerError:
        if new_ledger:
            return None
        raise


def _shown(path: Path, config: Config) -> Path:
    """`path` as the site's folder sees it: .bulletin/ledger.sqlite."""
    return path.relative_to(config.site) if path.is_relative_to(config.site) else path


def by_topic_set(recipients: list[Subscriber]) -> list[Subscriber]:
    """The recipients grouped by topic set, sets in the order they first appear, each group
    in list order: every set is rendered once and then let go."""
    first: dict[frozenset[str] | None, int] = {}
    for number, subscriber in enumerate(recipients):
        first.setdefault(subscriber.topics, number)
    return sorted(recipients, key=lambda subscriber: first[subscriber.topics])


def _refuse_stale(options: SendOptions, now: datetime) -> None:
    window = options.window
    if options.test_copy or options.preview is not None:
        return
    last = window.until - timedelta(days=1)
    if window.end > now:
        raise RefusedError(
            f"{window.label} has not ended yet (its last day is {last}); send it once it is complete"
        )
    # A dry run mails nobody: an old week is as safe to look at as any.
    if now - window.end > STALE_AFTER and not (options.force or options.dry_run):
        raise RefusedError(
            f"{window.label} ended with {last}, more than 7 days ago; pass --force to send it anyway"
        )


def _refuse_local_links(config: Config) -> None:
    """A send to the list whose links lead to this machine: no subscriber could open them,
    not even to unsubscribe (the starter's values, until they are changed)."""
    digest = config.digest
    # Each key before those whose default it gives: the message names the one to change.
    for key, url in (
        ("base_url", config.base_url),
        ("site_url", config.site_url),
        ("web.url", config.web.url if config.web is not None else None),
        ("digest.unsubscribe_url", digest.unsubscribe_url),
        ("digest.manage_url", digest.manage_url),
    ):
        host = urlsplit(url or "").hostname
        if loopback(host):
            raise RefusedError(
                f"bulletin.toml: {key} points at this machine ({host}): no subscriber could open "
                "the mail's links, not even to unsubscribe; set the public address (see CHANGE "
                "in bulletin.toml), or, for a test against a local server, add --local-links"
            )


@contextlib.contextmanager
def _ctrl_c_stops(stop: Callable[[int], None], notice: str) -> Iterator[None]:
    """Inside the block, Ctrl-C (the first, and any after it) and SIGTERM call `stop` and
    print `notice` once, instead of breaking into whatever runs. Only a command's main
    thread takes them over, and only from their usual handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    said: list[bool] = []

    def asked(signum: int, _frame: object) -> None:
        stop(signum)
        if not said:
            said.append(True)
            with contextlib.suppress(OSError):  # stderr may be gone; the stop goes on
                os.write(2, f"\nbulletin: {notice}\n".encode())

    usual = {signal.SIGINT: (signal.default_int_handler,), signal.SIGTERM: (signal.SIG_DFL, stop_on_sigterm)}
    taken = {
        signum: signal.signal(signum, asked)
        for signum, handlers in usual.items()
        if signal.getsignal(signum) in handlers
    }
    try:
        yield
    finally:
        for signum, previous in taken.items():
            signal.signal(signum, previous)


INTERRUPTED = "interrupted (Ctrl-C)"
TERMINATED = "stopped by SIGTERM"


class _Copies:
    """Each topic set's digest, and one subscriber's copy of it.

    The digest's parts are inlined once, on the first set (see digests.assemble); each set's
    digest is assembled from them, so memory and time per set do not grow with the number
    of sets.
    """

    def __init__(
        self,
        site: Site,
        chosen: Edition,
        window: Window,
        secret: str,
        clock: Callable[[], datetime],
        report: Report,
    ) -> None:
        self.site, self.chosen, self.window = site, chosen, window
        self.secret, self.clock, self.report = secret, clock, report
        self.domain = sender_domain(site.config)
        self.assembled: Copies | None = None
        self.current: tuple[frozenset[str] | None, Rendered | None] | None = None
        self.sets = 0  # topic sets rendered
        self.warned = False

    def rendered(self, topics: frozenset[str] | None) -> Rendered | None:
        """The digest this topic set gets; None when none of its topics had items."""
        if self.current is None or self.current[0] != topics:
            if self.assembled is None:
                config = self.site.config
                self.assembled = Copies(config, self.site.topics, self.window, self.chosen, self.window.name)
            self.current = (topics, self.assembled.rendered(topics))
            self.sets += 1
            if self.assembled.why_full and not self.warned:
                self.warned = True
                self.report.warning(
                    str(self.site.config.templates_dir),
                    None,
                    f"{self.assembled.why_full}: each topic set is rendered in full, which is slower; "
                    "see README, Digest templates",
                )
        return self.current[1]

    def copy(self, rendered: Rendered, subscriber: Subscriber) -> tuple[str, bytes]:
        """The Message-ID and the bytes of the subscriber's message, signed when configured."""
        config = self.site.config
        message_id = fresh_message_id(self.domain)
        personal = personal_copy(
            config,
            subscriber.name,
            subscriber.email,
            make_token(subscriber.email, self.secret, config.digest.list_id),
            message_id,
            format_datetime(self.clock().astimezone(config.timezone)),
            make_purpose_token("manage", subscriber.email, self.secret, config.digest.list_id)
            if config.web is not None
            else None,
        )
        data = rendered.template.render(personal)
        if config.dkim is not None:
            from .signing import sign

            data = sign(data, config.dkim)
        return message_id, data


class _Send:
    """One run of `send`, its mode decided once from the options."""

    def __init__(
        self,
        site: Site,
        options: SendOptions,
        report: Report,
        ledger: Ledger | None,
        secret: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.site, self.options, self.report, self.clock = site, options, report, clock
        self.secret = secret
        # Skips need the ledger (a test copy and a preview ignore it); records need a real send.
        self.ledger = ledger
        self.skips = ledger if not options.test_copy and options.preview is None else None
        self.records = ledger if options.real else None
        self.summary = SendSummary(options.window.label, dry_run=options.dry_run)
        self.run_id = uuid.uuid4().hex
        # Failures in a row, reported and recorded once the streak ends (see _settle).
        self.streak: list[tuple[Subscriber, DeliveryError]] = []
        self.relay_blamed = ""  # why the streak is the relay's fault, when it stopped the run
        self.in_flight: dict[Future[None], tuple[Subscriber, str]] = {}  # with several connections
        self.halt = threading.Event()  # set by Ctrl-C (the relay's own, once there is one)
        self.stopped_by: int = signal.SIGINT  # or SIGTERM, once either came
        self.unsent = False  # someone was left unsent because of it

    def run(self, progress: Progress, mailer: SmtpMailer | None, password: str | None) -> SendSummary:
        started, began = time.monotonic(), self.clock()
        recipients = by_topic_set(self._recipients())
        chosen = edition(self.site, self.options.window, self.ledger, freeze=self.options.real)
        self._note_late(chosen)
        if not self.options.test_copy and self.options.preview is None:
            self._write_archive_copy(chosen)
        copies = _Copies(self.site, chosen, self.options.window, self.secret, self.clock, self.report)
        outbox, relay = self._transport(mailer, password)
        sent = self.skips.already_sent(self.options.window.name) if self.skips is not None else set()
        progress.start(f"Sending {self.options.window.label}", len(recipients))
        why_not_counted = "the run stopped before it could tell whether the relay was at fault"
        if relay is not None:
            self.halt = relay.pacing.stop
        # From here on Ctrl-C asks the run to stop between two messages: one broken off while
        # the relay takes it may be delivered and never recorded, and so sent again.
        with _ctrl_c_stops(self._stop, self._stop_notice()):
            try:
                for subscriber in recipients:
                    if self.halt.is_set():
                        self.unsent = True
                        break
                    progress.advance()
                    copy = None if self._skipped(subscriber, sent) else self._copy(copies, subscriber)
                    if copy is not None and not self._hand_over(subscriber, *copy, outbox, relay):
                        break
                self._drain()
                why_not_counted = self.relay_blamed
            finally:
                self._drain()
                self._settle(why_not_counted)
                progress.finish()
                if relay is not None:
                    relay.close()
            self.summary.topic_sets = copies.sets
            self.summary.seconds = time.monotonic() - started
            interrupted = self.unsent and not self.summary.aborted  # else the relay's reason stands
            if interrupted or self.summary.aborted:
                self.summary.not_reached = len(recipients) - self.summary.counted()
            if interrupted:
                self.summary.abort(TERMINATED if self.stopped_by == signal.SIGTERM else INTERRUPTED)
            if self.records is not None:
                self.records.record_run(
                    self.run_id, self.options.window.name, began, self.clock(), self.summary
                )
        if interrupted:
            label = self.options.window.label
            if self.records is None:  # a dry run, a test copy: nothing to resume
                raise Interrupted(f"stopped after {self.summary.sent} of {label}'s copies")
            raise Interrupted(
                f"{self.summary.sent} sent for {label} before the stop, {self.summary.not_reached} "
                "not reached; the same command sends the rest, to no one twice"
            )
        return self.summary

    def _note_late(self, chosen: Edition) -> None:
        """-v: each item dated in a week already sent, which this digest carries."""
        zone = self.site.config.timezone  # the week's days are the site's
        for item in chosen.candidates:
            if item.id in chosen.late:
                day = local_day(item.published, zone)
                self.report.note(
                    f"{item.path}: dated {day}, but its week's digest went out without it: it goes "
                    f"in {self.options.window.label}'s, marked with its date"
                )

    def _stop_notice(self) -> str:
        """What Ctrl-C says at once."""
        if self.records is None:  # a dry run, a test copy: nothing is recorded
            return "stopping after the message under way"
        timeout = self.site.config.smtp.timeout
        return (
            "stopping after the messages under way, so that each is recorded "
            f"(each within smtp.timeout, {timeout} s)"
        )

    def _stop(self, signum: int) -> None:
        """Ctrl-C or SIGTERM: no new message, no waiting turn or retry; those under way
        finish and are recorded."""
        if not self.halt.is_set():
            self.stopped_by = signum
            if signum == signal.SIGTERM:
                note_sigterm()
        self.halt.set()

    def _copy(self, copies: _Copies, subscriber: Subscriber) -> tuple[str, bytes, int] | None:
        """The subscriber's message (Message-ID, bytes, items); None when no topic had items."""
        rendered = copies.rendered(subscriber.topics)
        if rendered is None:
            self.summary.no_items += 1
            return None
        message_id, data = copies.copy(rendered, subscriber)
        return message_id, data, rendered.digest.count

    def _hand_over(
        self,
        subscriber: Subscriber,
        message_id: str,
        data: bytes,
        items: int,
        outbox: Outbox | None,
        relay: SmtpMailer | MailerPool | None,
    ) -> bool:
        """Preview, outbox or relay; False when the run must stop."""
        if self.options.preview is not None:
            self.summary.previews = write_preview(
                self.site.config.state_dir / "preview", subscriber.email, data
            )
            self.summary.sent += 1
        elif outbox is not None:
            outbox.add(subscriber.email, data)
            self.summary.sent += 1
            topics = ";".join(sorted(subscriber.topics)) if subscriber.topics is not None else "*"
            self.summary.recipients.append((subscriber.email, topics, items, len(data)))
        elif isinstance(relay, MailerPool):
            return self._submit(relay, subscriber, message_id, data)
        else:
            return self._deliver(relay, subscriber, message_id, data)
        return True

    # -- several connections ---------------------------------------------------------------------

    def _submit(self, pool: MailerPool, subscriber: Subscriber, message_id: str, data: bytes) -> bool:
        """Hand a message to the pool, then record what finished; False when the run must stop.

        At most one message a connection is under way: a kill repeats at most those."""
        future = pool.submit(self._return_path(subscriber), subscriber.email, data)
        self.in_flight[future] = (subscriber, message_id)
        if len(self.in_flight) < pool.connections:
            return True
        done, _ = wait(list(self.in_flight), return_when=FIRST_COMPLETED)
        return all([self._finished(future) for future in done])

    def _finished(self, future: Future[None]) -> bool:
        subscriber, message_id = self.in_flight.pop(future)
        if future.cancelled():  # never started: not sent
            self.unsent = True
            return False
        error = future.exception()
        if isinstance(error, Stopped):  # its turn came after a Ctrl-C: not sent
            self.unsent = True
            return False
        if error is not None and not isinstance(error, (RelayError, DeliveryError)):
            raise error
        return self._outcome(subscriber, message_id, error)

    def _drain(self) -> None:
        """Record every message still under way (after a stop too: what the relay took, it took)."""
        while self.in_flight:
            done, _ = wait(list(self.in_flight), return_when=FIRST_COMPLETED)
            for future in done:
                self._finished(future)

    def _recipients(self) -> list[Subscriber]:
        if self.options.to is not None:
            return [Subscriber(email=self.options.to, name="", topics=None, line=0)]
        everyone = self._subscribers()
        if self.options.preview is None:
            return everyone
        wanted = normalise_address(self.options.preview)
        found = [s for s in everyone if normalise_address(s.email) == wanted]
        if not found:
            where = self.options.subscribers or "the ledger's active subscribers"
            raise UsageError(f"--preview: {self.options.preview} is not among {where}")
        return found[:1]

    def _subscribers(self) -> list[Subscriber]:
        if self.options.subscribers is not None:
            rows = read_subscribers(self.options.subscribers, self.site.topics.names(), self.report)
            # An export's status column: only the active rows consented and are still in.
            return [row for row in rows if row.status == "active"]
        if self.ledger is None:  # a dry run before any ledger exists
            self.report.warning(
                "send", None, f"no ledger and no --subscribers FILE: nobody to write to; {_START}"
            )
            return []
        active = [
            Subscriber(row.email, row.name, row.topics, 0)
            for row in Subscriptions(self.ledger).rows(status="active")
            if self._mailable(row.email)
        ]
        if not active:
            self.report.warning(
                str(self.ledger.path),
                None,
                "no active subscribers in the ledger: add them with "
                "`bulletin subscribers import FILE`, or pass --subscribers FILE",
            )
        self._warn_stranded(active)
        return active

    def _mailable(self, address: str) -> bool:
        """False, and said, for an address with an encoded word that the ledger holds from
        before they were refused: in To, a mail program would show it as other addresses."""
        if not encoded_word(address):
            return True
        self.report.error(
            str(self.ledger.path) if self.ledger is not None else "ledger",
            None,
            f"{address}: not mailed: mail programs would read the '=?' before @ as an encoded word "
            f"and show another address in To; remove it: bulletin subscribers remove '{address}'",
        )
        return False

    def _warn_stranded(self, active: list[Subscriber]) -> None:
        """Subscribers whose every topic is gone from the site get no digest at all, which
        would otherwise only show as a count of copies 'with no items'."""
        known = self.site.topics.by_slug()
        stranded = [s for s in active if s.topics is not None and not any(t in known for t in s.topics)]
        if stranded:
            gone = sorted({topic for s in stranded for topic in s.topics or ()})
            self.report.warning(
                str(self.ledger.path) if self.ledger is not None else "send",
                None,
                f"{len(stranded):,} active subscriber(s) chose only topics the site no longer has "
                f"({', '.join(gone)}): they get no digest until they choose others; "
                f"`bulletin subscribers list --topic {gone[0]}` names them",
            )

    def _write_archive_copy(self, chosen: Edition) -> None:
        """The archive copy: the window as sent (its frozen list), and the index."""
        window = self.options.window
        write_digest(self.site, window, self.report, edition=chosen)
        if window.is_week:
            write_archive_index(self.site)

    def _transport(
        self, mailer: SmtpMailer | None, password: str | None
    ) -> tuple[Outbox | None, SmtpMailer | MailerPool | None]:
        """The outbox of a dry run, or the relay: one connection, or a pool of them (a preview
        needs neither)."""
        if self.options.preview is not None:
            return None, None
        if self.options.dry_run:
            outbox = Outbox(self.site.config.state_dir / "outbox")
            self.summary.emptied = outbox.removed
            return outbox, None
        pacing = Pacing(self.options.rate)
        if mailer is not None or self.options.connections <= 1 or self.options.test_copy:
            return None, mailer or SmtpMailer(self.site.config.smtp, password, pacing)
        return None, MailerPool(self.site.config.smtp, password, pacing, self.options.connections)

    def _skipped(self, subscriber: Subscriber, sent: set[str]) -> bool:
        """Suppressed addresses and those already sent this window are skipped (and counted)."""
        if self.skips is None:
            return False
        address = normalise_address(subscriber.email)
        reason = self.skips.suppression(address)
        # --retry-failed: an address held after three failed sends, not one a report bounced.
        retried = (
            reason == "bounced"
            and self.options.retry_failed
            and self.skips.failures(address) >= BOUNCES_TO_SUPPRESS  # held after three failed sends
            and not self.skips.reported(address)  # and no report bounced it too
        )
        if reason is not None and not retried:
            self.summary.suppressed += 1
            return True
        if address in sent:
            self.summary.already_sent += 1
            return True
        return False

    def _deliver(
        self, mailer: SmtpMailer | MailerPool | None, subscriber: Subscriber, message_id: str, data: bytes
    ) -> bool:
        """Deliver one copy over one connection and record the outcome; False when the run must stop."""
        assert isinstance(mailer, SmtpMailer)
        try:
            mailer.send(self._return_path(subscriber), subscriber.email, data)
        except Stopped:  # its turn came after a Ctrl-C: not sent
            self.unsent = True
            return False
        except (RelayError, DeliveryError) as error:
            return self._outcome(subscriber, message_id, error)
        return self._outcome(subscriber, message_id, None)

    def _outcome(self, subscriber: Subscriber, message_id: str, error: BaseException | None) -> bool:
        """Record one delivery's outcome; False when the run must stop."""
        if isinstance(error, RelayError):
            self.summary.abort(str(error))
            self.relay_blamed = "the relay failed, so it is the likely cause"
            return False
        if isinstance(error, DeliveryError):
            return self._failed(subscriber, error)
        if not self.summary.aborted:  # a message under way when the run stopped clears nobody
            self._settle("")
        self.summary.sent += 1
        if self.records is not None:
            address = normalise_address(subscriber.email)
            self.records.record_sent(self.options.window.name, address, message_id, self.clock())
        return True

    def _return_path(self, subscriber: Subscriber) -> str:
        """The envelope sender: with digest.bounce_address, `local+TAG@domain` (VERP), so that
        every bounce names its subscriber; else the address of digest.from."""
        bounce = self.site.config.digest.bounce_address
        if bounce is None:
            return parseaddr(self.site.config.digest.sender or "")[1]
        local, _, domain = bounce.rpartition("@")
        return f"{local}+{verp_tag(normalise_address(subscriber.email), self.secret)}@{domain}"

    def _failed(self, subscriber: Subscriber, error: DeliveryError) -> bool:
        """Count one refused delivery; False when too many failed in a row."""
        self.summary.failed += 1
        self.streak.append((subscriber, error))
        if len(self.streak) >= MAX_FAILURES_IN_A_ROW:
            self.summary.abort(
                f"stopped after {MAX_FAILURES_IN_A_ROW} failed deliveries in a row (the summary "
                "counts those under way then too); check the relay, then run the same command "
                "again (it resumes)"
            )
            self.relay_blamed = (
                f"the run stopped after {MAX_FAILURES_IN_A_ROW} failures in a row, "
                "so the relay is the likely cause"
            )
            return False
        return True

    def _settle(self, why_not_counted: str) -> None:
        """Report the failures in a row that just ended. Permanent ones count toward
        suppressing their address only when the relay was seen working after them, or the
        run ended normally (`why_not_counted` empty): a run stopped by a broken relay must
        not get its subscribers suppressed."""
        for subscriber, error in self.streak:
            fix = "it is retried on the next run"
            if error.permanent and self.records is not None:
                if why_not_counted:
                    fix += f"; not counted toward suppression: {why_not_counted}"
                elif self.records.record_failure(
                    subscriber.email, self.run_id, error.code, error.message, self.clock()
                ):
                    fix = "3 runs failed for good: now suppressed (--retry-failed overrides)"
                else:
                    fix += "; 3 permanent failures suppress it"
            where = "--to" if self.options.test_copy else str(self.options.subscribers or "ledger")
            said = f"the server said {error.code} {error.message}"
            self.report.error(where, subscriber.line or None, f"{subscriber.email}: {said}; {fix}")
        self.streak.clear()
