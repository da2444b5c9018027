"""The statements' wiring in the composition root: the runtime makes documents and records
them, the projection's development rate, and the address statements point verifiers to."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from app.compose import development_rate, open_database, runtime, verify_url
from app.documents import PooledDocumentMaker
from app.otp_delivery import OutboxOtpSender
from app.settings import Settings
from balance.demo import DEFAULT_RATES, DEMO_RATES
from storage.statements import SqlStatementIssueStore


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def _settings(tmp_path: Path, **values: object) -> Settings:
    base: dict[str, object] = {"data_dir": tmp_path / "data",
                               "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
                               "seed_demo_members": True}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[arg-type]


async def test_the_runtime_makes_documents_and_records_statements(tmp_path: Path) -> None:
    async with runtime(_settings(tmp_path), OutboxOtpSender(tmp_path / "o.jsonl")) as built:
        assert isinstance(built.ports.documents, PooledDocumentMaker)
        assert isinstance(built.ports.statements, SqlStatementIssueStore)
        rates = [*DEFAULT_RATES.values(), *DEMO_RATES.values()]
        expected = float(sum(rates) / len(rates)) / 100
        assert built.ports.development_rate == pytest.approx(expected, abs=1e-6)


async def test_without_configured_rates_the_published_years_average(tmp_path: Path) -> None:
    database = await open_database(f"sqlite:///{tmp_path / 'empty.db'}", demo=False)
    try:
        async with database.begin() as conn:
            await conn.execute(text("DELETE FROM development_rate"))
        rate = await development_rate(_settings(tmp_path), database)
    finally:
        await database.dispose()
    published = float(sum(DEFAULT_RATES.values()) / len(DEFAULT_RATES)) / 100
    assert rate == pytest.approx(published, abs=1e-6)
    assert 0.06 < rate < 0.07


@pytest.mark.parametrize(("values", "expected"), [
    ({}, "http://localhost:8080/verify"),
    ({"web_port": 9000}, "http://localhost:9000/verify"),
    ({"telegram_webhook_url": "https://bot.example.id/telegram/webhook"},
     "https://bot.example.id/verify"),
])
def test_the_verify_address(tmp_path: Path, values: dict[str, object], expected: str) -> None:
    assert verify_url(_settings(tmp_path, **values)) == expected
