"""OTP verification: send a code to the contact on file, check what the member types, link.

The code rules live in :mod:`flows.otp_codes`; this module is the conversation around them.
"""

from __future__ import annotations

import math
from enum import StrEnum

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
from flows.identifiers import Problem, mask_kpj, parse_otp
from flows.menu import MENU, back_to_menu
from flows.otp_codes import Issue, OtpBook, Refusal, Verdict
from flows.ports import OtpDeliveryFailed, OtpDestination
from flows.types import EventKind, Say


class OtpState(StrEnum):
    """States of the OTP flow."""

    AWAIT_CODE = "otp:await_code"


AWAIT = OtpState.AWAIT_CODE.value
_RESEND = "otp:resend"
_RESEND_ROW = (option("Send a new code", _RESEND),)
_CODE_DELETED = N_("I deleted your message with the code from this chat to keep it safe.")


def _book(ctx: Context) -> OtpBook:
    return OtpBook(ctx.ports.kv, ctx.ports.secret)


def _minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


async def send_first(ctx: Context, kpj: str, destination: OtpDestination,
                     before: tuple[Say, ...] = ()) -> Outcome:
    """Issue and deliver the first code, then wait for it."""
    data = {"kpj": kpj, "dest_kind": destination.kind, "dest": destination.address}
    outcome = await _deliver(ctx, kpj, destination)
    if outcome.state != AWAIT:
        return outcome
    return Outcome(AWAIT, (*before, *outcome.says), data=data)


async def _deliver(ctx: Context, kpj: str, destination: OtpDestination) -> Outcome:
    issued = await _book(ctx).issue(kpj, ctx.tag("otp"), ctx.now.timestamp())
    if issued.refusal is not None:
        return _refused(issued)
    try:
        await ctx.ports.otp_sender.send(destination, issued.code, ctx.session.locale)
    except OtpDeliveryFailed:
        return Outcome(AWAIT, (say("Sorry, the code could not be sent just now. Please tap "
                                   "\"Send a new code\" in a minute.",
                                   _RESEND_ROW),))
    await ctx.ports.accounts.audit(ctx.key, "otp_sent", ctx.now, destination.kind)
    text = (N_("I sent a 6-digit code by SMS to {to}. Type it here; it is valid for 5 minutes.")
            if destination.kind == "sms" else
            N_("I sent a 6-digit code by email to {to}. Type it here; it is valid for 5 "
               "minutes."))
    return Outcome(AWAIT, (say(text, _RESEND_ROW,
                               to=destination.masked()),))


def _refused(issued: Issue) -> Outcome:
    minutes = _minutes(issued.wait)
    if issued.refusal is Refusal.TOO_SOON:
        return Outcome(AWAIT, (say("A code was sent less than a minute ago. Please wait "
                                   "{seconds} seconds, then tap \"Send a new code\".",
                                   _RESEND_ROW, seconds=math.ceil(issued.wait)),))
    if issued.refusal is Refusal.HOURLY_LIMIT:
        return Outcome(AWAIT, (say("You have asked for the maximum number of codes this hour. "
                                   "Please try again in {minutes} minutes.", minutes=minutes),))
    return back_to_menu(say("Verification of this membership is locked for {minutes} minutes "
                            "after too many wrong codes. Please try again later.",
                            minutes=minutes))


async def await_code(ctx: Context) -> Outcome:
    """Check a typed code; a button asks for a new one."""
    event = ctx.event
    kpj = str(ctx.data.get("kpj", ""))
    destination = OtpDestination(str(ctx.data.get("dest_kind", "sms")),
                                 str(ctx.data.get("dest", "")))
    if not kpj or not destination.address:
        return back_to_menu(say("Your registration step has expired. Please start again "
                                "with /daftar."))
    if event.kind is EventKind.BUTTON and event.data == _RESEND:
        return await _deliver(ctx, kpj, destination)
    if event.kind is not EventKind.TEXT or not any(ch.isdigit() for ch in event.text):
        return Outcome(AWAIT, (say("Please type the 6-digit code you received, or tap \"Send "
                                   "a new code\". /batal cancels.",
                                   _RESEND_ROW),))
    return await _check(ctx, kpj, event.text)


async def _check(ctx: Context, kpj: str, text: str) -> Outcome:
    code = parse_otp(text)
    cleanup = delete_member_message(_CODE_DELETED)
    if isinstance(code, Problem):
        return Outcome(AWAIT, (cleanup, say("The code has 6 digits. Please type it again.")))
    result = await _book(ctx).check(kpj, ctx.tag("otp"), code, ctx.now.timestamp())
    if result.verdict is Verdict.OK:
        await ctx.ports.accounts.link(ctx.key, kpj, ctx.now)
        await ctx.ports.accounts.audit(ctx.key, "linked", ctx.now)
        return back_to_menu(cleanup, say(
            "Verified! This chat is now linked to KPJ {kpj}. Choose \"Check balance\" to see "
            "your JHT balance.", kpj=mask_kpj(kpj)))
    if result.verdict is Verdict.WRONG:
        return Outcome(AWAIT, (cleanup, say_plural(
            "That code is not right. You have {n} try left.",
            "That code is not right. You have {n} tries left.", result.tries_left)))
    if result.verdict is Verdict.EXPIRED:
        return Outcome(AWAIT, (cleanup, say("This code has expired. Tap \"Send a new code\".",
                                            _RESEND_ROW)))
    await ctx.ports.accounts.audit(ctx.key, "otp_locked", ctx.now)
    return back_to_menu(cleanup, say(
        "Too many wrong codes. For your safety, verification is locked for {minutes} minutes.",
        minutes=_minutes(result.wait)))


FLOW = Flow("otp", {AWAIT: step(await_code, AWAIT, MENU)})
