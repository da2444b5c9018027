"""Registration and OTP, driven through the whole engine like a member would."""

from __future__ import annotations

import pytest

from tests.flows.conftest import SITI, Chat, World


async def test_member_registers_with_consent_and_otp(chat: Chat, world: World) -> None:
    text = await chat.say("/daftar")
    assert "UU" in text and "reg:agree" in chat.buttons
    assert "NIK" in await chat.press("reg:agree")
    assert await world.accounts.has_consent(chat.key)
    assert "KPJ" in await chat.say(SITI["nik"])
    assert chat.deleted, "the message holding the NIK is deleted"
    assert "DD-MM-YYYY" in await chat.say(SITI["kpj"])
    await chat.say(SITI["birth"])
    assert "contact" in chat.buttons
    text = await chat.share(SITI["phone"])
    assert "0812****7890" in text and len(chat.codes()) == 1
    text = await chat.say(chat.codes()[0])
    assert "123*****901" in text
    assert chat.deleted, "the message holding the code is deleted"
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


async def test_english_member_is_answered_in_english(world: World) -> None:
    chat = world.chat("2002", language_code="en-US")
    assert "Please type your NIK" in await chat.say("/daftar") or "agree" in chat.text


@pytest.mark.parametrize(("typed", "expected"), [
    ("12345", "terlalu pendek"),
    ("317101450190000123", "terlalu panjang"),
    ("3171O14501900001", "angka saja"),
    ("0071014501900001", "kode provinsi"),
    ("3171019901900001", "tanggal lahir"),
    ("", "tidak menerima"),
])
async def test_bad_nik_is_explained_and_asked_again(chat: Chat, typed: str, expected: str) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    text = await chat.say(typed)
    assert expected in text
    assert "NIK" in await chat.say(SITI["nik"]) or "KPJ" in chat.text


async def test_birth_date_contradicting_nik_is_flagged(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say(SITI["kpj"])
    text = await chat.say("06-01-1990")
    assert "tidak sesuai" in text and "reg:retry_nik" in chat.buttons
    assert "31-02-1990" and "tidak ada" in await chat.say("31-02-1990")
    assert "kode" in (await chat.say(SITI["birth"])).lower() or "HP" in chat.text


async def test_identity_mismatch_never_says_which_field(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say("23456789012")  # another member's KPJ
    text = await chat.say(SITI["birth"])
    assert "tidak cocok" in text
    assert "KPJ" in text and "NIK" in text  # names all three, blames none


async def test_declining_consent_stores_nothing(chat: Chat, world: World) -> None:
    await chat.say("/daftar")
    assert "Tidak ada data" in await chat.press("reg:decline")
    assert not await world.accounts.has_consent(chat.key)


async def test_sms_style_registration_skips_to_phone(chat: Chat) -> None:
    text = await chat.say(f"DAFTAR SALDO#{SITI['nik']}#{SITI['birth']}#{SITI['kpj']}#s@x.id")
    assert chat.deleted and "reg:agree" in chat.buttons, text
    await chat.press("reg:agree")
    assert "contact" in chat.buttons


async def test_wrong_code_counts_down_then_locks(chat: Chat, world: World) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await chat.say(answer)
    await chat.share(SITI["phone"])
    right = chat.codes()[-1]
    wrong = "000000" if right != "000000" else "111111"
    assert "4" in await chat.say(wrong)
    for _ in range(3):
        await chat.say(wrong)
    text = await chat.say(wrong)
    assert "dikunci" in text and "15" in text
    assert await world.accounts.linked_kpjs(chat.key) == []
    await chat.register()  # within the lock: no code is sent, nothing linked
    assert await world.accounts.linked_kpjs(chat.key) == []
    world.clock.advance(15 * 60 + 1)
    await chat.register()
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


async def test_code_expires_after_five_minutes(chat: Chat, world: World) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await chat.say(answer)
    await chat.share(SITI["phone"])
    world.clock.advance(301)
    assert "kedaluwarsa" in await chat.say(chat.codes()[-1])
    assert "otp:resend" in chat.buttons


async def test_resend_waits_sixty_seconds_and_caps_per_hour(chat: Chat, world: World) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await chat.say(answer)
    await chat.share(SITI["phone"])
    assert "detik" in await chat.press("otp:resend")
    for _ in range(3):
        world.clock.advance(61)
        await chat.press("otp:resend")
    assert len(chat.codes()) == 4
    world.clock.advance(61)
    assert "maksimal" in await chat.press("otp:resend")
    assert len(chat.codes()) == 4
    assert "123*****901" in await chat.say(chat.codes()[-1])


async def test_otp_with_spaces_is_accepted(chat: Chat, world: World) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await chat.say(answer)
    await chat.share(SITI["phone"])
    code = chat.codes()[-1]
    await chat.say(f" {code[:3]} {code[3:]} ")
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


async def test_someone_elses_contact_is_refused(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await chat.say(answer)
    assert "sendiri" in await chat.share(SITI["phone"], own=False)
    assert chat.codes() == []


async def test_typed_number_differing_from_file_still_sends_to_file(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await chat.say(answer)
    text = await chat.say("0899 1111 2222")
    assert "berbeda" in text and "0812****7890" in text
    assert len(chat.codes()) == 1


async def test_logout_and_erase(chat: Chat, world: World) -> None:
    await chat.register()
    assert "tidak lagi terhubung" in await chat.say("/keluar")
    assert await world.accounts.linked_kpjs(chat.key) == []
    assert not await world.accounts.has_consent(chat.key), "logout withdraws consent"
    await chat.register()
    await chat.say("/hapusdata")
    assert "acct:erase" in chat.buttons
    assert "telah dihapus" in await chat.press("acct:erase")
    assert await world.accounts.linked_kpjs(chat.key) == []
    assert not await world.accounts.has_consent(chat.key)
