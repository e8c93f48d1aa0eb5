"""Delivery reports read with the standard library's `email` package: what a bounce or a
complaint says, before anything is matched to a subscriber.

RFC 3464 delivery status notifications (multipart/report; message/delivery-status, and RFC
6533's message/global-delivery-status, which may name a recipient in UTF-8), RFC 5965
abuse reports (message/feedback-report), and the common bounces that only quote the original
message (Exim's "Mail delivery failed", most MTAs' "Undeliverable"). Anything else, such as a
vacation auto-reply, is "ignored". Nothing is guessed: a bounce without a status code is
"unknown".
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

MAX_REPORT_BYTES = 10 * 1024 * 1024  # a report over this is refused, not parsed

# An enhanced status code (RFC 3463) of a failure: not three numbers of an IP address
# ([10.4.12.7]), nor a version or date after a word ('Exim 4.94.2', 'from 5.12.26'), nor a date
# before its time (4.12.24 10:33). One right after a failure's reply ('550 5.1.1') comes first.
_STATUS = re.compile(r"(?<![\w.])(?<![A-Za-z] )([45])\.(\d{1,3})\.(\d{1,3})(?!\.?\d|\w| \d{1,2}:\d\d)")
_REPLY_STATUS = re.compile(r"\b[45]\d\d[ -]#?([45]\.\d{1,3}\.\d{1,3})(?!\.?\d|\w)")
_DSN_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")  # a DSN's Status field: only the code
_REPLY = re.compile(r"(?:said|error|returned|response was)[^\n]{0,80}?\b([45])(\d\d)[ -]", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_QUOTE_START = re.compile(
    r"^-+ ?(?:This is a copy of|Original message|Undelivered message)", re.IGNORECASE | re.MULTILINE
)
_DAEMONS = ("mailer-daemon", "postmaster", "mail delivery")
# The email package would parse message/delivery-status into a Message per block, however
# many (10 MB of empty blocks: a minute and 3 GB), and message/global-delivery-status as one
# message, never decoding the base64 or quoted-printable RFC 6533 allows it. Both are renamed
# before parsing, to leaves bulletin splits itself, at most _MAX_BLOCKS blocks a report.
_STATUS_TYPE = re.compile(
    rb"^(content-type:[ \t]*(?:\r?\n[ \t]+)?)message/(global-)?delivery-status", re.IGNORECASE | re.MULTILINE
)
_STATUS_LEAF = rb"\1application/x-bulletin-\2delivery-status"
_STATUS_PARTS = ("application/x-bulletin-delivery-status", "application/x-bulletin-global-delivery-status")
_MAX_BLOCKS = 1000  # recipients a report is read for: a digest has one
_UNICODE_CHAR = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")  # RFC 6533's embedded-unicode-char
_ENVELOPE_HEADERS = ("to", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to")


@dataclass(frozen=True, slots=True)
class Notice:
    """One recipient's outcome in a report."""

    kind: str  # "permanent", "transient", "complaint", "ignored" or "unknown"
    recipient: str | None  # as the report names it (Final-Recipient, Original-Rcpt-To…)
    status: str  # "5.1.1", "4.2.2"; "" for complaints
    diagnostic: str


@dataclass(frozen=True, slots=True)
class Report:
    """What a report says: its notices and the clues that name the message it is about."""

    key: str  # the report's own Message-ID, else a hash of its bytes: reading it twice is a no-op
    date: datetime | None
    notices: tuple[Notice, ...]
    message_ids: tuple[str, ...]  # of the original message
    envelope: tuple[str, ...]  # addresses the report was sent to (the VERP return path)

    @property
    def kind(self) -> str:
        kinds = {notice.kind for notice in self.notices}
        for kind in ("complaint", "permanent", "transient", "unknown"):
            if kind in kinds:
                return kind
        return "ignored"


class ReportError(ValueError):
    """The report cannot be read (truncated, too large, not a message)."""


def read_report(data: bytes, envelope: tuple[str, ...] = ()) -> Report:
    """Parse one report; `envelope` adds addresses known to the delivery (e.g. Postfix's
    ORIGINAL_RECIPIENT when a report is piped in)."""
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(
            f"is {len(data) / 1e6:.1f} MB; reports over {MAX_REPORT_BYTES // 2**20} MB are not read"
        )
    message = email.message_from_bytes(_STATUS_TYPE.sub(_STATUS_LEAF, data), policy=email.policy.compat32)
    if not message.keys():
        raise ReportError("has no mail headers, so it is not a mail message")
    key = _header(message, "message-id") or "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        notices, ids = _notices(message)
    except ReportError:
        if _truncated(message):
            raise ReportError("is truncated: its MIME parts end before the report does") from None
        raise
    ids += tuple(_ids(_header(message, "in-reply-to") + " " + _header(message, "references")))
    found = [a for h in _ENVELOPE_HEADERS for _, a in getaddresses(message.get_all(h, []))]
    found += _senders(message)
    return Report(
        key, _date(message), notices, tuple(dict.fromkeys(ids)), tuple(dict.fromkeys([*found, *envelope]))
    )


def _notices(message: Message) -> tuple[tuple[Notice, ...], tuple[str, ...]]:
    content = message.get_content_type()
    param = message.get_param("report-type") if content == "multipart/report" else None
    report_type = param.lower() if isinstance(param, str) else ""
    if report_type in ("delivery-status", "global-delivery-status"):
        return _delivery_status(message)
    if report_type == "feedback-report":
        return _feedback(message)
    if _is_bounce(message):
        return _quoted_bounce(message)
    return (Notice("ignored", None, "", "not a delivery report (an auto-reply or other mail)"),), ()


def _senders(message: Message) -> list[str]:
    """The original envelope sender, where a report repeats it (the VERP return path)."""
    found = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in (*_STATUS_PARTS, "message/feedback-report", "message/rfc822"):
            for block in _status_blocks(part, 0) if kind in _STATUS_PARTS else _blocks(part)[:1]:
                for name in ("x-postfix-sender", "original-mail-from", "return-path"):
                    address = _address_field(_header(block, name))
                    if address:
                        found.append(address)
    return found


def _truncated(message: Message) -> bool:
    names = {"StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect"}
    return any(type(defect).__name__ in names for part in message.walk() for defect in part.defects)


def _is_bounce(message: Message) -> bool:
    sender = _header(message, "from").lower()
    return bool(message.get("x-failed-recipients")) or any(d in sender for d in _DAEMONS)


def _delivery_status(message: Message) -> tuple[tuple[Notice, ...], tuple[str, ...]]:
    notices: list[Notice] = []
    ids: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in _STATUS_PARTS:
            blocks = _status_blocks(part)
            if not blocks:
                raise ReportError("has an empty delivery-status part")
            ids += _ids(_header(blocks[0], "x-original-message-id"))
            room = _MAX_BLOCKS - len(notices)
            notices += [_dsn_notice(block) for block in blocks[1:] if block.get("final-recipient")][:room]
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            ids += _original_ids(part)
    if not notices:
        raise ReportError("has a delivery-status part naming no recipient")
    return tuple(notices), tuple(ids)


def _dsn_notice(block: Message) -> Notice:
    recipient = _address_field(_header(block, "final-recipient") or _header(block, "original-recipient"))
    action = _header(block, "action").lower()
    status = _DSN_STATUS.search(_header(block, "status"))
    code = status.group(0) if status else ""
    diagnostic = " ".join(_header(block, "diagnostic-code").split())
    if action in ("delivered", "relayed", "expanded"):
        return Notice("ignored", recipient, code, diagnostic)
    if action == "delayed" or code.startswith("4"):
        return Notice("transient", recipient, code, diagnostic)
    if action == "failed" and code.startswith("5"):
        return Notice("permanent", recipient, code, diagnostic)
    return Notice("unknown", recipient, code, diagnostic or f"action {action or 'missing'}")


def _feedback(message: Message) -> tuple[tuple[Notice, ...], tuple[str, ...]]:
    notices: list[Notice] = []
    ids: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/feedback-report":
            fields = _blocks(part)
            block = fields[0] if fields else part
            feedback = _header(block, "feedback-type").lower()
            recipient = _address_field(
                _header(block, "original-rcpt-to") or _header(block, "removal-recipient")
            )
            kind_of = "ignored" if feedback in ("not-spam", "") else "complaint"
            notices.append(Notice(kind_of, recipient, "", f"feedback-type {feedback or 'missing'}"))
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            ids += _original_ids(part)
    if not notices:
        raise ReportError("is a feedback report without its message/feedback-report part")
    return tuple(notices), tuple(ids)


def _quoted_bounce(message: Message) -> tuple[tuple[Notice, ...], tuple[str, ...]]:
    text = _text(message)
    split = _QUOTE_START.search(text)
    explanation, quoted = (text[: split.start()], text[split.start() :]) if split else (text, "")
    ids = _original_ids_in(quoted or text)
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            ids += _original_ids(part)
    failed = [a for _, a in getaddresses(message.get_all("x-failed-recipients", []))]
    recipients = failed or _ADDRESS.findall(explanation)[:1]
    status = _REPLY_STATUS.search(explanation)
    if status is not None:
        found = status.group(1)
    else:
        loose = _STATUS.search(explanation)
        found = loose.group(0) if loose else ""
    reply = _REPLY.search(explanation)
    code = found or (f"{reply.group(1)}.0.0" if reply else "")
    line = next(
        (line.strip() for line in explanation.splitlines() if code[:1] and re.search(r"\b[45]\d\d\b", line)),
        "",
    )
    kind = {"5": "permanent", "4": "transient"}.get(code[:1], "unknown")
    notices = [Notice(kind, recipient, code, line) for recipient in recipients] or [
        Notice("unknown", None, code, line)
    ]
    return tuple(notices), tuple(ids)


def _text(message: Message) -> str:
    """The plain-text parts (or the body) of a message, decoded leniently."""
    pieces = []
    for part in message.walk():
        if part.get_content_maintype() == "multipart" or part.get_content_type() != "text/plain":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                pieces.append(payload.decode(charset, errors="replace"))
            except (LookupError, ValueError):  # an unknown charset name, or one with a NUL in it
                pieces.append(payload.decode("utf-8", errors="replace"))
    return "\n".join(pieces)


def _original_ids(part: Message) -> list[str]:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/rfc822: the original message itself
        return [i for inner in _blocks(part) for i in _ids(_header(inner, "message-id"))]
    if isinstance(payload, str):  # text/rfc822-headers
        return _original_ids_in(payload)
    return []


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a message/* part the email package parsed (feedback-report,
    rfc822); delivery-status parts are split by _status_blocks."""
    payload = part.get_payload()
    return [block for block in payload if isinstance(block, Message)] if isinstance(payload, list) else []


def _status_blocks(part: Message, recipients: int = _MAX_BLOCKS) -> list[Message]:
    """A delivery-status part's blocks: the report's, then one per recipient, at most
    `recipients` of those (0: the report's block alone, which names the sender); read as
    UTF-8, which RFC 6533's global form is and RFC 3464's ASCII is part of."""
    body = part.get_payload(decode=True)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else ""
    text = text.replace("\r\n", "\n").strip("\n")
    pieces = re.split(r"\n(?:[ \t]*\n)+", text, maxsplit=recipients + 1)[: recipients + 1]
    return [
        email.message_from_string(piece, policy=email.policy.compat32) for piece in pieces if piece.strip()
    ]


def _original_ids_in(text: str) -> list[str]:
    return [match.group(1) for match in _MESSAGE_ID.finditer(text)]


def _ids(value: str) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value)


def _address_field(value: str) -> str | None:
    """`rfc822; ann@example.org` → ann@example.org; `utf-8; carol@b\\x{FC}cher.de` →
    carol@bücher.de."""
    _, _, address = value.rpartition(";")
    address = _UNICODE_CHAR.sub(_unicode_char, address.strip().strip("<>").strip())
    return address or None


def _unicode_char(found: re.Match[str]) -> str:
    """One \\x{..} escape as its character: only those outside ASCII, as RFC 6533 writes them."""
    code = int(found.group(1), 16)
    return chr(code) if 0x80 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else found.group(0)


def _header(message: Message, name: str) -> str:
    """The first `name` field's value on one line; raw 8-bit bytes in it (which the email
    package keeps as surrogates, and shows as U+FFFD) read as UTF-8."""
    for key, value in message.raw_items():
        if key.lower() == name:
            text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            return " ".join(text.split())
    return ""


def _date(message: Message) -> datetime | None:
    try:
        return parsedate_to_datetime(_header(message, "date"))
    except (TypeError, ValueError, IndexError):
        return None
