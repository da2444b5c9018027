"""The world of ``chaos_telegram.py``: its own redis-server, a PostgreSQL database of its own,
two ``run_bot.py serve`` processes, and a fake Bot API server that answers bursts of 429.

Everything here talks to the bot only through its command line, its environment and HTTP (the
webhook, ``/healthz``), so that the bench keeps working whatever the channel does inside.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _loadgen import reply_screen, stop  # noqa: E402

from tests.fakes.bot_api import FakeBotApi  # noqa: E402
from tests.fakes.bot_api_wire import too_many_requests  # noqa: E402

TOKEN = "123456:CHAOS-telegram-token"
WEBHOOK_SECRET = "chaos-webhook-secret_1"
OTP_SECRET = "chaos-otp-secret-" + "0" * 32
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
REPLY_METHODS = ("sendMessage", "editMessageText")


def free_port() -> int:
    """A TCP port nothing listens on now (the serve processes bind it themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Redis --------------------------------------------------------------------------------

@dataclass
class RedisServer:
    """A redis-server of the bench's own on ``port`` (never the system one), data in
    ``directory``; ``aof``: ``appendonly yes`` (fsync every second), else no persistence at
    all (no RDB snapshots either), so that a SIGKILL loses everything, as the issue's run did."""

    port: int
    directory: Path
    aof: bool = False
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / "redis.log"

    @property
    def url(self) -> str:
        """The URL the bot and the bench use."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start it and wait until it answers PING (and has loaded its AOF)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not on PATH")
        self.directory.mkdir(parents=True, exist_ok=True)
        arguments = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                     "--dir", str(self.directory), "--save", "",
                     "--appendonly", "yes" if self.aof else "no",
                     "--appendfsync", "everysec", "--logfile", str(self.log),
                     "--protected-mode", "no"]
        self.process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL,  # noqa: S603
                                        stderr=subprocess.DEVNULL)
        await self._wait_ready()

    async def _wait_ready(self, timeout: float = 20.0) -> None:
        import redis.asyncio

        deadline = time.monotonic() + timeout
        client = redis.asyncio.Redis(port=self.port)
        try:
            while True:
                try:
                    if await client.ping():
                        return
                except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError,
                        OSError):
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"redis-server on port {self.port} did not start")
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop it for good (SIGKILL too: nothing of the run is kept)."""
        self.kill()


# --- PostgreSQL ---------------------------------------------------------------------------

async def pg_admin(admin_url: str, statement: str) -> None:
    """Run one statement on the admin database (CREATE/DROP DATABASE)."""
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://",
                                                         "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def pg_database(admin_url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (``chaos_<hex>``) beside ``admin_url``'s, dropped on
    exit; yields its URL."""
    name = f"chaos_{uuid.uuid4().hex[:10]}"
    await pg_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        await pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def seed(database_url: str, links: dict[int, str]) -> None:
    """Migrate the database, seed the demo members, and link each chat to its KPJ as the
    bot's registration does (``SqlAccountStore.link``, keyed by the bot's ``OTP_SECRET``)."""
    from app.compose import open_database
    from channels.telegram.render import CHANNEL
    from flows.types import SessionKey
    from storage.accounts import SqlAccountStore

    database = await open_database(database_url, demo=True)
    try:
        accounts = SqlAccountStore(database, OTP_SECRET.encode())
        now = datetime.now(UTC)
        for chat, kpj in links.items():
            await accounts.link(SessionKey(CHANNEL, str(chat)), kpj, now)
    finally:
        await database.dispose()


async def sql_languages(database_url: str, chats: list[int]) -> dict[int, str | None]:
    """The language each chat's SQL preference holds (read through the account store)."""
    from channels.telegram.render import CHANNEL
    from flows.types import SessionKey
    from storage.accounts import SqlAccountStore
    from storage.db import create_engine

    database = create_engine(database_url)
    try:
        accounts = SqlAccountStore(database, OTP_SECRET.encode())
        getter = getattr(accounts, "language", None)
        if getter is None:
            return {}
        return {chat: await getter(SessionKey(CHANNEL, str(chat))) for chat in chats}
    finally:
        await database.dispose()


# --- the bot processes --------------------------------------------------------------------

@dataclass
class ServeProcess:
    """``run_bot.py serve`` on its own port."""

    name: str
    port: int
    process: asyncio.subprocess.Process
    stderr: Path

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook(self) -> str:
        """Its Telegram webhook."""
        return self.url + WEBHOOK_PATH


def serve_environment(*, api_base: str, redis_url: str, database_url: str, outbox: Path,
                      port: int, per_second: float) -> dict[str, str]:
    """The settings the two processes share (the documented environment only)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TELEGRAM_", "WHATSAPP_", "REDIS_", "DATABASE_"))}
    env.update({
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": api_base,
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "REDIS_URL": redis_url,
        "DATABASE_URL": database_url, "OTP_SECRET": OTP_SECRET, "OTP_OUTBOX": str(outbox),
        "SEED_DEMO_MEMBERS": "false", "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port),
        "LOG_LEVEL": "WARNING", "TELEGRAM_MESSAGES_PER_SECOND": f"{per_second:g}",
        "BUSINESS_DAYS": "mon-sun", "BUSINESS_HOURS": "00:00-23:59",
    })
    return env


async def start_serve(name: str, env: dict[str, str], logs: Path,
                      timeout: float = 120.0) -> ServeProcess:
    """Start ``run_bot.py serve`` and wait until ``/healthz`` answers."""
    port = int(env["WEB_PORT"])
    stderr = logs / f"{name}.stderr"
    with stderr.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "run_bot.py"), "serve", cwd=str(ROOT), env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=sink)
    served = ServeProcess(name, port, process, stderr)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                raise SystemExit(f"{name} exited during start-up:\n"
                                 + stderr.read_text(errors="replace")[-3000:])
            try:
                async with http.get(served.url + "/healthz") as response:
                    if response.status in (200, 503):
                        return served
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start within {timeout:g} s")
            await asyncio.sleep(0.1)


async def stop_serve(served: ServeProcess, timeout: float = 60.0) -> int | None:
    """SIGTERM (the app drains its background work), SIGKILL after ``timeout``."""
    await stop(served.process, timeout)
    return served.process.returncode


# --- the fake Bot API ---------------------------------------------------------------------

@dataclass
class Sent:
    """One accepted reply: to which chat, its text, when the fake accepted it."""

    chat: int
    text: str
    at: float
    method: str
    message_id: int
    buttons: dict[str, str]  # button data without its signature -> the signed callback data


class ChaosBotApi(FakeBotApi):
    """The tests' fake Bot API server (``tests/fakes/bot_api.py``) with flood control in
    bursts: while ``share`` is above zero, a ``sendMessage`` call now and then starts a burst
    of 429 (``retry_after`` 1 s), so that about ``share`` of all calls are refused. ``scope``
    "chat": the burst refuses this and the next 0 to 3 calls to that one chat (its own limit,
    as Telegram's 1 message a second per chat); "bot": this and the next 3 to 11 calls whatever
    their chat (the bot's limit). Every accepted reply is recorded (:class:`Sent`), with the inline
    buttons it carries."""

    BURSTS = {"chat": (1, 4), "bot": (4, 12)}  # calls refused in a row

    def __init__(self, rng: random.Random, scope: str = "chat") -> None:
        super().__init__(strict=False)
        self.rng = rng
        self.scope = scope
        self.share = 0.0
        self.sent: list[Sent] = []
        self.by_chat: dict[int, list[Sent]] = {}
        self.calls_429 = 0
        self.calls_total = 0
        self._burst = 0  # scope "bot": calls still to refuse
        self._bursts: dict[int, int] = {}  # scope "chat": chat -> calls still to refuse
        self.retry_after = 1
        for method in REPLY_METHODS:
            self._wrap(method)

    def _wrap(self, method: str) -> None:
        inner = self.methods.handlers[method]

        def handler(params: dict[str, Any]) -> Any:
            if method == "sendMessage":
                self.calls_total += 1
                if self._refuse(int(params["chat_id"])):
                    self.calls_429 += 1
                    raise too_many_requests(self.retry_after)
            at = time.monotonic()
            result = inner(params)
            message_id, buttons = reply_screen(method, params, result)
            sent = Sent(int(params["chat_id"]), str(params.get("text", "")), at, method,
                        message_id, buttons)
            self.sent.append(sent)
            self.by_chat.setdefault(sent.chat, []).append(sent)
            return result

        self.on(method, handler)

    def _refuse(self, chat: int) -> bool:
        if self.scope == "bot" and self._burst > 0:
            self._burst -= 1
            return True
        if self.scope == "chat" and self._bursts.get(chat, 0) > 0:
            self._bursts[chat] -= 1
            return True
        if self.share <= 0:
            return False
        low, high = self.BURSTS[self.scope]
        if self.rng.random() < self.share / ((1 - self.share) * (low + high) / 2):
            length = self.rng.randint(low, high) - 1
            if self.scope == "bot":
                self._burst = length
            else:
                self._bursts[chat] = length
            return True
        return False

    def button(self, chat: int, *data: str) -> tuple[int, str] | None:
        """What the member's screen shows: when the chat's newest message carries one of the
        buttons ``data`` (the first it carries), its id and the signed callback data. A
        button on an older message would only get "that menu has expired"."""
        sent = self.by_chat.get(chat)
        if not sent:
            return None
        newest = sent[-1]
        for wanted in data:
            if wanted in newest.buttons:
                return newest.message_id, newest.buttons[wanted]
        return None


async def scrape_metrics(http: aiohttp.ClientSession, served: ServeProcess) -> dict[str, float]:
    """The process's ``bot_*`` counters from ``/metrics`` (name with labels -> value)."""
    try:
        async with http.get(served.url + "/metrics") as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("bot_") and "_total" in line and " " in line:
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


async def post_update(http: aiohttp.ClientSession, url: str,
                      update: dict[str, Any]) -> int:
    """POST one update to a webhook as Telegram does; the HTTP status (0: no answer)."""
    try:
        async with http.post(url, json=update,
                             headers={SECRET_HEADER: WEBHOOK_SECRET}) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0
