"""An alert job as the queue's text: encoded and decoded back, a field that would break the
text refused."""

from __future__ import annotations

import pytest

from domain.alerts import AlertJob, AlertKind


def test_a_job_round_trips_through_its_text() -> None:
    job = AlertJob("whatsapp", "62811", AlertKind.POSTED, "2026-10", "90000000001", "BPU", 0,
                   36_800)
    assert job.encode() == "whatsapp|62811|posted|2026-10|90000000001|BPU|0|36800|"
    assert AlertJob.decode(job.encode().encode()) == job


@pytest.mark.parametrize("chat_id", ["62|811", "62811\n", "a|b|c"])
def test_a_field_holding_the_separator_or_a_line_break_is_refused(chat_id: str) -> None:
    with pytest.raises(ValueError, match="separator"):
        AlertJob("telegram", chat_id, AlertKind.DEVELOPMENT, "2025", "1", rate="6.59").encode()
