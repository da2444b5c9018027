"""Composition root and command line: reads settings, builds stores, services, engine, channel.

    uv run run_bot.py                   chat in the terminal on the embedded defaults
    uv run run_bot.py console           the same
    uv run run_bot.py classify          one message per stdin line -> one JSON object per line
    uv run run_bot.py telegram          the Telegram bot: long polling, or the webhook when
                                        TELEGRAM_WEBHOOK_URL is set
    uv run run_bot.py serve             the web app: Telegram and/or WhatsApp webhooks, /healthz,
                                        /metrics
    uv run run_bot.py migrate           apply database migrations (DATABASE_URL or the default)
    uv run run_bot.py balance-service   the reference balance service over HTTP
    uv run run_bot.py import --members M.csv --contributions C.csv [--rates R.csv]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.utils.token import TokenValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import tuning
from app.clock import SystemClock
from app.logsetup import configure_logging
from app.metrics import CountingOtpSender, CountingTicketStore, Metrics, TicketGauges
from app.otp_delivery import ConsoleOtpSender, FanOutOtpSender, OutboxOtpSender
from app.settings import Settings
from app.tuning import settle_heap
from app.web import HealthCheck, create_web_app, database_check, http_check, kv_check, serve_app
from balance.cache import CachedBalanceService
from balance.client import HttpBalanceService
from balance.http_app import create_app, serve
from balance.importer import CsvImportError, import_csv
from balance.service import ReferenceBalanceService, seed_default_rates, seed_demo_members
from channels.console.channel import ConsoleChannel, read_stdin
from channels.console.desk import AgentConsole, ConsoleDesk, ConsoleOutbox
from channels.telegram.agent_desk import AgentGroup, TelegramForumDesk
from channels.telegram.channel import TelegramChannel
from channels.telegram.outbox import OutboxRouter, TelegramOutbox
from channels.telegram.render import CHANNEL as TELEGRAM
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from channels.telegram.web import add_telegram_routes
from channels.whatsapp.channel import CHANNEL as WHATSAPP
from channels.whatsapp.channel import WhatsAppChannel
from channels.whatsapp.config import WhatsAppConfig, parse_languages
from channels.whatsapp.web import WHATSAPP_PATH, WhatsAppOutbox, add_whatsapp_routes
from flows.engine import Engine
from flows.flow import Ports
from flows.i18n import Catalog
from flows.intents import classify
from flows.ports import (
    AgentDesk,
    BalanceService,
    MemberOutbox,
    OtpSender,
    SessionBackend,
    TicketStore,
)
from flows.types import SessionKey
from storage.accounts import SqlAccountStore
from storage.db import create_engine, migrate
from storage.sessions import MemorySessionStore, redis_store_from_url
from storage.tickets import SqlTicketStore
from support.desk import DeskService
from support.sweeper import Sweeper, SweepPolicy

log = logging.getLogger("run_bot")


@dataclass(frozen=True)
class Runtime:
    """The engine and the parts channels and health checks also need."""

    engine: Engine
    store: SessionBackend
    ports: Ports
    database: AsyncEngine
    balance: BalanceService
    tickets: TicketStore


@asynccontextmanager
async def build_engine(settings: Settings, otp_senders: Sequence[OtpSender],
                       catalog: Catalog) -> AsyncIterator[Engine]:
    """The engine on the backends the settings name; closes them on exit."""
    async with build_runtime(settings, _otp_sender(settings, otp_senders), catalog) as runtime:
        yield runtime.engine


@asynccontextmanager
async def build_runtime(settings: Settings, otp_sender: OtpSender, catalog: Catalog,
                        desk: AgentDesk | None = None, *,
                        metrics: Metrics | None = None) -> AsyncIterator[Runtime]:
    """The engine and its ports on the backends the settings name; closes them on exit."""
    async with AsyncExitStack() as stack:
        store = await _session_store(settings, stack)
        database = create_engine(settings.database)
        stack.push_async_callback(database.dispose)
        await migrate(database)
        if settings.should_seed_demo:
            await seed_demo_members(database)
        await seed_default_rates(database)
        secret = settings.secret()
        balance = await _balance_service(settings, database, store, stack, secret)
        tickets: TicketStore = SqlTicketStore(database)
        if metrics is not None:
            tickets = CountingTicketStore(tickets, metrics)
        ports = Ports(kv=store, accounts=SqlAccountStore(database, secret), balance=balance,
                      otp_sender=otp_sender, clock=SystemClock(), secret=secret,
                      tickets=tickets, desk=desk, hours=settings.hours())
        engine = Engine(sessions=store, ports=ports, catalog=catalog,
                        flow_timeout=settings.flow_timeout_seconds)
        yield Runtime(engine, store, ports, database, balance, tickets)


async def _balance_service(settings: Settings, database: AsyncEngine, store: SessionBackend,
                           stack: AsyncExitStack, secret: bytes) -> BalanceService:
    """The HTTP client when ``BALANCE_SERVICE_URL`` is set, else the in-process reference."""
    if not settings.balance_service_url:
        reference = ReferenceBalanceService(database)
        if not settings.balance_cache_seconds:
            return reference
        return CachedBalanceService(reference, ttl=settings.balance_cache_seconds)
    client = HttpBalanceService(settings.balance_service_url,
                                settings.balance_service_token.get_secret_value(), cache=store,
                                timeout=settings.balance_service_timeout,
                                cache_secret=secret)
    stack.push_async_callback(client.aclose)
    return client


async def _session_store(settings: Settings, stack: AsyncExitStack) -> SessionBackend:
    if not settings.redis_url:
        return MemorySessionStore(ttl=settings.session_ttl_seconds)
    store = redis_store_from_url(settings.redis_url, ttl=settings.session_ttl_seconds)
    stack.push_async_callback(store.aclose)
    return store


def _otp_sender(settings: Settings, senders: Sequence[OtpSender]) -> OtpSender:
    chosen = list(senders)
    if settings.otp_outbox:
        chosen.append(OutboxOtpSender(Path(settings.otp_outbox)))
    if not chosen:
        raise SystemExit("No OTP delivery is configured: set OTP_OUTBOX for this channel.")
    return chosen[0] if len(chosen) == 1 else FanOutOtpSender(chosen)


async def run_console(settings: Settings, write: Callable[[str], None] = print) -> None:
    """Chat in the terminal; ``@agent`` lines play the support agent."""
    catalog = Catalog()
    sender = _otp_sender(settings, [ConsoleOtpSender(catalog, write)])
    async with build_runtime(settings, sender, catalog, ConsoleDesk(write)) as runtime:
        desk = support_desk(settings, runtime, ConsoleOutbox(write))
        agent = AgentConsole(desk=desk.service, tickets=runtime.tickets,
                             key=SessionKey("console", "local"), write=write)
        write("BPJS Ketenagakerjaan balance assistant (console). Type /quit to leave. Lines "
              "starting with @agent play the support agent.\n")
        sweeping = asyncio.create_task(desk.sweeper.run())
        try:
            await ConsoleChannel(runtime.engine.handle, read=read_stdin, write=write,
                                 agent=agent.handle).run()
        finally:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping


@dataclass(frozen=True)
class SupportDesk:
    """The agent-side service and its timers, for one process."""

    service: DeskService
    sweeper: Sweeper


def support_desk(settings: Settings, runtime: Runtime, outbox: MemberOutbox) -> SupportDesk:
    """Desk actions delivering to members through ``outbox``, with the ticket timers."""
    service = DeskService(engine=runtime.engine, tickets=runtime.tickets, outbox=outbox,
                          clock=runtime.ports.clock)
    policy = SweepPolicy(reminder_after=settings.queue_reminder_seconds,
                         idle_close_after=settings.idle_close_seconds)
    return SupportDesk(service, Sweeper(tickets=runtime.tickets, desk=service,
                                        kv=runtime.store, clock=runtime.ports.clock,
                                        policy=policy))


async def run_purge(settings: Settings) -> int:
    """Delete transcript lines older than ``TRANSCRIPT_RETENTION_DAYS``."""
    database = create_engine(settings.database)
    try:
        await migrate(database)
        cutoff = datetime.now(UTC) - timedelta(days=settings.transcript_retention_days)
        removed = await SqlTicketStore(database).purge_transcripts(cutoff)
    finally:
        await database.dispose()
    print(f"removed {removed} transcript line(s) older than "
          f"{settings.transcript_retention_days} days")
    return 0


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
    the background tasks (ticket timers, ticket metrics), stopped on exit. Every setting is
    checked before anything is touched."""
    if not settings.otp_outbox:
        raise SystemExit("OTP_OUTBOX must be set for Telegram and WhatsApp: there is no SMS "
                         "gateway yet, and codes shown on the console would reach nobody. "
                         "Codes are appended to that file.")
    wa_config = _whatsapp_config(settings) if whatsapp else None
    agent_chat = settings.agent_chat()
    if agent_chat is not None and not telegram:
        raise SystemExit("AGENT_CHAT_ID needs TELEGRAM_BOT_TOKEN: agents answer in a Telegram "
                         "group through the bot.")
    bot = _telegram_bot(settings) if telegram else None
    catalog = Catalog()
    sender = CountingOtpSender(OutboxOtpSender(Path(settings.otp_outbox)), metrics)
    throttle = SendThrottle(per_bot=settings.telegram_messages_per_second)
    async with AsyncExitStack() as stack:
        if bot is not None:
            stack.push_async_callback(bot.session.close)
        forum = (TelegramForumDesk(bot, throttle, agent_chat, secret=settings.secret())
                 if bot is not None and agent_chat is not None else None)
        runtime = await stack.enter_async_context(
            build_runtime(settings, sender, catalog, forum, metrics=metrics))
        routes: dict[str, MemberOutbox] = {}
        wa = None
        if wa_config is not None:
            wa = WhatsAppChannel.create(wa_config, handle=runtime.engine.handle,
                                        sessions=runtime.store, ports=runtime.ports,
                                        metrics=metrics, catalog=catalog)
            stack.push_async_callback(wa.close)
            routes[WHATSAPP] = WhatsAppOutbox(wa)
        if bot is not None:
            routes[TELEGRAM] = TelegramOutbox(bot, throttle, metrics=metrics,
                                              secret=runtime.ports.secret,
                                              sessions=runtime.store, kv=runtime.store,
                                              ttl_for=runtime.engine.ttl_for)
        desk = support_desk(settings, runtime, OutboxRouter(routes))
        channel = None
        if bot is not None:
            group = (AgentGroup(forum, tickets=runtime.tickets, service=desk.service,
                                kv=runtime.store) if forum is not None else None)
            channel = TelegramChannel(bot, serve=runtime.engine.serve,
                                      concurrency=settings.telegram_concurrency,
                                      max_backlog=settings.telegram_max_backlog,
                                      ports=runtime.ports, throttle=throttle, metrics=metrics,
                                      catalog=catalog,
                                      on_group_update=group.handle if group else None)
        gauges = TicketGauges(metrics, runtime.tickets, runtime.ports.clock)
        await stack.enter_async_context(_background(
            desk.sweeper.run() if forum is not None else None, gauges.run()))
        yield Served(runtime, desk, channel, wa)


@asynccontextmanager
async def _background(*works: Coroutine[Any, Any, None] | None) -> AsyncIterator[None]:
    """Run ``works`` as tasks while the block runs; cancel and await them afterwards."""
    tasks = [asyncio.create_task(work) for work in works if work is not None]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _whatsapp_config(settings: Settings) -> WhatsAppConfig:
    try:
        return WhatsAppConfig(
            token=settings.whatsapp_token.get_secret_value(),
            phone_number_id=settings.whatsapp_phone_number_id,
            verify_token=settings.whatsapp_verify_token.get_secret_value(),
            app_secret=settings.whatsapp_app_secret.get_secret_value(),
            api_base=settings.whatsapp_api_base, rate=settings.whatsapp_rate,
            template_name=settings.whatsapp_template_name,
            template_languages=parse_languages(settings.whatsapp_template_languages))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


@asynccontextmanager
async def telegram_channel(settings: Settings,
                           metrics: Metrics) -> AsyncIterator[tuple[TelegramChannel, Runtime]]:
    """The Telegram channel on the engine the settings name (codes go to ``OTP_OUTBOX``),
    with the agent desk when ``AGENT_CHAT_ID`` is set."""
    async with serving(settings, metrics, telegram=True, whatsapp=False) as served:
        assert served.telegram is not None
        yield served.telegram, served.runtime


def _telegram_bot(settings: Settings) -> Bot:
    token = settings.telegram_bot_token.get_secret_value()
    if not token:
        raise SystemExit("TELEGRAM_BOT_TOKEN must be set (ask @BotFather for one).")
    api = settings.telegram_api_base
    session = (JsonAiohttpSession(api=TelegramAPIServer.from_base(api)) if api
               else JsonAiohttpSession())
    try:
        return Bot(token, session=session)
    except TokenValidationError:
        raise SystemExit("TELEGRAM_BOT_TOKEN does not look like a bot token "
                         "(digits, a colon, then letters).") from None


def _webhook_secret(settings: Settings) -> str:
    secret = settings.telegram_webhook_secret.get_secret_value()
    if not _SECRET.fullmatch(secret):
        raise SystemExit("TELEGRAM_WEBHOOK_SECRET must be set to 1-256 characters A-Z, a-z, "
                         "0-9, _ or - (Telegram sends it back in a header on every update).")
    return secret


_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


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
    secret = _webhook_secret(settings) if telegram else ""
    metrics = Metrics()
    async with serving(settings, metrics, telegram=telegram, whatsapp=whatsapp) as served:
        channel = served.telegram
        if channel is not None and settings.telegram_webhook_url:
            await channel.register_webhook(settings.telegram_webhook_url, secret)
            await channel.register_commands()
        app = create_web_app(metrics=metrics, checks=_health_checks(settings, served.runtime))
        routes = []
        if channel is not None:
            add_telegram_routes(app, channel, secret=secret,
                                path=settings.telegram_webhook_path)
            routes.append(f"Telegram webhook at {settings.telegram_webhook_path}")
        if served.whatsapp is not None:
            add_whatsapp_routes(app, served.whatsapp)
            routes.append(f"WhatsApp webhook at {WHATSAPP_PATH}")
        host, port = host or settings.web_host, port or settings.web_port
        settle_heap()
        await serve_app(app, host, port, started=lambda: print(
            f"serving on http://{host}:{port} ({', '.join(routes)}, /healthz, /metrics)",
            flush=True))


def _health_checks(settings: Settings, runtime: Runtime) -> dict[str, HealthCheck]:
    checks = {"database": database_check(runtime.database)}
    if settings.redis_url:
        checks["redis"] = kv_check(runtime.store)
    if settings.balance_service_url:
        checks["balance_service"] = http_check(
            settings.balance_service_url.rstrip("/") + "/healthz")
    else:
        reference = runtime.balance
        if isinstance(reference, CachedBalanceService):
            reference = reference.inner
        if isinstance(reference, ReferenceBalanceService):
            checks["balance_service"] = reference.ping
    return checks


async def run_balance_service(settings: Settings, host: str, port: int) -> None:
    """Serve the reference balance service on ``DATABASE_URL`` until interrupted."""
    token = settings.balance_service_token.get_secret_value()
    if not token:
        raise SystemExit("BALANCE_SERVICE_TOKEN must be set: the service answers only "
                         "requests that carry it.")
    database = create_engine(settings.database)
    try:
        await migrate(database)
        if settings.should_seed_demo:
            await seed_demo_members(database)
        await seed_default_rates(database)
        app = create_app(ReferenceBalanceService(database), token=token)
        await serve(app, host, port, started=lambda: print(
            f"balance service on http://{host}:{port} (OpenAPI: /openapi.yaml)", flush=True))
    finally:
        await database.dispose()


async def run_import(settings: Settings, args: argparse.Namespace) -> int:
    """Import CSV files into ``DATABASE_URL``; print the report or the first problems."""
    database = create_engine(settings.database)
    try:
        await migrate(database)
        await seed_default_rates(database)
        report = await import_csv(database, members=args.members,
                                  contributions=args.contributions, rates=args.rates)
    except CsvImportError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        await database.dispose()
    print("\n".join(report.lines()))
    return 0


def run_classify(lines: Iterable[str], write: Callable[[str], None] = print) -> None:
    """Print ``{"text", "intent", "score"}`` for each input line."""
    for line in lines:
        text = line.rstrip("\r\n")
        intent = classify(text)
        write(json.dumps({"text": text, "intent": intent.name,
                          "score": round(intent.score, 3)}, ensure_ascii=False))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="run_bot.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("console", help="chat in the terminal (default)")
    commands.add_parser("classify", help="classify stdin lines into intents (JSON lines)")
    commands.add_parser("migrate", help="apply database migrations")
    service = commands.add_parser("balance-service", help="the reference balance service")
    service.add_argument("--host", default="127.0.0.1")
    service.add_argument("--port", type=int, default=8081)
    commands.add_parser("purge-transcripts",
                        help="delete ticket transcripts older than TRANSCRIPT_RETENTION_DAYS")
    importer = commands.add_parser("import", help="load CSV files into DATABASE_URL")
    importer.add_argument("--members", type=Path)
    importer.add_argument("--contributions", type=Path)
    importer.add_argument("--rates", type=Path)
    commands.add_parser("telegram", help="the Telegram bot: long polling, or the webhook "
                        "app when TELEGRAM_WEBHOOK_URL is set")
    web = commands.add_parser("serve", help="the web app: Telegram and/or WhatsApp webhooks, "
                              "/healthz, /metrics")
    web.add_argument("--host", help="default: WEB_HOST (0.0.0.0)")
    web.add_argument("--port", type=int, help="default: WEB_PORT (8080)")
    args, _ = parser.parse_known_args(argv)
    if args.command == "import" and not (args.members or args.contributions or args.rates):
        parser.error("import needs at least one of --members, --contributions, --rates")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings()
    configure_logging(settings.log_level)
    command = args.command or "console"
    if command == "classify":
        run_classify(sys.stdin)
    elif command == "migrate":
        asyncio.run(migrate(settings.database))
    elif command == "purge-transcripts":
        return asyncio.run(run_purge(settings))
    elif command == "import":
        return asyncio.run(run_import(settings, args))
    elif command == "balance-service":
        try:
            asyncio.run(run_balance_service(settings, args.host, args.port))
        except KeyboardInterrupt:
            print()
    else:
        runs = {"telegram": lambda: run_telegram(settings),
                "serve": lambda: run_serve(settings, args.host, args.port)}
        try:
            tuning.run(runs.get(command, lambda: run_console(settings))(),
                       loop=settings.event_loop)
        except KeyboardInterrupt:
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
