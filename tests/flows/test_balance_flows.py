"""Cek saldo and riwayat iuran through the whole engine on the demo data."""

from __future__ import annotations

from datetime import date

from flows.i18n import Catalog
from flows.ports import BalanceServiceUnavailable
from flows.types import Money
from tests.flows.conftest import DEWI, SITI, Chat, World

TODAY = date(2026, 11, 20)  # the test clock, in Jakarta


def rupiah(amount: int) -> str:
    return Catalog().format_value(Money(amount), "id")


async def test_linked_member_sees_balance_with_its_parts(chat: Chat, world: World) -> None:
    await chat.register()
    figures = await world.balance.jht_balance(SITI["kpj"], TODAY)
    assert figures is not None and figures.total > 0
    text = await chat.say("cek saldo")
    assert "Saldo JHT per 20 November 2026" in text
    assert "123*****901" in text and "PT Maju Bersama" in text
    for amount in (figures.employer_part, figures.employee_part, figures.development,
                   figures.total):
        assert rupiah(amount) in text
    assert rupiah(figures.total).startswith("Rp") and "." in rupiah(figures.total)
    assert "Iuran terakhir: Oktober 2026" in text
    assert {"bal:history", "bal:refresh", "go:menu"} <= set(chat.buttons)
    assert SITI["kpj"] not in text and SITI["nik"] not in text


async def test_pending_development_years_are_said(chat: Chat, world: World) -> None:
    await chat.register()
    figures = await world.balance.jht_balance(SITI["kpj"], TODAY)
    assert figures is not None and figures.pending_years
    text = await chat.say("cek saldo")
    assert "belum memiliki data persentasenya" in text and "belum diumumkan" not in text
    assert figures.pending_years == (2025,)  # the demo configures 2016-2024 (2021-2024: demo)
    assert "tahun 2025 belum dihitung" in text


async def test_refresh_and_history_from_the_balance(chat: Chat) -> None:
    await chat.register()
    first = await chat.say("cek saldo")
    assert await chat.press("bal:refresh") == first
    text = await chat.press("bal:history")
    assert "Ya, iuran bulan Oktober 2026 sudah tercatat" in text


async def test_unlinked_chat_gets_no_balance(chat: Chat) -> None:
    text = await chat.say("cek saldo")
    assert "go:register" in chat.buttons and "Rp" not in text
    text = await chat.say(f"SALDO {SITI['kpj']}")
    assert "Rp" not in text


async def test_sms_saldo_with_a_kpj_not_linked_here(chat: Chat) -> None:
    await chat.register()
    text = await chat.say("SALDO 23456789012")
    assert "belum terhubung" in text and "Rp" not in text
    assert "Rp" in await chat.say(f"SALDO {SITI['kpj']}")


async def test_history_pages_newest_first_and_filters_by_year(chat: Chat) -> None:
    await chat.register()
    text = await chat.say("riwayat iuran")
    assert "Ya, iuran bulan Oktober 2026 sudah tercatat" in text
    assert "halaman 1 dari" in text
    lines = [line for line in text.splitlines() if "dibayar" in line and ":" in line]
    assert lines[0].startswith("Oktober 2026") and lines[1].startswith("Agustus 2026"), \
        "September 2026 was not paid by the employer: it is absent"
    assert "hist:older" in chat.buttons and "hist:newer" not in chat.buttons
    text = await chat.press("hist:older")
    assert "halaman 2 dari" in text and "hist:newer" in chat.buttons
    text = await chat.press("hist:year:2017")
    assert "tahun 2017" in text and "Desember 2017" in text and "2016" not in text.split(":")[0]
    text = await chat.say("2018")
    assert "tahun 2018" in text
    assert "tahun" not in (await chat.press("hist:year:all")).split("\n")[1]


async def test_did_my_employer_pay_is_answered_directly(world: World) -> None:
    chat = world.chat("dewi")
    await chat.register(DEWI)
    text = await chat.say("iuran bulan ini udh masuk blm?")
    assert "belum tercatat" in text or "kpj:0" in chat.buttons
    if "kpj:0" in chat.buttons:
        text = await chat.press("kpj:0")
    # Inactive since 2019: no contribution is expected, so no "ask HR" about October 2026.
    assert "tidak aktif" in text and "Desember 2019" in text
    assert "Oktober 2026" not in text and "HR" not in text


async def test_several_kpj_choose_one_or_all(world: World) -> None:
    chat = world.chat("dewi")
    await chat.register(DEWI)
    await chat.say("cek saldo")
    assert {"kpj:0", "kpj:1", "kpj:all"} <= set(chat.buttons)
    text = await chat.press("kpj:1")
    assert "567*****345" in text
    await chat.say("cek saldo")
    text = await chat.press("kpj:all")
    assert "456*****234" in text and "567*****345" in text and "Total semua" in text


class _Down:
    def __getattr__(self, name: str) -> object:
        async def fail(*args: object, **kwargs: object) -> object:
            raise BalanceServiceUnavailable("down")
        return fail


async def test_service_down_gets_an_apology_not_a_number(chat: Chat, world: World) -> None:
    from app.compose import build_ports
    from flows.engine import Engine

    await chat.register()
    ports = world.engine._ports  # noqa: SLF001
    down = Engine(sessions=world.store, catalog=Catalog(strict=True),
                  ports=build_ports(kv=ports.kv, accounts=ports.accounts, balance=_Down(),
                                    otp_sender=ports.otp_sender, clock=ports.clock,
                                    secret=ports.secret))
    down_chat = Chat(down, world.outbox, chat.key)
    text = await down_chat.say("cek saldo")
    assert "tidak dapat dihubungi" in text and "Rp" not in text
    text = await down_chat.say("riwayat iuran")
    assert "tidak dapat dihubungi" in text and "Rp" not in text


async def test_paging_back_to_the_first_page_shows_only_the_page(chat: Chat) -> None:
    await chat.register()
    await chat.say("riwayat iuran")
    await chat.press("hist:older")
    text = await chat.press("hist:newer")
    assert len(chat.replies) == 1 and "halaman 1 dari" in text
    assert "sudah tercatat" not in text
