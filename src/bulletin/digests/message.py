"""The digest as an email message: encoded once, personal fields spliced in per subscriber.

The text and HTML parts carry markers where per-subscriber values go (the greeting and the
unsubscribe URL). Both parts are quoted-printable, and each marker stands between two soft
line breaks, so a value can be encoded and spliced in without touching the rest: the same
bytes serve every subscriber of a topic set, and the archive copy.

Only the template can place a marker. The markers are drawn at random when the process
starts, so no item, name or address written before can hold one; the encoded message is cut
at the markers once, and each copy is the pieces joined with its values, so a value spliced
in is never searched for markers again.
"""

from __future__ import annotations

import email.policy
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.quoprimime import body_encode
from email.utils import format_datetime, make_msgid

_RUN = secrets.token_hex(16)
GREETING = f"BULLETIN-SPLICE-GREETING-{_RUN}"
UNSUBSCRIBE = f"BULLETIN-SPLICE-UNSUBSCRIBE-{_RUN}"
MANAGE = f"BULLETIN-SPLICE-MANAGE-{_RUN}"  # the subscriber's own manage page (with [web])
MARKERS = (GREETING, UNSUBSCRIBE, MANAGE)
_FIELDS = {GREETING: "greeting", UNSUBSCRIBE: "unsubscribe", MANAGE: "manage"}
_MARKER = re.compile(f"({GREETING}|{UNSUBSCRIBE}|{MANAGE})")
_MARKER_BYTES = re.compile(_MARKER.pattern.encode())
# The content hash (MIME boundary, the archive copy's Message-ID) sees fixed names in place
# of this run's markers, so the archive copy stays byte-stable from run to run.
_STABLE = {
    GREETING: "BULLETIN-SPLICE-GREETING-7Q2X",
    UNSUBSCRIBE: "BULLETIN-SPLICE-UNSUBSCRIBE-7Q2X",
    MANAGE: "BULLETIN-SPLICE-MANAGE-7Q2X",
}

# Headers are never folded into encoded-words: every List-Unsubscribe URI parses back as
# itself. Lines end in CRLF, as SMTP sends them.
POLICY = email.policy.SMTP.clone(max_line_length=998)
BUDGET = 90_000  # Gmail clips a message at about 102 KB
_SOFT = "=\r\n"
# RFC 2045 caps an encoded line at 76 characters. Each piece ends in a line that a soft break
# ('=') may follow, where a splice point or the part's end comes: one less leaves it room.
_QP_LINE = 75


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
            out.append(body_encode(piece.encode("utf-8").decode("latin-1"), maxlinelen=_QP_LINE, eol="\r\n"))
    return "".join(out)


def _split_keep(text: str, marker: str) -> list[str]:
    parts = text.split(marker)
    out = [parts[0]]
    for part in parts[1:]:
        out.extend((marker, part))
    return out


def fill(text: str, greeting: str, url: str, manage: str | None = None) -> str:
    """`text` with the greeting, the unsubscribe URL and the manage URL (default: the
    unsubscribe one) where the template put their markers."""
    values = {GREETING: greeting, UNSUBSCRIBE: url, MANAGE: url if manage is None else manage}
    return _MARKER.sub(lambda found: values[found.group(1)], text)


def _stable(text: str) -> str:
    return _MARKER.sub(lambda found: _STABLE[found.group(1)], text)


def encode_value(value: str) -> bytes:
    """A spliced value as quoted-printable bytes (soft line breaks inside, none at the end)."""
    if "\r" in value or "\n" in value:
        raise SpliceError(f"{value[:40]!r} contains a line break")
    latin = value.encode("utf-8").decode("latin-1")
    return body_encode(latin, maxlinelen=_QP_LINE, eol="\r\n").encode("ascii")


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
    manage_url: str = ""  # the subscriber's manage page, where the template links it


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A digest message encoded once: common headers, and a body cut where values go."""

    head: bytes  # header lines shared by every copy, each ending in CRLF
    pieces: tuple[bytes, ...]  # everything after the blank line, cut at each splice point
    slots: tuple[tuple[str, bool], ...]  # between pieces n and n+1: (field, in the HTML part)
    digest: str  # a hash of the content: names the archive copy's Message-ID

    def render(self, personal: Personal) -> bytes:
        """One copy of the message, ready for SMTP."""
        values = personal_values(personal)
        body = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            body += (values[slot], piece)
        return self.head + personal_headers(personal) + b"\r\n" + b"".join(body)


def personal_headers(personal: Personal) -> bytes:
    """The header lines of one copy: To, Date, Message-ID, List-Unsubscribe(-Post)."""
    lines = []
    for name, value in (("To", personal.to), ("Date", personal.date),
                        ("Message-ID", personal.message_id),
                        ("List-Unsubscribe", personal.list_unsubscribe)):  # fmt: skip
        if value is None:
            continue
        unfolded = value.replace("\r\n ", "") if name == "To" else value  # To folds its encoded words
        if "\r" in unfolded or "\n" in unfolded:
            raise SpliceError(f"{name} {value[:40]!r} contains a line break")
        lines.append(f"{name}: {value}\r\n".encode())
    if personal.one_click:
        lines.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    return b"".join(lines)


def personal_values(personal: Personal) -> dict[tuple[str, bool], bytes]:
    """Each splice point's value, encoded: (field, in the HTML part) → bytes."""
    url, manage = personal.unsubscribe_url, personal.manage_url or personal.unsubscribe_url
    # The text greeting starts the lede's line: a paragraph of its own, when there is one.
    greeting = encode_value(personal.greeting_text) + (b"\r\n\r\n" if personal.greeting_text else b"")
    return {
        ("greeting", False): greeting,
        ("unsubscribe", False): encode_value(url),
        ("manage", False): encode_value(manage),
        ("greeting", True): encode_value(personal.greeting_html),
        ("unsubscribe", True): encode_value(html.escape(url, quote=True)),
        ("manage", True): encode_value(html.escape(manage, quote=True)),
    }


def encode_parts(text: str, in_html: bool) -> list[bytes | tuple[str, bool]]:
    """`text` as quoted-printable that starts and ends at a line break (soft or hard), cut
    at its splice points: parts encoded once join into a valid body in any order."""
    if not text:
        return []
    data = _qp(text).encode("ascii")
    if not data.endswith(b"\r\n"):
        data += _SOFT.encode()
    cut = _MARKER_BYTES.split(data)
    out: list[bytes | tuple[str, bool]] = []
    for n, chunk in enumerate(cut):
        if n % 2:
            out.append((_FIELDS[chunk.decode()], in_html))
        elif chunk:
            out.append(chunk)
    return out


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
    fields = (subject, sender, reply_to or "", list_id, _stable(text), _stable(html_body))
    digest = hashlib.sha256("\0".join(fields).encode())
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
    # The text part's markers come first, then the HTML part's (each part has its escaping).
    in_text = len(_MARKER.findall(text))
    cut = _MARKER_BYTES.split(body)
    markers = [marker.decode() for marker in cut[1::2]]
    slots = tuple((_FIELDS[marker], n >= in_text) for n, marker in enumerate(markers))
    return MessageTemplate(head + b"\r\n", tuple(cut[0::2]), slots, digest.hexdigest())


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
