"""One contract for SqlAccountStore, run on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.ports import DatabaseUnavailable
from flows.types import SessionKey
from storage.accounts import SqlAccountStore, pseudonym
from storage.db import create_engine
from storage.models import AuditEvent

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WIB = timezone(timedelta(hours=7))
KEY = SessionKey("telegram", "chat-5550001")
OTHER = SessionKey("telegram", "chat-5550002")
SAME_ID_ELSEWHERE = SessionKey("whatsapp", "chat-5550001")
SECRET = b"test-pseudonym-key"
KPJ_A, KPJ_B = "12345678901", "23456789012"


@pytest.fixture
def store(engine: AsyncEngine) -> SqlAccountStore:
    return SqlAccountStore(engine, SECRET)


async def test_links_are_idempotent_and_oldest_first(store: SqlAccountStore) -> None:
    await store.link(KEY, KPJ_B, T0)
    await store.link(KEY, KPJ_A, T0 + timedelta(hours=1))
    await store.link(KEY, KPJ_B, T0 + timedelta(hours=2))
    assert await store.linked_kpjs(KEY) == [KPJ_B, KPJ_A]
    assert await store.unlink_all(KEY, T0) == 2
    assert await store.linked_kpjs(KEY) == []
    assert await store.unlink_all(KEY, T0) == 0


async def test_link_order_follows_time_not_zone(store: SqlAccountStore) -> None:
    # 14:00 WIB is 07:00 UTC: earlier than T0 although its wall-clock reads later.
    await store.link(KEY, KPJ_A, T0)
    await store.link(KEY, KPJ_B, datetime(2026, 3, 1, 14, 0, tzinfo=WIB))
    assert await store.linked_kpjs(KEY) == [KPJ_B, KPJ_A]


async def test_chats_are_isolated(store: SqlAccountStore) -> None:
    await store.link(KEY, KPJ_A, T0)
    await store.link(OTHER, KPJ_B, T0)
    await store.link(SAME_ID_ELSEWHERE, KPJ_B, T0)
    assert await store.unlink_all(KEY, T0) == 1
    assert await store.linked_kpjs(OTHER) == [KPJ_B]
    assert await store.linked_kpjs(SAME_ID_ELSEWHERE) == [KPJ_B]


async def test_consent_is_recorded_per_chat_until_withdrawn(store: SqlAccountStore) -> None:
    assert not await store.has_consent(KEY)
    await store.record_consent(KEY, "2026-01", "id", T0)
    assert await store.has_consent(KEY)
    assert not await store.has_consent(OTHER)
    assert not await store.has_consent(SAME_ID_ELSEWHERE)
    assert await store.withdraw_consent(KEY, T0 + timedelta(days=1)) == 1
    assert not await store.has_consent(KEY)
    await store.record_consent(KEY, "2026-02", "en", T0 + timedelta(days=2))
    assert await store.has_consent(KEY)


async def test_consent_to_an_older_notice_does_not_count_for_a_new_one(
        store: SqlAccountStore) -> None:
    await store.record_consent(KEY, "2026-01", "id", T0)
    assert await store.has_consent(KEY, "2026-01")
    assert not await store.has_consent(KEY, "2026-11-v2")


async def test_erase_leaves_only_a_pseudonymous_audit_line(
        store: SqlAccountStore, engine: AsyncEngine) -> None:
    await store.link(KEY, KPJ_A, T0)
    await store.link(OTHER, KPJ_B, T0)
    await store.record_consent(KEY, "2026-01", "id", T0)
    await store.audit(KEY, "linked", T0, "kpj linked")
    await store.erase(KEY, T0 + timedelta(minutes=5))
    assert await store.linked_kpjs(KEY) == []
    assert not await store.has_consent(KEY)
    assert await store.linked_kpjs(OTHER) == [KPJ_B]
    rows = await _audit_rows(engine)
    assert ("erased", pseudonym(KEY, SECRET)) in {(row.action, row.subject) for row in rows}
    for row in rows:
        assert KEY.chat_id not in repr(tuple(row))


async def test_the_language_choice_is_kept_per_chat_replaced_and_erased(
        store: SqlAccountStore, engine: AsyncEngine) -> None:
    assert await store.language(KEY) is None
    await store.set_language(KEY, "en", T0)
    await store.set_language(OTHER, "en", T0)
    assert await store.language(KEY) == "en"
    assert await store.language(SAME_ID_ELSEWHERE) is None, "another channel's chat"
    await store.set_language(KEY, "id", T0 + timedelta(minutes=1))
    assert await store.language(KEY) == "id", "a new choice replaces the old one"
    await store.set_language(KEY, "en", T0 + timedelta(minutes=2))
    await store.erase(KEY, T0 + timedelta(minutes=5))
    assert await store.language(KEY) is None, "the erasure forgets the choice"
    assert await store.language(OTHER) == "en"
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM chat_preference"))).all()
    assert [tuple(row[:2]) for row in rows] == [(OTHER.channel, OTHER.chat_id)]


async def test_audit_keeps_aware_time_and_cuts_long_detail(
        store: SqlAccountStore, engine: AsyncEngine) -> None:
    await store.audit(KEY, "otp_sent", T0.astimezone(WIB), "x" * 2000)
    [row] = await _audit_rows(engine)
    assert row.at == T0
    assert row.at.tzinfo is not None
    assert row.detail == "x" * 500
    assert row.subject == pseudonym(KEY, SECRET)


async def test_naive_datetimes_are_refused_before_any_query(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/unmigrated.db")
    store = SqlAccountStore(engine, SECRET)
    naive = datetime(2026, 3, 1, 8, 0)
    try:
        for call in (store.link(KEY, KPJ_A, naive), store.audit(KEY, "started", naive),
                     store.record_consent(KEY, "2026-01", "id", naive)):
            with pytest.raises(ValueError, match="naive"):
                await call
    finally:
        await engine.dispose()


def test_pseudonym_is_keyed_hex_of_32_chars() -> None:
    subject = pseudonym(KEY, SECRET)
    assert len(subject) == 32
    assert int(subject, 16) >= 0
    assert subject != pseudonym(KEY, b"another key")
    assert subject != pseudonym(SAME_ID_ELSEWHERE, SECRET)


async def _audit_rows(engine: AsyncEngine) -> list[sa.Row[Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(AuditEvent).order_by(sa.text("id")))
        return list(result.all())


CALLS: dict[str, Callable[[SqlAccountStore], Awaitable[object]]] = {
    "linked_kpjs": lambda s: s.linked_kpjs(KEY),
    "link": lambda s: s.link(KEY, KPJ_A, T0),
    "unlink_all": lambda s: s.unlink_all(KEY, T0),
    "record_consent": lambda s: s.record_consent(KEY, "2026-01", "id", T0),
    "has_consent": lambda s: s.has_consent(KEY),
    "withdraw_consent": lambda s: s.withdraw_consent(KEY, T0),
    "erase": lambda s: s.erase(KEY, T0),
    "language": lambda s: s.language(KEY),
    "set_language": lambda s: s.set_language(KEY, "en", T0),
    "audit": lambda s: s.audit(KEY, "started", T0),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_unreachable_postgres_is_database_unavailable(
        call: Callable[[SqlAccountStore], Awaitable[object]],
        unreachable_engine: AsyncEngine) -> None:
    with pytest.raises(DatabaseUnavailable) as raised:
        await call(SqlAccountStore(unreachable_engine, SECRET))
    assert isinstance(raised.value.__cause__, OSError)
    assert KEY.chat_id not in str(raised.value)


async def test_unmigrated_database_is_database_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            await SqlAccountStore(engine, SECRET).link(KEY, KPJ_A, T0)
        assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
        assert KEY.chat_id not in str(raised.value)
        assert KEY.chat_id not in str(raised.value.__cause__)
    finally:
        await engine.dispose()
