"""Quiet hours: parsing, and the end of the quiet period at its edges."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from alerts.quiet import JAKARTA, QuietHours

NIGHT = QuietHours(time(21), time(7))


def wib(text: str) -> datetime:
    """A moment in Asia/Jakarta."""
    return datetime.fromisoformat(text).replace(tzinfo=JAKARTA)


def test_parse_reads_a_span_and_turns_off() -> None:
    assert QuietHours.parse("21:00-07:00") == NIGHT
    assert QuietHours.parse("12:30-13:15") == QuietHours(time(12, 30), time(13, 15))
    assert QuietHours.parse("") is None
    assert QuietHours.parse("off") is None
    with pytest.raises(ValueError, match="quiet hours"):
        QuietHours.parse("21-7")


@pytest.mark.parametrize(("now", "end"), [
    ("2026-12-03 20:59:59", None),
    ("2026-12-03 21:00:00", "2026-12-04 07:00:00"),
    ("2026-12-03 23:59:59", "2026-12-04 07:00:00"),
    ("2026-12-04 00:00:00", "2026-12-04 07:00:00"),
    ("2026-12-04 06:59:59", "2026-12-04 07:00:00"),
    ("2026-12-04 07:00:00", None),
    ("2026-12-31 22:00:00", "2027-01-01 07:00:00"),
])
def test_over_midnight(now: str, end: str | None) -> None:
    assert NIGHT.until(wib(now)) == (None if end is None else wib(end))


@pytest.mark.parametrize(("now", "end"), [
    ("2026-12-03 11:59:00", None),
    ("2026-12-03 12:00:00", "2026-12-03 13:00:00"),
    ("2026-12-03 12:59:59", "2026-12-03 13:00:00"),
    ("2026-12-03 13:00:00", None),
])
def test_within_a_day(now: str, end: str | None) -> None:
    lunch = QuietHours(time(12), time(13))
    assert lunch.until(wib(now)) == (None if end is None else wib(end))


def test_other_zones_are_read_in_jakarta_time() -> None:
    utc = datetime.fromisoformat("2026-12-03T14:30:00+00:00")  # 21:30 in Jakarta
    end = NIGHT.until(utc)
    assert end == wib("2026-12-04 07:00:00")
    assert end is not None and end.utcoffset() is not None
    assert NIGHT.until(datetime.fromisoformat("2026-12-04T00:00:00+00:00")) is None  # 07:00


def test_an_empty_span_is_never_quiet() -> None:
    assert QuietHours(time(7), time(7)).until(wib("2026-12-03 07:00:00")) is None


def test_a_zone_of_its_own() -> None:
    tokyo = QuietHours.parse("21:00-07:00", ZoneInfo("Asia/Tokyo"))
    assert tokyo is not None
    assert tokyo.until(wib("2026-12-03 20:00:00")) is not None  # 22:00 in Tokyo
