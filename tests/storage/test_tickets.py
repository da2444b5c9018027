"""One contract for SqlTicketStore, run on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.ports import DatabaseUnavailable, TicketStatus, TicketStore, TranscriptLine
from flows.types import SessionKey
from storage.db import create_engine
from storage.models import SupportTicket
from storage.tickets import SqlTicketStore

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
WIB = timezone(timedelta(hours=7))
KEY = SessionKey("telegram", "chat-5550001")
OTHER = SessionKey("telegram", "chat-5550002")
SAME_ID_ELSEWHERE = SessionKey("whatsapp", "chat-5550001")


@pytest.fixture
def store(engine: AsyncEngine) -> SqlTicketStore:
    return SqlTicketStore(engine)


def test_the_store_satisfies_the_port() -> None:
    def accepts(_store: TicketStore) -> None: ...

    accepts(SqlTicketStore(create_engine("sqlite://")))


async def test_open_twice_returns_the_same_ticket(store: SqlTicketStore) -> None:
    first = await store.open(KEY, "id", "handoff", T0)
    again = await store.open(KEY, "en", "faq_unhelpful", T0 + timedelta(minutes=1))
    assert again == first
    assert first.key == KEY
    assert (first.status, first.locale, first.reason) == (TicketStatus.QUEUED, "id", "handoff")
    assert first.opened_at == T0
    assert first.opened_at.tzinfo is not None
    assert (first.topic_id, first.agent, first.rating, first.resolution) == (None, None, None, "")
    assert await store.active_for(KEY) == first
    assert await store.get(first.id) == first
    assert await store.get(first.id + 1000) is None
    assert await store.active_for(OTHER) is None
    other = await store.open(SAME_ID_ELSEWHERE, "id", "handoff", T0)
    assert other.id != first.id


async def test_concurrent_opens_create_one_ticket(
        store: SqlTicketStore, engine: AsyncEngine) -> None:
    tickets = await asyncio.gather(
        *(store.open(KEY, "id", "handoff", T0 + timedelta(seconds=i)) for i in range(10)))
    assert len({ticket.id for ticket in tickets}) == 1
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM ticket")) == 1


async def test_the_database_refuses_a_second_ticket_that_is_not_closed(
        store: SqlTicketStore, engine: AsyncEngine) -> None:
    await store.open(KEY, "id", "handoff", T0)
    row = {"channel": KEY.channel, "chat_id": KEY.chat_id, "locale": "id", "reason": "x",
           "opened_at": T0, "resolution": ""}
    with pytest.raises(sa.exc.IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(sa.insert(SupportTicket).values({**row, "status": "open"}))
    async with engine.begin() as conn:  # closed tickets of the chat may be many
        for _ in range(2):
            await conn.execute(sa.insert(SupportTicket).values({**row, "status": "closed"}))


async def test_a_closed_ticket_makes_room_for_a_new_one(store: SqlTicketStore) -> None:
    first = await store.open(KEY, "id", "handoff", T0)
    closed = await store.close(first.id, T0 + timedelta(minutes=10), "answered")
    assert await store.active_for(KEY) is None
    second = await store.open(KEY, "en", "menu", T0 + timedelta(hours=1))
    assert second.id != first.id
    assert second.status is TicketStatus.QUEUED
    assert await store.active_for(KEY) == second
    assert await store.get(first.id) == closed


async def test_claim_opens_the_ticket_and_the_first_claim_wins(store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    claimed = await store.claim(ticket.id, "Sari", T0 + timedelta(minutes=2))
    assert (claimed.status, claimed.agent) == (TicketStatus.OPEN, "Sari")
    again = await store.claim(ticket.id, "Budi", T0 + timedelta(minutes=3))
    assert again.agent == "Sari"
    assert await store.active_for(KEY) == claimed
    await store.close(ticket.id, T0 + timedelta(minutes=5), "")
    late = await store.claim(ticket.id, "Budi", T0 + timedelta(minutes=6))
    assert (late.status, late.agent) == (TicketStatus.CLOSED, "Sari")
    with pytest.raises(LookupError):
        await store.claim(ticket.id + 1000, "Budi", T0)


async def test_touch_records_activity_and_the_first_reply_once(store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    await store.touch(ticket.id, "member", T0 + timedelta(minutes=1))
    touched = await store.get(ticket.id)
    assert touched is not None
    assert touched.last_member_at == T0 + timedelta(minutes=1)
    assert (touched.first_reply_at, touched.last_agent_at) == (None, None)
    reply = (T0 + timedelta(minutes=4)).astimezone(WIB)
    await store.touch(ticket.id, "agent", reply)
    await store.touch(ticket.id, "agent", T0 + timedelta(minutes=9))
    touched = await store.get(ticket.id)
    assert touched is not None
    assert touched.first_reply_at == T0 + timedelta(minutes=4)
    assert touched.first_reply_at.tzinfo is not None
    assert touched.last_agent_at == T0 + timedelta(minutes=9)
    assert touched.last_member_at == T0 + timedelta(minutes=1)


async def test_touch_refuses_bad_input_and_leaves_closed_tickets_alone(
        store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    with pytest.raises(ValueError, match="who"):
        await store.touch(ticket.id, "note", T0)
    with pytest.raises(LookupError):
        await store.touch(ticket.id + 1000, "member", T0)
    closed = await store.close(ticket.id, T0 + timedelta(minutes=1), "")
    await store.touch(ticket.id, "agent", T0 + timedelta(minutes=2))
    assert await store.get(ticket.id) == closed


async def test_close_and_rate(store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    closed = await store.close(ticket.id, T0 + timedelta(minutes=30), "saldo dijelaskan")
    assert closed.status is TicketStatus.CLOSED
    assert closed.closed_at == T0 + timedelta(minutes=30)
    assert closed.resolution == "saldo dijelaskan"
    assert await store.close(ticket.id, T0 + timedelta(hours=1), "later") == closed
    await store.rate(ticket.id, 4)
    rated = await store.get(ticket.id)
    assert rated is not None
    assert rated.rating == 4
    with pytest.raises(LookupError):
        await store.close(ticket.id + 1000, T0, "")
    with pytest.raises(LookupError):
        await store.rate(ticket.id + 1000, 5)


@pytest.mark.parametrize("rating", [0, 6, -1, True])
async def test_ratings_outside_1_to_5_are_refused_before_any_query(
        rating: int, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/unmigrated.db")
    try:
        with pytest.raises(ValueError, match="rating"):
            await SqlTicketStore(engine).rate(1, rating)
    finally:
        await engine.dispose()


async def test_the_database_holds_the_rating_range(
        store: SqlTicketStore, engine: AsyncEngine) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    for rating in (0, 6):
        with pytest.raises(sa.exc.IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(sa.text("UPDATE ticket SET rating = :r WHERE id = :id"),
                                   {"r": rating, "id": ticket.id})
    fetched = await store.get(ticket.id)
    assert fetched is not None
    assert fetched.rating is None


async def test_transcript_keeps_order_and_returns_the_newest_lines(
        store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    other = await store.open(OTHER, "id", "handoff", T0)
    for i in range(12):
        who = ("member", "bot", "agent", "note")[i % 4]
        await store.add_line(ticket.id, who, f"line {i}", T0 + timedelta(seconds=i))
    await store.add_line(other.id, "member", "elsewhere", T0)
    lines = await store.last_lines(ticket.id)
    assert [line.text for line in lines] == [f"line {i}" for i in range(2, 12)]
    assert lines[0] == TranscriptLine("agent", "line 2", T0 + timedelta(seconds=2))
    assert [line.text for line in await store.last_lines(ticket.id, 3)] == [
        "line 9", "line 10", "line 11"]
    assert await store.last_lines(ticket.id, 0) == []
    assert await store.last_lines(other.id, 50) == [TranscriptLine("member", "elsewhere", T0)]
    assert await store.last_lines(ticket.id + 1000) == []


async def test_transcript_cuts_long_text_and_refuses_bad_lines(store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    await store.add_line(ticket.id, "member", "x" * 5000, T0.astimezone(WIB))
    [line] = await store.last_lines(ticket.id)
    assert line.text == "x" * 4096
    assert line.at == T0
    with pytest.raises(ValueError, match="who"):
        await store.add_line(ticket.id, "system", "hi", T0)
    with pytest.raises(LookupError):
        await store.add_line(ticket.id + 1000, "member", "hi", T0)


async def test_lone_surrogates_are_stored_replaced_not_raised(
        store: SqlTicketStore, caplog: pytest.LogCaptureFixture) -> None:
    ticket = await store.open(KEY, "id", "handoff \ud800", T0)
    assert ticket.reason == "handoff \ufffd"
    await store.add_line(ticket.id, "member", "halo\udfff dan \ud83d", T0)
    await store.add_line(ticket.id, "agent", "\ud800", T0 + timedelta(seconds=1))
    lines = await store.last_lines(ticket.id)
    assert [line.text for line in lines] == ["halo\ufffd dan \ufffd", "\ufffd"]
    closed = await store.close(ticket.id, T0, "done \udc80")
    assert closed.resolution == "done \ufffd"
    assert not [r for r in caplog.records if r.exc_info]


async def test_deleting_a_ticket_deletes_its_transcript(
        store: SqlTicketStore, engine: AsyncEngine) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    await store.add_line(ticket.id, "member", "hello", T0)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM ticket WHERE id = :id"), {"id": ticket.id})
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM ticket_line")) == 0


async def test_queue_positions_follow_opening_time(store: SqlTicketStore) -> None:
    third = await store.open(SessionKey("console", "c"), "id", "handoff", T0 + timedelta(2))
    first = await store.open(SessionKey("console", "a"), "id", "handoff", T0)
    second = await store.open(SessionKey("console", "b"), "id", "handoff", T0 + timedelta(1))
    positions = [await store.queue_position(t.id) for t in (first, second, third)]
    assert positions == [1, 2, 3]
    await store.claim(first.id, "Sari", T0 + timedelta(3))
    positions = [await store.queue_position(t.id) for t in (first, second, third)]
    assert positions == [0, 1, 2]
    await store.close(second.id, T0 + timedelta(4), "")
    assert await store.queue_position(second.id) == 0
    assert await store.queue_position(third.id) == 1
    assert await store.queue_position(third.id + 1000) == 0


async def test_queue_ties_are_broken_by_ticket_number(store: SqlTicketStore) -> None:
    a = await store.open(SessionKey("console", "a"), "id", "handoff", T0)
    b = await store.open(SessionKey("console", "b"), "id", "handoff", T0.astimezone(WIB))
    assert [await store.queue_position(a.id), await store.queue_position(b.id)] == [1, 2]


async def test_median_first_reply_over_replied_tickets_since(store: SqlTicketStore) -> None:
    assert await store.median_first_reply(T0) is None
    for chat, opened, reply in (("old", -1440, 5), ("a", 0, 1), ("b", 10, 3), ("c", 20, 10),
                                ("unreplied", 30, None)):
        ticket = await store.open(SessionKey("console", chat), "id", "handoff",
                                  T0 + timedelta(minutes=opened))
        if reply is not None:
            await store.touch(ticket.id, "agent", T0 + timedelta(minutes=opened + reply))
    assert await store.median_first_reply(T0) == 180.0
    assert await store.median_first_reply(T0 + timedelta(minutes=5)) == 390.0
    assert await store.median_first_reply(T0 + timedelta(minutes=25)) is None


async def test_waiting_lists_tickets_not_closed_oldest_first(store: SqlTicketStore) -> None:
    late = await store.open(SessionKey("console", "late"), "id", "handoff", T0 + timedelta(9))
    early = await store.open(SessionKey("console", "early"), "id", "handoff", T0)
    done = await store.open(SessionKey("console", "done"), "id", "handoff", T0 - timedelta(1))
    middle = await store.open(SessionKey("console", "mid"), "id", "handoff", T0 + timedelta(1))
    middle = await store.claim(middle.id, "Sari", T0 + timedelta(2))
    await store.close(done.id, T0, "")
    assert await store.waiting() == [early, middle, late]


async def test_topics_find_their_ticket(store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    big_topic = 2**40 + 7  # thread ids may exceed 32 bits
    assert await store.by_topic(big_topic) is None
    await store.set_topic(ticket.id, big_topic)
    found = await store.by_topic(big_topic)
    assert found is not None
    assert (found.id, found.topic_id) == (ticket.id, big_topic)
    await store.set_topic(ticket.id, big_topic)  # repeating is harmless
    assert await store.by_topic(big_topic + 1) is None
    with pytest.raises(LookupError):
        await store.set_topic(ticket.id + 1000, 5)


async def test_purge_deletes_only_old_transcript_lines(store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "handoff", T0)
    for days in (0, 50, 89, 91, 120):
        await store.add_line(ticket.id, "member", f"{days} days ago", T0 - timedelta(days=days))
    assert await store.purge_transcripts(T0 - timedelta(days=90)) == 2
    assert [line.text for line in await store.last_lines(ticket.id)] == [
        "0 days ago", "50 days ago", "89 days ago"]
    assert await store.purge_transcripts(T0 - timedelta(days=90)) == 0
    assert await store.get(ticket.id) is not None


async def test_stats_count_tickets_and_average_ratings(store: SqlTicketStore) -> None:
    assert await store.stats() == {"opened": 0, "claimed": 0, "closed": 0, "waiting": 0,
                                   "open": 0, "rating_avg": 0.0, "rated": 0}
    tickets = [await store.open(SessionKey("console", str(i)), "id", "handoff",
                                T0 + timedelta(minutes=i)) for i in range(5)]
    for ticket in tickets[:3]:
        await store.claim(ticket.id, "Sari", T0 + timedelta(hours=1))
    for ticket, rating in zip(tickets[:2], (4, 5), strict=True):
        await store.close(ticket.id, T0 + timedelta(hours=2), "")
        await store.rate(ticket.id, rating)
    await store.close(tickets[4].id, T0 + timedelta(hours=2), "no agent")
    stats = await store.stats()
    assert stats == {"opened": 5, "claimed": 3, "closed": 3, "waiting": 1, "open": 1,
                     "rating_avg": 4.5, "rated": 2}
    assert isinstance(stats["rating_avg"], float)


async def test_naive_datetimes_are_refused_before_any_query(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/unmigrated.db")
    store = SqlTicketStore(engine)
    naive = datetime(2026, 3, 2, 8, 0)
    try:
        for call in (store.open(KEY, "id", "handoff", naive), store.claim(1, "Sari", naive),
                     store.touch(1, "agent", naive), store.close(1, naive, ""),
                     store.add_line(1, "member", "hi", naive),
                     store.median_first_reply(naive), store.purge_transcripts(naive)):
            with pytest.raises(ValueError, match="naive"):
                await call
    finally:
        await engine.dispose()


CALLS: dict[str, Callable[[SqlTicketStore], Awaitable[object]]] = {
    "open": lambda s: s.open(KEY, "id", "handoff", T0),
    "active_for": lambda s: s.active_for(KEY),
    "claim": lambda s: s.claim(1, "Sari", T0),
    "touch": lambda s: s.touch(1, "member", T0),
    "add_line": lambda s: s.add_line(1, "member", "hi", T0),
    "queue_position": lambda s: s.queue_position(1),
    "waiting": lambda s: s.waiting(),
    "stats": lambda s: s.stats(),
    "erase": lambda s: s.erase(KEY, T0),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_unreachable_postgres_is_database_unavailable(
        call: Callable[[SqlTicketStore], Awaitable[object]],
        unreachable_engine: AsyncEngine) -> None:
    with pytest.raises(DatabaseUnavailable) as raised:
        await call(SqlTicketStore(unreachable_engine))
    assert isinstance(raised.value.__cause__, OSError)
    assert KEY.chat_id not in str(raised.value)


async def test_unmigrated_database_is_database_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            await SqlTicketStore(engine).open(KEY, "id", "handoff", T0)
        assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
        assert KEY.chat_id not in str(raised.value)
        assert KEY.chat_id not in str(raised.value.__cause__)
    finally:
        await engine.dispose()


async def _columns_of(store: SqlTicketStore, table: str) -> list[str]:
    async with store._engine.connect() as conn:  # noqa: SLF001 - look behind the port
        rows = (await conn.execute(sa.text(f"SELECT * FROM {table}"))).all()  # noqa: S608
    return [str(value) for row in rows for value in row]


async def test_erase_forgets_the_chat_and_keeps_the_statistics(store: SqlTicketStore) -> None:
    closed = await store.open(KEY, "id", "not_understood", T0)
    await store.set_topic(closed.id, 777)
    await store.claim(closed.id, "Rina", T0)
    await store.add_line(closed.id, "member", "tolong cek iuran saya", T0)
    await store.touch(closed.id, "agent", T0 + timedelta(minutes=2))
    await store.close(closed.id, T0 + timedelta(minutes=5), "sudah dijelaskan ke Siti")
    await store.rate(closed.id, 4)
    active = await store.open(KEY, "id", "handoff", T0 + timedelta(hours=1))
    await store.add_line(active.id, "member", "masih belum masuk", T0 + timedelta(hours=1))
    kept = await store.open(OTHER, "en", "handoff", T0)
    await store.add_line(kept.id, "member", "someone else's words", T0)
    before = await store.stats()

    erased = await store.erase(KEY, T0 + timedelta(hours=2))

    assert [t.id for t in erased] == [closed.id, active.id]
    assert erased[0].topic_id == 777, "as they were, so the desk can be told"
    assert await store.active_for(KEY) is None
    assert await store.last_lines(closed.id) == [] and await store.last_lines(active.id) == []
    assert [line.text for line in await store.last_lines(kept.id)] == ["someone else's words"]
    for ticket_id in (closed.id, active.id):
        ticket = await store.get(ticket_id)
        assert ticket is not None and ticket.status is TicketStatus.CLOSED
        assert (ticket.key.chat_id, ticket.topic_id, ticket.reason) == ("", None, "")
        assert "Siti" not in ticket.resolution
    first = await store.get(closed.id)
    assert first is not None and (first.rating, first.agent) == (4, "Rina")
    assert first.first_reply_at == T0 + timedelta(minutes=2)
    after = await store.stats()
    assert (after["opened"], after["claimed"], after["rated"]) == (
        before["opened"], before["claimed"], before["rated"])
    stored = await _columns_of(store, "ticket") + await _columns_of(store, "ticket_line")
    assert KEY.chat_id not in stored and OTHER.chat_id in stored
    assert not [v for v in stored if "cek iuran" in v or "belum masuk" in v or "Siti" in v]
    assert await store.by_topic(777) is None
    assert await store.erase(KEY, T0 + timedelta(hours=3)) == []


async def test_free_text_is_stored_redacted(store: SqlTicketStore) -> None:
    ticket = await store.open(KEY, "id", "NIK 3171014501900001", T0)
    await store.add_line(ticket.id, "member", "HP 081234567890, KPJ 12345678901", T0)
    await store.close(ticket.id, T0, "email siti@example.com")
    stored = "\n".join([*await _columns_of(store, "ticket"),
                        *await _columns_of(store, "ticket_line")])
    for raw in ("3171014501900001", "081234567890", "12345678901", "siti@example.com"):
        assert raw not in stored
    assert "0812****7890" in stored and "123*****901" in stored and "s***@example.com" in stored
