"""Render a planned digest: Jinja2 templates, CSS inlined by premailer, the size budget."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, timedelta
from email.utils import formataddr, parseaddr
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .config import Config
from .digest import MONTHS, Digest, Section, day_label
from .feeds import make_entry
from .message import (
    BUDGET,
    GREETING,
    UNSUBSCRIBE,
    MessageTemplate,
    Personal,
    build_template,
)
from .templates import environment
from .topics import Topics
from .unsubscribe import make_token, unsubscribe_url
from .windows import Window

MAX_NAME = 100  # longer names are cut in greetings and To headers
MAX_ADDRESS = 254  # RFC 5321's limit for a forward path

# How many times premailer ran in this process (the send path promises at most one run per
# topic set, plus size-budget retries; tests read this).
inline_runs = 0


@dataclass(frozen=True, slots=True)
class Rendered:
    """A digest ready to write or send: its final plan, parts with markers, the message."""

    digest: Digest
    subject: str
    html: str  # inlined, with the greeting and unsubscribe markers
    text: str
    template: MessageTemplate
    size: int  # bytes of the largest copy any subscriber can get
    cuts: int  # items moved behind "and N more" by the size budget


def https(url: str, config: Config) -> str:
    """Everything the site hosts is linked over https in mail."""
    host = urlsplit(url).hostname
    ours = {urlsplit(config.base_url).hostname, urlsplit(config.site_url).hostname}
    if url.startswith("http://") and host in ours:
        return "https://" + url[len("http://") :]
    return url


def sender_name(config: Config) -> str:
    name, _ = parseaddr(config.digest.sender or "")
    return name or config.title


def inline(html: str) -> str:
    """Inline the CSS with premailer; media queries stay in a <style> block, !important kept."""
    global inline_runs
    import premailer  # loaded only when a digest is rendered

    inline_runs += 1
    return str(
        premailer.Premailer(
            html,
            strip_important=False,  # the kept media-query rules must still win over inlined widths
            keep_style_tags=False,
            remove_classes=False,  # the media queries select by class
            disable_validation=True,
            allow_network=False,
            # premailer turns text-align into align= (a left-aligned table then floats left)
            # and vertical-align into valign=; the CSS says it already.
            disable_basic_attributes=["align", "valign"],
            cssutils_logging_level=logging.CRITICAL,
        ).transform()
    )


def digest_url(config: Config, folder: str) -> str:
    return https(f"{config.base_url}emails/{folder}/digest.html", config)


def _context(config: Config, topics: Topics, digest: Digest, folder: str) -> dict[str, Any]:
    sections = [_section(config, topics, digest, section) for section in digest.sections]
    headlines = [section["days"][0]["entries"][0]["title"] for section in sections if section["days"]][:3]
    subject = _subject(config, digest)
    subset = sorted(t.name for t in topics.by_key.values() if digest.topics and t.slug in digest.topics)
    return {
        "site": config,
        "version": __version__,
        "digest": {
            "subject": subject,
            "label": digest.window.label,
            "name": digest.window.name,
            "is_week": digest.window.is_week,
            "start": digest.window.since.isoformat(),
            "end": digest.window.until.isoformat(),
            "dates": date_range(digest.window.since, digest.window.until - timedelta(days=1)),
            "count": digest.count,
            "shown": digest.shown,
            "topics": subset,
            "sections": sections,
            "preheader": " · ".join(headlines),
        },
        "greeting": GREETING,
        "links": {
            "unsubscribe": UNSUBSCRIBE,
            "manage": https(config.digest.manage_url, config),
            "view_online": digest_url(config, folder),
            "archive": https(f"{config.base_url}emails/index.html", config),
            "feeds": https(f"{config.base_url}feeds/index.html", config),
        },
        "sender": {
            "name": sender_name(config),
            "address": parseaddr(config.digest.sender or "")[1],
            "postal": config.digest.address or "",
        },
    }


def date_range(first: date, last: date) -> str:
    """'16 – 22 November 2026', '28 December 2026 – 3 January 2027': English, any locale."""
    month = MONTHS[last.month - 1]
    if first == last:
        return f"{last.day} {month} {last.year}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day} – {last.day} {month} {last.year}"
    if first.year == last.year:
        return f"{first.day} {MONTHS[first.month - 1]} – {last.day} {month} {last.year}"
    return f"{first.day} {MONTHS[first.month - 1]} {first.year} – {last.day} {month} {last.year}"


def _subject(config: Config, digest: Digest) -> str:
    return config.digest.subject.format(title=config.title, week=digest.window.label, count=digest.count)


def _section(config: Config, topics: Topics, digest: Digest, section: Section) -> dict[str, Any]:
    tz = config.timezone
    if section.topic is not None:
        url = https(f"{config.base_url}feeds/topic/{section.topic.slug}/index.html", config)
    else:
        url = None
    days: list[dict[str, Any]] = []
    for item in section.items[: section.shown]:
        day = item.published.astimezone(tz).date()
        if not days or days[-1]["date"] != day.isoformat():
            days.append({"date": day.isoformat(), "label": day_label(day), "entries": []})
        entry = make_entry(item, config, (), "")
        image = None
        if item.image is not None:
            ratio = (item.image.height / item.image.width) if item.image.width and item.image.height else 1
            image = {
                "url": https(item.image.url, config),
                "alt": item.image.alt or item.title,
                "thumb_height": max(1, round(96 * ratio)),
            }
        days[-1]["entries"].append(
            {
                "id": item.id,
                "title": item.title,
                "url": https(entry.alternate, config) if entry.alternate else https(config.site_url, config),
                "source_name": item.source_name,
                "summary": item.summary,
                "image": image,
                "other_topics": [
                    t.name for t in topics.of(item) if section.topic is None or t.key != section.topic.key
                ],
                "late": item.id in digest.late,
                "date_label": day_label(day),
                "published": item.published.isoformat(),
            }
        )
    more_url = url or https(f"{config.base_url}feeds/index.html", config)
    return {
        "name": section.name,
        "slug": section.topic.slug if section.topic else None,
        "url": url,
        "count": len(section.items),
        "shown": section.shown,
        "more": section.more,
        "more_url": more_url,
        "days": days,
    }


def greeting(name: str) -> tuple[str, str]:
    """The greeting as HTML and as text: the subscriber's name, or a neutral one."""
    import html

    name = " ".join(name.split())[:MAX_NAME]
    if not name:
        return "Hello,", "Hello,"
    return f"Hi {html.escape(name)},", f"Hi {name},"


def personal_copy(
    config: Config, name: str, address: str, token: str, message_id: str, date: str
) -> Personal:
    """What one subscriber's copy carries: greeting, To, unsubscribe link and headers."""
    name = " ".join(name.split())[:MAX_NAME]
    template = config.digest.unsubscribe_url or config.digest.manage_url
    url = https(unsubscribe_url(template, address, token), config)
    html_greeting, text_greeting = greeting(name)
    mailto = config.digest.unsubscribe_mailto
    return Personal(
        greeting_html=html_greeting,
        greeting_text=text_greeting,
        unsubscribe_url=url,
        list_unsubscribe=(f"<mailto:{mailto}>, " if mailto else "") + f"<{url}>",
        one_click=True,
        message_id=message_id,
        date=date,
        to=formataddr((name, address), charset="utf-8"),
    )


def worst_case(config: Config, domain: str) -> Personal:
    """The largest personal copy possible: longest name (4-byte characters) and address."""
    local = "+" * 64
    labels = MAX_ADDRESS - len(local) - 1
    host = ".".join(["a" * 62] * (labels // 63)) + "." + "b" * (labels % 63 - 1)
    address = f"{local}@{host}"
    return personal_copy(
        config,
        "\U0001f600" * MAX_NAME,
        address,
        make_token(address, "any secret: tokens have one length", config.digest.list_id),
        f"<{'x' * 64}@{domain}>",  # longer than any fresh Message-ID, and fixed: sizes repeat
        "Wed, 30 Sep 2026 23:59:59 +1400",
    )


def sender_domain(config: Config) -> str:
    address = parseaddr(config.digest.sender or "")[1]
    return address.rpartition("@")[2] or urlsplit(config.base_url).hostname or "localhost"


def render_digest(config: Config, topics: Topics, digest: Digest, folder: str) -> Rendered:
    """Render and inline `digest`; cut items (largest section first) until the largest
    possible copy fits the size budget. Renders once when it fits, log2-many times when not."""
    env = environment(config)
    domain = sender_domain(config)
    worst = worst_case(config, domain)

    def attempt(plan: Digest) -> Rendered:
        context = _context(config, topics, plan, folder)
        html = inline(env.get_template("digest.html.j2").render(context))
        text = env.get_template("digest.txt.j2").render(context)
        subject = context["digest"]["subject"]
        template = build_template(
            subject=subject,
            sender=config.digest.sender or f"{config.title} <news@{domain}>",
            reply_to=config.digest.reply_to,
            list_id=config.digest.list_id,
            list_name=config.title,
            text=text,
            html_body=html,
        )
        size = len(template.render(worst))
        return Rendered(plan, subject, html, text, template, size, digest.shown - plan.shown)

    first = attempt(digest)
    if first.size <= BUDGET:
        return first
    # The cut sequence is fixed (largest section first); find the fewest cuts that fit.
    plans = [digest]

    def plan(cuts: int) -> Digest | None:
        while len(plans) <= cuts:
            following = plans[-1].cut_largest()
            if following is None:
                return None
            plans.append(following)
        return plans[cuts]

    # Each render measures how many bytes a cut saves; the next guess interpolates from
    # that (bisecting whenever interpolation fails to halve the bracket), so a week that
    # needs dozens of cuts renders a handful of times.
    results: dict[int, Rendered] = {0: first}
    over, under = 0, None  # most cuts known too big, fewest cuts known to fit
    guess = max(1, math.ceil((first.size - BUDGET) / max(1, first.size // max(1, digest.shown))))
    bisect = False
    while under is None or under - over > 1:
        candidate = plan(guess)
        if candidate is None:  # fewer cuts are possible than the guess: try the most
            guess = len(plans) - 1
            candidate = plans[guess]
        results[guess] = attempt(candidate)
        width = (under if under is not None else guess) - over
        if results[guess].size <= BUDGET:
            under = guess
        elif guess == len(plans) - 1 and plan(guess + 1) is None:
            return results[guess]  # even the smallest plan is over: the best there is
        else:
            over = guess
        if under is not None and under - over <= 1:
            break
        bisect = not bisect and under is not None and (under - over) * 2 > width
        guess = _next_guess(results, over, under, bisect, first.size / max(1, digest.shown))
    assert under is not None
    return results[under]


def _next_guess(results: dict[int, Rendered], over: int, under: int | None, bisect: bool,
                per_item: float) -> int:  # fmt: skip
    """The next number of cuts to try, strictly between `over` and `under`."""
    if under is None:
        saved = (results[0].size - results[over].size) / over if over else 0.0
        per_cut = saved if saved > 0 else per_item
        return over + max(1, math.ceil((results[over].size - BUDGET) / per_cut))
    if bisect:
        return (over + under) // 2
    saved = (results[over].size - results[under].size) / (under - over)
    if saved <= 0:
        return (over + under) // 2
    guess = over + math.ceil((results[over].size - BUDGET) / saved)
    return min(max(guess, over + 1), under - 1)


def window_folder(window: Window, only: list[str] | None) -> str:
    """Where a digest lives under emails/: the week, or custom/<since>_<until>[_<slugs>]."""
    if window.is_week and only is None:
        return window.name
    since_until = f"{window.since.isoformat()}_{window.until.isoformat()}"
    return "custom/" + since_until + ("_" + "+".join(sorted(only)) if only else "")
