"""SqlAlertStore: subscriptions, the directory of subscribed chats and the planner's cursors,
on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from alerts.ports import ChatState, Recipient
from flows.ports import DatabaseUnavailable
from flows.types import SessionKey
from storage.accounts import SqlAccountStore
from storage.alerts import CHUNK, SqlAlertStore
from storage.models import AlertSubscription

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
KEY = SessionKey("telegram", "chat-7770001")
OTHER = SessionKey("whatsapp", "chat-7770002")
THIRD = SessionKey("telegram", "chat-7770003")
KPJ_A, KPJ_B, KPJ_C = "12345678901", "23456789012", "34567890123"
VERSION = "alerts-2026-12-v1"


@pytest.fixture
def store(engine: AsyncEngine) -> SqlAlertStore:
    return SqlAlertStore(engine)


@pytest.fixture
def accounts(engine: AsyncEngine) -> SqlAccountStore:
    return SqlAccountStore(engine, b"test-key")


async def test_subscribe_is_an_upsert_recording_the_version(
        store: SqlAlertStore, engine: AsyncEngine) -> None:
    assert await store.kinds(KEY) == frozenset()
    await store.subscribe(KEY, ["posted", "missing"], "old-version", T0)
    await store.subscribe(KEY, ["missing", "development"], VERSION, T0 + timedelta(hours=1))
    assert await store.kinds(KEY) == {"posted", "missing", "development"}
    async with engine.connect() as conn:
        query = sa.select(col(AlertSubscription.kind), col(AlertSubscription.version))
        rows = (await conn.execute(query.order_by(col(AlertSubscription.kind)))).all()
    assert [tuple(r) for r in rows] == [("development", VERSION), ("missing", VERSION),
                                        ("posted", "old-version")]


async def test_unsubscribe_some_or_every_kind(store: SqlAlertStore) -> None:
    await store.subscribe(KEY, ["posted", "missing", "development"], VERSION, T0)
    await store.subscribe(OTHER, ["posted"], VERSION, T0)
    assert await store.unsubscribe(KEY, ["posted"]) == 1
    assert await store.unsubscribe(KEY, ["posted"]) == 0
    assert await store.unsubscribe(KEY, []) == 0
    assert await store.kinds(KEY) == {"missing", "development"}
    assert await store.unsubscribe(KEY) == 2
    assert await store.kinds(KEY) == frozenset()
    assert await store.kinds(OTHER) == {"posted"}


async def test_subscribed_joins_links_per_kind(store: SqlAlertStore,
                                               accounts: SqlAccountStore) -> None:
    await accounts.link(KEY, KPJ_A, T0)
    await accounts.link(KEY, KPJ_B, T0)
    await accounts.link(OTHER, KPJ_A, T0)
    await accounts.link(THIRD, KPJ_C, T0)  # linked, not subscribed
    await store.subscribe(KEY, ["posted", "missing"], VERSION, T0)
    await store.subscribe(OTHER, ["posted"], VERSION, T0)
    posted = await store.subscribed("posted", [KPJ_A, KPJ_B, KPJ_C, "99999999999"])
    assert sorted(posted) == [Recipient("telegram", KEY.chat_id, KPJ_A),
                              Recipient("telegram", KEY.chat_id, KPJ_B),
                              Recipient("whatsapp", OTHER.chat_id, KPJ_A)]
    assert await store.subscribed("missing", [KPJ_A]) == [
        Recipient("telegram", KEY.chat_id, KPJ_A)]
    assert await store.subscribed("development", [KPJ_A, KPJ_B]) == []
    assert await store.subscribed("posted", []) == []


async def test_subscribed_reads_more_than_one_chunk(store: SqlAlertStore,
                                                    accounts: SqlAccountStore) -> None:
    await accounts.link(KEY, KPJ_A, T0)
    await accounts.link(OTHER, KPJ_B, T0)
    await store.subscribe(KEY, ["posted"], VERSION, T0)
    await store.subscribe(OTHER, ["posted"], VERSION, T0)
    filler = [f"{n:011d}" for n in range(CHUNK + 10)]
    kpjs = [KPJ_A, *filler, KPJ_B]  # one in the first chunk, one in the second
    assert sorted(await store.subscribed("posted", kpjs)) == [
        Recipient("telegram", KEY.chat_id, KPJ_A), Recipient("whatsapp", OTHER.chat_id, KPJ_B)]


async def test_every_subscribed_pages_by_keyset(store: SqlAlertStore,
                                                accounts: SqlAccountStore) -> None:
    for key, kpj in ((KEY, KPJ_A), (KEY, KPJ_B), (OTHER, KPJ_A), (THIRD, KPJ_C)):
        await accounts.link(key, kpj, T0)
    for key in (KEY, OTHER, THIRD):
        await store.subscribe(key, ["development"], VERSION, T0)
    await store.subscribe(THIRD, ["posted"], VERSION, T0)
    pages: list[list[Recipient]] = []
    after: Recipient | None = None
    while True:
        page = await store.every_subscribed("development", after, 2)
        if not page:
            break
        pages.append(page)
        after = page[-1]
    every = [r for page in pages for r in page]
    assert [len(page) for page in pages] == [2, 2]
    assert every == sorted(every) == [Recipient("telegram", KEY.chat_id, KPJ_A),
                                      Recipient("telegram", KEY.chat_id, KPJ_B),
                                      Recipient("telegram", THIRD.chat_id, KPJ_C),
                                      Recipient("whatsapp", OTHER.chat_id, KPJ_A)]
    assert await store.every_subscribed("missing", None, 10) == []


async def test_states_in_a_batch(store: SqlAlertStore, accounts: SqlAccountStore) -> None:
    await accounts.link(KEY, KPJ_A, T0)
    await accounts.link(KEY, KPJ_B, T0)
    await store.subscribe(KEY, ["posted", "missing"], VERSION, T0)
    await accounts.set_language(KEY, "en", T0)
    await store.subscribe(OTHER, ["posted"], VERSION, T0)  # subscribed, link gone
    await accounts.link(THIRD, KPJ_C, T0)  # linked, no subscription
    nobody = SessionKey("telegram", "chat-nobody")
    states = await store.states([KEY, OTHER, THIRD, nobody, KEY])
    assert states == {
        KEY: ChatState(frozenset({"posted", "missing"}), frozenset({KPJ_A, KPJ_B}), "en"),
        OTHER: ChatState(frozenset({"posted"}), frozenset(), "id"),
        THIRD: ChatState(frozenset(), frozenset({KPJ_C}), "id"),
    }
    assert await store.states([]) == {}
    many = [SessionKey("telegram", f"chat-{n}") for n in range(500)]
    assert await store.states([*many, KEY]) == {KEY: states[KEY]}


async def test_cursor_upsert(store: SqlAlertStore) -> None:
    assert await store.cursor("posted") is None
    await store.set_cursor("posted", "41", T0)
    await store.set_cursor("posted", "42", T0 + timedelta(minutes=1))
    await store.set_cursor("missing", "2026-10", T0)
    assert await store.cursor("posted") == "42"
    assert await store.cursor("missing") == "2026-10"


async def test_failures_are_database_unavailable(unreachable_engine: AsyncEngine) -> None:
    store = SqlAlertStore(unreachable_engine)
    with pytest.raises(DatabaseUnavailable):
        await store.kinds(KEY)
    with pytest.raises(DatabaseUnavailable):
        await store.subscribe(KEY, ["posted"], VERSION, T0)
    with pytest.raises(DatabaseUnavailable):
        await store.subscribed("posted", [KPJ_A])
    with pytest.raises(DatabaseUnavailable):
        await store.set_cursor("posted", "1", T0)


async def test_naive_time_is_refused(store: SqlAlertStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.subscribe(KEY, ["posted"], VERSION, datetime(2026, 12, 1, 8, 0))
