"""Cek saldo: the JHT balance of a linked chat's membership, with its parts.

Only a chat linked after OTP verification sees a balance; others are offered registration.
A member with several KPJ picks one or sees all. Amounts and dates are formatted by the
engine in the member's language; nothing here is ever guessed: a missing answer from the
balance service is said, not filled in.
"""

from __future__ import annotations

from enum import StrEnum

from flows import history, statements
from flows.flow import Command, Context, Flow, Outcome, option, say, step
from flows.i18n import N_
from flows.identifiers import mask_kpj
from flows.memberships import Person, chosen, group_by_person, member_summary, target, today
from flows.menu import MENU, back_to_menu
from flows.ports import JhtBalance, MemberSummary
from flows.types import EventKind, Money, Month, Say, Text


class BalanceState(StrEnum):
    """States of the balance flow."""

    CHOOSE_KPJ = "balance:choose_kpj"
    SHOWN = "balance:shown"


S = BalanceState
STATUS = {"active": Text("active"), "inactive": Text("inactive")}
SEGMENT = {"PU": Text("wage earner (PU)"), "BPU": Text("non-wage earner (BPU)"),
           "PMI": Text("migrant worker (PMI)")}


async def show_balance(ctx: Context) -> Outcome:
    """``cek saldo``: the balance, after choosing the membership when there are several."""
    found = await target(ctx, N_("You have several memberships. Which balance would you like "
                                 "to see?"), S.CHOOSE_KPJ, with_all=True,
                         whose=N_("This chat is linked to the memberships of several people. "
                                  "Whose balance would you like to see?"))
    return found if isinstance(found, Outcome) else await card(ctx, found)


async def choose(ctx: Context) -> Outcome:
    """The membership picked from the list, or all of them."""
    pick = chosen(ctx)
    kpjs = [str(k) for k in ctx.data.get("kpjs", [])]
    if pick == "all":
        return await all_cards(ctx, kpjs)
    if pick is not None:
        return await card(ctx, pick)
    return Outcome(MENU, pass_on=True)


async def card(ctx: Context, kpj: str) -> Outcome:
    """The balance of one KPJ with its parts, the last contribution and the status."""
    summary = await member_summary(ctx, kpj)
    figures = await ctx.ports.balance.jht_balance(kpj, today(ctx))
    if summary is None or figures is None:
        return back_to_menu(say("The data of KPJ {kpj} is not available. Please contact the "
                                "call centre 175.", kpj=mask_kpj(kpj)))
    documents = ctx.ports.documents is not None
    return Outcome(S.SHOWN, (_card_text(summary, figures, documents=documents),),
                   data={"kpj": kpj})


def _card_text(summary: MemberSummary, figures: JhtBalance, *, documents: bool) -> Say:
    """One message: the card, the unpublished years when any, and what to do next (a
    statement and the chart too, when this runtime makes documents)."""
    employer: str | Text = summary.employer.name if summary.employer else Text("no employer")
    last = Month.parse(figures.last_period) if figures.last_period else Text("none yet")
    parts = (Text("• Your contributions: {employee_part}", {"employee_part": Money(
        figures.employee_part)}) if summary.employer is None and not figures.employer_part
        else Text("• Employer contributions: {employer_part}\n• Your contributions: "
                  "{employee_part}", {"employer_part": Money(figures.employer_part),
                                      "employee_part": Money(figures.employee_part)}))
    return say(
        "JHT balance as of {date}\nKPJ {kpj} · {employer}\n\n"
        "{parts}\n• Investment returns: {development}\nTotal: {total}\n\n"
        "Last contribution: {last}\nMembership: {status}, {segment}{pending}",
        (option("Contribution history", "bal:history"), option("Refresh", "bal:refresh")),
        *(((option("Download statement", "bal:statement"), option("See chart", "bal:chart")),)
          if documents else ()),
        (option("Main menu", "go:menu"),), pending=_pending_note(figures),
        date=figures.as_of, kpj=mask_kpj(figures.kpj), employer=employer,
        parts=parts, development=Money(figures.development), total=Money(figures.total), last=last,
        status=STATUS.get(summary.status, Text(summary.status)),
        segment=SEGMENT.get(summary.segment, Text(summary.segment)))


def _pending_note(figures: JhtBalance) -> Text | str:
    """Completed years the balance service has no development rate for: said as it is (their
    development is missing from the total), never guessed. Runs of years read ``2010–2015``."""
    if not figures.pending_years:
        return ""
    runs: list[list[int]] = []
    for year in figures.pending_years:
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    years = ", ".join(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)
    return Text("\n\nDevelopment for {years} is not included in this total: this service has "
                "no development rate configured for it yet. The JMO app shows your official "
                "balance.", {"years": years})


async def all_cards(ctx: Context, kpjs: list[str]) -> Outcome:
    """One line per membership and the sum of one person's memberships: KPJ of different
    people (a family sharing one phone) are never added together."""
    return back_to_menu(*[await _person_total(ctx, person)
                          for person in await group_by_person(ctx, kpjs)])


async def _person_total(ctx: Context, person: Person) -> Say:
    lines: list[Text] = []
    total = 0
    for kpj in person.kpjs:
        figures = await ctx.ports.balance.jht_balance(kpj, today(ctx))
        if figures is None:
            lines.append(Text("KPJ {kpj}: not available", {"kpj": mask_kpj(kpj)}))
            continue
        total += figures.total
        lines.append(Text("KPJ {kpj}: {total}", {"kpj": mask_kpj(kpj),
                                                  "total": Money(figures.total)}))
    if not person.name:
        return say("JHT balances as of {date}:\n{lines}\nTotal of all memberships: {total}",
                   date=today(ctx), lines=tuple(lines), total=Money(total))
    return say("JHT balances of {name} as of {date}:\n{lines}\n"
               "Total of {name}'s memberships: {total}", name=person.masked_name,
               date=today(ctx), lines=tuple(lines), total=Money(total))


async def shown(ctx: Context) -> Outcome:
    """After a balance: refresh it, open its history, download a statement or see the chart;
    anything else starts afresh."""
    kpj = str(ctx.data.get("kpj", ""))
    event = ctx.event
    if event.kind is EventKind.BUTTON and kpj and event.data == "bal:refresh":
        return await card(ctx, kpj)
    if event.kind is EventKind.BUTTON and kpj and event.data == "bal:history":
        return await history.show_for(ctx, kpj)
    if event.kind is EventKind.BUTTON and kpj and event.data == "bal:statement":
        return await statements.offer_periods(ctx, kpj)
    if event.kind is EventKind.BUTTON and kpj and event.data == "bal:chart":
        return await statements.show_chart(ctx, kpj)
    return Outcome(MENU, pass_on=True)


ENTRY = step(show_balance, S.CHOOSE_KPJ, S.SHOWN, MENU)
FLOW = Flow("balance", {
    S.CHOOSE_KPJ: step(choose, S.SHOWN, MENU),
    S.SHOWN: step(shown, S.SHOWN, history.BROWSE, statements.S.PERIOD, statements.S.CHART,
                  MENU),
}, entries={"check_balance": ENTRY}, commands=(
    Command("saldo", "check_balance", english="balance", summary=N_("Check JHT balance")),))
