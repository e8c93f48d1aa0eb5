"""Render a planned digest: Jinja2 templates, CSS inlined by premailer, the size budget."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from email.utils import parseaddr
from typing import Any

from .. import __version__
from ..config import Config
from ..site.items import Item
from ..site.topics import Topic, Topics
from ..templates import environment
from ..urls import Urls
from .message import BUDGET, GREETING, MANAGE, UNSUBSCRIBE, MessageTemplate, build_template
from .personal import sender_domain, worst_case
from .plan import MONTHS, Digest, Section, cldr_locale, day_label
from .windows import Window


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


def sender_name(config: Config) -> str:
    name, _ = parseaddr(config.digest.sender or "")
    return name or config.title


def inline(html: str) -> str:
    """Inline the CSS with premailer; media queries stay in a <style> block, !important kept."""
    import premailer  # loaded only when a digest is rendered

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


def digest_context(config: Config, topics: Topics, digest: Digest, folder: str) -> dict[str, Any]:
    sections = [_section(config, topics, digest, section) for section in digest.sections]
    headlines = [section["days"][0]["entries"][0]["title"] for section in sections if section["days"]][:3]
    subject = subject_line(config, digest)
    subset = sorted(t.name for t in topics.by_key.values() if digest.topics and t.slug in digest.topics)
    urls = Urls(config, in_mail=True)
    language = config.language
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
            "dates": date_range(digest.window.since, digest.window.until - timedelta(days=1), language),
            "count": digest.count,
            "shown": digest.shown,
            "topics": subset,
            "sections": sections,
            "preheader": " · ".join(headlines),
        },
        "greeting": GREETING,
        "links": {
            "unsubscribe": UNSUBSCRIBE,
            "personal_manage": MANAGE if config.web is not None else None,
            "manage": urls.manage(),
            "view_online": urls.digest_page(folder),
            "archive": urls.archive(),
            "feeds": urls.feeds_index(),
        },
        "sender": {
            "name": sender_name(config),
            "address": parseaddr(config.digest.sender or "")[1],
            "postal": config.digest.address or "",
        },
    }


def date_range(first: date, last: date, language: str = "en") -> str:
    """'16 – 22 November 2026', '28 December 2026 – 3 January 2027' in English, any machine
    locale; in the site's `language`, as CLDR writes a range of days ('16.–22. Nov. 2026')."""
    locale = cldr_locale(language)
    if locale is not None:
        from babel.dates import format_interval

        return format_interval(first, last, "yMMMMd", locale=locale)
    month = MONTHS[last.month - 1]
    if first == last:
        return f"{last.day} {month} {last.year}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day} – {last.day} {month} {last.year}"
    if first.year == last.year:
        return f"{first.day} {MONTHS[first.month - 1]} – {last.day} {month} {last.year}"
    return f"{first.day} {MONTHS[first.month - 1]} {first.year} – {last.day} {month} {last.year}"


def subject_line(config: Config, digest: Digest) -> str:
    """digest.subject filled in: the dates in the site's language, the top headline."""
    from babel import Locale, UnknownLocaleError
    from babel.dates import format_date  # loaded only when a subject is written

    try:
        locale = Locale.parse(config.language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse("en")  # a language CLDR does not know: English dates
    last = digest.window.until - timedelta(days=1)
    first = digest.sections[0].items[0].title if digest.sections and digest.sections[0].items else ""
    return config.digest.subject.format(
        title=config.title,
        headline=_headline(first),
        start=format_date(digest.window.since, "long", locale=locale),
        end=format_date(last, "long", locale=locale),
        count=digest.count,
        week=digest.window.label,
    )


def _headline(title: str, limit: int = 80) -> str:
    """A headline short enough for a subject line, cut at a word."""
    if len(title) <= limit:
        return title
    cut = title[: limit - 1].rsplit(" ", 1)[0] if " " in title[: limit - 1] else title[: limit - 1]
    return cut.rstrip(" ,;:-–—") + "…"


def _section(config: Config, topics: Topics, digest: Digest, section: Section) -> dict[str, Any]:
    urls = Urls(config, in_mail=True)
    days: list[dict[str, Any]] = []
    for item in section.items[: section.shown]:
        entry = item_entry(config, urls, topics, digest.late, section.topic, item)
        if not days or days[-1]["date"] != entry["date"]:
            days.append(day_entry(entry["date"], config.language))
        days[-1]["entries"].append(entry)
    return {
        **section_head(urls, section.name, section.topic),
        "count": len(section.items),
        "shown": section.shown,
        "more": section.more,
        "days": days,
    }


def section_head(urls: Urls, name: str, topic: Topic | None) -> dict[str, Any]:
    """What a section's title and "and N more" rows show of it."""
    url = urls.topic_page(topic.slug) if topic is not None else None
    return {
        "name": name,
        "slug": topic.slug if topic else None,
        "url": url,
        "more_url": url or urls.feeds_index(),
    }


def day_entry(day: str, language: str) -> dict[str, Any]:
    """A day heading in a section; `entries` are its items."""
    return {"date": day, "label": day_label(date.fromisoformat(day), language), "entries": []}


def item_entry(
    config: Config, urls: Urls, topics: Topics, late: frozenset[str], topic: Topic | None, item: Item
) -> dict[str, Any]:
    """What an item row shows, placed in `topic`'s section (None: "Other")."""
    day = item.published.astimezone(config.timezone).date()
    alternate, _ = urls.item(item)
    image = None
    if item.image is not None:
        image = {
            "url": urls.image(item.image.url),
            "alt": _short_alt(item.image.alt),
            "thumb_height": item.image.thumb_height(96, 1),
        }
    return {
        "id": item.id,
        "title": item.title,
        "url": alternate or urls.site(),
        "source_name": item.source_name,
        "summary": item.summary,
        "image": image,
        "other_topics": [t.name for t in topics.of(item) if topic is None or t.key != topic.key],
        "late": item.id in late,
        "date": day.isoformat(),
        "date_label": day_label(day, config.language),
        "published": item.published.isoformat(),
    }


def render_digest(config: Config, topics: Topics, digest: Digest, folder: str) -> Rendered:
    """Render and inline `digest`; cut items (largest section first) until the largest
    possible copy fits the size budget. Renders once when it fits, log2-many times when not."""

    def attempt(plan: Digest) -> Rendered:
        return render_plan(config, topics, plan, folder, digest.shown - plan.shown)

    first = attempt(digest)
    return first if first.size <= BUDGET else _fewest_cuts(digest, first, attempt)


def render_plan(config: Config, topics: Topics, plan: Digest, folder: str, cuts: int = 0) -> Rendered:
    """Render and inline `plan` as it is (whatever its size)."""
    env = environment(config)
    context = digest_context(config, topics, plan, folder)
    html = inline(env.get_template("digest.html.j2").render(context))
    text = env.get_template("digest.txt.j2").render(context)
    subject = context["digest"]["subject"]
    template = digest_message(config, subject, text, html)
    size = len(template.render(worst_case(config)))
    return Rendered(plan, subject, html, text, template, size, cuts)


def digest_message(config: Config, subject: str, text: str, html: str) -> MessageTemplate:
    """The digest as a message: the site's sender, Reply-To and List-Id around the parts."""
    return build_template(
        subject=subject,
        sender=config.digest.sender or f"{config.title} <news@{sender_domain(config)}>",
        reply_to=config.digest.reply_to,
        list_id=config.digest.list_id,
        list_name=config.title,
        text=text,
        html_body=html,
    )


def _fewest_cuts(digest: Digest, first: Rendered, attempt: Callable[[Digest], Rendered]) -> Rendered:
    """The rendering with the fewest cuts that fits the budget (or the smallest possible)."""
    # The cut sequence is fixed (largest section first).
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
    slugs = "+".join(sorted(only)) if only else ""
    if len(slugs) > 120:  # a folder name has 255 bytes at most: many long slugs get a digest
        slugs = slugs[:100].rstrip("+-") + "-" + hashlib.sha256(slugs.encode()).hexdigest()[:12]
    return "custom/" + since_until + ("_" + slugs if slugs else "")


def _short_alt(alt: str | None) -> str:
    """What a blocked thumbnail shows: its own short alt text, else "Photo" (the title is
    right beside it; a long one would be cut off in the 96-pixel box)."""
    return alt if alt and len(alt) <= 40 else "Photo"
