"""The Graph API client sending to the fake Graph API on loopback (Meta's JSON, errors, a slow
API that times out and is recovered from), and the channel's settings."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from channels.whatsapp.config import DEFAULT_API_BASE, WhatsAppConfig, parse_languages
from channels.whatsapp.graph import (
    PAIR_RATE_LIMIT,
    RATE_LIMIT,
    REENGAGEMENT,
    ButtonsMessage,
    GraphClient,
    GraphError,
    ListMessage,
    TemplateMessage,
    TextMessage,
)
from tests.fakes.graph_api import FakeGraphApi

TO = "6281234567890"


@dataclass
class SlowGraphApi(FakeGraphApi):
    """The fake Graph API answering every call ``delay`` seconds late; ``in_flight`` and
    ``most_in_flight`` count the calls being answered."""

    delay: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await request.read()  # the whole body first, as Meta would
            await asyncio.sleep(self.delay)
            return await super()._handle(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi() as server:
        server.member_wrote(TO)
        yield server


@pytest.fixture
async def client(graph: FakeGraphApi) -> AsyncIterator[GraphClient]:
    sender = GraphClient(token=graph.token, phone_number_id=graph.phone_number_id,
                       api_base=graph.api_base)
    yield sender
    await sender.close()


async def test_text_buttons_list_and_template_in_metas_format(
        graph: FakeGraphApi, client: GraphClient) -> None:
    ids = [await client.send(TO, TextMessage("halo")),
           await client.send(TO, ButtonsMessage("Lanjut?", (("y", "Ya"), ("n", "Tidak")))),
           await client.send(TO, ListMessage("Menu", "Pilih", "Pilihan",
                                             (("a", "Cek Saldo"), ("b", "FAQ")))),
           await client.send(TO, TemplateMessage("balas_petugas", "id", "Halo"))]
    assert len(set(ids)) == 4 and all(i.startswith("wamid.") for i in ids)
    text, buttons, listed, template = (c.body for c in graph.sent(TO))
    assert text["text"] == {"body": "halo", "preview_url": False}
    assert buttons["interactive"] == {
        "type": "button", "body": {"text": "Lanjut?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Ya"}},
                               {"type": "reply", "reply": {"id": "n", "title": "Tidak"}}]}}
    assert listed["interactive"]["action"] == {
        "button": "Pilih", "sections": [{"title": "Pilihan", "rows": [
            {"id": "a", "title": "Cek Saldo"}, {"id": "b", "title": "FAQ"}]}]}
    assert template["template"] == {
        "name": "balas_petugas", "language": {"code": "id"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Halo"}]}]}
    assert all(c.phone_number_id == graph.phone_number_id for c in graph.calls)
    assert all(c.body["recipient_type"] == "individual" for c in graph.calls)


async def test_api_errors_carry_metas_code(graph: FakeGraphApi, client: GraphClient) -> None:
    for code in (RATE_LIMIT, PAIR_RATE_LIMIT):
        graph.fail(code)
        with pytest.raises(GraphError) as refused:
            await client.send(TO, TextMessage("halo"))
        assert (refused.value.code, refused.value.status) == (code, 400)
    graph.close_window(TO)
    with pytest.raises(GraphError) as outside:
        await client.send(TO, TextMessage("halo"))
    assert outside.value.code == REENGAGEMENT and "Re-engagement" in outside.value.title
    with pytest.raises(GraphError) as too_long:
        await client.send(TO, ButtonsMessage("?", (("x", "A title of 21 chars.."),)))
    assert too_long.value.code == 131009
    with pytest.raises(GraphError) as unknown:
        await client.send(TO, TemplateMessage("not_approved", "id", "x"))
    assert unknown.value.code == 132001


async def test_a_wrong_token_and_an_unreachable_api(graph: FakeGraphApi) -> None:
    wrong = GraphClient(token="nope", phone_number_id=graph.phone_number_id,
                      api_base=graph.api_base)
    with pytest.raises(GraphError) as refused:
        await wrong.send(TO, TextMessage("halo"))
    assert refused.value.code == 190 and refused.value.status == 401
    await wrong.close()
    gone = GraphClient(token=graph.token, phone_number_id=graph.phone_number_id,
                     api_base="http://127.0.0.1:9/v21.0", timeout=1.0)
    with pytest.raises(GraphError) as unreachable:
        await gone.send(TO, TextMessage("halo"))
    assert unreachable.value.code == 0
    await gone.close()


async def test_a_slow_api_times_out_and_frees_its_connections() -> None:
    async with SlowGraphApi(delay=2.0) as slow:
        slow.member_wrote(TO)
        client = GraphClient(token=slow.token, phone_number_id=slow.phone_number_id,
                             api_base=slow.api_base, timeout=0.2, connections=2)
        try:
            started = time.monotonic()
            timed_out = await asyncio.gather(
                *(client.send(TO, TextMessage(f"halo {n}")) for n in range(6)),
                client.mark_read("wamid.x"), return_exceptions=True)
            assert all(isinstance(e, GraphError) and e.code == 0 for e in timed_out)
            assert time.monotonic() - started < 1.5  # waiting for a connection counts too
            assert slow.most_in_flight <= 2  # never more connections than allowed
            slow.delay = 0.0
            ids = await asyncio.gather(*(client.send(TO, TextMessage("lagi")) for _ in range(4)))
            assert len(set(ids)) == 4  # every connection came back: nothing wedged
        finally:
            await client.close()


async def test_the_client_never_logs_requests(graph: FakeGraphApi, client: GraphClient,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await client.send(TO, TextMessage("kode saya 123456"))
    assert not any(TO in r.getMessage() or "123456" in r.getMessage() for r in caplog.records)


# --- settings ---------------------------------------------------------------------------------


def config(**changes: object) -> WhatsAppConfig:
    values: dict[str, object] = {"token": "t", "phone_number_id": "106540352242922",
                                 "verify_token": "v", "app_secret": "s"}
    return WhatsAppConfig(**{**values, **changes})  # type: ignore[arg-type]


def test_settings_defaults_and_template_languages() -> None:
    assert config().api_base == DEFAULT_API_BASE == "https://graph.facebook.com/v21.0"
    assert config().rate == 80.0
    assert config().template_language("id") is None  # no template configured
    chosen = config(template_name="balas_petugas", template_languages=("id", "en_US"))
    assert chosen.template_language("id") == "id"
    assert chosen.template_language("en") == "en_US"
    assert config(template_name="x", template_languages=("id",)).template_language("en") == "id"
    assert parse_languages(" id, en_US ,,") == ("id", "en_US")


@pytest.mark.parametrize(("changes", "message"), [
    ({"token": ""}, "WHATSAPP_TOKEN"),
    ({"app_secret": "", "verify_token": ""}, "WHATSAPP_VERIFY_TOKEN, WHATSAPP_APP_SECRET"),
    ({"phone_number_id": "+62 811"}, "numeric id"),
    ({"rate": 0}, "WHATSAPP_RATE"),
    ({"api_base": "graph.facebook.com"}, "WHATSAPP_API_BASE"),
    ({"template_languages": ("id", "xx_YY")}, "'xx_YY'"),
    ({"template_languages": ("UNKNOWN",)}, "'UNKNOWN'"),
])
def test_bad_settings_name_the_variable(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**changes)


async def test_a_message_is_marked_as_read_as_meta_expects(graph: FakeGraphApi,
                                                           client: GraphClient) -> None:
    graph.known_reads_only = True
    graph.member_sent("wamid.from-siti")
    await client.mark_read("wamid.from-siti")
    assert graph.reads == ["wamid.from-siti"] and graph.calls == []  # not a message sent
    with pytest.raises(GraphError) as unknown:
        await client.mark_read("wamid.never-received")
    assert unknown.value.code == 100
    graph.fail_reads()
    with pytest.raises(GraphError) as failed:
        await client.mark_read("wamid.from-siti")
    assert (failed.value.code, failed.value.status) == (131000, 500)
    assert graph.refused_reads == ["wamid.never-received", "wamid.from-siti"]
