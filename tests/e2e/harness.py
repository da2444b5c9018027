"""The Telegram channel wired like ``run_bot.py`` builds it (ports and engine by
``app.compose``), against the fake Bot API server.

A :class:`Harness` is one bot process: the real aiogram client (pointed at the fake with
``TelegramAPIServer.from_base``), the real engine on the embedded backends (or Redis), the
channel, and optionally its web app on a loopback port. A :class:`Member` chats with it the
way a Telegram user would: typing, pressing the buttons the bot actually sent, sharing a
contact. Updates reach the bot by ``feed`` (directly into the dispatcher), by the webhook, or
by ``getUpdates``, whichever the test chooses.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from app.compose import build_engine, build_ports, inbox_for, open_database, with_ports
from app.metrics import CountingOtpSender, Metrics
from app.otp_delivery import OutboxOtpSender
from app.web import create_web_app, database_check, kv_check
from channels.inbox import RETRY_DELAYS
from channels.telegram.channel import GroupHook, Serve, TelegramChannel
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from channels.telegram.web import TELEGRAM_PATH, add_telegram_routes
from flows.engine import Engine
from flows.i18n import Catalog
from flows.ports import OtpSender, SessionBackend
from storage.accounts import SqlAccountStore
from storage.sessions import MemorySessionStore
from tests.fakes.bot_api import FakeBotApi
from tests.flows.conftest import SECRET, ManualClock

TOKEN = "123456:TEST-telegram-token"
WEBHOOK_SECRET = "webhook-secret_42"
FAST = {"per_bot": 1000.0, "per_chat": 1000.0}  # flood control out of the way

QUICK_RETRIES = tuple(d / 20 for d in RETRY_DELAYS[:2])  # two tries more, then the apology


@dataclass
class Harness:
    """One bot process against the fake Bot API."""

    fake: FakeBotApi
    bot: Bot
    channel: TelegramChannel
    engine: Engine
    store: SessionBackend
    accounts: SqlAccountStore
    database: AsyncEngine
    metrics: Metrics
    outbox: Path
    clock: ManualClock
    server: TestServer | None = None

    async def feed(self, update: dict[str, Any]) -> None:
        """Hand an update straight to the dispatcher and wait for its replies."""
        await self.channel.dispatcher.feed_update(self.bot, self.channel.parse(update))

    async def serve(self) -> str:
        """Start the web app on loopback; returns the webhook URL."""
        checks = {"database": database_check(self.database), "redis": kv_check(self.store)}
        app = create_web_app(metrics=self.metrics, checks=checks)
        add_telegram_routes(app, self.channel, secret=WEBHOOK_SECRET)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url(TELEGRAM_PATH))

    async def use_webhook(self) -> str:
        """Serve the web app and register it with the fake as Telegram's webhook."""
        url = await self.serve()
        await self.channel.register_webhook(url, WEBHOOK_SECRET)
        return url

    async def post(self, update: dict[str, Any], *, url: str | None = None) -> int:
        """Post an update to the webhook as Telegram does; waits for it to be handled."""
        status = await self.fake.post_to_webhook(update, url=url)
        await self.channel.drain()
        return status

    def member(self, chat_id: int, language_code: str = "id", *,
               webhook: bool = False) -> Member:
        """A member chatting with this process, through the webhook or straight in."""
        return Member(self, chat_id, self.post if webhook else self.feed, language_code)

    def codes(self) -> list[str]:
        """OTP codes written to the outbox, oldest first."""
        if not self.outbox.exists():
            return []
        return [json.loads(line)["code"] for line in self.outbox.read_text().splitlines()]


@dataclass
class Member:
    """A Telegram user in a private chat with the bot."""

    harness: Harness
    chat_id: int
    send: Callable[[dict[str, Any]], Awaitable[Any]]
    language_code: str = "id"
    seen: int = 0  # how many of the chat's texts were already returned
    last_update: dict[str, Any] | None = None

    @property
    def fake(self) -> FakeBotApi:
        return self.harness.fake

    async def say(self, text: str) -> list[str]:
        """Type a message; returns the new texts the bot sent or edited."""
        update = self.fake.message_update(self.chat_id, text, language_code=self.language_code)
        return await self.deliver(update)

    async def share_contact(self, phone: str, *, own: bool = True) -> list[str]:
        """Share a contact card: the member's own, or someone else's."""
        owner = self.chat_id if own else self.chat_id + 1_000_000
        return await self.deliver(self.fake.contact_update(self.chat_id, phone,
                                                           contact_user_id=owner))

    async def press(self, data: str) -> list[str]:
        """Press the newest button the bot sent carrying ``data``."""
        message_id, signed = self.button(data)
        return await self.press_raw(signed, message_id)

    async def press_raw(self, callback_data: str, message_id: int) -> list[str]:
        """Send any callback data, as a forged or stale client would."""
        return await self.deliver(self.fake.callback_update(self.chat_id, callback_data,
                                                            message_id=message_id))

    async def deliver(self, update: dict[str, Any]) -> list[str]:
        """Send an update however this member sends them; returns the new texts."""
        self.last_update = update
        await self.send(update)
        return self.new_texts()

    @property
    def last_message_id(self) -> int:
        """The id of the member's newest message."""
        assert self.last_update is not None and "message" in self.last_update
        return int(self.last_update["message"]["message_id"])

    def new_texts(self) -> list[str]:
        """Texts the bot sent or edited since the last call."""
        texts = self.fake.sent_to(self.chat_id)
        fresh, self.seen = texts[self.seen:], len(texts)
        return fresh

    def button(self, data: str) -> tuple[int, str]:
        """``(message id, signed callback data)`` of the newest button carrying ``data``."""
        for record in reversed(self.fake.calls()):
            if not (record.ok and record.targets(self.chat_id)):
                continue
            markup = record.params.get("reply_markup")
            rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
            for row in rows:
                for key in row:
                    signed = str(key.get("callback_data", ""))
                    if signed.startswith(f"1{data}|"):
                        return _message_id(record.method, record.params, record.result), signed
        raise AssertionError(f"no button {data!r} was sent to chat {self.chat_id}")

    def buttons(self) -> list[str]:
        """The engine data of the inline buttons of the bot's newest message with buttons."""
        markup = self.fake.last_markup(self.chat_id) or {}
        return [str(key["callback_data"])[1:].rpartition("|")[0]
                for row in markup.get("inline_keyboard", []) for key in row]


def _message_id(method: str, params: dict[str, Any], result: Any) -> int:
    if method == "editMessageText":
        return int(params["message_id"])
    return int(result["message_id"])


@asynccontextmanager
async def harness(tmp_path: Path, *, fake: FakeBotApi, store: SessionBackend | None = None,
                  database_url: str | None = None, throttle: SendThrottle | None = None,
                  wrap: Callable[[Serve], Serve] | None = None,
                  on_group_update: GroupHook | None = None,
                  otp_sender: OtpSender | None = None,
                  otp_channels: tuple[str, ...] | None = None,
                  **limits: int) -> AsyncIterator[Harness]:
    """One bot process. Processes sharing ``store`` (a Redis URL) and ``database_url`` behave
    like ``serve`` processes behind a load balancer. ``wrap`` decorates ``Engine.serve``
    (to record events or inject faults); ``limits`` are the channel's ``concurrency`` and
    ``max_backlog``. ``otp_sender`` replaces the ``OTP_OUTBOX`` file (then :meth:`Harness.codes`
    stays empty), counted in the harness's metrics as ``serve`` counts it; ``otp_channels``
    is the order of the ways a code travels (``OTP_CHANNELS``, default ``build_ports``'s)."""
    database = await open_database(database_url or f"sqlite:///{tmp_path / 'bot.db'}")
    store = store if store is not None else MemorySessionStore()
    metrics, clock, outbox = Metrics(), ManualClock(), tmp_path / "outbox.jsonl"
    accounts = SqlAccountStore(database, SECRET)
    sender = otp_sender if otp_sender is not None else OutboxOtpSender(outbox)
    ports = build_ports(kv=store, database=database, accounts=accounts, secret=SECRET,
                        otp_sender=CountingOtpSender(sender, metrics), clock=clock)
    if otp_channels is not None:
        ports = with_ports(ports, otp_channels=otp_channels)
    catalog = Catalog(strict=True)
    engine = build_engine(store, ports, catalog=catalog, strict=True)
    bot = Bot(TOKEN, session=JsonAiohttpSession(api=TelegramAPIServer.from_base(fake.api_base)))
    channel = TelegramChannel(bot, serve=wrap(engine.serve) if wrap else engine.serve,
                              ports=ports,
                              throttle=throttle or SendThrottle(**FAST), metrics=metrics,
                              catalog=catalog, on_group_update=on_group_update,
                              inbox=inbox_for(store, "telegram"), retry_delays=QUICK_RETRIES,
                              **limits)
    world = Harness(fake, bot, channel, engine, store, accounts, database, metrics, outbox, clock)
    try:
        yield world
    finally:
        if world.server is not None:
            await world.server.close()
        await channel.drain()
        await channel.close()
        await database.dispose()


async def register(member: Member, who: dict[str, str]) -> None:
    """Link the member's chat to ``who`` (a demo member) the way a member does it."""
    await member.say("/daftar")
    await member.press("reg:agree")
    for answer in (who["nik"], who["kpj"], who["birth"]):
        await member.say(answer)
    await member.share_contact(who["phone"])
    await member.say(member.harness.codes()[-1])
