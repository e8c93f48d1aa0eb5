"""Dates as authors write them: YYYY-MM-DD or ISO 8601 date-times, naive ones in the site's zone."""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

# ASCII digits only: \d alone also matches ٢٠٢٦ or ２０２６, which int() reads but no one else does.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r" ?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?",
    re.ASCII,
)

# The instants bulletin accepts: a year inside what datetime can hold, so that converting to
# any time zone and the arithmetic of weeks and late windows cannot overflow.
_EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
_LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@functools.lru_cache(maxsize=8192)  # items share their days: one answer, and one object, a day
def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of `day` in `tz`; when midnight does not exist, the end of the gap."""
    moment = datetime.combine(day, time(0), tzinfo=tz)
    utc = moment.astimezone(UTC)
    if utc.astimezone(tz).date() == day and utc.astimezone(tz).time() == time(0):
        return moment
    # Midnight falls in a gap: search the whole seconds for the first one on `day`.
    low = int(datetime.combine(day, time(0), tzinfo=UTC).timestamp()) - 86400
    high = low + 2 * 86400
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).date() >= day:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, tz)


def local_day(moment: datetime, tz: ZoneInfo) -> str:
    """The day `moment` falls on in the site's time zone, as YYYY-MM-DD: the date pages, the
    digest and the feed list show (an item's own offset may put it on another day)."""
    return moment.astimezone(tz).date().isoformat()


def parse_date(value: str, tz: ZoneInfo) -> datetime | None:
    """An aware datetime from the accepted forms, naive ones in `tz`; None if not a date."""
    value = value.strip()
    try:
        moment: datetime | None = None
        match = _DATE.fullmatch(value)
        if match:
            moment = local_midnight(date(*map(int, match.groups())), tz)
        else:
            match = _DATETIME.fullmatch(value)
            moment = _date_time(match.groups(), tz) if match else None
        return moment if moment is not None and _EARLIEST <= moment <= _LATEST else None
    except (ValueError, OverflowError):  # no such day, or beyond the ends of the calendar
        return None


def _date_time(groups: tuple[str | Any, ...], tz: ZoneInfo) -> datetime | None:
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = groups
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    zone: Any
    if zulu:
        zone = UTC
    elif sign:
        hours, minutes = int(off_h), int(off_m or 0)
        if minutes > 59 or hours * 60 + minutes > _MAX_OFFSET:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        zone = timezone(delta if sign == "+" else -delta)
    else:
        zone = tz
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=zone
    )


_MAX_OFFSET = 14 * 60  # minutes: no time zone is further from UTC (RFC 3339 allows 23:59)


def date_fix(value: str) -> str:
    """Why parse_date refused `value`, and what to write instead."""
    value = value.strip()
    match = _DATE.fullmatch(value) or _DATETIME.fullmatch(value)
    if match is None:
        return "is not a date; write YYYY-MM-DD or an ISO 8601 date-time"
    groups = match.groups()
    if len(groups) > 3 and groups[9] and int(groups[9]) * 60 + int(groups[10] or 0) > _MAX_OFFSET:
        return "is not a date: its UTC offset is over 14:00, which no time zone has; write the real one"
    try:
        numbers = (int(groups[n] or 0) if n < len(groups) else 0 for n in range(6))
        year, month, day, hour, minute, second = numbers
        datetime(year, month, day, hour, minute, second)  # the calendar's day and time, any year
    except ValueError:
        return "is not a date: there is no such day or time; write one on the calendar"
    return "is out of range; bulletin takes dates from the year 0002 to 9998"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc822(moment: datetime) -> str:
    """`moment` as email.utils.format_datetime writes it ('Wed, 25 Nov 2026 12:00:00 +0000'),
    without loading the email package (8 ms) for the one date a feed list shows."""
    zone = "-0000" if moment.tzinfo is None else moment.strftime("%z")
    return (
        f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {zone}"
    )
