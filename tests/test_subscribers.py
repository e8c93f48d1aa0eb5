"""SPEC §6: the subscribers file — every bad row reported and skipped, never widened."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulletin.addresses import normalise_address, valid_address
from bulletin.cli import main
from bulletin.errors import UsageError
from bulletin.mail.subscribers import Subscriber, read_subscribers
from bulletin.report import Report

from .conftest import SiteMaker

KNOWN = {"alpha", "beta", "gamma"}


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
     ("a@example.123", False), ("a@-bad.example.org", False), ("x" * 65 + "@example.org", False)],
)  # fmt: skip
def test_address_checks(address: str, valid: bool) -> None:
    assert valid_address(address) is valid


def test_addresses_compare_with_the_domain_lower_cased() -> None:
    assert normalise_address(" Ann@Example.ORG ") == "Ann@example.org"


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
