"""A Redis restart is an event, not a fault: each test runs its own redis-server (no
persistence, like a Redis with neither AOF nor a replica) on a free port, kills it with SIGKILL
and starts it again on the same port.

Pooled connections gone stale with the restart cost a reconnection, not an update; the scripts
that are not idempotent recognise their own earlier run when redis-py retries them; the
language a member chose lives in SQL and comes back with the next update."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from app.compose import build_engine, build_ports, open_database
from app.metrics import Metrics
from app.otp_delivery import OutboxOtpSender
from app.web import create_web_app, redis_check
from flows.engine import Engine
from flows.ports import StoreUnavailable
from flows.types import Event, Session, SessionKey
from storage.sessions import RedisSessionStore, redis_store_from_url, warn_without_persistence
from tests.conftest import WebClient

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed")
SECRET = b"test-secret"
KEY = SessionKey("test", "7007")


def _free_port(first: int = 6390) -> int:
    for port in range(first, first + 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a test redis-server")


@dataclass
class OwnRedis:
    """A redis-server of this test alone, without persistence."""

    directory: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the test redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()  # SIGKILL: nothing saved, every connection cut
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def store(own_redis: OwnRedis) -> AsyncIterator[RedisSessionStore]:
    made = redis_store_from_url(own_redis.url)
    yield made
    await made.aclose()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    yield engine
    await engine.dispose()


def _engine(store: RedisSessionStore, database: AsyncEngine, tmp_path: Path) -> Engine:
    ports = build_ports(kv=store, database=database, secret=SECRET,
                        otp_sender=OutboxOtpSender(tmp_path / "outbox.jsonl"))
    return build_engine(store, ports, strict=True)


async def _count_keys(url: str) -> int:
    client = redis.asyncio.Redis.from_url(url)
    try:
        return int(await client.dbsize())
    finally:
        await client.aclose()


async def _update(store: RedisSessionStore, key: SessionKey, state: str) -> None:
    async with store.chat(key) as slot:
        slot.session = Session(state, "id")


async def test_every_stale_pooled_connection_reconnects_instead_of_failing(
        own_redis: OwnRedis, store: RedisSessionStore) -> None:
    keys = [SessionKey("test", str(n)) for n in range(12)]
    await asyncio.gather(*(_update(store, key, "menu") for key in keys))  # 12 pooled
    await store.put("note", "1", 60)
    own_redis.restart()
    # Every connection in the pool is stale now; each serves its next command after one retry.
    await asyncio.gather(*(_update(store, key, "after") for key in keys))
    assert await store.put_if_absent("claimed", "1", 60)
    assert await store.get("note") is None, "the restart lost what was not persisted"
    assert await store.incr("tries", 60) == 1
    await store.delete("claimed")
    async with store.chat(keys[0]) as slot:
        assert slot.session is not None and slot.session.state == "after"


async def test_a_redis_that_stays_down_still_fails_fast(
        own_redis: OwnRedis, store: RedisSessionStore) -> None:
    await _update(store, KEY, "menu")
    own_redis.kill()
    started = time.monotonic()
    with pytest.raises(Exception, match="Redis failed") as failed:
        await _update(store, KEY, "menu")
    assert type(failed.value).__name__ == "StoreUnavailable"
    assert time.monotonic() - started < 1.5, "one quick retry, no retry loop"


async def test_a_retried_script_recognises_its_own_earlier_run(
        store: RedisSessionStore) -> None:
    """What redis-py does when a reply is lost after the script ran: the same call again."""
    private = store  # the scripts and key names are the store's own: look behind the port
    lock, session, saved = private._keys(KEY)  # noqa: SLF001
    enter, save, claim = private._enter, private._save, private._claim  # noqa: SLF001
    for _ in range(2):  # a retried lock finds its own lock: locked, not "taken"
        assert isinstance(await enter([lock, session], ["token-a", 30000]), list)
    assert await enter([lock, session], ["token-b", 30000]) == 0
    for _ in range(2):  # a retried save finds its own save: saved, not "lock lost"
        assert await save([lock, session, saved], ["token-a", '{"state":"menu"}', 60000]) == 1
    assert await save([lock, session, saved], ["token-b", '{"state":"x"}', 60000]) == 0
    value, marker = "bpjs:kv:claim-me", "bpjs:claim:{bpjs:kv:claim-me}"
    for _ in range(2):  # a retried claim finds its own claim: stored, not "taken before"
        assert await claim([value, marker], ["1", 60000, "call-1"]) == 1
    assert await claim([value, marker], ["1", 60000, "call-2"]) == 0


async def test_an_update_after_a_restart_is_answered_not_apologised(
        own_redis: OwnRedis, store: RedisSessionStore, database: AsyncEngine,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = _engine(store, database, tmp_path)
    first = await engine.handle(KEY, Event.message("/start", language_code="id"))
    assert "BPJS" in first[0].text
    own_redis.restart()
    caplog.set_level(logging.WARNING)
    replies = await engine.handle(KEY, Event.message("/start", language_code="id"))
    assert not [r for r in caplog.records if "store fault" in r.getMessage()]
    text = "\n".join(r.text for r in replies)
    assert "BPJS" in text and "sibuk" not in text and "kesalahan" not in text


async def test_the_chosen_language_outlives_a_restart(
        own_redis: OwnRedis, store: RedisSessionStore, database: AsyncEngine,
        tmp_path: Path) -> None:
    engine = _engine(store, database, tmp_path)
    await engine.handle(KEY, Event.message("/start", language_code="id"))
    done = await engine.handle(KEY, Event.button("lang:en", language_code="id"))
    assert "English" in done[0].text
    own_redis.restart()
    assert await _count_keys(own_redis.url) == 0, "the session is gone with the restart"
    replies = await engine.handle(KEY, Event.message("/start", language_code="id"))
    text = "\n".join(r.text for r in replies)
    assert "Hello! I am the BPJS Ketenagakerjaan balance assistant." in text, text
    mydata = await engine.handle(KEY, Event.message("/datasaya", language_code="id"))
    assert "language of this conversation: English" in mydata[0].text
    accounts = engine._ports.accounts  # noqa: SLF001 - look behind the port
    assert await accounts.language(KEY) == "en"
    await engine.handle(KEY, Event.message("/hapusdata", language_code="id"))
    await engine.handle(KEY, Event.button("acct:erase", language_code="id"))
    assert await accounts.language(KEY) is None, "/hapusdata erased the choice"
    stranger = await engine.handle(SessionKey("test", "7008"),
                                   Event.message("/start", language_code="id"))
    assert "Hello!" not in stranger[0].text, "a chat that chose nothing keeps its client's"


# --- persistence: checked at start-up and in /healthz -------------------------------------


async def test_without_aof_or_replica_start_up_and_healthz_warn_and_stay_healthy(
        store: RedisSessionStore, web_client: WebClient,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="storage.sessions")
    persistence = await warn_without_persistence(store)
    assert persistence is not None and persistence.summary == "none"
    assert [r.levelno for r in caplog.records if "appendonly yes" in r.getMessage()] == [
        logging.WARNING]
    http = await web_client(create_web_app(metrics=Metrics(),
                                           checks={"redis": redis_check(store)}))
    response = await http.get("/healthz")
    assert response.status == 200, "a warning, not a refusal"
    body = await response.json()
    assert body["status"] == "ok" and body["redis"] == "ok"
    assert "appendonly yes" in body["warnings"]["redis"]


async def test_aof_or_a_replica_silences_the_warning(
        own_redis: OwnRedis, store: RedisSessionStore, tmp_path: Path) -> None:
    client = redis.asyncio.Redis.from_url(own_redis.url)
    try:
        await client.config_set("appendonly", "yes")
        assert (await store.persistence()).summary == "aof"
        await client.config_set("appendonly", "no")
    finally:
        await client.aclose()
    (tmp_path / "replica").mkdir()
    replica = OwnRedis(tmp_path / "replica",
                       args=("--replicaof", "127.0.0.1", str(own_redis.port)))
    replica.start()
    try:
        deadline = time.monotonic() + 10
        while (persistence := await store.persistence()).replicas == 0:
            assert time.monotonic() < deadline, "the replica never connected"
            await asyncio.sleep(0.05)
    finally:
        replica.kill()
    assert persistence.summary == "replica" and persistence.warning is None


async def test_a_redis_that_refuses_info_and_config_says_unknown(
        own_redis: OwnRedis, web_client: WebClient) -> None:
    admin = redis.asyncio.Redis.from_url(own_redis.url)
    try:  # like a managed Redis: the bot's user may not run INFO or CONFIG
        await admin.acl_setuser("bot", enabled=True, nopass=True, keys=["*"],
                                commands=["+@all", "-info", "-config"])
    finally:
        await admin.aclose()
    store = redis_store_from_url(f"redis://bot@127.0.0.1:{own_redis.port}/0")
    try:
        persistence = await store.persistence()
        assert (persistence.aof, persistence.replicas) == (None, None)
        assert persistence.summary == "unknown"
        assert persistence.warning is not None and "unknown" in persistence.warning
        http = await web_client(create_web_app(metrics=Metrics(),
                                               checks={"redis": redis_check(store)}))
        response = await http.get("/healthz")
        assert response.status == 200
        assert "unknown" in (await response.json())["warnings"]["redis"]
    finally:
        await store.aclose()


async def test_the_start_up_check_never_refuses_an_unreachable_redis(
        own_redis: OwnRedis, store: RedisSessionStore,
        caplog: pytest.LogCaptureFixture) -> None:
    own_redis.kill()
    caplog.set_level(logging.WARNING, logger="storage.sessions")
    assert await warn_without_persistence(store) is None
    assert any("unreachable" in r.getMessage() for r in caplog.records)


# --- the channels' inbox -------------------------------------------------------------------


async def test_an_inbox_put_fails_while_redis_is_down_and_works_after_the_restart(
        own_redis: OwnRedis, store: RedisSessionStore) -> None:
    inbox = store.inbox("telegram")
    chat = "7007"
    number, token = (await inbox.put(chat, '{"text": "before"}', 1))[:2]
    assert number == 1 and token is not None
    own_redis.kill()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="the inbox failed") as failed:
        await inbox.put(chat, '{"text": "during the outage"}', 2)
    assert "outage" not in str(failed.value) and chat not in str(failed.value)
    assert time.monotonic() - started < 1.5, "one quick retry, no retry loop"
    with pytest.raises(StoreUnavailable):
        await inbox.next(chat, token)
    own_redis.start()
    # A stale pooled connection and scripts the new server never saw: neither costs the put.
    number, again = (await inbox.put(chat, '{"text": "after"}', 3))[:2]
    assert number == 3 and again is not None, "the restart lost the old turn with its queue"
    assert await inbox.next(chat, token) is None, "the old token serves nothing"
    assert await inbox.next(chat, again) == (3, '{"text": "after"}')
    assert await inbox.next(chat, again, done=3) is None
    assert await inbox.pending(chat) == 0
