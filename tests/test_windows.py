"""Digest windows — ISO weeks in the site's time zone, custom windows, edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bulletin.digests.windows import custom, iso_week, last_complete_week, week_containing
from bulletin.errors import UsageError

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def test_a_week_runs_monday_to_monday_local() -> None:
    week = iso_week("2026-W47", NY)
    assert week.start == datetime(2026, 11, 16, tzinfo=NY)
    assert week.end == datetime(2026, 11, 23, tzinfo=NY)
    assert (week.name, week.label) == ("2026-W47", "2026-W47")


def test_half_open_edges() -> None:
    week = iso_week("2026-W47", NY)
    assert datetime(2026, 11, 16, 0, 0, tzinfo=NY) in week
    assert datetime(2026, 11, 23, 0, 0, tzinfo=NY) not in week
    assert datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=NY) in week


def test_offsets_move_items_across_the_boundary() -> None:
    week = iso_week("2026-W47", NY)
    # 23:30 in Los Angeles on Sunday is already Monday in New York: next week.
    assert datetime(2026, 11, 22, 23, 30, tzinfo=ZoneInfo("America/Los_Angeles")) not in week
    # 04:30 UTC on Monday is still Sunday evening in New York: this week.
    assert datetime(2026, 11, 23, 4, 30, tzinfo=UTC) in week
    assert datetime(2026, 11, 23, 5, 0, tzinfo=UTC) not in week


def test_daylight_saving_weeks_are_a_local_week_long() -> None:
    autumn = iso_week("2026-W43", BERLIN)  # clocks go back on Sunday 25 October
    assert autumn.end - autumn.start == timedelta(days=7, hours=1)  # both in UTC
    spring = iso_week("2026-W13", BERLIN)  # clocks go forward on Sunday 29 March
    assert spring.end - spring.start == timedelta(days=7, hours=-1)
    assert spring.end.astimezone(BERLIN).hour == 0


def test_week_53_and_the_year_boundary() -> None:
    w53 = iso_week("2026-W53", UTC)  # type: ignore[arg-type]
    assert (w53.since, w53.until) == (date(2026, 12, 28), date(2027, 1, 4))
    assert (w53.start, w53.end) == (
        datetime(2026, 12, 28, tzinfo=UTC),
        datetime(2027, 1, 4, tzinfo=UTC),
    )
    w01 = week_containing(datetime(2025, 12, 29, 12, tzinfo=UTC), UTC)  # type: ignore[arg-type]
    assert w01.name == "2026-W01"
    with pytest.raises(UsageError, match="2025 has no week 53; weeks run from 01 to 52 or 53"):
        iso_week("2025-W53", UTC)  # type: ignore[arg-type]


def test_bad_week_names() -> None:
    with pytest.raises(UsageError) as caught:
        iso_week("2026-47", NY)
    assert str(caught.value) == "--week '2026-47' is not an ISO week; write it like 2026-W47"
    assert iso_week("2026-w47", NY).name == "2026-W47"  # as some people type it


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 25, 12, tzinfo=NY), "2026-W47"),
        (datetime(2026, 11, 23, 0, 0, tzinfo=NY), "2026-W47"),  # W47 has just ended
        (datetime(2026, 11, 22, 23, 59, tzinfo=NY), "2026-W46"),
        (datetime(2026, 11, 23, 4, 59, tzinfo=UTC), "2026-W46"),  # still Sunday in New York
        (datetime(2026, 1, 1, 12, tzinfo=NY), "2025-W52"),
    ],
)
def test_the_last_complete_week(now: datetime, expected: str) -> None:
    week = last_complete_week(now, NY)
    assert week.name == expected
    assert week.end <= now


def test_custom_windows_end_before_until() -> None:
    window = custom("2026-11-16", "2026-11-23", NY)
    assert (window.start, window.end) == (
        datetime(2026, 11, 16, tzinfo=NY),
        datetime(2026, 11, 23, tzinfo=NY),
    )
    assert window.label == "2026-11-16 – 2026-11-22"
    assert window.name == "2026-11-16_2026-11-23"
    assert custom("2026-11-16", "2026-11-17", NY).label == "2026-11-16"
    with pytest.raises(UsageError, match="--until 2026-11-16 must come after --since 2026-11-16"):
        custom("2026-11-16", "2026-11-16", NY)
    with pytest.raises(UsageError, match="--since '16/11/2026' is not a date; write YYYY-MM-DD"):
        custom("16/11/2026", "2026-11-23", NY)


@pytest.mark.parametrize("name", ["9999-W52", "0001-W01", "0001-W52", "0002-W01"])
def test_weeks_at_the_ends_of_the_calendar_are_refused(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        iso_week(name, BERLIN)
    assert str(caught.value) == f"--week '{name}' is out of range; weeks run from 0002-W02 to 9999-W51"


@pytest.mark.parametrize("tz", [ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12"), UTC])
def test_the_first_and_last_weeks_work_in_every_zone(tz: ZoneInfo) -> None:
    first, last = iso_week("0002-W02", tz), iso_week("9999-W51", tz)
    assert (first.name, first.since, last.name, last.until) == (
        "0002-W02", date(2, 1, 7), "9999-W51", date(9999, 12, 27)
    )  # fmt: skip
    assert last_complete_week(datetime(9999, 12, 30, 12, tzinfo=UTC), tz).name == "9999-W51"


def test_custom_windows_at_the_ends_of_the_calendar_are_refused() -> None:
    fix = "write dates from 0002-01-07 to 9999-12-27"
    with pytest.raises(UsageError, match=f"^--since 0001-01-01 is out of range; {fix}$"):
        custom("0001-01-01", "0001-01-08", BERLIN)
    with pytest.raises(UsageError, match=f"^--until 9999-12-31 is out of range; {fix}$"):
        custom("9999-12-20", "9999-12-31", NY)
    assert custom("0002-01-07", "9999-12-27", BERLIN).name == "0002-01-07_9999-12-27"


@pytest.mark.parametrize(
    "now", [datetime(1, 1, 9, tzinfo=UTC), datetime(2, 1, 13, tzinfo=UTC), datetime.min.replace(tzinfo=UTC)]
)
def test_no_last_complete_week_at_the_start_of_the_calendar(now: datetime) -> None:
    with pytest.raises(UsageError) as caught:
        last_complete_week(now, NY)
    assert str(caught.value) == (
        f"no complete week before {now.date().isoformat()} is in range; weeks run from 0002-W02 to 9999-W51"
    )
