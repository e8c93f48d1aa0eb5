"""`bulletin.toml` — defaults, and every problem reported at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bulletin.cli import main
from bulletin.config import load_config
from bulletin.errors import ConfigError


def unlined(problems: list[str]) -> list[str]:
    """Problems without their line numbers (test_problems_name_their_line checks those)."""
    return [re.sub(r"^bulletin\.toml:\d+:", "bulletin.toml:", problem) for problem in problems]


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
    assert digest.subject == "{title}: {headline}"
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
    assert unlined(caught.value.problems) == [
        "bulletin.toml: error: title: 5 is not text; write a quoted string",
        'bulletin.toml: error: base_url: required; write base_url = "https://news.example.org/"',
        "bulletin.toml: error: timezone: 'Mars/Olympus' is not an IANA time zone; write e.g. \"Europe/Berlin\" "
        'or "America/New_York"',
        'bulletin.toml: error: links: \'sometimes\' is not allowed; write "source" or "site"',
        "bulletin.toml: error: feed_items: 0 is out of range; write a whole number from 1 to 10000",
        "bulletin.toml: error: id_date: 'last year' is not YYYY, YYYY-MM or YYYY-MM-DD; set it once, never change it",
        "bulletin.toml: error: digest.from: 'not an address' is not an email address; write \"Name <news@example.org>\"",
        "bulletin.toml: error: digest.topics: 'Not A Slug' is not a topic slug; did you mean \"not-a-slug\"? "
        "(`bulletin topics` lists the slugs)",
        "bulletin.toml: error: digest.unsubscribe_url: must contain {token} (or {email}) so each subscriber gets their own link",
        'bulletin.toml: error: smtp.security: \'tls\' is not allowed; write "none", "starttls" or "ssl"',
        "bulletin.toml: error: smtp.password: passwords never go in a file; set BULLETIN_SMTP_PASSWORD instead",
        "bulletin.toml: error: colour: unknown key; remove it or check its spelling (see README, Configuration)",
    ]


def test_addresses_at_an_internationalised_domain_are_told_their_ascii_form(tmp_path: Path) -> None:
    """Mail headers carry ASCII only (bulletin asks no relay for SMTPUTF8): an operator at
    bücher.de is told what to write, where a subscriber's address is converted for them.
    unsubscribe_mailto used to go into List-Unsubscribe as raw UTF-8, and dkim.domain into d=."""
    text = """
base_url = "https://news.example.org/"
[digest]
from = "News <news@bücher.de>"
reply_to = "jörg@example.org"
unsubscribe_mailto = "unsub@bücher.de?subject=stop"
bounce_address = "bounces@bücher.de"
[dkim]
selector = "s1"
domain = "bücher.de"
key_file = "dkim.pem"
"""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    ascii = "write its domain in ASCII, as mail headers need it:"
    assert unlined(caught.value.problems) == [
        f"bulletin.toml: error: digest.from: 'News <news@bücher.de>' is not an email address; {ascii} "
        '"News <news@xn--bcher-kva.de>"',
        "bulletin.toml: error: digest.reply_to: 'jörg@example.org' is not an email address; the part "
        "before @ must be in ASCII letters, digits and .!#$%&'*+/=?^_`{|}~- (relays take no other)",
        "bulletin.toml: error: digest.unsubscribe_mailto: 'unsub@bücher.de?subject=stop' cannot go into "
        f'a mail header; {ascii} "unsub@xn--bcher-kva.de?subject=stop"',
        f"bulletin.toml: error: digest.bounce_address: 'bounces@bücher.de' is not a plain address; {ascii} "
        '"bounces@xn--bcher-kva.de"',
        "bulletin.toml: error: dkim.domain: 'bücher.de' is not a DNS name mail headers can carry; write "
        'it in ASCII, as DNS has it: "xn--bcher-kva.de"',
    ]


def test_hidden_and_bidi_characters_in_bulletin_toml_are_named_not_echoed(tmp_path: Path) -> None:
    text = (
        'base_url = "https://news.example.org/"\n[digest]\n'
        'reply_to = "\u202eEd <ed@b\u00fccher.de>"\nunsubscribe_mailto = "unsub\u200b@example.org"\n'
    )
    write(tmp_path, text)
    result = CliRunner().invoke(main, ["check", "--site", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "\u202e" not in result.stderr and "\\u202eEd <ed@xn--bcher-kva.de>" in result.stderr
    assert (
        "digest.unsubscribe_mailto: 'unsub\\u200b@example.org' cannot go into a mail header; it holds U+200B"
        in (result.stderr)
    )


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, 'base_url = "https://x.example/"\ntitle = "unclosed\n'))
    assert caught.value.problems == [
        "bulletin.toml:2: error: not valid TOML: Illegal character '\\n' at column 18; check the quotes, brackets and = signs there"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[web]\nurl = "https://a.example/"\n# the public one\nurl = "https://b.example/"\n',
            "bulletin.toml:5: error: not valid TOML: web.url is written twice (first on line 3); keep one",
        ),
        (
            '[web]\nurl = "https://a.example/"\n[web]\nstore_ip = false\n',
            "bulletin.toml:4: error: not valid TOML: [web] is written twice (first on line 2); "
            "keep one, with the keys of both under it",
        ),
        (
            'title = "A"\ntitle = "B"\n',
            "bulletin.toml:3: error: not valid TOML: title is written twice (first on line 2); keep one",
        ),
    ],
)
def test_a_key_or_table_written_twice_is_named(tmp_path: Path, text: str, problem: str) -> None:
    # tomllib says "Cannot overwrite a value" and "Cannot declare ('web',) twice".
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, 'base_url = "https://x.example/"\n' + text))
    assert caught.value.problems == [problem]


def test_every_digest_topic_that_is_no_slug_is_named_with_the_slug_it_may_mean(tmp_path: Path) -> None:
    text = 'base_url = "https://x.example/"\n[digest]\ntopics = ["first-topic", "first_topic", "Cybersecurity", 5]\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.problems == [
        "bulletin.toml:3: error: digest.topics: 'first_topic', 'Cybersecurity', 5 are not topic slugs; "
        "did you mean \"first-topic\" for 'first_topic', \"cybersecurity\" for 'Cybersecurity'? "
        "(`bulletin topics` lists the slugs)"
    ]


def test_missing_file(tmp_path: Path) -> None:
    tmp_path = tmp_path.resolve()  # as the message names it
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert unlined(caught.value.problems) == [
        f"{tmp_path}: error: no bulletin.toml in this folder; run bulletin in a site folder or pass "
        "--site DIR (bulletin init DIR makes a new site)"
    ]


def test_a_site_folder_that_does_not_exist_is_named_so(tmp_path: Path) -> None:
    """It was told it held no bulletin.toml, as if it were there."""
    gone = tmp_path.resolve() / "nwes"
    with pytest.raises(ConfigError) as caught:
        load_config(gone)
    assert unlined(caught.value.problems) == [
        f"{gone}: error: there is no such folder; pass --site the site's folder (bulletin init DIR "
        "makes a new site)"
    ]


def test_missing_file_in_a_folder_of_a_site_names_the_site(tmp_path: Path) -> None:
    tmp_path = tmp_path.resolve()
    (tmp_path / "bulletin.toml").write_text('title = "News"\n')
    inside = tmp_path / "content" / "news"
    inside.mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        load_config(inside)
    assert unlined(caught.value.problems) == [
        f"{inside}: error: no bulletin.toml in this folder; the site is {tmp_path}: run bulletin "
        f"there, or pass --site {tmp_path}"
    ]


def test_mail_keys_are_required_only_by_mail_commands(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'base_url = "https://x.example/"\n'))
    with pytest.raises(ConfigError) as caught:
        config.require_mail(send=True)
    assert unlined(caught.value.problems) == [
        'bulletin.toml: error: digest.from: required for all mail; write from = "Name <news@example.org>" under [digest]',
        'bulletin.toml: error: digest.address: required for all mail; write the sender\'s postal address as address = "…" under [digest]',
        'bulletin.toml: error: digest.unsubscribe_url: required by send; write an https URL with {token} as unsubscribe_url = "…" under [digest]',
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


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return unlined(caught.value.problems)


def test_markup_in_the_site_name_and_description_is_read_as_text(tmp_path: Path) -> None:
    """Feeds carry these as text: `<b>` in them was sent as text that looks like HTML (which the
    W3C validator warns about), and the pages showed the tags. As in an item's title, markup
    is reduced to its text, and a '<' or '&' that is not markup stays."""
    config = load_config(
        write(
            tmp_path,
            'base_url = "https://x.example/"\ntitle = "Health &amp; <i>Care</i>"\n'
            'description = "News about <b>health</b> & care, for beds < 25"\n'
            'author = "The <span>Desk</span>"\n',
        )
    )
    assert config.title == "Health & Care"
    assert config.description == "News about health & care, for beds < 25"
    assert config.author == "The Desk"
    plain = load_config(write(tmp_path, 'base_url = "https://x.example/"\ntitle = "List<T> & more"\n'))
    assert (plain.title, plain.description) == ("List<T> & more", "List<T> & more")


def test_a_site_name_of_markup_alone_is_refused(tmp_path: Path) -> None:
    assert problems_of(tmp_path, 'base_url = "https://x.example/"\ndescription = "<b></b>"\n') == [
        "bulletin.toml: error: description: '<b></b>' holds markup and no text; write it as plain text"
    ]


def test_a_boolean_where_a_number_goes_is_shown_as_written(tmp_path: Path) -> None:
    assert problems_of(tmp_path, 'base_url = "https://x.example/"\nfeed_items = true\n') == [
        "bulletin.toml: error: feed_items: true is not a whole number; write a whole number from 1 to 10000"
    ]


def test_line_breaks_and_control_characters_are_refused_with_the_key(tmp_path: Path) -> None:
    text = r'''
base_url = "https://x.example/"
title = "Weekly\nNews"
description = "tab\there"
[digest]
from = "News <news@example.org>\r\nBcc: everyone@example.org"
address = """1 Road
Town"""
subject = "{title}\u2028{week}"
topics = ["gartner-healthcare\n"]
[smtp]
host = "relay\u0000.example.org"
'''
    assert problems_of(tmp_path, text) == [
        "bulletin.toml: error: title: contains a line break; write it on one line",
        "bulletin.toml: error: description: contains a control character (U+0009); remove it",
        "bulletin.toml: error: digest.from: contains a line break; write it on one line",
        "bulletin.toml: error: digest.address: contains a line break; write it on one line",
        "bulletin.toml: error: digest.subject: contains a line break; write it on one line",
        "bulletin.toml: error: digest.topics: 'gartner-healthcare\\n' is not a topic slug; did you mean "
        '"gartner-healthcare"? (`bulletin topics` lists the slugs)',
        "bulletin.toml: error: smtp.host: contains a control character (U+0000); remove it",
    ]


def test_urls_that_cannot_be_parsed_are_refused(tmp_path: Path) -> None:
    text = 'base_url = "https://[::1/"\nsite_url = "https://news.example.org:99999/"\n'
    assert problems_of(tmp_path, text) == [
        "bulletin.toml: error: base_url: 'https://[::1/' is not a valid URL (Invalid IPv6 URL); "
        "write the https URL where feeds/ and emails/ are published",
        "bulletin.toml: error: site_url: 'https://news.example.org:99999/' is not a valid URL "
        "(Port out of range 0-65535); write the https URL of the site's item pages",
    ]


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("{title:>99999999}", "{title:>99999999} has a format spec"),
        ("{count!r} new", "{count!r} has a conversion"),
        ("{title.upper}", "{title.upper} is not a placeholder"),
        ("{week[0]}", "{week[0]} is not a placeholder"),
        ("{0} and {}", "{0} is not a placeholder"),
        ("{date}", "{date} is not a placeholder"),
        ("{title", "expected '}' before end of string"),
        ("}", "Single '}' encountered in format string"),
    ],
)
def test_the_subject_takes_only_its_placeholders(tmp_path: Path, subject: str, problem: str) -> None:
    text = f'base_url = "https://x.example/"\n[digest]\nsubject = {subject!r}\n'.replace("'", '"')
    assert problems_of(tmp_path, text) == [
        f"bulletin.toml: error: digest.subject: {subject!r}: {problem}; "
        "use only {title}, {headline}, {start}, {end}, {count} and {week}, as they are (write {{ and }} for braces)"
    ]


def test_the_subject_may_use_each_placeholder_and_braces(tmp_path: Path) -> None:
    subject = "{{Weekly}} {title} — {week}: {count} {title}"
    config = load_config(
        write(tmp_path, f'base_url = "https://x.example/"\n[digest]\nsubject = "{subject}"\n')
    )
    assert config.digest.subject == subject


def test_problems_name_their_line_and_the_nearest_key(tmp_path: Path) -> None:
    text = 'base_url = "https://news.example.org/"\ntitel = "News"\n\n[digest]\nform = "a@b.org"\nsection_items = 0\n[dgest]\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.problems == [
        "bulletin.toml:6: error: digest.section_items: 0 is out of range; write a whole number from 1 to 1000",
        "bulletin.toml:5: error: digest.form: unknown key; did you mean 'digest.from'? (see README, Configuration)",
        "bulletin.toml:7: error: dgest: unknown key; did you mean 'digest'? (see README, Configuration)",
        "bulletin.toml:2: error: titel: unknown key; did you mean 'title'? (see README, Configuration)",
    ]


@pytest.mark.parametrize("value", ["0", "601", "1.5", '"60"'])
def test_smtp_timeout_is_whole_seconds_from_1_to_600(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f'base_url = "https://x.example/"\n[smtp]\ntimeout = {value}\n'))
    [problem] = caught.value.problems
    assert problem.startswith("bulletin.toml:3: error: smtp.timeout: ")
    assert problem.endswith("; write a whole number from 1 to 600")
    config = load_config(write(tmp_path, 'base_url = "https://x.example/"\n[smtp]\ntimeout = 5\n'))
    assert config.smtp.timeout == 5


def test_urls_browsers_cannot_open_are_refused(tmp_path: Path) -> None:
    """urlsplit takes these hosts; browsers and the sanitiser (which resolves a body's
    relative links against site_url) do not."""
    text = 'base_url = "https://999.1.1.1/"\nsite_url = "https://si te.org/"\n'
    assert problems_of(tmp_path, text) == [
        "bulletin.toml: error: base_url: 'https://999.1.1.1/' is not an address browsers can open "
        "(invalid IPv4 address); write the https URL where feeds/ and emails/ are published",
        "bulletin.toml: error: site_url: 'https://si te.org/' is not an address browsers can open "
        "(invalid international domain name); write the https URL of the site's item pages",
    ]


def test_base_urls_with_a_query_or_fragment_are_refused(tmp_path: Path) -> None:
    """bulletin appends feeds/rss.xml to them: https://x.example/a?b=1/feeds/rss.xml."""
    text = 'base_url = "https://x.example/a?b=1"\nsite_url = "https://x.example/#f"\n'
    assert problems_of(tmp_path, text) == [
        "bulletin.toml: error: base_url: 'https://x.example/a?b=1' has a query or fragment, and "
        "bulletin adds paths to it; write the https URL where feeds/ and emails/ are published",
        "bulletin.toml: error: site_url: 'https://x.example/#f' has a query or fragment, and "
        "bulletin adds paths to it; write the https URL of the site's item pages",
    ]


def test_a_base_url_on_an_idn_host_makes_ids_of_its_xn_form(tmp_path: Path) -> None:
    """Feed ids and List-Id are made of base_url's host: an IDN used to be refused as
    'not a host name' under id_host, a key the author never wrote."""
    config = load_config(write(tmp_path, 'base_url = "https://münchen.example/news/"\n'))
    assert config.id_host == "xn--mnchen-3ya.example"
    assert config.digest.list_id.endswith(".xn--mnchen-3ya.example")
    assert problems_of(tmp_path, 'base_url = "https://[2001:db8::1]:8080/news/"\n') == [
        "bulletin.toml: error: id_host: base_url's host '2001:db8::1' is not a DNS name, which feed "
        'ids are made of; write id_host = "news.example.org" (a name you own)'
    ]
    text = 'base_url = "https://[2001:db8::1]:8080/news/"\nid_host = "news.example.org"\n'
    assert load_config(write(tmp_path, text)).id_host == "news.example.org"


@pytest.mark.parametrize(
    ("written", "meant"),
    [("Europe/Berln", "Europe/Berlin"), ("America/New York", "America/New_York"), ("Paris", "Europe/Paris")],
)
def test_a_mistyped_time_zone_gets_the_nearest_name(tmp_path: Path, written: str, meant: str) -> None:
    text = f'title = "T"\nbase_url = "https://news.example.org/"\ntimezone = "{written}"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert unlined(caught.value.problems) == [
        f"bulletin.toml: error: timezone: '{written}' is not an IANA time zone; did you mean \"{meant}\"?"
    ]
