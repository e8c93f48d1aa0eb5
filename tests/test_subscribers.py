"""The subscribers file (every bad row reported and skipped, never widened)
and the subscribers kept in the ledger."""

from __future__ import annotations

import csv
import io
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bulletin.addresses import (
    address_fix,
    ascii_address,
    display_address,
    mailbox_key,
    normalise_address,
    recipient_address,
    valid_address,
)
from bulletin.cli import main
from bulletin.config import load_config
from bulletin.errors import UsageError
from bulletin.mail.subscribers import Subscriber, read_subscribers
from bulletin.report import Report
from bulletin.tokens import make_token

from .conftest import SiteMaker

KNOWN = {"alpha": "Alpha", "beta": "Beta", "gamma": "Gamma"}


def read(tmp_path: Path, text: str | bytes) -> tuple[list[Subscriber], list[str]]:
    path = tmp_path / "subscribers.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    report = Report()
    return read_subscribers(path, KNOWN, report), [
        str(p).replace(str(tmp_path) + "/", "") for p in report.problems
    ]


def test_rows_topics_and_names(tmp_path: Path) -> None:
    subscribers, problems = read(
        tmp_path,
        "\ufeffemail,name,topics\n"
        "ann@example.org,Ann  Lee,\n"
        "bob@Example.ORG,Bob,*\n"
        'cy@example.org,"Cy, Jr.", alpha ; beta \n'
        "\n"
        "dee@example.org,,gamma\n",
    )
    assert problems == []
    assert subscribers == [
        Subscriber("ann@example.org", "Ann Lee", None, 2),
        Subscriber("bob@example.org", "Bob", None, 3),
        Subscriber("cy@example.org", "Cy, Jr.", frozenset({"alpha", "beta"}), 4),
        Subscriber("dee@example.org", "", frozenset({"gamma"}), 6),
    ]


def test_columns_in_any_order(tmp_path: Path) -> None:
    subscribers, _ = read(tmp_path, "topics,email,extra\nbeta,ann@example.org,x\n")
    assert subscribers == [Subscriber("ann@example.org", "", frozenset({"beta"}), 2)]


def test_bad_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    subscribers, problems = read(
        tmp_path,
        "email,name,topics\n"
        "bob@,Bob,\n"
        "Ann <ann@example.org>,Ann,\n"
        "ok@example.org,Ok,nope;alpha\n"
        "none@example.org,None,nope;zilch\n"
        "ok@EXAMPLE.ORG,Again,\n"
        'cr@example.org,"Line\nbreak",\n',
    )
    assert [s.email for s in subscribers] == ["ok@example.org", "cr@example.org"]
    assert subscribers[0].topics == frozenset({"alpha"})  # unknown slugs dropped, never widened
    assert subscribers[1].name == "Line break"
    assert problems == [
        "subscribers.csv:2: error: address 'bob@' is not valid; write it as name@example.org",
        "subscribers.csv:3: error: address 'Ann <ann@example.org>' is not valid; write it as name@example.org",
        "subscribers.csv:4: warning: unknown topic(s) nope dropped; see `bulletin topics` for the slugs",
        "subscribers.csv:5: error: no known topic in 'nope;zilch'; write slugs from `bulletin topics` "
        "separated by ';', or leave it empty for all topics",
        "subscribers.csv:6: error: ok@EXAMPLE.ORG is already on line 4; the first row wins: delete this one",
    ]


def test_an_internationalised_domain_is_kept_in_its_ascii_form(tmp_path: Path) -> None:
    """carol@bücher.de was refused as not valid; smtplib and relays without SMTPUTF8 need the
    domain in ASCII, and both spellings are one mailbox. A local part outside ASCII is still
    refused, with what to write instead."""
    subscribers, problems = read(
        tmp_path,
        "email,name,topics\nCarol@Bücher.de,Carol,\ncarol@xn--bcher-kva.de,Again,\njörg@example.org,Jörg,\n",
    )
    assert [s.email for s in subscribers] == ["Carol@xn--bcher-kva.de"]
    assert problems == [
        "subscribers.csv:3: error: carol@xn--bcher-kva.de is already on line 2; the first row wins: "
        "delete this one",
        "subscribers.csv:4: error: address 'jörg@example.org' is not valid; the part before @ must be "
        "in ASCII letters, digits and .!#$%&'*+/=?^_`{|}~- (relays take no other)",
    ]


def test_a_pasted_document_is_quoted_by_its_start_and_its_length(tmp_path: Path, site: SiteMaker) -> None:
    """A whole document pasted where an address goes: the message quotes its start and says
    how long it is, rather than echoing all of it to the terminal."""
    huge = "a" * 100_000 + "@example.org"  # a longer field stops at csv's own limit, named
    _, problems = read(tmp_path, f"email\n{huge}\n")
    assert problems == [
        f"subscribers.csv:2: error: address '{'a' * 100}…' is not valid; it is 100,012 characters "
        "long and an address has at most 254: write one address"
    ]
    for command in (["subscribers", "add", huge, "--new-ledger"], ["unsubscribe", huge, "--new-ledger"]):
        result = CliRunner().invoke(main, [*command, "--site", str(site.root)])
        assert result.exit_code == 2
        assert "it is 100,012 characters long" in result.stderr and len(result.stderr) < 1000


def test_a_hidden_character_is_shown_and_named(tmp_path: Path, site: SiteMaker) -> None:
    """A zero-width space pasted into an address used to be echoed as it is: the message
    showed an address that looks valid and said its local part is not ASCII."""
    _, problems = read(tmp_path, "email\nx\u200by@example.org\n")
    assert problems == [
        "subscribers.csv:2: error: address 'x\\u200by@example.org' is not valid; it holds U+200B ZERO "
        "WIDTH SPACE, which is hard to see: delete it, or type the address instead of pasting it"
    ]
    runner = CliRunner()
    for written, named in (
        ("a\u00a0b@example.org", "U+00A0 NO-BREAK SPACE"),
        ("a\u2060b@example.org", "U+2060 WORD JOINER"),
        ("a\u3164@example.org", "U+3164 HANGUL FILLER"),  # printable to Python, blank on screen
        ("a\ufe0fb@example.org", "U+FE0F VARIATION SELECTOR-16"),
    ):
        result = runner.invoke(
            main, ["subscribers", "add", written, "--new-ledger", "--site", str(site.root)]
        )
        assert result.exit_code == 2 and f"it holds {named}, which is hard to see" in result.stderr
        assert written not in result.stderr and written.encode("unicode_escape").decode() in result.stderr


@pytest.mark.parametrize(
    ("stored", "shown"),
    [("carol@xn--bcher-kva.de", "carol@b\u00fccher.de"), ("a@xn--wgv71a.jp", "a@\u65e5\u672c.jp"),
     ("a@example.org", "a@example.org"),
     ("a@xn--zz-.de", "a@xn--zz-.de"),  # no valid punycode: as mailed
     ("a@xn--ab-g4t.org", "a@xn--ab-g4t.org")],  # decodes to a bidi control: as mailed
)  # fmt: skip
def test_pages_show_an_internationalised_domain_as_it_is_written(stored: str, shown: str) -> None:
    assert display_address(stored) == shown
    assert ascii_address(display_address(stored)) == stored  # never another address than the mailed one


def test_a_long_internationalised_domain_is_shown_whole_and_its_mailed_length_counted() -> None:
    """Quoting a refused address cuts it at 100 characters; showing a valid one must not."""
    long = "carol@" + ".".join(["bücherbücherbücher-verkauf"] * 4) + ".de"
    stored = ascii_address(long)
    assert valid_address(stored) and len(stored) > 100
    assert display_address(stored) == long
    grows = "carol@" + ".".join(["ü" * 30 + "x" * 10] * 6) + ".de"  # 254 as written, not as mailed
    assert len(grows) <= 254 < len(ascii_address(grows)) and not valid_address(ascii_address(grows))
    assert address_fix(grows).startswith(f"its domain in ASCII (xn--…) makes it {len(ascii_address(grows))} ")


@pytest.mark.parametrize(
    ("written", "ascii"),
    [("carol@bücher.de", "carol@xn--bcher-kva.de"), (" Carol@BÜCHER.de ", "Carol@xn--bcher-kva.de"),
     ("a@straße.de", "a@xn--strae-oqa.de"), ("a@日本.jp", "a@xn--wgv71a.jp"),
     ("a@\uff45xample.org", "a@example.org"), ("a@example.org", "a@example.org"),
     # left as written, for valid_address to refuse:
     ("jörg@example.org", "jörg@example.org"), ("x@bü/cher.de", "x@bü/cher.de"),
     ("x@bücher.de:25", "x@bücher.de:25"), ("bücher.de", "bücher.de"), ("x@bü\ncher.de", "x@bü\ncher.de"),
     ("x@bü\tcher.de", "x@bü\tcher.de")],
)  # fmt: skip
def test_ascii_address(written: str, ascii: str) -> None:
    assert ascii_address(written) == ascii
    assert normalise_address(written) == ascii.lower()
    assert valid_address(ascii_address(written)) == (ascii.isascii() and "@" in ascii)
    assert not valid_address(written.strip()) or written.isascii()  # only the ASCII form is valid


def test_whole_file_problems(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError,
        match=r"subscribers.csv:1: error: no 'email' column; the first row must be email,name,topics",
    ):
        read(tmp_path, "address,name\nann@example.org,Ann\n")
    with pytest.raises(UsageError, match=r"subscribers.csv:2: error: not UTF-8; save the file as UTF-8"):
        read(tmp_path, b"email,name\nj\xf6rg@example.org,J\xf6rg\n")


@pytest.mark.parametrize(
    ("address", "valid"),
    [("a@example.org", True), ("first.last+tag@sub.example.co.uk", True), ("a@b", False),
     ("a@@example.org", False), ("a b@example.org", False), (".a@example.org", False),
     ("a@example.123", False), ("a@-bad.example.org", False), ("x" * 65 + "@example.org", False),
     ('"bob"@example.org', False), ('"b\\ob"@example.org', False), ('"j\u00f6rg"@example.org', False),
     ('"a b"@example.org', False), ("=?utf-8?q?ceo=40victim.example=2C_x?=@example.org", False),
     ("=?utf-8?q?CEO_=3Cceo=40victim.example=3E?=@example.org", False), ("a=?b@example.org", False),
     ("a=b?c@example.org", True), ("?=a=@example.org", True)],
)  # fmt: skip
def test_address_checks(address: str, valid: bool) -> None:
    assert valid_address(address) is valid


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [("Ann+News@Example.org", "ann@example.org"), ("ann@example.org", "ann@example.org"),
     ("a.n.n+x+y@example.org", "a.n.n@example.org"), ("+x@example.org", "+x@example.org"),
     ("A.nn+tag@GoogleMail.com", "ann@gmail.com"), ("a.n.n@gmail.com", "ann@gmail.com"),
     ("ann@mail.gmail.com", "ann@mail.gmail.com"), ("carol+x@b\u00fccher.de", "carol@xn--bcher-kva.de")],
)  # fmt: skip
def test_the_mailbox_an_address_reaches(address: str, mailbox: str) -> None:
    assert mailbox_key(address) == mailbox


def test_an_encoded_word_before_the_at_is_refused_and_said_why(tmp_path: Path) -> None:
    """Mail programs decode an encoded word even in an address: in To, this one shows as
    ceo@victim.example and x@example.org."""
    address = "=?utf-8?q?ceo=40victim.example=2C_x?=@example.org"
    assert address_fix(address) == (
        "mail programs would read the '=?' before @ as an encoded word and show another address: "
        "write the address without it"
    )
    assert valid_address(address, stored=True)  # one in the ledger from before, to find and remove
    rows, problems = read(tmp_path, f"email,name\n{address},Ann\nann@example.org,Ann\n")
    assert [row.email for row in rows] == ["ann@example.org"]
    assert problems == [f"subscribers.csv:2: error: address '{address}' is not valid; {address_fix(address)}"]


# -- the subscribers kept in the ledger (`bulletin subscribers …`) -------------------------------


def _cli(site: SiteMaker, *args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--site", str(site.root), "--now", "2026-11-25T12:00"])


def _topics_site(site: SiteMaker) -> None:
    site.item("a.md", categories=["Alpha"])
    site.item("b.md", categories=["Beta"])


def test_import_export_list_add_remove(site: SiteMaker) -> None:
    _topics_site(site)
    csv_path = site.root / "list.csv"
    csv_path.write_text(
        "email,name,topics\nAnn@example.org,Ann,alpha\nbob@example.org,,\nbad,,\n", encoding="utf-8"
    )
    assert _cli(site, "subscribers", "import", str(csv_path)).exit_code == 3  # no ledger yet
    # --site and the other global options also go between the group and its command.
    between = CliRunner().invoke(main, ["subscribers", "--site", str(site.root), "list"])
    assert between.exit_code == 3 and "no ledger at .bulletin/ledger.sqlite yet" in between.stderr
    for command in (("status",), ("subscribers", "list"), ("subscribers", "export")):
        missing = _cli(site, *command)  # none of these has --new-ledger to suggest
        assert missing.exit_code == 3
        assert missing.stderr == (
            "bulletin: no ledger at .bulletin/ledger.sqlite yet, so no subscribers: 'bulletin subscribers add "
            "ADDRESS --new-ledger', 'subscribers import FILE --new-ledger' or 'serve --new-ledger' creates it "
            "(or restore it from a backup)\n"
        ), command
    result = _cli(site, "subscribers", "import", str(csv_path), "--new-ledger")
    assert result.exit_code == 1, result.output  # one bad row skipped
    assert "imported 2 from" in result.stdout and "2 active" in result.stdout
    assert f"{csv_path}:4: error: address 'bad' is not valid" in result.stderr
    assert (
        _cli(site, "subscribers", "remove", "bob@example.org").stdout
        == "removed bob@example.org: send will not mail it again\n"
    )
    # A typo used to be 'removed' too, twice over, and suppressed without a word.
    assert _cli(site, "subscribers", "remove", "bob@example.org").stdout == (
        "bob@example.org is unsubscribed already: send does not mail it\n"
    )
    assert _cli(site, "subscribers", "remove", "nobdy@example.org").stdout == (
        "nobdy@example.org is not a subscriber; it is suppressed now: send will not mail it, not "
        "even from a --subscribers file\n"
    )
    again = _cli(site, "subscribers", "import", str(csv_path))
    assert "1 active, 1 unsubscribed" in again.stdout  # an address that left stays so
    added = _cli(site, "subscribers", "add", "carol@example.org", "--name", "Carol", "--topics", "beta")
    assert added.exit_code == 0 and added.stdout == "added carol@example.org: active\n"
    listed = _cli(site, "subscribers", "list", "--topic", "beta").stdout.splitlines()
    assert listed[0].split() == ["EMAIL", "STATUS", "TOPICS", "NAME"]
    assert (
        [line.split()[:3] for line in listed[1:]]
        == [  # ann gets alpha only
            ["bob@example.org", "unsubscribed", "*"],
            ["carol@example.org", "active", "beta", "Carol"][:3],
        ]
    )
    active = _cli(site, "subscribers", "list", "--topic", "beta", "--status", "active").stdout.splitlines()
    assert [line.split()[0] for line in active[1:]] == ["carol@example.org"]
    assert len(_cli(site, "subscribers", "list", "--status", "active").stdout.splitlines()) == 3
    typo = _cli(site, "subscribers", "list", "--topic", "betta")  # would list only the '*' rows
    assert typo.exit_code == 2 and typo.stdout == ""
    assert "--topic: unknown topic slug betta; did you mean 'beta'? known: alpha, beta" in typo.stderr
    assert _cli(site, "build").exit_code == 0  # publishes the slugs, read below
    (site.root / "content" / "b.md").unlink()  # beta is gone; carol still chose it
    gone = _cli(site, "subscribers", "list", "--topic", "beta")
    assert gone.exit_code == 0
    assert [line.split()[0] for line in gone.stdout.splitlines()[1:]] == [
        "carol@example.org"
    ]  # not bob's '*'
    assert "--topic: the site has no topic 'beta' now; listed are those who still chose it" in gone.stderr
    (site.root / "content").rename(site.root / "away")  # a ledger query needs no items
    alpha = _cli(site, "subscribers", "list", "--topic", "alpha")
    assert alpha.exit_code == 0, alpha.output
    assert [line.split()[0] for line in alpha.stdout.splitlines()[1:]] == [
        "Ann@example.org",
        "bob@example.org",
    ]
    (site.root / ".bulletin" / "slugs.json").rename(site.root / "slugs.away")  # nothing to tell by
    unsure = _cli(site, "subscribers", "list", "--topic", "alpha")
    assert unsure.exit_code == 0 and "Ann@example.org" in unsure.stdout and "bob@example.org" in unsure.stdout
    assert "--topic: cannot tell whether the site has 'alpha'" in unsure.stderr
    (site.root / "slugs.away").rename(site.root / ".bulletin" / "slugs.json")
    (site.root / "away").rename(site.root / "content")
    exported = _cli(site, "subscribers", "export").stdout.splitlines()
    assert exported[0].startswith("email,name,topics,status,source,created")
    assert any(line.startswith("Ann@example.org,Ann,alpha,active,import,") for line in exported)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "@"], "ADDRESS: '@' is not an email address"),
        (["add", "x@", "--new-ledger"], "ADDRESS: 'x@' is not an email address"),
        (
            ["add", "ann@example.org", "--topics", "nope", "--new-ledger"],
            "--topics: unknown topic slug nope",
        ),
        (["remove", "not-an-address"], "is not an email address"),
        (
            ["add", '"ann"@example.org', "--new-ledger"],
            "ADDRESS: '\"ann\"@example.org' is not an email address",
        ),
    ],
)
def test_subscriber_commands_refuse_bad_input(site: SiteMaker, args: list[str], message: str) -> None:
    _topics_site(site)
    result = _cli(site, "subscribers", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_send_mails_the_ledgers_active_subscribers_by_default(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulletin.ledger import Ledger
    from bulletin.subscriptions import Consent, Subscriptions

    from .smtp import SmtpServer

    monkeypatch.setenv("BULLETIN_SECRET", "secret-0123456789-secret")
    _topics_site(site)
    with SmtpServer() as server:
        site.write_config(digest={"from": "N <n@news.example.org>", "address": "1 Main St",
                                  "unsubscribe_url": "https://news.example.org/u/{token}"},
                          smtp={"host": "127.0.0.1", "port": server.port})  # fmt: skip
        assert (
            _cli(site, "subscribers", "add", "ann@example.org", "--topics", "alpha", "--new-ledger").exit_code
            == 0
        )
        assert _cli(site, "subscribers", "add", "bob@example.org").exit_code == 0
        assert _cli(site, "subscribers", "add", "gone@example.org").exit_code == 0
        assert _cli(site, "subscribers", "remove", "gone@example.org").exit_code == 0
        with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
            consent = Consent(datetime(2026, 11, 20, tzinfo=UTC), "https://x/subscribe", "text", None)
            Subscriptions(ledger).request("pending@example.org", "", None, consent)
        result = _cli(site, "send")
        assert result.exit_code == 0, result.output
        assert sorted(r.recipient for r in server.handler.received) == ["ann@example.org", "bob@example.org"]
        assert "Beta" not in server.handler.to("ann@example.org")[0].data.decode()


def test_the_unsubscribe_command_ends_a_subscription_as_the_unsubscribe_page_does(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bulletin unsubscribe` used to add the address to the suppression list only: the
    subscriber stayed `active` in `subscribers list`, `status` and the manage page, and
    could never subscribe again through the web."""
    from .smtp import SmtpServer

    secret = "secret-0123456789-secret"
    monkeypatch.setenv("BULLETIN_SECRET", secret)
    _topics_site(site)
    with SmtpServer() as server:
        site.write_config(digest={"from": "N <n@news.example.org>", "address": "1 Main St",
                                  "unsubscribe_url": "https://news.example.org/u/{token}"},
                          smtp={"host": "127.0.0.1", "port": server.port})  # fmt: skip
        for address in ("ann@example.org", "bob@example.org", "cy@example.org"):
            assert _cli(site, "subscribers", "add", address, "--new-ledger").exit_code == 0
        by_address = _cli(site, "unsubscribe", "Ann@Example.org")
        assert by_address.stdout == "unsubscribed Ann@Example.org: send will not mail it again\n"
        list_id = load_config(site.root).digest.list_id
        token = make_token("bob@example.org", secret, list_id)
        assert (
            _cli(site, "unsubscribe", token).stdout
            == "unsubscribed bob@example.org: send will not mail it again\n"
        )
        again = _cli(site, "unsubscribe", "ann@example.org")
        assert again.stdout == "ann@example.org is unsubscribed already: send does not mail it\n"
        listed = {
            line.split()[0]: line.split()[1]
            for line in _cli(site, "subscribers", "list").stdout.splitlines()[1:]
        }
        assert listed == {
            "ann@example.org": "unsubscribed",
            "bob@example.org": "unsubscribed",
            "cy@example.org": "active",
        }
        assert _cli(site, "send").exit_code == 0
        assert [r.recipient for r in server.handler.received] == ["cy@example.org"]
        # As for anyone who left through the page, coming back is theirs to decide.
        back = _cli(site, "subscribers", "add", "ann@example.org")
        assert back.exit_code == 3
        assert (
            "ann@example.org is unsubscribed; it stays so (they can subscribe again on the web)"
            in back.stderr
        )


def test_a_field_over_the_csv_limit_names_the_line_where_its_row_starts(tmp_path: Path) -> None:
    huge = "x" * 200_000
    fix = "check the quotes there: a quote that is never closed runs on to the end of the file"
    with pytest.raises(UsageError) as caught:
        read(tmp_path, f'email,name,topics\nann@example.org,Ann,\nbob@example.org,"{huge}",\n')
    assert str(caught.value) == (
        f"{tmp_path}/subscribers.csv:3: error: cannot read the row: field larger than field limit (131072); {fix}"
    )
    unclosed = "".join(f"u{n}@example.org,U{n},\n" for n in range(20_000))
    with pytest.raises(UsageError) as caught:
        read(tmp_path, f'email,name,topics\nann@example.org,"Ann,\n{unclosed}')
    assert str(caught.value).startswith(f"{tmp_path}/subscribers.csv:2: error: cannot read the row: ")


def test_addresses_compare_case_insensitively_local_part_too() -> None:
    # Mailbox providers fold case: Ann@ and ann@ are one mailbox, so one subscriber.
    assert normalise_address(" Ann@Example.ORG ") == "ann@example.org"
    assert normalise_address("JÖRG@Exämple.org") == normalise_address("jörg@exämple.org")
    assert recipient_address(" Ann@Example.ORG ") == "Ann@example.org"  # To keeps the local part


def test_one_address_in_two_spellings_is_one_subscriber(tmp_path: Path) -> None:
    subscribers, problems = read(
        tmp_path, "email,name,topics\nBob@example.org,Bob,\nbob@EXAMPLE.org,Bobby,\nann@example.org,,\n"
    )
    assert subscribers == [
        Subscriber("Bob@example.org", "Bob", None, 2),  # the first row, as written
        Subscriber("ann@example.org", "", None, 4),
    ]
    assert problems == [
        "subscribers.csv:3: error: bob@EXAMPLE.org is already on line 2; the first row wins: delete this one"
    ]


def test_send_stops_on_an_unreadable_row_before_mailing_anyone(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BULLETIN_SECRET", "test-secret-0123456789")
    site.write_config(digest={"from": "News <news@example.org>", "address": "1 Road, Town",
                              "unsubscribe_url": "https://news.example.org/u?t={token}"})  # fmt: skip
    site.item("a.md", id="a", title="Alpha", date="2026-11-18", categories=["Alpha"])
    path = site.root / "subscribers.csv"
    path.write_text('email,name,topics\nann@example.org,Ann,\nbob@example.org,"' + "B" * 140_000 + '",\n')
    result = CliRunner().invoke(
        main,
        [
            "send",
            "--subscribers",
            str(path),
            "--dry-run",
            "--site",
            str(site.root),
            "--now",
            "2026-11-25T12:00",
        ],
    )
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"{path}:3: error: cannot read the row: field larger than field limit (131072); "
        "check the quotes there: a quote that is never closed runs on to the end of the file\n"
    )
    assert not (site.root / ".bulletin" / "outbox").exists()


def test_add_says_whether_a_suppressed_address_can_come_back(site: SiteMaker) -> None:
    from bulletin.ledger import Ledger
    from bulletin.subscriptions import Subscriptions

    _topics_site(site)
    assert _cli(site, "subscribers", "add", "ann@example.org", "--new-ledger").exit_code == 0
    assert _cli(site, "subscribers", "remove", "ann@example.org").exit_code == 0
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        Subscriptions(ledger).leave("bob@example.org", datetime(2026, 11, 20, tzinfo=UTC), "complained")
    left = _cli(site, "subscribers", "add", "ann@example.org")
    assert left.stderr == (
        "bulletin: ann@example.org is unsubscribed; it stays so (they can subscribe again on the web)\n"
    )
    complained = _cli(site, "subscribers", "add", "bob@example.org")
    assert (complained.exit_code, complained.stderr) == (
        left.exit_code,
        "bulletin: bob@example.org is complained; it stays so: bulletin never mails it again\n",
    )


def test_a_request_never_confirmed_expires_with_its_link(tmp_path: Path) -> None:
    from datetime import timedelta

    from bulletin.ledger import Ledger
    from bulletin.subscriptions import Consent, Subscriptions

    asked = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with Ledger.open(tmp_path / "ledger.sqlite", create=True) as ledger:
        store = Subscriptions(ledger)
        store.add("active@example.org", "", None, asked, "cli")
        store.leave("left@example.org", asked - timedelta(days=9))
        for address in ("new@example.org", "left@example.org", "late@example.org"):
            when = asked + timedelta(hours=2) if address == "late@example.org" else asked
            store.request(address, "", None, Consent(when, "https://x/subscribe", "text", None))
        assert store.expire_pending(asked + timedelta(hours=48), 48) == 0  # the links still work
        assert store.expire_pending(asked + timedelta(hours=49), 48) == 2
        assert store.get("new@example.org") is None
        assert store.get("left@example.org").status == "unsubscribed"  # type: ignore[union-attr]  # as it was
        assert store.get("late@example.org").status == "pending"  # type: ignore[union-attr]
        assert store.get("active@example.org").status == "active"  # type: ignore[union-attr]
        assert ledger.suppression("left@example.org") == "unsubscribed"


def test_status_list_and_export_leave_out_requests_never_confirmed(site: SiteMaker) -> None:
    from bulletin.ledger import Ledger
    from bulletin.subscriptions import Consent, Subscriptions

    _topics_site(site)
    assert _cli(site, "subscribers", "add", "ann@example.org", "--new-ledger").exit_code == 0
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        consent = Consent(datetime(2026, 11, 20, tzinfo=UTC), "https://x/subscribe", "text", None)
        Subscriptions(ledger).request("pending@example.org", "", None, consent)  # 5½ days before --now
    assert "pending@example.org" not in _cli(site, "subscribers", "list").stdout
    assert "pending@example.org" not in _cli(site, "subscribers", "export").stdout
    assert "  pending            0" in _cli(site, "status").stdout


def test_an_export_imported_elsewhere_keeps_who_left(site: SiteMaker, tmp_path: Path) -> None:
    """Moving a list to a new machine (export, then import with --new-ledger) made everyone
    active again: those who unsubscribed, bounced or complained were mailed again."""
    from bulletin.ledger import Ledger
    from bulletin.subscriptions import Subscriptions

    _topics_site(site)
    for address in ("ann@example.org", "bob@example.org", "cat@example.org", "dan@example.org"):
        assert _cli(site, "subscribers", "add", address, "--topics", "alpha", "--new-ledger").exit_code == 0
    assert _cli(site, "subscribers", "remove", "bob@example.org").exit_code == 0
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        at = datetime(2026, 11, 24, tzinfo=UTC)
        Subscriptions(ledger).leave("cat@example.org", at, "bounced")
        Subscriptions(ledger).leave("dan@example.org", at, "complained")
    exported = _cli(site, "subscribers", "export").stdout
    (tmp_path / "list.csv").write_text(exported + "eve@example.org,,,pending\n", encoding="utf-8")

    shutil.rmtree(site.root / ".bulletin")  # the new machine
    result = _cli(site, "subscribers", "import", str(tmp_path / "list.csv"), "--new-ledger")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("imported 5 from")
    assert "1 active, 1 bounced, 1 complained, 1 pending (not imported: never confirmed), 1 unsubscribed" in (
        result.stdout
    )
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        assert {a: r for a, r in ledger.suppressed().items()} == {
            "bob@example.org": "unsubscribed", "cat@example.org": "bounced", "dan@example.org": "complained",
        }  # fmt: skip
        store = Subscriptions(ledger)
        # Those who left keep their rows too: status and list count them as the old ledger did.
        assert [(row.email, row.status, row.topics) for row in store.rows()] == [
            ("ann@example.org", "active", frozenset({"alpha"})),
            ("bob@example.org", "unsubscribed", frozenset({"alpha"})),
            ("cat@example.org", "bounced", frozenset({"alpha"})),
            ("dan@example.org", "complained", frozenset({"alpha"})),
        ]
    status = _cli(site, "status").stdout
    assert "Subscribers: 4\n" in status and re.search(r"\n  unsubscribed +1\n  bounced +1\n", status)
    typo = tmp_path / "typo.csv"
    typo.write_text("email,status\nfay@example.org,activ\n", encoding="utf-8")
    refused = _cli(site, "subscribers", "import", str(typo))
    assert refused.exit_code == 1
    assert f"{typo}:2: error: status 'activ' is not one of pending, active, unsubscribed" in refused.stderr


def test_an_export_imported_elsewhere_keeps_how_and_when_each_consented(
    site: SiteMaker, tmp_path: Path
) -> None:
    """The export writes each row's source, dates and consent record; the import dropped
    them all, so a list moved to a new machine lost the proof of who agreed to what."""
    from bulletin.ledger import Ledger

    _topics_site(site)
    for address in ("ann@example.org", "bob@example.org"):
        assert _cli(site, "subscribers", "add", address, "--new-ledger").exit_code == 0
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        ledger.db.execute(
            "UPDATE subscribers SET source = 'web', created = '2026-03-01T09:00:00+00:00',"
            " confirmed = '2026-03-01T09:05:00+00:00', consent_at = '2026-03-01T09:05:00+00:00',"
            " consent_url = 'https://news.example.org/subscribe', consent_text = 'Send me the digest',"
            " consent_ip = '203.0.113.7'"
        )
        ledger.db.commit()
    assert _cli(site, "subscribers", "remove", "bob@example.org").exit_code == 0
    before = _cli(site, "subscribers", "export").stdout
    (tmp_path / "list.csv").write_text(before, encoding="utf-8")
    shutil.rmtree(site.root / ".bulletin")  # the new machine
    imported = _cli(site, "subscribers", "import", str(tmp_path / "list.csv"), "--new-ledger")
    assert imported.exit_code == 0, imported.output
    after = _cli(site, "subscribers", "export").stdout

    def kept(export: str) -> list[list[str]]:  # every column but `changed`, which the move sets
        rows = list(csv.reader(io.StringIO(export)))
        changed = rows[0].index("changed")
        return [row[:changed] + row[changed + 1 :] for row in rows]

    assert kept(after) == kept(before)
    assert "203.0.113.7" in after and "Send me the digest" in after
    odd = tmp_path / "odd.csv"
    odd.write_text(
        "email,created,consent_at\ncy@example.org,yesterday,\nda@example.org,,0001-01-01T00:00:00+14:00\n",
        encoding="utf-8",
    )
    warned = _cli(site, "subscribers", "import", str(odd))
    assert (
        f"{odd}:2: warning: created 'yesterday' is not a date-time with its offset; left out" in warned.stderr
    )
    assert f"{odd}:3: warning: consent_at '0001-01-01T00:00:00+14:00' is not a date-time" in warned.stderr
    assert _cli(site, "subscribers", "show", "da@example.org").exit_code == 0
    # Instants compare as instants: 23:00 at +05:00 is 18:00 UTC, before the row's own dates.
    early = tmp_path / "early.csv"
    early.write_text(
        "email,created,confirmed\ncy@example.org,2026-11-24T23:00:00+05:00,2026-11-24T23:05:00+05:00\n",
        encoding="utf-8",
    )
    assert _cli(site, "subscribers", "import", str(early)).exit_code == 0
    row = next(
        r
        for r in csv.DictReader(io.StringIO(_cli(site, "subscribers", "export").stdout))
        if r["email"] == "cy@example.org"
    )
    assert (row["created"], row["confirmed"]) == ("2026-11-24T18:00:00+00:00", "2026-11-24T18:05:00+00:00")


def test_control_characters_in_names_never_reach_the_terminal(site: SiteMaker) -> None:
    from bulletin.ledger import Ledger
    from bulletin.subscriptions import Subscriptions

    _topics_site(site)
    assert (
        _cli(
            site, "subscribers", "add", "ann@example.org", "--name", "Ann\x1b[2J\x07", "--new-ledger"
        ).exit_code
        == 0
    )
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        assert Subscriptions(ledger).get("ann@example.org").name == "Ann [2J"  # type: ignore[union-attr]
        # A name written by anything else (an older bulletin, sqlite3) is shown escaped.
        Subscriptions(ledger).add(
            "eve@example.org",
            "Eve\x1b]0;owned\x07\u202egpj.exe\r",
            None,
            datetime(2026, 11, 20, tzinfo=UTC),
            "cli",
        )
    listed = _cli(site, "subscribers", "list").stdout
    assert "\x1b" not in listed and "\x07" not in listed and "\u202e" not in listed and "\r" not in listed
    assert "Eve\\x1b]0;owned\\x07\\u202egpj.exe\\r" in listed


def test_export_neutralises_spreadsheet_formulas_and_import_reads_them_back(site: SiteMaker) -> None:
    import csv
    import io

    from bulletin.ledger import Ledger
    from bulletin.subscriptions import Subscriptions

    _topics_site(site)
    names = {
        "ann@example.org": '=HYPERLINK("https://evil.example","Ann")',
        "bob@example.org": "+1 555",
        "-carol@example.org": "-Carol",
        "dee@example.org": "@SUM(A1)",
        "eve@example.org": "Eve = fine",
    }
    assert _cli(site, "subscribers", "add", "x@example.org", "--new-ledger").exit_code == 0
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        for address, name in names.items():
            Subscriptions(ledger).add(address, name, None, datetime(2026, 11, 20, tzinfo=UTC), "cli")
    exported = _cli(site, "subscribers", "export").stdout
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(exported))}
    assert rows["'-carol@example.org"]["name"] == "'-Carol"
    assert rows["ann@example.org"]["name"] == "'" + names["ann@example.org"]
    assert [rows[a]["name"] for a in ("bob@example.org", "dee@example.org", "eve@example.org")] == [
        "'+1 555",
        "'@SUM(A1)",
        "Eve = fine",
    ]
    assert all(
        not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        for row in rows.values()
        for cell in row.values()
    )
    # The export, imported into another site's ledger, gives back the names and addresses.
    other = SiteMaker(site.root.parent / "other")
    _topics_site(other)
    (other.root / "export.csv").write_text(exported, encoding="utf-8")
    assert _cli(other, "subscribers", "import", str(other.root / "export.csv"), "--new-ledger").exit_code == 0
    with Ledger.open(other.root / ".bulletin" / "ledger.sqlite") as ledger:
        back = {row.email: row.name for row in Subscriptions(ledger).rows()}
    assert back == {**names, "x@example.org": ""}


def test_ctrl_c_during_an_import_says_how_far_it_got(
    site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said only 'bulletin: interrupted'; each row is its own transaction, so the count is exact."""
    from bulletin.subscriptions import Subscriptions as Store

    csv_path = site.root / "people.csv"
    csv_path.write_text("email,name,topics\n" + "".join(f"p{n}@example.org,,\n" for n in range(4)))
    add, calls = Store.add, []

    def interrupted(self: Store, *args: object, **kwargs: object) -> str:
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return add(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "add", interrupted)
    result = _cli(site, "subscribers", "import", str(csv_path), "--new-ledger")
    assert result.exit_code == 130
    assert result.stderr == (
        "bulletin: interrupted: 2 of 4 subscribers imported; the same command imports the rest "
        "(those in already stay as they are)\n"
    )
    monkeypatch.setattr(Store, "add", add)
    assert "imported 4 from" in _cli(site, "subscribers", "import", str(csv_path)).stdout


def test_quiet_keeps_what_a_listing_command_lists(site: SiteMaker) -> None:
    # -q quiets what a command did (cron mails any output), never what it was run to show.
    _topics_site(site)
    assert _cli(site, "-q", "subscribers", "add", "ann@example.org", "--new-ledger").stdout == ""
    for command in (
        ["topics"],
        ["status"],
        ["subscribers", "list"],
        ["subscribers", "show", "ann@example.org"],
        ["subscribers", "export"],
    ):
        loud, quiet = _cli(site, *command), _cli(site, "-q", *command)
        assert (quiet.exit_code, quiet.stderr) == (0, ""), command
        assert quiet.stdout == loud.stdout != "", command


def test_a_file_separated_by_semicolons_is_read_as_a_spreadsheet_wrote_it(tmp_path: Path) -> None:
    # Excel in a locale with a decimal comma saves "CSV" with ';' between the columns.
    subscribers, problems = read(
        tmp_path,
        "email;name;topics\r\n"
        "semi1@example.org;Semi;\r\n"
        'semi2@example.org;"Doe, Jo";"alpha;beta"\r\n'
        "semi3@example.org;;gamma,alpha\r\n",
    )
    assert problems == []
    assert subscribers == [
        Subscriber("semi1@example.org", "Semi", None, 2),
        Subscriber("semi2@example.org", "Doe, Jo", frozenset({"alpha", "beta"}), 3),
        Subscriber("semi3@example.org", "", frozenset({"alpha", "gamma"}), 4),
    ]
    # A comma-separated file whose names hold a ';' is still read by its commas.
    commas, problems = read(tmp_path, "email,name,topics\nann@example.org,Ann; Lee,beta\n")
    assert (commas, problems) == ([Subscriber("ann@example.org", "Ann; Lee", frozenset({"beta"}), 2)], [])


def test_a_topic_written_by_its_name_suggests_its_slug(tmp_path: Path, site: SiteMaker) -> None:
    fix = "write slugs from `bulletin topics` separated by ';', or leave it empty for all topics"
    _, problems = read(
        tmp_path,
        "email,name,topics\nx@example.org,,Alpha\ny@example.org,,alpha;Gama\nz@example.org,,nope\n",
    )
    assert problems == [
        f"subscribers.csv:2: error: no known topic in 'Alpha' (did you mean 'alpha'?); {fix}",
        "subscribers.csv:3: warning: unknown topic(s) Gama dropped (did you mean 'gamma'?); "
        "see `bulletin topics` for the slugs",
        f"subscribers.csv:4: error: no known topic in 'nope'; {fix}",
    ]
    _topics_site(site)
    added = _cli(site, "subscribers", "add", "ann@example.org", "--topics", "Beta", "--new-ledger")
    assert (added.exit_code, added.stderr) == (
        2,
        "bulletin: --topics: unknown topic slug Beta; did you mean 'beta'? known: alpha, beta "
        "(see bulletin topics)\n",
    )


def test_add_says_what_it_changed_of_a_subscriber(site: SiteMaker) -> None:
    from bulletin.ledger import Ledger
    from bulletin.subscriptions import Consent, Subscriptions

    _topics_site(site)
    first = _cli(site, "subscribers", "add", "bob@example.org", "--name", "Bob", "--topics", "alpha;beta",
                 "--new-ledger")  # fmt: skip
    assert first.stdout == "added bob@example.org: active\n"
    fewer = _cli(site, "subscribers", "add", "bob@example.org", "--name", "Bob", "--topics", "beta")
    assert fewer.stdout == "updated bob@example.org: topics beta (were alpha, beta)\n"
    same = _cli(site, "subscribers", "add", "bob@example.org", "--name", "Bob", "--topics", "beta")
    assert same.stdout == "bob@example.org is a subscriber already: nothing changed\n"
    every = _cli(site, "subscribers", "add", "bob@example.org")  # no --name: the name goes too
    assert every.stdout == "updated bob@example.org: topics every topic (was beta); name '' (was 'Bob')\n"
    with Ledger.open(site.root / ".bulletin" / "ledger.sqlite") as ledger:
        consent = Consent(datetime(2026, 11, 25, tzinfo=UTC), "https://x/subscribe", "text", None)
        Subscriptions(ledger).request("cy@example.org", "Cy", None, consent)
    confirmed = _cli(site, "subscribers", "add", "cy@example.org", "--name", "Cy")
    assert confirmed.stdout == "updated cy@example.org: active (was pending)\n"
