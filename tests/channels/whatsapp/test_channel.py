"""The WhatsApp channel's own duties around the engine: numbered choices typed back, faults
answered, store outages survived, background work awaited at shutdown, the outbox's answers
(under the chat's lock, with its view), no personal data in the logs, and load: a bounded
backlog (503 beyond it), read receipts only for a chat's newest message, and a slow Graph API
that times out without wedging the channel."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.metrics import Metrics
from channels.core import Serve
from channels.whatsapp.channel import WhatsAppChannel
from channels.whatsapp.graph import GraphClient
from channels.whatsapp.web import WHATSAPP_PATH, WhatsAppOutbox, add_whatsapp_routes
from flows.engine import Deliver, Served
from flows.i18n import Catalog
from flows.ports import StoreUnavailable
from flows.types import Event, Reply, SessionKey
from storage.sessions import MemorySessionStore
from tests.channels.whatsapp.test_graph import SlowGraphApi
from tests.e2e.wa_harness import APP_SECRET, SITI_WA, TEMPLATE, wa_harness
from tests.fakes.down_store import DownSessionStore
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.graph_webhooks import signed, text_message
from tests.fakes.held_serve import held

HOUR = 3600.0


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi() as server:
        yield server


async def test_a_typed_number_picks_from_the_last_choices_only(tmp_path: Path,
                                                                graph: FakeGraphApi) -> None:
    async with wa_harness(tmp_path, graph=graph) as wa:
        siti = wa.member()
        await siti.say("/faq")
        assert len(siti.titles()) == 10 and siti.titles()[-1] == "BPJS Kesehatan"
        last = await siti.say("10")
        assert "BPJS Kesehatan" in last and "165" in last  # the tenth topic
        await siti.say("/faq")
        out_of_range = await siti.say("13")  # not a choice: plain text for the engine
        assert "165" not in out_of_range and out_of_range != last


async def test_a_fault_is_answered_with_an_apology_and_logged_without_data(
        tmp_path: Path, graph: FakeGraphApi, caplog: pytest.LogCaptureFixture) -> None:
    def broken(serve: Serve) -> Serve:
        async def wrapped(key: SessionKey, event: Event, deliver: Deliver, *,
                          requeue: bool = False) -> Served:
            raise RuntimeError(f"boom for {key.chat_id}")

        return wrapped

    async with wa_harness(tmp_path, graph=graph, wrap=broken) as wa:
        answer = await wa.member().say("halo")
        assert answer.startswith("Maaf, terjadi gangguan di sistem kami.")
        assert await wa.metric("bot_errors_total", kind="internal") == 1
        assert not any(SITI_WA in r.getMessage() for r in caplog.records)


class FlakyStore(MemorySessionStore):
    """A store whose key-value half is down (the sessions still work)."""

    async def get(self, name: str) -> str | None:
        raise StoreUnavailable(name)

    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        raise StoreUnavailable("get_many")

    async def put(self, name: str, value: str, ttl: float) -> None:
        raise StoreUnavailable(name)

    async def put_if_absent(self, name: str, value: str, ttl: float) -> bool:
        raise StoreUnavailable(name)

    async def delete(self, *names: str) -> None:
        raise StoreUnavailable(names[0])


async def test_a_store_outage_still_gets_an_answer(tmp_path: Path, graph: FakeGraphApi) -> None:
    async with wa_harness(tmp_path, graph=graph, store=FlakyStore()) as wa:
        assert "Apa yang ingin Anda lakukan?" in await wa.member().say("halo")
    async with wa_harness(tmp_path / "down", graph=graph, store=DownSessionStore()) as wa:
        await wa.member().say("halo")  # tried three times, then apologised for
        assert graph.texts(SITI_WA)[-1].startswith("Maaf, layanan sedang sibuk")
        assert await wa.metric("bot_errors_total", kind="requeued") == 2
        assert await wa.metric("bot_errors_total", kind="store") == 1
        assert await wa.metric("bot_updates_total", channel="whatsapp") == 1


async def test_the_webhook_answers_at_once_and_shutdown_awaits_the_work(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    async with wa_harness(tmp_path, graph=graph, wrap=held(release, started)) as wa:
        graph.member_wrote(SITI_WA)
        body, headers = signed(text_message(SITI_WA, "halo", at=wa.clock.now()), APP_SECRET)
        response = await wa.client.post(WHATSAPP_PATH, data=body, headers=headers)
        assert response.status == 200
        await started.wait()
        assert graph.sent(SITI_WA) == []  # answered before the engine finished
        asyncio.get_running_loop().call_later(0.05, release.set)
        await wa.client.close()  # the app's shutdown drains the channel
        assert graph.texts(SITI_WA)[-1] == "Apa yang ingin Anda lakukan?"


async def test_the_outbox_reports_undeliverable_and_refuses_other_channels(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    async with wa_harness(tmp_path, graph=graph) as wa:
        await wa.member().say("halo")
        outbox = WhatsAppOutbox(wa.channel)
        key = SessionKey("whatsapp", SITI_WA)
        assert await outbox.deliver(key, [Reply("Halo lagi")]) is True
        graph.fail(131026, to=SITI_WA)
        assert await outbox.deliver(key, [Reply("Halo lagi")]) is False
        with pytest.raises(ValueError, match="telegram"):
            await outbox.deliver(SessionKey("telegram", "1"), [Reply("x")])


async def test_the_alerts_outbox_sends_its_own_template_outside_the_window(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    graph.templates["contribution_alert"] = {"id", "en_US"}
    async with wa_harness(tmp_path, graph=graph) as wa:
        await wa.member().say("halo")
        key = SessionKey("whatsapp", SITI_WA)
        alerts = WhatsAppOutbox(wa.channel, template="contribution_alert")
        assert await alerts.deliver(key, [Reply("Iuran masuk")]) is True  # inside: free text
        assert graph.sent(SITI_WA)[-1].type != "template"
        wa.clock.advance(25 * HOUR)
        graph.close_window(SITI_WA)
        assert await alerts.deliver(key, [Reply("Iuran masuk")]) is True
        last = graph.sent(SITI_WA)[-1]
        assert last.type == "template" and last.body["template"]["name"] == "contribution_alert"
        assert await WhatsAppOutbox(wa.channel).deliver(key, [Reply("Petugas menjawab")])
        assert graph.sent(SITI_WA)[-1].body["template"]["name"] == TEMPLATE  # replies: theirs


async def test_the_outbox_uses_the_chats_view_and_language(tmp_path: Path,
                                                           graph: FakeGraphApi) -> None:
    async with wa_harness(tmp_path, graph=graph) as wa:
        siti = wa.member()
        await siti.say("/bahasa en")
        outbox = WhatsAppOutbox(wa.channel)
        key = SessionKey("whatsapp", SITI_WA)
        async with wa.store.chat(key) as slot:
            assert slot.session is not None
            assert slot.session.view["locale"] == "en" and "seen" in slot.session.view
        wa.clock.advance(25 * HOUR)  # the window closed: the view says so, no store call else
        graph.close_window(SITI_WA)
        assert await outbox.deliver(key, [Reply("An agent answered.")]) is True
        last = graph.sent(SITI_WA)[-1]
        assert last.type == "template" and last.body["template"]["name"] == TEMPLATE
        assert last.body["template"]["language"]["code"] == "en_US"  # the chat's language
        async with wa.store.chat(key) as slot:  # the view was saved back, the session kept
            assert slot.session is not None and slot.session.locale == "en"
            assert slot.session.view["locale"] == "en"


async def test_a_fault_while_answering_is_apologised_for_in_the_chats_language(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    async with wa_harness(tmp_path, graph=graph) as wa:
        siti = wa.member()
        await siti.say("/bahasa en")
        graph.fail(131009, to=SITI_WA)  # the next reply is refused: not a window problem
        answer = await siti.say("/faq")
        assert answer.startswith("Sorry, something went wrong on our side.")
        assert await wa.metric("bot_errors_total", kind="whatsapp") == 1


async def test_no_number_nik_or_code_reaches_the_logs(tmp_path: Path, graph: FakeGraphApi,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with wa_harness(tmp_path, graph=graph) as wa:
        siti = wa.member()
        await siti.say("/daftar")
        await siti.press("Saya setuju")
        for answer in ("3171014501900001", "12345678901", "05-01-1990"):
            await siti.say(answer)
        await siti.press("Ya, gunakan")
        code = wa.codes()[-1]
        assert "123*****901" in await siti.say(code)
        secrets = (SITI_WA, "81234567890", "3171014501900001", "12345678901", code)
        leaked = [r.getMessage() for r in caplog.records
                  if not r.name.startswith("aiosqlite")  # the driver's SQL, seeding included
                  and any(s in r.getMessage() for s in secrets)]
        assert leaked == []


async def test_the_composition_root_path(tmp_path: Path, graph: FakeGraphApi) -> None:
    """``WhatsAppChannel.create`` and ``add_whatsapp_routes`` on a bare aiohttp app, as
    ``run_bot.py serve`` wires them."""
    async with wa_harness(tmp_path, graph=graph) as wa:
        config = replace(wa.channel.config, rate=5.0)
        channel = WhatsAppChannel.create(config, serve=wa.engine.serve, sessions=wa.store,
                                         ports=wa.ports, metrics=Metrics(),
                                         catalog=Catalog(), ttl_for=wa.engine.ttl_for)
        app = web.Application()
        add_whatsapp_routes(app, channel, path="/hooks/wa")
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            graph.member_wrote(SITI_WA)
            body, headers = signed(text_message(SITI_WA, "halo", at=wa.clock.now()),
                                   APP_SECRET)
            assert (await client.post("/hooks/wa", data=body, headers=headers)).status == 200
            params = {"hub.mode": "subscribe", "hub.verify_token": config.verify_token,
                      "hub.challenge": "42"}
            assert await (await client.get("/hooks/wa", params=params)).text() == "42"
            await channel.drain()
        await channel.close()
        assert graph.texts(SITI_WA)[-1] == "Apa yang ingin Anda lakukan?"


async def test_without_a_template_an_unknown_window_still_tries_free_text(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    async with wa_harness(tmp_path, graph=graph, template="") as wa:
        await wa.member().say("halo")
        key = SessionKey("whatsapp", SITI_WA)
        async with wa.store.chat(key) as slot:
            slot.session = None  # the session expired with the chat's view
        outbox = WhatsAppOutbox(wa.channel)
        assert await outbox.deliver(key, [Reply("Halo lagi")]) is True  # Meta's window is open
        assert graph.texts(SITI_WA)[-1] == "Halo lagi"
        async with wa.store.chat(key) as slot:
            slot.session = None
        graph.close_window(SITI_WA)
        assert await outbox.deliver(key, [Reply("Halo lagi")]) is False
        assert [c.error for c in graph.calls if not c.ok] == [131047]


# --- load -------------------------------------------------------------------------------------


def _message_id(payload: dict[str, Any]) -> str:
    return str(payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"])


async def test_a_full_backlog_is_refused_with_503_and_taken_when_meta_redelivers(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    async with wa_harness(tmp_path, graph=graph, wrap=held(release, started)) as wa:
        wa.channel.config = replace(wa.channel.config, max_backlog=2)
        members = [f"6281100000{n:03d}" for n in range(3)]
        payloads = [text_message(m, "halo", at=wa.clock.now()) for m in members]
        answers = []
        for member, payload in zip(members, payloads, strict=True):
            graph.member_wrote(member)
            graph.member_sent(_message_id(payload))
            body, headers = signed(payload, APP_SECRET)
            response = await wa.client.post(WHATSAPP_PATH, data=body, headers=headers)
            answers.append((response.status, response.headers.get("Retry-After")))
        assert answers == [(200, None), (200, None), (503, "1")]
        assert wa.channel.backlog == 2
        assert await wa.metric("bot_errors_total", kind="overload") == 1
        release.set()
        await wa.channel.drain()
        assert wa.channel.backlog == 0
        assert await wa.post(payloads[2]) == 200  # Meta delivers it again: now taken
        assert all(graph.texts(m)[-1] == "Apa yang ingin Anda lakukan?" for m in members)


async def test_only_the_newest_waiting_message_of_a_chat_is_marked_read(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    async with wa_harness(tmp_path, graph=graph, wrap=held(release, started)) as wa:
        graph.member_wrote(SITI_WA)
        first = text_message(SITI_WA, "halo", at=wa.clock.now())
        second = text_message(SITI_WA, "/faq", at=wa.clock.now())
        for payload in (first, second):
            graph.member_sent(_message_id(payload))
            body, headers = signed(payload, APP_SECRET)
            assert (await wa.client.post(WHATSAPP_PATH, data=body, headers=headers)).status == 200
            await started.wait()  # the first is being served when the second comes
        release.set()
        await wa.channel.drain()
        assert graph.texts(SITI_WA)[-1] == "Silakan pilih topik:"  # both answered, in order
        assert graph.reads == [_message_id(second)]  # its receipt marks the first read too
        await wa.member().say("halo")
        assert len(graph.reads) == 2  # alone again: marked as read after its reply


async def test_a_slow_graph_api_times_out_and_the_channel_answers_afterwards(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.e2e.wa_harness.GraphClient",
                        functools.partial(GraphClient, timeout=0.2, connections=2))
    serving, most = 0, 0

    def counted(serve: Serve) -> Serve:
        async def wrapped(key: SessionKey, event: Event, deliver: Deliver, *,
                          requeue: bool = False) -> Served:
            nonlocal serving, most
            serving += 1
            most = max(most, serving)
            try:
                return await serve(key, event, deliver, requeue=requeue)
            finally:
                serving -= 1

        return wrapped

    async with SlowGraphApi(delay=1.0) as slow, \
            wa_harness(tmp_path, graph=slow, wrap=counted) as wa:
        members = [f"6281200000{n:03d}" for n in range(8)]
        posted = []
        for member in members:
            slow.member_wrote(member)
            body, headers = signed(text_message(member, "halo", at=wa.clock.now()), APP_SECRET)
            posted.append((await wa.client.post(WHATSAPP_PATH, data=body,
                                                headers=headers)).status)
        assert posted == [200] * 8  # taken at once; served two at a time
        await wa.channel.drain()
        assert most == 2  # as many messages at once as the client has connections
        assert await wa.metric("bot_errors_total", kind="whatsapp") == 8  # timed out
        slow.delay = 0.0  # the API is back
        for member in (SITI_WA, members[0]):  # a new member, and one who got no answer
            answer = await wa.member(member).say("halo")
            assert answer.endswith("Apa yang ingin Anda lakukan?")
