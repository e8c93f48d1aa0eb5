"""Bounces and complaints through a Maildir, an mbox and standard input, matched to
subscribers, applied once, and honoured by the next send."""

from __future__ import annotations

import mailbox
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bulletin.cli import main
from bulletin.ledger import Ledger
from bulletin.subscriptions import Subscriptions
from bulletin.tokens import verp_tag

from .conftest import SiteMaker
from .smtp import Script, SmtpServer
from .test_reports import GLOBAL_DSN, sample

SECRET = "bounce-secret-0123456789"
PEOPLE = ["dead@example.com", "exim@example.net", "msft@contoso.com", "gmail@gmail.example",
          "angry@example.org", "away@example.com", "slow@example.com", "fine@example.com"]  # fmt: skip


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", SECRET)


def cli(site: SiteMaker, *args: str, now: str = "2026-11-25T12:00", stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--site", str(site.root), "--now", now], input=stdin)


def sent_site(site: SiteMaker, server: SmtpServer, **digest: str) -> dict[str, str]:
    """A site whose subscribers got the 2026-W47 digest; each address's Message-ID."""
    site.write_config(digest={"from": "News <digest@news.example.org>", "address": "1 Main St",
                              "unsubscribe_url": "https://news.example.org/u/{token}", **digest},
                      smtp={"host": "127.0.0.1", "port": server.port})  # fmt: skip
    site.item("a.md", categories=["Alpha"], date="2026-11-18")
    site.item("b.md", categories=["Alpha"], date="2026-11-24")
    for address in PEOPLE:
        assert cli(site, "subscribers", "add", address, "--new-ledger").exit_code == 0
    assert cli(site, "send").exit_code == 0
    return {r.recipient: r.message["Message-ID"] for r in server.handler.received}


def maildir(site: SiteMaker, reports: list[bytes]) -> Path:
    folder = site.root / "bounces"
    box = mailbox.Maildir(folder, create=True)
    for data in reports:
        box.add(data)
    return folder


def statuses(site: SiteMaker) -> dict[str, str]:
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        return {row.address: row.status for row in Subscriptions(ledger).rows()}


def test_reports_through_all_three_inputs_then_send_skips_exactly_those(site: SiteMaker) -> None:
    with SmtpServer() as server:
        ids = sent_site(site, server)
        folder = maildir(site, [
            sample("postfix-permanent.eml", "dead@example.com").replace(b"{MSGID}", b"").replace(
                b"<digest.1764072058.4711@news.example.org>", ids["dead@example.com"].encode()),
            sample("gmail-dsn.eml", "gmail@gmail.example"),  # its Message-ID is unknown: Final-Recipient
            sample("arf-complaint.eml", "angry@example.org"),
            sample("vacation.eml", "away@example.com"),
        ])  # fmt: skip
        result = cli(site, "bounces", str(folder))
        assert result.exit_code == 0, result.output
        assert result.stdout == "bounces: 4 report(s) read: 2 bounced, 1 complained, 1 ignored\n"
        assert len(list((folder / "new").iterdir())) == 0
        assert all(p.name.endswith(":2,S") for p in (folder / "cur").iterdir())

        mbox_path = site.root / "bounces.mbox"
        box = mailbox.mbox(mbox_path, create=True)
        box.add(sample("exim-quoted.eml", "exim@example.net"))
        box.close()
        assert cli(site, "bounces", str(mbox_path)).stdout == "bounces: 1 report(s) read: 1 bounced\n"
        again = cli(site, "bounces", str(mbox_path))
        assert again.stdout == "bounces: 1 report(s) read: 1 already read\n"  # nothing changes twice

        empty = site.root / "empty.mbox"  # a spool file emptied by the last run: no reports
        for blank in (b"", b"\n\n"):
            empty.write_bytes(blank)
            assert cli(site, "bounces", str(empty)).stdout == "bounces: 0 report(s) read\n"
        assert not (site.root / ".bulletin" / "unmatched").exists()
        spaced = site.root / "spaced.mbox"  # blank space, or a UTF-8 BOM, before the first From line
        for prefix in (b"\n", b"\n" * 5000, b"\xef\xbb\xbf"):
            spaced.write_bytes(prefix + mbox_path.read_bytes())
            assert cli(site, "bounces", str(spaced)).stdout == "bounces: 1 report(s) read: 1 already read\n"
        for prefix in (b"\n\n", b"\xef\xbb\xbf"):  # and before a saved message's headers
            spaced.write_bytes(prefix + sample("exim-quoted.eml", "exim@example.net"))
            assert cli(site, "bounces", str(spaced)).stdout == "bounces: 1 report(s) read: 1 already read\n"
        saved = site.root / "ndr.eml"  # one message as a mail client saves it: not an mbox
        saved.write_bytes(sample("microsoft-ndr.eml", "msft@contoso.com"))
        one = cli(site, "bounces", str(saved))
        assert one.stdout == "bounces: 1 report(s) read: 1 bounced\n", one.output
        piped = cli(site, "bounces", "-", stdin=sample("microsoft-ndr.eml", "msft@contoso.com"))
        assert piped.stdout == "bounces: 1 report(s) read: 1 already read\n", piped.output

        assert statuses(site) == {
            "dead@example.com": "bounced", "exim@example.net": "bounced", "msft@contoso.com": "bounced",
            "gmail@gmail.example": "bounced", "angry@example.org": "complained", "away@example.com": "active",
            "slow@example.com": "active", "fine@example.com": "active",
        }  # fmt: skip
        before = len(server.handler.received)
        assert cli(site, "send", now="2026-12-02T12:00").exit_code == 0
        mailed = sorted(r.recipient for r in server.handler.received[before:])
        assert mailed == ["away@example.com", "fine@example.com", "slow@example.com"]


def test_three_transient_failures_in_separate_weeks_bounce(site: SiteMaker) -> None:
    with SmtpServer() as server:
        sent_site(site, server)
    for number, date in enumerate(["Wed, 25 Nov 2026 11:02:10 +0000", "Thu, 26 Nov 2026 11:00:00 +0000",
                                   "Wed, 02 Dec 2026 11:00:00 +0000", "Wed, 09 Dec 2026 11:00:00 +0000"]):  # fmt: skip
        data = sample("postfix-delayed.eml", "slow@example.com")
        data = data.replace(b"Wed, 25 Nov 2026 11:02:10 +0000 (UTC)", date.encode())
        data = data.replace(b"<20261125110210.7Gh2Kl@mail.news.example.org>", f"<delay-{number}@mx>".encode())
        result = cli(site, "bounces", "-", stdin=data)
        assert result.exit_code == 0, result.output
        expected = "bounced" if number == 3 else "transient"  # weeks 48, 48, 49, 50: the third week bounces
        assert result.stdout == f"bounces: 1 report(s) read: 1 {expected}\n"


def test_verp_names_the_subscriber_when_nothing_else_does(site: SiteMaker) -> None:
    with SmtpServer() as server:
        sent_site(site, server, bounce_address="bounces@news.example.org")
        senders = {r.recipient: r.sender for r in server.handler.received}
    assert senders["fine@example.com"] == f"bounces+{verp_tag('fine@example.com', SECRET)}@news.example.org"
    assert len(set(senders.values())) == len(PEOPLE)  # one return path per subscriber
    data = sample(
        "postfix-permanent.eml", "someone-else@example.com", tag=verp_tag("fine@example.com", SECRET)
    )
    assert cli(site, "bounces", "-", stdin=data).stdout == "bounces: 1 report(s) read: 1 bounced\n"
    assert statuses(site)["fine@example.com"] == "bounced"
    assert statuses(site)["dead@example.com"] == "active"


def test_with_verp_a_report_that_only_names_an_address_changes_nobody(site: SiteMaker) -> None:
    """Anyone can mail the bounce address (it is in every digest): a report without the
    tagged return path or a Message-ID bulletin recorded may be forged, and used to
    unsubscribe someone, or to lock a pending address out with a complaint."""
    with SmtpServer() as server:
        sent_site(site, server, bounce_address="bounces@news.example.org")
    before = statuses(site)
    for forged in (
        sample("gmail-dsn.eml", "fine@example.com"),
        sample("arf-complaint.eml", "slow@example.com"),
    ):
        result = cli(site, "bounces", "-", stdin=forged)
        assert result.stdout == "bounces: 1 report(s) read: 1 unmatched\n", result.output
    assert statuses(site) == before


def test_retry_failed_never_mails_an_address_a_report_bounced(site: SiteMaker) -> None:
    """--retry-failed retries addresses held after three failed sends; it also used to mail,
    from a --subscribers file, addresses that delivery reports had bounced."""
    with SmtpServer() as server:
        ids = sent_site(site, server)
        report = sample("postfix-permanent.eml", "dead@example.com").replace(
            b"<digest.1764072058.4711@news.example.org>", ids["dead@example.com"].encode()
        )
        assert "1 bounced" in cli(site, "bounces", "-", stdin=report).stdout
        listing = site.root / "list.csv"
        listing.write_text("email\n" + "\n".join(PEOPLE) + "\n", encoding="utf-8")
        before = len(server.handler.received)
        args = ("send", "--subscribers", str(listing), "--retry-failed")
        assert cli(site, *args, now="2026-12-02T12:00").exit_code == 0
        mailed = {r.recipient for r in server.handler.received[before:]}
    assert "dead@example.com" not in mailed and len(mailed) == len(PEOPLE) - 1


def test_a_file_with_an_exports_status_mails_only_its_active_rows(site: SiteMaker) -> None:
    """send --subscribers export.csv mailed pending, unsubscribed, bounced and complained rows;
    an imported "bounced" was then retried by --retry-failed, as if sends had failed."""
    with SmtpServer() as server:
        sent_site(site, server)
        exported = site.root / "export.csv"
        exported.write_text(
            "email,name,topics,status\nfine@example.com,,,bounced\nnew@example.com,,,pending\n"
            "slow@example.com,,,active\n",
            encoding="utf-8",
        )
        assert cli(site, "subscribers", "import", str(exported)).exit_code == 0
        before = len(server.handler.received)
        for extra in ((), ("--retry-failed",)):
            assert cli(site, "send", "--subscribers", str(exported), *extra, "--force",
                       now="2026-12-02T12:00").exit_code == 0  # fmt: skip
        mailed = [r.recipient for r in server.handler.received[before:]]
    assert mailed == ["slow@example.com"]


def test_a_report_about_an_address_never_mailed_changes_nobody(site: SiteMaker) -> None:
    with SmtpServer() as server:
        sent_site(site, server)
    assert cli(site, "subscribers", "add", "late@example.com").exit_code == 0  # after the send
    for forged in (
        sample("gmail-dsn.eml", "late@example.com"),
        sample("arf-complaint.eml", "late@example.com"),
    ):
        result = cli(site, "bounces", "-", stdin=forged)
        assert result.stdout == "bounces: 1 report(s) read: 1 unmatched\n", result.output
    assert statuses(site)["late@example.com"] == "active"


def test_malformed_and_unmatched_reports_are_reported_and_kept_aside(site: SiteMaker) -> None:
    with SmtpServer() as server:
        sent_site(site, server)
    huge = b"From: MAILER-DAEMON@x.example\r\nSubject: big\r\n\r\n" + b"x" * (50 * 1024 * 1024)
    folder = maildir(site, [
        sample("postfix-permanent.eml")[:1500],  # truncated
        huge,
        sample("gmail-dsn.eml", "stranger@example.org"),  # never mailed
        sample("exim-quoted.eml", "dead@example.com").replace(b"Subject: Mail", b"Content-Type: text/plain; charset=x-unknown\r\nSubject: Mail"),
    ])  # fmt: skip
    before = statuses(site)
    result = cli(site, "bounces", str(folder))
    assert result.exit_code == 1
    assert result.stdout == "bounces: 4 report(s) read: 1 bounced, 1 unmatched, 2 unreadable\n"
    lines = result.stderr.splitlines()
    assert sum("is truncated" in line for line in lines) == 1
    assert sum("reports over 10 MB are not read" in line for line in lines) == 1
    assert sum(f"matches no subscriber: moved to {folder}/.Unmatched/" in line for line in lines) == 1
    assert (
        sum(f"skipped, and moved to {folder}/.Unmatched/ for you to look at" in line for line in lines) == 2
    )
    assert all(line.startswith(str(folder / "new")) for line in lines)
    assert len(list((folder / ".Unmatched" / "cur").iterdir())) == 3  # nothing is lost
    assert statuses(site) == {**before, "dead@example.com": "bounced"}


def test_a_report_that_breaks_the_reader_stops_no_other(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in reading one report (a charset name with a NUL in it was one) must not end
    the batch with a traceback: that report is kept aside, the others are applied."""
    from bulletin.mail import bounces, reports

    with SmtpServer() as server:
        sent_site(site, server)

    def read(data: bytes, envelope: tuple[str, ...] = ()) -> reports.Report:
        if b"Subject: break me" in data:
            raise UnicodeError("an unforeseen report")
        return reports.read_report(data, envelope)

    monkeypatch.setattr(bounces, "read_report", read)
    broken = sample("gmail-dsn.eml", "fine@example.com").replace(
        b"Subject:", b"Subject: break me\r\nX-Was:", 1
    )
    folder = maildir(site, [broken, sample("postfix-permanent.eml", "dead@example.com")])
    result = cli(site, "bounces", str(folder))
    assert result.stdout == "bounces: 2 report(s) read: 1 bounced, 1 unreadable\n", result.output
    assert (
        "cannot be read: UnicodeError: an unforeseen report; this is a bug in bulletin, report it"
        in result.stderr
    )
    assert len(list((folder / ".Unmatched" / "cur").iterdir())) == 1
    assert statuses(site)["dead@example.com"] == "bounced" and statuses(site)["fine@example.com"] == "active"


def test_unmatched_reports_from_standard_input_are_kept_in_the_state_folder(site: SiteMaker) -> None:
    with SmtpServer() as server:
        sent_site(site, server)
    result = cli(site, "bounces", "-", stdin=sample("gmail-dsn.eml", "stranger@example.org"))
    assert result.stdout == "bounces: 1 report(s) read: 1 unmatched\n"
    assert "-: warning: matches no subscriber: kept in .bulletin/unmatched/, nothing changed" in result.stderr
    assert len(mailbox.Maildir(site.root / ".bulletin" / "unmatched")) == 1
    # Nothing piped in is no report at all, not an unreadable one kept for a person.
    empty = cli(site, "bounces", "-", stdin=b"")
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "bounces: 0 report(s) read\n", "")
    assert len(mailbox.Maildir(site.root / ".bulletin" / "unmatched")) == 1
    db = sqlite3.connect(site.root / ".bulletin" / "ledger.sqlite")
    assert db.execute("SELECT kind, address FROM reports").fetchall() == [("unmatched", None)]


def test_status_reads_well(site: SiteMaker) -> None:
    with SmtpServer() as server:
        sent_site(site, server)
        rerun = cli(site, "send")  # as cron does: nothing left to send, so not a send to list
        assert "0 sent, 8 already sent" in rerun.stdout
    cli(site, "bounces", "-", stdin=sample("gmail-dsn.eml", "gmail@gmail.example"))
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=5)).encode()  # after the send
    complaint = sample("arf-complaint.eml", "angry@example.org").replace(
        b"Thu, 26 Nov 2026 03:15:00 +0000", later
    )
    cli(site, "bounces", "-", stdin=complaint)
    # the same person marks a second digest as spam: still one person of the 8 mailed
    again = complaint.replace(b"<fbl-20261126031500-9f8e7d@", b"<fbl-20261126031600-000001@")
    assert "1 complained" in cli(site, "bounces", "-", stdin=again).stdout
    result = cli(site, "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:7] == [
        "Subscribers: 8",
        "  pending            0",
        "  active             6",
        "  unsubscribed       0",
        "  bounced            1",
        "  complained         1",
        "",
    ]
    assert "  Alpha                                         6  alpha" in lines
    at = lines.index("Last sends:")
    sends, after = lines[at + 1], lines[at + 2]
    assert sends.startswith("  2026-W47 ") and sends.endswith(
        "8 sent, 0 already sent, 0 suppressed, 0 failed"
    )
    assert after == ""
    assert (
        lines[-1]
        == "Complaint rate of the last send (2026-W47): 12.50% (1 of 8)  ABOVE 0.3%: Gmail and Yahoo "
        "throttle such senders"
    )
    weeks = [line for line in lines if line.startswith("  20") and "complaint(s)" in line]
    assert any(line.startswith("  2026-W48  1 bounced, 0 transient,") for line in weeks)
    assert (
        sum(int(line.rsplit(", ", 1)[1].split()[0]) for line in weeks) == 2
    )  # the complaints' week is today's; the weeks count reports, the rate people


def test_show_says_why_an_address_is_no_longer_mailed(site: SiteMaker) -> None:
    """An operator asked "why did Gmail stop getting the digest?" finds the answer in one
    command: the bounce, its diagnostic, and the week it was last mailed."""
    with SmtpServer() as server:
        sent_site(site, server)
    cli(site, "bounces", "-", stdin=sample("gmail-dsn.eml", "gmail@gmail.example"))
    result = cli(site, "subscribers", "show", "  Gmail@GMAIL.example ")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "gmail@gmail.example"  # as the ledger keeps it
    assert lines[1].startswith("  status      bounced since 2026-")
    assert lines[3] == "  topics      every topic"
    assert lines[4].startswith("  joined      2026-11-25 12:00 UTC (cli)")
    assert any(line.startswith("  suppressed  bounced since ") for line in lines)
    history = lines[lines.index("History:") + 1 : lines.index("Reports:")]
    assert [line.split()[3] for line in history] == ["active", "bounced"]
    assert "permanent report 5.1.1" in history[1]
    reports = lines[lines.index("Reports:") + 1 : lines.index("Last sends:")]
    assert len(reports) == 1 and "permanent" in reports[0] and "5.1.1" in reports[0]
    sends = lines[lines.index("Last sends:") + 1 :]
    assert len(sends) == 1 and sends[0].startswith("  2026-W47  sent 2026-")


def test_show_gives_the_relays_answer_for_a_send_it_refused(site: SiteMaker) -> None:
    with SmtpServer(Script(rcpt={"dead@example.com": ["550 5.1.1 no such user here"]})) as server:
        site.write_config(digest={"from": "News <digest@news.example.org>", "address": "1 Main St",
                                  "unsubscribe_url": "https://news.example.org/u/{token}"},
                          smtp={"host": "127.0.0.1", "port": server.port})  # fmt: skip
        site.item("a.md", categories=["Alpha"], date="2026-11-18")
        for address in ("dead@example.com", "fine@example.com"):
            assert cli(site, "subscribers", "add", address, "--new-ledger").exit_code == 0
        assert "1 failed" in cli(site, "send").stdout
    result = cli(site, "subscribers", "show", "dead@example.com")
    sends = result.stdout.splitlines()[result.stdout.splitlines().index("Last sends:") + 1 :]
    assert sends == ["  2026-W47  not sent: failed, 550 5.1.1 no such user here"]
    assert "  status      active since" in result.stdout  # one refusal is no bounce yet


def test_show_knows_an_address_only_a_subscribers_file_mailed(site: SiteMaker, tmp_path: Path) -> None:
    """Mailed from a file (no subscriber row): a refusal, and the last copy it got when the
    ledger has no summary of that send, are still the ledger's knowledge of the address."""
    listed = tmp_path / "subs.csv"
    listed.write_text("email\ndead@example.com\nfine@example.com\n")
    with SmtpServer(Script(rcpt={"dead@example.com": ["550 5.1.1 no such user here"]})) as server:
        site.write_config(digest={"from": "News <digest@news.example.org>", "address": "1 Main St",
                                  "unsubscribe_url": "https://news.example.org/u/{token}"},
                          smtp={"host": "127.0.0.1", "port": server.port})  # fmt: skip
        site.item("a.md", categories=["Alpha"], date="2026-11-18")
        assert "1 failed" in cli(site, "send", "--subscribers", str(listed), "--new-ledger").stdout
    dead = cli(site, "subscribers", "show", "dead@example.com").stdout
    assert "not in the ledger" not in dead and "  2026-W47  not sent: failed, 550 5.1.1" in dead
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        ledger.db.execute("DELETE FROM runs")  # as a ledger from before sends were summed up
        ledger.db.commit()
    fine = cli(site, "subscribers", "show", "fine@example.com").stdout.splitlines()
    assert fine[-1].startswith("  2026-W47  sent 2026-") and fine[-1].endswith("(the last copy it got)")


def test_show_finds_a_copy_older_than_the_last_sends(site: SiteMaker) -> None:
    """A bounced subscriber got nothing in the last five sends: the last copy it got is
    found week by week through the runs, each by `sent`'s key."""
    assert cli(site, "subscribers", "add", "gone@example.org", "--new-ledger").exit_code == 0
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        for week in range(40, 48):
            ledger.db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, 1, 0, 0, 0, 0, '')",
                (f"r{week}", f"2026-W{week}", f"2026-11-0{week % 8 + 1}T08:00:00+00:00",
                 f"2026-11-0{week % 8 + 1}T09:00:00+00:00"),
            )  # fmt: skip
        ledger.db.execute(
            "INSERT INTO sent VALUES ('2026-W41', 'gone@example.org', '<m@x>', '2026-10-09T08:00:00+00:00')"
        )
        ledger.db.commit()
    lines = cli(site, "subscribers", "show", "gone@example.org").stdout.splitlines()
    sends = lines[lines.index("Last sends:") + 1 :]
    assert sends == [
        *(f"  2026-W{week}  not sent" for week in (47, 46, 45, 44, 43)),
        "  2026-W41  sent 2026-10-09 08:00 UTC (the last copy it got)",
    ]


def test_show_dates_a_status_from_when_it_began(site: SiteMaker) -> None:
    """Changing a name rewrites the row's last change, not when the subscriber became active."""
    assert (
        cli(site, "subscribers", "add", "ann@example.org", "--new-ledger", now="2026-01-05T10:00").exit_code
        == 0
    )
    assert (
        cli(site, "subscribers", "add", "ann@example.org", "--name", "Ann", now="2026-06-05T10:00").exit_code
        == 0
    )
    shown = cli(site, "subscribers", "show", "ann@example.org").stdout.splitlines()
    assert shown[1] == "  status      active since 2026-01-05 10:00 UTC"  # not June, when the name came


def test_show_gives_an_internationalised_address_as_written_too(site: SiteMaker) -> None:
    assert cli(site, "subscribers", "add", "carol@bücher.de", "--new-ledger").exit_code == 0
    for asked in ("carol@BÜCHER.de", "carol@xn--bcher-kva.de"):
        shown = cli(site, "subscribers", "show", asked).stdout.splitlines()
        assert shown[0] == "carol@xn--bcher-kva.de (carol@bücher.de)"


def test_show_an_address_the_ledger_never_heard_of(site: SiteMaker) -> None:
    with SmtpServer() as server:
        sent_site(site, server)
    result = cli(site, "subscribers", "show", "nobody@example.org")
    assert result.exit_code == 0
    assert result.stdout == "nobody@example.org: not in the ledger: never subscribed, mailed or reported\n"
    assert cli(site, "subscribers", "show", "not an address").exit_code == 2


def test_show_escapes_what_came_from_outside(site: SiteMaker) -> None:
    """A name or a report's diagnostic holding terminal controls is shown as escapes."""
    site.write_config(digest={"from": "News <digest@news.example.org>", "address": "1 Main St"})
    added = cli(site, "subscribers", "add", "eve@example.org", "--name", "Eve", "--new-ledger")
    assert added.exit_code == 0, added.output
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        ledger.db.execute(
            "INSERT INTO status_changes VALUES (?, ?, ?, ?)",
            ("eve@example.org", "2026-11-24T10:00:00+00:00", "active", "note \x1b[2J cleared"),
        )
        ledger.db.commit()
    result = cli(site, "subscribers", "show", "eve@example.org")
    assert "\x1b" not in result.stdout and "note \\x1b[2J cleared" in result.stdout


def test_bounces_with_nothing_piped_in_says_what_it_needs(site: SiteMaker) -> None:
    """Run at a terminal with no argument, it used to sit waiting for a report to be typed."""
    import os
    import pty
    import subprocess
    import sys

    with SmtpServer() as server:
        sent_site(site, server)
    parent, child = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bulletin", "bounces", "--site", str(site.root)],
            stdin=child, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(child)
        os.close(parent)
    assert done.returncode == 2
    assert "no report given: name a Maildir or an mbox file, or pipe one report in" in done.stderr


def test_a_report_naming_an_internationalised_address_in_utf8_matches_it(site: SiteMaker) -> None:
    """carol@bücher.de is mailed as carol@xn--bcher-kva.de; a relay that speaks SMTPUTF8 may
    report her in UTF-8, and without VERP or a quoted Message-ID that name is all there is."""
    with SmtpServer() as server:
        sent_site(site, server)
        assert cli(site, "subscribers", "add", "carol@b\u00fccher.de").exit_code == 0
        assert cli(site, "send", now="2026-11-25T12:30").exit_code == 0
        assert "carol@xn--bcher-kva.de" in {r.recipient for r in server.handler.received}
    report = GLOBAL_DSN.replace("{FINAL}", "carol@b\\x{FC}cher.de").replace("\n", "\r\n").encode()
    result = cli(site, "bounces", "-", stdin=report)
    assert result.stdout == "bounces: 1 report(s) read: 1 bounced\n", result.output
    assert statuses(site)["carol@xn--bcher-kva.de"] == "bounced"
    assert statuses(site)["fine@example.com"] == "active"
