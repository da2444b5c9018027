"""One contract for the statement issue stores: SQL on SQLite and on the real PostgreSQL,
and the in-process one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.ports import DatabaseUnavailable, StatementIssueStore, StatementRecord
from flows.types import SessionKey
from storage.accounts import pseudonym
from storage.statements import MemoryStatementIssueStore, SqlStatementIssueStore

SECRET = b"statement-test-secret"
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
WIB = timezone(timedelta(hours=7))
KEY = SessionKey("telegram", "chat-7770001")
OTHER = SessionKey("telegram", "chat-7770002")
SAME_ID_ELSEWHERE = SessionKey("whatsapp", "chat-7770001")


def issued(code: str, at: datetime = T0, total: int = 12_345_678) -> StatementRecord:
    return StatementRecord(code=code, initials="S.R.", kpj_masked="*******8901",
                           period_from="2025-11", period_to="2026-10", total=total,
                           issued_at=at)


@pytest.fixture
def store(engine: AsyncEngine) -> StatementIssueStore:
    return SqlStatementIssueStore(engine, SECRET)


async def check_a_recorded_statement_is_found_by_its_code_as_issued(
        store: StatementIssueStore) -> None:
    record = issued("ABCD2345EF", T0.astimezone(WIB))
    await store.record(KEY, record)
    found = await store.lookup("ABCD2345EF")
    assert found == record
    assert found is not None and found.issued_at.tzinfo is not None
    assert await store.lookup("ABCD2345EG") is None
    assert await store.lookup("abcd2345ef") is None  # codes are exact


async def check_the_same_code_twice_is_kept_once(store: StatementIssueStore) -> None:
    assert await store.record(KEY, issued("CODE222222"))
    assert await store.record(KEY, issued("CODE222222"))  # the same statement again: fine
    assert not await store.record(OTHER, issued("CODE222222", total=1))  # another: refused
    assert await store.for_subject(KEY) == [issued("CODE222222")]
    assert await store.for_subject(OTHER) == []
    assert await store.lookup("CODE222222") == issued("CODE222222")


async def check_each_chat_sees_only_its_own_statements_oldest_first(
        store: StatementIssueStore) -> None:
    await store.record(KEY, issued("NEWER33333", T0 + timedelta(minutes=5)))
    await store.record(KEY, issued("OLDER33333", T0))
    await store.record(OTHER, issued("OTHER33333"))
    await store.record(SAME_ID_ELSEWHERE, issued("ELSEW33333"))
    assert [s.code for s in await store.for_subject(KEY)] == ["OLDER33333", "NEWER33333"]
    assert [s.code for s in await store.for_subject(OTHER)] == ["OTHER33333"]
    assert [s.code for s in await store.for_subject(SAME_ID_ELSEWHERE)] == ["ELSEW33333"]
    assert await store.for_subject(SessionKey("telegram", "nobody")) == []


async def check_erase_forgets_the_chats_statements_and_their_codes(
        store: StatementIssueStore) -> None:
    await store.record(KEY, issued("ERASE44444"))
    await store.record(KEY, issued("ERASE55555", T0 + timedelta(hours=1)))
    await store.record(OTHER, issued("KEEP444444"))
    assert await store.erase(KEY) == 2
    assert await store.for_subject(KEY) == []
    assert await store.lookup("ERASE44444") is None
    assert await store.lookup("KEEP444444") == issued("KEEP444444")
    assert await store.erase(KEY) == 0


CONTRACT: tuple[Callable[[StatementIssueStore], Awaitable[None]], ...] = (
    check_a_recorded_statement_is_found_by_its_code_as_issued,
    check_the_same_code_twice_is_kept_once,
    check_each_chat_sees_only_its_own_statements_oldest_first,
    check_erase_forgets_the_chats_statements_and_their_codes,
)


@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__)
async def test_the_sql_store_keeps_the_contract(
        store: StatementIssueStore, check: Callable[[StatementIssueStore], Awaitable[None]]
) -> None:
    await check(store)


@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__)
async def test_the_memory_store_keeps_the_contract(
        check: Callable[[StatementIssueStore], Awaitable[None]]) -> None:
    await check(MemoryStatementIssueStore())


async def test_the_table_holds_a_pseudonym_not_the_chat_id(engine: AsyncEngine) -> None:
    store = SqlStatementIssueStore(engine, SECRET)
    await store.record(KEY, issued("PSEUD66666"))
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT * FROM statement_issues"))).all()
    assert len(rows) == 1
    assert rows[0].subject == pseudonym(KEY, SECRET)
    assert KEY.chat_id not in " ".join(str(value) for value in rows[0])


async def test_a_naive_issue_time_is_refused_before_any_query(engine: AsyncEngine) -> None:
    store = SqlStatementIssueStore(engine, SECRET)
    with pytest.raises(ValueError, match="naive"):
        await store.record(KEY, issued("NAIVE77777", datetime(2026, 11, 20, 9, 30)))


def test_an_empty_pseudonym_key_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError):
        SqlStatementIssueStore(engine, b"")


async def test_an_unreachable_database_is_unavailable_without_personal_data(
        unreachable_engine: AsyncEngine) -> None:
    store = SqlStatementIssueStore(unreachable_engine, SECRET)
    for call in (store.record(KEY, issued("DOWN888888")), store.lookup("DOWN888888"),
                 store.for_subject(KEY), store.erase(KEY)):
        with pytest.raises(DatabaseUnavailable) as caught:
            await call
        assert KEY.chat_id not in str(caught.value)
