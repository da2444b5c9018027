"""A ``serve`` process killed with SIGKILL mid-pass: after a restart every contribution alert
is delivered exactly once (issue 16, "Done when").

``run_bot.py notify`` plans one "posted" alert (October 2026) for each of ``CHATS`` Telegram
chats onto the Redis stream. ``run_bot.py serve`` sends them against the fake Bot API, which
answers the first ``ANSWERED`` messages and then holds every request (``hold_after``): the
worker is mid-pass with sends in flight. Once the answered alerts are marked sent, the
process is killed with SIGKILL; the held requests, their connections gone, are dropped (the
platform never got them). A second ``serve`` process reclaims the dead worker's deliveries
after ``ALERTS_CLAIM_SECONDS`` and sends the rest. Every chat then has exactly one alert,
the stream is empty with nothing pending, and each chat's marks count one sent alert.

It takes 25 to 40 seconds: three processes start (5 to 10 s each, mostly imports), and the
restarted worker waits the session store's lock timeout (10 s) for each chat whose lock the
killed process held while its send was in flight (an alert is delivered under the chat's
conversation lock), with those chats filling every worker slot meanwhile.

The settings' Redis database gets the processes' keys (the default ``bpjs:`` prefix); they
are deleted before and after (run alone with ``TEST_REDIS_URL=redis://127.0.0.1:6379/14``).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import redis.asyncio

from alerts.queue_redis import GROUP, RedisAlertQueue
from app.compose import open_database
from flows.alerts import ALERTS_VERSION
from flows.memberships import JAKARTA
from flows.types import SessionKey
from storage.accounts import SqlAccountStore
from storage.alerts import SqlAlertStore
from tests.conftest import delete_prefixed
from tests.e2e.harness import TOKEN, WEBHOOK_SECRET
from tests.e2e.test_telegram_cli import ROOT, _env, _free_port
from tests.fakes.bot_api import FakeBotApi

CHATS = 300
ANSWERED = 130  # answered before the fake holds: the held batch of 100 is partly sent
FIRST_CHAT = 7_310_000
KPJS = ("12345678901", "23456789012", "34567890123")  # Siti, Budi, Agus: October 2026 posted
OCTOBER_PAID = date(2026, 11, 10)  # the demo's October 2026, paid on the 10th of November
SEPTEMBER_PAID = date(2026, 10, 10)
PREFIX = "bpjs:"  # the key prefix of the processes' Redis store
OTP_SECRET = "sigkill-test-secret-0123456789abcdef"
STREAM = f"{PREFIX}alerts:jobs:telegram"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _chat(index: int) -> SessionKey:
    return SessionKey("telegram", str(FIRST_CHAT + index))


def _fresh_days() -> int:
    """``ALERTS_FRESH_DAYS`` that keeps October 2026 (paid 10 November) and drops September
    (paid 10 October) and older: the demo's whole history would be announced otherwise."""
    today = datetime.now(JAKARTA).date()
    days = max(1, (today - OCTOBER_PAID).days + 1)
    assert days < (today - SEPTEMBER_PAID).days, "today is too close to the demo's months"
    return days


async def _subscribe_chats(database_url: str) -> None:
    """The demo database, migrated and seeded, with ``CHATS`` chats linked to a demo KPJ
    each and subscribed to "posted"."""
    database = await open_database(database_url)
    try:
        accounts = SqlAccountStore(database, OTP_SECRET.encode())
        alerts = SqlAlertStore(database)
        for index in range(CHATS):
            await accounts.link(_chat(index), KPJS[index % len(KPJS)], T0)
            await alerts.subscribe(_chat(index), ["posted"], ALERTS_VERSION, T0)
    finally:
        await database.dispose()


def _settings(tmp_path: Path, fake: FakeBotApi, redis_url: str) -> dict[str, str]:
    port = _free_port()
    return _env(tmp_path, REDIS_URL=redis_url, OTP_SECRET=OTP_SECRET,
                TELEGRAM_API_BASE=fake.api_base, TELEGRAM_BOT_TOKEN=TOKEN,
                TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET, TELEGRAM_MESSAGES_PER_SECOND="100000",
                WEB_HOST="127.0.0.1", WEB_PORT=str(port), ALERTS_PLAN_AT="off",
                ALERTS_QUIET_HOURS="off", ALERTS_TELEGRAM_RATE="0", ALERTS_CLAIM_SECONDS="1",
                ALERTS_FRESH_DAYS=str(_fresh_days()))


async def _notify(env: dict[str, str]) -> str:
    """``run_bot.py notify`` to its end; its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", "notify", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


@asynccontextmanager
async def _serving(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """``run_bot.py serve`` started (its workers begin at once); killed afterwards if it
    still runs. Its output goes to a file: a pipe nobody reads could fill and stall it."""
    log = Path(env["DATA_DIR"]).parent / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "run_bot.py", "serve", cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            async with asyncio.timeout(20):
                await process.wait()


async def _until(what: str, check: Callable[[], Awaitable[bool]], seconds: float = 20,
                 process: asyncio.subprocess.Process | None = None) -> None:
    """Poll ``check`` until it holds, or fail naming ``what`` (or the process that died)."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert process is None or process.returncode is None, f"serve exited: {what}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


def _alerts_by_chat(fake: FakeBotApi) -> Counter[str]:
    """Accepted ``sendMessage`` calls per chat."""
    return Counter(str(call.params["chat_id"]) for call in fake.calls("sendMessage")
                   if call.ok)


async def test_a_worker_killed_mid_pass_delivers_every_alert_once_after_a_restart(
        tmp_path: Path, fake: FakeBotApi, redis_url: str) -> None:
    await delete_prefixed(redis_url, PREFIX)
    client = redis.asyncio.from_url(redis_url, decode_responses=True)
    queue = RedisAlertQueue(client, secret=OTP_SECRET.encode(), prefix=PREFIX,
                            channel="telegram")
    chats = {str(FIRST_CHAT + index) for index in range(CHATS)}
    try:
        env = _settings(tmp_path, fake, redis_url)
        await _subscribe_chats(env["DATABASE_URL"])
        printed = await _notify(env)
        assert await client.xlen(STREAM) == CHATS, printed

        async def sent_marked(keys: set[str]) -> bool:
            counts = [await queue.sent_count(SessionKey("telegram", key)) for key in keys]
            return all(count == 1 for count in counts)

        fake.hold_after(ANSWERED)
        async with _serving(env) as first:
            async def holding() -> bool:
                return fake.held > 0

            await _until("the fake holds requests", holding, 60, first)
            answered = set(_alerts_by_chat(fake))
            await _until("the answered alerts are marked sent",
                         lambda: sent_marked(answered), 10, first)
            await asyncio.sleep(0.3)  # longer than the worker takes to finish a result
            in_flight = fake.held
            first.send_signal(signal.SIGKILL)
            async with asyncio.timeout(20):
                assert await first.wait() == -signal.SIGKILL

        async def dropped() -> bool:
            return fake.held == 0

        await _until("the killed process's held requests are dropped", dropped, 10)
        before = _alerts_by_chat(fake)
        assert len(before) == ANSWERED and set(before.values()) == {1}
        assert fake.dropped == in_flight > 0  # sends were in flight when it was killed
        assert await client.xlen(STREAM) == CHATS - ANSWERED
        pending = await client.xpending(STREAM, GROUP)
        assert pending["pending"] > 0  # the dead worker's deliveries, not finished

        fake.release()
        async with _serving(env) as second:
            async def everyone() -> bool:
                return (len(_alerts_by_chat(fake)) == CHATS and await client.xlen(STREAM) == 0
                        and (await client.xpending(STREAM, GROUP))["pending"] == 0)

            await _until("every chat has its alert", everyone, 60, second)
            second.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await second.wait() == 0

        alerts = _alerts_by_chat(fake)
        assert set(alerts) == chats
        assert [chat for chat, count in alerts.items() if count != 1] == []
        after = set(alerts) - set(before)
        assert len(after) == CHATS - ANSWERED  # sent only after the restart
        assert await client.xlen(STREAM) == 0
        assert (await client.xpending(STREAM, GROUP))["pending"] == 0
        assert await sent_marked(chats)
        text = fake.sent_to(FIRST_CHAT)[0]
        assert "Oktober 2026" in text
    finally:
        await client.aclose()
        await delete_prefixed(redis_url, PREFIX)
