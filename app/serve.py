"""The long-running commands, ``telegram`` and ``serve``: the channels on one runtime
(:func:`app.compose.runtime`), the agent desk, the web app.

This is the only module of ``app`` that imports the channel libraries (aiogram through the
Telegram channel, pywa through the WhatsApp one, aiohttp's web app); :mod:`app.cli` imports it
only for these two commands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.utils.token import TokenValidationError

from app.compose import (
    Runtime,
    SupportDesk,
    alert_workers,
    background,
    daily_alert_plan,
    otp_sender_for,
    runtime,
    support_desk,
    warm_documents,
)
from app.metrics import Metrics, TicketGauges
from app.otp_delivery import ChannelSender
from app.outbox import OutboxRouter
from app.settings import Settings, TelegramSettings, WhatsAppSettings
from app.tuning import settle_heap
from app.web import (
    HealthCheck,
    add_verify_route,
    create_web_app,
    database_check,
    http_check,
    kv_check,
    redis_check,
    serve_app,
)
from balance.cache import CachedBalanceService
from balance.service import ReferenceBalanceService
from channels.telegram.agent_desk import AgentGroup, TelegramForumDesk
from channels.telegram.channel import TelegramChannel
from channels.telegram.outbox import TelegramOutbox
from channels.telegram.render import CHANNEL as TELEGRAM
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from channels.telegram.web import add_telegram_routes
from channels.whatsapp.channel import CHANNEL as WHATSAPP
from channels.whatsapp.channel import WhatsAppChannel
from channels.whatsapp.config import WhatsAppConfig, parse_languages
from channels.whatsapp.web import WHATSAPP_PATH, WhatsAppOutbox, add_whatsapp_routes
from flows.i18n import Catalog
from flows.ports import BalanceService, MemberOutbox, OtpDeliveryFailed
from storage.sessions import RedisSessionStore

__all__ = ["Served", "run_serve", "run_telegram", "serving", "telegram_channel"]


@dataclass(frozen=True)
class Served:
    """What a long-running command serves: the channels, the runtime and the support desk."""

    runtime: Runtime
    desk: SupportDesk
    telegram: TelegramChannel | None = None
    whatsapp: WhatsAppChannel | None = None


@asynccontextmanager
async def serving(settings: Settings, metrics: Metrics, *, telegram: bool,
                  whatsapp: bool) -> AsyncIterator[Served]:
    """The channels asked for on one engine, the agent desk when ``AGENT_CHAT_ID`` is set, and
    the background tasks (ticket timers, ticket metrics, the daily alert plan and the alert
    workers of each channel served), stopped on exit. Every setting is checked before
    anything is touched."""
    delivery = otp_sender_for(settings, [])  # refused, naming the settings, when none
    wa_config = whatsapp_config(settings) if whatsapp else None
    agent_chat = settings.agent_chat()
    if agent_chat is not None and not telegram:
        raise SystemExit("AGENT_CHAT_ID needs TELEGRAM_BOT_TOKEN: agents answer in a Telegram "
                         "group through the bot.")
    bot = telegram_bot(settings) if telegram else None
    catalog = Catalog()
    throttle = SendThrottle(per_bot=settings.telegram_messages_per_second)
    async with AsyncExitStack() as stack:
        if bot is not None:
            stack.push_async_callback(bot.session.close)
        forum = (TelegramForumDesk(bot, throttle, agent_chat, secret=settings.secret())
                 if bot is not None and agent_chat is not None else None)
        built = await stack.enter_async_context(
            runtime(settings, delivery, catalog=catalog, desk=forum, metrics=metrics))
        print(delivery.describe(), flush=True)
        routes: dict[str, MemberOutbox] = {}
        wa = None
        if wa_config is not None:
            wa = whatsapp_channel(wa_config, built, metrics)
            stack.push_async_callback(wa.close)
            routes[WHATSAPP] = WhatsAppOutbox(wa)
        if bot is not None:
            routes[TELEGRAM] = TelegramOutbox(bot, throttle, metrics=metrics,
                                              secret=built.ports.secret,
                                              sessions=built.store, kv=built.store,
                                              ttl_for=built.engine.ttl_for)
        desk = support_desk(settings, built, OutboxRouter(routes))
        channel = None
        if bot is not None:
            group = (AgentGroup(forum, tickets=built.tickets, service=desk.service,
                                kv=built.store) if forum is not None else None)
            channel = TelegramChannel(bot, serve=built.engine.serve,
                                      concurrency=settings.telegram_concurrency,
                                      max_backlog=settings.telegram_max_backlog,
                                      ports=built.ports, throttle=throttle, metrics=metrics,
                                      catalog=catalog, inbox=built.inbox(TELEGRAM),
                                      on_group_update=group.handle if group else None)
        gauges = TicketGauges(metrics, built.tickets, built.ports.clock)
        alert_routes = dict(routes)  # alerts to WhatsApp: their own template outside 24 h
        if wa is not None:
            alert_routes[WHATSAPP] = WhatsAppOutbox(
                wa, template=settings.whatsapp_alert_template or None)
        if bot is not None:  # alerts without the chat's lock and saved view (a block recorded)
            alert_routes[TELEGRAM] = TelegramOutbox(bot, throttle, metrics=metrics,
                                                    secret=built.ports.secret,
                                                    sessions=built.store, kv=built.store,
                                                    ttl_for=built.engine.ttl_for, locked=False)
        senders = alert_workers(settings, built, OutboxRouter(alert_routes, strict=True),
                                tuple(alert_routes), metrics)
        await stack.enter_async_context(background(
            desk.sweeper.run() if forum is not None else None, gauges.run(),
            warm_documents(built.ports), daily_alert_plan(settings, built, metrics),
            *(sender.run() for sender in senders)))
        yield Served(built, desk, channel, wa)


def whatsapp_channel(config: WhatsAppConfig, built: Runtime, metrics: Metrics) -> WhatsAppChannel:
    """The WhatsApp channel on the runtime's engine (its one construction site)."""
    return WhatsAppChannel.create(config, serve=built.engine.serve, sessions=built.store,
                                  ports=built.ports, metrics=metrics, catalog=built.catalog,
                                  inbox=built.inbox(WHATSAPP), ttl_for=built.engine.ttl_for)


def whatsapp_config(settings: WhatsAppSettings) -> WhatsAppConfig:
    """The channel's configuration; a bad setting stops start-up with its message."""
    try:
        return WhatsAppConfig(
            token=settings.whatsapp_token.get_secret_value(),
            phone_number_id=settings.whatsapp_phone_number_id,
            verify_token=settings.whatsapp_verify_token.get_secret_value(),
            app_secret=settings.whatsapp_app_secret.get_secret_value(),
            api_base=settings.whatsapp_api_base, rate=settings.whatsapp_rate,
            concurrency=settings.whatsapp_concurrency,
            max_backlog=settings.whatsapp_max_backlog,
            template_name=settings.whatsapp_template_name,
            template_languages=parse_languages(settings.whatsapp_template_languages))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def telegram_bot(settings: TelegramSettings) -> Bot:
    """The aiogram client on ``TELEGRAM_API_BASE`` (or Telegram's), posting JSON bodies."""
    token = settings.telegram_token()
    api = settings.telegram_api_base
    session = (JsonAiohttpSession(api=TelegramAPIServer.from_base(api)) if api
               else JsonAiohttpSession())
    try:
        return Bot(token, session=session)
    except TokenValidationError:
        raise SystemExit("TELEGRAM_BOT_TOKEN does not look like a bot token "
                         "(digits, a colon, then letters).") from None


@asynccontextmanager
async def telegram_channel(settings: Settings,
                           metrics: Metrics) -> AsyncIterator[tuple[TelegramChannel, Runtime]]:
    """The Telegram channel on the engine the settings name (codes by the configured senders),
    with the agent desk when ``AGENT_CHAT_ID`` is set."""
    async with serving(settings, metrics, telegram=True, whatsapp=False) as served:
        assert served.telegram is not None
        yield served.telegram, served.runtime


async def run_telegram(settings: Settings) -> None:
    """Long polling, or the webhook app when ``TELEGRAM_WEBHOOK_URL`` is set."""
    if settings.telegram_webhook_url:
        await run_serve(settings)
        return
    async with telegram_channel(settings, Metrics()) as (channel, _):
        await channel.register_commands()
        settle_heap()
        print("Telegram bot running (long polling); Ctrl-C stops it.", flush=True)
        await channel.run_polling()


async def run_serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """The web app: the Telegram and/or WhatsApp webhooks, ``/healthz``, ``/metrics``."""
    telegram = bool(settings.telegram_bot_token.get_secret_value())
    whatsapp = bool(settings.whatsapp_token.get_secret_value())
    if not (telegram or whatsapp):
        raise SystemExit("TELEGRAM_BOT_TOKEN must be set (ask @BotFather for one), or "
                         "WHATSAPP_TOKEN for WhatsApp: serve needs at least one channel.")
    secret = settings.webhook_secret() if telegram else ""
    metrics = Metrics()
    async with serving(settings, metrics, telegram=telegram, whatsapp=whatsapp) as served:
        channel = served.telegram
        if channel is not None and settings.telegram_webhook_url:
            await channel.register_webhook(settings.telegram_webhook_url, secret)
            await channel.register_commands()
        app = create_web_app(metrics=metrics, checks=health_checks(settings, served.runtime))
        routes = []
        if channel is not None:
            add_telegram_routes(app, channel, secret=secret,
                                path=settings.telegram_webhook_path)
            routes.append(f"Telegram webhook at {settings.telegram_webhook_path}")
        if served.whatsapp is not None:
            add_whatsapp_routes(app, served.whatsapp)
            routes.append(f"WhatsApp webhook at {WHATSAPP_PATH}")
        if served.runtime.ports.statements is not None:
            add_verify_route(app, served.runtime.ports.statements, served.runtime.catalog)
            routes.append("statement verification at /verify/<code>")
        host, port = host or settings.web_host, port or settings.web_port
        settle_heap()
        await serve_app(app, host, port, started=lambda: print(
            f"serving on http://{host}:{port} ({', '.join(routes)}, /healthz, /metrics)",
            flush=True))


def otp_check(sender: ChannelSender) -> HealthCheck:
    """A sender that cannot be reached is a warning, not a fault: codes fall through to the
    next way, and a load balancer must not take every process out for it."""
    async def check() -> str | None:
        try:
            await sender.check()
        except OtpDeliveryFailed as exc:
            return f"{sender.kind} sender unreachable ({exc.reason})"
        return None

    return check


def health_checks(settings: Settings, built: Runtime) -> dict[str, HealthCheck]:
    """What ``/healthz`` probes: the database, Redis when set (and its persistence: a warning),
    the balance service, and each OTP sender (the SMTP server, the SMS gateway, WhatsApp: a
    warning, as a code falls through to the next way)."""
    checks = {"database": database_check(built.database)}
    if isinstance(built.store, RedisSessionStore):
        checks["redis"] = redis_check(built.store)  # a warning without AOF or a replica
    elif settings.redis_url:
        checks["redis"] = kv_check(built.store)
    if settings.balance_service_url:
        checks["balance_service"] = http_check(
            settings.balance_service_url.rstrip("/") + "/healthz")
    else:
        reference: BalanceService = built.balance
        if isinstance(reference, CachedBalanceService):
            reference = reference.inner
        if isinstance(reference, ReferenceBalanceService):
            checks["balance_service"] = reference.ping
    for sender in built.otp.senders:  # each caches its answer: no load on the provider
        checks[f"otp_{sender.kind}"] = otp_check(sender)
    return checks
