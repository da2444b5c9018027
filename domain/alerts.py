"""Contribution alerts as data: their kinds and one alert to send (:class:`AlertJob`).

Shared by the flows (``/notifikasi``, the alert messages), the planner and the workers of
:mod:`alerts`, and the queue backends (a job travels as :meth:`AlertJob.encode`'s text).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flows.types import SessionKey

__all__ = ["KINDS", "AlertJob", "AlertKind"]


class AlertKind(StrEnum):
    """What an alert tells: a contribution posted, a contribution missing after its due date
    (plus grace), or the yearly development credited."""

    POSTED = "posted"
    MISSING = "missing"
    DEVELOPMENT = "development"


KINDS: tuple[AlertKind, ...] = tuple(AlertKind)
_SEPARATOR = "|"
_FIELDS = 9


@dataclass(frozen=True, slots=True)
class AlertJob:
    """One alert for one chat about one membership's month (``period`` ``"YYYY-MM"``) or, for
    development, year (``"YYYY"``). Its identity is (chat, kind, period, KPJ): the planner and
    the workers deliver each identity at most once, so a chat linked to two memberships hears
    about each. ``segment`` picks the wording (PU: the employer pays; BPU and PMI: the member);
    the amounts are whole Rupiah (posted), ``rate`` the year's rate in percent (development)."""

    channel: str
    chat_id: str
    kind: AlertKind
    period: str
    kpj: str
    segment: str = "PU"
    employer_part: int = 0
    employee_part: int = 0
    rate: str = ""

    @property
    def key(self) -> SessionKey:
        """The chat the alert goes to."""
        return SessionKey(self.channel, self.chat_id)

    @property
    def identity(self) -> tuple[str, str, str, str, str]:
        """(channel, chat id, kind, period, KPJ): what is delivered at most once."""
        return (self.channel, self.chat_id, self.kind.value, self.period, self.kpj)

    @property
    def total(self) -> int:
        """The posted contribution: employer's part plus the member's."""
        return self.employer_part + self.employee_part

    def encode(self) -> str:
        """The job as one line of text (the queue's payload); :meth:`decode` reads it back.
        Raises :class:`ValueError` when a field holds ``|`` or a line break."""
        text = _SEPARATOR.join((self.channel, self.chat_id, self.kind.value, self.period,
                                self.kpj, self.segment, str(self.employer_part),
                                str(self.employee_part), self.rate))
        # One count on the joined text: a field holding the separator adds one. A line break
        # is refused too: the Redis queue sends a batch as lines.
        if text.count(_SEPARATOR) != _FIELDS - 1 or "\n" in text:
            raise ValueError("an alert job's field holds the separator or a line break")
        return text

    @classmethod
    def decode(cls, text: str | bytes) -> AlertJob:
        """The job :meth:`encode` wrote; raises :class:`ValueError` when malformed."""
        if isinstance(text, bytes):
            text = text.decode()
        fields = text.split(_SEPARATOR)
        if len(fields) != _FIELDS:
            raise ValueError("malformed alert job")
        channel, chat_id, kind, period, kpj, segment, employer, employee, rate = fields
        return cls(channel, chat_id, AlertKind(kind), period, kpj, segment, int(employer),
                   int(employee), rate)
