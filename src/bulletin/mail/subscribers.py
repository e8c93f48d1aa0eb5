"""The subscribers file: CSV with a header row `email,name,topics`, every bad row reported."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from ..addresses import normalise_address, recipient_address, valid_address
from ..errors import UsageError
from ..report import Report

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One row: an address (as written, for To), a name for the greeting, and the topics
    (slugs; None: all)."""

    email: str
    name: str
    topics: frozenset[str] | None
    line: int


def read_subscribers(path: Path, known_slugs: set[str], report: Report) -> list[Subscriber]:
    """Every usable row; each bad row is reported (file:line) and skipped, never widened to all."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{shown}: cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{shown}:{line}: error: not UTF-8; save the file as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    columns = [name.strip().lower() for name in header or []]
    if "email" not in columns:
        raise UsageError(f"{shown}:1: error: no 'email' column; the first row must be email,name,topics")
    where: dict[str, int] = {
        name: columns.index(name) for name in ("email", "name", "topics") if name in columns
    }
    seen: dict[str, int] = {}
    subscribers = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str:
            index = where.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        address = cell("email")
        if not valid_address(address):
            report.error(shown, line, f"address '{address}' is not valid; write it as name@example.org")
            continue
        key = normalise_address(address)
        if key in seen:
            report.error(shown, line, f"{address} is already on line {seen[key]}; the first row wins: "
                         "delete this one")  # fmt: skip
            continue
        usable, topics = _topics(cell("topics"), known_slugs, shown, line, report)
        if not usable:
            continue
        seen[key] = line
        name = " ".join(_CONTROL.sub(" ", cell("name")).split())
        subscribers.append(Subscriber(recipient_address(address), name, topics, line))
    return subscribers


def _topics(
    value: str, known: set[str], shown: str, line: int, report: Report
) -> tuple[bool, frozenset[str] | None]:
    """Whether the row is usable, and its slugs (None: all topics)."""
    slugs = [slug.strip() for slug in value.split(";") if slug.strip()]
    if not slugs or slugs == ["*"]:
        return True, None
    unknown = [slug for slug in slugs if slug not in known]
    kept = frozenset(slug for slug in slugs if slug in known)
    if not kept:
        report.error(shown, line, f"no known topic in '{value}'; write slugs from `bulletin topics` "
                     "separated by ';', or leave it empty for all topics")  # fmt: skip
        return False, None
    if unknown:
        report.warning(shown, line, f"unknown topic(s) {', '.join(unknown)} dropped; "
                       "see `bulletin topics` for the slugs")  # fmt: skip
    return True, kept
