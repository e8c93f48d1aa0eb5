"""SPEC §7: bulletin.toml — defaults, and every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulletin.config import load_config
from bulletin.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "bulletin.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    site = tmp_path / "My Site"
    site.mkdir()
    config = load_config(write(site, 'base_url = "https://news.example.org"\n'))
    assert config.title == "My Site"
    assert config.description == "My Site"
    assert config.base_url == "https://news.example.org/"
    assert config.site_url == "https://news.example.org/"
    assert (config.language, str(config.timezone), config.author) == ("en", "UTC", "My Site")
    assert (config.links, config.feed_items, config.feed_content_kb) == ("source", 50, 100)
    assert (config.id_host, config.id_date) == ("news.example.org", "2000")
    digest = config.digest
    assert digest.subject == "{title} — {week}"
    assert (digest.section_items, digest.archive_weeks, digest.late_days) == (10, 12, 28)
    assert digest.list_id == "my-site.news.example.org"
    assert digest.manage_url == "https://news.example.org/emails/"
    assert (config.smtp.host, config.smtp.port, config.smtp.security) == ("localhost", 25, "none")
    assert config.smtp.timeout == 60
    assert config.dkim is None


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
title = 5
links = "sometimes"
feed_items = 0
timezone = "Mars/Olympus"
colour = "blue"
id_date = "last year"

[digest]
from = "not an address"
topics = ["Not A Slug"]
unsubscribe_url = "https://news.example.org/u"

[smtp]
security = "tls"
password = "hunter2"
"""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.problems == [
        "bulletin.toml: error: title: 5 is not text; write a quoted string",
        'bulletin.toml: error: base_url: required; write base_url = "https://news.example.org/"',
        "bulletin.toml: error: timezone: 'Mars/Olympus' is not an IANA time zone; write e.g. \"Europe/Berlin\"",
        'bulletin.toml: error: links: \'sometimes\' is not allowed; write "source" or "site"',
        "bulletin.toml: error: feed_items: 0 is out of range; write a whole number from 1 to 10000",
        "bulletin.toml: error: id_date: 'last year' is not YYYY, YYYY-MM or YYYY-MM-DD; set it once, never change it",
        "bulletin.toml: error: digest.from: 'not an address' is not an email address; write \"Name <news@example.org>\"",
        'bulletin.toml: error: digest.topics: every entry must be a topic slug such as "gartner-healthcare"',
        "bulletin.toml: error: digest.unsubscribe_url: must contain {token} (or {email}) so each subscriber gets their own link",
        'bulletin.toml: error: smtp.security: \'tls\' is not allowed; write "none", "starttls" or "ssl"',
        "bulletin.toml: error: smtp.password: passwords never go in a file; set BULLETIN_SMTP_PASSWORD instead",
        "bulletin.toml: error: colour: unknown key; remove it or check its spelling (see README, Configuration)",
    ]


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, 'base_url = "https://x.example/"\ntitle = "unclosed\n'))
    assert caught.value.problems == [
        "bulletin.toml:2: error: not valid TOML: Illegal character '\\n' at column 18; check the quotes, brackets and = signs there"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.problems == [
        f"{tmp_path}/bulletin.toml: error: no bulletin.toml here; run bulletin in a site folder or pass --site DIR"
    ]


def test_mail_keys_are_required_only_by_mail_commands(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'base_url = "https://x.example/"\n'))
    with pytest.raises(ConfigError) as caught:
        config.require_mail(send=True)
    assert caught.value.problems == [
        'bulletin.toml: error: digest.from: required to build digests; write from = "Name <news@example.org>"',
        "bulletin.toml: error: digest.address: required to build digests; write the sender's postal address",
        "bulletin.toml: error: digest.unsubscribe_url: required by send; write an https URL with {token}",
    ]


def test_port_follows_security(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'base_url = "https://x.example/"\n[smtp]\nsecurity = "ssl"\n'))
    assert config.smtp.port == 465
    config = load_config(write(tmp_path, 'base_url = "https://x.example/"\n[smtp]\nsecurity = "starttls"\n'))
    assert config.smtp.port == 587


def test_fingerprint_ignores_comments_but_not_values(tmp_path: Path) -> None:
    first = load_config(write(tmp_path, 'base_url = "https://x.example/"\n')).fingerprint
    second = load_config(write(tmp_path, '# a comment\nbase_url = "https://x.example/"\n')).fingerprint
    third = load_config(write(tmp_path, 'base_url = "https://y.example/"\n')).fingerprint
    assert first == second != third


@pytest.mark.parametrize("value", ["0", "601", "1.5", '"60"'])
def test_smtp_timeout_is_whole_seconds_from_1_to_600(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f'base_url = "https://x.example/"\n[smtp]\ntimeout = {value}\n'))
    [problem] = caught.value.problems
    assert problem.startswith("bulletin.toml: error: smtp.timeout: ")
    assert problem.endswith("; write a whole number from 1 to 600")
    config = load_config(write(tmp_path, 'base_url = "https://x.example/"\n[smtp]\ntimeout = 5\n'))
    assert config.smtp.timeout == 5
