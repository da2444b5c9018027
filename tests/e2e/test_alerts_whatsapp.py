"""Contribution alerts end to end on WhatsApp (issue 16): demo members register over the
webhook and accept the offer shown after linking; a planning pass and a worker of
``app.compose`` deliver each kind through ``WhatsAppOutbox`` (with the alert template) to the
fake Graph API, exactly once: interactive buttons or a list inside the 24-hour window, the
``WHATSAPP_ALERT_TEMPLATE`` template outside it. The stop button, an unsubscription between
planning and sending, quiet hours, an unreachable member, an English member, /datasaya and
/hapusdata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.ports import Result
from flows.alerts import ALERTS_VERSION
from flows.types import SessionKey
from tests.e2e.alerts_harness import (
    AGUS,
    ALERT_TEMPLATE,
    BUDI,
    HOUR,
    AlertRig,
    late_september_paid,
    october,
    press_data,
    rupiah,
    wa_register,
    whatsapp_alerts,
)
from tests.e2e.wa_harness import SITI_WA, WaHarness, WaMember
from tests.fakes.graph_api import FakeGraphApi, GraphCall
from tests.flows.conftest import DEWI, SITI

EVERY = frozenset({"posted", "missing", "development"})
BUDI_WA, AGUS_WA, DEWI_WA = "6285612345678", "6281398765432", "6287711223344"
UNDELIVERABLE = 131026
JAN_3 = datetime(2027, 1, 3, 3, 0, tzinfo=UTC)  # 10:00 in Jakarta, a month later
MISSING_CHOICES = ["go:history", "go:handoff", "go:faq.report_employer",
                   "go:alerts_stop:missing"]


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi() as server:
        yield server


@pytest.fixture
async def wa(tmp_path: Path, graph: FakeGraphApi) -> AsyncIterator[tuple[WaHarness, AlertRig]]:
    """One WhatsApp bot process with alerts, on the embedded backends."""
    async with whatsapp_alerts(tmp_path, graph=graph) as built:
        yield built


def ids(call: GraphCall) -> list[str]:
    """The ids of an interactive message's buttons or rows."""
    return [ident for ident, _ in call.choices]


async def subscribe(member: WaMember, who: dict[str, str]) -> None:
    """Register, then accept the offer shown after linking and agree to the notice."""
    await wa_register(member, who)
    await press_data(member, "go:alerts_on")  # the offer: "Yes, send me alerts"
    await press_data(member, "alerts:agree")
    member.new_messages()


# ----------------------------------------------------------------- every kind, once


async def test_each_kind_reaches_each_demo_member_once(
        wa: tuple[WaHarness, AlertRig]) -> None:
    world, rig = wa
    members = {wa_id: world.member(wa_id) for wa_id in (SITI_WA, BUDI_WA, AGUS_WA, DEWI_WA)}
    for wa_id, who in ((SITI_WA, SITI), (BUDI_WA, BUDI), (AGUS_WA, AGUS), (DEWI_WA, DEWI)):
        await subscribe(members[wa_id], who)
    siti_key = SessionKey("whatsapp", SITI_WA)
    assert await rig.runtime.alerts.kinds(siti_key) == EVERY
    consents = await world.accounts.consents(siti_key)
    assert consents[-1].version == ALERTS_VERSION

    planned = await rig.plan()
    assert planned.new == {("posted", "whatsapp"): 3, ("missing", "whatsapp"): 1,
                           ("development", "whatsapp"): 4}
    assert (await rig.drain()).counts == {Result.SENT: 8}

    posted, missing, development = members[SITI_WA].new_messages()
    assert all(call.type == "interactive" for call in (posted, missing, development))
    employer, employee = october(SITI["kpj"])
    assert "Oktober 2026" in posted.text and "123*****901" in posted.text
    for amount in (employer + employee, employer, employee):
        assert rupiah(amount) in posted.text
    assert ids(posted) == ["go:check_balance", "go:alerts_stop:posted"]
    assert posted.body["interactive"]["type"] == "button"
    for fact in ("September 2026", "belum tercatat", "15 Oktober 2026", "175", "Lapak Asik"):
        assert fact in missing.text, fact
    assert ids(missing) == MISSING_CHOICES  # four choices: a list
    assert missing.body["interactive"]["type"] == "list"
    assert "2025" in development.text and "6,15%" in development.text
    assert ids(development) == ["go:check_balance", "go:alerts_stop:development"]

    budi = members[BUDI_WA].new_messages()
    assert [ids(call)[-1] for call in budi] == ["go:alerts_stop:posted",
                                                "go:alerts_stop:development"]
    employer, employee = october(BUDI["kpj"])
    assert rupiah(employer) in budi[0].text and rupiah(employee) in budi[0].text
    agus = members[AGUS_WA].new_messages()
    employer, employee = october(AGUS["kpj"])
    assert len(agus) == 2 and rupiah(employer + employee) in agus[0].text  # BPU: the total
    assert "pemberi kerja" not in agus[0].text
    dewi = members[DEWI_WA].new_messages()  # inactive: the yearly development only
    assert [ids(call)[-1] for call in dewi] == ["go:alerts_stop:development"]

    again = await rig.plan()  # a second pass the same day: nothing again
    assert again.total == 0
    assert (await rig.drain()).counts == {}
    assert all(not member.new_messages() for member in members.values())
    assert await rig.sent_count(siti_key) == 3


# ------------------------------------------------------------------- the 24-hour window


async def test_outside_the_window_the_alert_goes_as_the_alert_template(
        wa: tuple[WaHarness, AlertRig]) -> None:
    world, rig = wa
    siti, budi = world.member(SITI_WA), world.member(BUDI_WA)
    await subscribe(siti, SITI)
    await subscribe(budi, BUDI)
    world.clock.advance(25 * HOUR)  # 11:00 in Jakarta the next day
    world.graph.close_window(SITI_WA)
    world.graph.close_window(BUDI_WA)
    await budi.say("halo")  # Budi wrote again: his window is open
    budi.new_messages()
    await rig.plan()
    assert (await rig.drain()).counts == {Result.SENT: 5}

    sent = siti.new_messages()
    assert [call.type for call in sent] == ["template"] * 3
    names = {(c.body["template"]["name"], c.body["template"]["language"]["code"]) for c in sent}
    assert names == {(ALERT_TEMPLATE, "id")}
    employer, employee = october(SITI["kpj"])
    assert rupiah(employer + employee) in sent[0].text and "\n" not in sent[0].text
    assert "September 2026" in sent[1].text
    assert not [c for c in world.graph.calls if c.error == 131047]  # no free text tried
    assert [call.type for call in budi.new_messages()] == ["interactive"] * 2
    assert await world.metric("bot_whatsapp_templates_total") == 3


async def test_the_numbered_stop_of_a_template_alert_can_be_typed(
        wa: tuple[WaHarness, AlertRig]) -> None:
    world, rig = wa
    siti = world.member(SITI_WA)
    await subscribe(siti, SITI)
    world.clock.advance(25 * HOUR)
    world.graph.close_window(SITI_WA)
    await rig.plan()
    await rig.drain()
    *_, development = siti.new_messages()
    assert development.type == "template" and "2 = " in development.text
    await siti.say("2")  # the development alert's "Stop these alerts", as the template says
    key = SessionKey("whatsapp", SITI_WA)
    assert await rig.runtime.alerts.kinds(key) == {"posted", "missing"}


# --------------------------------------------------------------- stop, unsubscribe


async def test_the_stop_button_turns_that_kind_off_and_the_others_still_come(
        wa: tuple[WaHarness, AlertRig], tmp_path: Path) -> None:
    world, rig = wa
    siti = world.member(SITI_WA)
    await subscribe(siti, SITI)
    await rig.plan()
    await rig.drain()
    world.clock.at = JAN_3  # a month later: September paid late, November missing
    await late_september_paid(rig.runtime.database, tmp_path)
    assert (await rig.plan()).new == {("posted", "whatsapp"): 1, ("missing", "whatsapp"): 1}
    answer = await press_data(siti, "go:alerts_stop:missing")  # December's missing alert
    assert "/notifikasi" in answer
    key = SessionKey("whatsapp", SITI_WA)
    assert await rig.runtime.alerts.kinds(key) == {"posted", "development"}
    siti.new_messages()
    assert (await rig.drain()).counts == {Result.SENT: 1, Result.SKIPPED: 1}
    [posted] = siti.new_messages()
    assert "September 2026" in posted.text and ids(posted)[-1] == "go:alerts_stop:posted"


async def test_unsubscribed_between_planning_and_sending_is_not_sent(
        wa: tuple[WaHarness, AlertRig]) -> None:
    world, rig = wa
    siti = world.member(SITI_WA)
    await subscribe(siti, SITI)
    assert (await rig.plan()).total == 3
    await siti.say("/notifikasi")
    await press_data(siti, "alerts:off:missing")
    siti.new_messages()
    assert (await rig.drain()).counts == {Result.SENT: 2, Result.SKIPPED: 1}
    assert [ids(call)[-1] for call in siti.new_messages()] == [
        "go:alerts_stop:posted", "go:alerts_stop:development"]


# -------------------------------------------------------------------------- quiet hours


async def test_planned_at_night_waits_for_the_morning(wa: tuple[WaHarness, AlertRig]) -> None:
    world, rig = wa
    world.clock.at = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)  # 22:00 in Jakarta
    siti = world.member(SITI_WA)
    await subscribe(siti, SITI)
    assert (await rig.plan()).total == 3
    assert (await rig.drain()).held == 3
    world.clock.at = datetime(2026, 12, 3, 23, 59, tzinfo=UTC)  # 06:59
    assert (await rig.drain()).held == 3
    assert not siti.new_messages()
    world.clock.at = datetime(2026, 12, 4, 0, 0, tzinfo=UTC)  # 07:00: 9 hours after writing
    assert (await rig.drain()).counts == {Result.SENT: 3}
    assert [call.type for call in siti.new_messages()] == ["interactive"] * 3


# ---------------------------------------------------------------------- unreachable


async def test_an_unreachable_member_is_skipped_and_recorded(
        wa: tuple[WaHarness, AlertRig]) -> None:
    world, rig = wa
    siti, budi = world.member(SITI_WA), world.member(BUDI_WA)
    await subscribe(siti, SITI)
    await subscribe(budi, BUDI)
    world.graph.fail(UNDELIVERABLE, times=None, to=SITI_WA)  # blocked the business
    await rig.plan()
    assert (await rig.drain()).counts == {Result.BLOCKED: 3, Result.SENT: 2}
    assert not siti.new_messages()
    assert len(budi.new_messages()) == 2
    assert rig.counted("posted", "whatsapp", "blocked") == 1
    assert await rig.depth() == 0  # finished, not retried
    assert (await rig.drain()).counts == {}


# --------------------------------------------------------------------------- English


async def test_a_member_who_chose_english_gets_the_alert_in_english(
        wa: tuple[WaHarness, AlertRig]) -> None:
    world, rig = wa
    siti = world.member(SITI_WA)
    await siti.say("/language")
    await press_data(siti, "lang:en")
    await subscribe(siti, SITI)
    await rig.plan()
    await rig.drain()
    posted, missing, development = siti.new_messages()
    employer, employee = october(SITI["kpj"])
    assert posted.text.startswith("The contribution for October 2026 for KPJ 123*****901")
    assert f"Rp{employer:,}" in posted.text and f"Rp{employee:,}" in posted.text
    assert "September 2026" in missing.text and "employer" in missing.text
    assert "6.15%" in development.text
    assert "Stop these alerts" in [title for _, title in posted.choices]


# ------------------------------------------------------------- /datasaya, /hapusdata


async def test_my_data_counts_the_alerts_and_erasing_drops_the_queued_ones(
        wa: tuple[WaHarness, AlertRig], tmp_path: Path) -> None:
    world, rig = wa
    siti = world.member(SITI_WA)
    key = SessionKey("whatsapp", SITI_WA)
    await subscribe(siti, SITI)
    await rig.plan()
    await rig.drain()
    mine = await siti.say("/datasaya")
    assert "Notifikasi iuran yang aktif:" in mine and "Notifikasi terkirim: 3" in mine
    world.clock.at = JAN_3
    await late_september_paid(rig.runtime.database, tmp_path)
    assert (await rig.plan()).total == 2
    await siti.say("/hapusdata")
    await press_data(siti, "acct:erase")
    assert await rig.runtime.alerts.kinds(key) == frozenset()
    assert await rig.sent_count(key) == 0
    siti.new_messages()
    assert await rig.depth() == 0  # the chat's queued jobs went with its data
    assert (await rig.drain()).counts == {}
    assert not siti.new_messages()
