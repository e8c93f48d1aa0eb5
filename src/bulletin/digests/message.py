"""The digest as an email message: encoded once, personal fields spliced in per subscriber.

The text and HTML parts carry markers where per-subscriber values go (the greeting and the
unsubscribe URL). Both parts are quoted-printable, and each marker stands between two soft
line breaks, so a value can be encoded and spliced in without touching the rest: the same
bytes serve every subscriber of a topic set, and the archive copy.
"""

from __future__ import annotations

import email.policy
import hashlib
import html
from dataclasses import dataclass
from datetime import datetime
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.quoprimime import body_encode
from email.utils import format_datetime, make_msgid

GREETING = "BULLETIN-SPLICE-GREETING-7Q2X"
UNSUBSCRIBE = "BULLETIN-SPLICE-UNSUBSCRIBE-7Q2X"
MARKERS = (GREETING, UNSUBSCRIBE)

# Headers are never folded into encoded-words: every List-Unsubscribe URI parses back as
# itself. Lines end in CRLF, as SMTP sends them.
POLICY = email.policy.SMTP.clone(max_line_length=998)
BUDGET = 90_000  # Gmail clips a message at about 102 KB
_SOFT = "=\r\n"


class SpliceError(ValueError):
    """A per-subscriber value would break the message (it holds a CR or LF)."""


def _qp(text: str) -> str:
    """Quoted-printable for `text`, each marker isolated between soft line breaks."""
    pieces = [text]
    for marker in MARKERS:
        pieces = [part for piece in pieces for part in _split_keep(piece, marker)]
    out = []
    for piece in pieces:
        if piece in MARKERS:
            out.append(_SOFT + piece + _SOFT)
        elif piece:
            out.append(body_encode(piece.encode("utf-8").decode("latin-1"), maxlinelen=76, eol="\r\n"))
    return "".join(out)


def _split_keep(text: str, marker: str) -> list[str]:
    parts = text.split(marker)
    out = [parts[0]]
    for part in parts[1:]:
        out.extend((marker, part))
    return out


def encode_value(value: str) -> bytes:
    """A spliced value as quoted-printable bytes (soft line breaks inside, none at the end)."""
    if "\r" in value or "\n" in value:
        raise SpliceError(f"{value[:40]!r} contains a line break")
    return body_encode(value.encode("utf-8").decode("latin-1"), maxlinelen=76, eol="\r\n").encode("ascii")


@dataclass(frozen=True, slots=True)
class Personal:
    """What differs per copy of a digest message."""

    greeting_html: str  # already HTML (escaped); "" for the archive copy
    greeting_text: str
    unsubscribe_url: str
    list_unsubscribe: str  # the header's value: "<mailto:...>, <https://...>"
    one_click: bool  # add List-Unsubscribe-Post (a personal copy only)
    message_id: str
    date: str
    to: str | None = None


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A digest message encoded once: common headers and a body with markers."""

    head: bytes  # header lines shared by every copy, each ending in CRLF
    body: bytes  # everything after the blank line, markers included
    digest: str  # a hash of the content: names the archive copy's Message-ID

    def render(self, personal: Personal) -> bytes:
        """One copy of the message, ready for SMTP."""
        lines = []
        for name, value in (("To", personal.to), ("Date", personal.date),
                            ("Message-ID", personal.message_id),
                            ("List-Unsubscribe", personal.list_unsubscribe)):  # fmt: skip
            if value is None:
                continue
            if "\r" in value or "\n" in value:
                raise SpliceError(f"{name} {value[:40]!r} contains a line break")
            lines.append(f"{name}: {value}\r\n".encode())
        if personal.one_click:
            lines.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        # Markers appear in the text part first, then in the HTML part; each part has
        # its own escaping, so split the body at the HTML part's headers.
        text_part, html_part = self.body.split(b"Content-Type: text/html", 1)
        url = personal.unsubscribe_url
        text_part = self._fill(text_part, personal.greeting_text, url)
        html_part = self._fill(html_part, personal.greeting_html, html.escape(url, quote=True))
        return self.head + b"".join(lines) + b"\r\n" + text_part + b"Content-Type: text/html" + html_part

    @staticmethod
    def _fill(part: bytes, greeting: str, url: str) -> bytes:
        part = part.replace(GREETING.encode(), encode_value(greeting))
        return part.replace(UNSUBSCRIBE.encode(), encode_value(url))


def build_template(
    *,
    subject: str,
    sender: str,
    reply_to: str | None,
    list_id: str,
    list_name: str,
    text: str,
    html_body: str,
) -> MessageTemplate:
    """Encode the common part of a digest message; the MIME boundary derives from the content."""
    digest = hashlib.sha256("\0".join((subject, sender, reply_to or "", list_id, text, html_body)).encode())
    boundary = "==bulletin-" + digest.hexdigest()[:32]
    root = MIMEMultipart("alternative", boundary=boundary, policy=POLICY)
    root["Subject"] = subject
    root["From"] = sender
    if reply_to:
        root["Reply-To"] = reply_to
    root["List-Id"] = f"{_phrase(list_name)} <{list_id}>"
    for subtype, content in (("plain", text), ("html", html_body)):
        part = MIMENonMultipart("text", subtype, charset="utf-8", policy=POLICY)
        del part["MIME-Version"]
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(_qp(content))
        root.attach(part)
    data = root.as_bytes(policy=POLICY)
    head, body = data.split(b"\r\n\r\n", 1)
    return MessageTemplate(head + b"\r\n", body, digest.hexdigest())


def _phrase(name: str) -> str:
    """A display name for List-Id: ASCII quoted, anything else as an RFC 2047 encoded word."""
    from email.header import Header

    if name.isascii():
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return Header(name, "utf-8").encode()


def archive_personal(
    template: MessageTemplate, manage_url: str, mailto: str | None, end: datetime, domain: str
) -> Personal:
    """The non-personal copy kept in emails/: no greeting, no token, no one-click header."""
    targets = ([f"<mailto:{mailto}>"] if mailto else []) + [f"<{manage_url}>"]
    return Personal(
        greeting_html="",
        greeting_text="",
        unsubscribe_url=manage_url,
        list_unsubscribe=", ".join(targets),
        one_click=False,
        message_id=f"<digest-{template.digest[:32]}@{domain}>",
        date=format_datetime(end),
    )


def fresh_message_id(domain: str) -> str:
    return make_msgid("digest", domain=domain)
