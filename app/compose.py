"""The composition root: the runtime built from settings, in one place.

:func:`runtime` builds what every command serves on: the session store (Redis or in-process),
the database (created, migrated once, seeded), the balance service (the reference in-process,
behind its cache, or the HTTP client), the ports and the engine; it closes them on exit. The
CLI's commands, the tests' fixtures, the e2e harnesses and the benches all build through this
module; tests pick fakes through the overrides of :func:`build_ports` and :func:`build_engine`.

Imports stay light on purpose (no aiogram, pywa or aiohttp): the console and ``classify`` load
this module, and the HTTP balance client is imported only when ``BALANCE_SERVICE_URL`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.ports import BalanceBackend
from alerts.queues import ChannelQueues
from app.clock import SystemClock
from app.metrics import CountingOtpSender, CountingTicketStore, Metrics
from app.otp_delivery import ChannelSender, FanOutOtpSender, OutboxOtpSender, RoutedOtpSender
from app.settings import AlertSettings, BalanceSettings, OtpSettings, Settings, StorageSettings
from balance.cache import CachedBalanceService
from balance.demo import DEFAULT_RATES
from balance.service import ReferenceBalanceService, seed_default_rates, seed_demo_members
from channels.inbox import Inbox
from flows.engine import FLOW_TIMEOUT, Engine
from flows.flow import Ports
from flows.hours import BusinessHours
from flows.i18n import Catalog
from flows.otp_codes import MemoryOtpGuardStore
from flows.ports import (
    AccountStore,
    AgentDesk,
    AlertMarks,
    AlertSubscriptionStore,
    BalanceService,
    Clock,
    DocumentMaker,
    KeyValueStore,
    MemberOutbox,
    OtpSender,
    SessionBackend,
    StatementIssueStore,
    TicketStore,
    UnreachableChats,
)
from storage.accounts import SqlAccountStore
from storage.alerts import SqlAlertStore
from storage.db import create_engine, migrate
from storage.inbox import MemoryInbox
from storage.otp_guard import SqlOtpGuardStore
from storage.sessions import (
    MemorySessionStore,
    RedisSessionStore,
    redis_store_from_url,
    warn_without_persistence,
)
from storage.statements import SqlStatementIssueStore
from storage.tickets import SqlTicketStore
from support.desk import DeskService
from support.sweeper import Sweeper, SweepPolicy

if TYPE_CHECKING:
    from alerts.planner import AlertPolicy, Planner
    from alerts.ports import Pacer
    from alerts.worker import AlertWorker
    from domain.alerts import AlertJob
    from flows.types import Reply

__all__ = ["NO_OTP_SENDER", "OtpDelivery", "Runtime", "SupportDesk", "alert_pacer",
           "alert_planner", "alert_policy", "alert_queues", "alert_renderer", "alert_workers",
           "background", "balance_service", "bootstrap_database", "build_engine", "build_ports",
           "daily_alert_plan", "database_for", "development_rate", "document_maker", "inbox_for",
           "open_database", "otp_delivery", "otp_sender_for", "runtime", "session_store",
           "still_true", "support_desk", "verify_url", "with_ports"]


@dataclass(frozen=True)
class Runtime:
    """The engine and the parts channels, the agent desk and health checks also need."""

    engine: Engine
    store: SessionBackend
    ports: Ports
    database: AsyncEngine
    balance: BalanceBackend
    tickets: TicketStore
    catalog: Catalog
    otp: OtpDelivery
    alerts: SqlAlertStore
    alert_queues: ChannelQueues

    def inbox(self, channel: str) -> Inbox:
        """``channel``'s inbox (:func:`inbox_for`)."""
        return inbox_for(self.store, channel)


# ---------------------------------------------------------------------------- the database


async def bootstrap_database(database: AsyncEngine, *, demo: bool) -> None:
    """Migrate, then seed: the demo members (with the default and demo rates) when ``demo``,
    else the default development rates only. Idempotent and safe from several processes."""
    await migrate(database)
    if demo:
        await seed_demo_members(database)
    else:
        await seed_default_rates(database)


async def open_database(url: str, *, demo: bool = True) -> AsyncEngine:
    """A new engine on ``url``, bootstrapped (:func:`bootstrap_database`); the caller disposes
    of it."""
    database = create_engine(url)
    try:
        await bootstrap_database(database, demo=demo)
    except BaseException:
        await database.dispose()
        raise
    return database


@asynccontextmanager
async def database_for(settings: StorageSettings, *, seed: bool = True,
                       demo: bool | None = None) -> AsyncIterator[AsyncEngine]:
    """The settings' database, disposed on exit: migrated, then seeded
    (:func:`bootstrap_database`; demo members when ``demo``, by default when the settings say
    so) unless ``seed`` is false."""
    database = create_engine(settings.database)
    try:
        if seed:
            await bootstrap_database(
                database, demo=settings.should_seed_demo if demo is None else demo)
        else:
            await migrate(database)
        yield database
    finally:
        await database.dispose()


# ---------------------------------------------------------------------- ports and engine


def build_ports(*, kv: KeyValueStore, secret: bytes, otp_sender: OtpSender,
                database: AsyncEngine | None = None, accounts: AccountStore | None = None,
                balance: BalanceService | None = None, clock: Clock | None = None,
                tickets: TicketStore | None = None, desk: AgentDesk | None = None,
                hours: BusinessHours | None = None,
                otp_channels: tuple[str, ...] = ("sms", "email"),
                documents: DocumentMaker | None = None,
                statements: StatementIssueStore | None = None,
                development_rate: float = 0.06,
                alerts: AlertSubscriptionStore | None = None,
                alert_marks: AlertMarks | None = None) -> Ports:
    """The engine's ports. Accounts and the balance service default to the SQL store and the
    reference service on ``database``; the clock to the system clock; tickets and the desk to
    none (no handoff); hours to the default business hours; documents to none (the balance
    card offers no statement or chart), the issued statements to the SQL store on
    ``database`` when documents are made; alerts to none (not offered). Tests pass fakes by
    name."""
    if accounts is None or balance is None:
        if database is None:
            raise TypeError("build_ports needs a database for the default accounts or balance")
        accounts = accounts if accounts is not None else SqlAccountStore(database, secret)
        balance = balance if balance is not None else ReferenceBalanceService(database)
    return Ports(kv=kv, accounts=accounts, balance=balance, otp_sender=otp_sender,
                 clock=clock if clock is not None else SystemClock(), secret=secret,
                 tickets=tickets, desk=desk,
                 hours=hours if hours is not None else BusinessHours(),
                 otp_guard=SqlOtpGuardStore(database) if database is not None
                 else MemoryOtpGuardStore(), otp_channels=otp_channels, documents=documents,
                 statements=statements if statements is not None or documents is None
                 or database is None else SqlStatementIssueStore(database, secret),
                 development_rate=development_rate, alerts=alerts, alert_marks=alert_marks)


def with_ports(ports: Ports, **parts: Any) -> Ports:
    """``ports`` with some parts replaced (a faulty balance service, another desk...)."""
    return dataclasses.replace(ports, **parts)


def build_engine(store: SessionBackend, ports: Ports, *, catalog: Catalog | None = None,
                 flow_timeout: float = FLOW_TIMEOUT, strict: bool = False) -> Engine:
    """The engine on ``store`` and ``ports``; ``strict`` (tests) raises on an undeclared
    transition and a missing translation instead of apologising."""
    return Engine(sessions=store, ports=ports,
                  catalog=catalog if catalog is not None else Catalog(strict=strict),
                  flow_timeout=flow_timeout, strict=strict)


# ------------------------------------------------------------------- from the settings


async def session_store(settings: StorageSettings, stack: AsyncExitStack) -> SessionBackend:
    """Redis when ``REDIS_URL`` is set (closed with ``stack``; a warning is logged when it has
    neither AOF nor a replica), else the in-process store."""
    if not settings.redis_url:
        return MemorySessionStore(ttl=settings.session_ttl_seconds)
    store = redis_store_from_url(settings.redis_url, ttl=settings.session_ttl_seconds)
    stack.push_async_callback(store.aclose)
    await warn_without_persistence(store)  # a warning when a restart would lose data
    return store


def inbox_for(store: SessionBackend, channel: str) -> Inbox:
    """``channel``'s inbox beside the session store: in Redis when the store is, shared by
    every process; else in this process. One per channel: a sweeper takes up only its own
    channel's chats."""
    return store.inbox(channel) if isinstance(store, RedisSessionStore) else MemoryInbox()


async def balance_service(settings: BalanceSettings, database: AsyncEngine,
                          store: SessionBackend, stack: AsyncExitStack,
                          secret: bytes) -> BalanceBackend:
    """The HTTP client when ``BALANCE_SERVICE_URL`` is set, else the in-process reference
    (behind its cache unless ``BALANCE_CACHE_SECONDS=0``)."""
    if not settings.balance_service_url:
        reference = ReferenceBalanceService(database)
        if not settings.balance_cache_seconds:
            return reference
        return CachedBalanceService(reference, ttl=settings.balance_cache_seconds)
    from balance.client import HttpBalanceService  # aiohttp's client: only when used

    client = HttpBalanceService(settings.balance_service_url,
                                settings.balance_service_token.get_secret_value(), cache=store,
                                timeout=settings.balance_service_timeout,
                                cache_secret=secret)
    stack.push_async_callback(client.aclose)
    return client


OTP_KINDS = ("whatsapp", "sms", "email")  # every way a code can travel, the default order


@dataclass(frozen=True)
class OtpDelivery:
    """How codes travel: the sender the flows use, the kinds they try in order
    (``Ports.otp_channels``), and the real senders (for ``/healthz`` and closing)."""

    sender: OtpSender
    channels: tuple[str, ...] = ("sms", "email")
    senders: tuple[ChannelSender, ...] = ()

    def describe(self) -> str:
        """The start-up line: which ways codes travel, in order."""
        if not self.senders:
            return "OTP codes: " + ("written to OTP_OUTBOX" if isinstance(
                self.sender, OutboxOtpSender) else "shown here (simulated)")
        return "OTP codes by " + ", then ".join(self.channels)


def real_otp_senders(settings: Settings) -> list[ChannelSender]:
    """The senders the settings configure (each module imported only when it is)."""
    senders: list[ChannelSender] = []
    if settings.whatsapp_otp_template:
        from channels.whatsapp.otp import WhatsAppOtpSender

        try:
            whatsapp = WhatsAppOtpSender.from_settings(settings, settings)
        except ValueError as exc:  # a setting missing or malformed, named in the message
            raise SystemExit(str(exc)) from None
        if whatsapp is not None:
            senders.append(whatsapp)
    if settings.sms_gateway:
        from app.otp_sms import SmsOtpSender

        sms = SmsOtpSender.from_settings(settings)
        if sms is not None:
            senders.append(sms)
    if settings.smtp_url.get_secret_value():
        from app.otp_email import SmtpOtpSender

        email = SmtpOtpSender.from_settings(settings)
        if email is not None:
            senders.append(email)
    return senders


def otp_order(settings: OtpSettings, configured: Sequence[str]) -> tuple[str, ...]:
    """``OTP_CHANNELS`` checked against what is configured (each name known, and configured
    when real senders are); by default every configured kind in the default order."""
    if not settings.otp_channels.strip():
        return tuple(kind for kind in OTP_KINDS if kind in configured) or ("sms", "email")
    names = tuple(dict.fromkeys(n.strip().lower() for n in settings.otp_channels.split(",")
                                if n.strip()))
    unknown = [n for n in names if n not in OTP_KINDS]
    if unknown:
        raise SystemExit(f"OTP_CHANNELS names {', '.join(unknown)}: use whatsapp, sms, email.")
    missing = [n for n in names if configured and n not in configured]
    if missing:
        raise SystemExit(f"OTP_CHANNELS names {', '.join(missing)}, which is not configured "
                         "(WHATSAPP_OTP_TEMPLATE, SMS_GATEWAY, SMTP_URL).")
    return names


def otp_delivery(settings: Settings, fallback: Sequence[OtpSender] = ()) -> OtpDelivery | None:
    """The real senders in ``OTP_CHANNELS`` order (``OTP_OUTBOX``, when also set, records a
    copy of each code); else ``fallback`` (the console's simulated message) and the
    ``OTP_OUTBOX`` file; ``None`` when there is nothing at all."""
    real = real_otp_senders(settings)
    outbox = OutboxOtpSender(Path(settings.otp_outbox)) if settings.otp_outbox else None
    if real:
        order = otp_order(settings, [s.kind for s in real])
        by_kind = {s.kind: s for s in real}
        chosen = [by_kind[kind] for kind in order]
        return OtpDelivery(RoutedOtpSender(chosen, tap=outbox), order, tuple(real))
    chosen_fallback = [*fallback, *([outbox] if outbox is not None else [])]
    if not chosen_fallback:
        return None
    sender = (chosen_fallback[0] if len(chosen_fallback) == 1
              else FanOutOtpSender(chosen_fallback))
    return OtpDelivery(sender, otp_order(settings, []))


def otp_sender_for(settings: Settings, senders: Sequence[OtpSender]) -> OtpDelivery:
    """:func:`otp_delivery`; refused when there is none."""
    delivery = otp_delivery(settings, senders)
    if delivery is None:
        raise SystemExit(NO_OTP_SENDER)
    return delivery


NO_OTP_SENDER = ("No way to send OTP codes is configured. Set one or more of: "
                 "WHATSAPP_OTP_TEMPLATE (with WHATSAPP_TOKEN), SMS_GATEWAY with SMS_GATEWAY_TOKEN "
                 "and SMS_SENDER, SMTP_URL with OTP_EMAIL_FROM; or OTP_OUTBOX (a file, for "
                 "demos and tests).")


@asynccontextmanager
async def runtime(settings: Settings, otp: OtpSender | OtpDelivery, *,
                  catalog: Catalog | None = None,
                  desk: AgentDesk | None = None, metrics: Metrics | None = None,
                  clock: Clock | None = None) -> AsyncIterator[Runtime]:
    """The engine and its ports on the backends the settings name (the database migrated and
    seeded once); closes them on exit."""
    catalog = catalog if catalog is not None else Catalog()
    delivery = otp if isinstance(otp, OtpDelivery) else OtpDelivery(otp)
    otp_sender: OtpSender = (CountingOtpSender(delivery.sender, metrics) if metrics is not None
                             else delivery.sender)
    async with AsyncExitStack() as stack:
        for sender in delivery.senders:
            stack.push_async_callback(sender.aclose)
        store = await session_store(settings, stack)
        database = await stack.enter_async_context(database_for(settings))
        secret = settings.secret()
        balance = await balance_service(settings, database, store, stack, secret)
        tickets: TicketStore = SqlTicketStore(database)
        if metrics is not None:
            tickets = CountingTicketStore(tickets, metrics)
        documents = document_maker(settings, secret, catalog, stack)
        alerts = SqlAlertStore(database)
        queues = alert_queues(store, secret, database)
        ports = build_ports(kv=store, database=database, secret=secret, balance=balance,
                            otp_sender=otp_sender, clock=clock, tickets=tickets, desk=desk,
                            hours=settings.hours(), otp_channels=delivery.channels,
                            documents=documents,
                            statements=SqlStatementIssueStore(database, secret),
                            development_rate=await development_rate(settings, database),
                            alerts=alerts, alert_marks=queues)
        engine = build_engine(store, ports, catalog=catalog,
                              flow_timeout=settings.flow_timeout_seconds)
        yield Runtime(engine, store, ports, database, balance, tickets, catalog, delivery,
                      alerts, queues)


# ------------------------------------------------------------ statements and charts (issue 17)


def verify_url(settings: Settings) -> str:
    """The public address of ``/verify`` printed and QR-coded on statements:
    ``STATEMENT_VERIFY_URL`` when set, else the origin of ``TELEGRAM_WEBHOOK_URL`` (the web
    app's public address), else this machine's ``WEB_PORT``."""
    configured = settings.statement_verify_url
    if configured:
        return configured.rstrip("/")
    webhook = settings.telegram_webhook_url
    if webhook.startswith(("https://", "http://")):
        scheme, _, rest = webhook.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}/verify"
    return f"http://localhost:{settings.web_port}/verify"


def document_maker(settings: Settings, secret: bytes, catalog: Catalog,
                   stack: AsyncExitStack) -> DocumentMaker:
    """Statements and charts made in ``DOCUMENT_WORKERS`` worker processes (threads when 0),
    stopped with ``stack``; the renderers are imported here, not when this module is."""
    from app.documents import PooledDocumentMaker

    maker = PooledDocumentMaker(secret=secret, verify_url=verify_url(settings),
                                catalog=catalog, processes=settings.document_workers)
    stack.callback(maker.close)
    return maker


def warm_documents(ports: Ports) -> Coroutine[Any, Any, None] | None:
    """The document maker's warm-up (one statement and one chart made in its pools, so the
    first member does not wait seconds for fonts and matplotlib), to run in the background;
    ``None`` when the runtime makes no documents."""
    warm = getattr(ports.documents, "warm", None)
    return warm() if warm is not None else None


async def development_rate(settings: Settings, database: AsyncEngine) -> float:
    """The yearly development rate projections assume: ``JHT_DEVELOPMENT_RATE`` when set (a
    fraction, ``0.06``), else the average of the years configured in the database, else of the
    published years (:data:`balance.demo.DEFAULT_RATES`)."""
    configured = settings.jht_development_rate
    if configured:
        return float(configured)
    from sqlalchemy import text

    async with database.connect() as conn:
        average = await conn.scalar(text("SELECT avg(rate_percent) FROM development_rate"))
    if average is None:
        average = sum(DEFAULT_RATES.values()) / len(DEFAULT_RATES)
    return round(float(average) / 100, 6)


# ------------------------------------------------------------- contribution alerts (issue 16)


def alert_queues(store: SessionBackend, secret: bytes,
                 database: AsyncEngine | None = None) -> ChannelQueues:
    """Each channel's alert queue: Redis Streams when the session store is Redis (shared by
    every process), else the database's ``alert_job`` table (the embedded default: jobs and
    exactly-once marks survive a restart), else this process's memory (no database given)."""
    if isinstance(store, RedisSessionStore):
        from alerts.queue_redis import RedisAlertQueue

        client, prefix = store.client, store.prefix
        return ChannelQueues(lambda channel: RedisAlertQueue(
            client, secret=secret, prefix=prefix, channel=channel))
    if database is not None:
        from alerts.queue_sql import SqlAlertQueue

        engine = database
        return ChannelQueues(lambda channel: SqlAlertQueue(
            engine, secret=secret, channel=channel))
    from alerts.queue_memory import MemoryAlertQueue

    return ChannelQueues(lambda channel: MemoryAlertQueue(secret))


def alert_policy(settings: AlertSettings) -> AlertPolicy:
    """The planner's policy from ``ALERTS_GRACE_DAYS`` and ``ALERTS_FRESH_DAYS``."""
    from alerts.planner import AlertPolicy

    return AlertPolicy(grace_days=settings.alerts_grace_days,
                       fresh_days=settings.alerts_fresh_days)


def alert_planner(settings: AlertSettings, built: Runtime,
                  metrics: Metrics | None = None) -> Planner:
    """The planner on the runtime's balance service (its change feed), subscriptions and
    queues."""
    from alerts.planner import Planner

    return Planner(feed=built.balance, directory=built.alerts, cursors=built.alerts,
                   queue=built.alert_queues, policy=alert_policy(settings), metrics=metrics)


def alert_renderer(built: Runtime) -> Callable[[AlertJob, str], list[Reply]]:
    """An alert's replies in a language: the flows' words (:func:`flows.alerts.alert_says`),
    translated by the engine; dates counted in Asia/Jakarta."""
    from flows.alerts import alert_says
    from flows.memberships import JAKARTA

    def render(job: AlertJob, locale: str) -> list[Reply]:
        today = built.ports.clock.now().astimezone(JAKARTA).date()
        return built.engine.render(alert_says(job, today), locale)

    return render


def alert_pacer(settings: AlertSettings, store: SessionBackend) -> Pacer | None:
    """Platform pacing shared by every process (Redis) or this one's; ``None`` when both
    rates are 0 (benchmarks)."""
    rates = {"telegram": settings.alerts_telegram_rate,
             "whatsapp": settings.alerts_whatsapp_rate}
    if not any(rates.values()):
        return None
    from alerts.pacing import MemoryPacer, RedisPacer

    if isinstance(store, RedisSessionStore):
        return RedisPacer(store.client, prefix=store.prefix, rates=rates)
    return MemoryPacer(rates)


def alert_workers(settings: AlertSettings, built: Runtime, outbox: MemberOutbox,
                  channels: Sequence[str], metrics: Metrics | None = None) -> list[AlertWorker]:
    """``ALERTS_WORKERS`` workers per channel in ``channels``, each on its channel's queue,
    sending through ``outbox`` (which, when it knows the chats that blocked the bot, keeps the
    workers from sending to them); named after this host and process (a dead process's jobs are
    reclaimed by another after ``ALERTS_CLAIM_SECONDS``)."""
    from alerts.quiet import QuietHours
    from alerts.worker import AlertWorker

    quiet = QuietHours.parse(settings.alerts_quiet_hours)
    pacer = alert_pacer(settings, built.store)
    render = alert_renderer(built)
    return [AlertWorker(queue=built.alert_queues.of(channel), directory=built.alerts,
                        outbox=outbox, render=render,
                        consumer=f"{socket.gethostname()}-{os.getpid()}-{channel}-{index}",
                        clock=built.ports.clock.now, quiet=quiet, pacer=pacer, metrics=metrics,
                        gauges=built.alert_queues, still_true=still_true(built.balance),
                        claim_after=settings.alerts_claim_seconds,
                        max_attempts=settings.alerts_max_attempts,
                        unreachable=outbox if isinstance(outbox, UnreachableChats) else None)
            for channel in channels for index in range(settings.alerts_workers)]


def still_true(balance: BalanceService) -> Callable[[AlertJob], Awaitable[bool]]:
    """Whether an alert still holds just before it is sent: a month planned as missing that
    has been paid since is not announced (one balance-service read per missing alert; the
    other kinds hold once true)."""
    from domain.alerts import AlertKind

    async def check(job: AlertJob) -> bool:
        if job.kind is not AlertKind.MISSING:
            return True
        periods = await balance.contribution_periods(job.kpj)
        return periods is not None and job.period not in periods

    return check


def daily_alert_plan(settings: AlertSettings, built: Runtime,
                     metrics: Metrics | None = None) -> Coroutine[Any, Any, None] | None:
    """The daily planning pass at ``ALERTS_PLAN_AT`` (Asia/Jakarta), one process of many
    planning each day; ``None`` when ``ALERTS_PLAN_AT`` is ``off``."""
    if settings.alerts_plan_at in ("", "off"):
        return None
    from datetime import time

    from alerts.schedule import DailyPlan

    hour, minute = (int(part) for part in settings.alerts_plan_at.split(":"))
    plan = DailyPlan(alert_planner(settings, built, metrics), at=time(hour, minute),
                     kv=built.store, clock=built.ports.clock.now)
    return plan.run()


# ------------------------------------------------------------------------ the agent desk


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


@asynccontextmanager
async def background(*works: Coroutine[Any, Any, None] | None) -> AsyncIterator[None]:
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
