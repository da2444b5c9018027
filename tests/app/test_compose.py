"""The composition root: one runtime from settings, the database bootstrapped once, the parts
the settings name, and the overrides tests use."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from app.compose import (
    bootstrap_database,
    build_engine,
    build_ports,
    development_rate,
    open_database,
    otp_sender_for,
    runtime,
    verify_url,
    with_ports,
)
from app.documents import PooledDocumentMaker
from app.metrics import CountingTicketStore, Metrics
from app.otp_delivery import FanOutOtpSender, OutboxOtpSender
from balance.cache import CachedBalanceService
from balance.demo import DEFAULT_RATES, DEMO_RATES
from balance.service import ReferenceBalanceService
from flows.hours import BusinessHours
from flows.types import Event, SessionKey
from storage.db import create_engine
from storage.sessions import MemorySessionStore, RedisSessionStore
from storage.statements import SqlStatementIssueStore
from tests.app.conftest import embedded_settings as _settings
from tests.flows.conftest import SECRET, ManualClock


async def _count(url: str, table: str) -> int:
    database = create_engine(url)
    try:
        async with database.connect() as conn:
            return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608
    finally:
        await database.dispose()


async def test_the_embedded_runtime_answers_on_a_seeded_database(tmp_path: Path) -> None:
    settings = _settings(tmp_path, business_days="mon-sun")
    sender = OutboxOtpSender(tmp_path / "outbox.jsonl")
    async with runtime(settings, sender) as built:
        assert isinstance(built.store, MemorySessionStore)
        assert isinstance(built.balance, CachedBalanceService), "cached by default"
        assert built.ports.balance is built.balance and built.ports.kv is built.store
        assert built.ports.otp_sender is sender and built.ports.tickets is built.tickets
        assert built.ports.hours == settings.hours()
        replies = await built.engine.handle(SessionKey("test", "1"), Event.message("/menu"))
        assert replies
    assert await _count(settings.database, "member") > 0, "the demo members are seeded"


async def test_the_runtime_follows_the_settings(tmp_path: Path, redis_url: str) -> None:
    settings = _settings(tmp_path, redis_url=redis_url, otp_secret="s",
                         balance_cache_seconds=0)
    metrics, clock = Metrics(), ManualClock()
    async with runtime(settings, OutboxOtpSender(tmp_path / "o.jsonl"), metrics=metrics,
                       clock=clock) as built:
        assert isinstance(built.store, RedisSessionStore)
        assert isinstance(built.balance, ReferenceBalanceService)
        assert isinstance(built.tickets, CountingTicketStore)
        assert built.ports.clock is clock and built.ports.secret == b"s"


async def test_the_http_balance_service_when_its_url_is_set(tmp_path: Path) -> None:
    from balance.client import HttpBalanceService

    settings = _settings(tmp_path, balance_service_url="http://127.0.0.1:1",
                         balance_service_token="t")
    async with runtime(settings, OutboxOtpSender(tmp_path / "o.jsonl")) as built:
        assert isinstance(built.balance, HttpBalanceService)


async def test_bootstrap_seeds_rates_only_unless_demo(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    database = create_engine(url)
    try:
        await bootstrap_database(database, demo=False)
        await bootstrap_database(database, demo=False)  # idempotent
    finally:
        await database.dispose()
    assert await _count(url, "member") == 0
    rates = await _count(url, "development_rate")
    assert rates > 0
    database = await open_database(url)
    await database.dispose()
    assert await _count(url, "member") > 0
    assert await _count(url, "development_rate") > rates, "the demo's rates as well"


async def test_build_ports_defaults_and_overrides(tmp_path: Path) -> None:
    database = await open_database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        store, sender = MemorySessionStore(), OutboxOtpSender(tmp_path / "o.jsonl")
        ports = build_ports(kv=store, database=database, secret=SECRET, otp_sender=sender)
        assert isinstance(ports.balance, ReferenceBalanceService)
        assert ports.tickets is None and ports.desk is None
        assert ports.hours == BusinessHours()
        fake = ReferenceBalanceService(database)
        swapped = with_ports(ports, balance=fake)
        assert swapped.balance is fake and swapped.accounts is ports.accounts
        engine = build_engine(store, swapped, strict=True)
        assert await engine.handle(SessionKey("test", "2"), Event.message("/menu"))
    finally:
        await database.dispose()
    with pytest.raises(TypeError, match="needs a database"):
        build_ports(kv=MemorySessionStore(), secret=SECRET, otp_sender=sender)


def test_otp_delivery_is_chosen_from_the_settings(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="No way to send OTP codes is configured"):
        otp_sender_for(_settings(tmp_path), [])
    console = OutboxOtpSender(tmp_path / "console.jsonl")
    alone = otp_sender_for(_settings(tmp_path), [console])
    assert alone.sender is console and alone.channels == ("sms", "email")
    assert alone.senders == () and "OTP_OUTBOX" in alone.describe()  # an outbox stands in
    both = otp_sender_for(_settings(tmp_path, otp_outbox=str(tmp_path / "o.jsonl")), [console])
    assert isinstance(both.sender, FanOutOtpSender)
    outbox = otp_sender_for(_settings(tmp_path, otp_outbox="o.jsonl", otp_channels="email,sms"),
                            [])
    assert isinstance(outbox.sender, OutboxOtpSender)
    assert outbox.channels == ("email", "sms") and "OTP_OUTBOX" in outbox.describe()
    with pytest.raises(SystemExit, match="OTP_CHANNELS names fax: use whatsapp, sms, email"):
        otp_sender_for(_settings(tmp_path, otp_outbox="o.jsonl", otp_channels="sms,fax"), [])


def test_the_wiring_lives_in_one_place() -> None:
    """No module outside the composition root and the flows builds ``Ports(...)`` itself."""
    root = Path(__file__).resolve().parents[2]
    builders = sorted(
        str(path.relative_to(root)) for folder in ("app", "channels", "bench", "run_bot.py")
        for path in ((root / folder).rglob("*.py") if (root / folder).is_dir()
                     else [root / folder])
        if "Ports(" in path.read_text(encoding="utf-8"))
    assert builders == ["app/compose.py"]


# --- statements and charts: the document maker, the issue store, the development rate and
# the address statements point verifiers to


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
