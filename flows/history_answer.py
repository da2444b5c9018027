"""The direct answer above the first history page: "did my employer pay last month?".

It names last month's standing (paid, not due yet, late), every month of the last 12 whose
due date passed without a contribution, and what this member can do about it: a wage earner
(PU) asks HR and may report an employer who deducted but did not pay; a member who pays their
own (BPU, PMI) pays through the official channels; an inactive membership expects nothing new
but its balance still grows. The gap rules are :mod:`domain.gaps`.
"""

from __future__ import annotations

from datetime import date

from domain.gaps import ContributionRecord, MonthStanding, Period, Standing
from flows.flow import option
from flows.ports import Contribution
from flows.types import Month, Option, Text

UNPAID_WINDOW = 12


def month(period: Period) -> Month:
    """A domain period as the engine writes months."""
    return Month(period.year, period.month)


def direct_answer(record: ContributionRecord, newest: tuple[Contribution, ...],
                  today: date) -> tuple[Text, tuple[Option, ...]]:
    """The answer and its extra buttons; ``newest`` are the first page's items (for the paid
    date of last month, when it is among them)."""
    if record.last is None:
        return Text("No contributions are recorded for this membership yet."), ()
    previous = Period.of(today).shifted(-1)
    overdue = tuple(m for m in record.unpaid(today, UNPAID_WINDOW)
                    if m.standing is Standing.LATE and m.period != previous)
    buttons: tuple[Option, ...] = ()
    if record.active:
        last_month = record.standing(previous, today)
        parts = [_last_month(record, last_month, newest, advice_follows=bool(overdue))]
        late = bool(overdue) or last_month.standing is Standing.LATE
        owing = late or last_month.standing is Standing.NOT_DUE
    else:
        parts = [_inactive(record.last)]
        late = owing = bool(overdue)
        buttons = (option("Claim JHT", "go:faq.claim_jht"),)
    if overdue:
        parts.append(_late_list(overdue))
    advice = _advice(record.payer, late=late, owing=owing)
    if advice is not None:
        parts.append(advice)
    return paragraphs(parts), buttons


def paragraphs(parts: list[Text]) -> Text:
    """The parts as one message, a blank line between them."""
    joined = parts[-1]
    for part in reversed(parts[:-1]):
        joined = Text("{first}\n\n{rest}", {"first": part, "rest": joined})
    return joined


def _last_month(record: ContributionRecord, standing: MonthStanding,
                newest: tuple[Contribution, ...], *, advice_follows: bool) -> Text:
    shown = month(standing.period)
    if standing.standing is Standing.PAID:
        paid = next((c.paid_on for c in newest if c.period == str(standing.period)), None)
        if paid is None:
            return Text("Yes, the contribution for {month} is recorded.", {"month": shown})
        return Text("Yes, the contribution for {month} is recorded (paid on {paid_on}).",
                    {"month": shown, "paid_on": paid})
    if standing.standing is Standing.LATE:
        return Text("The contribution for {month} is not recorded, and it was due by {due}.",
                    {"month": shown, "due": standing.due})
    if record.payer == "employer" and advice_follows:  # "ask HR" comes with the advice
        return Text("The contribution for {month} is not recorded yet. That is not late: your "
                    "employer has until {due} to pay it.", {"month": shown, "due": standing.due})
    if record.payer == "employer":
        return Text("The contribution for {month} is not recorded yet. That is not late: your "
                    "employer has until {due} to pay it. If it is still missing after that, ask "
                    "your company's HR department.", {"month": shown, "due": standing.due})
    return Text("The contribution for {month} is not recorded yet. That is not late: you can "
                "pay it until {due}.", {"month": shown, "due": standing.due})


def _late_list(late: tuple[MonthStanding, ...]) -> Text:
    lines = tuple(Text("• {month} (due by {due})", {"month": month(m.period), "due": m.due})
                  for m in late)
    return Text("Not recorded in the last 12 months, past their due date:\n{lines}",
                {"lines": lines})


def _inactive(last: Period) -> Text:
    return Text("This membership is inactive, so no contributions are expected after {month}, "
                "the last one recorded. Your JHT balance still earns development every year "
                "until you claim it. You can claim it, for example, one month after leaving "
                "work or at age 56.", {"month": month(last)})


def _advice(payer: str, *, late: bool, owing: bool) -> Text | None:
    """What to do: a wage earner when a month is late; a member who pays their own whenever
    a month is still to be paid."""
    if payer == "employer":
        if not late:
            return None
        return Text("Please ask your company's HR department first. If your employer deducted "
                    "the contribution from your salary but did not pay it, report it to BPJS "
                    "Ketenagakerjaan: call centre 175, Lapak Asik (our online service) or any "
                    "branch office. Deducting without paying is the employer's offence, not "
                    "yours.")
    if not owing:
        return None
    return Text("You pay your own contributions: pay through the official channels (the JMO "
                "app, banks or retail partners) by the 15th of the following month. Nobody "
                "collects contributions by transfer to a personal account.")
