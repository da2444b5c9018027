"""One person per total: a chat linked to several people (a family sharing one phone) is
asked whose balance or history first, and "all memberships" sums one person's only."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from flows import balance
from flows.flow import Context
from flows.i18n import Catalog
from flows.types import Event, Money, Session
from tests.flows.conftest import DEWI, SITI, Chat, World

TODAY = date(2026, 11, 20)  # the test clock, in Jakarta
DEWI_OLD = "56789012345"
BUDI = "23456789012"


def rupiah(amount: int, locale: str = "id") -> str:
    return Catalog().format_value(Money(amount), locale)


async def totals(world: World, *kpjs: str) -> list[int]:
    found = [await world.balance.jht_balance(kpj, TODAY) for kpj in kpjs]
    return [f.total for f in found if f is not None]


async def link(world: World, chat: Chat, *kpjs: str) -> None:
    for minutes, kpj in enumerate(kpjs):
        await world.accounts.link(chat.key, kpj, world.clock.now() + timedelta(minutes=minutes))


def button(chat: Chat, label: str) -> str:
    """The data of the button whose label holds ``label``."""
    found = [b.data for r in chat.replies for row in r.buttons for b in row if label in b.label]
    assert len(found) == 1, (label, [b.label for r in chat.replies for row in r.buttons
                                     for b in row])
    return found[0]


def labels(chat: Chat) -> list[str]:
    return [b.label for r in chat.replies for row in r.buttons for b in row]


@pytest.fixture
async def family(world: World) -> Chat:
    """Siti's chat, then linked to Dewi too (Dewi also has an older KPJ)."""
    chat = world.chat("family")
    await link(world, chat, SITI["kpj"], DEWI["kpj"])
    return chat


async def test_two_people_are_asked_whose_balance_not_summed(family: Chat,
                                                            world: World) -> None:
    text = await family.say("cek saldo")
    assert "Saldo siapa yang ingin Anda lihat?" in text
    assert "Rp" not in text and "Total" not in text
    assert {"S*** R*****", "D*** L******"} <= set(labels(family))
    assert "kpj:all" not in family.buttons
    assert SITI["kpj"] not in str(family.replies) and "Siti" not in str(family.replies)


async def test_the_person_with_one_membership_gets_her_card_directly(family: Chat) -> None:
    await family.say("cek saldo")
    text = await family.press(button(family, "S*** R*****"))
    assert "Saldo JHT per 20 November 2026" in text and "123*****901" in text
    assert "456*****234" not in text and "bal:refresh" in family.buttons


async def test_all_of_one_persons_memberships_sums_only_hers(family: Chat,
                                                             world: World) -> None:
    await family.say("cek saldo")
    text = await family.press(button(family, "D*** L******"))
    assert "D*** L****** memiliki beberapa kepesertaan" in text
    assert {"kpj:0", "kpj:1", "kpj:all"} <= set(family.buttons)
    assert "Semua kepesertaan" in labels(family)
    text = await family.press("kpj:all")
    dewi_total = sum(await totals(world, DEWI["kpj"], DEWI_OLD))
    everyone = dewi_total + sum(await totals(world, SITI["kpj"]))
    assert "456*****234" in text and "567*****345" in text and "123*****901" not in text
    assert f"Total semua kepesertaan D*** L******: {rupiah(dewi_total)}" in text
    assert rupiah(everyone) not in text


async def test_one_of_the_persons_memberships(family: Chat) -> None:
    await family.say("cek saldo")
    await family.press(button(family, "D*** L******"))
    text = await family.press("kpj:1")
    assert "567*****345" in text and "Saldo JHT per" in text


async def test_history_asks_whose_then_which_membership(family: Chat) -> None:
    text = await family.say("riwayat iuran")
    assert "Kepesertaan siapa yang ingin Anda lihat?" in text
    text = await family.press(button(family, "D*** L******"))
    assert {"kpj:0", "kpj:1"} <= set(family.buttons) and "kpj:all" not in family.buttons
    text = await family.press("kpj:1")
    assert "567*****345" in text and "halaman 1 dari" in text
    await family.say("riwayat iuran")
    text = await family.press(button(family, "S*** R*****"))
    assert "123*****901" in text and "halaman 1 dari" in text


async def test_sms_saldo_names_any_membership_of_a_linked_person(family: Chat) -> None:
    text = await family.say(f"SALDO {DEWI_OLD}")
    assert "567*****345" in text and "Rp" in text
    text = await family.say(f"SALDO {BUDI}")
    assert "belum terhubung" in text and "Rp" not in text


async def test_in_english(family: Chat, world: World) -> None:
    family.language_code = "en"
    await family.say("/language")
    await family.press("lang:en")
    text = await family.say("check balance")
    assert "Whose balance would you like to see?" in text
    text = await family.press(button(family, "D*** L******"))
    assert "D*** L****** has several memberships" in text
    assert "All memberships" in labels(family)
    text = await family.press("kpj:all")
    dewi_total = sum(await totals(world, DEWI["kpj"], DEWI_OLD))
    assert f"Total of D*** L******'s memberships: {rupiah(dewi_total, 'en')}" in text
    text = await family.say("contribution history")
    assert "Whose memberships would you like to see?" in text


async def test_one_person_with_two_memberships_chooses_or_sees_all(world: World) -> None:
    for language in ("id", "en"):
        chat = world.chat(f"dewi-{language}", language)
        await link(world, chat, DEWI["kpj"])
        await chat.say("/start")
        await chat.press(f"lang:{language}")
        text = await chat.say("/saldo")
        assert {"kpj:0", "kpj:1", "kpj:all"} <= set(chat.buttons)
        assert "siapa" not in text and "Whose" not in text
        text = await chat.press("kpj:all")
        dewi_total = sum(await totals(world, DEWI["kpj"], DEWI_OLD))
        assert rupiah(dewi_total, language) in text


async def test_a_person_button_after_the_links_changed_is_not_trusted(family: Chat,
                                                                      world: World) -> None:
    await family.say("cek saldo")
    dewi = button(family, "D*** L******")
    await world.accounts.unlink_all(family.key, world.clock.now())
    text = await family.press(dewi)
    assert "Rp" not in text and "go:register" in family.buttons
    await link(world, family, BUDI, SITI["kpj"])  # someone else is now second in the list
    text = await family.press(dewi)
    assert "Saldo siapa yang ingin Anda lihat?" in text and "Rp" not in text


async def test_a_stored_choice_of_several_people_never_sums_them(family: Chat,
                                                                 world: World) -> None:
    """A session saved before this change may hold every KPJ of the chat: pressing "all" sums
    each person separately."""
    ports = world.engine._ports  # noqa: SLF001
    kpjs = [SITI["kpj"], DEWI["kpj"], DEWI_OLD]
    ctx = Context(family.key, Event.button("kpj:all"),
                  Session(balance.S.CHOOSE_KPJ, "id", {"kpjs": kpjs}), ports, world.clock.now())
    outcome = await balance.choose(ctx)
    catalog = Catalog(strict=True)
    text = "\n".join(catalog.render(s.text, "id") for s in outcome.says if s.text)
    siti, dewi, dewi_old = await totals(world, *kpjs)
    assert f"Total semua kepesertaan S*** R*****: {rupiah(siti)}" in text
    assert f"Total semua kepesertaan D*** L******: {rupiah(dewi + dewi_old)}" in text
    assert rupiah(siti + dewi + dewi_old) not in text


async def test_registering_a_second_person_on_the_same_chat(world: World) -> None:
    chat = world.chat("shared-phone")
    await chat.register(SITI)
    await chat.register(DEWI)
    assert "Saldo siapa yang ingin Anda lihat?" in await chat.say("cek saldo")


def test_a_person_button_falls_back_to_the_masked_kpj() -> None:
    from flows.memberships import Person, _person_button  # noqa: PLC2701

    siti, sari = Person("Siti Rahayu", (SITI["kpj"],)), Person("Sari Rahayu", (BUDI,))
    assert siti.masked_name == sari.masked_name == "S*** R*****"
    alone = _person_button(siti, [siti.masked_name], "go:x")
    assert alone.label.msgid == "{name}" and alone.label.params == {"name": "S*** R*****"}
    shared = _person_button(sari, [siti.masked_name, sari.masked_name], "go:x")
    assert shared.label.params == {"kpj": "234*****012"}
    unknown = _person_button(Person("", (DEWI_OLD,)), [""], "go:x")
    assert unknown.label.params == {"kpj": "567*****345"}
