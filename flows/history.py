"""Riwayat iuran: contributions month by month, newest first, paged and filterable by year.

The first page answers, above its lines, the question members ask most ("iuran bulan ini
sudah masuk?"): whether last month's contribution is recorded.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from flows.flow import Context, Flow, Outcome, option, say, step
from flows.i18n import N_
from flows.identifiers import mask_kpj
from flows.memberships import chosen, target, today
from flows.menu import MENU, back_to_menu
from flows.ports import ContributionPage
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
    """``riwayat iuran``: the history, after choosing the membership when there are several."""
    found = await target(ctx, N_("You have several memberships. Which history would you like "
                                 "to see?"), S.CHOOSE_KPJ, with_all=False)
    return found if isinstance(found, Outcome) else await show_for(ctx, found)


async def choose(ctx: Context) -> Outcome:
    """The membership picked from the list."""
    pick = chosen(ctx)
    if pick is None or pick == "all":
        return Outcome(MENU, pass_on=True)
    return await show_for(ctx, pick)


async def show_for(ctx: Context, kpj: str, year: int | None = None, page: int = 1, *,
                   paging: bool = False) -> Outcome:
    """One page of ``kpj``'s history; the first unfiltered page starts with last month,
    except when the member is paging back to it (the page then replaces the one shown)."""
    found = await ctx.ports.balance.contributions(kpj, year=year, page=page,
                                                  page_size=PAGE_SIZE)
    if found is None:
        return back_to_menu(say("The data of KPJ {kpj} is not available. Please contact the "
                                "call centre 175.", kpj=mask_kpj(kpj)))
    answer = (_last_month(found, today(ctx)).text if page == 1 and year is None and not paging
              else None)
    return Outcome(S.BROWSE, (_page(found, answer),),
                   data={"kpj": kpj, "year": year, "page": found.page})


def _expected_period(day: date) -> Month:
    return Month(day.year - 1, 12) if day.month == 1 else Month(day.year, day.month - 1)


def _last_month(found: ContributionPage, day: date) -> Say:
    expected = _expected_period(day)
    if not found.items:
        return say("No contributions are recorded for this membership yet.")
    newest = found.items[0]
    latest = Month.parse(newest.period)
    if (latest.year, latest.month) >= (expected.year, expected.month):
        return say("Yes, the contribution for {month} is recorded (paid on {paid_on}).",
                   month=latest, paid_on=newest.paid_on)
    return say("The contribution for {month} is not recorded yet; the latest recorded is for "
               "{latest}. Employers usually pay by the 15th of the next month. If it is still "
               "missing after that, ask your employer's HR, or contact us.",
               month=expected, latest=latest)


def _page(found: ContributionPage, answer: Text | None = None) -> Say:
    """The page as one message with its buttons; ``answer`` (whether last month is recorded)
    leads it, so the member gets one message, not two a second apart."""
    lines = tuple(Text("{month}: {total} (employer {employer_part} + you {employee_part}), "
                       "paid {paid_on}",
                       {"month": Month.parse(c.period),
                        "total": Money(c.employer_part + c.employee_part),
                        "employer_part": Money(c.employer_part),
                        "employee_part": Money(c.employee_part), "paid_on": c.paid_on})
                  for c in found.items)
    header = (Text("Contributions of KPJ {kpj} in {year}, page {page} of {pages}:",
                   {"kpj": mask_kpj(found.kpj), "year": str(found.year), "page": found.page,
                    "pages": max(found.pages, 1)})
              if found.year else
              Text("Contributions of KPJ {kpj}, newest first, page {page} of {pages}:",
                   {"kpj": mask_kpj(found.kpj), "page": found.page,
                    "pages": max(found.pages, 1)}))
    body = Text("{header}\n{lines}", {"header": header, "lines": lines})
    if answer is not None:
        body = Text("{answer}\n\n{page}", {"answer": answer, "page": body})
    return Say(body, _buttons(found))


def _buttons(found: ContributionPage) -> tuple[tuple[Option, ...], ...]:
    paging = []
    if found.page > 1:
        paging.append(option("◀ Newer", "hist:newer"))
    if found.page < found.pages:
        paging.append(option("Older ▶", "hist:older"))
    years = [Option(Text("{year}", {"year": str(y)}), f"hist:year:{y}")
             for y in found.years[:YEAR_BUTTONS] if y != found.year]
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


FLOW = Flow("history", {
    S.CHOOSE_KPJ: step(choose, S.BROWSE, MENU),
    S.BROWSE: step(browse, S.BROWSE, MENU),
})
ENTRY = step(show_history, S.CHOOSE_KPJ, S.BROWSE, MENU)
