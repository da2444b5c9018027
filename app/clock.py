"""The real clock."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The system time in UTC."""

    def now(self) -> datetime:
        """Timezone-aware current time."""
        return datetime.now(UTC)
