"""Quiet hours: the daily span in which no alert is sent (held on the queue, then sent).

The default is 21:00-07:00 Asia/Jakarta (``ALERTS_QUIET_HOURS``). A span may cross midnight
("21:00-07:00") or lie within a day ("12:00-13:00"); the start is inside it, the end is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["JAKARTA", "QuietHours"]

JAKARTA = ZoneInfo("Asia/Jakarta")
_SPAN = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Every day from ``start`` (inclusive) to ``end`` (exclusive), local to ``tz``. A start
    equal to the end is no quiet period at all."""

    start: time
    end: time
    tz: ZoneInfo = field(default=JAKARTA)

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo = JAKARTA) -> QuietHours | None:
        """``"21:00-07:00"`` -> quiet hours; ``None`` for ``""`` or ``"off"``; raises
        :class:`ValueError` when malformed."""
        text = text.strip()
        if text in {"", "off"}:
            return None
        match = _SPAN.fullmatch(text)
        if match is None:
            raise ValueError(f"malformed quiet hours: {text!r} (expected HH:MM-HH:MM)")
        hour, minute, end_hour, end_minute = (int(part) for part in match.groups())
        return cls(time(hour, minute), time(end_hour, end_minute), tz)

    def until(self, now: datetime) -> datetime | None:
        """The end of the quiet period ``now`` (timezone-aware) falls in, in ``tz``; ``None``
        when ``now`` is outside quiet hours."""
        local = now.astimezone(self.tz)
        clock = local.time().replace(tzinfo=None)
        if self.start == self.end:
            return None
        if self.start < self.end:  # within a day
            quiet = self.start <= clock < self.end
            day = local.date()
        else:  # across midnight: the evening part ends tomorrow, the morning part today
            quiet = clock >= self.start or clock < self.end
            day = local.date() + timedelta(days=1) if clock >= self.start else local.date()
        if not quiet:
            return None
        return datetime.combine(day, self.end, tzinfo=self.tz)
