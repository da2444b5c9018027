"""What a contribution statement says: the member, every month of the period and the balance.

:class:`StatementData` is the whole content of a statement; its canonical JSON
(:func:`canonical_json`) is what the verification code signs and what the PDF carries, so a
verifier can read it back (:func:`data_from_json_dict`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class StatementMonth:
    """One month of the period: ``period`` is ``"YYYY-MM"``; ``paid_on`` is ``None`` for a
    month that was not paid (its parts are then zero)."""

    period: str
    wage: int
    employer_part: int
    employee_part: int
    paid_on: date | None

    @property
    def total(self) -> int:
        """Employer and employee parts together."""
        return self.employer_part + self.employee_part


@dataclass(frozen=True)
class StatementData:
    """The content of a statement. ``months`` holds every month of the period in order,
    unpaid ones with ``paid_on`` ``None``; the balance parts are as of ``balance_as_of``."""

    name: str
    nik_masked: str
    kpj: str
    segment: str
    employer: str
    period_label_from: str
    period_label_to: str
    months: tuple[StatementMonth, ...]
    balance_as_of: date
    employer_total: int
    employee_total: int
    development: int
    balance_total: int

    @property
    def unpaid_months(self) -> int:
        """How many months of the period were not paid."""
        return sum(1 for month in self.months if month.paid_on is None)


def mask_kpj(kpj: str) -> str:
    """The KPJ with all but its last four characters hidden: ``"*******8901"``."""
    visible = kpj[-4:] if len(kpj) > 4 else ""  # noqa: PLR2004 - four digits stay visible
    return "*" * (len(kpj) - len(visible)) + visible


def initials(name: str) -> str:
    """The initials of a name, each followed by a dot: ``"Siti Rahayu"`` -> ``"S.R."``."""
    return "".join(f"{word[0].upper()}." for word in name.split() if word[0].isalnum())


def utc_seconds(moment: datetime) -> datetime:
    """``moment`` in UTC, without fractions of a second (the precision a statement keeps).
    Raises :class:`ValueError` for a naive datetime (its instant is unknown)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


def iso_utc(moment: datetime) -> str:
    """``"2026-12-03T18:30:00Z"``: the form the payload writes an issue time in."""
    return utc_seconds(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def data_to_json_dict(data: StatementData) -> dict[str, Any]:
    """``data`` as JSON-ready values (dates as ISO strings)."""
    raw = asdict(data)
    raw["balance_as_of"] = data.balance_as_of.isoformat()
    raw["months"] = [
        {**asdict(month), "paid_on": month.paid_on.isoformat() if month.paid_on else None}
        for month in data.months
    ]
    return raw


def data_from_json_dict(raw: Mapping[str, Any]) -> StatementData:
    """Rebuild :class:`StatementData` from :func:`data_to_json_dict` output. Raises
    :class:`ValueError` (or ``KeyError``/``TypeError``) for anything else."""
    months = tuple(
        StatementMonth(period=str(m["period"]), wage=_int(m["wage"]),
                       employer_part=_int(m["employer_part"]),
                       employee_part=_int(m["employee_part"]),
                       paid_on=date.fromisoformat(m["paid_on"]) if m["paid_on"] else None)
        for m in raw["months"]
    )
    return StatementData(
        name=str(raw["name"]), nik_masked=str(raw["nik_masked"]), kpj=str(raw["kpj"]),
        segment=str(raw["segment"]), employer=str(raw["employer"]),
        period_label_from=str(raw["period_label_from"]),
        period_label_to=str(raw["period_label_to"]), months=months,
        balance_as_of=date.fromisoformat(raw["balance_as_of"]),
        employer_total=_int(raw["employer_total"]), employee_total=_int(raw["employee_total"]),
        development=_int(raw["development"]), balance_total=_int(raw["balance_total"]),
    )


def canonical_json(data: StatementData, issued_at: datetime) -> bytes:
    """The bytes a verification code signs: sorted keys, no spaces, UTF-8, the payload
    version, the data and the issue time in UTC seconds."""
    document = {"v": PAYLOAD_VERSION, "data": data_to_json_dict(data),
                "issued_at": iso_utc(issued_at)}
    return _dump(document)


def _dump(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    return value
