"""Riwayat iuran on the demo data through the whole engine: the direct answer names the unpaid
month, the advice fits the member (PU, BPU, inactive), gaps are marked in place on every page,
and a typed year is honoured, in Indonesian and in English."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from balance.service import ReferenceBalanceService
from tests.flows.conftest import DEWI, SITI, Chat, World

AGUS = {"nik": "3578031212920002", "kpj": "34567890123", "birth": "12-12-1992",
        "phone": "081398765432"}
BUDI = {"nik": "3273021708850003", "kpj": "23456789012", "birth": "17-08-1985",
        "phone": "085612345678"}
DEC_3 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 10:00 in Jakarta
REPORT = ("175", "Lapak Asik")


async def member(world: World, who: dict[str, str], language: str = "id",
                 at: datetime = DEC_3) -> Chat:
    chat = world.chat(f"{who['kpj']}-{language}", language)
    await chat.register(who)
    world.clock.at = at
    return chat


def lines(text: str) -> list[str]:
    return text.splitlines()


async def test_siti_hears_that_september_is_late_not_only_about_november(world: World) -> None:
    chat = await member(world, SITI)
    text = await chat.say("apakah iuran bulan lalu sudah dibayar perusahaan?")
    assert text.startswith("Iuran bulan November 2026 belum tercatat, tetapi belum terlambat: "
                           "perusahaan Anda masih dapat membayarnya paling lambat "
                           "15 Desember 2026.")
    assert "belum tercatat padahal sudah lewat batas bayar:\n" \
           "• September 2026 (batas bayar 15 Oktober 2026)" in text
    assert text.count("HRD perusahaan") == 1 and all(way in text for way in REPORT)
    assert "pelanggaran perusahaan, bukan kesalahan Anda" in text
    page = lines(text)
    first = page.index("November 2026: belum tercatat (batas bayar 15 Desember 2026)")
    assert page[first + 1].startswith("Oktober 2026: Rp")
    assert page[first + 2] == "September 2026: tidak ada iuran"
    assert page[first + 3].startswith("Agustus 2026: Rp")


async def test_siti_in_english(world: World) -> None:
    chat = await member(world, SITI, "en")
    text = await chat.say("contribution history")
    assert text.startswith("The contribution for November 2026 is not recorded yet. That is "
                           "not late: your employer has until 15 December 2026 to pay it.")
    assert "• September 2026 (due by 15 October 2026)" in text
    assert "ask your company's HR department first" in text and "175" in text
    assert "September 2026: no contribution recorded" in lines(text)
    assert "November 2026: not recorded yet (due by 15 December 2026)" in lines(text)


async def test_after_the_due_date_last_month_itself_is_late(world: World) -> None:
    chat = await member(world, SITI, at=datetime(2026, 12, 20, 3, 0, tzinfo=UTC))
    text = await chat.say("riwayat iuran")
    assert text.startswith("Iuran bulan November 2026 belum tercatat, padahal batas bayarnya "
                           "sudah lewat (15 Desember 2026).")
    assert "• September 2026" in text and "• November 2026" not in text  # said once
    assert "175" in text


async def test_a_paid_last_month_still_names_the_late_one(world: World) -> None:
    chat = await member(world, SITI, at=datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    text = await chat.say("riwayat iuran")
    assert text.startswith("Ya, iuran bulan Oktober 2026 sudah tercatat (dibayar pada "
                           "10 November 2026).")
    assert "• September 2026 (batas bayar 15 Oktober 2026)" in text and "175" in text


async def test_budi_all_paid_gets_no_advice(world: World) -> None:
    chat = await member(world, BUDI, at=datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    text = await chat.say("riwayat iuran")
    assert text.startswith("Ya, iuran bulan Oktober 2026 sudah tercatat")
    assert "HR" not in text and "175" not in text and "tidak ada iuran" not in text


async def test_budi_with_last_month_not_due_yet_is_told_when_to_ask_hr(world: World) -> None:
    chat = await member(world, BUDI)
    text = await chat.say("riwayat iuran")
    assert text.startswith("Iuran bulan November 2026 belum tercatat, tetapi belum terlambat: "
                           "perusahaan Anda masih dapat membayarnya paling lambat "
                           "15 Desember 2026. Jika setelah tanggal itu iuran masih belum "
                           "tercatat, tanyakan ke bagian HRD perusahaan Anda.")
    assert "175" not in text and "tidak ada iuran" not in text


async def test_agus_pays_his_own_and_is_told_how_not_to_ask_hr(world: World) -> None:
    chat = await member(world, AGUS)
    text = await chat.say("riwayat iuran")
    assert text.startswith("Iuran bulan November 2026 belum tercatat, tetapi belum terlambat: "
                           "Anda dapat membayarnya paling lambat 15 Desember 2026.")
    assert "aplikasi JMO, bank, atau mitra ritel" in text and "rekening pribadi" in text
    assert "HR" not in text and "perusahaan" not in text
    english = await member(world, AGUS, "en")
    text = await english.say("history")
    assert "you can pay it until 15 December 2026" in text
    assert "the JMO app, banks or retail partners" in text and "personal account" in text
    assert "HR" not in text and "employer has" not in text


async def test_agus_late_month_is_late_with_the_same_advice(world: World) -> None:
    chat = await member(world, AGUS, at=datetime(2026, 12, 16, 3, 0, tzinfo=UTC))
    text = await chat.say("riwayat iuran")
    assert "padahal batas bayarnya sudah lewat (15 Desember 2026)" in text
    assert "saluran resmi" in text and "HR" not in text


async def test_dewi_inactive_both_kpjs_expect_nothing_and_can_claim(world: World) -> None:
    for language, inactive, claim in (("id", "sudah tidak aktif", "Klaim JHT"),
                                      ("en", "This membership is inactive", "Claim JHT")):
        chat = await member(world, DEWI, language)
        for pick, last in (("kpj:0", ("Desember 2019", "December 2019")),
                           ("kpj:1", ("Mei 2014", "May 2014"))):
            await chat.say("riwayat iuran")
            text = await chat.press(pick) if pick in chat.buttons else chat.text
            assert inactive in text and last[language == "en"] in text, text
            assert "HR" not in text and "November 2026" not in text
            assert "go:faq.claim_jht" in chat.buttons
            labels = [b.label for r in chat.replies for row in r.buttons for b in row]
            assert claim in labels


async def test_a_gap_at_a_page_boundary_is_shown_once_under_its_newer_month(
        world: World) -> None:
    balance: ReferenceBalanceService = world.balance
    async with balance._engine.begin() as conn:  # noqa: SLF001
        await conn.execute(sa.text("DELETE FROM contribution WHERE kpj = :kpj AND period = "
                                   "'2026-04'"), {"kpj": BUDI["kpj"]})
    chat = await member(world, BUDI, at=datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    first = lines(await chat.say("riwayat iuran"))
    assert first[-1] == "April 2026: tidak ada iuran" and first[-2].startswith("Mei 2026: Rp")
    second = await chat.press("hist:older")
    assert "April 2026: tidak ada iuran" not in second
    assert lines(second)[1].startswith("Maret 2026: Rp")
    assert "• April 2026 (batas bayar 15 Mei 2026)" in "\n".join(first)


async def test_a_typed_year_is_honoured(world: World) -> None:
    chat = await member(world, SITI)
    text = await chat.say("riwayat iuran 2019")
    assert "tahun 2019, halaman 1 dari 2" in text and "Desember 2019" in text
    assert "Januari 2020:" not in text and "Desember 2018:" not in text
    english = await member(world, SITI, "en")
    text = await english.say("history 2024")
    assert "in 2024, page 1 of 2" in text and "December 2024" in text


async def test_a_year_without_contributions_says_so_with_the_years_that_exist(
        world: World) -> None:
    chat = await member(world, SITI)
    text = await chat.say("riwayat 2030")
    assert text == "Tahun 2030 belum tiba, jadi belum ada iuran untuk tahun itu."
    assert {"hist:year:2026", "hist:year:2025", "hist:year:all"} <= set(chat.buttons)
    text = await chat.say("riwayat iuran 2015")
    assert text == ("Tidak ada iuran yang tercatat pada tahun 2015. Iuran pertama KPJ "
                    "123*****901 adalah iuran bulan Januari 2016.")
    assert {"hist:year:2016", "hist:year:2017"} <= set(chat.buttons)
    assert "hist:year:2026" not in chat.buttons  # the nearest years, not the newest
    text = await chat.press("hist:year:2016")
    assert "tahun 2016" in text and "Desember 2016" in text
    english = await member(world, SITI, "en")
    assert await english.say("history 2010") == (
        "No contributions are recorded in 2010: the first one for KPJ 123*****901 is for "
        "January 2016.")


async def test_a_year_after_an_inactive_membership_ended(world: World) -> None:
    chat = await member(world, DEWI)
    await chat.say("riwayat iuran 2022")
    text = await chat.press("kpj:0")  # the year waits for the pick of the membership
    assert text == ("Tidak ada iuran yang tercatat pada tahun 2022. Iuran terakhir KPJ "
                    "456*****234 adalah iuran bulan Desember 2019.")
    assert "hist:year:2019" in chat.buttons


def test_the_year_is_a_slot_of_history_requests_only() -> None:
    from flows.intents import classify

    assert dict(classify("riwayat iuran 2019").slots) == {"year": "2019"}
    assert dict(classify("riwayat 2030").slots) == {"year": "2030"}
    assert dict(classify("history 2024 12345678901").slots) == {"year": "2024",
                                                                 "kpj": "12345678901"}
    assert "year" not in classify("cek saldo 2019").slots
    assert "year" not in classify("riwayat 12345678901").slots  # no year inside a KPJ


async def test_self_paid_lines_and_card_show_no_employer_share(world: World) -> None:
    """Agus (BPU) pays his own: no "pemberi kerja Rp0" on his history or his balance card."""
    chat = await member(world, AGUS)
    history = await chat.say("riwayat iuran")
    assert "Oktober 2026: Rp60.000 (iuran mandiri), dibayar 10 November 2026" in lines(history)
    assert "pemberi kerja Rp0" not in history
    card = await chat.say("cek saldo")
    assert "Iuran pemberi kerja" not in card and "• Iuran Anda: Rp" in card
    english = await member(world, AGUS, "en")
    text = await english.say("check balance")
    assert "Employer contributions" not in text and "• Investment returns: Rp" in text
    siti = await member(world, SITI, "en")
    text = await siti.say("check balance")
    assert "• Employer contributions: Rp" in text and "• Investment returns: Rp" in text
