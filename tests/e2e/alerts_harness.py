"""Contribution alerts end to end (issue 16): a bot process built as ``serve`` builds it, with
alerts offered, beside the planner and a worker of ``app.compose`` sending through the
channel's own outbox.

:func:`telegram_alerts` and :func:`whatsapp_alerts` yield the channel's harness (the fake Bot
API or the fake Graph API; the members chat as in :mod:`tests.e2e.harness` and
:mod:`tests.e2e.wa_harness`) and an :class:`AlertRig`: the runtime, one planning pass
(:meth:`AlertRig.plan`) and one worker (:meth:`AlertRig.drain`), on the harness's database,
session store (Redis or in process) and clock. The clock starts at :data:`DEC_3`, 10:00 in
Jakarta, and 2025's development rate is imported, so a first pass plans every kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.planner import PlanReport
from alerts.worker import AlertWorker, DrainReport
from app.compose import (
    OtpDelivery,
    Runtime,
    alert_planner,
    alert_queues,
    alert_workers,
    build_engine,
    build_ports,
    inbox_for,
    open_database,
)
from app.metrics import CountingOtpSender, Metrics
from app.otp_delivery import OutboxOtpSender
from app.outbox import OutboxRouter
from app.settings import AlertSettings
from app.web import create_web_app
from balance.demo import DEMO_CONTRIBUTIONS
from balance.importer import import_csv
from balance.service import ReferenceBalanceService
from channels.console.desk import ConsoleDesk
from channels.telegram.channel import TelegramChannel
from channels.telegram.outbox import TelegramOutbox
from channels.telegram.session import JsonAiohttpSession
from channels.telegram.throttle import SendThrottle
from channels.whatsapp.channel import WhatsAppChannel
from channels.whatsapp.config import WhatsAppConfig
from channels.whatsapp.graph import GraphClient
from channels.whatsapp.render import CONTACT_OWN
from channels.whatsapp.web import WhatsAppOutbox, add_whatsapp_routes
from flows.i18n import Catalog
from flows.memberships import JAKARTA
from flows.ports import MemberOutbox, SessionBackend
from flows.types import Money, SessionKey
from storage.accounts import SqlAccountStore
from storage.alerts import SqlAlertStore
from storage.sessions import MemorySessionStore
from storage.tickets import SqlTicketStore
from support.desk import DeskService
from tests.e2e.harness import QUICK_RETRIES, TOKEN, Harness
from tests.e2e.wa_harness import (
    APP_SECRET,
    TEMPLATE,
    VERIFY_TOKEN,
    WaHarness,
    WaMember,
    fast_limiter,
)
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.graph_webhooks import button_reply, list_reply
from tests.flows.conftest import ALWAYS, SECRET, ManualClock

DEC_3 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 10:00 in Jakarta
RATE_2025 = "6.15"  # imported: the planner announces 2025's development
ALERT_TEMPLATE = "notifikasi_iuran"  # WHATSAPP_ALERT_TEMPLATE
HOUR = 3600.0

AGUS = {"nik": "3578031212920002", "kpj": "34567890123", "birth": "12-12-1992",
        "phone": "081398765432"}
BUDI = {"nik": "3273021708850003", "kpj": "23456789012", "birth": "17-08-1985",
        "phone": "085612345678"}


def alert_settings(**overrides: Any) -> AlertSettings:
    """The alert settings ``serve`` reads, at their defaults unless given (quiet hours
    21:00-07:00, a grace of 5 days, one worker per channel)."""
    values: dict[str, Any] = {"alerts_plan_at": "off", "alerts_grace_days": 5,
                              "alerts_quiet_hours": "21:00-07:00", "alerts_fresh_days": 45,
                              "alerts_workers": 1, "alerts_claim_seconds": 120.0,
                              "alerts_max_attempts": 5, "alerts_telegram_rate": 30.0,
                              "alerts_whatsapp_rate": 80.0}
    values.update(overrides)
    return AlertSettings(**values)


@dataclass
class AlertRig:
    """The planner and one worker of ``app.compose`` on a harness's runtime."""

    runtime: Runtime
    settings: AlertSettings
    worker: AlertWorker
    metrics: Metrics
    clock: ManualClock

    async def plan(self) -> PlanReport:
        """One planning pass for the clock's day in Jakarta (as the daily plan runs it)."""
        now = self.clock.now()
        planner = alert_planner(self.settings, self.runtime, self.metrics)
        return await planner.plan(now.astimezone(JAKARTA).date(), now)

    async def drain(self) -> DrainReport:
        """The worker sends what it can now (nothing during quiet hours: ``held``)."""
        return await self.worker.drain()

    async def depth(self) -> int:
        """Alert jobs waiting on every channel's queue."""
        return await self.runtime.alert_queues.depth()

    async def sent_count(self, key: SessionKey) -> int:
        """Alerts marked sent to the chat."""
        return await self.runtime.alert_queues.sent_count(key)

    def counted(self, kind: str, channel: str, outcome: str) -> float:
        """The ``alerts`` counter for (kind, channel, outcome)."""
        return self.metrics.value("bot_alerts_total", kind=kind, channel=channel,
                                  outcome=outcome)


async def import_rate(database: AsyncEngine, folder: Path, year: int, rate: str) -> None:
    """Import one year's development rate as an operator does (``--rates``)."""
    path = folder / f"rates-{year}.csv"
    path.write_text(f"year,rate_percent\n{year},{rate}\n")
    await import_csv(database, rates=path)


async def late_september_paid(database: AsyncEngine, folder: Path) -> None:
    """Siti's employer pays September 2026 late (on 28 December): the importer records it in
    the change feed."""
    path = folder / "late-september.csv"
    path.write_text("kpj,period,wage,paid_on\n12345678901,2026-09,4500000,2026-12-28\n")
    await import_csv(database, contributions=path)


def rupiah(amount: int) -> str:
    """An amount as an Indonesian alert writes it (``Rp385.206``)."""
    return Catalog().format_value(Money(amount), "id")


def october(kpj: str) -> tuple[int, int]:
    """(employer's part, member's part) of a demo member's October 2026 contribution."""
    found = next(c for c in DEMO_CONTRIBUTIONS if c.kpj == kpj and c.period == "2026-10")
    return found.employer_part, found.employee_part


async def _runtime(tmp_path: Path, store: SessionBackend, database: AsyncEngine,
                   clock: ManualClock, metrics: Metrics,
                   **ports: Any) -> tuple[Runtime, SqlAccountStore, SqlTicketStore]:
    """The runtime ``serve`` builds (alerts offered, marks on the store's queues), with its
    account and ticket stores."""
    await import_rate(database, tmp_path, 2025, RATE_2025)
    outbox = tmp_path / "outbox.jsonl"
    accounts_sender = CountingOtpSender(OutboxOtpSender(outbox), metrics)
    alerts, queues = SqlAlertStore(database), alert_queues(store, SECRET, database)
    balance, tickets = ReferenceBalanceService(database), SqlTicketStore(database)
    accounts = SqlAccountStore(database, SECRET)
    built = build_ports(kv=store, database=database, secret=SECRET, balance=balance,
                        accounts=accounts, otp_sender=accounts_sender, clock=clock,
                        tickets=tickets,
                        alerts=alerts, alert_marks=queues, **ports)
    catalog = Catalog(strict=True)
    engine = build_engine(store, built, catalog=catalog, strict=True)
    return (Runtime(engine, store, built, database, balance, tickets, catalog,
                    OtpDelivery(accounts_sender), alerts, queues), accounts, tickets)


def _rig(runtime: Runtime, outbox: MemberOutbox, channel: str, *, metrics: Metrics,
         clock: ManualClock, settings: AlertSettings) -> AlertRig:
    router = OutboxRouter({channel: outbox}, strict=True)  # as serve routes alerts
    [worker] = alert_workers(settings, runtime, router, (channel,), metrics)
    return AlertRig(runtime, settings, worker, metrics, clock)


# ------------------------------------------------------------------------------ Telegram


@asynccontextmanager
async def telegram_alerts(tmp_path: Path, *, fake: FakeBotApi,
                          store: SessionBackend | None = None,
                          settings: AlertSettings | None = None,
                          ) -> AsyncIterator[tuple[Harness, AlertRig]]:
    """One Telegram bot process with alerts offered, and its alert planner and worker (the
    worker's outbox: ``TelegramOutbox`` as ``serve`` builds it)."""
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store = store if store is not None else MemorySessionStore()
    metrics, clock = Metrics(), ManualClock(DEC_3)
    built, accounts, _ = await _runtime(tmp_path, store, database, clock, metrics)
    bot = Bot(TOKEN, session=JsonAiohttpSession(api=TelegramAPIServer.from_base(fake.api_base)))
    throttle = SendThrottle(per_bot=1000.0, per_chat=1000.0)  # flood control out of the way
    channel = TelegramChannel(bot, serve=built.engine.serve, ports=built.ports,
                              throttle=throttle, metrics=metrics, catalog=built.catalog,
                              inbox=inbox_for(store, "telegram"), retry_delays=QUICK_RETRIES)
    outbox = TelegramOutbox(bot, throttle, metrics=metrics, secret=SECRET, sessions=store,
                            kv=store, ttl_for=built.engine.ttl_for)
    world = Harness(fake, bot, channel, built.engine, store, accounts, database, metrics,
                    tmp_path / "outbox.jsonl", clock)
    try:
        yield world, _rig(built, outbox, "telegram", metrics=metrics, clock=clock,
                          settings=settings or alert_settings())
    finally:
        await channel.drain()
        await channel.close()
        await database.dispose()


# ------------------------------------------------------------------------------ WhatsApp


@asynccontextmanager
async def whatsapp_alerts(tmp_path: Path, *, graph: FakeGraphApi,
                          store: SessionBackend | None = None,
                          settings: AlertSettings | None = None,
                          ) -> AsyncIterator[tuple[WaHarness, AlertRig]]:
    """One WhatsApp bot process with alerts offered (the webhook served on loopback), and
    its alert planner and worker (the worker's outbox: ``WhatsAppOutbox`` with the alert
    template, as ``serve`` builds it). The fake knows both templates."""
    graph.known_reads_only = True
    graph.templates[ALERT_TEMPLATE] = {"id", "en_US"}
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store = store if store is not None else MemorySessionStore()
    metrics, clock, desk_lines = Metrics(), ManualClock(DEC_3), list[str]()
    built, accounts, tickets = await _runtime(tmp_path, store, database, clock, metrics,
                                              desk=ConsoleDesk(desk_lines.append),
                                              hours=ALWAYS)
    config = WhatsAppConfig(token=graph.token, phone_number_id=graph.phone_number_id,
                            verify_token=VERIFY_TOKEN, app_secret=APP_SECRET,
                            api_base=graph.api_base, template_name=TEMPLATE,
                            template_languages=("id", "en_US"))
    client_graph = GraphClient(token=config.token, phone_number_id=config.phone_number_id,
                               api_base=config.api_base)
    channel = WhatsAppChannel(config, graph=client_graph, serve=built.engine.serve,
                              sessions=store, ports=built.ports, metrics=metrics,
                              catalog=built.catalog, limiter=fast_limiter(),
                              ttl_for=built.engine.ttl_for, inbox=inbox_for(store, "whatsapp"),
                              retry_delays=QUICK_RETRIES)
    desk = DeskService(engine=built.engine, tickets=tickets,
                       outbox=WhatsAppOutbox(channel), clock=clock)
    app = create_web_app(metrics=metrics, checks={})
    add_whatsapp_routes(app, channel)
    client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    world = WaHarness(graph, channel, built.engine, store, accounts, tickets, metrics,
                      tmp_path / "outbox.jsonl", clock, client, desk, desk_lines, built.ports)
    try:
        yield world, _rig(built, WhatsAppOutbox(channel, template=ALERT_TEMPLATE), "whatsapp",
                          metrics=metrics, clock=clock, settings=settings or alert_settings())
    finally:
        await client.close()
        await channel.close()
        await database.dispose()


async def press_data(member: WaMember, data: str) -> str:
    """Press the button (or pick the row) sending ``data`` in the newest interactive message
    that has it (an older message's buttons stay pressable on WhatsApp), by the title the
    member sees; the bot's answer as one text."""
    for call in reversed(member.graph.sent(member.wa_id)):
        if call.type != "interactive":
            continue
        title = next((t for ident, t in call.choices if ident == data), None)
        if title is None:
            continue
        build = button_reply if call.body["interactive"]["type"] == "button" else list_reply
        calls = await member.send(build(member.wa_id, data, title,
                                        at=member.harness.clock.now()))
        return "\n".join(c.text for c in calls)
    raise AssertionError(f"no button {data!r} was sent to the member")


async def wa_register(member: WaMember, who: dict[str, str]) -> str:
    """Link the member's chat (their own WhatsApp number) the way a member does it; the
    bot's last answer (the link confirmed, the alerts offered)."""
    await member.say("halo")
    await press_data(member, "go:register")
    await press_data(member, "reg:agree")
    for answer in (who["nik"], who["kpj"], who["birth"]):
        await member.say(answer)
    await press_data(member, CONTACT_OWN)
    return await member.say(member.harness.codes()[-1])


@dataclass(frozen=True)
class Message:
    """One message as the member sees it: its text and its buttons' engine data."""

    text: str
    buttons: list[str]


def telegram_messages(fake: FakeBotApi, chat_id: int, since: int = 0) -> list[Message]:
    """The messages the bot sent the chat (accepted ``sendMessage`` calls) among the fake's
    calls from index ``since`` on, each with the engine data of its inline buttons."""
    found: list[Message] = []
    for record in fake.calls()[since:]:
        if record.ok and record.method == "sendMessage" and record.targets(chat_id):
            markup = record.params.get("reply_markup")
            rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
            found.append(Message(str(record.params["text"]), [
                str(key["callback_data"])[1:].rpartition("|")[0]
                for row in rows for key in row if "callback_data" in key]))
    return found

