"""Send a week's digest to each subscriber: their topics only, once, recorded in the ledger."""

from __future__ import annotations

import mailbox
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING

from .build import Site
from .digest import Digest, plan_digest
from .editions import edition
from .emails import write_archive_index, write_digest
from .errors import RefusedError
from .ledger import Ledger
from .mailer import DeliveryError, Pacing, RelayError, SmtpMailer
from .message import fresh_message_id
from .render import Rendered, personal_copy, render_digest, sender_domain
from .report import Report
from .subscribers import Subscriber, normalise_address, read_subscribers
from .unsubscribe import make_token
from .windows import Window

if TYPE_CHECKING:
    from .build import Progress

STALE_AFTER = timedelta(days=7)
MAX_FAILURES_IN_A_ROW = 20


@dataclass(frozen=True, slots=True)
class SendOptions:
    """What the operator asked `bulletin send` to do."""

    subscribers: Path
    window: Window
    dry_run: bool = False
    rate: float | None = None
    force: bool = False
    to: str | None = None
    new_ledger: bool = False
    retry_failed: bool = False


@dataclass
class SendSummary:
    """What a send did, for the closing summary line."""

    window: str
    sent: int = 0
    already_sent: int = 0
    suppressed: int = 0
    no_items: int = 0
    failed: int = 0
    topic_sets: int = 0
    seconds: float = 0.0
    aborted: bool = False
    reason: str = ""  # why the run stopped, when it did
    dry_run: bool = False

    def line(self) -> str:
        verb = "written to .bulletin/outbox" if self.dry_run else "sent"
        return (
            f"send {self.window}: {self.sent} {verb}, {self.already_sent} already sent, "
            f"{self.suppressed} suppressed, {self.no_items} with no items, {self.failed} failed, "
            f"{self.seconds:.1f} s"
        )


def _refuse_stale(options: SendOptions, now: datetime) -> None:
    window = options.window
    if window.end > now and options.to is None:
        raise RefusedError(f"{window.label} has not ended yet (it ends {window.until}); "
                           "send it once it is complete")  # fmt: skip
    if now - window.end > STALE_AFTER and not options.force and options.to is None:
        raise RefusedError(
            f"{window.label} ended on {window.until}, more than 7 days ago; pass --force to send it anyway"
        )


class Personalizer:
    """Turns a rendered digest into one subscriber's copy: the splice of SPEC §6."""

    def __init__(self, site: Site, secret: str, now: Callable[[], datetime]) -> None:
        self.config = site.config
        self.secret = secret
        self.now = now
        self.domain = sender_domain(site.config)

    def copy(self, rendered: Rendered, subscriber: Subscriber) -> tuple[str, bytes]:
        """The Message-ID and the bytes of the subscriber's message."""
        config = self.config
        message_id = fresh_message_id(self.domain)
        personal = personal_copy(
            config,
            subscriber.name,
            subscriber.email,
            make_token(subscriber.email, self.secret, config.digest.list_id),
            message_id,
            format_datetime(self.now().astimezone(config.timezone)),
        )
        return message_id, rendered.template.render(personal)


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
    clock = clock or (lambda: datetime.now(site.now.tzinfo))
    window = options.window
    _refuse_stale(options, site.now)
    summary = SendSummary(window.label, dry_run=options.dry_run)
    ledger_path = config.state_dir / "ledger.sqlite"
    real = not options.dry_run and options.to is None
    ledger: Ledger | None = None
    if real or (options.to is None and ledger_path.exists()):
        ledger = Ledger.open(ledger_path, create=options.new_ledger and real)
    try:
        if real and ledger is not None:
            ledger.lock(config.state_dir / "send.lock")
        return _deliver(site, options, report, Personalizer(site, secret, clock), password, progress,
                        mailer, ledger, summary)  # fmt: skip
    finally:
        if ledger is not None:
            ledger.close()


def _deliver(
    site: Site,
    options: SendOptions,
    report: Report,
    personalizer: Personalizer,
    password: str | None,
    progress: Progress | None,
    mailer: SmtpMailer | None,
    ledger: Ledger | None,
    summary: SendSummary,
) -> SendSummary:
    config = site.config
    window = options.window
    real = not options.dry_run and options.to is None
    clock = personalizer.now
    started = time.monotonic()
    if options.to is not None:
        subscribers = [Subscriber(email=options.to, name="", topics=None, line=0)]
    else:
        subscribers = read_subscribers(options.subscribers, set(site.topics.by_slug()), report)
    chosen = edition(site, window, ledger, freeze=real)  # before any message goes out
    sender = parseaddr(config.digest.sender or "")[1]
    outbox = mailbox.Maildir(config.state_dir / "outbox", create=True) if options.dry_run else None
    if mailer is None and not options.dry_run:
        mailer = SmtpMailer(config.smtp, password, Pacing(options.rate))

    if options.to is None:
        # The archive copy: the window as sent (its frozen list), and the index.
        write_digest(site, window, report, candidates=chosen.candidates, late=sorted(chosen.late))
        if window.is_week:
            write_archive_index(site)

    renders: dict[frozenset[str] | None, Rendered | None] = {}

    def rendered_for(topics: frozenset[str] | None) -> Rendered | None:
        if topics not in renders:
            only = sorted(topics) if topics is not None else None
            digest: Digest = plan_digest(config, site.topics, window, chosen.candidates, only, chosen.late)
            renders[topics] = (
                None if digest.empty else render_digest(config, site.topics, digest, window.name)
            )
        return renders[topics]

    sent = ledger.already_sent(window.name) if ledger is not None and options.to is None else set()
    run_id = uuid.uuid4().hex
    in_a_row = 0
    if progress is not None:
        progress.start(f"Sending {window.label}", len(subscribers))
    try:
        for subscriber in subscribers:
            if progress is not None:
                progress.advance()
            address = normalise_address(subscriber.email)
            if ledger is not None and options.to is None:
                reason = ledger.suppression(address)
                if reason is not None and not (reason == "bounced" and options.retry_failed):
                    summary.suppressed += 1
                    continue
                if address in sent:
                    summary.already_sent += 1
                    continue
            rendered = rendered_for(subscriber.topics)
            if rendered is None:
                summary.no_items += 1
                continue
            message_id, data = personalizer.copy(rendered, subscriber)
            if config.dkim is not None:
                from .signing import sign

                data = sign(data, config.dkim)
            if outbox is not None:
                outbox.add(data)
                summary.sent += 1
                continue
            assert mailer is not None
            try:
                mailer.send(sender, subscriber.email, data)
            except RelayError as error:
                summary.aborted = True
                summary.reason = str(error)
                break
            except DeliveryError as error:
                summary.failed += 1
                in_a_row += 1
                where = str(options.subscribers) if options.to is None else "--to"
                fix = "it is retried on the next run"
                if error.permanent and ledger is not None and real:
                    if ledger.record_failure(address, run_id, error.code, error.message, clock()):
                        fix = "3 runs failed for good: now suppressed (--retry-failed overrides)"
                    else:
                        fix = "it is retried on the next run; 3 permanent failures suppress it"
                said = f"the server said {error.code} {error.message}"
                report.error(where, subscriber.line or None, f"{subscriber.email}: {said}; {fix}")
                if in_a_row >= MAX_FAILURES_IN_A_ROW:
                    summary.aborted = True
                    summary.reason = (
                        f"stopped after {summary.failed} failed deliveries, the last 20 in a row; "
                        "check the relay, then run the same command again (it resumes)"
                    )
                    break
                continue
            in_a_row = 0
            summary.sent += 1
            if ledger is not None and real:
                ledger.record_sent(window.name, address, message_id, clock())
    finally:
        if progress is not None:
            progress.finish()
        if mailer is not None:
            mailer.close()
    summary.topic_sets = len(renders)
    summary.seconds = time.monotonic() - started
    return summary
