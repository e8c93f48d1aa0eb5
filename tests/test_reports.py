"""Delivery reports as Postfix, Exim, Microsoft and Gmail send them, ARF complaints,
and the auto-replies that must be ignored, read with the standard library's email package."""

from __future__ import annotations

import base64
import quopri
from pathlib import Path

import pytest

from bulletin.mail.reports import MAX_REPORT_BYTES, ReportError, read_report

from .conftest import DATA

SAMPLES = DATA / "bounces"
TAG = "abcdefghij234567"
MESSAGE_ID = "<digest.1764072058.4711@news.example.org>"


def sample(name: str, recipient: str = "dead@example.com", tag: str = TAG) -> bytes:
    """A report from tests/data/bounces with its placeholders filled in."""
    text = (SAMPLES / name).read_text(encoding="utf-8")
    local = recipient.partition("@")[0]
    filled = text.replace("{TAG}", tag).replace("{RCPT}", recipient).replace("{RCPT_LOCAL}", local)
    return filled.replace("{MSGID}", MESSAGE_ID).replace("\n", "\r\n").encode()


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("postfix-permanent.eml", "permanent", "5.1.1"),
        ("postfix-delayed.eml", "transient", "4.2.2"),
        ("exim-quoted.eml", "permanent", "5.1.1"),
        ("microsoft-ndr.eml", "permanent", "5.1.10"),
        ("gmail-dsn.eml", "permanent", "5.1.1"),
        ("arf-complaint.eml", "complaint", ""),
    ],
)
def test_each_kind_of_report_names_recipient_status_and_original(name: str, kind: str, status: str) -> None:
    report = read_report(sample(name))
    assert report.kind == kind
    (notice,) = report.notices
    assert notice.recipient == "dead@example.com" and notice.status == status
    assert MESSAGE_ID in report.message_ids
    assert f"bounces+{TAG}@news.example.org" in report.envelope
    assert report.date is not None


@pytest.mark.parametrize("host", ["10.4.12.7", "1.2.3.4", "5.6.7.8", "198.51.100.4", "2001:db8::4.2.1.5"])
def test_a_host_address_in_the_explanation_is_not_taken_for_the_status(host: str) -> None:
    """Exim names the remote host before its reply: 10.4.12.7 holds '4.12.7', and
    5.6.7.8 holds '5.6.7', each a status code to a careless search."""
    data = sample("exim-quoted.eml").replace(b"[203.0.113.8]", f"[{host}]".encode())
    report = read_report(data)
    assert report.kind == "permanent"
    assert [notice.status for notice in report.notices] == ["5.1.1"]


@pytest.mark.parametrize(
    ("explanation", "status"),
    [
        ("SMTP error:5.1.1 User unknown", "5.1.1"),  # right after a colon
        ("Status:5.2.2 mailbox full", "5.2.2"),
        ("Reporting-MTA (Exim 4.94.2) said: 550 5.1.1 no such user", "5.1.1"),  # a version first
        ("Postfix 2.10.1 on mx: host said 550-5.7.1 refused", "5.7.1"),
        ("Tried on 4.12.24 10:33, host said: 550 5.1.1 unknown", "5.1.1"),  # a date first
        ("Tried on 4.12.24 10:33: failed for good", ""),  # a date alone is no status code
        ("host [::ffff:5.2.1.3] said: 450 4.2.0 try later", "4.2.0"),
        ("(Exim 4.94.2) said: 550 No such user here", "5.0.0"),  # no code: the reply's class
        ("from 5.12.26 on, host said: 550 User unknown", "5.0.0"),
        ("250 2.1.5 Ok, then 550 5.7.1 rejected", "5.7.1"),  # a success reply is no status
    ],
)
def test_the_status_code_is_the_one_the_explanation_gives(explanation: str, status: str) -> None:
    data = (b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: bounces@news.example.org\r\n"
            b"Subject: Mail delivery failed\r\nX-Failed-Recipients: ann@example.com\r\n\r\n"
            + explanation.encode() + b"\r\n")  # fmt: skip
    (notice,) = read_report(data).notices
    assert notice.status == status


def test_a_vacation_auto_reply_is_ignored_even_with_a_status_code_in_it() -> None:
    report = read_report(sample("vacation.eml"))
    assert report.kind == "ignored"


def test_the_same_report_has_the_same_key() -> None:
    assert read_report(sample("gmail-dsn.eml")).key == read_report(sample("gmail-dsn.eml")).key
    assert read_report(sample("gmail-dsn.eml")).key != read_report(sample("postfix-permanent.eml")).key


def test_a_bounce_without_a_status_code_is_unknown_not_guessed() -> None:
    data = (b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: bounces@news.example.org\r\n"
            b"Subject: Returned mail\r\nX-Failed-Recipients: ann@example.com\r\n\r\nSomething went wrong.\r\n")  # fmt: skip
    assert read_report(data).kind == "unknown"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (sample("postfix-permanent.eml")[:1500], "truncated"),
        (b"\x00\x01 not a message at all", "has no mail headers"),
        (
            b"Subject: x\r\nFrom: a@b.c\r\n\r\n" + b"x" * (MAX_REPORT_BYTES + 1),
            "reports over 10 MB are not read",
        ),
    ],
)
def test_malformed_reports_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        read_report(data)


def test_a_wrong_charset_does_not_stop_the_reading() -> None:
    data = sample("exim-quoted.eml").replace(
        b"Subject: Mail", b"Content-Type: text/plain; charset=klingon\r\nSubject: Mail"
    )
    assert read_report(data).kind == "permanent"


def test_samples_exist(tmp_path: Path) -> None:
    assert len(list(SAMPLES.glob("*.eml"))) == 7


GLOBAL_DSN = """\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: digest@news.example.org
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=utf-8

Your message could not be delivered.
--B
Content-Type: message/global-delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: utf-8; {FINAL}
Original-Recipient: utf-8; carol@b\u00fccher.de
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--B--
"""


@pytest.mark.parametrize("final", ["carol@b\\x{FC}cher.de", "carol@b\u00fccher.de"])
def test_a_recipient_named_in_utf8_is_read_as_written(final: str) -> None:
    """RFC 6533: a global delivery status names the recipient in UTF-8, raw or as \\x{..}
    escapes; it was read as one block (no recipient) or with U+FFFD for each byte."""
    report = read_report(GLOBAL_DSN.replace("{FINAL}", final).replace("\n", "\r\n").encode())
    assert [(n.kind, n.recipient, n.status) for n in report.notices] == [
        ("permanent", "carol@b\u00fccher.de", "5.1.1")
    ]


def test_raw_utf8_in_a_delivery_status_is_not_replaced() -> None:
    data = sample("postfix-permanent.eml", "carol@b\u00fccher.de")
    assert [n.recipient for n in read_report(data).notices] == ["carol@b\u00fccher.de"]


def test_a_global_delivery_status_is_read_for_at_most_a_thousand_recipients() -> None:
    """Its recipient blocks are split by bulletin, not the email package: a report of empty
    blocks up to the 10 MB limit took 17 s and a gigabyte before they were capped."""
    block = "Final-Recipient: utf-8; a{n}@example.org\nAction: failed\nStatus: 5.1.1\n"
    blocks = "\n".join(block.format(n=n) for n in range(5000))
    data = GLOBAL_DSN.replace("Final-Recipient: utf-8; {FINAL}\n", blocks)
    report = read_report(data.replace("\n", "\r\n").encode())
    assert len(report.notices) == 1000
    assert (
        report.notices[0].recipient == "a0@example.org" and report.notices[-1].recipient == "a999@example.org"
    )


def _global(body: str, encoding: str) -> bytes:
    """GLOBAL_DSN with its status part's body written in `encoding` (RFC 6533 §6.2 allows
    base64 and quoted-printable where the path is 7-bit)."""
    raw = body.replace("\n", "\r\n").encode()
    encoded = {"base64": base64.encodebytes(raw), "quoted-printable": quopri.encodestring(raw)}[encoding]
    head, _, _ = GLOBAL_DSN.partition("Reporting-MTA:")
    head = head.replace(
        "Content-Type: message/global-delivery-status\n",
        f"Content-Type: message/global-delivery-status\nContent-Transfer-Encoding: {encoding}\n",
    )
    return head.replace("\n", "\r\n").encode() + encoded + b"\r\n--B--\r\n"


STATUS_BODY = (
    "Reporting-MTA: dns; mx.example.net\n\n\n"  # two blank lines: still one separator
    "Final-Recipient: utf-8; carol@b\u00fccher.de\nAction: failed\nStatus: 5.1.1\n\n \n"
    "Final-Recipient: rfc822; dan@example.org\nAction: failed\nStatus: 5.1.2\n"
)


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_a_global_delivery_status_in_a_transfer_encoding_is_decoded(encoding: str) -> None:
    """The email package parses a message/* part without decoding it: base64 read as no
    recipient at all, quoted-printable as carol@b=C3=BCcher.de."""
    report = read_report(_global(STATUS_BODY, encoding))
    assert [(n.recipient, n.status) for n in report.notices] == [
        ("carol@b\u00fccher.de", "5.1.1"),
        ("dan@example.org", "5.1.2"),
    ]


def test_blank_lines_between_blocks_lose_no_recipient() -> None:
    for kind in ("message/global-delivery-status", "message/delivery-status"):
        data = GLOBAL_DSN.replace("message/global-delivery-status", kind)
        data = data.replace(data[data.index("Reporting-MTA:") : data.index("--B--")], STATUS_BODY + "\n")
        report = read_report(data.replace("\n", "\r\n").encode())
        assert [n.recipient for n in report.notices] == ["carol@b\u00fccher.de", "dan@example.org"], kind


def test_a_plain_delivery_status_is_read_for_at_most_a_thousand_recipients() -> None:
    """The email package made a Message of every block: 10 MB of empty ones took a minute
    and 3 GB."""
    block = "Final-Recipient: rfc822; a{n}@example.org\nAction: failed\nStatus: 5.1.1\n"
    data = GLOBAL_DSN.replace("message/global-delivery-status", "message/delivery-status")
    data = data.replace(
        "Final-Recipient: utf-8; {FINAL}\n", "\n".join(block.format(n=n) for n in range(3000))
    )
    assert len(read_report(data.replace("\n", "\r\n").encode()).notices) == 1000


def test_escapes_are_read_only_for_characters_outside_ascii() -> None:
    data = GLOBAL_DSN.replace("{FINAL}", "\\x{64}ead@example.com\\x{1B}")
    assert [n.recipient for n in read_report(data.encode()).notices] == ["\\x{64}ead@example.com\\x{1B}"]


def test_a_charset_name_with_a_nul_does_not_stop_the_reading() -> None:
    data = (
        b"From: MAILER-DAEMON@mx.example.net\nTo: digest@example.org\n"
        b'Content-Type: text/plain; charset="utf\x00-8"\n\n550 5.1.1 <a@example.org> user unknown\n'
    )
    assert [n.recipient for n in read_report(data).notices] == ["a@example.org"]
