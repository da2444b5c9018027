"""SqlAccountStore.consents, which /datasaya shows: on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.ports import ConsentGiven, DatabaseUnavailable
from flows.types import SessionKey
from storage.accounts import SqlAccountStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WIB = timezone(timedelta(hours=7))
KEY = SessionKey("telegram", "chat-5550001")
OTHER = SessionKey("telegram", "chat-5550002")
SAME_ID_ELSEWHERE = SessionKey("whatsapp", "chat-5550001")


@pytest.fixture
def store(engine: AsyncEngine) -> SqlAccountStore:
    return SqlAccountStore(engine, b"test-pseudonym-key")


async def test_standing_consents_oldest_first_per_chat(store: SqlAccountStore) -> None:
    assert await store.consents(KEY) == []
    await store.record_consent(KEY, "2026-11-v1", "id", datetime(2026, 3, 1, 14, 0, tzinfo=WIB))
    await store.record_consent(KEY, "2026-01", "en", T0 - timedelta(days=1))
    await store.record_consent(OTHER, "2026-01", "id", T0)
    found = await store.consents(KEY)
    assert found == [ConsentGiven("2026-01", "en", T0 - timedelta(days=1)),
                     ConsentGiven("2026-11-v1", "id", T0 - timedelta(hours=1))]
    assert all(c.accepted_at.utcoffset() == timedelta(0) for c in found)
    assert await store.consents(SAME_ID_ELSEWHERE) == []


async def test_withdrawn_and_erased_consents_are_not_standing(store: SqlAccountStore) -> None:
    await store.record_consent(KEY, "2026-01", "id", T0)
    await store.withdraw_consent(KEY, T0 + timedelta(days=1))
    assert await store.consents(KEY) == []
    await store.record_consent(KEY, "2026-11-v1", "id", T0 + timedelta(days=2))
    assert [c.version for c in await store.consents(KEY)] == ["2026-11-v1"]
    await store.record_consent(OTHER, "2026-11-v1", "id", T0)
    await store.erase(KEY, T0 + timedelta(days=3))
    assert await store.consents(KEY) == []
    assert len(await store.consents(OTHER)) == 1


async def test_an_unreachable_database_says_so(unreachable_engine: AsyncEngine) -> None:
    store = SqlAccountStore(unreachable_engine, b"test-pseudonym-key")
    with pytest.raises(DatabaseUnavailable) as raised:
        await store.consents(KEY)
    assert "chat-5550001" not in str(raised.value)
