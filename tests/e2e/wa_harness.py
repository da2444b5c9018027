"""The WhatsApp channel wired as ``run_bot.py serve`` wires it, against the fake Graph API.

A :class:`WaHarness` is one bot process: the real engine on the embedded backends, the channel
with pywa's client pointed at the fake Graph API on loopback, and the web app (``/healthz``,
``/metrics`` and the WhatsApp webhook) served by aiohttp's test server. A :class:`WaMember`
chats with it as a WhatsApp user would: every message is a signed notification in Meta's
format posted to the webhook, and buttons are pressed by their titles as the member sees them.
``handled`` records each event the engine answered (a repeated delivery is not answered).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from app.compose import build_engine, build_ports, inbox_for, open_database
from app.metrics import Metrics
from app.otp_delivery import OutboxOtpSender
from app.web import create_web_app
from channels.console.desk import ConsoleDesk
from channels.core import Serve
from channels.inbox import RETRY_DELAYS
from channels.whatsapp.channel import WhatsAppChannel, classify
from channels.whatsapp.config import WhatsAppConfig
from channels.whatsapp.graph import GraphClient
from channels.whatsapp.limiter import OutboundLimiter
from channels.whatsapp.web import WHATSAPP_PATH, WhatsAppOutbox, add_whatsapp_routes
from flows.engine import Deliver, Engine, Served, View
from flows.flow import Ports
from flows.hours import BusinessHours
from flows.i18n import Catalog
from flows.ports import SessionBackend
from flows.types import Event, Reply, SessionKey
from storage.accounts import SqlAccountStore
from storage.sessions import MemorySessionStore
from storage.tickets import SqlTicketStore
from support.desk import DeskService
from tests.fakes.graph_api import FakeGraphApi, GraphCall
from tests.fakes.graph_webhooks import button_reply, list_reply, signed, text_message
from tests.flows.conftest import SECRET, ManualClock

QUICK_RETRIES = tuple(d / 20 for d in RETRY_DELAYS[:2])  # two tries more, then the apology
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "meatyhamhock"  # the fixture's verify token
TEMPLATE = "balas_petugas"
SITI_WA = "6281234567890"  # Siti's own number, as WhatsApp names her


@dataclass
class WaHarness:
    """One bot process serving the WhatsApp webhook."""

    graph: FakeGraphApi
    channel: WhatsAppChannel
    engine: Engine
    store: SessionBackend
    accounts: SqlAccountStore
    tickets: SqlTicketStore
    metrics: Metrics
    outbox: Path
    clock: ManualClock
    client: TestClient[Any, Any]
    desk: DeskService
    desk_lines: list[str]
    ports: Ports
    handled: list[tuple[SessionKey, Event]] = field(default_factory=list)

    async def post(self, payload: dict[str, Any], *, headers: dict[str, str] | None = None,
                   body: bytes | None = None) -> int:
        """Post a notification signed with the app secret (or the given body and headers);
        waits until its messages are handled."""
        for message in _messages(payload):
            self.graph.member_sent(str(message.get("id", "")))
        signed_body, signed_headers = signed(payload, APP_SECRET)
        response = await self.client.post(WHATSAPP_PATH, data=body or signed_body,
                                          headers=signed_headers if headers is None else headers)
        await response.read()
        await self.channel.drain()
        return response.status

    def member(self, wa_id: str = SITI_WA) -> WaMember:
        """A WhatsApp user writing to the business number."""
        return WaMember(self, wa_id)

    def codes(self) -> list[str]:
        """OTP codes written to the outbox, oldest first."""
        if not self.outbox.exists():
            return []
        return [json.loads(line)["code"] for line in self.outbox.read_text().splitlines()]

    async def metric(self, name: str, **labels: str) -> float:
        """One sample as ``/metrics`` serves it."""
        return self.metrics.value(name, **labels)


@dataclass
class WaMember:
    """A WhatsApp user; every call returns what the bot sent back since the previous one."""

    harness: WaHarness
    wa_id: str
    seen: int = 0

    @property
    def graph(self) -> FakeGraphApi:
        return self.harness.graph

    async def send(self, payload: dict[str, Any]) -> list[GraphCall]:
        """Post one notification from this member; the messages the bot sent in answer."""
        self.graph.member_wrote(self.wa_id)
        status = await self.harness.post(payload)
        assert status == 200
        return self.new_messages()

    async def say(self, text: str) -> str:
        """Type a message; the bot's answer as one text."""
        return _joined(await self.send(text_message(self.wa_id, text,
                                                    at=self.harness.clock.now())))

    async def press(self, title: str) -> str:
        """Press the button or pick the list row with this title in the newest interactive
        message; the bot's answer as one text."""
        interactive = [c for c in self.graph.sent(self.wa_id) if c.type == "interactive"]
        assert interactive, "the bot sent no buttons"
        newest = interactive[-1]
        ident = next((i for i, t in newest.choices if t == title), None)
        assert ident is not None, f"no {title!r} among {newest.choices}"
        build = button_reply if newest.body["interactive"]["type"] == "button" else list_reply
        return _joined(await self.send(build(self.wa_id, ident, title,
                                             at=self.harness.clock.now())))

    def new_messages(self) -> list[GraphCall]:
        """Messages the bot sent this member since the last call."""
        sent = self.graph.sent(self.wa_id)
        fresh, self.seen = sent[self.seen:], len(sent)
        return fresh

    def titles(self) -> list[str]:
        """Titles of the buttons or rows of the newest interactive message."""
        return [title for _, title in self.graph.last_choices(self.wa_id)]


def _messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [message for entry in payload.get("entry", []) for change in entry.get("changes", [])
            for message in change.get("value", {}).get("messages", [])]


def _joined(calls: list[GraphCall]) -> str:
    return "\n".join(call.text for call in calls)


def fast_limiter() -> OutboundLimiter:
    """The production limiter with waits short enough for tests."""
    return OutboundLimiter(rate=1000.0, classify=classify, number_delay=0.01,
                           recipient_delay=0.01, max_delay=0.05)


@asynccontextmanager
async def wa_harness(tmp_path: Path, *, graph: FakeGraphApi, template: str = TEMPLATE,
                     languages: tuple[str, ...] = ("id", "en_US"),
                     limiter: OutboundLimiter | None = None,
                     store: SessionBackend | None = None, database_url: str | None = None,
                     clock: ManualClock | None = None,
                     wrap: Callable[[Serve], Serve] | None = None,
                     ) -> AsyncIterator[WaHarness]:
    """One bot process on the embedded backends, its web app on a loopback port. Processes
    sharing ``store`` and ``database_url`` behave like ``serve`` processes behind a load
    balancer; ``wrap`` decorates ``Engine.serve``."""
    graph.known_reads_only = True  # Meta refuses to mark a message it never received
    database = await open_database(database_url or f"sqlite:///{tmp_path / 'bot.db'}")
    store = store if store is not None else MemorySessionStore()
    metrics, clock = Metrics(), clock or ManualClock()
    outbox, desk_lines = tmp_path / "outbox.jsonl", list[str]()
    tickets = SqlTicketStore(database)
    accounts = SqlAccountStore(database, SECRET)
    ports = build_ports(kv=store, database=database, accounts=accounts, secret=SECRET,
                        otp_sender=OutboxOtpSender(outbox), clock=clock, tickets=tickets,
                        desk=ConsoleDesk(desk_lines.append),
                        hours=BusinessHours.parse(days="mon-sun", hours="00:00-23:59"))
    catalog = Catalog(strict=True)
    engine = build_engine(store, ports, catalog=catalog, strict=True)
    handled: list[tuple[SessionKey, Event]] = []

    inner = wrap(engine.serve) if wrap is not None else engine.serve

    async def serve(key: SessionKey, event: Event, deliver: Deliver, *,
                    requeue: bool = False) -> Served:
        async def recorded(replies: list[Reply], view: View) -> None:
            handled.append((key, event))
            await deliver(replies, view)

        return await inner(key, event, recorded, requeue=requeue)

    config = WhatsAppConfig(token=graph.token, phone_number_id=graph.phone_number_id,
                            verify_token=VERIFY_TOKEN, app_secret=APP_SECRET,
                            api_base=graph.api_base, template_name=template,
                            template_languages=languages)
    client_graph = GraphClient(token=config.token, phone_number_id=config.phone_number_id,
                             api_base=config.api_base)
    channel = WhatsAppChannel(config, graph=client_graph, serve=serve, sessions=store,
                              ports=ports, metrics=metrics, catalog=catalog,
                              limiter=limiter or fast_limiter(), ttl_for=engine.ttl_for,
                              inbox=inbox_for(store, "whatsapp"), retry_delays=QUICK_RETRIES)
    desk = DeskService(engine=engine, tickets=tickets, outbox=WhatsAppOutbox(channel),
                       clock=clock)
    app = create_web_app(metrics=metrics, checks={})
    add_whatsapp_routes(app, channel)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield WaHarness(graph, channel, engine, store, accounts, tickets, metrics, outbox, clock,
                        client, desk, desk_lines, ports, handled)
    finally:
        await client.close()
        await channel.close()
        await database.dispose()
