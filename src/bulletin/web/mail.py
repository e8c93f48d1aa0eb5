"""The confirmation mail: a small multipart message with the digest's look, over [smtp]."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from ..addresses import valid_address
from ..config import Config
from ..digests.message import POLICY
from ..digests.personal import sender_domain
from ..mail.mailer import SmtpMailer
from ..templates import environment


def confirmation(config: Config, email: str, link: str, *, manage: bool, context: dict[str, Any]) -> bytes:
    """The message asking `email` to confirm (or, when already subscribed, its manage link)."""
    if not valid_address(email):  # one a mail program would read as another, or as several
        raise ValueError(f"{email!r} is not an address to mail")
    subject = (
        f"Your subscription to {config.title}" if manage else f"Confirm your subscription to {config.title}"
    )
    env = environment(config)
    values = {**context, "subject": subject, "link": link, "manage": manage}
    values["hours"] = config.confirm_hours
    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject
    message["From"] = config.digest.sender or f"{config.title} <news@{sender_domain(config)}>"
    message["Date"] = format_datetime(context["now"])
    message["Message-ID"] = make_msgid("confirm", domain=sender_domain(config))
    message.set_content(env.get_template("confirm_mail.txt.j2").render(values), cte="quoted-printable")
    message.add_alternative(
        env.get_template("confirm_mail.html.j2").render(values), subtype="html", cte="quoted-printable"
    )
    # To: the address alone (a name typed into a form never reaches a header), written as it
    # is, as the digests write theirs. Set through the message, it would be parsed, and an
    # encoded word in it decoded into whatever addresses it spells.
    data = f"To: {email}\r\n".encode("ascii") + message.as_bytes(policy=POLICY)
    if config.dkim is not None:
        from ..mail.signing import sign

        data = sign(data, config.dkim)
    return data


def open_relay(config: Config, password: str | None) -> SmtpMailer:
    """A connection to the relay, logged in as configured; RelayError when it cannot be used."""
    mailer = SmtpMailer(config.smtp, password, retries=1, backoff=0.5, timeout=15)
    mailer.connect()
    return mailer


def send_confirmation(mailer: SmtpMailer, config: Config, email: str, data: bytes) -> None:
    """Hand the message to the relay once; RelayError or DeliveryError when it cannot."""
    mailer.send(parseaddr(config.digest.sender or "")[1], email, data)
