"""``/datasaya`` (``/mydata``): what the bot holds about this chat, the member's right of access
(UU PDP No. 27/2022), with the buttons to unlink the chat and to erase the data.

It shows the conversation's language, the linked memberships, the standing consent records,
an open request for help, an active lock-out of OTP verification (of this chat or of a
linked membership), the contribution statements issued to this chat (their codes) and the
contribution alerts turned on, with how many alerts were sent.
Nothing is shown unmasked: a KPJ as ``123*****901``, a name as ``S*** R*****``. The names
come from the balance service; when it cannot be reached the memberships are still listed,
without names.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.alerts import KINDS
from flows import otp
from flows.alerts import KIND_NAMES
from flows.flow import Command, Context, Flow, Outcome, option, say, step
from flows.i18n import N_
from flows.identifiers import mask_kpj
from flows.memberships import JAKARTA, group_by_person
from flows.menu import MENU
from flows.ports import (
    BalanceServiceUnavailable,
    ConsentGiven,
    StatementRecord,
    Ticket,
    TicketStatus,
)
from flows.types import Option, Text

LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
STATUS = {TicketStatus.QUEUED: Text("waiting for an agent"),
          TicketStatus.OPEN: Text("being handled by an agent")}


async def show_my_data(ctx: Context) -> Outcome:
    """Everything the bot holds about this chat, masked, or plainly that it holds nothing."""
    linked = await ctx.ports.accounts.linked_kpjs(ctx.key)
    consents = await ctx.ports.accounts.consents(ctx.key)
    ticket = await ctx.ports.tickets.active_for(ctx.key) if ctx.ports.tickets else None
    lock = await otp.lock_of(ctx, linked)
    issued = await ctx.ports.statements.for_subject(ctx.key) if ctx.ports.statements else []
    alert_lines = await _alerts(ctx)
    language = LANGUAGES.get(ctx.session.locale, ctx.session.locale)
    if not linked and not consents and ticket is None and lock <= 0 and not issued \
            and not alert_lines:
        return Outcome(MENU, (say(
            "This chat is not linked to any membership, and the bot holds no personal data "
            "about it. It only remembers the language of this conversation: {language}.",
            (option("Register / link account", "go:register"), option("Main menu", "go:menu")),
            language=language),), data={})
    details = (Text("Language: {language}", {"language": language}),
               await _memberships(ctx, linked), *_consents(consents),
               *((_ticket(ticket),) if ctx.ports.tickets is not None else ()),
               *((otp.lock_line(ctx, lock),) if lock > 0 else ()),
               *((_statements(issued),) if issued else ()), *alert_lines)
    rows: list[tuple[Option, ...]] = [
        (*((option("Unlink this chat", "go:logout"),) if linked else ()),
         option("Erase my data", "go:delete_data")),
        (option("Main menu", "go:menu"),)]
    return Outcome(MENU, (say(
        "This is what the bot holds about this chat:\n\n{details}\n\n"
        "To unlink this chat from the membership or to erase this data, use the buttons below.",
        *rows, details=details),), data={})


async def _memberships(ctx: Context, linked: Sequence[str]) -> Text:
    if not linked:
        return Text("Linked memberships: none")
    try:
        people = await group_by_person(ctx, linked)
    except BalanceServiceUnavailable:
        lines = tuple(Text("• KPJ {kpj}", {"kpj": mask_kpj(kpj)}) for kpj in linked)
    else:
        lines = tuple(Text("• KPJ {kpj} · {name}", {"kpj": mask_kpj(kpj),
                                                     "name": person.masked_name})
                      if person.name else Text("• KPJ {kpj}", {"kpj": mask_kpj(kpj)})
                      for person in people for kpj in person.kpjs)
    return Text("Linked memberships:\n{lines}", {"lines": lines})


def _consents(consents: Sequence[ConsentGiven]) -> tuple[Text, ...]:
    if not consents:
        return (Text("Consent: none on record"),)
    return tuple(Text("Consent: given on {date} (notice version {version})",
                      {"date": c.accepted_at.astimezone(JAKARTA).date(), "version": c.version})
                 for c in consents)


def _statements(issued: Sequence[StatementRecord]) -> Text:
    """How many statements were issued to this chat, with their codes (what ``/hapusdata``
    forgets)."""
    return Text("Contribution statements issued: {n} (codes {codes})",
                plural="Contribution statements issued: {n} (codes {codes})", n=len(issued),
                params={"codes": ", ".join(s.code for s in issued)})


async def _alerts(ctx: Context) -> tuple[Text, ...]:
    """The contribution alerts turned on, and how many alerts were sent (when any): what
    ``/hapusdata`` ends and forgets. Nothing when alerts are not offered here."""
    kinds = await ctx.ports.alerts.kinds(ctx.key) if ctx.ports.alerts is not None else ()
    sent = (await ctx.ports.alert_marks.sent_count(ctx.key)
            if ctx.ports.alert_marks is not None else 0)
    lines: list[Text] = []
    if kinds:
        lines.append(Text("Contribution alerts on:\n{lines}", {"lines": tuple(
            Text("• {kind}", {"kind": Text(KIND_NAMES[kind])})
            for kind in KINDS if kind in kinds)}))
    if sent > 0:
        lines.append(Text("Alerts sent: {n}", {"n": sent}))
    return tuple(lines)


def _ticket(ticket: Ticket | None) -> Text:
    if ticket is None:
        return Text("Open request for help: none")
    return Text("Open request for help #{number}: {status}, opened on {date}",
                {"number": str(ticket.id),
                 "status": STATUS.get(ticket.status, STATUS[TicketStatus.OPEN]),
                 "date": ticket.opened_at.astimezone(JAKARTA).date()})


FLOW = Flow("mydata", entries={"my_data": step(show_my_data, MENU)}, commands=(
    Command("datasaya", "my_data", english="mydata",
            summary=N_("See what the bot keeps about this chat")),))
