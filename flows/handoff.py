"""Reaching a person: a support ticket answered by an agent in this chat.

On yes a ticket opens; the member hears the queue position and expected wait, or when the
team answers outside business hours. While the ticket is open the conversation is captive:
everything the member writes is relayed to the agent desk, except ``/selesai`` and
``/batal``. Agent actions arrive as ``AGENT`` events; when the ticket closes the bot takes
over again and asks for a 1-5 rating. Without a desk configured, the official contact
channels are given instead.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from domain.redaction import redact
from flows import account
from flows.flow import (
    Command,
    Context,
    Flow,
    Outcome,
    delete_member_message,
    option,
    say,
    say_plural,
    step,
)
from flows.i18n import N_
from flows.identifiers import mask_kpj
from flows.intents import classify
from flows.menu import CANCEL, MENU, back_to_menu
from flows.otp import AWAIT as OTP_AWAIT
from flows.otp_codes import OtpPolicy
from flows.ports import DeskUnavailable, Ticket, TicketBrief, TicketStatus, TicketStore
from flows.types import EventKind, Say

WAIT_WINDOW = timedelta(days=7)
# Until when a code sent to this chat may still be typed (set when the handoff starts from the
# code step): six digits written before then are taken for the code, masked and deleted.
_OTP_UNTIL = "otp_until"
_CODE_DELETED = N_("I deleted your message with the code from this chat to keep it safe.")
DONE = Command("selesai", "menu", english="done")  # ends a talk with an agent; else the menu
_END = frozenset({*DONE.words, *CANCEL.words})
_ERASE = frozenset(account.ERASE.words)
_RATINGS = tuple(str(n) for n in range(1, 6))
QUEUED_ACK_SECONDS = 300  # a queued member's messages are acknowledged at most this often
_QUEUED_ACK_AT = "queued_ack_at"
_RATE_MISSED = "rate_missed"
_RATING_WORDS = {
    "sangat puas": 5, "puas": 4, "cukup": 3, "cukup puas": 3, "kurang puas": 2,
    "tidak puas": 1, "sangat tidak puas": 1, "very satisfied": 5, "satisfied": 4,
    "excellent": 5, "poor": 1, "not satisfied": 1, "dissatisfied": 1,
}
_RATING = re.compile(r"(?:nilai|rating|skor)?\s*([1-5])\s*(?:/\s*5|bintang|stars?|dari 5)?")


class HandoffState(StrEnum):
    """States of the handoff flow."""

    CONFIRM = "handoff:confirm"
    ACTIVE = "handoff:active"
    RATE = "handoff:rate"


S = HandoffState
ACTIVE = S.ACTIVE.value


def _contact_channels() -> Say:
    return say(
        "To talk to a person at BPJS Ketenagakerjaan:\n"
        "• Call centre 175 (every day, 06:00-22:00 WIB)\n"
        "• Email care@bpjsketenagakerjaan.go.id\n"
        "• A branch office, or Lapak Asik (online service)\n"
        "Never share your PIN, password or OTP code with anyone.")


async def offer(ctx: Context) -> Outcome:
    """Offer an agent (or, with no desk, the contact channels); an open ticket resumes."""
    tickets = ctx.ports.tickets
    if tickets is None or ctx.ports.desk is None:
        return back_to_menu(_contact_channels())
    current = await tickets.active_for(ctx.key)
    if current is not None:
        return Outcome(S.ACTIVE, (say("Your request #{id} is still open. Write here and the "
                                      "agent will see it; /done ends it.", id=current.id),),
                       data={"ticket": current.id, **_otp_window(ctx)})
    reason = ctx.slots.get("arg") or ctx.slots.get("intent", "handoff")
    return Outcome(S.CONFIRM, (say(
        "I can connect you with an agent of BPJS Ketenagakerjaan here in this chat. Shall I "
        "open a request?", (option("Yes, connect me", "ho:yes"), option("No", "ho:no"))),),
        data={"reason": reason, **_otp_window(ctx)})


async def confirm(ctx: Context) -> Outcome:
    """Open the ticket on yes; anything else leaves the menu to read it."""
    event = ctx.event
    yes = event.data == "ho:yes" or event.text.strip().lower() in ("ya", "yes", "iya", "y")
    if event.kind is EventKind.BUTTON and event.data == "ho:no":
        return back_to_menu(say("All right. I am here if you need me."))
    if not yes:
        return Outcome(MENU, pass_on=True)
    tickets = ctx.ports.tickets
    if tickets is None:
        return back_to_menu(_contact_channels())
    ticket = await tickets.open(ctx.key, ctx.session.locale,
                                redact(str(ctx.data.get("reason", ""))), ctx.now)
    delivered = await deliver_to_desk(ctx, ticket)
    says = [await _opened(ctx, ticket, tickets)] if delivered else [_desk_down(ticket)]
    return Outcome(S.ACTIVE, tuple(says), data={"ticket": ticket.id, **_otp_window(ctx)})


def _otp_window(ctx: Context) -> dict[str, Any]:
    """The session data that keeps a code sent to this chat masked in the handoff: set when
    the member comes from the code step, carried on while it lasts."""
    if ctx.session.state == OTP_AWAIT:
        return {_OTP_UNTIL: ctx.now.timestamp() + OtpPolicy().ttl}
    until = ctx.data.get(_OTP_UNTIL)
    return {_OTP_UNTIL: until} if isinstance(until, int | float) else {}


def _otp_pending(ctx: Context) -> bool:
    until = ctx.data.get(_OTP_UNTIL)
    return isinstance(until, int | float) and ctx.now.timestamp() < until


async def deliver_to_desk(ctx: Context, ticket: Ticket) -> bool:
    """Open the ticket's thread at the desk with its context; false when the desk is down
    (the ticket stays queued and is delivered later)."""
    desk, tickets = ctx.ports.desk, ctx.ports.tickets
    if desk is None or tickets is None:
        return False
    brief = await _brief(ctx, ticket, tickets)
    try:
        topic = await desk.open(brief)
    except DeskUnavailable:
        return False
    await tickets.set_topic(ticket.id, topic)
    return True


async def _brief(ctx: Context, ticket: Ticket, tickets: TicketStore) -> TicketBrief:
    kpjs = await ctx.ports.accounts.linked_kpjs(ctx.key)
    summary = await _summary(ctx, kpjs[0]) if kpjs else None
    member = _initials(summary[0]) if summary else "-"
    # Lines are stored redacted; masked again for any written before redaction existed.
    lines = tuple(replace(line, text=redact(line.text))
                  for line in await tickets.last_lines(ticket.id, 10))
    return TicketBrief(replace(ticket, reason=redact(ticket.reason)), member,
                       mask_kpj(kpjs[0]) if kpjs else None, summary[1] if summary else None,
                       lines)


async def _summary(ctx: Context, kpj: str) -> tuple[str, str] | None:
    try:
        found = await ctx.ports.balance.member_summary(kpj)
    except Exception:  # noqa: BLE001 - context for the agent is a nicety, never a blocker
        return None
    return (found.name, f"{found.status}, {found.segment}") if found else None


def _initials(name: str) -> str:
    return " ".join(part[0] + "***" for part in name.split() if part)


async def _opened(ctx: Context, ticket: Ticket, tickets: TicketStore) -> Say:
    hours = ctx.ports.hours
    if not hours.is_open(ctx.now):
        return say("Your request #{id} is open. Our agents are not at work now; they will "
                   "answer from {when}. Write your question here and they will see it. "
                   "/done ends the request.", id=ticket.id,
                   when=hours.next_open(ctx.now).replace(tzinfo=None))
    position = await tickets.queue_position(ticket.id)
    median = await tickets.median_first_reply(ctx.now - WAIT_WINDOW)
    minutes = max(1, math.ceil(median * max(position, 1) / 60)) if median else None
    if minutes is None:
        return say("Your request #{id} is open and you are number {position} in the queue. "
                   "Write your question here; an agent will answer in this chat. /done "
                   "ends the request.", id=ticket.id, position=position)
    return say_plural("Your request #{id} is open and you are number {position} in the queue; "
                      "the expected wait is about {minutes} minute. Write your question here; "
                      "an agent will answer in this chat. /done ends the request.",
                      "Your request #{id} is open and you are number {position} in the queue; "
                      "the expected wait is about {minutes} minutes. Write your question here; "
                      "an agent will answer in this chat. /done ends the request.",
                      minutes, id=ticket.id, position=position, minutes=minutes)


def _desk_down(ticket: Ticket) -> Say:
    return say("Sorry, no agent can be reached right now. Your request #{id} is kept and an "
               "agent will answer here as soon as possible. Meanwhile you can call 175 "
               "(06:00-22:00 WIB) or read the FAQ.", (option("FAQ", "go:faq"),), id=ticket.id)


async def relay(ctx: Context) -> Outcome:
    """While a ticket is open: relay what the member writes; /selesai or /batal ends it."""
    tickets, event = ctx.ports.tickets, ctx.event
    ticket = await tickets.get(int(ctx.data.get("ticket", 0))) if tickets else None
    if tickets is None or ticket is None or ticket.status is TicketStatus.CLOSED:
        return Outcome(MENU, pass_on=True)
    if event.kind is EventKind.COMMAND and event.data in _END:
        return await _member_ends(ctx, ticket, tickets)
    if event.kind is EventKind.COMMAND and event.data in _ERASE:
        return await account.ask_erase(ctx)  # the right to erasure holds mid-conversation too
    text, cleanup = _redacted(ctx)
    if not text:
        return Outcome(S.ACTIVE)
    return _told(await _relayed(ctx, ticket, tickets, text), cleanup)


def _redacted(ctx: Context) -> tuple[str, tuple[Say, ...]]:
    """What the desk and the transcript get: the member's words with identifiers masked; and
    the note that the member's message was deleted when it held the pending code."""
    raw, pending = _relayable(ctx), _otp_pending(ctx)
    text = redact(raw, otp_pending=pending)
    had_code = pending and text != redact(raw)
    return text, (delete_member_message(_CODE_DELETED),) if had_code else ()


def _told(outcome: Outcome, first: tuple[Say, ...]) -> Outcome:
    return replace(outcome, says=(*first, *outcome.says))


async def _relayed(ctx: Context, ticket: Ticket, tickets: TicketStore, text: str) -> Outcome:
    """Store the (redacted) line, relay it to the desk, tell the member what they need."""
    await tickets.add_line(ticket.id, "member", text, ctx.now)
    await tickets.touch(ticket.id, "member", ctx.now)
    if ctx.ports.desk is not None and ticket.topic_id is not None:
        try:
            await ctx.ports.desk.relay(ticket, text)
        except DeskUnavailable:
            return Outcome(S.ACTIVE, (say("Your message is saved; the agent will see it as "
                                          "soon as the desk is reachable again."),))
    return await _queued_ack(ctx, ticket, tickets)


async def _queued_ack(ctx: Context, ticket: Ticket, tickets: TicketStore) -> Outcome:
    """A message relayed while no agent has taken the ticket yet is acknowledged, at most
    once per :data:`QUEUED_ACK_SECONDS` (an agent's reply is the answer once claimed)."""
    last = ctx.data.get(_QUEUED_ACK_AT)
    now = ctx.now.timestamp()
    if ticket.agent is not None or (isinstance(last, int | float)
                                    and now - last < QUEUED_ACK_SECONDS):
        return Outcome(S.ACTIVE)
    hours = ctx.ports.hours
    if hours.is_open(ctx.now):
        told = say("Your message has been passed on. You are number {position} in the "
                   "queue; an agent will answer here.",
                   position=max(await tickets.queue_position(ticket.id), 1))
    else:
        told = say("Your message has been passed on. Our agents will answer from {when}.",
                   when=hours.next_open(ctx.now).replace(tzinfo=None))
    return Outcome(S.ACTIVE, (told,), data={**ctx.data, _QUEUED_ACK_AT: now})


def _relayable(ctx: Context) -> str:
    event = ctx.event
    if event.kind is EventKind.TEXT:
        return event.text.strip()
    if event.kind is EventKind.COMMAND:
        return f"/{event.data} {event.text}".strip()
    return ""  # buttons are stale here; a shared contact is personal data, not relayed


async def _member_ends(ctx: Context, ticket: Ticket, tickets: TicketStore) -> Outcome:
    await tickets.close(ticket.id, ctx.now, "ended by the member")
    if ctx.ports.desk is not None and ticket.topic_id is not None:
        with contextlib.suppress(DeskUnavailable):
            await ctx.ports.desk.notice(ticket, "The member ended the conversation.")
    if ticket.agent is None:
        return back_to_menu(say("Your request #{id} is cancelled.", id=ticket.id))
    return _ask_rating(ticket.id, say("You ended the conversation with the agent."))


def _ask_rating(ticket_id: int, before: Say) -> Outcome:
    question = say("How would you rate the help you received? 1 = poor, 5 = excellent.",
                   tuple(option("{n}", f"rate:{n}", n=n) for n in _RATINGS))
    return Outcome(S.RATE, (before, question), data={"ticket": ticket_id})


async def on_agent(ctx: Context) -> Outcome:
    """What the desk did (the ticket store is already updated), told to the member."""
    what, _, number = ctx.event.data.partition(":")
    ticket_id = int(number) if number.isdigit() else 0
    if what == "deliver":
        return await _redeliver(ctx, ticket_id)
    if what in ("closed", "idle_closed"):
        return _ask_rating(ticket_id, say(
            "This conversation was closed because there was no reply for 30 minutes. I am "
            "back to help you." if what == "idle_closed" else
            "The agent has closed this conversation. I am back to help you."))
    agent, text = ctx.event.sender or "-", ctx.event.text
    told = {
        "claimed": say("An agent, {agent}, is now handling your request.", agent=agent),
        "message": say("{text}\n— {agent}", text=text, agent=agent),
        "reminder": say("You are still in the queue. Thank you for waiting; an agent will "
                        "answer here."),
    }.get(what)
    return Outcome(S.ACTIVE, (told,) if told else (),
                   data={"ticket": ticket_id, **_otp_window(ctx)})


async def _redeliver(ctx: Context, ticket_id: int) -> Outcome:
    ticket = await ctx.ports.tickets.get(ticket_id) if ctx.ports.tickets else None
    says: tuple[Say, ...] = ()
    if ticket is not None and await deliver_to_desk(ctx, ticket):
        says = (say("An agent can now see your request and will answer here."),)
    return Outcome(S.ACTIVE, says, data={"ticket": ticket_id})


async def rate(ctx: Context) -> Outcome:
    """Store a 1-5 rating (a button, a digit, "5 bintang", stars, "sangat puas"). Anything
    else is asked again once, unless it is a request of its own; a second miss skips it."""
    event = ctx.event
    tickets, ticket_id = ctx.ports.tickets, int(ctx.data.get("ticket", 0))
    if event.kind is EventKind.BUTTON:
        value = event.data.removeprefix("rate:")
        stars = int(value) if value in _RATINGS else None
    else:
        stars = read_rating(event.text)
    if tickets is None or not ticket_id:
        return Outcome(MENU, pass_on=True)
    if stars is not None:
        await tickets.rate(ticket_id, stars)
        return back_to_menu(say("Thank you for your rating!"))
    if (event.kind is not EventKind.TEXT or ctx.data.get(_RATE_MISSED)
            or classify(event.text).name != "unknown"):
        return Outcome(MENU, pass_on=True)
    again = say("Please rate with a number from 1 (poor) to 5 (excellent), or press a "
                "button. /cancel skips the rating.",
                tuple(option("{n}", f"rate:{n}", n=n) for n in _RATINGS))
    return Outcome(S.RATE, (again,), data={"ticket": ticket_id, _RATE_MISSED: True})


def read_rating(text: str) -> int | None:
    """A typed rating from 1 to 5, or ``None``: "4", "5 bintang", "4/5", "⭐⭐⭐", "sangat
    puas"."""
    typed = " ".join(text.casefold().split())
    stars = typed.replace("\ufe0f", "").replace(" ", "")
    if stars and set(stars) <= {"⭐", "★", "🌟"}:
        return len(stars) if len(stars) <= 5 else None
    number = _RATING.fullmatch(typed)
    if number:
        return int(number.group(1))
    return _RATING_WORDS.get(typed.strip(" .!"))


ENTRY = step(offer, S.CONFIRM, S.ACTIVE, MENU)
FLOW = Flow("handoff", {
    S.CONFIRM: step(confirm, S.ACTIVE, MENU),
    S.ACTIVE: step(relay, S.ACTIVE, S.RATE, MENU, account.CONFIRM),
    S.RATE: step(rate, S.RATE, MENU),
}, captive=frozenset({S.ACTIVE.value}), entries={"handoff": ENTRY}, commands=(
    Command("petugas", "handoff", english="agent", summary=N_("Talk to an agent")), DONE))
AGENT_EVENTS = step(on_agent, S.ACTIVE, S.RATE)
