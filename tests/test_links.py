"""`url_problem` against the parser it stands in for: nh3's, asked about the whole URL."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

import nh3
import pytest

from bulletin.links import credentials, url_problem


def _opens(url: str) -> bool:
    """The oracle: urlsplit reads the port, and nh3 takes the URL as a base."""
    try:
        _ = urlsplit(url).port
        nh3.clean("", url_relative=("rewrite_with_base", url))
    except ValueError:
        return False
    return True


def _hostless(url: str) -> bool:
    try:
        return not urlsplit(url).hostname
    except ValueError:
        return False


LABELS = [
    "a",
    "example",
    "EX",
    "-a",
    "a-",
    "_x",
    "xn--a",
    "xn--nxasmq6b",
    "xn--",
    "例え",
    "e x",
    "e%41",
    "e%zz",
    "e%00x",
    "e<x",
    "e^x",
    "e|x",
    "123",
    "09",
    "999",
    "0x1f",
    "0x",
    "0xg",
    "1",
    "",
]
PORTS = ["", ":", ":80", ":0", ":65535", ":65536", ":-1", ":abc"]
TAILS = ["/", "/a b/c?q=1 2#f g", "?x", "#", "/%zz/\\\\x", "/../.."]


def test_url_problem_agrees_with_the_parser_on_every_kind_of_host() -> None:
    """The shortcuts (plain hosts never asked, answers kept per scheme and authority) give
    the oracle's answer for hosts of one to three labels, ports, paths and user info."""
    rng = random.Random(3986)
    hosts = [".".join(h) for h in (rng.sample(LABELS, rng.randint(1, 3)) for _ in range(3000))]
    hosts += [
        "[::1]",
        "[::1",
        "[1:2:3]",
        "[fe80::1%25eth0]",
        "[v1.x]",
        "1.2.3.4",
        "1.2.3",
        "0x7f.1",
        "a.com.",
        "a..b",
        ".",
    ]
    checked = 0
    for host in hosts:
        for port, tail in ((rng.choice(PORTS), rng.choice(TAILS)) for _ in range(3)):
            for url in (f"https://{host}{port}{tail}", f"http://user:pw@{host}{port}{tail}"):
                if _hostless(url):
                    continue  # not an absolute URL: refused before url_problem is asked
                assert (url_problem(url) is None) == _opens(url), url
                checked += 1
    assert checked > 15_000


def test_a_backslash_or_brackets_cannot_show_one_host_and_open_another() -> None:
    """urlsplit reads the host after a backslash's '@' (good.com, evil.com) and takes [v1.x]
    as a host; browsers end the host at the backslash and refuse [v1.x]."""
    assert url_problem("https://[v1.x]/a") == "invalid IPv6 address"
    assert url_problem("https://bad host\\@good.com/a") == "a backslash in the host part"
    assert url_problem("https://example.com\\@evil.com/a") == "a backslash in the host part"
    assert url_problem("https://example.com/a\\b") is None  # in the path, it is only a path


@pytest.mark.parametrize(
    ("host", "local"),
    [
        *(
            (h, True)
            for h in ("localhost", "LOCALHOST", "localhost.", "sub.localhost", "localhost.localdomain")
        ),
        *((h, True) for h in ("127.0.0.1", "127.1", "127.0.0.1.", "2130706433", "0x7f000001", "0177.0.0.1")),
        *((h, True) for h in ("::1", "[::1]", "::ffff:127.0.0.1", "0.0.0.0", "::")),
        *(
            (h, False)
            for h in ("news.example.org", "8.8.8.8", "10.0.0.1", "::ffff:8.8.8.8", "example", "", None)
        ),
    ],
)
def test_loopback_knows_every_spelling_of_this_machine(host: str | None, local: bool) -> None:
    """What browsers open on this machine: a send must not mail such links to subscribers."""
    from bulletin.urls import loopback

    assert loopback(host) is local


@pytest.mark.parametrize(
    ("url", "userinfo"),
    [
        ("https://user:secret@example.com/a", "user:secret@"),
        ("https://token@example.com", "token@"),
        ("https://@example.com/", "@"),
        ("https://a@b@example.com/", "a@b@"),  # browsers: the last '@' ends them
        ("https://example.com/@ann/post?by=a@b#c@d", None),  # an '@' after the host is no user's
        ("https://example.com?x@y", None),
        ("https://example.com#@y", None),
        ("https://example.com\\@evil.com/", None),  # the host ends at the backslash (url_problem refuses it)
        ("https://example.com", None),
    ],
)
def test_credentials_are_what_comes_before_the_host(url: str, userinfo: str | None) -> None:
    assert credentials(url) == userinfo
