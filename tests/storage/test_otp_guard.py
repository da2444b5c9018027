"""The durable OTP guard: one contract on SQLite and PostgreSQL, and the OTP rules on a real
Redis whose database is flushed between attempts (a Redis restart must not reset a lock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.otp_codes import OtpBook, Refusal, Verdict
from flows.ports import OtpGuard
from storage.otp_guard import SqlOtpGuardStore
from storage.sessions import redis_store_from_url

KPJ = "12345678901"
SECRET = b"test-otp-guard"
T0 = 1_800_000_000.0


@pytest.fixture
def guard(engine: AsyncEngine) -> SqlOtpGuardStore:
    return SqlOtpGuardStore(engine)


async def test_a_record_is_saved_and_loaded_by_compare_and_set(guard: SqlOtpGuardStore) -> None:
    assert await guard.load("m:abc") == (OtpGuard(), 0)
    first = OtpGuard(level=1, locked_until=T0 + 900, tries=2, tries_at=T0,
                     sends=(T0, T0 + 61.5), notified_at=T0, expires_at=T0 + 86400)
    assert await guard.save("m:abc", first, 0)
    assert not await guard.save("m:abc", OtpGuard(level=9), 0)  # a second insert loses
    assert await guard.load("m:abc") == (first, 1)
    second = OtpGuard(level=2)
    assert await guard.save("m:abc", second, 1)
    assert not await guard.save("m:abc", OtpGuard(level=7), 1)  # a stale version loses
    assert await guard.load("m:abc") == (second, 2)


async def test_erase_keeps_an_active_lock_and_purge_drops_expired(
        guard: SqlOtpGuardStore) -> None:
    await guard.save("m:locked", OtpGuard(locked_until=T0 + 60, expires_at=T0 + 99), 0)
    await guard.save("m:free", OtpGuard(sends=(T0,), expires_at=T0 + 99), 0)
    await guard.save("c:old", OtpGuard(expires_at=T0 - 1), 0)
    assert await guard.erase(["m:locked", "m:free", "m:absent"], T0) == 1
    assert (await guard.load("m:free"))[1] == 0
    assert (await guard.load("m:locked"))[0].locked_until == T0 + 60
    assert await guard.purge(T0) == 1
    assert (await guard.load("c:old"))[1] == 0
    assert await guard.erase([], T0) == 0


async def test_concurrent_guesses_on_sql_never_exceed_five(guard: SqlOtpGuardStore) -> None:
    from storage.sessions import MemorySessionStore

    book = OtpBook(MemorySessionStore(), SECRET, guard)
    issued = await book.issue(KPJ, "chat", T0)
    wrong = "000000" if issued.code != "000000" else "111111"
    results = await asyncio.gather(*(book.check(KPJ, "chat", wrong, T0 + 1) for _ in range(12)))
    assert sum(r.verdict is Verdict.WRONG for r in results) == 4
    assert sum(r.verdict is Verdict.LOCKED for r in results) == 8
    assert (await book.check(KPJ, "chat", issued.code, T0 + 2)).verdict is Verdict.LOCKED


@pytest.fixture
async def flushed_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_a_redis_flush_resets_no_lock_and_no_counter(
        guard: SqlOtpGuardStore, redis_url: str, flushed_redis: redis.asyncio.Redis) -> None:
    store = redis_store_from_url(redis_url)
    try:
        book = OtpBook(store, SECRET, guard)
        issued = await book.issue(KPJ, "chat-a", T0)
        wrong = "000000" if issued.code != "000000" else "111111"
        for n in range(3):
            assert (await book.check(KPJ, "chat-a", wrong, T0 + 1 + n)).verdict is Verdict.WRONG
        await flushed_redis.flushdb()  # Redis restarted empty: the code is gone, not the count
        assert (await book.check(KPJ, "chat-a", wrong, T0 + 10)).verdict is Verdict.EXPIRED
        again = await book.issue(KPJ, "chat-a", T0 + 70)
        wrong = "000000" if again.code != "000000" else "111111"
        assert (await book.check(KPJ, "chat-a", wrong, T0 + 71)).tries_left == 1
        locked = await book.check(KPJ, "chat-a", wrong, T0 + 72)
        assert locked.verdict is Verdict.LOCKED and locked.wait == 900 and locked.notify
        await flushed_redis.flushdb()
        assert await book.locked_for("chat-b", T0 + 100, KPJ) == pytest.approx(872)
        refused = await book.issue(KPJ, "chat-b", T0 + 100)
        assert refused.refusal is Refusal.LOCKED
        # The second lock-out in a row lasts an hour, the third a day: after flushes too.
        for level, seconds in ((2, 3600.0), (3, 86400.0), (4, 3 * 86400.0)):
            now = T0 + 72 + 900 * level + sum((3600.0, 86400.0, 3 * 86400.0)[:level - 2])
            await flushed_redis.flushdb()
            code = (await book.issue(KPJ, "chat-b", now)).code
            wrong = "000000" if code != "000000" else "111111"
            for n in range(4):
                await book.check(KPJ, "chat-b", wrong, now + n)
            result = await book.check(KPJ, "chat-b", wrong, now + 5)
            assert (result.verdict, result.wait) == (Verdict.LOCKED, seconds), level
    finally:
        await store.aclose()
