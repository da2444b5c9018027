"""Business hours of the agent team: days, hours, time zone and holidays.

Defaults: Monday to Friday, 08:00-17:00 in Asia/Jakarta. Configured with ``BUSINESS_DAYS``
(``mon-fri`` or ``mon,wed,sat``), ``BUSINESS_HOURS`` (``08:00-17:00``), ``BUSINESS_TZ`` and
``HOLIDAYS`` (``2026-12-25,2027-01-01``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """When agents answer. ``days`` are weekday numbers (Monday is 0)."""

    days: frozenset[int] = frozenset(range(5))
    start: time = time(8, 0)
    end: time = time(17, 0)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Jakarta"))
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, days: str = "mon-fri", hours: str = "08:00-17:00",
              tz: str = "Asia/Jakarta", holidays: str = "") -> BusinessHours:
        """From the settings' text forms; raises ``ValueError`` on a malformed value."""
        start, end = (time.fromisoformat(part.strip()) for part in hours.split("-", 1))
        if end <= start:
            raise ValueError("BUSINESS_HOURS must end after it starts")
        return cls(_parse_days(days), start, end, ZoneInfo(tz),
                   frozenset(date.fromisoformat(d.strip()) for d in holidays.split(",")
                             if d.strip()))

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` falls within working hours on a working day."""
        local = at.astimezone(self.tz)
        return self._working_day(local.date()) and self.start <= local.time() < self.end

    def next_open(self, at: datetime) -> datetime:
        """The next moment agents answer (``at`` itself when open), in the team's zone."""
        local = at.astimezone(self.tz)
        if self.is_open(local):
            return local
        day = local.date() if local.time() < self.start else local.date() + timedelta(days=1)
        for _ in range(370):
            if self._working_day(day):
                return datetime.combine(day, self.start, self.tz)
            day += timedelta(days=1)
        raise ValueError("no working day within a year")

    def _working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays


def _parse_days(text: str) -> frozenset[int]:
    chosen: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        low, high = _DAYS.index(first), _DAYS.index(last or first)
        chosen.update(range(low, high + 1))
    if not chosen:
        raise ValueError("BUSINESS_DAYS names no day")
    return frozenset(chosen)
