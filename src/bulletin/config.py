"""The site configuration, bulletin.toml: typed, with defaults, every problem reported at once."""

from __future__ import annotations

import hashlib
import json
import re
import string
import tomllib
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import __version__
from .addresses import (
    address_fix,
    ascii_address,
    clipped,
    hidden_character,
    mailbox_fix,
    valid_address,
    valid_mailbox,
)
from .errors import ConfigError
from .slugs import SLUG, slugify
from .text import text_of

CONFIG_NAME = "bulletin.toml"
_TAG_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
# Every setting is one line of text: a line break in a subject or an address would split a
# mail header, and no setting has a use for other control characters.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """The `[digest]` table: how weekly digests look and where replies go."""

    sender: str | None = None
    reply_to: str | None = None
    address: str | None = None
    subject: str = "{title}: {headline}"
    section_items: int = 10
    archive_weeks: int = 12
    late_days: int = 28
    topics: tuple[str, ...] = ()
    list_id: str = ""
    manage_url: str = ""
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    bounce_address: str | None = None


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """The `[smtp]` table; the password only ever comes from BULLETIN_SMTP_PASSWORD."""

    host: str = "localhost"
    port: int = 25
    security: str = "none"
    username: str | None = None
    timeout: int = 60  # seconds a relay may leave one message unanswered


@dataclass(frozen=True, slots=True)
class DkimConfig:
    """The optional `[dkim]` table: sign every message with this key."""

    selector: str
    domain: str
    key_file: Path


@dataclass(frozen=True, slots=True)
class BrandConfig:
    """The `[brand]` table: one look for the pages and the digest."""

    logo: str | None = None  # an absolute URL
    accent: str = "#0f766e"

    @property
    def accent_dark(self) -> str:
        """The accent lightened for dark backgrounds (the default teal's is #5eead4)."""
        if self.accent.lower() == "#0f766e":
            return "#5eead4"
        red, green, blue = (int(self.accent[i : i + 2], 16) for i in (1, 3, 5))
        return "#{:02x}{:02x}{:02x}".format(*(round(c + (255 - c) * 0.55) for c in (red, green, blue)))


CONFIRM_HOURS = 48  # how long a confirmation link works unless web.confirm_hours says


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The `[web]` table: where `bulletin serve` is reached and how it guards its forms."""

    url: str
    confirm_hours: int = CONFIRM_HOURS
    rate_per_minute: int = 10
    store_ip: bool = True
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """A site: its folder and every setting of bulletin.toml, defaults applied."""

    site: Path
    title: str
    description: str
    base_url: str
    site_url: str
    language: str
    timezone: ZoneInfo
    author: str
    links: str
    feed_items: int
    feed_content_kb: int
    id_host: str
    id_date: str
    digest: DigestConfig = field(default_factory=DigestConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    dkim: DkimConfig | None = None
    web: WebConfig | None = None
    brand: BrandConfig = field(default_factory=BrandConfig)
    fingerprint: str = ""
    output: Path | None = None  # where feeds/, emails/ and the cache go; None: the site folder
    # The line of each key in bulletin.toml (`digest.topics`), for problems found after loading.
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def out(self) -> Path:
        """The folder that holds feeds/, emails/ and .bulletin/."""
        return self.output if self.output is not None else self.site

    @property
    def confirm_hours(self) -> int:
        """How long a confirmation link works, and a request waits for it to be followed."""
        return self.web.confirm_hours if self.web is not None else CONFIRM_HOURS

    @property
    def content_dir(self) -> Path:
        return self.site / "content"

    @property
    def templates_dir(self) -> Path:
        return self.site / "templates"

    @property
    def feeds_dir(self) -> Path:
        return self.out / "feeds"

    @property
    def emails_dir(self) -> Path:
        return self.out / "emails"

    @property
    def state_dir(self) -> Path:
        return self.out / ".bulletin"

    @property
    def cache_dir(self) -> Path:
        return self.out / ".bulletin" / "cache"

    def require_mail(self, *, send: bool = False) -> None:
        """Raise ConfigError unless the keys that mail commands need are set."""
        missing = []
        if not self.digest.sender:
            missing.append(
                'digest.from: required for all mail; write from = "Name <news@example.org>" under [digest]'
            )
        if not self.digest.address:
            missing.append(
                "digest.address: required for all mail; write the sender's postal address as "
                'address = "…" under [digest]'
            )
        if send and not self.digest.unsubscribe_url:
            missing.append(
                "digest.unsubscribe_url: required by send; write an https URL with {token} as "
                'unsubscribe_url = "…" under [digest]'
            )
        if missing:
            raise ConfigError([f"{CONFIG_NAME}: error: {m}" for m in missing])


class _Checker:
    """Reads one TOML table, remembering every problem instead of stopping at the first."""

    def __init__(self, problems: list[str], table: dict[str, Any], prefix: str) -> None:
        self.problems = problems
        self.table = table
        self.prefix = prefix
        self.seen: set[str] = set()

    def _fail(self, key: str, message: str) -> None:
        line = _LINES.get().get(self.prefix + key)
        where = CONFIG_NAME if line is None else f"{CONFIG_NAME}:{line}"
        self.problems.append(f"{where}: error: {self.prefix}{key}: {message}")

    def get(self, key: str, kind: type, default: Any, fix: str) -> Any:
        self.seen.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        # TOML true is not a number, though Python's True is an int.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self._fail(key, f"{_shown(value)} is not {_KIND_NAMES[kind]}; {fix}")
            return default
        if isinstance(value, str) and (control := _CONTROL.search(value)):
            char = control.group()
            if char in _LINE_BREAKS:
                self._fail(key, "contains a line break; write it on one line")
            else:
                self._fail(key, f"contains a control character (U+{ord(char):04X}); remove it")
            return default
        return value

    def text(self, key: str, default: str | None = None, fix: str = "write a quoted string") -> Any:
        value = self.get(key, str, default, fix)
        if isinstance(value, str) and not value.strip() and key in self.table:
            self._fail(key, f"is empty; {fix}")
            return default
        return value

    def words(self, key: str, default: str) -> str:
        """Text that feeds carry as text: markup in it is read as HTML and reduced to its text
        (`Health <b>news</b>` → `Health news`), as in the items' titles."""
        value: str = self.text(key, default)
        words = text_of(value)
        if key in self.table and value and not words.strip():
            self._fail(key, f"{_shown(value)} holds markup and no text; write it as plain text")
            return default
        return words

    def number(self, key: str, default: int, low: int, high: int | None = None) -> int:
        fix = f"write a whole number from {low}" + (f" to {high}" if high else " up")
        value: int = self.get(key, int, default, fix)
        if value < low or (high is not None and value > high):
            self._fail(key, f"{value} is out of range; {fix}")
            return default
        return value

    def url(self, key: str, default: str | None, fix: str, *, folder: bool = False) -> str | None:
        """An absolute http(s) URL; `folder`: one bulletin appends paths to (no ? or #)."""
        value: str | None = self.text(key, default, fix)
        if value is None or key not in self.table:
            return value
        if folder and ("?" in value or "#" in value):
            self._fail(key, f"{value!r} has a query or fragment, and bulletin adds paths to it; {fix}")
            return default
        try:
            parts = urlsplit(value)
            _ = parts.port  # a port that is not a number or out of range raises only here
        except ValueError as exc:
            self._fail(key, f"{value!r} is not a valid URL ({exc}); {fix}")
            return default
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self._fail(key, f"{value!r} is not an absolute http(s) URL; {fix}")
            return default
        from .links import url_problem

        problem = url_problem(value)
        if problem is not None:
            self._fail(key, f"{value!r} is not an address browsers can open ({problem}); {fix}")
            return default
        return value

    def fail(self, key: str, message: str) -> None:
        self.seen.add(key)
        self._fail(key, message)

    def unknown(self, nested: tuple[str, ...] = ()) -> None:
        unknown = sorted(set(self.table) - self.seen - set(nested))
        if not unknown:
            return
        import difflib  # only a mistyped key needs it (0.6 ms on every run otherwise)

        known = sorted(self.seen | set(nested))
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean '{self.prefix}{close[0]}'?" if close else "remove it or check its spelling"
            self._fail(key, f"unknown key; {hint} (see README, Configuration)")


_KIND_NAMES = {str: "text", int: "a whole number", bool: "true or false", list: "a list", dict: "a table"}


def _shown(value: Any) -> str:
    """A value as the user wrote it in TOML where Python's repr differs (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


# Where each key stands in the bulletin.toml being checked, so problems name their line.
_LINES: ContextVar[dict[str, int]] = ContextVar("bulletin_config_lines", default={})  # noqa: B039
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def load_config(site: Path) -> Config:
    """Read `site/bulletin.toml`; raise ConfigError listing every problem found."""
    site = Path(site)
    return parse_site_config(site, read_config(site))


def parse_site_config(site: Path, data: dict[str, Any]) -> Config:
    """parse_config for `data` read from `site/bulletin.toml` (and maybe adjusted, as the
    preview does), its problems naming their line in that file."""
    try:
        text = (site / CONFIG_NAME).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        text = ""
    token = _LINES.set(key_lines(text))
    try:
        return parse_config(site, data)
    finally:
        _LINES.reset(token)


def key_lines(text: str) -> dict[str, int]:
    """The line of each key (`table.key`) and table of a TOML text, first occurrence."""
    found: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            table = header.group(1) + "."
            found.setdefault(header.group(1), number)
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault(table + key.group(1), number)
    return found


def read_config(site: Path) -> dict[str, Any]:
    """The TOML of `site/bulletin.toml`, not yet checked; ConfigError when it cannot be read."""
    site = Path(site)
    path = site / CONFIG_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        from .files import as_given  # content/ may be a link to elsewhere

        folder = as_given(site)
        if not folder.exists():
            fix = "pass --site the site's folder (bulletin init DIR makes a new site)"
            raise ConfigError([f"{folder}: error: there is no such folder; {fix}"]) from None
        above = next((parent for parent in folder.parents if (parent / CONFIG_NAME).is_file()), None)
        if above is not None:  # run in the site's content/ or another of its folders
            fix = f"the site is {above}: run bulletin there, or pass --site {above}"
        else:
            fix = "run bulletin in a site folder or pass --site DIR (bulletin init DIR makes a new site)"
        raise ConfigError([f"{folder}: error: no {CONFIG_NAME} in this folder; {fix}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: error: cannot read it: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError([f"{CONFIG_NAME}: error: is not UTF-8; save it as UTF-8"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{CONFIG_NAME}{_toml_problem(str(exc), text)}"]) from None


def _toml_problem(message: str, text: str) -> str:
    """`:LINE: error: not valid TOML: …; fix` for tomllib's `message` about `text`."""
    found = re.search(r" \(at line (\d+), column (\d+)\)", message)
    if found is None:
        return f": error: not valid TOML: {message}; check the quotes, brackets and = signs"
    line = int(found.group(1))
    if message.startswith(("Cannot overwrite a value", "Cannot declare")):
        problem = _written_twice(text, line)
    elif message.startswith("Cannot mutate immutable namespace"):
        problem = "this line adds to a table or array written whole above ({…} or […]); write it in one place"
    else:
        where = message.replace(found.group(0), f" at column {found.group(2)}")
        problem = f"{where}; check the quotes, brackets and = signs there"
    return f":{line}: error: not valid TOML: {problem}"


def _written_twice(text: str, line: int) -> str:
    """What tomllib's "Cannot overwrite a value" or "Cannot declare … twice" on `line` means:
    a key or table written twice; which one, and where it was first."""
    lines = text.splitlines()
    before = lines[: line - 1]
    first = key_lines("\n".join(before))
    here = lines[line - 1] if line <= len(lines) else ""
    header, key = _TABLE.match(here), _KEY.match(here)
    if header is not None:
        name = header.group(1)
        at = f" (first on line {first[name]})" if name in first else ""
        return f"[{name}] is written twice{at}; keep one, with the keys of both under it"
    if key is not None:
        table = next((m.group(1) for m in map(_TABLE.match, reversed(before)) if m is not None), "")
        name = f"{table}.{key.group(1)}" if table else key.group(1)
        at = f" (first on line {first[name]})" if name in first else ""
        return f"{name} is written twice{at}; keep one"
    return "a key or table is written twice; keep one"


def parse_config(site: Path, data: dict[str, Any]) -> Config:
    """Turn parsed TOML into a Config; raise ConfigError listing every problem found."""
    problems: list[str] = []
    top = _Checker(problems, data, "")
    values = _parse_top(top, site)
    digest = _parse_digest(problems, top, values["title"], values["base_url"])
    smtp = _parse_smtp(problems, top)
    dkim = _parse_dkim(problems, top, site)
    web = _parse_web(problems, top, values["base_url"])
    brand = _parse_brand(problems, top, values["base_url"])
    top.unknown(nested=("digest", "smtp", "dkim", "web", "brand"))
    if problems:
        raise ConfigError(problems)
    if web is not None:
        digest = _web_links(digest, web, data.get("digest") or {})
    # Comments and layout of the file do not matter; every value does.
    canonical = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    fingerprint = hashlib.sha256(f"{__version__}\n{canonical}".encode()).hexdigest()
    return Config(
        site=site,
        digest=digest,
        smtp=smtp,
        dkim=dkim,
        web=web,
        brand=brand,
        fingerprint=fingerprint,
        lines=dict(_LINES.get()),
        **values,
    )


def _zone_hint(name: str) -> str:
    """The nearest IANA zone names to a mistyped one, or an example."""
    import difflib
    import zoneinfo

    wanted = name.strip().casefold().replace(" ", "_")
    zones = sorted(zoneinfo.available_timezones())
    folded = {zone.casefold(): zone for zone in zones}
    cities = [zone for zone in zones if zone.rsplit("/", 1)[-1].casefold() == wanted]  # "Paris"
    close = cities[:1] or [
        folded[c] for c in difflib.get_close_matches(wanted, list(folded), n=1, cutoff=0.6)
    ]
    if close:
        return f'did you mean "{close[0]}"?'
    return 'write e.g. "Europe/Berlin" or "America/New_York"'


def _dns_name(host: str) -> str | None:
    """`host` as a DNS name (an IDN in its xn-- form), or None for an IPv6 address or a name
    with characters DNS names do not have ('_')."""
    if host.isascii():  # the idna codec's own ASCII path, without loading it (0.9 ms a run)
        labels = host.split(".")
        if any(not 0 < len(label) < 64 for label in labels[:-1]) or len(labels[-1]) >= 64:
            return None
        name = host.lower()
    else:
        try:
            name = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    return name if re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.?", name) else None


def _parse_top(top: _Checker, site: Path) -> dict[str, Any]:
    """The top-level keys, by Config field name."""
    title = top.words("title", site.resolve().name or "bulletin")
    description = top.words("description", title)
    base_url = top.url(
        "base_url", None, "write the https URL where feeds/ and emails/ are published", folder=True
    )
    if "base_url" not in top.table:
        top.fail("base_url", 'required; write base_url = "https://news.example.org/"')
    base_url = _with_slash(base_url or "https://invalid.example/")
    values: dict[str, Any] = {"title": title, "description": description, "base_url": base_url}
    values["site_url"] = _with_slash(
        top.url("site_url", base_url, "write the https URL of the site's item pages", folder=True) or base_url
    )
    language = values["language"] = top.text("language", "en")
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", language):
        top.fail("language", f'{language!r} is not a language tag; write e.g. "en" or "en-GB"')
    tz_name = top.text("timezone", "UTC")
    try:
        values["timezone"] = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        top.fail("timezone", f"{tz_name!r} is not an IANA time zone; {_zone_hint(tz_name)}")
        values["timezone"] = ZoneInfo("UTC")
    values["author"] = top.words("author", title)
    values["links"] = top.text("links", "source")
    if values["links"] not in ("source", "site"):
        top.fail("links", f'{values["links"]!r} is not allowed; write "source" or "site"')
        values["links"] = "source"
    values["feed_items"] = top.number("feed_items", 50, 1, 10_000)
    values["feed_content_kb"] = top.number("feed_content_kb", 100, 1, 100_000)
    base_host = urlsplit(base_url).hostname or ""
    site_host = _dns_name(base_host)
    id_host = values["id_host"] = top.text("id_host", site_host or "invalid.example")
    if "id_host" not in top.table and site_host is None:
        top.fail(
            "id_host",
            f"base_url's host {base_host!r} is not a DNS name, which feed ids "
            'are made of; write id_host = "news.example.org" (a name you own)',
        )
    elif not re.fullmatch(r"[A-Za-z0-9.-]+", id_host):
        top.fail("id_host", f'{id_host!r} is not a host name; write e.g. "news.example.org"')
    id_date = values["id_date"] = top.get(
        "id_date", str, "2000", 'write a quoted date such as "2000" or "2024-01-31"'
    )
    if not _TAG_DATE.match(id_date):
        top.fail("id_date", f"{id_date!r} is not YYYY, YYYY-MM or YYYY-MM-DD; set it once, never change it")
    return values


def _table(top: _Checker, name: str) -> dict[str, Any]:
    table = top.get(name, dict, {}, f"write it as a [{name}] table")
    return table if isinstance(table, dict) else {}


def _check_address(check: _Checker, key: str, value: str | None) -> None:
    if value is not None and not valid_mailbox(value):
        fix = mailbox_fix(value, 'write "Name <news@example.org>"')
        check.fail(key, f"{clipped(value)!r} is not an email address; {fix}")


def _parse_digest(problems: list[str], top: _Checker, title: str, base_url: str) -> DigestConfig:
    check = _Checker(problems, _table(top, "digest"), "digest.")
    sender = check.text("from", None, 'write from = "Name <news@example.org>"')
    _check_address(check, "from", sender)
    reply_to = check.text("reply_to", None, 'write reply_to = "editors@example.org"')
    _check_address(check, "reply_to", reply_to)
    address = check.text("address", None, "write the sender's postal address")
    subject = check.text("subject", "{title}: {headline}")
    wrong = _subject_problem(subject)
    if wrong:
        fix = (
            "use only {title}, {headline}, {start}, {end}, {count} and {week}, as they are "
            "(write {{ and }} for braces)"
        )
        check.fail("subject", f"{subject!r}: {wrong}; {fix}")
    section_items = check.number("section_items", 10, 1, 1000)
    archive_weeks = check.number("archive_weeks", 12, 0, 1000)
    late_days = check.number("late_days", 28, 0, 366)
    fix = 'write a list of topic slugs, e.g. ["gartner-healthcare"]'
    topics = _topic_slugs(check, check.get("topics", list, [], fix))
    host = _dns_name(urlsplit(base_url).hostname or "") or "invalid.example"
    list_id = check.text("list_id", f"{slugify(title, letters=False) or 'bulletin'}.{host}")
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+", list_id):
        check.fail("list_id", f'{list_id!r} is not a list id; write e.g. "weekly.news.example.org"')
    links = _digest_links(check, base_url)
    check.unknown()
    return DigestConfig(
        sender=sender,
        reply_to=reply_to,
        address=address,
        subject=subject,
        section_items=section_items,
        archive_weeks=archive_weeks,
        late_days=late_days,
        topics=tuple(topics),
        list_id=list_id,
        **links,
    )


def _topic_slugs(check: _Checker, topics: list[Any]) -> list[str]:
    """digest.topics, or none when an entry is not a slug: each such entry named, with the
    slug it may have meant (`"Cybersecurity"`: did you mean "cybersecurity"?)."""
    bad = [t for t in topics if not (isinstance(t, str) and SLUG.fullmatch(t))]
    if not bad:
        return topics
    meant = [(t, slugify(t)) for t in bad if isinstance(t, str) and slugify(t)]
    if len(bad) == 1 and meant:
        fix = f'did you mean "{meant[0][1]}"?'
    elif meant:
        fix = "did you mean " + ", ".join(f'"{slug}" for {_shown(t)}' for t, slug in meant) + "?"
    else:
        fix = 'write slugs such as "gartner-healthcare"'
    named = ", ".join(_shown(t) for t in bad)
    says = "is not a topic slug" if len(bad) == 1 else "are not topic slugs"
    check.fail("topics", f"{named} {says}; {fix} (`bulletin topics` lists the slugs)")
    return []


def _digest_links(check: _Checker, base_url: str) -> dict[str, Any]:
    """The digest's links and return paths: manage, unsubscribe (URL, mailto), bounces."""
    manage_url = check.url("manage_url", base_url + "emails/", "write an absolute https URL")
    unsubscribe_url = check.url(
        "unsubscribe_url", None, "write an https URL containing {token}, e.g. https://…/u/{token}"
    )
    if unsubscribe_url is not None and "{token}" not in unsubscribe_url and "{email}" not in unsubscribe_url:
        check.fail(
            "unsubscribe_url",
            "must contain {token} (or {email}) so each subscriber gets their own link",
        )
    mailto = check.text("unsubscribe_mailto", None, 'write e.g. "unsubscribe@example.org"')
    if mailto is not None:
        mailto = mailto.removeprefix("mailto:")
        if "@" not in mailto or any(c in mailto for c in " <>\r\n"):
            check.fail(
                "unsubscribe_mailto",
                f'{clipped(mailto)!r} is not an address; write e.g. "unsubscribe@example.org"',
            )
        elif not mailto.isascii():  # it goes into the List-Unsubscribe header as it is
            address, mark, query = mailto.partition("?")
            converted = ascii_address(address) + mark + query
            if hidden_character(mailto) is not None:
                fix = address_fix(mailto)
            elif converted.isascii():
                fix = f'write its domain in ASCII, as mail headers need it: "{converted}"'
            else:
                fix = "write it in ASCII (a subject as %-escapes)"
            check.fail("unsubscribe_mailto", f"{clipped(mailto)!r} cannot go into a mail header; {fix}")
    bounce = check.text("bounce_address", None, 'write e.g. "bounces@example.org"')
    if bounce is not None and ("+" in bounce.partition("@")[0] or not valid_address(bounce)):
        fix = 'write e.g. "bounces@example.org" (bulletin adds +TAG to it for each subscriber)'
        if "+" not in bounce.partition("@")[0]:
            fix = mailbox_fix(bounce, fix)
        check.fail("bounce_address", f"{clipped(bounce)!r} is not a plain address; {fix}")
        bounce = None
    return {
        "manage_url": manage_url or base_url + "emails/",
        "unsubscribe_url": unsubscribe_url,
        "unsubscribe_mailto": mailto,
        "bounce_address": bounce,
    }


def _parse_web(problems: list[str], top: _Checker, base_url: str) -> WebConfig | None:
    if "web" not in top.table:
        return None
    check = _Checker(problems, _table(top, "web"), "web.")
    url = _with_slash(
        check.url("url", base_url, "write the https URL where bulletin serve is reached", folder=True)
        or base_url
    )
    confirm_hours = check.number("confirm_hours", CONFIRM_HOURS, 1, 24 * 30)
    rate = check.number("rate_per_minute", 10, 1, 10_000)
    store_ip = check.get("store_ip", bool, True, "write true or false")
    proxies = check.get("trusted_proxies", list, [], 'write a list of addresses, e.g. ["127.0.0.1"]')
    if not all(isinstance(p, str) and _ip_or_network(p) for p in proxies):
        check.fail("trusted_proxies", 'every entry must be an IP address or network, e.g. "10.0.0.0/8"')
        proxies = []
    check.unknown()
    return WebConfig(url, confirm_hours, rate, store_ip, tuple(proxies))


def _parse_brand(problems: list[str], top: _Checker, base_url: str) -> BrandConfig:
    check = _Checker(problems, _table(top, "brand"), "brand.")
    accent = check.text("accent", "#0f766e", 'write a colour such as "#0f766e"')
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", accent):
        check.fail("accent", f'{accent!r} is not a colour; write six hex digits such as "#0f766e"')
        accent = "#0f766e"
    logo = check.text("logo", None, "write the https URL of an image, or a path under base_url")
    if logo is not None:
        from urllib.parse import urljoin

        logo = urljoin(base_url, logo)
        if urlsplit(logo).scheme not in ("http", "https") or any(c in logo for c in '"<> '):
            check.fail("logo", f"{logo!r} is not an image URL; write an https:// address")
            logo = None
    check.unknown()
    return BrandConfig(logo=logo, accent=accent.lower())


def _ip_or_network(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _web_links(digest: DigestConfig, web: WebConfig, table: dict[str, Any]) -> DigestConfig:
    """With [web], the digest's links default to bulletin serve's routes."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if "unsubscribe_url" not in table:
        changes["unsubscribe_url"] = web.url + "unsubscribe/{token}"
    if "manage_url" not in table:
        changes["manage_url"] = web.url + "subscribe"
    return replace(digest, **changes)


_SUBJECT_FIELDS = frozenset(("title", "headline", "start", "end", "count", "week"))


def _subject_problem(subject: str) -> str | None:
    """What is wrong with the subject's placeholders, or None.

    Only the bare placeholders: a format spec such as {title:>99999999} would build a
    string of any size, and attribute or index lookups reach into objects.
    """
    try:
        parsed = list(string.Formatter().parse(subject))
    except ValueError as exc:  # a lone brace
        return str(exc)
    for _, name, spec, conversion in parsed:
        if name is None:  # text after the last placeholder
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name not in _SUBJECT_FIELDS:
            return f"{shown} is not a placeholder"
        if conversion:
            return f"{shown} has a conversion"
        if spec:
            return f"{shown} has a format spec"
    return None


_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


def _parse_smtp(problems: list[str], top: _Checker) -> SmtpConfig:
    table = _table(top, "smtp")
    check = _Checker(problems, table, "smtp.")
    host = check.text("host", "localhost")
    security = check.text("security", "none")
    if security not in _PORTS:
        check.fail("security", f'{security!r} is not allowed; write "none", "starttls" or "ssl"')
        security = "none"
    port = check.number("port", _PORTS[security], 1, 65535)
    username = check.text("username", None)
    timeout = check.number("timeout", 60, 1, 600)
    if "password" in table:
        check.fail("password", "passwords never go in a file; set BULLETIN_SMTP_PASSWORD instead")
    check.unknown()
    return SmtpConfig(host=host, port=port, security=security, username=username, timeout=timeout)


def _parse_dkim(problems: list[str], top: _Checker, site: Path) -> DkimConfig | None:
    table = _table(top, "dkim")
    if not table:
        return None
    check = _Checker(problems, table, "dkim.")
    selector = check.text("selector", None, 'write the DNS selector, e.g. "bulletin"')
    domain = check.text("domain", None, 'write the signing domain, e.g. "example.org"')
    key_file = check.text("key_file", None, "write the path of the PEM private key")
    for key, value in (("selector", selector), ("domain", domain), ("key_file", key_file)):
        if value is None:
            check.fail(key, "required in [dkim]; remove the table to send unsigned mail")
    if domain is not None and not domain.isascii():  # d= in the signature, and a DNS lookup
        # As addresses are converted (browsers' rules: straße.de keeps its ß), so that d=
        # matches the From domain mailbox_fix suggests.
        name = ascii_address("dkim@" + domain).partition("@")[2]
        fix = f'write it in ASCII, as DNS has it: "{name}"' if name.isascii() else 'write e.g. "example.org"'
        check.fail("domain", f"{domain!r} is not a DNS name mail headers can carry; {fix}")
    check.unknown()
    if selector is None or domain is None or key_file is None:
        return None
    return DkimConfig(selector=selector, domain=domain, key_file=site / key_file)
