"""Each topic set's digest assembled from parts inlined once per send.

Inlining the CSS (premailer) is what a digest costs to render, about 40 ms, and with topics
chosen freely almost every subscriber has a set of their own. So a send renders every part a
copy can hold (each topic's title row, each day's heading, each item under each of its
topics, each "and N more") into one document, inlines that once, and cuts it back into
parts, each then encoded as quoted-printable once. A topic set's copy is its plan (which
items go in which section) turned into a list of parts: joining bytes. The lines that differ
from set to set in the frame (`digest.subject`, `digest.preheader`, `_digest_dates`,
`_digest_lede`) are text, filled in as the inlined document would have them.

A site's own templates may do what parts cannot reproduce (a row that prints its section's
item count, say). So the first copies are also rendered in full and compared; when they
differ, every set is rendered in full, as before, and the run says why.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from ..config import Config
from ..dates import local_day
from ..errors import TemplateError
from ..site.items import Item
from ..site.topics import Topics
from ..templates import environment
from ..urls import Urls
from .editions import Edition
from .message import (
    BUDGET,
    POLICY,
    MessageTemplate,
    encode_parts,
    personal_headers,
    personal_values,
)
from .personal import worst_case
from .plan import Digest, Section, plan_digest, topic_order
from .render import (
    Rendered,
    day_entry,
    digest_context,
    digest_message,
    inline,
    item_entry,
    render_digest,
    render_plan,
    section_head,
    subject_line,
)
from .windows import Window

if TYPE_CHECKING:
    import jinja2

_RUN = secrets.token_hex(12)
_MARK = f"BULLETIN-PART-{_RUN}-"
_FOUND = re.compile(f"{_MARK}(\\w+)")  # a per-set line, or where the rows go
_ROW = re.compile(f"<!--{_MARK}(\\d+|end)-->")  # between the rows inlined together
_SUBJECT, _TEXT, _HTML = (f"BULLETIN-MIME-{_RUN}-{name}" for name in ("SUBJECT", "TEXT", "HTML"))

Chunk = bytes | tuple[str, bool]  # encoded bytes, or a per-subscriber splice point


class PartsDiffer(Exception):
    """The site's templates render something that parts cannot reproduce."""


@dataclass(frozen=True, slots=True)
class _Part:
    text: str  # as the full rendering has it (HTML: inlined)
    chunks: tuple[Chunk, ...]  # quoted-printable, starting and ending at a line break
    data: bytes | None  # the chunks joined, when none is a splice point

    @classmethod
    def of(cls, text: str, in_html: bool) -> _Part:
        chunks = tuple(encode_parts(text, in_html))
        plain = all(isinstance(chunk, bytes) for chunk in chunks)
        return cls(
            text, chunks, b"".join(chunk for chunk in chunks if isinstance(chunk, bytes)) if plain else None
        )


class Planner:
    """Plans for any topic set, as plan_digest makes them, from one pass over the window.

    A topic's place in the order does not depend on which other topics a set has (counts
    are per topic), so each set's sections are the full order's, restricted to the set."""

    def __init__(self, config: Config, topics: Topics, window: Window, chosen: Edition) -> None:
        self.full = plan_digest(config, topics, window, chosen.candidates, None, chosen.late)
        self.cap, self.window, self.late = config.digest.section_items, window, chosen.late
        window_items = self.full.items()
        self.ranked = ranked = topic_order(config, topics, window_items)
        self.rank = {topic.key: n for n, topic in enumerate(ranked)}
        self.members: dict[str, list[Item]] = {topic.key: [] for topic in ranked}
        for item in sorted(window_items, key=_newest, reverse=True):
            for topic in topics.of(item):
                self.members[topic.key].append(item)
        self.by_slug = topics.by_slug()

    def plan(self, slugs: frozenset[str] | None) -> Digest:
        if slugs is None:
            return self.full
        wanted = sorted(
            (
                self.by_slug[slug]
                for slug in slugs
                if slug in self.by_slug and self.by_slug[slug].key in self.rank
            ),
            key=lambda topic: self.rank[topic.key],
        )
        placed: set[str] = set()
        sections = []
        for topic in wanted:
            members = tuple(item for item in self.members[topic.key] if item.id not in placed)
            if members:
                placed.update(item.id for item in members)
                sections.append(Section(topic.name, topic, members, min(self.cap, len(members))))
        return Digest(self.window, slugs, tuple(sections), self.late)


def _newest(item: Item) -> tuple[object, ...]:
    return (item.published, item.updated, item.id)


class Parts:
    """Every part a copy of this send's digest can hold, inlined and encoded once."""

    def __init__(self, config: Config, topics: Topics, planner: Planner, folder: str) -> None:
        self.config, self.topics, self.planner = config, topics, planner
        self.env = environment(config)
        self.templates: dict[str, jinja2.Template] = {}
        self.urls = Urls(config, in_mail=True)
        self.context = digest_context(config, topics, planner.full, folder)
        self.titles: dict[str | None, int] = {}
        self.days: dict[str, int] = {}
        self.items: dict[tuple[str, str | None], int] = {}
        self.mores: dict[tuple[str | None, int], int] = {}
        html_rows, text_rows = self._rows()
        html_frame, html_parts = self._inline_frame(html_rows)
        text_frame = self._frame("digest.txt.j2", Markup(_MARK + "sections"))
        self.html_parts = [_Part.of(text, True) for text in html_parts]
        self.text_parts = [_Part.of(text, False) for text in text_rows]
        self.html_frame = _frame_parts(html_frame, True)
        self.text_frame = _frame_parts(text_frame, False)
        self.skeleton = self._skeleton()
        self.worst_values = {slot: len(value) for slot, value in personal_values(worst_case(config)).items()}
        self.worst_headers = len(personal_headers(worst_case(config))) + 2
        self.subjects: dict[tuple[str, int], tuple[str, bytes]] = {}
        self.ledes: dict[tuple[int, int], tuple[_Part, _Part]] = {}
        tz = config.timezone
        self.item_days = {item.id: local_day(item.published, tz) for item in planner.full.items()}

    # -- the parts, once per send -----------------------------------------------------------

    def _rows(self) -> tuple[list[str], list[str]]:
        """Every row any plan can show, as HTML (not yet inlined) and as text."""
        html: list[str] = []
        text: list[str] = []
        late = self.planner.late

        def add(table: dict[Any, int], key: Any, name: str, **values: Any) -> None:
            table[key] = len(html)
            html.append(self._render(f"_digest_{name}.html.j2", values))
            text.append(self._render(f"_digest_{name}.txt.j2", values))

        other = [section for section in self.planner.full.sections if section.topic is None]
        sections = [(topic.name, topic) for topic in self.planner.ranked] + [("Other", None)] * len(other)
        for name, topic in sections:
            key = topic.key if topic is not None else None
            head = section_head(self.urls, name, topic)
            add(self.titles, key, "section_title", section=head)
            members = self.planner.members[topic.key] if topic is not None else other[0].items
            for item in members:
                entry = item_entry(self.config, self.urls, self.topics, late, topic, item)
                if entry["date"] not in self.days:
                    add(self.days, entry["date"], "day", day=day_entry(entry["date"], self.config.language))
                add(self.items, (item.id, key), "item", item=entry, section=head)
            for more in range(1, len(members) + 1):
                add(self.mores, (key, more), "more", section={**head, "more": more})
        return html, text

    def _render(self, name: str, values: dict[str, Any]) -> str:
        if name not in self.templates:
            self.templates[name] = self.env.get_template(name)
        return self.templates[name].render({**self.context, **values})

    def _frame(self, name: str, sections: Markup) -> str:
        """The digest's frame, its per-set lines as markers and `sections` where sections go."""
        import jinja2

        stand_ins = {
            f"_digest_{part}.{kind}.j2": "{{ section }}" if part == "section" else _MARK + part
            for part in ("section", "dates", "lede")
            for kind in ("html", "txt")
        }
        assert self.env.loader is not None
        env = self.env.overlay(loader=jinja2.ChoiceLoader([jinja2.DictLoader(stand_ins), self.env.loader]))
        context = dict(self.context)
        context["digest"] = {
            **context["digest"],
            "subject": _MARK + "subject",
            "preheader": _MARK + "preheader",
            "sections": [sections],
        }
        return env.get_template(name).render(context)

    def _inline_frame(self, rows: list[str]) -> tuple[str, list[str]]:
        """The HTML frame with every row in it, inlined at once, then cut apart again: the
        frame (a mark where the rows go) and each row."""
        marked = "".join(f"<!--{_MARK}{n}-->{row}" for n, row in enumerate(rows)) + f"<!--{_MARK}end-->"
        inlined = inline(self._frame("digest.html.j2", Markup(marked)))
        marks = list(_ROW.finditer(inlined))
        if [mark.group(1) for mark in marks] != [*map(str, range(len(rows))), "end"]:
            raise PartsDiffer("the inlined digest lost the marks between its rows")
        parts = [inlined[mark.end() : following.start()] for mark, following in pairwise(marks)]
        frame = inlined[: marks[0].start()] + _MARK + "sections" + inlined[marks[-1].end() :]
        return frame, parts

    def _skeleton(self) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """The message around its parts: head before and after Subject, MIME lines."""
        template = digest_message(self.config, _SUBJECT, _TEXT, _HTML)
        head = template.head
        line = f"Subject: {_SUBJECT}\r\n".encode()
        before, after = head.split(line)
        body = b"".join(template.pieces)
        start, rest = body.split(_TEXT.encode())
        middle, end = rest.split(_HTML.encode())
        return before, after, start, middle, end

    # -- one topic set ----------------------------------------------------------------------

    def rendered(self, plan: Digest) -> Rendered:
        """`plan` as a message; items cut (largest section first) until any copy fits."""
        first = plan
        while True:
            assembled = self._assemble(plan, first.shown - plan.shown)
            if assembled.size <= BUDGET:
                return assembled
            following = plan.cut_largest()
            if following is None:
                return assembled
            plan = following

    def _assemble(self, plan: Digest, cuts: int) -> Rendered:
        subject, header = self._subject(plan)
        digest = self._digest(plan)
        lede_html, lede_text = self._lede(plan)
        html_lines = {
            "subject": _text_part(escape(subject)),
            "preheader": _text_part(escape(_preheader(plan))),
            "dates": _text_part(self._render("_digest_dates.html.j2", {"digest": digest})),
            "lede": lede_html,
        }
        text_lines = {
            "dates": _Part.of(self._render("_digest_dates.txt.j2", {"digest": digest}), False),
            "lede": lede_text,
        }
        rows = self._plan_rows(plan)  # the same numbers index HTML and text parts
        html = _fill(self.html_frame, html_lines, [self.html_parts[n] for n in rows])
        text = _fill(self.text_frame, text_lines, [self.text_parts[n] for n in rows])
        before, after, start, middle, end = self.skeleton
        pieces: list[bytes] = []
        slots: list[tuple[str, bool]] = []
        run: list[bytes] = [start]
        for parts, close in ((text, middle), (html, end)):
            for part in parts:
                if part.data is not None:
                    run.append(part.data)
                    continue
                for chunk in part.chunks:
                    if isinstance(chunk, bytes):
                        run.append(chunk)
                    else:
                        pieces.append(b"".join(run))
                        slots.append(chunk)
                        run = []
            run.append(close)
        pieces.append(b"".join(run))
        head = before + header + after
        template = MessageTemplate(head, tuple(pieces), tuple(slots), "")
        size = (
            len(head)
            + self.worst_headers
            + sum(len(piece) for piece in pieces)
            + sum(self.worst_values[slot] for slot in slots)
        )
        html_text = "".join(part.text for part in html)
        text_text = "".join(part.text for part in text)
        return Rendered(plan, subject, html_text, text_text, template, size, cuts)

    def _digest(self, plan: Digest) -> dict[str, Any]:
        """What the per-set lines see of the digest."""
        names = sorted(t.name for t in self.topics.by_key.values() if plan.topics and t.slug in plan.topics)
        return {**self.context["digest"], "topics": names, "count": plan.count, "sections": plan.sections}

    def _subject(self, plan: Digest) -> tuple[str, bytes]:
        """The subject (depends on the top headline and the count) and its header line."""
        first = plan.sections[0].items[0].title if plan.sections and plan.sections[0].items else ""
        key = (first, plan.count)
        if key not in self.subjects:
            subject = subject_line(self.config, plan)
            self.subjects[key] = (
                subject,
                POLICY.fold_binary("Subject", POLICY.header_store_parse("Subject", subject)[1]),
            )
        return self.subjects[key]

    def _lede(self, plan: Digest) -> tuple[_Part, _Part]:
        key = (plan.count, len(plan.sections))
        if key not in self.ledes:
            digest = self._digest(plan)
            self.ledes[key] = (
                _text_part(self._render("_digest_lede.html.j2", {"digest": digest})),
                _Part.of(self._render("_digest_lede.txt.j2", {"digest": digest}), False),
            )
        return self.ledes[key]

    def _plan_rows(self, plan: Digest) -> list[int]:
        """The numbers of the rows `plan` shows, in order."""
        rows: list[int] = []
        for section in plan.sections:
            key = section.topic.key if section.topic is not None else None
            rows.append(self.titles[key])
            day = None
            for item in section.items[: section.shown]:
                entry = self.items[(item.id, key)]
                date = self.item_days[item.id]
                if date != day:
                    rows.append(self.days[date])
                    day = date
                rows.append(entry)
            if section.more:
                rows.append(self.mores[(key, section.more)])
        return rows


def _preheader(plan: Digest) -> str:
    """The top headlines: each shown section's first item, three at most."""
    return " · ".join([section.items[0].title for section in plan.sections if section.shown][:3])


def _text_part(rendered: str) -> _Part:
    """A line of text rendered by a template (escaped), as the inlined document has it."""
    return _Part.of(as_inlined(rendered), True)


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def as_inlined(rendered: str) -> str:
    """Escaped text as lxml writes it back after premailer: only &, < and > as entities."""
    if _CONTROL.search(rendered):  # rare: let lxml itself say what it makes of these
        import lxml.html
        from lxml import etree

        element = lxml.html.fragment_fromstring(f"<p>{rendered}</p>")
        return etree.tostring(element, method="html", encoding="utf-8").decode("utf-8")[3:-4]
    text = html.unescape(rendered)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _frame_parts(frame: str, in_html: bool) -> list[_Part | str]:
    """The frame as encoded parts, with the names of the per-set lines between them."""
    pieces = _FOUND.split(frame)
    return [_Part.of(piece, in_html) if n % 2 == 0 else piece for n, piece in enumerate(pieces)]


def _fill(frame: list[_Part | str], lines: dict[str, _Part], rows: list[_Part]) -> list[_Part]:
    out: list[_Part] = []
    for piece in frame:
        if isinstance(piece, _Part):
            out.append(piece)
        elif piece == "sections":
            out.extend(rows)
        else:
            out.append(lines[piece])
    return out


class Copies:
    """The digest each topic set gets in one send: assembled from parts, or (when the site's
    templates do what parts cannot) rendered in full for every set."""

    def __init__(self, config: Config, topics: Topics, window: Window, chosen: Edition, folder: str) -> None:
        self.config, self.topics, self.folder = config, topics, folder
        self.planner = Planner(config, topics, window, chosen)
        self.why_full = ""  # why every set is rendered in full, when it is
        self.parts: Parts | None = None
        self.checked: set[frozenset[str] | None] = set()
        try:
            self.parts = Parts(config, topics, self.planner, folder)
        except (PartsDiffer, TemplateError) as error:
            self.why_full = str(error)

    def rendered(self, slugs: frozenset[str] | None) -> Rendered | None:
        """The digest this topic set gets; None when none of its topics had items."""
        plan = self.planner.plan(slugs)
        if plan.empty:
            return None
        if self.parts is None:
            return render_digest(self.config, self.topics, plan, self.folder)
        assembled = self.parts.rendered(plan)
        if len(self.checked) < 2 and slugs not in self.checked:
            self.checked.add(slugs)
            full = render_plan(self.config, self.topics, assembled.digest, self.folder, assembled.cuts)
            difference = _difference(assembled, full)
            if difference:
                self.parts, self.why_full = None, difference
                return render_digest(self.config, self.topics, plan, self.folder)
        return assembled


def _difference(assembled: Rendered, full: Rendered) -> str:
    """Where an assembled copy differs from the full rendering; empty when it does not."""
    compared = (
        ("subject", assembled.subject, full.subject),
        ("HTML part", assembled.html, full.html),
        ("text part", assembled.text, full.text),
    )
    for what, mine, theirs in compared:
        if mine != theirs:
            mine_lines, their_lines = mine.splitlines(), theirs.splitlines()
            pairs = zip(mine_lines, their_lines, strict=False)
            shorter = min(len(mine_lines), len(their_lines)) + 1
            number = next((n for n, (a, b) in enumerate(pairs, 1) if a != b), shorter)
            return f"the {what} assembled from parts differs from the full rendering at line {number}"
    return ""
