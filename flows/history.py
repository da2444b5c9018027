"""Riwayat iuran: contributions month by month, newest first, paged and filterable by year.

The first page opens with the direct answer to the question members ask most ("iuran bulan
lalu sudah dibayar perusahaan?", :mod:`flows.history_answer`), and every page marks a month
without a contribution where it belongs ("September 2026: no contribution recorded"), also
when the gap falls between two pages. A year without contributions is said plainly, with
buttons to the years that have some. The gap rules are :mod:`domain.gaps`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from enum import StrEnum

from domain.gaps import ContributionRecord, Period, Standing
from flows.flow import Command, Context, Flow, Outcome, option, say, step
from flows.history_answer import direct_answer, month, paragraphs
from flows.i18n import N_
from flows.identifiers import mask_kpj
from flows.memberships import chosen, member_summary, target, today
from flows.menu import MENU, back_to_menu
from flows.ports import Contribution, ContributionPage
from flows.types import EventKind, Money, Month, Option, Say, Text


class HistoryState(StrEnum):
    """States of the history flow."""

    CHOOSE_KPJ = "history:choose_kpj"
    BROWSE = "history:browse"


S = HistoryState
BROWSE = S.BROWSE.value
PAGE_SIZE = 6
YEAR_BUTTONS = 4


async def show_history(ctx: Context) -> Outcome:
    """``riwayat iuran [tahun]``: the history, after choosing the membership when there are
    several; a year typed with it (``riwayat iuran 2019``) filters it."""
    found = await target(ctx, N_("You have several memberships. Which history would you like "
                                 "to see?"), S.CHOOSE_KPJ, with_all=False)
    text = ctx.slots.get("year", "")
    year = int(text) if text.isdigit() else None
    if isinstance(found, Outcome):  # asks which membership: the year waits for the pick
        if found.state == S.CHOOSE_KPJ and found.data is not None and year is not None:
            return replace(found, data={**found.data, "year": year})
        return found
    return await show_for(ctx, found, year)


async def choose(ctx: Context) -> Outcome:
    """The membership picked from the list (in the year asked with ``riwayat iuran``, if)."""
    pick = chosen(ctx)
    if pick is None or pick == "all":
        return Outcome(MENU, pass_on=True)
    year = ctx.data.get("year")
    return await show_for(ctx, pick, year if isinstance(year, int) else None)


async def show_for(ctx: Context, kpj: str, year: int | None = None, page: int = 1, *,
                   paging: bool = False) -> Outcome:
    """One page of ``kpj``'s history; the first unfiltered page starts with the direct answer,
    except when the member is paging back to it (the page then replaces the one shown)."""
    found = await ctx.ports.balance.contributions(kpj, year=year, page=page,
                                                  page_size=PAGE_SIZE)
    record = await _record(ctx, kpj) if found is not None else None
    if found is None or record is None:
        return back_to_menu(say("The data of KPJ {kpj} is not available. Please contact the "
                                "call centre 175.", kpj=mask_kpj(kpj)))
    data = {"kpj": kpj, "year": year, "page": found.page}
    day = today(ctx)
    if year is not None and found.total == 0:
        return Outcome(S.BROWSE, (_empty_year(found, record, year, day),), data=data)
    answer: tuple[Text, tuple[Option, ...]] | None = None
    if page == 1 and year is None and not paging:
        answer = direct_answer(record, found.items, day)
    return Outcome(S.BROWSE, (_page(found, record, day, answer),), data=data)


async def _record(ctx: Context, kpj: str) -> ContributionRecord | None:
    """The membership's whole contribution record with its segment and status."""
    summary = await member_summary(ctx, kpj)
    periods = await ctx.ports.balance.contribution_periods(kpj)
    if summary is None or periods is None:
        return None
    return ContributionRecord.of(periods, summary.segment, summary.status)


def _page(found: ContributionPage, record: ContributionRecord, day: date,
          answer: tuple[Text, tuple[Option, ...]] | None) -> Say:
    """The page as one message with its buttons; ``answer`` (the direct answer) leads it, so
    the member gets one message, not two a second apart."""
    header = (Text("Contributions of KPJ {kpj} in {year}, page {page} of {pages}:",
                   {"kpj": mask_kpj(found.kpj), "year": str(found.year), "page": found.page,
                    "pages": max(found.pages, 1)})
              if found.year else
              Text("Contributions of KPJ {kpj}, newest first, page {page} of {pages}:",
                   {"kpj": mask_kpj(found.kpj), "page": found.page,
                    "pages": max(found.pages, 1)}))
    body = Text("{header}\n{lines}", {"header": header, "lines": _lines(found, record, day)})
    if answer is None:
        return Say(body, _buttons(found))
    text, extra = answer
    return Say(paragraphs([text, body]), ((*extra,), *_buttons(found)) if extra
               else _buttons(found))


def _lines(found: ContributionPage, record: ContributionRecord, day: date) -> tuple[Text, ...]:
    """The page's contributions, each followed by the months missing under it; page 1 starts
    with the months missing after the newest one shown."""
    def shown(period: Period) -> bool:
        return found.year is None or period.year == found.year

    lines: list[Text] = []
    if found.page == 1 and found.items:
        newest = Period.parse(found.items[0].period)
        lines += [_missing(record, m, day) for m in reversed(record.missing(day))
                  if m > newest and shown(m)]
    for item in found.items:
        lines.append(_paid(item))
        under = record.missing_before(Period.parse(item.period), day)
        lines += [_missing(record, m, day) for m in reversed(under) if shown(m)]
    return tuple(lines)


def _paid(c: Contribution) -> Text:
    if not c.employer_part:  # self-paid (BPU, PMI): no employer share to show as Rp0
        return Text("{month}: {total} (paid by you), paid {paid_on}",
                    {"month": Month.parse(c.period), "total": Money(c.employee_part),
                     "paid_on": c.paid_on})
    return Text("{month}: {total} (employer {employer_part} + you {employee_part}), paid "
                "{paid_on}", {"month": Month.parse(c.period),
                              "total": Money(c.employer_part + c.employee_part),
                              "employer_part": Money(c.employer_part),
                              "employee_part": Money(c.employee_part), "paid_on": c.paid_on})


def _missing(record: ContributionRecord, period: Period, day: date) -> Text:
    standing = record.standing(period, day)
    if standing.standing is Standing.NOT_DUE:
        return Text("{month}: not recorded yet (due by {due})",
                    {"month": month(period), "due": standing.due})
    return Text("{month}: no contribution recorded", {"month": month(period)})


def _empty_year(found: ContributionPage, record: ContributionRecord, year: int,
                day: date) -> Say:
    """A year without contributions, said plainly, with buttons to the nearest years."""
    if record.first is None:
        text = Text("No contributions are recorded for this membership yet.")
    elif year > day.year:
        text = Text("{year} has not come yet, so there are no contributions for it.",
                    {"year": str(year)})
    elif year < record.first.year:
        text = Text("No contributions are recorded in {year}: the first one for KPJ {kpj} is "
                    "for {first}.", {"year": str(year), "kpj": mask_kpj(found.kpj),
                                     "first": month(record.first)})
    elif record.last is not None and year > record.last.year:
        text = Text("No contributions are recorded in {year}: the latest one for KPJ {kpj} is "
                    "for {last}.", {"year": str(year), "kpj": mask_kpj(found.kpj),
                                    "last": month(record.last)})
    else:
        text = Text("No contributions are recorded in {year}.", {"year": str(year)})
    nearest = sorted(found.years, key=lambda y: (abs(y - year), -y))[:YEAR_BUTTONS]
    years = tuple(_year_button(y) for y in sorted(nearest, reverse=True))
    rows = [years, (option("All years", "hist:year:all"),),
            (option("Check balance", "go:check_balance"), option("Main menu", "go:menu"))]
    return Say(text, tuple(row for row in rows if row))


def _year_button(year: int) -> Option:
    return Option(Text("{year}", {"year": str(year)}), f"hist:year:{year}")


def _buttons(found: ContributionPage) -> tuple[tuple[Option, ...], ...]:
    paging = []
    if found.page > 1:
        paging.append(option("◀ Newer", "hist:newer"))
    if found.page < found.pages:
        paging.append(option("Older ▶", "hist:older"))
    years = [_year_button(y) for y in found.years[:YEAR_BUTTONS] if y != found.year]
    if found.year is not None:
        years.append(option("All years", "hist:year:all"))
    rows = [tuple(paging), tuple(years),
            (option("Check balance", "go:check_balance"), option("Main menu", "go:menu"))]
    return tuple(row for row in rows if row)


async def browse(ctx: Context) -> Outcome:
    """Page, filter by year (a button or a typed year), or leave."""
    kpj = str(ctx.data.get("kpj", ""))
    year = ctx.data.get("year")
    page = int(ctx.data.get("page", 1))
    move = _requested_move(ctx)
    if not kpj or move is None:
        return Outcome(MENU, pass_on=True)
    if move == "newer":
        return await show_for(ctx, kpj, year, max(1, page - 1), paging=True)
    if move == "older":
        return await show_for(ctx, kpj, year, page + 1, paging=True)
    return await show_for(ctx, kpj, None if move == "all" else int(move))


def _requested_move(ctx: Context) -> str | None:
    event = ctx.event
    if event.kind is EventKind.BUTTON and event.data in ("hist:newer", "hist:older"):
        return event.data.removeprefix("hist:")
    if event.kind is EventKind.BUTTON and event.data.startswith("hist:year:"):
        value = event.data.removeprefix("hist:year:")
        return value if value == "all" or (value.isdigit() and len(value) == 4) else None
    text = event.text.strip()
    if event.kind is EventKind.TEXT and text.isascii() and text.isdigit() and len(text) == 4:
        return text
    return None


ENTRY = step(show_history, S.CHOOSE_KPJ, S.BROWSE, MENU)
FLOW = Flow("history", {
    S.CHOOSE_KPJ: step(choose, S.BROWSE, MENU),
    S.BROWSE: step(browse, S.BROWSE, MENU),
}, entries={"history": ENTRY}, commands=(
    Command("riwayat", "history", english="history", summary=N_("See contribution history")),))
