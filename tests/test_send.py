"""Sending over a real SMTP server on 127.0.0.1 — once each, resumable, no item lost."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, getaddresses
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bulletin.cli import main
from bulletin.digests.message import BUDGET
from bulletin.digests.windows import iso_week
from bulletin.errors import RefusedError
from bulletin.ledger import Ledger
from bulletin.mail.mailer import SmtpMailer
from bulletin.mail.send import SendOptions, send_digest
from bulletin.report import Report
from bulletin.site.reader import read_site
from bulletin.tokens import make_purpose_token, make_token, verify_unsubscribe_token

from .conftest import Counter, SiteMaker
from .smtp import Script, SilentRelay, SmtpServer, free_port

SECRET = "test-secret-0123456789"
NOW = "2026-11-25T12:00"
MAIL = {
    "from": "Health Weekly <digest@news.example.org>",
    "address": "100 Main Street, Springfield",
    "unsubscribe_mailto": "unsubscribe@news.example.org",
    "unsubscribe_url": "https://news.example.org/u?t={token}",
}


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", SECRET)
    monkeypatch.delenv("BULLETIN_SMTP_PASSWORD", raising=False)


def make_site(site: SiteMaker, port: int) -> SiteMaker:
    site.write_config(timezone="UTC", digest=dict(MAIL), smtp={"host": "127.0.0.1", "port": port})
    items = [
        ("a1", "2026-11-16", ["Alpha"]),
        ("a2", "2026-11-18", ["Alpha", "Beta"]),
        ("b1", "2026-11-17", ["Beta"]),
        ("g1", "2026-11-19", ["Gamma"]),
        ("n1", "2026-11-20", []),
        ("old", "2026-11-05", ["Alpha"]),
    ]
    for item_id, date, topics in items:
        site.item(
            f"{item_id}.md",
            id=item_id,
            title=f"Title {item_id}",
            date=date,
            categories=topics,
            href=f"https://src.example/{item_id}",
        )
    return site


def subscribers(site: SiteMaker, rows: list[str]) -> Path:
    path = site.root / "subscribers.csv"
    path.write_text("email,name,topics\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def cli(site: SiteMaker, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--site", str(site.root), "--now", NOW], catch_exceptions=False)


def _text(data: bytes) -> str:
    import email
    import email.policy

    message = email.message_from_bytes(data, policy=email.policy.default)
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr, no-any-return]


def test_each_subscriber_gets_one_message_with_their_topics(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(
            site, ["ann@example.org,Ann,", "bob@Example.ORG,Bob,alpha", "cy@example.org,,beta;gamma"]
        )
        result = cli(site, "send", "--subscribers", str(path), "--new-ledger")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(
            "send 2026-W47: 3 sent, 0 already sent, 0 suppressed, 0 with no items, 0 failed, "
        )
        received = server.handler
        assert sorted(r.recipient for r in received.received) == [  # 4 connections: any order
            "ann@example.org",
            "bob@example.org",
            "cy@example.org",
        ]
        assert sorted(_sections(received.to("ann@example.org")[0].data)) == [
            "Alpha",
            "Beta",
            "Gamma",
            "Other",
        ]
        assert _sections(received.to("bob@example.org")[0].data) == ["Alpha"]
        assert sorted(_sections(received.to("cy@example.org")[0].data)) == ["Beta", "Gamma"]
        assert "Title a2" in _text(received.to("bob@example.org")[0].data)
        assert "Title b1" not in _text(received.to("bob@example.org")[0].data)
        assert "Title old" not in _text(received.to("ann@example.org")[0].data)
        # the archive copy was written as sent
        assert (site.root / "emails/2026-W47/digest.eml").exists()
        # a second identical run sends nothing
        again = cli(site, "send", "--subscribers", str(path))
        assert again.exit_code == 0
        assert "0 sent, 3 already sent" in again.stdout
        assert len(received.received) == 3


def _sections(data: bytes) -> list[str]:
    return re.findall(r"^== (.+) ==$", _text(data).replace("\r\n", "\n"), re.M)


def test_the_personal_copy(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ['ann+news@example.org,"Ann <b>& Ö</b>",', "bob@example.org,,"])
        assert cli(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
        ann, bob = (server.handler.to(a)[0] for a in ("ann+news@example.org", "bob@example.org"))
        message = ann.message
        assert message["To"].addresses[0].addr_spec == "ann+news@example.org"
        assert message["To"].addresses[0].display_name == "Ann <b>& Ö</b>"
        token = make_token("ann+news@example.org", SECRET, "test-news.news.example.org")
        url = f"https://news.example.org/u?t={token}"
        raw_header = re.search(rb"\r\nList-Unsubscribe: ([^\r\n]*)\r\n", ann.data)
        assert raw_header is not None
        assert re.findall(rb"<([^>]*)>", raw_header.group(1)) == [
            b"mailto:unsubscribe@news.example.org",
            url.encode(),
        ]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Hi Ann &lt;b&gt;&amp; Ö&lt;/b&gt;," in html
        # The greeting is a paragraph of its own, as in the HTML part (it used to run into the
        # title line above and the summary below).
        assert re.search(r"2026\r?\n\r?\nHi Ann <b>& Ö</b>,\r?\n\r?\n\d+ items? in ", text), text[:300]
        assert f'href="{url}"' in html and url in text
        assert "\nHello,\r\n\r\n" in bob.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert message["Message-ID"] != bob.message["Message-ID"]
        assert verify_unsubscribe_token(token, SECRET, "test-news.news.example.org") == "ann+news@example.org"
        assert len(ann.data) <= BUDGET
        for data in (ann.data, bob.data):
            assert b"BULLETIN-SPLICE" not in data


MALLORY = "=?utf-8?b?" + base64.b64encode(b"Mallory <mallory@evil.example>").decode() + "?="


@pytest.mark.parametrize(
    "name",
    [
        MALLORY,
        f"Jörg {MALLORY}",
        "=?iso-8859-1?q?Mallory_=3Cmallory=40evil.example=3E?=",
        '"Eve" <eve@evil.example>, x',
        'back\\slash "quoted"',
        "Zoë " * 24 + "Zoë",  # several encoded words, none over 75 characters
    ],
    ids=["encoded-word", "non-ascii-and-encoded-word", "q-encoded-word", "addresses", "quotes", "long"],
)
def test_a_name_in_to_is_always_just_a_name(site: SiteMaker, name: str) -> None:
    import csv
    import io

    with SmtpServer() as server:
        make_site(site, server.port)
        row = io.StringIO()
        csv.writer(row, lineterminator="").writerow(["bob@example.org", name, ""])
        path = subscribers(site, [row.getvalue()])
        assert cli(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
        [received] = server.handler.received
    from email.header import decode_header, make_header

    raw_to = re.search(rb"\r\nTo: ((?:[^\r\n]|\r\n )*)\r\n", received.data)  # folded lines too
    assert raw_to is not None and raw_to.group(1).isascii()
    lines = f"To: {raw_to.group(1).decode()}".split("\r\n")
    assert all(len(line) <= 76 for line in lines if "=?" in line), lines  # RFC 2047
    # decoded as a mail client shows it, the header holds one address: the subscriber's
    decoded = str(make_header(decode_header(raw_to.group(1).decode())))
    assert [address for _, address in getaddresses([decoded])] == ["bob@example.org"], decoded
    # The name reads back as itself. (Not through email.policy.default, which keeps the space
    # between two encoded words that RFC 2047 says to drop: a long name is several words.)
    if name.isascii() and "=?" not in name:  # a phrase, quoted
        assert decoded == formataddr((name, "bob@example.org"))
    else:
        assert decoded == f"{name} <bob@example.org>"


def test_inlining_runs_a_fixed_number_of_times_whatever_the_subscribers(
    site: SiteMaker, premailer_runs: Counter
) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        rows = [f"s{n}@example.org,S{n},{['', 'alpha', 'beta;gamma'][n % 3]}" for n in range(60)]
        path = subscribers(site, rows)
        before = premailer_runs.count
        result = cli(site, "send", "--subscribers", str(path), "--new-ledger")
        assert result.exit_code == 0, result.output
        # the archive copy, the parts once, two copies checked against full renders: never 60
        # (tests/test_assemble.py: the same with 40 topic sets)
        assert premailer_runs.count - before == 4
        assert len(server.handler.received) == 60


def _send(site: SiteMaker, path: Path, **options: object):  # type: ignore[no-untyped-def]
    config = site.config()
    built = read_site(config, Report(), datetime(2026, 11, 25, 12, tzinfo=UTC))
    report = Report()
    opts = SendOptions(subscribers=path, window=iso_week("2026-W47", config.timezone), **options)  # type: ignore[arg-type]
    mailer = SmtpMailer(config.smtp, None, backoff=0.01)
    return send_digest(built, opts, report, SECRET, None, mailer=mailer), report


def test_a_deferral_is_retried(site: SiteMaker) -> None:
    with SmtpServer(
        Script(rcpt={"bob@example.org": ["451 4.3.0 try later", "451 4.3.0 try later"]})
    ) as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,", "bob@example.org,,"])
        summary, report = _send(site, path, new_ledger=True)
        assert (summary.sent, summary.failed) == (2, 0)
        assert sorted(r.recipient for r in server.handler.received) == ["ann@example.org", "bob@example.org"]
        assert report.problems == []


def test_a_refusal_fails_one_and_the_others_are_delivered(site: SiteMaker) -> None:
    with SmtpServer(Script(rcpt={"bob@example.org": ["550 5.1.1 no such user"]})) as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,", "bob@example.org,,", "cy@example.org,,"])
        result = cli(site, "send", "--subscribers", str(path), "--new-ledger")
        assert result.exit_code == 1
        assert "2 sent, 0 already sent, 0 suppressed, 0 with no items, 1 failed" in result.stdout
        assert result.stderr == (
            f"{path}:3: error: bob@example.org: the server said 550 5.1.1 no such user; "
            "it is retried on the next run; 3 permanent failures suppress it\n"
        )
        assert sorted(r.recipient for r in server.handler.received) == ["ann@example.org", "cy@example.org"]


def test_three_permanent_failures_on_separate_runs_suppress(site: SiteMaker) -> None:
    with SmtpServer(Script(rcpt={"bob@example.org": ["550 no"] * 4})) as server:
        make_site(site, server.port)
        path = subscribers(site, ["bob@example.org,,"])
        for run in range(3):
            summary, report = _send(site, path, new_ledger=run == 0)
            assert summary.failed == 1
        assert "now suppressed (--retry-failed overrides)" in str(report.problems[-1])
        summary, _ = _send(site, path)
        assert (summary.suppressed, summary.failed) == (1, 0)
        summary, _ = _send(site, path, retry_failed=True)
        assert (summary.suppressed, summary.failed) == (0, 1)


def test_status_shows_subscribers_suppressed_by_failed_sends(site: SiteMaker) -> None:
    """They stayed 'active' in status, and the runs that skipped them were not listed."""
    with SmtpServer(Script(rcpt={"bob@example.org": ["550 5.1.1 no such user"] * 4})) as server:
        make_site(site, server.port)
        assert cli(site, "subscribers", "add", "ann@example.org", "--new-ledger").exit_code == 0
        assert cli(site, "subscribers", "add", "bob@example.org").exit_code == 0
        for _ in range(3):
            assert cli(site, "send").exit_code == 1
        lines = cli(site, "status").stdout.splitlines()
        assert "  active             2" in lines
        assert (
            "  (1 active but suppressed: three sends failed for good; send skips them, send "
            "--retry-failed tries them again)"
        ) in lines
        exported = cli(site, "subscribers", "export").stdout.splitlines()
        assert [line.split(",")[3] for line in exported[1:]] == ["active", "bounced"]  # not mailed elsewhere


def test_the_server_dropping_the_connection(site: SiteMaker) -> None:
    with SmtpServer(Script(hang_up_after=2)) as server:
        make_site(site, server.port)
        path = subscribers(site, [f"s{n}@example.org,,alpha" for n in range(5)])
        summary, report = _send(site, path, new_ledger=True)
        assert (summary.sent, summary.failed) == (5, 0), report.problems
        assert sorted(r.recipient for r in server.handler.received) == [f"s{n}@example.org" for n in range(5)]
        assert server.handler.connections == 2


@pytest.mark.parametrize("connections", [1, 4])
def test_a_connection_lost_after_the_whole_message_is_not_sent_again(
    site: SiteMaker, connections: int
) -> None:
    """The relay took the message, then the connection dropped before its answer: it used to
    be sent again at once, up to 4 copies in one run. Now it fails, once a run: the next run
    sends it again (the relay may not have it: a message counted sent must be acknowledged)."""
    rows = [f"s{n}@example.org,," for n in range(6)]
    with SmtpServer(Script(drop_after_data={"s2@example.org"})) as server:
        make_site(site, server.port)
        path = subscribers(site, rows)
        args = ("send", "--subscribers", str(path), "--connections", str(connections))
        result = cli(site, *args, "--new-ledger")
        assert result.exit_code == 1, result.output
        assert sorted(r.recipient for r in server.handler.received) == [f"s{n}@example.org" for n in range(6)]
        assert "s2@example.org: the server said 421 connection lost after the whole message went out" in (
            result.stderr
        )
        again = cli(site, *args)
        assert "0 sent, 5 already sent" in again.stdout and "1 failed" in again.stdout
        assert len(server.handler.to("s2@example.org")) == 2  # one a run


@pytest.mark.parametrize("connections", [1, 4])
def test_twenty_failures_in_a_row_stop_the_run(site: SiteMaker, connections: int) -> None:
    rows = [f"s{n:02d}@example.org,," for n in range(25)]
    with SmtpServer(Script(rcpt={f"s{n:02d}@example.org": ["550 no"] for n in range(25)})) as server:
        make_site(site, server.port)
        path = subscribers(site, rows)
        result = cli(
            site, "send", "--subscribers", str(path), "--new-ledger", "--connections", str(connections)
        )
        assert result.exit_code == 3
        # The breaker is global: with N connections, at most N - 1 messages under way end after it.
        failed = int(re.search(r"(\d+) failed", result.stdout).group(1))  # type: ignore[union-attr]
        assert 20 <= failed <= 20 + connections - 1
        assert "0 sent, 0 already sent, 0 suppressed, 0 with no items" in result.stdout
        # the summary says how many the run never came to (or broke off), which the next run mails
        assert f"{failed} failed, {25 - failed} not reached, " in result.stdout
        assert result.stderr.endswith(
            "bulletin: stopped after 20 failed deliveries in a row (the summary counts those under "
            "way then too); check the relay, then run the same command again (it resumes)\n"
        )


def test_failures_that_stop_the_run_do_not_count_toward_suppression(site: SiteMaker) -> None:
    first = [f"s{n:02d}@example.org" for n in range(20)]
    # A relay refusing everything for three runs, then healthy again.
    with SmtpServer(
        Script(rcpt={address: ["554 5.7.1 relay access denied"] * 3 for address in first})
    ) as server:
        make_site(site, server.port)
        path = subscribers(site, [f"s{n:02d}@example.org,," for n in range(25)])
        for number in range(3):
            new = ["--new-ledger"] if number == 0 else []
            result = cli(site, "send", "--subscribers", str(path), "--connections", "1", *new)
            assert result.exit_code == 3
            assert "0 sent, 0 already sent, 0 suppressed, 0 with no items, 20 failed" in result.stdout
            # each failure is still reported, saying why it does not count
            assert result.stderr.count("error: ") == 20
            assert (
                f"{path}:2: error: s00@example.org: the server said 554 5.7.1 relay access denied; "
                "it is retried on the next run; not counted toward suppression: the run stopped "
                "after 20 failures in a row, so the relay is the likely cause\n" in result.stderr
            )
        with Ledger.open(site.root / ".bulletin/ledger.sqlite") as ledger:
            assert ledger.suppressed() == {} and ledger.failures("s00@example.org") == 0
        healthy = cli(site, "send", "--subscribers", str(path))
        assert healthy.exit_code == 0, healthy.output
        assert sorted(r.recipient for r in server.handler.received) == [
            f"s{n:02d}@example.org" for n in range(25)
        ]


def test_failures_before_a_delivery_count(site: SiteMaker) -> None:
    # Three refusals in a row, then a delivery: the relay works, so the refusals are the
    # addresses' own and count toward suppression.
    with SmtpServer(Script(rcpt={f"s{n}@example.org": ["550 no such user"] for n in range(3)})) as server:
        make_site(site, server.port)
        path = subscribers(site, [f"s{n}@example.org,," for n in range(4)])
        summary, report = _send(site, path, new_ledger=True)
        assert (summary.sent, summary.failed, summary.aborted) == (1, 3, False)
        assert all(str(p).endswith("3 permanent failures suppress it") for p in report.problems)
        with Ledger.open(site.root / ".bulletin/ledger.sqlite") as ledger:
            assert [ledger.failures(f"s{n}@example.org") for n in range(4)] == [1, 1, 1, 0]
        assert len(server.handler.received) == 1


@pytest.mark.parametrize("greet", [True, False], ids=["silent-after-data", "silent-from-the-start"])
def test_a_silent_relay_stops_the_run_at_once(site: SiteMaker, greet: bool) -> None:
    with SilentRelay(greet=greet) as relay:
        make_site(site, relay.port)
        site.write_config(smtp={"host": "127.0.0.1", "port": relay.port, "timeout": 1})
        path = subscribers(site, ["ann@example.org,,", "bob@example.org,,", "cy@example.org,,"])
        started = time.monotonic()
        result = cli(site, "send", "--subscribers", str(path), "--new-ledger", "--connections", "1")
        elapsed = time.monotonic() - started
        assert relay.messages == (1 if greet else 0)  # nobody after the first was tried
    assert result.exit_code == 3
    assert "0 sent, 0 already sent, 0 suppressed, 0 with no items, 0 failed, 3 not reached" in result.stdout
    assert result.stderr == (
        f"bulletin: the relay 127.0.0.1:{relay.port} did not answer within 1 s (smtp.timeout); "
        "check the relay, then run the same command again (it resumes)\n"
    )
    assert elapsed < 8  # one wait of smtp.timeout, not one per retry and subscriber


def test_a_silent_relay_costs_one_timeout(site: SiteMaker) -> None:
    from bulletin.mail.mailer import RelayError

    with SilentRelay() as relay:
        make_site(site, relay.port)
        mailer = SmtpMailer(site.config().smtp, None, backoff=0.5, timeout=1)
        started = time.monotonic()
        with pytest.raises(RelayError):
            mailer.send("digest@news.example.org", "ann@example.org", b"Subject: x\r\n\r\nx\r\n")
        assert time.monotonic() - started < 2.5  # no retry, no back-off
        assert relay.messages == 1


def test_retries_share_one_timeout(site: SiteMaker) -> None:
    from bulletin.mail.mailer import RelayError

    # Each attempt waits 0.6 s for a deferral: the second cannot finish within smtp.timeout.
    with SmtpServer(Script(rcpt={"ann@example.org": ["451 4.3.0 try later"] * 4}, slow=0.6)) as server:
        make_site(site, server.port)
        mailer = SmtpMailer(site.config().smtp, None, backoff=0.01, timeout=1)
        started = time.monotonic()
        with pytest.raises(RelayError, match="did not answer within 1 s"):
            mailer.send("digest@news.example.org", "ann@example.org", b"Subject: x\r\n\r\nx\r\n")
        assert time.monotonic() - started < 2.0  # one retry per 0.6 s deferral on its own timeout: 2.4 s


@pytest.mark.parametrize("connections", [1, 4])
def test_a_killed_run_resumes_without_repeating(site: SiteMaker, connections: int) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        rows = [f"s{n:02d}@example.org,S{n}," for n in range(30)]
        path = subscribers(site, rows)
        command = [
            sys.executable,
            "-m",
            "bulletin",
            "send",
            "--subscribers",
            str(path),
            "--rate",
            "20",
            "--connections",
            str(connections),
            "--site",
            str(site.root),
            "--now",
            NOW,
        ]
        first = subprocess.Popen(
            [*command, "--new-ledger"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while len(server.handler.received) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert 8 <= len(server.handler.received) < 30
        second = subprocess.run(command, capture_output=True, text=True, check=False)
        assert second.returncode == 0, second.stderr
        counts = {f"s{n:02d}@example.org": len(server.handler.to(f"s{n:02d}@example.org")) for n in range(30)}
        assert all(count >= 1 for count in counts.values())
        # at most the messages under way at the kill: one a connection
        assert sum(counts.values()) - 30 <= connections


@pytest.mark.parametrize(
    ("connections", "signum"), [(1, signal.SIGINT), (4, signal.SIGINT), (4, signal.SIGTERM)]
)
def test_ctrl_c_during_a_send_stops_between_messages_and_nobody_gets_two(
    site: SiteMaker, connections: int, signum: int
) -> None:
    """Ctrl-C (twice, as the impatient press it) while the relay takes its time: the messages
    under way finish and are recorded, so the same command sends each remaining one once."""
    with SmtpServer(Script(slow=0.4)) as server:
        make_site(site, server.port)
        people = [f"s{n:02d}@example.org" for n in range(24)]
        path = subscribers(site, [f"{address},," for address in people])
        command = [sys.executable, "-m", "bulletin", "send", "--subscribers", str(path), "--connections",
                   str(connections), "--site", str(site.root), "--now", NOW]  # fmt: skip
        first = _send_in_background([*command, "--new-ledger"])
        deadline = time.monotonic() + 30
        while len(server.handler.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signum)  # most likely while a RCPT waits for its reply
        time.sleep(0.15)
        first.send_signal(signum)  # pressed again: changes nothing
        _, stderr = first.communicate(timeout=30)
        term = signum == signal.SIGTERM  # said as such, and the process ends as killed by it
        assert first.returncode == (-signal.SIGTERM if term else 130), stderr
        sent = len(server.handler.received)
        assert 3 <= sent < 24
        lines = stderr.splitlines()
        assert "bulletin: stopping after the messages under way, so that each is recorded" in stderr
        assert lines[-1] == (
            f"bulletin: {'stopped by SIGTERM' if term else 'interrupted'}: {sent} sent for 2026-W47 "
            f"before the stop, {24 - sent} not reached; the same command sends the rest, to no one twice"
        )  # every message the relay took is counted, so recorded
        status = cli(site, "status")
        why = "stopped by SIGTERM" if term else "interrupted (Ctrl-C)"
        assert f"{sent} sent, 0 already sent, 0 suppressed, 0 failed  STOPPED: {why}" in status.stdout
        second = subprocess.run(command, capture_output=True, text=True, check=False)
        assert second.returncode == 0, second.stderr
        assert f"{24 - sent} sent, {sent} already sent" in second.stdout
        assert sorted(r.recipient for r in server.handler.received) == people  # each exactly once
        # the week's rate is over both runs' messages, not the last run's
        assert "Complaint rate of the last send (2026-W47): 0.00% (0 of 24)" in cli(site, "status").stdout


def _send_in_background(command: list[str]) -> subprocess.Popen[str]:
    # A suite started in the background ignores SIGINT, and the send would inherit that;
    # a handler, unlike SIG_IGN, does not outlive exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_a_message_waits_for_its_turn_sends_it_not(site: SiteMaker) -> None:
    """--rate 0.2: five seconds between messages. Ctrl-C in that wait ends it at once."""
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, [f"s{n:02d}@example.org,," for n in range(5)])
        first = _send_in_background([sys.executable, "-m", "bulletin", "send", "--subscribers", str(path),
                                     "--rate", "0.2", "--connections", "1", "--new-ledger",
                                     "--site", str(site.root), "--now", NOW])  # fmt: skip
        deadline = time.monotonic() + 30
        while not server.handler.received and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        asked = time.monotonic()
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=30)
        assert time.monotonic() - asked < 2.5  # not the rest of the five seconds, and more
        assert first.returncode == 130, stderr
        assert len(server.handler.received) == 1
        assert stderr.splitlines()[-1].startswith("bulletin: interrupted: 1 sent for 2026-W47")


def test_ctrl_c_while_the_relay_is_retried_stops_and_says_why(site: SiteMaker) -> None:
    """A relay that is down is tried again after 2, 4 and 8 s: Ctrl-C ends the waiting, and
    the reason (the relay) is what the run says, not only that it was interrupted."""
    make_site(site, free_port())  # nothing listens there
    path = subscribers(site, ["ann@example.org,,"])
    first = _send_in_background([sys.executable, "-m", "bulletin", "send", "--subscribers", str(path),
                                 "--new-ledger", "--site", str(site.root), "--now", NOW])  # fmt: skip
    time.sleep(1.5)
    asked = time.monotonic()
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=30)
    assert time.monotonic() - asked < 2.5
    assert first.returncode == 3, stderr
    assert "cannot reach the relay 127.0.0.1:" in stderr and "then stopped)" in stderr


def test_a_concurrent_run_is_refused(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,"])
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time; from pathlib import Path; from bulletin.ledger import Ledger;"
                "l = Ledger.open(Path(sys.argv[1]), create=True); l.lock(Path(sys.argv[2]));"
                "print('locked', flush=True); time.sleep(30)",
                str(site.root / ".bulletin/ledger.sqlite"),
                str(site.root / ".bulletin/send.lock"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            result = cli(site, "send", "--subscribers", str(path))
            assert result.exit_code == 3
            lock = site.root / ".bulletin/send.lock"
            assert result.stderr == (
                f"bulletin: another bulletin send holds the lock ({lock}); let it finish, then run again\n"
            )
            assert server.handler.received == []
        finally:
            holder.kill()
            holder.wait()
            if holder.stdout is not None:
                holder.stdout.close()


def test_unsubscribed_addresses_are_not_mailed(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,", "bob@example.org,,"])
        result = cli(site, "unsubscribe", "bob@EXAMPLE.org", "--new-ledger")
        assert (result.exit_code, result.stdout) == (
            0,
            "bob@EXAMPLE.org is not a subscriber; it is suppressed now: send will not mail it, "
            "not even from a --subscribers file\n",
        )
        again = cli(site, "unsubscribe", "bob@example.org")
        assert (
            again.stdout == "bob@example.org is not a subscriber, and is suppressed already (unsubscribed)\n"
        )
        token = make_token("ann@example.org", SECRET, "test-news.news.example.org")
        assert cli(site, "unsubscribe", token).exit_code == 0
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        bad = cli(site, "unsubscribe", forged)
        assert bad.exit_code == 2
        assert "is neither an address nor a valid unsubscribe token for this list" in bad.stderr
        assert "BULLETIN_SECRET is not the secret that signed them" in bad.stderr
        # The whole link, pasted from a digest, as the person forwarded it.
        manage = make_purpose_token("manage", "ann@example.org", SECRET, "test-news.news.example.org")
        for link in (
            f"https://news.example.org/u?t={token}",
            f"<HTTPS://news.example.org/unsubscribe/{token}>",  # from the List-Unsubscribe header
            f"https://news.example.org/manage/{manage}",  # the digest's other link
        ):
            left = cli(site, "unsubscribe", link)
            assert (
                left.stdout
                == "ann@example.org is not a subscriber, and is suppressed already (unsubscribed)\n"
            )
        result = cli(site, "send", "--subscribers", str(path))
        assert "0 sent, 0 already sent, 2 suppressed" in result.stdout
        assert server.handler.received == []


def test_an_unsubscribe_in_capitals_stops_the_mail(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,", "bob@example.org,,", "Cy@Example.org,,"])
        assert cli(site, "unsubscribe", "BOB@EXAMPLE.ORG", "--new-ledger").exit_code == 0
        assert cli(site, "unsubscribe", "cy@example.org").exit_code == 0
        result = cli(site, "send", "--subscribers", str(path))
        assert "1 sent, 0 already sent, 2 suppressed" in result.stdout
        assert [r.recipient for r in server.handler.received] == ["ann@example.org"]


def test_one_address_in_two_spellings_gets_one_copy(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["Bob@example.org,Bob,", "bob@example.org,Bobby,", "ann@example.org,,"])
        result = cli(site, "send", "--subscribers", str(path), "--new-ledger")
        assert result.exit_code == 1  # the repeated row is reported
        assert f"{path}:3: error: bob@example.org is already on line 2" in result.stderr
        assert sorted(r.recipient for r in server.handler.received) == ["Bob@example.org", "ann@example.org"]
        (bob,) = server.handler.to("Bob@example.org")
        assert bob.message["To"].addresses[0].addr_spec == "Bob@example.org"
        # a later run, whatever the spelling, knows the address was mailed
        path = subscribers(site, ["BOB@example.org,,", "ann@example.org,,"])
        assert "0 sent, 2 already sent" in cli(site, "send", "--subscribers", str(path)).stdout
        assert len(server.handler.received) == 2


def test_an_internationalised_domain_is_mailed_in_ascii_from_every_command(site: SiteMaker) -> None:
    """`subscribers add`, `send --to`, `subscribers remove` and `unsubscribe` take
    carol@bücher.de; smtplib, without SMTPUTF8, could send to the punycode domain only."""
    with SmtpServer() as server:
        make_site(site, server.port)
        added = cli(site, "subscribers", "add", "Carol@Bücher.de", "--new-ledger")
        assert added.exit_code == 0 and "added Carol@xn--bcher-kva.de: active" in added.stdout
        assert cli(site, "send").exit_code == 0
        assert cli(site, "send", "--to", "editor@bücher.de").exit_code == 0
        assert [r.recipient for r in server.handler.received] == [
            "Carol@xn--bcher-kva.de",
            "editor@xn--bcher-kva.de",
        ]
        assert server.handler.received[0].message["To"].addresses[0].addr_spec == "Carol@xn--bcher-kva.de"
        left = cli(site, "unsubscribe", "carol@BÜCHER.de")
        assert left.exit_code == 0 and "carol@xn--bcher-kva.de" in left.stdout
        for command in (("subscribers", "add"), ("unsubscribe",), ("send", "--to")):
            refused = cli(site, *command, "jörg@example.org")
            assert refused.exit_code == 2 and "the part before @ must be in ASCII" in refused.stderr
        refused = cli(site, "unsubscribe", "x@bücher.de.")  # named as typed, not as converted
        assert refused.exit_code == 2 and "'x@bücher.de.' is not an email address" in refused.stderr
        assert cli(site, "send", "--to", "editor@bü\ncher.de").exit_code == 2  # never dropped unsaid


def test_an_address_with_an_encoded_word_in_the_ledger_is_not_mailed_and_can_be_removed(
    site: SiteMaker,
) -> None:
    """Taken before such addresses were refused: in To, mail programs would decode it into
    ceo@victim.example and x@example.org."""
    from bulletin.subscriptions import Subscriptions

    forged = "=?utf-8?q?ceo=40victim.example=2C_x?=@example.org"
    with SmtpServer() as server:
        make_site(site, server.port)
        assert cli(site, "subscribers", "add", "ann@example.org", "--new-ledger").exit_code == 0
        with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
            Subscriptions(ledger).add(forged, "", None, datetime(2026, 11, 20, tzinfo=UTC), "web")
        result = cli(site, "send")
        assert result.exit_code == 1 and "1 sent" in result.stdout
        assert (
            f"ledger.sqlite: error: {forged}: not mailed: mail programs would read the '=?' before @ as "
            f"an encoded word and show another address in To; remove it: bulletin subscribers remove "
            f"'{forged}'"
        ) in result.stderr
        [received] = server.handler.received
        assert received.recipient == "ann@example.org"
        assert [a.addr_spec for a in received.message["To"].addresses] == ["ann@example.org"]
        refused = cli(site, "subscribers", "add", forged)
        assert refused.exit_code == 2 and "would read the '=?' before @ as an encoded word" in refused.stderr
        assert "status      active" in cli(site, "subscribers", "show", forged).stdout
        removed = cli(site, "subscribers", "remove", forged)
        assert removed.exit_code == 0 and f"removed {forged}" in removed.stdout
        assert cli(site, "send", "--week", "2026-W47").exit_code == 0


def test_a_to_header_never_holds_an_encoded_word_in_an_address() -> None:
    from bulletin.digests.message import SpliceError
    from bulletin.digests.personal import to_header

    with pytest.raises(SpliceError, match="holds an encoded word"):
        to_header("Ann", "=?utf-8?q?ceo=40victim.example=2C_x?=@example.org")


def test_subscribers_whose_topics_are_all_gone_are_named_in_a_warning(site: SiteMaker) -> None:
    """Their copies would only count as 'with no items', week after week."""
    with SmtpServer() as server:
        make_site(site, server.port)
        for address, topics in (("ann@example.org", "gamma"), ("bob@example.org", "gamma;beta")):
            added = cli(site, "subscribers", "add", address, "--topics", topics, "--new-ledger")
            assert added.exit_code == 0, added.output
        (site.root / "content" / "g1.md").unlink()  # Gamma's only item
        result = cli(site, "send", "--dry-run")
        assert result.exit_code == 0, result.output
        assert "1 with no items" in result.stdout
        assert (
            "warning: 1 active subscriber(s) chose only topics the site no longer has (gamma): they "
            "get no digest until they choose others; `bulletin subscribers list --topic gamma` names them"
        ) in result.stderr


def test_a_sent_week_keeps_its_digest_when_its_items_are_gone(site: SiteMaker) -> None:
    """The archive shows what subscribers got: a week sent keeps its digest in emails/
    after its items are deleted, where an unsent one loses it."""
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,"])
        assert cli(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
    site.item("w48.md", id="w48", title="Title w48", date="2026-11-24", href="https://src.example/w48")
    for name in ("a1", "a2", "b1", "g1", "n1"):
        (site.root / "content" / f"{name}.md").unlink()
    argv = ["build", "--site", str(site.root), "--now", "2026-12-01T12:00"]
    rebuilt = CliRunner().invoke(main, argv)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Title a1" in (site.root / "emails/2026-W47/digest.txt").read_text()
    assert "removed" not in rebuilt.stdout


def test_a_late_item_goes_to_the_next_week_and_no_other(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,"])
        assert cli(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
        # An item dated in W47 arrives after W47 was sent, and one in W48 proper.
        site.item(
            "late.md",
            id="late",
            title="Title late",
            date="2026-11-19",
            categories=["Beta"],
            href="https://src.example/late",
        )
        site.item(
            "w48.md",
            id="w48",
            title="Title w48",
            date="2026-11-24",
            categories=["Beta"],
            href="https://src.example/w48",
        )
        again = CliRunner().invoke(
            main,
            ["send", "--subscribers", str(path), "--site", str(site.root), "--now", "2026-12-01T12:00", "-v"],
        )
        assert again.exit_code == 0, again.output
        assert (
            "late.md: dated 2026-11-19, but its week's digest went out without it: "
            "it goes in 2026-W48's, marked with its date"
        ) in again.output
        assert "w48.md: dated" not in again.output
        w47, w48 = server.handler.to("ann@example.org")
        assert "Title late" not in _text(w47.data)
        text48 = _text(w48.data)
        assert "Title late" in text48 and "Title w48" in text48
        assert "Thursday 19 November 2026" in text48  # marked with its own date
        assert "Title a1" not in text48  # frozen in W47 already
        # W47's archive copy still shows its frozen list, without the late item, even when
        # `build` or `digest` rewrites it later
        assert "Title late" not in (site.root / "emails/2026-W47/digest.txt").read_text()
        for command in (["build"], ["digest", "--week", "2026-W47"]):
            rebuilt = CliRunner().invoke(
                main, [*command, "--site", str(site.root), "--now", "2026-12-01T12:00"]
            )
            assert rebuilt.exit_code == 0, rebuilt.output
            week47 = (site.root / "emails/2026-W47/digest.txt").read_text()
            assert "Title late" not in week47 and "Title a1" in week47
        assert "Title late" in (site.root / "emails/2026-W48/digest.txt").read_text()
        third = CliRunner().invoke(
            main,
            [
                "send",
                "--subscribers",
                str(path),
                "--site",
                str(site.root),
                "--now",
                "2026-12-08T12:00",
                "--week",
                "2026-W49",
            ],
        )
        # W49 has no items of its own, and "late" belongs to W48's frozen list: nothing to send
        assert third.exit_code == 0
        assert "send 2026-W49: 0 sent, 0 already sent, 0 suppressed, 1 with no items" in third.stdout
        assert len(server.handler.to("ann@example.org")) == 2


def test_a_stale_week_needs_force(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,"])
        result = cli(site, "send", "--subscribers", str(path), "--new-ledger", "--week", "2026-W46")
        assert result.exit_code == 3
        assert result.stderr == (
            "bulletin: 2026-W46 ended with 2026-11-15, more than 7 days ago; pass --force to send it anyway\n"
        )
        dry = cli(site, "send", "--subscribers", str(path), "--new-ledger", "--week", "2026-W46", "--dry-run")
        assert dry.exit_code == 0, dry.output  # a dry run mails nobody: an old week is fine to look at
        assert (
            cli(
                site, "send", "--subscribers", str(path), "--new-ledger", "--week", "2026-W46", "--force"
            ).exit_code
            == 0
        )


def test_a_dry_run_writes_the_outbox_and_sends_nothing(site: SiteMaker) -> None:
    import mailbox

    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,", "bob@example.org,,alpha"])
        result = cli(site, "send", "--subscribers", str(path), "--dry-run")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0] == "outbox: .bulletin/outbox/ (empty before this run)"
        assert re.fullmatch(r"  ann@example\.org  \*      5 items  +\d+\.\d kB", lines[1]), lines[1]
        assert re.fullmatch(r"  bob@example\.org  alpha  2 items  +\d+\.\d kB", lines[2]), lines[2]
        assert len(lines[1]) == len(lines[2])  # in columns
        assert lines[3].startswith("send 2026-W47: 2 written to .bulletin/outbox, 0 already sent")
        assert server.handler.received == []
        assert not (site.root / ".bulletin/ledger.sqlite").exists()
        outbox = mailbox.Maildir(site.root / ".bulletin/outbox", create=False)
        messages = sorted(outbox, key=lambda m: m["To"])
        assert [m["To"] for m in messages] == ["ann@example.org", "bob@example.org"]
        assert all(m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in messages)
        names = sorted(p.name for p in (site.root / ".bulletin/outbox/new").iterdir())
        assert names == ["000001-ann@example.org.eml", "000002-bob@example.org.eml"]
        again = cli(site, "send", "--subscribers", str(path), "--dry-run")
        assert "outbox: .bulletin/outbox/ emptied first (2 messages of the last dry run)" in again.stdout
        assert len(list((site.root / ".bulletin/outbox/new").iterdir())) == 2  # not 4


def test_preview_writes_one_subscribers_copy(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,Ann,beta", "bob@example.org,,alpha"])
        result = cli(site, "send", "--subscribers", str(path), "--preview", "bob@example.org")
        assert result.exit_code == 0, result.output
        eml, page = (
            site.root / ".bulletin/preview/bob@example.org.eml",
            site.root / ".bulletin/preview/bob@example.org.html",
        )
        assert result.stdout.splitlines() == [
            str(eml),
            str(page),
            "send 2026-W47: one subscriber's copy written (above), nothing sent",
        ]
        assert "Title a1" in page.read_text() and "Title b1" not in page.read_text()
        assert b"To: bob@example.org" in eml.read_bytes()
        assert server.handler.received == [] and not (site.root / "emails").exists()
        missing = cli(site, "send", "--subscribers", str(path), "--preview", "carol@example.org")
        assert missing.exit_code == 2 and "--preview: carol@example.org is not among" in missing.stderr


def test_to_sends_one_test_copy_outside_the_ledger(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        result = cli(site, "send", "--to", "editor@example.org")
        assert result.exit_code == 0, result.output
        assert [r.recipient for r in server.handler.received] == ["editor@example.org"]
        assert sorted(_sections(server.handler.received[0].data)) == ["Alpha", "Beta", "Gamma", "Other"]
        assert not (site.root / ".bulletin/ledger.sqlite").exists()


@pytest.mark.parametrize(
    "to",
    ["", "not-an-address", "x@", "a@b.org\r\nBcc: x@y.org", "Ann <ann@example.org>"],
    ids=["empty", "no-at", "no-domain", "line-break", "mailbox"],
)
def test_a_bad_to_is_a_usage_error(site: SiteMaker, to: str) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        result = cli(site, "send", "--to", to)
        assert result.exit_code == 2
        assert result.stderr == (
            f"bulletin: --to: {to!r} is not an email address; write one address, e.g. --to you@example.org\n"
        )
        assert server.handler.received == []
        assert not (site.root / "emails").exists()  # nothing done


def test_send_needs_the_secret_and_a_ledger(site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,"])
        monkeypatch.delenv("BULLETIN_SECRET")
        result = cli(site, "send", "--subscribers", str(path))
        assert result.exit_code == 2
        assert result.stderr.startswith("bulletin: BULLETIN_SECRET is not set")
        monkeypatch.setenv("BULLETIN_SECRET", SECRET)
        result = cli(site, "send", "--subscribers", str(path))
        assert result.exit_code == 3
        assert "pass --new-ledger to start a new list" in result.stderr
        assert server.handler.received == []


def test_the_ledger_records_every_accepted_message(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, ["ann@example.org,,", "bob@example.org,,"])
        assert cli(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
        with Ledger.open(site.root / ".bulletin/ledger.sqlite") as ledger:
            assert ledger.already_sent("2026-W47") == {"ann@example.org", "bob@example.org"}
            assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            ids = {row[0] for row in ledger.db.execute("SELECT message_id FROM sent")}
        assert ids == {r.message["Message-ID"] for r in server.handler.received}
        assert os.path.exists(site.root / ".bulletin/ledger.sqlite")


def test_dkim_signs_both_list_headers(site: SiteMaker) -> None:
    import dkim

    from .conftest import DATA

    with SmtpServer() as server:
        make_site(site, server.port)
        (site.root / "dkim.key").write_bytes((DATA / "dkim-test.key").read_bytes())  # a test-only key
        site.write_config(dkim={"selector": "test", "domain": "news.example.org", "key_file": "dkim.key"})
        path = subscribers(site, ["ann@example.org,Ann,"])
        assert cli(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
        data = server.handler.received[0].data
        public = "".join((DATA / "dkim-test.pub").read_text().splitlines()[1:-1])

        def dns(name: bytes, timeout: int = 5) -> bytes:
            assert name == b"test._domainkey.news.example.org."
            return f"v=DKIM1; k=rsa; p={public}".encode()

        assert dkim.verify(data, dnsfunc=dns)
        signature = data.split(b"\r\n\r\n", 1)[0].decode()
        signed = re.search(r"h=([^;]+);", signature.replace("\r\n", "").replace(" ", ""))
        assert signed is not None
        headers = signed.group(1).lower().split(":")
        assert "list-unsubscribe" in headers and "list-unsubscribe-post" in headers
        # a tampered List-Unsubscribe no longer verifies
        assert not dkim.verify(
            data.replace(b"List-Unsubscribe: <mailto:", b"List-Unsubscribe: <mailto:x"), dnsfunc=dns
        )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    import shutil as _shutil

    if _shutil.which("openssl") is None:
        pytest.skip("the TLS tests need the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _tls(certificate: tuple[Path, Path]):  # type: ignore[no-untyped-def]
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


class _Accounts:
    """aiosmtpd authenticator: one account, password from the test."""

    def __call__(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        from aiosmtpd.smtp import AuthResult

        ok = auth_data.login == b"digest" and auth_data.password == b"p4ss word"
        # handled=False: aiosmtpd itself answers 535 when the login fails
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


# With implicit TLS the connection is encrypted, but aiosmtpd cannot tell and warns.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login_with_the_password_from_the_environment(
    site: SiteMaker, certificate: tuple[Path, Path], security: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = _tls(certificate)
    if security == "starttls":
        options = {"tls_context": context, "require_starttls": True}
    else:  # aiosmtpd does not see implicit TLS as TLS when deciding to offer AUTH
        options = {"ssl_context": context, "auth_require_tls": False}
    with SmtpServer(authenticator=_Accounts(), auth_required=True, **options) as server:
        make_site(site, server.port)
        site.write_config(
            smtp={"host": "127.0.0.1", "port": server.port, "security": security, "username": "digest"}
        )
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the test certificate
        path = subscribers(site, ["ann@example.org,,"])
        monkeypatch.setenv("BULLETIN_SMTP_PASSWORD", "wrong")
        refused = cli(site, "send", "--subscribers", str(path), "--new-ledger")
        assert refused.exit_code == 3
        assert refused.stderr.endswith(
            f"bulletin: the relay 127.0.0.1:{server.port} refused the login as 'digest' (535); "
            "check smtp.username and BULLETIN_SMTP_PASSWORD\n"
        )
        monkeypatch.setenv("BULLETIN_SMTP_PASSWORD", "p4ss word")
        result = cli(site, "send", "--subscribers", str(path))
        assert result.exit_code == 0, result.output
        assert [r.recipient for r in server.handler.received] == ["ann@example.org"]
        # without trusting the certificate, TLS fails and the run stops at once
        monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent")
        untrusted = cli(
            site, "send", "--subscribers", str(path), "--week", "2026-W47", "--to", "x@example.org"
        )
        assert untrusted.exit_code == 3
        assert (
            f"bulletin: TLS with 127.0.0.1:{server.port} failed: CERTIFICATE_VERIFY_FAILED"
            in untrusted.stderr
        )


def test_an_unreachable_relay_stops_the_run_at_once(site: SiteMaker) -> None:
    port = free_port()  # nothing listens there
    make_site(site, port)
    path = subscribers(site, ["ann@example.org,,", "bob@example.org,,"])
    summary, _ = _send(site, path, new_ledger=True)
    assert summary.aborted and (summary.sent, summary.failed) == (0, 0)
    assert summary.reason.startswith(f"cannot reach the relay 127.0.0.1:{port}: ")
    assert "(tried 4 times over 0 s);" in summary.reason  # the wait between tries is said
    assert summary.reason.endswith(
        "check smtp.host and smtp.port, then run the same command again (it resumes)"
    )


# The markers of bulletin 0.x, fixed strings anyone could read in the source, and a guess
# at the shape of today's.
OLD_MARKERS = ("BULLETIN-SPLICE-GREETING-7Q2X", "BULLETIN-SPLICE-UNSUBSCRIBE-7Q2X")
GUESSED = ("BULLETIN-SPLICE-GREETING-" + "0" * 32, "BULLETIN-SPLICE-UNSUBSCRIBE-" + "0" * 32)


def _outbox(site: SiteMaker) -> list[EmailMessage]:
    import mailbox

    box = mailbox.Maildir(site.root / ".bulletin/outbox", create=False)
    return sorted(
        (email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box),
        key=lambda message: str(message["To"]),
    )  # type: ignore[return-value]


def _b64(address: str) -> str:
    """The first half of an unsubscribe token: the address in base64url."""
    return base64.urlsafe_b64encode(address.encode()).rstrip(b"=").decode()


def _links(page: str) -> list[tuple[str, str, str]]:
    """Every (tag, attribute, value) of an HTML page, character references decoded."""
    from html.parser import HTMLParser

    found: list[tuple[str, str, str]] = []

    class Attributes(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend((tag, name, value or "") for name, value in attrs)

    Attributes(convert_charrefs=True).feed(page)
    return found


@pytest.mark.parametrize("markers", [OLD_MARKERS, GUESSED], ids=["old-markers", "guessed-markers"])
def test_content_cannot_place_a_subscribers_link_or_name(site: SiteMaker, markers: tuple[str, str]) -> None:
    greeting, unsubscribe = markers
    with SmtpServer() as server:
        make_site(site, server.port)
        site.item(
            "m.md",
            id="m",
            date="2026-11-19",
            categories=["Alpha"],
            title=f"Title {unsubscribe} and {greeting}",
            description=f"A summary with {greeting} and {unsubscribe} in it.",
            link={"href": f"https://src.example/{greeting}/{unsubscribe}"},
            featuredImage={
                "href": f"https://img.example/pixel.gif?u={unsubscribe}&n={greeting}",
                "alt": f"Alt {greeting}",
            },
        )
        path = subscribers(site, ["zed@example.org,Zed Quux,"])
        result = cli(site, "send", "--subscribers", str(path), "--new-ledger")
        assert result.exit_code == 0, result.output
        [received] = server.handler.received
    message = received.message
    token = make_token("zed@example.org", SECRET, "test-news.news.example.org")
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    address = _b64("zed@example.org")
    # The address (and so the token) only in the footer link of each part and in List-Unsubscribe.
    assert [value for _, _, value in _links(html) if address in value] == [
        f"https://news.example.org/u?t={token}"
    ]
    assert html.count(address) == 1
    assert text.count(address) == 1
    assert text.split("Unsubscribe or manage your topics:\n", 1)[1].startswith(
        f"https://news.example.org/u?t={token}\n"
    )
    assert token in message["List-Unsubscribe"]
    # The name only in the greeting; the content shows the markers as the text they are.
    assert (html.count("Zed Quux"), text.count("Zed Quux")) == (1, 1)
    assert "Hi Zed Quux," in text and "Hi Zed Quux," in html
    assert f"Title {unsubscribe} and {greeting}" in text
    assert f"https://img.example/pixel.gif?u={unsubscribe}&n={greeting}" in [v for _, _, v in _links(html)]
    # The archive copy is not personal and keeps its content as written.
    archive = (site.root / "emails/2026-W47/digest.txt").read_text()
    assert f"Title {unsubscribe} and {greeting}" in archive and "Zed" not in archive


@pytest.mark.parametrize("name", [*OLD_MARKERS, *GUESSED])
def test_a_name_like_a_marker_stays_a_name(site: SiteMaker, name: str) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, [f"zed@example.org,{name},"])
        assert cli(site, "send", "--subscribers", str(path), "--new-ledger").exit_code == 0
        [received] = server.handler.received
    message = received.message
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    address = _b64("zed@example.org")
    assert (html.count(address), text.count(address)) == (1, 1)
    assert f"\nHi {name},\n" in text
    assert re.search(f'<p class="greeting"[^>]*>Hi {name},</p>', html)
    assert message["To"].addresses[0].display_name == name


# -- several connections -----------------------------------------------------------------------


def test_several_connections_deliver_each_message_once(site: SiteMaker) -> None:
    with SmtpServer() as server:
        make_site(site, server.port)
        path = subscribers(site, [f"s{n:02d}@example.org,,{['', 'alpha', 'beta'][n % 3]}" for n in range(60)])
        result = cli(site, "send", "--subscribers", str(path), "--new-ledger", "--connections", "4")
        assert result.exit_code == 0, result.output
        assert sorted(r.recipient for r in server.handler.received) == [
            f"s{n:02d}@example.org" for n in range(60)
        ]
        assert server.handler.connections == 4  # one conversation a connection, each reused
        with Ledger.open(site.root / ".bulletin/ledger.sqlite") as ledger:
            assert len(ledger.already_sent("2026-W47")) == 60
        assert "0 sent, 60 already sent" in cli(site, "send", "--subscribers", str(path)).stdout


def test_a_run_stopped_with_several_connections_counts_no_failure(site: SiteMaker) -> None:
    everyone = [f"s{n:02d}@example.org" for n in range(25)]
    # A relay refusing everything for three runs (a message under way at a stop may be
    # refused once more in the same run), then fixed.
    refusals = {address: ["554 5.7.1 relay access denied"] * 6 for address in everyone}
    with SmtpServer(Script(rcpt=refusals)) as server:
        make_site(site, server.port)
        path = subscribers(site, [f"{address},," for address in everyone])
        for number in range(3):
            new = ["--new-ledger"] if number == 0 else []
            result = cli(site, "send", "--subscribers", str(path), "--connections", "4", *new)
            assert result.exit_code == 3, result.output
        with Ledger.open(site.root / ".bulletin/ledger.sqlite") as ledger:
            assert ledger.suppressed() == {} and all(ledger.failures(a) == 0 for a in everyone)
        for replies in refusals.values():
            replies.clear()
        assert cli(site, "send", "--subscribers", str(path), "--connections", "4").exit_code == 0
        assert sorted({r.recipient for r in server.handler.received}) == everyone


def test_recipients_are_grouped_by_topic_set_in_the_order_sets_first_appear() -> None:
    from bulletin.mail.send import by_topic_set
    from bulletin.mail.subscribers import Subscriber

    def one(address: str, topics: frozenset[str] | None) -> Subscriber:
        return Subscriber(address, "", topics, 0)

    alpha, beta = frozenset({"alpha"}), frozenset({"beta"})
    people = [
        one("a@x.org", alpha),
        one("b@x.org", None),
        one("c@x.org", alpha),
        one("d@x.org", beta),
        one("e@x.org", None),
    ]
    assert [s.email for s in by_topic_set(people)] == ["a@x.org", "c@x.org", "b@x.org", "e@x.org", "d@x.org"]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"web": {"url": "http://127.0.0.1:8000/"}}, "web.url points at this machine (127.0.0.1)"),
        ({"web": {"url": "http://0.0.0.0:8000/"}}, "web.url points at this machine (0.0.0.0)"),
        (
            {"unsubscribe_url": "https://localhost./u?t={token}"},
            "digest.unsubscribe_url points at this machine",
        ),
        ({"unsubscribe_url": "https://127.1/u?t={token}"}, "digest.unsubscribe_url points at this machine"),
        # the starter's: no unsubscribe_url, so it comes from web.url, the key to change
        (
            {"web": {"url": "http://127.0.0.1:8000/"}, "unsubscribe_url": None},
            "web.url points at this machine",
        ),
    ],
)
def test_a_send_whose_links_lead_to_this_machine_is_refused(
    site: SiteMaker, changes: dict[str, object], named: str
) -> None:
    """The starter's values (web.url on 127.0.0.1) used to go out to every subscriber as dead
    unsubscribe links. Dry runs, --to and --preview are tests, and go ahead."""
    with SmtpServer() as server:
        make_site(site, server.port)
        web = changes.get("web")
        digest = {**MAIL, **{k: v for k, v in changes.items() if k != "web"}}
        digest = {k: v for k, v in digest.items() if v is not None}
        site.write_config(timezone="UTC", digest=digest, smtp={"host": "127.0.0.1", "port": server.port},
                          **({"web": web} if web else {}))  # fmt: skip
        path = subscribers(site, ["ann@example.org,,"])
        refused = cli(site, "send", "--subscribers", str(path), "--new-ledger")
        assert refused.exit_code == 3
        assert f"bulletin.toml: {named}" in refused.stderr and "--local-links" in refused.stderr
        with pytest.raises(RefusedError, match="points at this machine"):  # send_digest itself refuses
            _send(site, path, new_ledger=True)
        assert server.handler.received == []
        assert cli(site, "send", "--subscribers", str(path), "--dry-run", "--new-ledger").exit_code == 0
        assert cli(site, "send", "--to", "me@example.org", "--new-ledger").exit_code == 0
        assert [r.recipient for r in server.handler.received] == ["me@example.org"]
        sent = cli(site, "send", "--subscribers", str(path), "--local-links", "--new-ledger")
        assert sent.exit_code == 0, sent.output
        assert [r.recipient for r in server.handler.received] == ["me@example.org", "ann@example.org"]


def test_a_digest_topics_slug_that_is_no_topic_is_named(site: SiteMaker) -> None:
    """A typo in digest.topics used to be ignored without a word."""
    with SmtpServer() as server:
        make_site(site, server.port)
        site.write_config(timezone="UTC", digest={**MAIL, "topics": ["beta", "gama"]},
                          smtp={"host": "127.0.0.1", "port": server.port})  # fmt: skip
        warning = (
            "bulletin.toml:10: warning: digest.topics names 'gama', which is no topic's slug; it is "
            "ignored (did you mean 'gamma'?): write the slugs as 'bulletin topics' lists them"
        )
        built = cli(site, "build")
        assert built.exit_code == 0 and built.stderr.splitlines() == [warning]
        path = subscribers(site, ["ann@example.org,,"])
        dry = cli(site, "send", "--subscribers", str(path), "--dry-run", "--new-ledger")
        assert dry.exit_code == 0 and dry.stderr.splitlines() == [warning]
