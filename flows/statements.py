"""Statements and charts from the balance card: a signed PDF contribution statement, a chart
of the balance year by year, and a projection of the JHT to age 56.

Only a chat linked after OTP verification gets any of them, for a KPJ it may see (every step
checks again: the chat may have been unlinked since the card was shown). The documents are made
by the :class:`~flows.ports.DocumentMaker` port (off the event loop); each statement issued is
recorded by its verification code (:class:`~flows.ports.StatementIssueStore`), so that anyone
can check it on ``/verify/<code>``. A chat gets at most :data:`STATEMENTS_PER_HOUR` statements an
hour.

A statement covers the last 12 months or a calendar year. Every month of the period is listed,
a month without a contribution as unpaid; the months before the first contribution are not
part of it. An inactive member's "last 12 months" are the 12 months up to the last
contribution. A member without employer (BPU, PMI) pays their own contributions: the statement
names no employer.

The projection needs the date of birth, which the bot does not keep: the member types it when
asking for the projection, it stays in the conversation state only while the chart is on
screen. It assumes the development rate of :attr:`~flows.flow.Ports.development_rate` and a
yearly wage growth the member can change with buttons; it is said to be an estimate, not a
promise, with its assumptions.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from babel.numbers import format_percent

from balance.rules import jht_share
from domain.gaps import ContributionRecord, Period, due_date
from flows.flow import Context, Flow, Outcome, option, say, step
from flows.i18n import N_
from flows.identifiers import Problem, mask_kpj, parse_birth_date
from flows.memberships import member_summary, offer_registration, today, visible_kpjs
from flows.menu import MENU, back_to_menu
from flows.messages import EXAMPLES, problem_message
from flows.otp import until
from flows.ports import Contribution, JhtBalance, MemberSummary, PortUnavailable
from flows.types import Attachment, EventKind, Money, Month, Option, Say, SayKind, Text
from statements.chart import YearBar
from statements.data import StatementData, StatementMonth
from statements.projection import Projection, project


class CodeTaken(PortUnavailable):
    """Every verification code tried names another statement already (three 50-bit codes in
    a row: in practice a store that refuses every record); the member hears the polite
    "try again later" of a failed port."""


class StatementState(StrEnum):
    """States of the statement and chart flow."""

    PERIOD = "statements:period"
    CHART = "statements:chart"
    BIRTH = "statements:birth"


S = StatementState
STATEMENTS_PER_HOUR = 3
CHARTS_PER_HOUR = 12
"""Charts (a wage-growth button makes one each) a chat may have an hour: each reads the
balance once per year shown."""
WINDOW_SECONDS = 3600.0
YEAR_BUTTONS = 8
WAGE_GROWTHS = (0, 3, 5, 8)  # percent a year, one button each
DEFAULT_GROWTH = 3
CLAIM_AGE = 56
MAX_BARS = 20  # years on the chart, the newest
UNAVAILABLE = N_("Statements and charts are not available just now. Please try again later.")
NOT_AVAILABLE = N_("The data of KPJ {kpj} is not available. Please contact the call centre "
                   "175.")


# ------------------------------------------------------------------------------ statements


async def offer_periods(ctx: Context, kpj: str) -> Outcome:
    """"Download statement" on the card: which period, the last 12 months or a year."""
    if ctx.ports.documents is None or ctx.ports.statements is None:
        return back_to_menu(say(UNAVAILABLE))
    if not await _may_see(ctx, kpj):
        return await _not_linked(ctx)
    periods = await ctx.ports.balance.contribution_periods(kpj)
    if periods is None:
        return back_to_menu(say(NOT_AVAILABLE, kpj=mask_kpj(kpj)))
    if not periods:
        return back_to_menu(say("No contributions are recorded for this membership yet."))
    years = sorted({Period.parse(p).year for p in periods}, reverse=True)
    year_buttons = [Option(Text("{year}", {"year": str(y)}), f"stmt:year:{y}")
                    for y in years[:YEAR_BUTTONS]]
    rows = [(option("Last 12 months", "stmt:last12"),),
            *(tuple(year_buttons[i:i + 4]) for i in range(0, len(year_buttons), 4)),
            (option("Main menu", "go:menu"),)]
    question = Text("Which period should the statement of KPJ {kpj} cover? It comes as a PDF "
                    "with a verification code anyone can check.", {"kpj": mask_kpj(kpj)})
    if len(years) > YEAR_BUTTONS:  # the older years have no button: they can be typed
        question = Text("{question}\n\nFor an older year ({first} to {last}), type the year.",
                        {"question": question, "first": str(years[-1]),
                         "last": str(years[YEAR_BUTTONS])})
    return Outcome(S.PERIOD, (Say(question, tuple(rows)),), data={"kpj": kpj, "years": years})


async def choose_period(ctx: Context) -> Outcome:
    """The period pressed (or a year typed): the statement, or the reason there is none."""
    kpj = str(ctx.data.get("kpj", ""))
    years = [int(y) for y in ctx.data.get("years", [])]
    event = ctx.event
    text = event.text.strip()
    if event.kind is EventKind.BUTTON and event.data == "stmt:last12" and kpj:
        return await issue(ctx, kpj, None)
    if event.kind is EventKind.BUTTON and event.data.startswith("stmt:year:") and kpj:
        year = event.data.removeprefix("stmt:year:")
        if year.isdigit() and int(year) in years:
            return await issue(ctx, kpj, int(year))
    if event.kind is EventKind.TEXT and text.isdigit() and kpj and int(text) in years:
        return await issue(ctx, kpj, int(text))
    return Outcome(MENU, pass_on=True)


async def issue(ctx: Context, kpj: str, year: int | None) -> Outcome:
    """Make, sign, record and send the statement of ``kpj`` for ``year`` (``None``: the last
    12 months), within the hourly limit."""
    documents, issued_store = ctx.ports.documents, ctx.ports.statements
    if documents is None or issued_store is None:
        return back_to_menu(say(UNAVAILABLE))
    if not await _may_see(ctx, kpj):
        return await _not_linked(ctx)
    wait = await _hourly_wait(ctx, "stmt", STATEMENTS_PER_HOUR)
    if wait > 0:
        return back_to_menu(say(
            "You have already downloaded {limit} statements in the last hour. Please try again "
            "after {until}.", limit=STATEMENTS_PER_HOUR, until=until(ctx, wait)))
    data = await statement_data(ctx, kpj, year)
    if data is None:
        return back_to_menu(say(NOT_AVAILABLE, kpj=mask_kpj(kpj)))
    issued = await documents.statement(data, locale=_locale(ctx), issued_at=ctx.now)
    for later in range(1, 4):  # a code already naming another statement: issue it again
        if await issued_store.record(ctx.key, issued.summary):
            break
        issued = await documents.statement(data, locale=_locale(ctx),
                                           issued_at=ctx.now + timedelta(seconds=later))
    else:
        raise CodeTaken("no free verification code for the statement")
    await _count_hourly(ctx, "stmt")
    name = f"statement-{data.period_label_from}-{data.period_label_to}.pdf"
    document = Say(Text(
        "Contribution statement of KPJ {kpj}, {start} to {end}.\nVerification code: {code}",
        {"kpj": mask_kpj(kpj), "start": Month.parse(data.period_label_from),
         "end": Month.parse(data.period_label_to), "code": issued.code}),
        ((option("Check balance", "go:check_balance"), option("Main menu", "go:menu")),),
        kind=SayKind.DOCUMENT, attachment=Attachment(name, "application/pdf", issued.pdf))
    return Outcome(MENU, (document,), data={})


async def _hourly_wait(ctx: Context, what: str, limit: int) -> float:
    """The seconds to wait when the chat already had ``limit`` documents of ``what`` this
    hour (else 0). Only documents delivered count (:func:`_count_hourly`): a failure costs the
    member nothing. A chat's updates are served one at a time, so read-then-count is safe."""
    tag = ctx.tag(what)
    count = await ctx.ports.kv.get(f"{what}:count:{tag}")
    if count is None or int(count) < limit:
        return 0.0
    since = await ctx.ports.kv.get(f"{what}:since:{tag}") or str(ctx.now.timestamp())
    return max(60.0, float(since) + WINDOW_SECONDS - ctx.now.timestamp())


async def _count_hourly(ctx: Context, what: str) -> None:
    """Count a document made; the window starts with the first of the hour."""
    tag = ctx.tag(what)
    await ctx.ports.kv.put_if_absent(f"{what}:since:{tag}", str(ctx.now.timestamp()),
                                     WINDOW_SECONDS)
    await ctx.ports.kv.incr(f"{what}:count:{tag}", WINDOW_SECONDS)


async def statement_data(ctx: Context, kpj: str, year: int | None) -> StatementData | None:
    """What the statement of ``kpj`` shows for ``year`` (``None``: the last 12 months), from
    the balance service; ``None`` when the service does not know the KPJ."""
    summary = await member_summary(ctx, kpj)
    day = today(ctx)
    figures = await ctx.ports.balance.jht_balance(kpj, day)
    periods = await ctx.ports.balance.contribution_periods(kpj)
    if summary is None or figures is None or periods is None:
        return None
    record = ContributionRecord.of(periods, summary.segment, summary.status)
    first, last = statement_window(record, day, year)
    paid = await _contributions(ctx, kpj, range(first.year, last.year + 1))
    if paid is None:
        return None
    months = tuple(_month(period, paid.get(str(period))) for period in _months(first, last))
    return StatementData(
        name=summary.name, nik_masked="", kpj=kpj, segment=summary.segment,
        employer=summary.employer.name if summary.employer else "",
        period_label_from=str(first), period_label_to=str(last), months=months,
        balance_as_of=figures.as_of, employer_total=figures.employer_part,
        employee_total=figures.employee_part, development=figures.development,
        balance_total=figures.total)


def statement_window(record: ContributionRecord, day: date,
                     year: int | None) -> tuple[Period, Period]:
    """The first and last month of a statement: a calendar year, or the last 12 months.

    It ends with the last month whose contribution is owed (last month once its due date, the
    15th, has passed; the month before until then), or later when contributions were paid in
    advance; an inactive membership's last 12 months end with its last contribution. Months
    before the first contribution are left out."""
    end = Period.of(day).shifted(-1)
    if day <= due_date(end):  # last month is not owed yet: not listed as unpaid
        end = end.shifted(-1)
    if record.last is not None and (record.last > end or not record.active):
        end = record.last
    if year is not None:
        first, last = Period(year, 1), min(Period(year, 12), max(end, Period(year, 1)))
    else:
        first, last = end.shifted(-11), end
    if record.first is not None and record.first > first and record.first <= last:
        first = record.first
    return first, last


async def _contributions(ctx: Context, kpj: str,
                         years: range) -> dict[str, Contribution] | None:
    """The contributions of ``years`` by period (a year holds at most 12: one page each)."""
    found: dict[str, Contribution] = {}
    for year in years:
        page = await ctx.ports.balance.contributions(kpj, year=year, page=1, page_size=12)
        if page is None:
            return None
        found.update((c.period, c) for c in page.items)
    return found


def _months(first: Period, last: Period) -> list[Period]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month = month.shifted(1)
    return months


def _month(period: Period, paid: Contribution | None) -> StatementMonth:
    if paid is None:
        return StatementMonth(period=str(period), wage=0, employer_part=0, employee_part=0,
                              paid_on=None)
    return StatementMonth(period=str(period), wage=paid.wage, employer_part=paid.employer_part,
                          employee_part=paid.employee_part, paid_on=paid.paid_on)


# ---------------------------------------------------------------------- chart and projection


async def show_chart(ctx: Context, kpj: str, *, birth: date | None = None,
                     growth: int = DEFAULT_GROWTH) -> Outcome:
    """"See chart" on the card: the balance year by year as a picture; with ``birth``, the
    projection to age 56 at ``growth`` percent wage growth a year, and buttons for others."""
    documents = ctx.ports.documents
    if documents is None:
        return back_to_menu(say(UNAVAILABLE))
    if not await _may_see(ctx, kpj):
        return await _not_linked(ctx)
    wait = await _hourly_wait(ctx, "chart", CHARTS_PER_HOUR)
    if wait > 0:
        return back_to_menu(say(
            "You have already asked for {limit} charts in the last hour. Please try again "
            "after {until}.", limit=CHARTS_PER_HOUR, until=until(ctx, wait)))
    summary = await member_summary(ctx, kpj)
    day = today(ctx)
    figures = await ctx.ports.balance.jht_balance(kpj, day)
    periods = await ctx.ports.balance.contribution_periods(kpj)
    if summary is None or figures is None or periods is None:
        return back_to_menu(say(NOT_AVAILABLE, kpj=mask_kpj(kpj)))
    record = ContributionRecord.of(periods, summary.segment, summary.status)
    bars = await year_bars(ctx, kpj, record, figures, day)
    if bars is None:
        return back_to_menu(say(NOT_AVAILABLE, kpj=mask_kpj(kpj)))
    projection = (await _projection(ctx, summary, figures, birth=birth, growth=growth)
                  if birth is not None and not _reached_claim_age(birth, day) else None)
    picture = await documents.chart(bars, locale=_locale(ctx), projection=projection)
    await _count_hourly(ctx, "chart")
    data = {"kpj": kpj, **({"birth": birth.isoformat()} if birth is not None else {})}
    caption = Text("JHT balance of KPJ {kpj} year by year, as of {date}: employer "
                   "contributions, your contributions and development. Years with months "
                   "without a contribution are marked.",
                   {"kpj": mask_kpj(kpj), "date": figures.as_of})
    if birth is None:
        rows: tuple[tuple[Option, ...], ...] = (
            (option("Projection to age 56", "chart:project"),), (option("Main menu", "go:menu"),))
    elif projection is None:
        caption = Text("{chart}\n\n{note}", {"chart": caption, "note": Text(
            "You have reached 56, the age at which the JHT can be claimed in full, so there "
            "is nothing to project.")})
        rows = ((option("Main menu", "go:menu"),),)
    else:
        caption = Text("{chart}\n\n{projection}", {"chart": caption, "projection":
                                                   projection_text(ctx, projection, summary)})
        rows = (_growth_buttons(growth), (option("Main menu", "go:menu"),))
    photo = Say(caption, rows, kind=SayKind.PHOTO,
                attachment=Attachment(f"jht-{day.isoformat()}.png", "image/png", picture))
    return Outcome(S.CHART, (photo,), data=data)


async def year_bars(ctx: Context, kpj: str, record: ContributionRecord, figures: JhtBalance,
                    day: date) -> list[YearBar] | None:
    """The balance at the end of each year since the first contribution (today's for this
    year), in its parts, with the months of the year that have no contribution."""
    if record.first is None:
        return []
    missing = [m.year for m in record.missing(day) if day > due_date(m)]  # late ones only
    bars: list[YearBar] = []
    for year in range(max(record.first.year, day.year - MAX_BARS + 1), day.year + 1):
        at_end = figures if year == day.year else await ctx.ports.balance.jht_balance(
            kpj, date(year, 12, 31))
        if at_end is None:
            return None
        bars.append(YearBar(year=year, employer=at_end.employer_part,
                            employee=at_end.employee_part, development=at_end.development,
                            missing_months=missing.count(year)))
    return bars


async def _projection(ctx: Context, summary: MemberSummary, figures: JhtBalance, *,
                      birth: date, growth: int) -> Projection:
    """The projection from today's balance and the last wage (none for an inactive
    membership: no new contributions are expected)."""
    wage = 0
    if summary.status == "active":
        page = await ctx.ports.balance.contributions(figures.kpj, page=1, page_size=1)
        wage = page.items[0].wage if page is not None and page.items else 0
    return project(balance=figures.total, monthly_wage=wage, birth_date=birth,
                   today=today(ctx), rate=ctx.ports.development_rate,
                   wage_growth=growth / 100,
                   segment=summary.segment)


def projection_text(ctx: Context, projection: Projection, summary: MemberSummary) -> Text:
    """The projection's figure, its assumptions, and that it is an estimate."""
    locale = _locale(ctx)
    assumptions = (Text("• no new contributions (the membership is inactive)")
                   if summary.status != "active" else
                   Text("• contributions of {amount} a month ({share} of your last wage), "
                        "the wage growing {growth} a year",
                        {"amount": Money(projection.monthly_contribution),
                         "share": _percent(float(jht_share(summary.segment)), locale),
                         "growth": _percent(projection.wage_growth, locale)}))
    return Text(
        "Projection at age 56 ({year}): about {amount}.\nAssumptions:\n• development of "
        "{rate} a year\n{assumptions}\n\nThis is an estimate, not a promise: development rates "
        "change every year and so may your wage. The JMO app shows your official balance.",
        {"year": str(projection.age_56_year), "amount": Money(projection.at_56),
         "rate": _percent(projection.rate, locale), "assumptions": assumptions})


def _growth_buttons(current: int) -> tuple[Option, ...]:
    return tuple(Option(Text("Wage +{growth}%" if g != current else "✓ Wage +{growth}%",
                             {"growth": str(g)}), f"chart:g:{g}") for g in WAGE_GROWTHS)


def _reached_claim_age(birth: date, day: date) -> bool:
    """From the month of the 56th birthday on, nothing is left to project (contributions are
    counted up to the month before it)."""
    return (day.year, day.month) >= (birth.year + CLAIM_AGE, birth.month)


def _percent(value: float, locale: str) -> str:
    return format_percent(value, "#,##0.##%", locale=locale)


async def chart_shown(ctx: Context) -> Outcome:
    """After the chart: ask for the date of birth for the projection, or project again with
    another wage growth."""
    kpj = str(ctx.data.get("kpj", ""))
    event = ctx.event
    if event.kind is not EventKind.BUTTON or not kpj:
        return Outcome(MENU, pass_on=True)
    if event.data == "chart:project":
        return Outcome(S.BIRTH, (say(
            "For the projection I need your date of birth, for example {date_example}. It is "
            "used for this chart only and is not kept after it.",
            (option("Main menu", "go:menu"),), **EXAMPLES),), data={"kpj": kpj})
    growth = event.data.removeprefix("chart:g:")
    birth = _stored_birth(ctx)
    if event.data.startswith("chart:g:") and growth.isdigit() and int(growth) in WAGE_GROWTHS \
            and birth is not None:
        return await show_chart(ctx, kpj, birth=birth, growth=int(growth))
    return Outcome(MENU, pass_on=True)


async def birth_typed(ctx: Context) -> Outcome:
    """The date of birth for the projection; a date that cannot be read is asked again."""
    kpj = str(ctx.data.get("kpj", ""))
    if ctx.event.kind is not EventKind.TEXT or not kpj:
        return Outcome(MENU, pass_on=True)
    birth = parse_birth_date(ctx.event.text, today(ctx))
    if isinstance(birth, Problem):
        return Outcome(S.BIRTH, (problem_message("birth_date", birth),), data={"kpj": kpj})
    return await show_chart(ctx, kpj, birth=birth)


def _stored_birth(ctx: Context) -> date | None:
    try:
        return date.fromisoformat(str(ctx.data.get("birth", "")))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------- common


async def _may_see(ctx: Context, kpj: str) -> bool:
    """Whether this chat, linked after verification, may see ``kpj`` (read afresh)."""
    return kpj in await visible_kpjs(ctx)


async def _not_linked(ctx: Context) -> Outcome:
    """A KPJ this chat may not (or no longer) see: registration is offered, nothing shown."""
    return offer_registration()


def _locale(ctx: Context) -> str:
    return ctx.session.locale or "id"


FLOW = Flow("statements", {
    S.PERIOD: step(choose_period, MENU),
    S.CHART: step(chart_shown, S.CHART, S.BIRTH, MENU),
    S.BIRTH: step(birth_typed, S.BIRTH, S.CHART, MENU),
}, digits=frozenset({S.BIRTH}))
