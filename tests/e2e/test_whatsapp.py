"""WhatsApp end to end: signed notifications in Meta's format posted to the real web app, the
real engine on the embedded backends, and pywa's client sending to the fake Graph API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis.asyncio

from channels.whatsapp.inbound import SIGNATURE_HEADER, sign
from channels.whatsapp.web import WHATSAPP_PATH
from flows.types import EventKind, SessionKey
from storage.sessions import MemorySessionStore, RedisSessionStore, redis_store_from_url
from support.desk import Result
from tests.e2e.wa_harness import APP_SECRET, SITI_WA, TEMPLATE, WaHarness, WaMember, wa_harness
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.graph_webhooks import fixture, status_update, text_message

SITI = {"nik": "3171014501900001", "kpj": "12345678901", "birth": "05-01-1990",
        "phone": "081234567890"}
HOUR = 3600.0


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi() as server:
        yield server


@pytest.fixture
async def wa(tmp_path: Path, graph: FakeGraphApi) -> AsyncIterator[WaHarness]:
    async with wa_harness(tmp_path, graph=graph) as harness:
        yield harness


async def reach_phone_step(siti: WaMember) -> str:
    await siti.say("halo")
    await siti.press("Daftar / Hubungkan")
    await siti.press("Saya setuju")
    for answer in (SITI["nik"], SITI["kpj"]):
        await siti.say(answer)
    return await siti.say(SITI["birth"])


def last_code_to(wa: WaHarness) -> str:
    return str(json.loads(wa.outbox.read_text().splitlines()[-1])["to"])


# --- the whole conversation -----------------------------------------------------------------


async def test_registration_otp_and_balance_over_whatsapp(wa: WaHarness) -> None:
    siti = wa.member()
    assert "Apa yang ingin Anda lakukan?" in await siti.say("halo")
    assert "Daftar / Hubungkan" in siti.titles()  # 6 choices: a list message
    notice = await siti.press("Daftar / Hubungkan")
    assert "UU PDP" in notice
    assert siti.titles() == ["Saya setuju", "Tidak, terima kasih"]
    assert "NIK" in await siti.press("Saya setuju")

    after_nik = await siti.say(SITI["nik"])
    assert "mohon hapus pesan" in after_nik  # WhatsApp cannot delete it for the member
    assert "Saya telah menghapus" not in after_nik and "KPJ" in after_nik
    await siti.say(SITI["kpj"])
    phone_step = await siti.say(SITI["birth"])
    assert "Gunakan nomor WhatsApp ini (0812****7890)?" in phone_step
    assert siti.titles() == ["Ya, gunakan", "Nomor lain"]

    assert "0812****7890" in await siti.press("Ya, gunakan")
    key, contact = wa.handled[-1]
    assert key == SessionKey("whatsapp", SITI_WA)
    assert (contact.kind, contact.phone, contact.contact_is_own) == (
        EventKind.CONTACT, "+6281234567890", True)
    assert last_code_to(wa) == "+6281234567890"  # the number on file at BPJS

    linked = await siti.say(wa.codes()[-1])
    assert "123*****901" in linked
    balance = await siti.press("Cek Saldo")
    assert "Saldo JHT" in balance and "Total: Rp" in balance
    assert siti.titles() == ["Riwayat Iuran", "Perbarui", "Menu Utama"]
    assert "Iuran KPJ 123*****901" in await siti.press("Riwayat Iuran")
    assert all(call.ok for call in wa.graph.calls)
    assert await wa.metric("bot_updates_total", channel="whatsapp") == len(wa.handled)


async def test_another_number_is_typed_instead(wa: WaHarness) -> None:
    siti = wa.member()
    await reach_phone_step(siti)
    handled = len(wa.handled)
    assert "Silakan ketik nomor HP Anda" in await siti.press("Nomor lain")
    assert len(wa.handled) == handled  # the channel answered that itself
    answer = await siti.say("0857 1111 2222")
    assert "Kode verifikasi 6 digit" in answer and "berbeda" in answer
    assert last_code_to(wa) == "+6281234567890"  # never to the number just typed


async def test_english_member_gets_english_channel_words(wa: WaHarness) -> None:
    siti = wa.member()
    assert "English" in await siti.say("/bahasa en")
    await siti.press("Register / link")
    await siti.press("I agree")
    assert "please delete the message you just sent" in await siti.say(SITI["nik"])
    await siti.say(SITI["kpj"])
    assert "Use this WhatsApp number" in await siti.say(SITI["birth"])
    assert siti.titles() == ["Yes, use this number", "Use another number"]
    menu = [c for c in wa.graph.sent(SITI_WA) if c.type == "interactive"
            and c.body["interactive"]["type"] == "list"][-1]
    assert menu.body["interactive"]["action"]["button"] == "Choose"


async def test_template_quick_reply_and_list_reply_fixtures_are_buttons(wa: WaHarness) -> None:
    wa.graph.member_wrote(SITI_WA)
    quick = fixture("quick_reply_button")  # payload "go:menu"
    assert await wa.post(quick) == 200
    assert wa.handled[-1][1].kind is EventKind.BUTTON and wa.handled[-1][1].data == "go:menu"
    listed = fixture("interactive_list_reply")  # row "go:check_balance"
    assert await wa.post(listed) == 200
    assert wa.handled[-1][1].data == "go:check_balance"
    # Not linked yet: the lone "Daftar / Hubungkan" (18 characters) is a reply button.
    prompt = wa.graph.sent(SITI_WA)[-2]  # then the main menu
    assert prompt.body["interactive"]["type"] == "button"
    assert prompt.choices == [("go:register", "Daftar / Hubungkan")]


async def test_media_and_contact_cards_are_answered(wa: WaHarness) -> None:
    siti = wa.member()
    await reach_phone_step(siti)
    card = fixture("contacts_message")  # Budi's card, sent by Siti
    answer = "\n".join(c.text for c in await siti.send(card))
    assert "nomor HP Anda sendiri" in answer
    assert wa.handled[-1][1].contact_is_own is False
    image = "\n".join(c.text for c in await siti.send(fixture("image_message")))
    assert image  # never silence


# --- the webhook's guards -------------------------------------------------------------------


async def test_verification_handshake(wa: WaHarness) -> None:
    params = fixture("verification")
    response = await wa.client.get(WHATSAPP_PATH, params=params)
    assert response.status == 200
    assert await response.text() == "1158201444"
    assert response.content_type == "text/plain"
    for wrong in ({**params, "hub.verify_token": "meatyhamhocK"},
                  {**params, "hub.mode": "unsubscribe"}, {"hub.challenge": "1"}):
        response = await wa.client.get(WHATSAPP_PATH, params=wrong)
        assert response.status == 403
        assert "1158201444" not in await response.text()


async def test_forged_or_missing_signature_is_refused_and_nothing_handled(
        wa: WaHarness) -> None:
    body = json.dumps(text_message(SITI_WA, "cek saldo")).encode()
    forged = {SIGNATURE_HEADER: sign("not-the-app-secret", body)}
    tampered = {SIGNATURE_HEADER: sign(APP_SECRET, body + b" ")}
    for headers in (forged, tampered, {}, {SIGNATURE_HEADER: "sha256="},
                    {SIGNATURE_HEADER: sign(APP_SECRET, body).removeprefix("sha256=")}):
        assert await wa.post({}, body=body, headers=headers) == 401
    assert wa.handled == []
    assert wa.graph.calls == []
    assert await wa.metric("bot_updates_total", channel="whatsapp") == 0


async def test_malformed_body_is_400(wa: WaHarness) -> None:
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        headers = {SIGNATURE_HEADER: sign(APP_SECRET, body), "Content-Type": "application/json"}
        assert await wa.post({}, body=body, headers=headers) == 400
    assert wa.handled == []


async def test_duplicate_delivery_is_answered_once(wa: WaHarness) -> None:
    payload = text_message(SITI_WA, "halo", at=wa.clock.now())
    wa.graph.member_wrote(SITI_WA)
    assert await wa.post(payload) == 200
    answers = len(wa.graph.sent(SITI_WA))
    assert await wa.post(payload) == 200
    statuses = await asyncio.gather(wa.post(payload), wa.post(payload))
    assert list(statuses) == [200, 200]
    assert len(wa.handled) == 1
    assert len(wa.graph.sent(SITI_WA)) == answers
    assert await wa.metric("bot_duplicates_total") == 3


async def test_duplicate_delivery_to_another_process_is_dropped(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    shared = MemorySessionStore()  # the store two serve processes share (Redis in production)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    async with wa_harness(tmp_path / "a", graph=graph, store=shared, database_url=url) as one, \
            wa_harness(tmp_path / "b", graph=graph, store=shared, database_url=url) as two:
        payload = text_message(SITI_WA, "halo", at=one.clock.now())
        graph.member_wrote(SITI_WA)
        assert await one.post(payload) == 200
        assert await two.post(payload) == 200
        assert len(one.handled) + len(two.handled) == 1


async def test_two_processes_on_redis_answer_a_message_once_and_in_order(
        tmp_path: Path, graph: FakeGraphApi, redis_url: str, unique_prefix: str) -> None:
    stores = [redis_store_from_url(redis_url, prefix=unique_prefix) for _ in range(2)]
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    try:
        async with wa_harness(tmp_path / "a", graph=graph, store=stores[0],
                              database_url=url) as one, \
                wa_harness(tmp_path / "b", graph=graph, store=stores[1],
                           database_url=url) as two:
            graph.member_wrote(SITI_WA)
            first = text_message(SITI_WA, "halo", at=one.clock.now())
            second = text_message(SITI_WA, "/faq", at=one.clock.now())
            await asyncio.gather(one.post(first), two.post(first))
            await asyncio.gather(one.post(second), two.post(second))
            assert len(one.handled) + len(two.handled) == 2
            texts = graph.texts(SITI_WA)
            assert texts[0].startswith("Halo!") and texts[-1] == "Silakan pilih topik:"
    finally:
        for store in stores:
            await store.aclose()


async def test_statuses_are_counted_and_a_failure_logged_without_the_number(
        wa: WaHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for status in ("sent", "delivered", "read", "failed"):
        assert await wa.post(status_update(status)) == 200
    for status in ("sent", "delivered", "read", "failed"):
        assert await wa.metric("bot_whatsapp_statuses_total", status=status) == 1
    assert await wa.metric("bot_whatsapp_failures_total", code="131047") == 1
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failed and "131_047" in failed[0] and "Re-engagement" in failed[0]
    assert not any(SITI_WA in r.getMessage() for r in caplog.records)
    assert wa.handled == []
    metrics = await (await wa.client.get("/metrics")).text()
    assert 'bot_whatsapp_statuses_total{status="failed"} 1.0' in metrics


# --- sending ----------------------------------------------------------------------------------


async def test_rate_limits_back_off_and_nothing_is_dropped(wa: WaHarness) -> None:
    siti = wa.member()
    wa.graph.fail(130429, times=2)
    wa.graph.fail(131056, times=2, to=SITI_WA)
    await siti.say("halo")
    refused = [c.error or 0 for c in wa.graph.calls if not c.ok]
    assert sorted(refused) == [130429, 130429, 131056, 131056]
    texts = wa.graph.texts(SITI_WA)
    assert texts[0].startswith("Halo!") and texts[-1] == "Apa yang ingin Anda lakukan?"
    assert await wa.metric("bot_whatsapp_failures_total", code="130429") == 0  # all retried


async def test_many_messages_to_many_members_keep_each_members_order(wa: WaHarness) -> None:
    members = [f"62812000000{n:02d}" for n in range(12)]
    for number in members:
        wa.graph.member_wrote(number)
    wa.graph.fail(131056, times=3, to=members[3])
    payloads = [text_message(n, text, at=wa.clock.now())
                for text in ("halo", "bantuan", "/faq") for n in members]
    await asyncio.gather(*(wa.post(p) for p in payloads))
    for number in members:
        received = [k for k, _ in wa.handled if k.chat_id == number]
        assert len(received) == 3
        texts = wa.graph.texts(number)
        assert texts[0].startswith("Halo!")  # "halo" answered first, whatever the retries
        assert texts[-1] == "Silakan pilih topik:"


# --- the 24-hour window and the agent desk ------------------------------------------------------


async def open_ticket(wa: WaHarness, siti: WaMember) -> int:
    await siti.say("/petugas")
    await siti.press("Ya, hubungkan")
    ticket = await wa.tickets.active_for(SessionKey("whatsapp", siti.wa_id))
    assert ticket is not None and wa.desk_lines, "the desk received the ticket"
    return ticket.id


async def test_agent_answer_inside_the_window_is_free_text(wa: WaHarness) -> None:
    siti = wa.member()
    ticket = await open_ticket(wa, siti)
    assert await wa.desk.reply(ticket, "Rina", "Halo Bu Siti, saya bantu cek.") is Result.DONE
    [answer] = siti.new_messages()
    assert answer.type == "text" and "saya bantu cek" in answer.text
    relayed = await siti.say("terima kasih")
    assert relayed == "" and any("terima kasih" in line for line in wa.desk_lines)


async def test_agent_answer_outside_the_window_goes_as_the_template(wa: WaHarness) -> None:
    siti = wa.member()
    ticket = await open_ticket(wa, siti)
    wa.clock.advance(25 * HOUR)
    wa.graph.close_window(SITI_WA)
    assert await wa.desk.reply(ticket, "Rina", "Saldo Anda sudah\ndiperbarui.") is Result.DONE
    last = wa.graph.sent(SITI_WA)[-1]
    assert last.type == "template"
    assert last.body["template"]["name"] == TEMPLATE
    assert last.body["template"]["language"]["code"] == "id"
    assert "\n" not in last.text and "Saldo Anda sudah diperbarui." in last.text
    assert not [c for c in wa.graph.calls if c.error == 131047]  # no free text was tried
    assert await wa.metric("bot_whatsapp_templates_total") == 1

    assert await wa.desk.close(ticket, "Rina") is Result.DONE  # asks for a 1-5 rating
    rating = wa.graph.sent(SITI_WA)[-1]
    assert rating.type == "template" and "1 = 1" in rating.text and "5 = 5" in rating.text
    assert "Terima kasih atas penilaian Anda" in await siti.say("5")
    rated = await wa.tickets.get(ticket)  # the engine read the typed "5" as the fifth button
    assert rated is not None and rated.rating == 5


async def test_window_closed_at_meta_sends_the_template_after_all(wa: WaHarness) -> None:
    siti = wa.member()
    ticket = await open_ticket(wa, siti)
    wa.graph.close_window(SITI_WA)  # Meta's clock says more than 24 hours passed
    assert await wa.desk.reply(ticket, "Rina", "Ada kabar baru.") is Result.DONE
    assert [c.error for c in wa.graph.calls if not c.ok] == [131047]
    assert wa.graph.sent(SITI_WA)[-1].type == "template"


async def test_without_a_template_a_late_answer_reports_unreachable(
        tmp_path: Path, graph: FakeGraphApi) -> None:
    async with wa_harness(tmp_path, graph=graph, template="") as wa:
        siti = wa.member()
        ticket = await open_ticket(wa, siti)
        wa.clock.advance(25 * HOUR)
        sent = len(graph.calls)
        assert await wa.desk.reply(ticket, "Rina", "Halo") is Result.UNREACHABLE
        assert len(graph.calls) == sent  # nothing Meta would refuse was sent
        assert await wa.metric("bot_whatsapp_failures_total", code="no_template") == 1


# --- the window judged from each message's own timestamp; failed statuses acted on ---------------


async def test_a_message_delivered_a_day_late_is_answered_with_the_template(
        wa: WaHarness) -> None:
    written = wa.clock.now() - timedelta(hours=25)  # Meta retries after an outage
    wa.graph.close_window(SITI_WA)  # Meta's window closed 24 hours after it was written
    assert await wa.post(text_message(SITI_WA, "halo", at=written)) == 200
    [answer] = wa.graph.sent(SITI_WA)
    assert answer.type == "template" and "Apa yang ingin Anda lakukan?" in answer.text
    assert not [c for c in wa.graph.calls if not c.ok]  # no free text was tried
    assert await wa.metric("bot_whatsapp_templates_total") == 1


async def test_a_late_message_after_a_newer_one_is_answered_as_free_text(wa: WaHarness) -> None:
    siti = wa.member()
    await siti.say("halo")  # written now: the window is open
    late = text_message(SITI_WA, "/faq", at=wa.clock.now() - timedelta(hours=25))
    answer = await siti.send(late)
    assert [c.type for c in answer] == ["interactive"] and answer[0].text.startswith("Silakan")


async def test_a_failed_reply_outside_the_window_is_resent_as_the_template(
        wa: WaHarness) -> None:
    siti = wa.member()
    await siti.say("/faq")
    topics = wa.graph.sent(SITI_WA)[-1]
    wa.clock.advance(25 * HOUR)  # the status arrives once the window has closed
    assert await wa.post(status_update("failed", topics.message_id, code=131047)) == 200
    assert await wa.post(status_update("failed", topics.message_id, code=131047)) == 200
    [again] = siti.new_messages()  # once, however often Meta reports it
    assert again.type == "template" and again.body["template"]["name"] == TEMPLATE
    assert "Silakan pilih topik:" in again.text and "1 = Klaim JHT" in again.text
    assert await wa.metric("bot_whatsapp_failed_replies_total", action="template") == 1
    assert await wa.metric("bot_whatsapp_failed_replies_total", action="recorded") == 1


async def test_a_failed_reply_inside_the_window_is_recorded_without_personal_data(
        wa: WaHarness, caplog: pytest.LogCaptureFixture) -> None:
    siti = wa.member()
    await siti.say("halo")
    sent = wa.graph.sent(SITI_WA)
    assert await wa.post(status_update("failed", sent[-1].message_id, code=131026)) == 200
    assert siti.new_messages() == []  # nothing resent: the member cannot be reached now
    assert await wa.metric("bot_whatsapp_failed_replies_total", action="recorded") == 1
    assert await wa.metric("bot_whatsapp_failures_total", code="131026") == 1
    logged = [r.getMessage() for r in caplog.records if "131_026" in r.getMessage()]
    assert logged and "recorded" in logged[0]
    assert not any(SITI_WA in r.getMessage() or sent[-1].message_id in r.getMessage()
                   for r in caplog.records)


# --- typed labels and numbers, read as the presses they stand for --------------------------------


async def test_typed_labels_press_the_buttons_they_name(wa: WaHarness) -> None:
    siti = wa.member()
    await siti.say("halo")
    assert "Silakan pilih topik:" in await siti.say("Pertanyaan Umum")
    await reach_phone_step(siti)
    assert "0812****7890" in await siti.say("Ya, gunakan")
    contact = wa.handled[-1][1]
    assert (contact.kind, contact.phone, contact.contact_is_own) == (
        EventKind.CONTACT, "+6281234567890", True)
    assert "123*****901" in await siti.say(wa.codes()[-1])
    first = await siti.say("Riwayat Iuran")
    assert "Lebih lama ▶" in siti.titles()
    older = await siti.say("Lebih lama ▶")
    assert "halaman 2 dari" in older and older != first


async def test_typed_other_number_is_answered_by_the_channel(wa: WaHarness) -> None:
    siti = wa.member()
    await reach_phone_step(siti)
    handled = len(wa.handled)
    assert "Silakan ketik nomor HP Anda" in await siti.say("nomor lain")
    assert len(wa.handled) == handled


async def test_typed_english_labels_of_the_phone_confirmation(wa: WaHarness) -> None:
    siti = wa.member()
    await siti.say("/bahasa en")
    await siti.press("Register / link")
    await siti.press("I agree")
    for answer in (SITI["nik"], SITI["kpj"]):
        await siti.say(answer)
    assert "Use this WhatsApp number" in await siti.say(SITI["birth"])
    assert "Please type your mobile number" in await siti.say("Use another number")
    assert "0812****7890" in await siti.say("yes, use this number")
    assert wa.handled[-1][1].kind is EventKind.CONTACT


async def test_typed_numbers_follow_the_order_of_the_buttons_shown(wa: WaHarness) -> None:
    siti = wa.member()
    await siti.say("halo")
    assert siti.titles()[3] == "Pertanyaan Umum"
    assert "Silakan pilih topik:" in await siti.say("4")
    assert siti.titles()[1] == "Program BPJS"
    program = await siti.say("2")
    assert await siti.say("Program BPJS") == program  # the number and the label agree
    menu = await siti.say("/menu")
    assert "Apa yang ingin Anda lakukan?" in menu
    await siti.say(str(siti.titles().index("Hubungi Petugas") + 1))
    assert "Ya, hubungkan" in siti.titles()  # the handoff's question


# --- read receipts and the store's round trips -------------------------------------------------


async def test_each_message_is_marked_as_read_and_a_failed_mark_costs_no_answer(
        wa: WaHarness) -> None:
    siti = wa.member()
    payload = text_message(SITI_WA, "halo", at=wa.clock.now())
    await siti.send(payload)
    message_id = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert wa.graph.reads == [message_id]
    wa.graph.fail_reads()
    answer = await siti.say("/faq")
    assert answer == "Silakan pilih topik:"  # answered all the same
    assert len(wa.graph.refused_reads) == 1 and len(wa.graph.reads) == 1
    assert await wa.metric("bot_whatsapp_read_failures_total") == 1
    await wa.post(payload)  # a repeat is neither answered nor marked again
    assert len(wa.graph.reads) == 1


class CountingRedis(redis.asyncio.Redis):
    """A Redis client that records the name of every command it sends."""

    commands: ClassVar[list[str]] = []

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        CountingRedis.commands.append(str(args[0]))
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


async def test_a_member_message_costs_four_redis_commands(
        tmp_path: Path, graph: FakeGraphApi, redis_url: str, unique_prefix: str) -> None:
    client = CountingRedis.from_url(redis_url, decode_responses=True)
    store = RedisSessionStore(client, prefix=unique_prefix)
    try:
        async with wa_harness(tmp_path, graph=graph, store=store) as wa:
            siti = wa.member()
            await siti.say("halo")  # connects and loads the scripts
            CountingRedis.commands.clear()
            messages = 0
            for typed in ("halo", "/faq", "2", "Menu Utama", "cek saldo", "Bahasa", "apa ya"):
                await siti.say(typed)
                messages += 1
            for title in ("Indonesia",) if "Indonesia" in siti.titles() else ():
                await siti.press(title)
                messages += 1
            await wa.post(text_message(SITI_WA, "halo", at=wa.clock.now(),
                                       message_id="wamid.repeat"))
            await wa.post(text_message(SITI_WA, "halo", at=wa.clock.now(),
                                       message_id="wamid.repeat"))  # a repeat: three commands
            messages += 1  # the first delivery of "wamid.repeat"
            # Two keep it in the inbox and hand the chat's turn back, two lock and save the
            # session; a repeat is kept and handed back, and its lock finds it seen.
            assert len(CountingRedis.commands) == 4 * messages + 3, CountingRedis.commands
            assert set(CountingRedis.commands) == {"EVALSHA"}  # the scripts only
    finally:
        await store.aclose()
