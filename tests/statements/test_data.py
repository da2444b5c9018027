"""Statement data: masking, initials and the canonical JSON the code signs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from statements.data import (
    canonical_json,
    data_from_json_dict,
    data_to_json_dict,
    initials,
    mask_kpj,
    utc_seconds,
)
from tests.statements.samples import ISSUED_AT, siti


def test_mask_kpj_keeps_the_last_four_digits() -> None:
    assert mask_kpj("12345678901") == "*******8901"
    assert mask_kpj("123") == "***"


@pytest.mark.parametrize(("name", "expected"), [
    ("Siti Rahayu", "S.R."),
    ("  budi   santoso ", "B.S."),
    ("Ni Luh Putu Ayu", "N.L.P.A."),
    ("Prabowo", "P."),
    ("Élodie d'Arc", "É.D."),
])
def test_initials(name: str, expected: str) -> None:
    assert initials(name) == expected


def test_json_round_trip_keeps_every_month_and_unpaid_ones() -> None:
    data = siti()
    rebuilt = data_from_json_dict(json.loads(json.dumps(data_to_json_dict(data))))
    assert rebuilt == data
    assert rebuilt.unpaid_months == 1
    assert [m.period for m in rebuilt.months if m.paid_on is None] == ["2026-09"]


def test_canonical_json_is_stable_and_in_utc_seconds() -> None:
    data = siti()
    jakarta = ISSUED_AT.astimezone(timezone(timedelta(hours=7))).replace(microsecond=999)
    assert canonical_json(data, ISSUED_AT) == canonical_json(data, jakarta)
    document = json.loads(canonical_json(data, ISSUED_AT))
    assert document["issued_at"] == "2026-11-20T03:04:05Z"
    assert document["v"] == 1


def test_naive_issue_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_seconds(datetime(2026, 1, 1))  # noqa: DTZ001 - the case under test
    assert utc_seconds(datetime(2026, 1, 1, 7, tzinfo=timezone(timedelta(hours=7)))) == \
        datetime(2026, 1, 1, tzinfo=UTC)
