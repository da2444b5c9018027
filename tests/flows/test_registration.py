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
    assert "tanggal-bulan-tahun" in await chat.say(SITI["kpj"])
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
    text = await chat.say("/daftar")
    assert "Do you agree" in text and "Apakah" not in text
    assert "Please type your NIK" in await chat.press("reg:agree")


@pytest.mark.parametrize(("typed", "expected"), [
    ("12345", "terlalu pendek"),
    ("317101450190000123", "terlalu panjang"),
    ("3171O14501900001", "hanya boleh berisi angka"),
    ("0071014501900001", "kode provinsi"),
    ("3171019901900001", "tanggal lahir"),
    ("", "Pesan Anda kosong"),
])
async def test_bad_nik_is_explained_and_asked_again(chat: Chat, typed: str, expected: str) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    text = await chat.say(typed)
    assert expected in text
    assert "nomor KPJ" in await chat.say(SITI["nik"])


async def test_birth_date_contradicting_nik_is_flagged(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say(SITI["kpj"])
    text = await chat.say("06-01-1990")
    assert "tidak sesuai" in text and "reg:retry_nik" in chat.buttons
    assert "tidak ada" in await chat.say("31-02-1990")
    assert "nomor HP" in await chat.say(SITI["birth"])
    assert "contact" in chat.buttons


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
    assert "sudah tidak berlaku" in await chat.say(chat.codes()[-1])
    assert "otp:resend" in chat.buttons


async def test_resend_waits_sixty_seconds_and_caps_per_hour(chat: Chat, world: World) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in (SITI["nik"], SITI["kpj"], SITI["birth"]):
        await chat.say(answer)
    await chat.share(SITI["phone"])
    assert "detik" in await chat.press("otp:resend")
    for _ in range(2):
        world.clock.advance(61)
        await chat.press("otp:resend")
    assert len(chat.codes()) == 3
    world.clock.advance(61)
    assert "Batas permintaan kode" in await chat.press("otp:resend")
    assert len(chat.codes()) == 3
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
    await chat.say("/keluar")
    assert "acct:logout" in chat.buttons
    assert "Tidak ada yang diubah" in await chat.press("acct:keep")
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]
    await chat.say("keluar")
    assert "tidak lagi terhubung" in await chat.press("acct:logout")
    assert await world.accounts.linked_kpjs(chat.key) == []
    assert not await world.accounts.has_consent(chat.key), "logout withdraws consent"
    await chat.register()
    await chat.say("/hapusdata")
    assert "acct:erase" in chat.buttons
    assert "telah dihapus" in await chat.press("acct:erase")
    assert await world.accounts.linked_kpjs(chat.key) == []
    assert not await world.accounts.has_consent(chat.key)


async def test_a_code_sent_for_one_chat_never_links_another(world: World) -> None:
    """Regression: codes were kept per KPJ, so a code requested from an intruder's chat (who
    knew NIK, KPJ and birth date) linked that chat when the member read it out."""
    intruder, member = world.chat("intruder"), world.chat("member")
    await intruder.reach_code_step()
    code_for_intruder = intruder.codes()[-1]
    world.clock.advance(61)
    await member.reach_code_step()
    assert await member.say(code_for_intruder) and member.codes()[-1] != code_for_intruder
    assert await world.accounts.linked_kpjs(member.key) == []
    await intruder.say(member.codes()[-1])
    assert await world.accounts.linked_kpjs(intruder.key) == []


async def test_wrong_tries_are_counted_per_membership_across_chats(world: World) -> None:
    first, second = world.chat("a"), world.chat("b")
    await first.reach_code_step()
    world.clock.advance(61)
    await second.reach_code_step()
    wrong = "999999" if "999999" not in first.codes() else "888888"
    for _ in range(2):
        await first.say(wrong)
        await second.say(wrong)
    text = await first.say(wrong)
    assert "dikunci" in text
    assert "dikunci" in await second.say(second.codes()[-1])


async def test_concurrent_guesses_never_exceed_five() -> None:
    import asyncio

    from flows.otp_codes import MemoryOtpGuardStore, OtpBook, Verdict
    from storage.sessions import MemorySessionStore

    book = OtpBook(MemorySessionStore(), b"k", MemoryOtpGuardStore())
    issued = await book.issue("12345678901", "chat", 1000.0)
    wrong = "000000" if issued.code != "000000" else "111111"
    results = await asyncio.gather(*(book.check("12345678901", "chat", wrong, 1001.0)
                                     for _ in range(20)))
    assert sum(r.verdict is Verdict.WRONG for r in results) == 4
    assert (await book.check("12345678901", "chat", issued.code, 1002.0)).verdict \
        is Verdict.LOCKED


async def test_resending_too_soon_on_a_new_registration_offers_the_button(chat: Chat,
                                                                           world: World) -> None:
    await chat.reach_code_step()
    await chat.say("/batal")
    text = await chat.reach_code_step()
    assert "kurang dari satu menit" in text and "otp:resend" in chat.buttons
    world.clock.advance(61)
    await chat.press("otp:resend")
    assert "123*****901" in await chat.say(chat.codes()[-1])


async def test_a_nik_typed_at_another_step_is_deleted(chat: Chat) -> None:
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say(f"nik saya {SITI['nik']}")
    assert chat.deleted
    await chat.say("/menu")
    await chat.say(f"halo {SITI['nik']}")
    assert chat.deleted


async def test_changing_language_mid_flow_keeps_the_answers(chat: Chat, world: World) -> None:
    await chat.reach_phone_step()
    await chat.say("/bahasa")
    assert {"lang:id", "lang:en"} <= set(chat.buttons)
    text = await chat.press("lang:en")
    assert "English" in text and "last question" in text
    text = await chat.share(SITI["phone"])
    assert "I sent a 6-digit code" in text
    assert "Verified" in await chat.say(chat.codes()[-1])


async def test_saying_keluar_asks_before_unlinking(chat: Chat, world: World) -> None:
    await chat.register()
    await chat.say("keluar dulu ya")
    assert "acct:logout" in chat.buttons
    await chat.say("makasih")
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


async def test_a_new_consent_notice_asks_again(chat: Chat, world: World) -> None:
    await world.accounts.record_consent(chat.key, "2020-01-old", "id", world.clock.now())
    await chat.say("/daftar")
    assert "reg:agree" in chat.buttons


# --- Rough edges a new member met (issue 11) ------------------------------------------------

LANGS = ("id", "en")
SAYS = {
    "id": {"locked": "dikunci", "at": "pukul {} WIB", "clock": "{:02d}.{:02d}",
           "cancelled": "Pendaftaran dibatalkan", "kept": "tidak disimpan",
           "year": "4 digit", "kpj_prompt": "nomor KPJ", "phone_prompt": "nomor HP",
           "nik_prompt": "NIK"},
    "en": {"locked": "locked", "at": "at {} WIB", "clock": "{:02d}:{:02d}",
           "cancelled": "Registration was cancelled", "kept": "nothing you typed was kept",
           "year": "4 digits", "kpj_prompt": "KPJ number", "phone_prompt": "phone number",
           "nik_prompt": "NIK"},
}


def _at(lang: str, hour: int, minute: int) -> str:
    return SAYS[lang]["at"].format(SAYS[lang]["clock"].format(hour, minute))


async def _fail_identity_check(chat: Chat) -> str:
    await chat.say("/daftar")
    if "reg:agree" in chat.buttons:
        await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say("23456789012")  # another member's KPJ
    return await chat.say(SITI["birth"])


async def _lock_by_wrong_codes(chat: Chat) -> str:
    await chat.reach_code_step()
    wrong = next(c for c in ("000000", "111111") if c not in chat.codes())
    for _ in range(5):
        await chat.say(wrong)
    return chat.text


async def test_identity_check_limit_counts_only_failed_checks(world: World) -> None:
    chat = world.chat("idc")
    for _ in range(6):  # six successful checks in an hour are no attack
        await chat.reach_phone_step()
        assert "contact" in chat.buttons, chat.text
        await chat.say("/batal")
    for _ in range(4):
        assert "tidak cocok" in await _fail_identity_check(chat)
    text = await _fail_identity_check(chat)
    assert _at("id", 17, 0) in text, text
    text = await chat.say("/daftar")
    assert _at("id", 17, 0) in text and "NIK" not in text, text
    world.clock.advance(3601)
    assert "contact" in (await chat.reach_phone_step() and chat.buttons)


@pytest.mark.parametrize("lang", LANGS)
async def test_daftar_after_an_otp_lockout_says_so_at_once(world: World, lang: str) -> None:
    chat = world.chat("lock-" + lang, lang)
    await _lock_by_wrong_codes(chat)
    text = await chat.say("/daftar")
    assert SAYS[lang]["locked"] in text and _at(lang, 16, 15) in text, text
    assert SAYS[lang]["kpj_prompt"] not in text and "reg:agree" not in chat.buttons
    world.clock.advance(15 * 60 + 1)
    await chat.register()
    assert await world.accounts.linked_kpjs(chat.key) == [SITI["kpj"]]


@pytest.mark.parametrize("lang", LANGS)
async def test_a_locked_membership_is_named_as_soon_as_its_kpj_is_typed(world: World,
                                                                        lang: str) -> None:
    await _lock_by_wrong_codes(world.chat("first"))
    other = world.chat("other-" + lang, lang)
    await other.say("/daftar")
    await other.press("reg:agree")
    await other.say(SITI["nik"])
    text = await other.say(SITI["kpj"])
    assert SAYS[lang]["locked"] in text and _at(lang, 16, 15) in text, text


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("step", ["nik", "kpj", "phone", "code"])
async def test_start_mid_registration_says_what_was_dropped(world: World, lang: str,
                                                            step: str) -> None:
    chat = world.chat("start-" + lang, lang)
    await chat.say("/daftar")
    await chat.press("reg:agree")
    for answer in {"nik": [], "kpj": [SITI["nik"]],
                   "phone": [SITI["nik"], SITI["kpj"], SITI["birth"]]}.get(step, []):
        await chat.say(answer)
    if step == "code":
        await chat.reach_code_step()
    text = await chat.say("/start")
    assert SAYS[lang]["cancelled"] in text and SAYS[lang]["kept"] in text, text


async def test_start_at_the_menu_says_nothing_about_registration(chat: Chat) -> None:
    await chat.say("halo")
    assert "Pendaftaran" not in await chat.say("/start")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("typed", ["5/1/90", "05-01-90", "5 Jan 90"])
async def test_a_two_digit_year_gets_a_hint(world: World, lang: str, typed: str) -> None:
    chat = world.chat("year-" + lang, lang)
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say(SITI["kpj"])
    assert SAYS[lang]["year"] in await chat.say(typed)
    assert SAYS[lang]["phone_prompt"] in await chat.say("5/1/1990")


def _demo_values() -> set[str]:
    from balance.demo import DEMO_MEMBERS

    values: set[str] = set()
    for member in DEMO_MEMBERS:
        national = member.phone.removeprefix("+62")
        b = member.birth_date
        values |= {member.nik, member.kpj, member.phone, "62" + national, "0" + national,
                   f"0{national[:3]}-{national[3:7]}-{national[7:]}",
                   f"0{national[:3]} {national[3:7]} {national[7:]}",
                   b.isoformat(), f"{b:%d-%m-%Y}", f"{b:%d/%m/%Y}", f"{b:%d.%m.%Y}",
                   f"{b.day}-{b.month}-{b.year}", f"{b.day}/{b.month}/{b.year}"}
        if member.email:
            values.add(member.email)
    return values


def test_no_catalog_message_holds_a_demo_members_data() -> None:
    """Examples in prompts were the demo members' real NIK, phone and birth date."""
    from babel.messages.pofile import read_po

    from flows.i18n import LOCALES, LOCALES_DIR

    found = []
    for locale in LOCALES:
        with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        for message in catalog:
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = (message.string if isinstance(message.string, tuple)
                       else (message.string,))
            text = "\n".join(str(t) for t in (*ids, *strings) if t)
            found += [(locale, value, text[:60]) for value in _demo_values() if value in text]
    assert found == []
