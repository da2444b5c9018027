"""Files over WhatsApp end to end: signed notifications posted to the real web app, the channel
uploading through the Graph API client to the fake Graph API (``/media``), then a document or
image message naming the upload. No flow sends files yet, so ``Engine.serve`` is stood in for
by :class:`Scripted`, which answers every message with the replies a test sets."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from pypdf import PdfReader

from app.compose import build_ports, open_database
from app.metrics import Metrics
from app.otp_delivery import OutboxOtpSender
from app.web import create_web_app
from channels.whatsapp.channel import FILE_NOT_SENT, WhatsAppChannel, classify
from channels.whatsapp.config import WhatsAppConfig
from channels.whatsapp.graph import GraphClient
from channels.whatsapp.limiter import OutboundLimiter
from channels.whatsapp.render import Words
from channels.whatsapp.web import WHATSAPP_PATH, add_whatsapp_routes
from flows.i18n import Catalog
from flows.types import Attachment, Button, Reply, SayKind, Text
from storage.sessions import MemorySessionStore
from tests.fakes.graph_api import FakeGraphApi, GraphCall
from tests.fakes.graph_webhooks import signed, status_update, text_message
from tests.fakes.media_samples import PDF, png
from tests.fakes.scripted import Scripted
from tests.flows.conftest import ManualClock

APP_SECRET = "media-app-secret"
SITI = "6281234567890"
CATALOG = Catalog()
WORDS = Words.of(CATALOG, "id")
CHART_PNG = png(64, 48, (20, 90, 200))
STATEMENT = Attachment("laporan-iuran-2025.pdf", "application/pdf", PDF)
CHART = Attachment("grafik-saldo.png", "image/png", CHART_PNG)
AGAIN = ((Button("Unduh lagi", "stmt:again"), Button("Lihat grafik", "stmt:chart")),)


@dataclass
class Bench:
    graph: FakeGraphApi
    channel: WhatsAppChannel
    scripted: Scripted
    client: TestClient[Any, Any]
    clock: ManualClock
    metrics: Metrics

    async def post(self, payload: dict[str, Any]) -> None:
        body, headers = signed(payload, APP_SECRET)
        response = await self.client.post(WHATSAPP_PATH, data=body, headers=headers)
        assert response.status == 200
        await self.channel.drain()

    async def member_says(self, text: str, *, window: bool = True) -> list[GraphCall]:
        """The member writes (Meta opens their window unless ``window`` is false); the
        messages the bot sent back."""
        before = len(self.graph.sent(SITI))
        if window:
            self.graph.member_wrote(SITI)
        await self.post(text_message(SITI, text, at=self.clock.now()))
        return self.graph.sent(SITI)[before:]


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    database = await open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store, clock, metrics, scripted = MemorySessionStore(), ManualClock(), Metrics(), Scripted()
    ports = build_ports(kv=store, database=database, secret=b"media-e2e", clock=clock,
                        otp_sender=OutboxOtpSender(tmp_path / "outbox.jsonl"))
    async with FakeGraphApi() as graph:
        config = WhatsAppConfig(token=graph.token, phone_number_id=graph.phone_number_id,
                                verify_token="v", app_secret=APP_SECRET,
                                api_base=graph.api_base, template_name="balas_petugas",
                                template_languages=("id", "en_US"))
        limiter = OutboundLimiter(rate=1000.0, classify=classify, number_delay=0.01,
                                  recipient_delay=0.01, max_delay=0.05)
        channel = WhatsAppChannel(config, graph=GraphClient(
            token=graph.token, phone_number_id=graph.phone_number_id, api_base=graph.api_base),
            serve=scripted, sessions=store, ports=ports, metrics=metrics, catalog=CATALOG,
            limiter=limiter)
        app = create_web_app(metrics=metrics, checks={})
        add_whatsapp_routes(app, channel)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            yield Bench(graph, channel, scripted, client, clock, metrics)
        finally:
            await client.close()
            await channel.close()
            await database.dispose()


def _not_sent(locale: str = "id") -> str:
    return CATALOG.render(Text(FILE_NOT_SENT), locale)


async def test_a_statement_arrives_intact_with_its_buttons_after_it(bench: Bench) -> None:
    bench.scripted.replies = [Reply("Laporan iuran 2025", AGAIN, SayKind.DOCUMENT, "id",
                                    STATEMENT)]
    document, buttons = await bench.member_says("laporan")
    assert document.body["document"]["filename"] == "laporan-iuran-2025.pdf"
    assert document.text == "Laporan iuran 2025"
    [received] = bench.graph.files(SITI)
    assert (received.type, received.mime, received.content) == ("document", "application/pdf",
                                                                PDF)
    assert len(PdfReader(io.BytesIO(received.content)).pages) == 1
    assert buttons.type == "interactive" and buttons.text == WORDS.prompt
    assert buttons.choices == [("stmt:again", "Unduh lagi"), ("stmt:chart", "Lihat grafik")]


async def test_a_chart_arrives_as_an_image_that_decodes(bench: Bench) -> None:
    bench.scripted.replies = [Reply("Saldo JHT per tahun", kind=SayKind.PHOTO, locale="id",
                                    attachment=CHART)]
    [image] = await bench.member_says("grafik")
    assert image.type == "image" and image.text == "Saldo JHT per tahun"
    [received] = bench.graph.files(SITI)
    assert received.content == CHART_PNG
    with Image.open(io.BytesIO(received.content)) as picture:
        assert (picture.format, picture.size) == ("PNG", (64, 48))


@pytest.mark.parametrize("locale", ["id", "en"])
async def test_a_refused_upload_is_told_and_the_buttons_still_come(bench: Bench,
                                                                   locale: str) -> None:
    bench.graph.fail_uploads()
    bench.scripted.replies = [Reply("Laporan", AGAIN, SayKind.DOCUMENT, locale, STATEMENT)]
    note, buttons = await bench.member_says("laporan")
    assert note.type == "text" and note.text == _not_sent(locale)
    assert buttons.type == "interactive"
    assert bench.graph.files(SITI) == [] and bench.graph.refused_uploads == 1
    assert bench.metrics.value("bot_errors_total", kind="whatsapp") == 0  # answered, no fault


async def test_a_refused_file_message_is_told(bench: Bench) -> None:
    bench.scripted.replies = [Reply("Grafik", kind=SayKind.PHOTO, attachment=CHART)]
    bench.graph.fail(131053, times=1)  # the image message itself
    [note] = await bench.member_says("grafik")
    assert note.text == _not_sent()


async def test_an_upload_over_the_rate_limit_is_retried(bench: Bench) -> None:
    bench.graph.fail_uploads(130429)
    bench.scripted.replies = [Reply("Laporan", kind=SayKind.DOCUMENT, attachment=STATEMENT)]
    [document] = await bench.member_says("laporan")
    assert document.type == "document" and bench.graph.files(SITI)[0].content == PDF


async def test_outside_the_window_the_template_says_the_file_did_not_come(bench: Bench) -> None:
    bench.scripted.replies = [Reply("Laporan iuran 2025", kind=SayKind.DOCUMENT, locale="id",
                                    attachment=STATEMENT)]
    [template] = await bench.member_says("laporan", window=False)  # Meta says 131047
    assert template.type == "template"
    assert template.text == f"Laporan iuran 2025 — {_not_sent()}"


async def test_a_failed_status_resends_the_turn_as_the_template_without_its_bytes(
        bench: Bench) -> None:
    bench.scripted.replies = [Reply("Laporan iuran 2025", kind=SayKind.DOCUMENT, locale="id",
                                    attachment=STATEMENT)]
    [document] = await bench.member_says("laporan")
    bench.graph.close_window(SITI)
    await bench.post(status_update("failed", document.message_id, code=131047))
    template = bench.graph.sent(SITI)[-1]
    assert template.type == "template"
    assert template.text == f"Laporan iuran 2025 — {_not_sent()}"
