"""OTP verification: send a code to the contact on file, check what the member types, link.

The code rules live in :mod:`flows.otp_codes`; this module is the conversation around them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from flows import alerts
from flows.flow import (
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
from flows.identifiers import find_otp, holds_otp, mask_kpj
from flows.menu import MENU, back_to_menu
from flows.otp_codes import Issue, OtpBook, Refusal, Verdict
from flows.ports import OtpDeliveryFailed, OtpDestination, OtpWarner
from flows.types import EventKind, Say, Text


class OtpState(StrEnum):
    """States of the OTP flow."""

    AWAIT_CODE = "otp:await_code"


AWAIT = OtpState.AWAIT_CODE.value
_RESEND = "otp:resend"
_RESEND_ROW = (option("Code didn't arrive?", _RESEND),)
_CODE_DELETED = N_("I deleted your message with the code from this chat to keep it safe.")
_WIB = ZoneInfo("Asia/Jakarta")


def _book(ctx: Context) -> OtpBook:
    return OtpBook(ctx.ports.kv, ctx.ports.secret, ctx.ports.otp_guard)


def _minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


def clock_time(ctx: Context, seconds: float) -> str:
    """The time in Jakarta (WIB) ``seconds`` from now, rounded up to the minute, as the
    member's language writes it: ``14.05`` in Indonesian, ``14:05`` in English."""
    at = (ctx.now + timedelta(seconds=seconds)).astimezone(_WIB)
    if at.second or at.microsecond:
        at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return at.strftime("%H.%M" if ctx.session.locale == "id" else "%H:%M")


def _later_day(ctx: Context, seconds: float) -> date | None:
    """The date in Jakarta ``seconds`` from now when it is not today's, else ``None``."""
    day = (ctx.now + timedelta(seconds=seconds)).astimezone(_WIB).date()
    return day if day != ctx.now.astimezone(_WIB).date() else None


async def locked_for(ctx: Context, kpj: str = "") -> float:
    """Seconds until this chat (and ``kpj``, when known) may verify again after a lockout."""
    return await _book(ctx).locked_for(ctx.tag("otp"), ctx.now.timestamp(), kpj)


async def lock_of(ctx: Context, kpjs: Sequence[str]) -> float:
    """Seconds until the longest active lock of this chat or of ``kpjs`` ends (0: none)."""
    return await _book(ctx).lock_of(kpjs, ctx.tag("otp"), ctx.now.timestamp())


async def forget(ctx: Context, kpjs: Sequence[str]) -> int:
    """Erase this chat's OTP guard records and those of ``kpjs``, except an active lock."""
    return await _book(ctx).forget(kpjs, ctx.tag("otp"), ctx.now.timestamp())


def locked_notice(ctx: Context, wait: float) -> Say:
    """Verification is locked: say until when (with the date when it is not today)."""
    day = _later_day(ctx, wait)
    if day is not None:
        return say("Verification is locked after too many wrong codes. You can try again on "
                   "{date} at {time} WIB.", date=day, time=clock_time(ctx, wait))
    return say("Verification is locked after too many wrong codes. You can try again at "
               "{time} WIB.", time=clock_time(ctx, wait))


def until(ctx: Context, wait: float) -> Text:
    """When a lock ends: ``15.40 WIB``, or with the date when it is not today."""
    day = _later_day(ctx, wait)
    if day is not None:
        return Text("{date} at {time} WIB", {"date": day, "time": clock_time(ctx, wait)})
    return Text("{time} WIB", {"time": clock_time(ctx, wait)})


def lock_line(ctx: Context, wait: float) -> Text:
    """A line for /datasaya: verification is locked, until when."""
    return Text("Verification: locked after too many wrong codes, until {until}",
                {"until": until(ctx, wait)})


def contacts_on_file(ctx: Context, phone: str, email: str) -> list[OtpDestination]:
    """Where a code may go, in the order of ``OTP_CHANNELS``: only the contacts on file at
    BPJS, never a number the member typed."""
    address = {"whatsapp": phone, "sms": phone, "email": email}
    return [OtpDestination(kind, address[kind]) for kind in ctx.ports.otp_channels
            if address.get(kind)]


def _contacts(ctx: Context) -> list[OtpDestination]:
    kept = ctx.data.get("contacts")
    if isinstance(kept, list):
        return [OtpDestination(str(kind), str(address)) for kind, address in kept]
    if ctx.data.get("dest"):  # a session saved before the code had several ways to go
        return [OtpDestination(str(ctx.data.get("dest_kind", "sms")), str(ctx.data["dest"]))]
    return []


async def send_first(ctx: Context, kpj: str, contacts: Sequence[OtpDestination],
                     before: tuple[Say, ...] = ()) -> Outcome:
    """Issue and deliver the first code by the first way that works, then wait for it."""
    data = {"kpj": kpj, "contacts": [[c.kind, c.address] for c in contacts], "via": -1}
    outcome = await _deliver(replace(ctx, session=replace(ctx.session, data=data)), kpj,
                             contacts, 0)
    if outcome.state != AWAIT:
        return outcome
    return replace(outcome, says=(*before, *outcome.says),
                   data=outcome.data if outcome.data is not None else data)


_SENT = {
    "sms": N_("I sent a 6-digit code by SMS to {to}. Type it here; it is valid for 5 minutes."),
    "whatsapp": N_("I sent a 6-digit code by WhatsApp to {to}. Type it here; it is valid for 5 "
                   "minutes."),
    "email": N_("I sent a 6-digit code by email to {to}. Type it here; it is valid for 5 "
                "minutes."),
}


async def _deliver(ctx: Context, kpj: str, contacts: Sequence[OtpDestination],
                   start: int) -> Outcome:
    """Issue a code and send it by the first way that works, from ``contacts[start]`` on
    (round the list: "Code didn't arrive?" tries the next way first). When none works the
    step is kept, with the other ways to reach BPJS."""
    issued = await _book(ctx).issue(kpj, ctx.tag("otp"), ctx.now.timestamp())
    if issued.refusal is not None:
        return _refused(ctx, issued)
    for step_ in range(len(contacts)):
        index = (start + step_) % len(contacts)
        destination = contacts[index]
        try:
            await ctx.ports.otp_sender.send(destination, issued.code, ctx.session.locale)
        except OtpDeliveryFailed:
            continue
        await ctx.ports.accounts.audit(ctx.key, "otp_sent", ctx.now, destination.kind)
        return Outcome(AWAIT, (say(_SENT.get(destination.kind, _SENT["sms"]), _RESEND_ROW,
                                   to=destination.masked()),),
                       data={**ctx.data, "via": index})
    return Outcome(AWAIT, (say("Sorry, I could not send a code to your contacts on file just "
                               "now. Please tap \"Code didn't arrive?\" in a minute. You can "
                               "also use the JMO app, or call 175.", _RESEND_ROW),))


def _refused(ctx: Context, issued: Issue) -> Outcome:
    if issued.refusal is Refusal.TOO_SOON:
        return Outcome(AWAIT, (replace(say_plural(
            "A code was sent less than a minute ago. Please wait {n} second, then tap "
            "\"Code didn't arrive?\".",
            "A code was sent less than a minute ago. Please wait {n} seconds, then tap "
            "\"Code didn't arrive?\".", math.ceil(issued.wait)), options=(_RESEND_ROW,)),))
    if issued.refusal is Refusal.HOURLY_LIMIT:
        return Outcome(AWAIT, (say("You have reached the limit of codes for this hour. You can "
                                   "ask for a new code at {time} WIB.",
                                   time=clock_time(ctx, issued.wait)),))
    if issued.refusal is Refusal.DAILY_LIMIT:
        return Outcome(AWAIT, (say("You have reached the limit of codes for today. You can ask "
                                   "for a new code on {date} at {time} WIB.",
                                   date=_day(ctx, issued.wait),
                                   time=clock_time(ctx, issued.wait)),))
    return back_to_menu(locked_notice(ctx, issued.wait))


def _day(ctx: Context, seconds: float) -> date:
    return (ctx.now + timedelta(seconds=seconds)).astimezone(_WIB).date()


async def _with_resend(ctx: Context, kpj: str, first: Say) -> tuple[Say, ...]:
    """``first``, then the "Code didn't arrive?" button if the rules allow one now, or when they
    will (seconds, or the time once this hour's codes are used up)."""
    refusal = await _book(ctx).refusal(kpj, ctx.tag("otp"), ctx.now.timestamp())
    if refusal is None:
        return (replace(first, options=(*first.options, _RESEND_ROW)),)
    if refusal.refusal is Refusal.TOO_SOON:
        return (first, replace(say_plural(
            "You can ask for a new code in {n} second.",
            "You can ask for a new code in {n} seconds.", math.ceil(refusal.wait)),
            options=(_RESEND_ROW,)))
    if refusal.refusal is Refusal.HOURLY_LIMIT:
        return (first, say("You can ask for a new code at {time} WIB.",
                           time=clock_time(ctx, refusal.wait)))
    if refusal.refusal is Refusal.DAILY_LIMIT:
        return (first, say("You can ask for a new code on {date} at {time} WIB.",
                           date=_day(ctx, refusal.wait), time=clock_time(ctx, refusal.wait)))
    return (first,)


async def await_code(ctx: Context) -> Outcome:
    """Check a typed code; a button asks for a new one."""
    event = ctx.event
    kpj = str(ctx.data.get("kpj", ""))
    contacts = _contacts(ctx)
    if not kpj or not contacts:
        return back_to_menu(say("Your registration step has expired. Please start again "
                                "with /register."))
    if event.kind is EventKind.BUTTON and event.data == _RESEND:  # by the next way first
        return await _deliver(ctx, kpj, contacts, int(ctx.data.get("via", -1)) + 1)
    if event.kind is not EventKind.TEXT or not any(ch.isdigit() for ch in event.text):
        return Outcome(AWAIT, await _with_resend(ctx, kpj, say(
            "Please type the 6-digit code you received. /cancel stops the registration.")))
    return await _check(ctx, kpj, event.text, contacts)


async def _not_a_code(ctx: Context, kpj: str, text: str) -> Outcome:
    """Digits that are not one code: a stray digit (or a console button number) gets a hint;
    a message that may hold a code is deleted first, and is not counted as a wrong try."""
    if not holds_otp(text):
        return Outcome(AWAIT, await _with_resend(ctx, kpj, say(
            "The code has 6 digits. Please type all 6 digits you received.")))
    return Outcome(AWAIT, (delete_member_message(_CODE_DELETED), *await _with_resend(
        ctx, kpj, say("Please type just one code: the 6 digits of the last code you "
                      "received."))))


async def _linked(ctx: Context, kpj: str, cleanup: Say) -> Outcome:
    """Link the chat after a right code; then the alerts offer (its question the last message,
    so its buttons are [1] and [2]) or, when there is none, the main menu."""
    await ctx.ports.accounts.link(ctx.key, kpj, ctx.now)
    await ctx.ports.accounts.audit(ctx.key, "linked", ctx.now)
    offer = await alerts.offer(ctx)
    if offer:
        return Outcome(MENU, (cleanup, say("Verified! This chat is now linked to KPJ {kpj}.",
                                           kpj=mask_kpj(kpj)), *offer), data={})
    return back_to_menu(cleanup, say(
        "Verified! This chat is now linked to KPJ {kpj}. Choose \"Check balance\" to see "
        "your JHT balance.", kpj=mask_kpj(kpj)))


async def _check(ctx: Context, kpj: str, text: str,
                 contacts: Sequence[OtpDestination]) -> Outcome:
    code = find_otp(text)
    if code is None:
        return await _not_a_code(ctx, kpj, text)
    cleanup = delete_member_message(_CODE_DELETED)
    result = await _book(ctx).check(kpj, ctx.tag("otp"), code, ctx.now.timestamp())
    if result.verdict is Verdict.OK:
        return await _linked(ctx, kpj, cleanup)
    if result.verdict is Verdict.WRONG:
        return Outcome(AWAIT, (cleanup, *await _with_resend(ctx, kpj, say_plural(
            "That code is not right. You have {n} try left.",
            "That code is not right. You have {n} tries left.", result.tries_left))))
    if result.verdict is Verdict.EXPIRED:
        return Outcome(AWAIT, (cleanup, *await _with_resend(ctx, kpj, say(
            "This code has expired. Please ask for a new one."))))
    await ctx.ports.accounts.audit(ctx.key, "otp_locked", ctx.now,
                                   f"{_minutes(result.wait)} min")
    if result.notify:
        await _warn(ctx, contacts)
    day = _later_day(ctx, result.wait)
    if day is not None:
        return back_to_menu(cleanup, say(
            "Too many wrong codes. For your safety, verification is locked until {date} at "
            "{time} WIB.", date=day, time=clock_time(ctx, result.wait)))
    return back_to_menu(cleanup, say_plural(
        "Too many wrong codes. For your safety, verification is locked for {n} minute, "
        "until {time} WIB.",
        "Too many wrong codes. For your safety, verification is locked for {n} minutes, "
        "until {time} WIB.", _minutes(result.wait), time=clock_time(ctx, result.wait)))


async def _warn(ctx: Context, contacts: Sequence[OtpDestination]) -> None:
    """Tell the contact on file, without a code, that the membership's verification was
    locked (someone may be trying to link a chat to it), by the first way that can. Best
    effort: a failed notice does not change the answer."""
    sender = ctx.ports.otp_sender
    if not isinstance(sender, OtpWarner):
        return
    for destination in contacts:
        try:
            await sender.warn(destination)
        except OtpDeliveryFailed:
            continue
        await ctx.ports.accounts.audit(ctx.key, "otp_lock_notice", ctx.now, destination.kind)
        return


FLOW = Flow("otp", {AWAIT: step(await_code, AWAIT, MENU)}, digits=frozenset({AWAIT}))
