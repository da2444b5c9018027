"""Contribution alerts in chat (issue 16): the opt-in, ``/notifikasi`` and the alerts' words.

A linked chat is offered alerts right after linking (:func:`offer`); ``/notifikasi``
(``/alerts``) shows each kind on or off with a button to switch it; every alert carries a
"Stop these alerts" button (``go:alerts_stop:<kind>``). Turning a kind on the first time shows
the alerts notice (:data:`ALERTS_NOTICE`): agreeing is recorded like the registration
consent, with :data:`ALERTS_VERSION`. :func:`alert_says` is what an alert says (the workers
render it with :meth:`flows.engine.Engine.render`). Nothing here knows a transport; with
``Ports.alerts`` unset the bot says alerts are not offered.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from domain.alerts import KINDS, AlertJob, AlertKind
from domain.gaps import Period, due_date, payer
from flows.faq import FEEDBACK
from flows.faq_content import ALERT_TOPIC_BY_INTENT, PAY_CONTRIBUTION, REPORT_EMPLOYER
from flows.flow import Command, Context, Flow, Outcome, option, say, step
from flows.i18n import N_
from flows.identifiers import mask_kpj
from flows.menu import MENU, back_to_menu
from flows.types import EventKind, Money, Month, Say, Text

__all__ = ["ALERTS_NOTICE", "ALERTS_VERSION", "FLOW", "alert_says", "offer", "stop_all"]

ALERTS_VERSION = "alerts-2026-12-v1"
# Change the version whenever the notice changes in substance: agreeing again is then asked.
ALERTS_NOTICE = N_(
    "Contribution alerts: I send a message to this chat when\n"
    "• a contribution is recorded for your membership\n"
    "• a month's contribution is still missing after its due date\n"
    "• the yearly JHT development is added to your balance\n"
    "\n"
    "No alerts are sent between 21:00 and 07:00 WIB; they wait until the morning.\n"
    "\n"
    "What is kept: which alerts you turned on, until you turn them off; and a record of each "
    "alert sent, so that none is sent twice, until you erase your data.\n"
    "\n"
    "To stop: the \"Stop these alerts\" button on an alert, or type /alerts, /logout or "
    "/deletedata.\n"
    "\n"
    "Do you agree?"
)


class AlertsState(StrEnum):
    """States of the alerts flow."""

    SETTINGS = "alerts:settings"
    CONSENT = "alerts:consent"


S = AlertsState
_ON, _OFF = "alerts:on:", "alerts:off:"
_AGREE, _DECLINE = "alerts:agree", "alerts:decline"

KIND_NAMES: dict[str, str] = {
    AlertKind.POSTED: N_("Contribution recorded"),
    AlertKind.MISSING: N_("Contribution late (past its due date)"),
    AlertKind.DEVELOPMENT: N_("Yearly JHT development"),
}
_TURN_ON: dict[str, str] = {
    AlertKind.POSTED: N_("Turn on: recorded"),
    AlertKind.MISSING: N_("Turn on: missing"),
    AlertKind.DEVELOPMENT: N_("Turn on: yearly"),
}
_TURN_OFF: dict[str, str] = {
    AlertKind.POSTED: N_("Turn off: recorded"),
    AlertKind.MISSING: N_("Turn off: missing"),
    AlertKind.DEVELOPMENT: N_("Turn off: yearly"),
}
STOP_LABEL = N_("Stop these alerts")


# ------------------------------------------------------------------ the offer after linking


async def offer(ctx: Context) -> tuple[Say, ...]:
    """The short offer shown after linking, when alerts are offered here and the chat has
    none yet; nothing otherwise."""
    if ctx.ports.alerts is None or await ctx.ports.alerts.kinds(ctx.key):
        return ()
    return (say("Would you like messages here when your contribution is recorded, when it is "
                "missing after its due date, and when the yearly JHT development is added?",
                (option("Yes, send me alerts", "go:alerts_on"), option("Not now", "go:menu"))),)


async def stop_all(ctx: Context) -> int:
    """Turn every kind off (``/keluar``, ``/hapusdata``); how many were on (0 when alerts are
    not offered here)."""
    return await ctx.ports.alerts.unsubscribe(ctx.key) if ctx.ports.alerts is not None else 0


# --------------------------------------------------------------------------- /notifikasi


def _not_offered() -> Outcome:
    return back_to_menu(say("Sorry, contribution alerts are not offered here."))


def _needs_link() -> Outcome:
    return back_to_menu(say(
        "Contribution alerts need a chat linked to your membership. Link it first with "
        "/register.", (option("Register / link account", "go:register"),)))


async def _linked(ctx: Context) -> bool:
    return bool(await ctx.ports.accounts.linked_kpjs(ctx.key))


async def show_settings(ctx: Context) -> Outcome:
    """``/notifikasi``: each kind, on or off, with a button to switch it."""
    if ctx.ports.alerts is None:
        return _not_offered()
    if not await _linked(ctx):
        return _needs_link()
    return await _settings(ctx)


async def _settings(ctx: Context, *before: Say) -> Outcome:
    assert ctx.ports.alerts is not None
    on = await ctx.ports.alerts.kinds(ctx.key)
    lines = tuple(Text("• {kind}: {state}", {"kind": Text(KIND_NAMES[kind]),
                                              "state": Text("on" if kind in on else "off")})
                  for kind in KINDS)
    rows = tuple((option(_TURN_OFF[kind], _OFF + kind) if kind in on
                  else option(_TURN_ON[kind], _ON + kind),) for kind in KINDS)
    return Outcome(S.SETTINGS, (*before, say(
        "Contribution alerts for this chat:\n{lines}\n\nChoose the alerts you want on or off.",
        *rows, (option("Main menu", "go:menu"),), lines=lines)), data={})


async def switch(ctx: Context) -> Outcome:
    """A kind's button: off at once; on at once when the notice was agreed to, else the
    notice first. Anything else is read from the menu."""
    event = ctx.event
    if event.kind is not EventKind.BUTTON or not event.data.startswith((_ON, _OFF)):
        return Outcome(MENU, pass_on=True)
    kind = event.data.rpartition(":")[2]
    if ctx.ports.alerts is None:
        return _not_offered()
    if kind not in KIND_NAMES:
        return await _settings(ctx)
    if event.data.startswith(_OFF):
        await ctx.ports.alerts.unsubscribe(ctx.key, [kind])
        return await _settings(ctx)
    return await _turn_on(ctx, [kind])


async def turn_on_all(ctx: Context) -> Outcome:
    """"Yes, send me alerts" (the offer after linking): every kind, after the notice."""
    if ctx.ports.alerts is None:
        return _not_offered()
    return await _turn_on(ctx, list(KINDS))


async def _turn_on(ctx: Context, kinds: Collection[str]) -> Outcome:
    assert ctx.ports.alerts is not None
    if not await _linked(ctx):
        return _needs_link()
    if not await ctx.ports.accounts.has_consent(ctx.key, ALERTS_VERSION):
        return Outcome(S.CONSENT, (say(ALERTS_NOTICE, (option("I agree", _AGREE),
                                                       option("No, thanks", _DECLINE))),),
                       data={"kinds": sorted(kinds)})
    await _subscribe(ctx, kinds)
    return await _settings(ctx)


async def _subscribe(ctx: Context, kinds: Collection[str]) -> None:
    """Turn ``kinds`` on, and keep the language the member reads now for the alerts (sent
    outside the conversation, they read the chat's stored language; a member who never chose
    one, an English Telegram client say, would else get them in Indonesian)."""
    assert ctx.ports.alerts is not None
    await ctx.ports.alerts.subscribe(ctx.key, kinds, ALERTS_VERSION, ctx.now)
    if await ctx.ports.accounts.language(ctx.key) is None:
        await ctx.ports.accounts.set_language(ctx.key, ctx.session.locale or "id", ctx.now)


async def consent(ctx: Context) -> Outcome:
    """The answer to the alerts notice: agreeing records it and turns on what was asked."""
    event = ctx.event
    if event.kind is not EventKind.BUTTON or event.data not in (_AGREE, _DECLINE):
        return Outcome(MENU, pass_on=True)
    if event.data == _DECLINE:
        return back_to_menu(say("All right, no alerts were turned on. You can turn them on "
                                "later with /alerts."))
    if ctx.ports.alerts is None:
        return _not_offered()
    if not await _linked(ctx):
        return _needs_link()
    kinds = [str(kind) for kind in ctx.data.get("kinds", ()) if kind in KIND_NAMES] or KINDS
    await ctx.ports.accounts.record_consent(ctx.key, ALERTS_VERSION,
                                            ctx.session.locale or "id", ctx.now)
    await _subscribe(ctx, kinds)
    return await _settings(ctx, say("Thank you. Alerts are on; you can change them at any "
                                    "time with /alerts."))


async def stop(ctx: Context) -> Outcome:
    """"Stop these alerts" on an alert (``go:alerts_stop:<kind>``): that kind off, from any
    state, and how to turn it back on."""
    if ctx.ports.alerts is None:
        return _not_offered()
    kind = ctx.slots.get("arg", "")
    if kind not in KIND_NAMES:
        return back_to_menu(say("That menu has expired."))
    await ctx.ports.alerts.unsubscribe(ctx.key, [kind])
    return back_to_menu(say("Done: \"{kind}\" alerts will not be sent any more. To turn them "
                            "back on, type /alerts.", kind=Text(KIND_NAMES[kind])))


async def topic(ctx: Context) -> Outcome:
    """An alert's "how to" button (:data:`flows.faq_content.ALERT_TOPICS`), answered as the
    FAQ answers, "was this helpful?" included."""
    found = ALERT_TOPIC_BY_INTENT[str(ctx.slots.get("intent", ""))]
    return Outcome(FEEDBACK, (say("{answer}\n\nWas this helpful?",
                                  (option("Yes", "faq:yes"), option("No", "faq:no")),
                                  (option("More questions", "go:faq"),
                                   option("Main menu", "go:menu")),
                                  answer=Text(found.answer, found.params)),),
                   data={"topic": found.intent})


# ----------------------------------------------------------------------- the alerts' words


def alert_says(job: AlertJob, today: date) -> tuple[Say, ...]:
    """What an alert says, with its buttons, worded for the membership's segment (PU: the
    employer pays; BPU and PMI: the member). The membership is always named by its masked
    KPJ: a chat may hold several. ``today`` is the day in Jakarta."""
    kpj = mask_kpj(job.kpj)
    stop_row = (option(STOP_LABEL, f"go:alerts_stop:{job.kind.value}"),)
    if job.kind is AlertKind.DEVELOPMENT:
        return (say("The {year} JHT development of {rate} has been added to the JHT balance of "
                    "KPJ {kpj}.", (option("Check balance", "go:check_balance"),), stop_row,
                    year=job.period, rate=_rate(job.rate), kpj=kpj),)
    month = Month.parse(job.period)
    employer_pays = _employer_pays(job.segment)
    if job.kind is AlertKind.POSTED:
        balance_row = (option("Check balance", "go:check_balance"),)
        if employer_pays and job.employer_part:
            return (say("The contribution for {month} for KPJ {kpj} has been recorded: {total} "
                        "(employer {employer} + you {employee}).", balance_row, stop_row,
                        month=month, kpj=kpj, total=Money(job.total),
                        employer=Money(job.employer_part), employee=Money(job.employee_part)),)
        if employer_pays:  # a wage earner's month without an employer's part: no split
            return (say("The contribution for {month} for KPJ {kpj} has been recorded: "
                        "{total}.", balance_row, stop_row, month=month, kpj=kpj,
                        total=Money(job.total)),)
        # BPU and PMI: worded as the history words a month the member paid
        return (say("Your self-paid contribution for {month} for KPJ {kpj} has been recorded: "
                    "{total}.", balance_row, stop_row, month=month, kpj=kpj,
                    total=Money(job.total)),)
    due = due_date(Period.parse(job.period))
    history_row = (option("Contribution history", "go:history"),)
    if employer_pays:
        return (say(
            "The contribution for {month} for KPJ {kpj} is not recorded, and your employer had "
            "to pay it by {due}.\n\n"
            "Please ask your company's HR department first. If your employer deducted it from "
            "your salary but did not pay it, report it to BPJS Ketenagakerjaan: call centre "
            "175, Lapak Asik (our online service) or a branch office. Deducting without paying "
            "is the employer's offence, not yours.",
            (*history_row, option("Contact an agent", "go:handoff")),
            (option(REPORT_EMPLOYER.label, "go:" + REPORT_EMPLOYER.intent),), stop_row,
            month=month, kpj=kpj, due=due),)
    paid_by = (Text("Reminder: the contribution for {month} for KPJ {kpj} is not recorded, and "
                    "its due date ({due}) has passed.", {"month": month, "kpj": kpj, "due": due})
               if today > due else
               Text("Reminder: the contribution for {month} for KPJ {kpj} is not recorded yet; "
                    "it is due by {due}.", {"month": month, "kpj": kpj, "due": due}))
    return (say("{reminder}\n\nPlease pay only through the official channels: the JMO app, "
                "banks or official retail partners. BPJS Ketenagakerjaan never collects "
                "contributions by transfer to a personal account.",
                (option(PAY_CONTRIBUTION.label, "go:" + PAY_CONTRIBUTION.intent),),
                history_row, stop_row, reminder=paid_by),)


def _employer_pays(segment: str) -> bool:
    try:
        return payer(segment) == "employer"
    except ValueError:  # an unknown segment: the member's wording, no split
        return False


def _rate(rate: str) -> Text:
    """A rate in percent (``"7.19"``) as the member's language writes it (``7,19%``)."""
    try:
        value = Decimal(rate).normalize()
    except InvalidOperation:
        return Text(N_("{whole}%"), {"whole": rate})
    whole, _, fraction = f"{value:f}".partition(".")
    if not fraction:
        return Text(N_("{whole}%"), {"whole": whole})
    # Translators: a percentage with decimals; Indonesian writes a decimal comma (7,19%).
    return Text(N_("{whole}.{fraction}%"), {"whole": whole, "fraction": fraction})


ALERTS = Command("notifikasi", "alerts", english="alerts",
                 summary=N_("Contribution alerts: turn them on or off"))

FLOW = Flow("alerts", {
    S.SETTINGS: step(switch, S.SETTINGS, S.CONSENT, MENU),
    S.CONSENT: step(consent, S.SETTINGS, MENU),
}, entries={
    "alerts": step(show_settings, S.SETTINGS, MENU),
    "alerts_on": step(turn_on_all, S.SETTINGS, S.CONSENT, MENU),
    "alerts_stop": step(stop, MENU),
    **{name: step(topic, FEEDBACK) for name in ALERT_TOPIC_BY_INTENT},
}, commands=(ALERTS,))

