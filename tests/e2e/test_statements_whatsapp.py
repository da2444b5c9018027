"""Statements and charts end to end on WhatsApp: the channel uploads the files to the fake
Graph API (``/media``) and sends document and image messages, the buttons following; the PDF
verifies and the chart decodes. The chat is linked directly (registration has its own tests).

The catalog is not strict: the new texts reach the catalogs with this change."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from app.compose import build_engine, build_ports, inbox_for, open_database
from app.documents import PooledDocumentMaker, statement_key
from app.metrics import Metrics
from app.otp_delivery import OutboxOtpSender
from app.web import create_web_app
from channels.console.desk import ConsoleDesk
from channels.whatsapp.channel import WhatsAppChannel
from channels.whatsapp.config import WhatsAppConfig
from channels.whatsapp.graph import GraphClient
from channels.whatsapp.web import WhatsAppOutbox, add_whatsapp_routes
from flows.i18n import Catalog
from flows.types import SessionKey
from statements.signing import verify_pdf
from storage.accounts import SqlAccountStore
from storage.sessions import MemorySessionStore
from storage.statements import SqlStatementIssueStore
from storage.tickets import SqlTicketStore
from support.desk import DeskService
from tests.e2e.wa_harness import (
    APP_SECRET,
    QUICK_RETRIES,
    SITI_WA,
    TEMPLATE,
    VERIFY_TOKEN,
    WaHarness,
    fast_limiter,
)
from tests.fakes.graph_api import FakeGraphApi
from tests.flows.conftest import ALWAYS, SECRET, SITI, ManualClock


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi() as server:
        yield server


@pytest.fixture
async def wa(tmp_path: Path, graph: FakeGraphApi) -> AsyncIterator[WaHarness]:
    """One bot process as ``wa_harness`` builds it, with documents made and recorded."""
    graph.known_reads_only = True
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store, metrics, clock = MemorySessionStore(), Metrics(), ManualClock()
    outbox, desk_lines = tmp_path / "outbox.jsonl", list[str]()
    tickets, accounts = SqlTicketStore(database), SqlAccountStore(database, SECRET)
    catalog = Catalog()
    maker = PooledDocumentMaker(secret=SECRET, verify_url="https://bot.example/verify",
                                  catalog=catalog)
    ports = build_ports(kv=store, database=database, accounts=accounts, secret=SECRET,
                        otp_sender=OutboxOtpSender(outbox), clock=clock, tickets=tickets,
                        desk=ConsoleDesk(desk_lines.append), hours=ALWAYS, documents=maker,
                        statements=SqlStatementIssueStore(database, SECRET))
    engine = build_engine(store, ports, catalog=catalog, strict=True)
    config = WhatsAppConfig(token=graph.token, phone_number_id=graph.phone_number_id,
                            verify_token=VERIFY_TOKEN, app_secret=APP_SECRET,
                            api_base=graph.api_base, template_name=TEMPLATE,
                            template_languages=("id", "en_US"))
    client_graph = GraphClient(token=config.token, phone_number_id=config.phone_number_id,
                               api_base=config.api_base)
    channel = WhatsAppChannel(config, graph=client_graph, serve=engine.serve, sessions=store,
                              ports=ports, metrics=metrics, catalog=catalog,
                              limiter=fast_limiter(), ttl_for=engine.ttl_for,
                              inbox=inbox_for(store, "whatsapp"), retry_delays=QUICK_RETRIES)
    desk = DeskService(engine=engine, tickets=tickets, outbox=WhatsAppOutbox(channel),
                       clock=clock)
    app = create_web_app(metrics=metrics, checks={})
    add_whatsapp_routes(app, channel)
    server = TestServer(app, host="127.0.0.1")
    client: TestClient[web.Request, web.Application] = TestClient(server)
    await client.start_server()
    try:
        yield WaHarness(graph, channel, engine, store, accounts, tickets, metrics, outbox,
                        clock, client, desk, desk_lines, ports)
    finally:
        await client.close()
        await channel.close()
        maker.close()
        await database.dispose()


async def linked(wa: WaHarness) -> None:
    await wa.accounts.link(SessionKey("whatsapp", SITI_WA), SITI["kpj"], wa.clock.now())


def title_of(wa: WaHarness, data: str) -> str:
    """The title the member sees on the newest button sending ``data`` (in their language)."""
    title = next((t for ident, t in wa.graph.last_choices(SITI_WA) if ident == data), None)
    assert title is not None, f"no button {data!r}"
    return title


async def test_a_statement_arrives_as_a_document_that_verifies(wa: WaHarness) -> None:
    await linked(wa)
    siti = wa.member()
    await siti.say("saldo")
    await siti.press(title_of(wa, "bal:statement"))
    await siti.press(title_of(wa, "stmt:last12"))
    files = wa.graph.files(SITI_WA)
    assert [(f.type, f.mime) for f in files] == [("document", "application/pdf")]
    verdict = verify_pdf(files[0].content, statement_key(SECRET))
    assert verdict.genuine and verdict.code is not None
    assert verdict.code in files[0].caption
    assert files[0].filename == "statement-2025-11-2026-10.pdf"


async def test_the_chart_arrives_as_an_image_and_its_buttons_follow(wa: WaHarness) -> None:
    await linked(wa)
    siti = wa.member()
    await siti.say("saldo")
    await siti.press(title_of(wa, "bal:chart"))
    files = wa.graph.files(SITI_WA)
    assert [(f.type, f.mime) for f in files] == [("image", "image/png")]
    with Image.open(io.BytesIO(files[0].content)) as image:
        assert image.format == "PNG"
    assert title_of(wa, "chart:project")
