"""Digest windows: half-open [start, end) spans of `published`, ISO weeks or custom dates."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..dates import local_midnight
from ..errors import UsageError

_WEEK = re.compile(r"(\d{4})-W(\d{2})")
# Window arithmetic reaches a year before a week (late items, digest.late_days) and a day
# past either end (time zones): these weeks keep it inside the dates Python represents.
FIRST_WEEK, LAST_WEEK = "0002-W02", "9999-W51"
_FIRST_DAY = date(2, 1, 7)  # the Monday of FIRST_WEEK
_END_DAY = date(9999, 12, 27)  # the Monday after LAST_WEEK
_WEEKS = f"weeks run from {FIRST_WEEK} to {LAST_WEEK}"


@dataclass(frozen=True, slots=True)
class Window:
    """A span of time a digest covers: items with start <= published < end."""

    start: datetime  # UTC: comparisons never depend on a zone's wall clock
    end: datetime
    name: str  # "2026-W47", or "2026-11-16_2026-11-23" for a custom window
    label: str  # what {week} shows: "2026-W47", or "2026-11-16 – 2026-11-22"
    is_week: bool
    since: date  # the first local day
    until: date  # the local day after the last

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def iso_week(name: str, tz: ZoneInfo) -> Window:
    """The ISO week `YYYY-Www`, Monday 00:00 to the next Monday 00:00 in `tz`."""
    match = _WEEK.fullmatch(name.strip().upper())  # 2026-w47 too
    if not match:
        raise UsageError(f"--week '{name}' is not an ISO week; write it like 2026-W47")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise UsageError(
            f"--week '{name}': {year} has no week {week}; weeks run from 01 to 52 or 53"
        ) from None
    if not _FIRST_DAY <= monday < _END_DAY:
        raise UsageError(f"--week '{name}' is out of range; {_WEEKS}")
    return week_of(monday, tz)


def week_of(day: date, tz: ZoneInfo) -> Window:
    """The ISO week that contains `day`."""
    monday = day - timedelta(days=day.weekday())
    year, week, _ = monday.isocalendar()
    name = f"{year:04d}-W{week:02d}"
    next_monday = monday + timedelta(days=7)
    start = local_midnight(monday, tz).astimezone(UTC)
    end = local_midnight(next_monday, tz).astimezone(UTC)
    return Window(start, end, name, name, True, monday, next_monday)


def week_containing(moment: datetime, tz: ZoneInfo) -> Window:
    """The ISO week in `tz` that contains the instant `moment`."""
    return week_of(moment.astimezone(tz).date(), tz)


def last_complete_week(now: datetime, tz: ZoneInfo) -> Window:
    """The newest week that ended at or before `now`."""
    try:
        day = now.astimezone(tz).date()
        monday = day - timedelta(days=day.weekday() + 7)
    except OverflowError:
        monday = date.min
    if not _FIRST_DAY <= monday < _END_DAY:
        raise UsageError(f"no complete week before {now.date().isoformat()} is in range; {_WEEKS}")
    return week_of(monday, tz)


def custom(since: str, until: str, tz: ZoneInfo) -> Window:
    """--since DATE --until DATE, `until` exclusive, both local midnights in `tz`."""
    try:
        first = date.fromisoformat(since)
    except ValueError:
        raise UsageError(f"--since '{since}' is not a date; write YYYY-MM-DD") from None
    try:
        last = date.fromisoformat(until)
    except ValueError:
        raise UsageError(f"--until '{until}' is not a date; write YYYY-MM-DD") from None
    for option, day in (("--since", first), ("--until", last)):
        if not _FIRST_DAY <= day <= _END_DAY:
            fix = f"write dates from {_FIRST_DAY.isoformat()} to {_END_DAY.isoformat()}"
            raise UsageError(f"{option} {day.isoformat()} is out of range; {fix}")
    if last <= first:
        raise UsageError(f"--until {until} must come after --since {since} (--until is exclusive)")
    inclusive = last - timedelta(days=1)
    label = first.isoformat() if inclusive == first else f"{first.isoformat()} – {inclusive.isoformat()}"
    start, end = local_midnight(first, tz).astimezone(UTC), local_midnight(last, tz).astimezone(UTC)
    return Window(start, end, f"{first}_{last}", label, False, first, last)


def partial_week(window: Window, now: datetime, *, allowed: bool) -> Window:
    """A week that has not ended by `now` is refused unless `allowed`; then it becomes a
    custom window (written under emails/custom/), so a partial week never enters the archive."""
    if not window.is_week or window.end <= now:
        return window
    if not allowed:
        from ..errors import RefusedError

        raise RefusedError(
            f"{window.label} has not ended yet (its last day is {window.until - timedelta(days=1)}); "
            "its digest would miss the rest "
            "of the week: pass --partial to write it anyway (under emails/custom/, out of the archive)"
        )
    return replace(window, name=f"{window.since}_{window.until}", is_week=False)
