"""Shared fixtures: real Redis and PostgreSQL servers, skipped locally when absent.

Under ``CI=true`` a test that needs a server fails instead of skipping, so CI can never pass
without having exercised the real backends.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from aiogram import Bot
    from aiohttp import web
    from aiohttp.test_utils import TestClient

    from tests.fakes.bot_api import FakeBotApi

    WebClient = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
else:
    WebClient = Callable[[Any], Awaitable[Any]]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), 1.0):
            return True
    except OSError:
        return False


def _require(url: str, what: str) -> None:
    if _reachable(url):
        return
    message = f"{what} is not reachable at {url}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: servers are required)")
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    """URL of a real Redis server (database 15, flushed by the tests that use it)."""
    _require(REDIS_URL, "Redis")
    return REDIS_URL


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database on the real server, dropped afterwards."""
    _require(POSTGRES_URL, "PostgreSQL")
    name = f"bpjs_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh database on each backend: a SQLite file, and a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db')}/bot.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on each backend, disposed after the test."""
    from storage.db import create_engine, migrate

    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def unreachable_engine() -> AsyncIterator[AsyncEngine]:
    """An engine whose PostgreSQL server refuses connections (nothing listens on port 1)."""
    from storage.db import create_engine

    engine = create_engine("postgresql://postgres@127.0.0.1:1/x")
    yield engine
    await engine.dispose()


@pytest.fixture
def unique_prefix() -> str:
    """A key prefix unique to one test, so tests sharing a Redis never collide."""
    return f"test:{uuid.uuid4().hex[:12]}:"


async def delete_prefixed(url: str, prefix: str) -> None:
    """Delete a test's keys (those under its ``unique_prefix``) from the Redis at ``url``."""
    import redis.asyncio

    client = redis.asyncio.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def web_client() -> AsyncIterator[WebClient]:
    """Serves an aiohttp app on loopback and returns its test client (closed afterwards)."""
    from aiohttp.test_utils import TestClient, TestServer

    made: list[TestClient[Any, Any]] = []

    async def make(app: web.Application) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
        await client.start_server()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def bot_api_options() -> dict[str, Any]:
    """Keyword arguments of the :func:`fake` server (a module overrides it, e.g. ``poll_cap``)."""
    return {}


@pytest.fixture
def bot_token() -> str:
    """The token of :func:`fake_bot` (the fake derives the bot's id from it)."""
    return "123456:TEST-telegram-token"


@pytest.fixture
async def fake(bot_api_options: dict[str, Any]) -> AsyncIterator[FakeBotApi]:
    """The fake Telegram Bot API server on a free loopback port: the one of every Telegram
    test (channels, agent desk, end to end, the fake's own tests)."""
    from tests.fakes.bot_api import FakeBotApi

    async with FakeBotApi(**bot_api_options) as server:
        yield server


@pytest.fixture
async def fake_bot(fake: FakeBotApi, bot_token: str) -> AsyncIterator[Bot]:
    """A real aiogram ``Bot`` talking to the :func:`fake` Bot API server."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.api_base))
    async with Bot(bot_token, session=session) as bot:
        yield bot
