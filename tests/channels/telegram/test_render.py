"""Replies as Bot API calls, against the fake Bot API server with the real aiogram client."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError

from app.metrics import Metrics
from channels.telegram.chats import ChatView
from channels.telegram.keyboards import verify
from channels.telegram.render import MAX_MESSAGE, TelegramRenderer
from channels.telegram.throttle import SendThrottle
from flows.types import Button, Reply, SayKind
from tests.e2e.harness import FAST
from tests.fakes.bot_api import FakeBotApi

SECRET = b"render-secret"
CHAT = 77
MENU = ((Button("Cek Saldo", "go:check_balance"), Button("Menu", "go:menu")),)
CONTACT = Reply("Bagikan nomor HP", ((Button("Bagikan nomor HP saya", "contact"),),),
                SayKind.ASK_CONTACT)


@pytest.fixture
def renderer(fake_bot: Bot) -> TelegramRenderer:
    return TelegramRenderer(fake_bot, SendThrottle(**FAST), Metrics(), SECRET)


def _methods(fake: FakeBotApi) -> list[str]:
    return [c.method for c in fake.calls()]


async def test_buttons_become_a_signed_inline_keyboard(fake: FakeBotApi,
                                                       renderer: TelegramRenderer) -> None:
    await renderer.deliver(CHAT, [Reply("Apa yang ingin Anda lakukan?", MENU)], ChatView())
    markup = fake.last_markup(CHAT)
    assert markup is not None
    keys = markup["inline_keyboard"][0]
    assert [k["text"] for k in keys] == ["Cek Saldo", "Menu"]
    assert [verify(SECRET, CHAT, k["callback_data"]) for k in keys] == ["go:check_balance",
                                                                         "go:menu"]


async def test_the_contact_keyboard_stays_until_the_next_plain_message(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    view = ChatView()
    await renderer.deliver(CHAT, [Reply("Nomor itu tidak valid."), CONTACT], view)
    assert "remove_keyboard" not in str(fake.calls("sendMessage")[0].params)  # asked again
    assert fake.last_markup(CHAT) == {"keyboard": [[{"text": "Bagikan nomor HP saya",
                                                     "request_contact": True}]],
                                      "resize_keyboard": True, "one_time_keyboard": True}
    assert view.contact_keyboard
    await renderer.deliver(CHAT, [Reply("Kode terkirim.", MENU)], view)
    assert view.contact_keyboard  # a message with inline buttons cannot remove it
    await renderer.deliver(CHAT, [Reply("Berhasil."), Reply("Menu", MENU)], view)
    assert fake.calls("sendMessage")[-2].params["reply_markup"] == {"remove_keyboard": True}
    assert not view.contact_keyboard
    await renderer.deliver(CHAT, [Reply("Lagi.")], view)
    assert "reply_markup" not in fake.calls("sendMessage")[-1].params


async def test_a_message_holding_a_nik_is_deleted_before_the_note(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    update = fake.message_update(CHAT, "3171014501900001")
    incoming = update["message"]["message_id"]
    replies = [Reply("Pesan berisi NIK sudah dihapus.", kind=SayKind.DELETE_MEMBER_MESSAGE),
               Reply("Sekarang ketik KPJ.")]
    await renderer.deliver(CHAT, replies, ChatView(), incoming=incoming)
    assert _methods(fake) == ["deleteMessage", "sendMessage", "sendMessage"]
    assert fake.calls("deleteMessage")[0].params == {"chat_id": CHAT, "message_id": incoming}
    assert fake.sent_to(CHAT) == ["Pesan berisi NIK sudah dihapus.", "Sekarang ketik KPJ."]


async def test_a_message_that_cannot_be_deleted_still_gets_the_note(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    note = Reply("Pesan berisi kode sudah dihapus.", kind=SayKind.DELETE_MEMBER_MESSAGE)
    await renderer.deliver(CHAT, [note], ChatView(), incoming=999)  # unknown to the fake
    assert [c.status for c in fake.calls("deleteMessage")] == [400]
    assert fake.sent_to(CHAT) == ["Pesan berisi kode sudah dihapus."]


async def test_pagination_edits_the_message_and_sends_the_rest(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    await renderer.deliver(CHAT, [Reply("Halaman 1", MENU)], ChatView())
    page_one = fake.calls("sendMessage")[0].result["message_id"]
    await renderer.deliver(CHAT, [Reply("Halaman 2", MENU), Reply("Catatan")], ChatView(),
                           edit=page_one)
    edit = fake.calls("editMessageText")[0]
    assert edit.params["message_id"] == page_one
    assert edit.params["text"] == "Halaman 2"
    assert "inline_keyboard" in edit.params["reply_markup"]
    assert fake.sent_to(CHAT) == ["Halaman 1", "Halaman 2", "Catatan"]


async def test_an_edit_that_changes_nothing_is_not_an_error(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    await renderer.deliver(CHAT, [Reply("Halaman 1", MENU)], ChatView())
    page_one = fake.calls("sendMessage")[0].result["message_id"]
    await renderer.deliver(CHAT, [Reply("Halaman 1", MENU)], ChatView(), edit=page_one)
    assert [c.status for c in fake.calls("editMessageText")] == [400]
    assert len(fake.calls("sendMessage")) == 1


async def test_a_message_that_cannot_be_edited_is_sent_anew(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    await renderer.deliver(CHAT, [Reply("Halaman 2", MENU)], ChatView(), edit=4242)
    assert [c.status for c in fake.calls("editMessageText")] == [400]
    assert fake.sent_to(CHAT) == ["Halaman 2"]


async def test_a_long_text_is_split_and_the_buttons_go_on_the_last_part(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    text = "\n".join(f"baris {i:05d} " + "x" * 90 for i in range(100))
    assert len(text) > MAX_MESSAGE
    await renderer.deliver(CHAT, [Reply(text, MENU)], ChatView())
    sent = fake.calls("sendMessage")
    assert len(sent) == 3
    assert "\n".join(c.params["text"] for c in sent) == text
    assert all(len(c.params["text"]) <= MAX_MESSAGE for c in sent)
    assert ["reply_markup" in c.params for c in sent] == [False, False, True]


async def test_an_empty_reply_is_not_sent(fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    await renderer.deliver(CHAT, [Reply(""), Reply("  "), Reply("isi")], ChatView())
    assert fake.sent_to(CHAT) == ["isi"]


async def test_a_blocked_chat_raises_at_the_first_message(
        fake: FakeBotApi, renderer: TelegramRenderer) -> None:
    fake.block(CHAT)
    with pytest.raises(TelegramForbiddenError):
        await renderer.deliver(CHAT, [Reply("satu"), Reply("dua")], ChatView())
    assert len(fake.calls("sendMessage")) == 1


async def test_replies_are_counted(fake_bot: Bot) -> None:
    metrics = Metrics()
    renderer = TelegramRenderer(fake_bot, SendThrottle(**FAST), metrics, SECRET)
    await renderer.deliver(CHAT, [Reply("satu"), Reply("dua", MENU)], ChatView())
    assert metrics.value("bot_replies_total", channel="telegram") == 2.0
