"""Unsubscribe tokens — a web endpoint verifies them with the secret alone."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from click.testing import CliRunner

from bulletin import verify_unsubscribe_token
from bulletin.cli import main
from bulletin.ledger import Ledger
from bulletin.tokens import (
    make_form_token,
    make_purpose_token,
    make_token,
    verify_form_token,
    verify_purpose_token,
)
from bulletin.urls import Urls

from .conftest import SiteMaker

SECRET = "s3cret-s3cret-s3cret"
LIST = "weekly.news.example.org"


def test_the_token_format_by_hand() -> None:
    address = "ann@example.org"
    mac = hmac.new(SECRET.encode(), f"{LIST}\n{address}".encode(), hashlib.sha256).digest()
    expected = (
        base64.urlsafe_b64encode(address.encode()).rstrip(b"=").decode()
        + "."
        + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()[:22]
    )
    assert make_token(address, SECRET, LIST) == expected
    assert expected.startswith("YW5uQGV4YW1wbGUub3Jn.")


@pytest.mark.parametrize("address", ["ann@example.org", "ann+news@example.org", "jörg@exämple.org", "a@b.co"])
def test_round_trip(address: str) -> None:
    assert verify_unsubscribe_token(make_token(address, SECRET, LIST), SECRET, LIST) == address


def test_forged_and_foreign_tokens_fail() -> None:
    token = make_token("ann@example.org", SECRET, LIST)
    _, signature = token.split(".")
    other = base64.urlsafe_b64encode(b"bob@example.org").rstrip(b"=").decode()
    assert verify_unsubscribe_token(f"{other}.{signature}", SECRET, LIST) is None
    assert verify_unsubscribe_token(token, "another-secret-value", LIST) is None
    assert verify_unsubscribe_token(token, SECRET, "other.list") is None
    assert verify_unsubscribe_token(token[:-1], SECRET, LIST) is None


def test_only_the_tokens_own_encoding_verifies() -> None:
    """The decoder skipped characters outside base64 and took padding: a token with "!!~~"
    inside, or "===" after its address, verified as the token itself."""
    token = make_token("ann@example.org", SECRET, LIST)
    encoded, signature = token.split(".")
    assert encoded == "YW5uQGV4YW1wbGUub3Jn"  # its last character carries two spare bits
    for changed in (f"YW5u!!~~QGV4YW1wbGUub3Jn.{signature}", f"{encoded}===.{signature}",
                    f"{encoded}=.{signature}", f"YW5uQGV4YW1wbGUub3Jo.{signature}",
                    f"YW5u QGV4YW1wbGUub3Jn.{signature}"):  # fmt: skip
        assert verify_unsubscribe_token(changed, SECRET, LIST) is None, changed
    manage = make_purpose_token("manage", "ann@example.org", SECRET, LIST)
    assert verify_purpose_token("manage", "!!" + manage, SECRET, LIST) is None
    form = make_form_token("subscribe", SECRET, LIST)
    assert verify_form_token(form.replace(".", "==.", 1), "subscribe", SECRET, LIST, 60) is None
    # base64's + and / for base64url's - and _, as a link may be rewritten, are the same token.
    for address, urlsafe, standard in (("b???@example.org", "_", "/"), ("a?>b@example.org", "-", "+")):
        odd = make_token(address, SECRET, LIST)
        assert urlsafe in odd.split(".")[0]
        assert verify_unsubscribe_token(odd.replace(urlsafe, standard, 1), SECRET, LIST) == address


@pytest.mark.parametrize("garbage", ["", ".", "abc", "a.b.c", "!!!.???", "é.é", "YW5u", "=.=", "YW5u."])
def test_garbage_never_raises(garbage: str) -> None:
    assert verify_unsubscribe_token(garbage, SECRET, LIST) is None


def test_unsubscribe_url_is_encoded(site: SiteMaker) -> None:
    site.write_config(digest={"unsubscribe_url": "https://x.example/u?t={token}&e={email}"})
    url = Urls(site.config()).unsubscribe("a+b@example.org", "tok.en")
    assert url == "https://x.example/u?t=tok.en&e=a%2Bb%40example.org"


@pytest.mark.parametrize("who", ["@", "x@", "@example.org", "a b@example.org", "ann@example"])
def test_unsubscribing_something_that_is_no_address_is_a_usage_error(site: SiteMaker, who: str) -> None:
    site.write_config(digest={"unsubscribe_url": "https://news.example.org/u/{token}"})
    runner = CliRunner(env={"BULLETIN_SECRET": SECRET})
    args = ["--site", str(site.root), "--now", "2026-11-25T12:00"]
    assert runner.invoke(main, ["unsubscribe", "ann@example.org", "--new-ledger", *args]).exit_code == 0
    result = runner.invoke(main, ["unsubscribe", who, *args])
    assert result.exit_code == 2
    assert result.stderr == (
        f"bulletin: {who!r} is not an email address; write it as name@example.org, "
        "or give the token from the subscriber's unsubscribe link\n"
    )
    with Ledger.open(site.root / ".bulletin/ledger.sqlite") as ledger:
        assert ledger.suppressed() == {"ann@example.org": "unsubscribed"}  # nothing recorded
