"""A member on Telegram, through the webhook: registering, balance, history, stale buttons."""

from __future__ import annotations

import pytest

from flows.routes import LISTED
from flows.types import SessionKey
from tests.e2e.harness import Harness, Member, register
from tests.fakes.bot_api import FakeBotApi
from tests.flows.conftest import SITI

CHAT = 5551234


@pytest.fixture
async def member(tg: Harness) -> Member:
    await tg.use_webhook()
    return tg.member(CHAT, webhook=True)


def _deleted(fake: FakeBotApi) -> list[int]:
    return [int(c.params["message_id"]) for c in fake.calls("deleteMessage") if c.ok]


async def test_a_member_registers_by_sharing_their_own_contact_and_typing_the_code(
        tg: Harness, member: Member) -> None:
    consent = await member.say("/daftar")
    assert "UU PDP" in consent[0]
    await member.press("reg:agree")
    await member.say(SITI["nik"])
    nik_message = member.last_message_id
    await member.say(SITI["kpj"])
    asked = await member.say(SITI["birth"])
    assert len(asked) == 1 and asked[0].startswith("Hampir selesai.")
    assert "0812-0000-0000" in asked[0] and SITI["phone"] not in asked[0]
    assert tg.fake.last_markup(CHAT) == {
        "keyboard": [[{"text": "Bagikan nomor HP saya", "request_contact": True}]],
        "resize_keyboard": True, "one_time_keyboard": True}

    refused = await member.share_contact("+62 812 3456 7890", own=False)
    assert refused[0] == "Mohon bagikan nomor HP Anda sendiri, bukan kontak orang lain."
    assert tg.codes() == []

    sent = await member.share_contact("+62 812 3456 7890")
    assert sent == ["Kode verifikasi 6 digit sudah dikirim lewat SMS ke 0812****7890. Ketik kode "
                    "tersebut di sini; kode berlaku 5 menit."]
    assert len(tg.codes()) == 1

    done = await member.say(tg.codes()[-1])
    code_message = member.last_message_id
    assert done[0] == "Pesan Anda yang berisi kode sudah saya hapus dari chat ini demi keamanan."
    assert done[1].startswith("Verifikasi berhasil!")
    assert _deleted(tg.fake) == [nik_message, code_message]
    assert await tg.accounts.linked_kpjs(SessionKey("telegram", str(CHAT))) == [SITI["kpj"]]
    assert tg.metrics.value("bot_otp_sent_total", channel="sms") == 1.0
    removed = [c.params["text"] for c in tg.fake.calls("sendMessage")
               if c.params.get("reply_markup") == {"remove_keyboard": True}]
    # The contact keyboard goes away with the first plain reply after it. (The first plain
    # reply to a new chat removes any keyboard too: the bot cannot know one is not up.)
    assert removed == ["Terima kasih, persetujuan Anda telah dicatat.", done[0]]


async def test_the_nik_message_is_deleted_with_a_note(tg: Harness, member: Member) -> None:
    await member.say("/daftar")
    await member.press("reg:agree")
    texts = await member.say(f"NIK saya {SITI['nik']}")
    assert texts[0] == "Pesan Anda yang berisi NIK sudah saya hapus dari chat ini demi keamanan."
    assert _deleted(tg.fake) == [member.last_message_id]


async def test_a_linked_member_checks_the_balance_in_rupiah(tg: Harness,
                                                            member: Member) -> None:
    await register(member, SITI)
    member.new_texts()
    texts = await member.say("cek saldo")
    assert texts[0].startswith("Saldo JHT per 20 November 2026\nKPJ 123*****901")
    assert "• Iuran pemberi kerja: Rp24.434.430" in texts[0]
    assert "Total: Rp45.911.176" in texts[0]  # demo rates 2021-2024; 2025 not configured
    again = await member.press("go:check_balance")
    assert again[0] == texts[0]


async def test_history_pages_by_editing_the_message(tg: Harness, member: Member) -> None:
    await register(member, SITI)
    member.new_texts()
    [first] = await member.say("/riwayat")  # one message: last month's answer, then the page
    answer, *_, page = first.split("\n\n")  # the answer, September (late), advice, page
    assert answer.startswith("Ya, iuran bulan Oktober 2026 sudah tercatat")
    assert page.startswith("Iuran KPJ 123*****901 (terbaru di atas), halaman 1 dari 22:")
    page_message, _ = member.button("hist:older")
    sends = len(tg.fake.calls("sendMessage"))

    second = await member.press("hist:older")
    assert second[0].startswith("Iuran KPJ 123*****901 (terbaru di atas), halaman 2 dari 22:")
    [edit] = tg.fake.calls("editMessageText")
    assert edit.params["message_id"] == page_message
    assert len(tg.fake.calls("sendMessage")) == sends  # edited, nothing new sent
    assert "hist:newer" in member.buttons()

    back = await member.press("hist:newer")  # paging back: the page alone, edited in place
    assert back[0].startswith("Iuran KPJ 123*****901 (terbaru di atas), halaman 1 dari 22:")
    assert len(tg.fake.calls("editMessageText")) == 2
    assert len(tg.fake.calls("sendMessage")) == sends

    filtered = await member.press("hist:year:2025")
    assert filtered[0].startswith("Iuran KPJ 123*****901 tahun 2025, halaman 1 dari 2:")
    assert len(tg.fake.calls("editMessageText")) == 3


async def test_stale_and_forged_buttons_get_a_polite_expired(tg: Harness,
                                                             member: Member) -> None:
    await member.say("/menu")
    message_id, signed = member.button("go:faq")
    other_chat = tg.member(CHAT + 1)
    await other_chat.say("/menu")
    _, foreign = other_chat.button("go:faq")
    forged = [signed.replace("go:faq", "go:delete_data"), foreign, "2" + signed[1:],
              "go:faq", "x" * 64]
    for data in forged:
        texts = await member.press_raw(data, message_id)
        assert texts[0] == "Tombol itu sudah tidak berlaku.", data
        assert texts[-1] == "Apa yang ingin Anda lakukan?"
    answered = [c for c in tg.fake.calls("answerCallbackQuery") if c.ok]
    assert len(answered) == len(forged)
    state_after = await member.press("go:faq")  # the genuine button still works
    assert state_after != ["Tombol itu sudah tidak berlaku."]


async def test_a_stale_history_button_after_leaving_the_history_is_expired(
        tg: Harness, member: Member) -> None:
    await register(member, SITI)
    await member.say("/riwayat")
    await member.say("/menu")
    texts = await member.press("hist:older")
    assert texts[0] == "Tombol itu sudah tidak berlaku."


async def test_the_command_menu_is_registered_in_both_languages(tg: Harness) -> None:
    await tg.channel.register_commands()
    menus = tg.fake.methods.commands
    default, indonesian, english = (menus[("default", lang)] for lang in ("", "id", "en"))
    assert default == indonesian
    assert [c["command"] for c in english] == [c["command"] for c in indonesian] == [
        command.name for command in LISTED]
    assert {"saldo", "riwayat", "daftar", "petugas", "bantuan", "datasaya"} <= {
        c["command"] for c in indonesian}
    described = {i["command"]: (i["description"], e["description"])
                 for i, e in zip(indonesian, english, strict=True)}
    assert described["saldo"] == ("Cek saldo JHT", "Check JHT balance")


async def test_an_english_speaking_member_is_answered_in_english(tg: Harness) -> None:
    await tg.use_webhook()
    member = tg.member(CHAT, "en-US", webhook=True)
    texts = await member.say("/menu")
    assert texts == ["What would you like to do?"]
