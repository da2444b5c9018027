"""Registration: link this chat to a membership after consent, identity check and OTP.

Consent (UU PDP) comes first and is recorded in SQL with its text version. Then NIK, KPJ and
date of birth, each validated on the spot; the balance service confirms they belong together
without saying which one was wrong; then the phone number; then a code goes to the contact on
file at BPJS (never to the number typed here). The NIK leaves the session once checked.
A chat locked out of verification, or with too many failed identity checks this hour, is told
so when registration starts, before typing anything.
"""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from typing import Any

from flows import otp
from flows.consent import CONSENT_AGREE, CONSENT_DECLINE, CONSENT_NOTICE, CONSENT_VERSION
from flows.flow import (
    Command,
    Context,
    Flow,
    Outcome,
    delete_member_message,
    option,
    say,
    step,
)
from flows.i18n import N_
from flows.identifiers import (
    Nik,
    Problem,
    parse_birth_date,
    parse_kpj,
    parse_nik,
    parse_phone,
    same_phone,
)
from flows.menu import MENU, back_to_menu
from flows.messages import EXAMPLES, NIK_DELETED, problem_message
from flows.ports import IdentityMatch
from flows.types import EventKind, Option, Say, SayKind, Text


class RegistrationState(StrEnum):
    """States of the registration flow."""

    CONSENT = "registration:consent"
    ASK_NIK = "registration:ask_nik"
    ASK_KPJ = "registration:ask_kpj"
    ASK_BIRTH_DATE = "registration:ask_birth_date"
    ASK_PHONE = "registration:ask_phone"


S = RegistrationState
IDENTITY_FAILURES_PER_HOUR = 5
_HOUR = 3600.0
_YES = {"ya", "iya", "setuju", "saya setuju", "yes", "agree", "i agree", "ok", "oke", "y"}
_NO = {"tidak", "tdk", "gak", "nggak", "no", "tidak setuju", "decline", "n"}


async def begin(ctx: Context) -> Outcome:
    """Start registration: the consent notice, unless consent is already on record."""
    prefill = {k: v for k, v in ctx.slots.items() if k in ("nik", "kpj", "birth_date")}
    cleanup = (delete_member_message(NIK_DELETED),) if "nik" in prefill else ()
    kpj = parse_kpj(str(prefill.get("kpj", "")))
    refusal = await _refusal(ctx, "" if isinstance(kpj, Problem) else kpj)
    if refusal is not None:
        return back_to_menu(*cleanup, refusal)
    if await ctx.ports.accounts.has_consent(ctx.key, CONSENT_VERSION):
        return await _after_consent(ctx, prefill, cleanup)
    notice = say(CONSENT_NOTICE, (option(CONSENT_AGREE, "reg:agree"),
                                  option(CONSENT_DECLINE, "reg:decline")),
                 version=CONSENT_VERSION)
    return Outcome(S.CONSENT, (*cleanup, notice), data={"prefill": prefill})


async def consent(ctx: Context) -> Outcome:
    """Record the member's agreement, or stop without keeping anything."""
    answer = _yes_no(ctx)
    if answer is None:
        return Outcome(S.CONSENT, (say("Please choose \"I agree\" to continue, or \"No, thanks\".",
                                       (option(CONSENT_AGREE, "reg:agree"),
                                        option(CONSENT_DECLINE, "reg:decline"))),))
    if not answer:
        return back_to_menu(say("Understood. Nothing was stored. You can register any time "
                                "with /register."))
    await ctx.ports.accounts.record_consent(ctx.key, CONSENT_VERSION,
                                            ctx.session.locale, ctx.now)
    await ctx.ports.accounts.audit(ctx.key, "consent_given", ctx.now, CONSENT_VERSION)
    prefill = dict(ctx.data.get("prefill") or {})
    return await _after_consent(ctx, prefill, (say("Thank you, your consent is recorded."),))


async def _after_consent(ctx: Context, prefill: dict[str, Any],
                         before: tuple[Say, ...]) -> Outcome:
    nik, kpj = parse_nik(str(prefill.get("nik", ""))), parse_kpj(str(prefill.get("kpj", "")))
    birth = parse_birth_date(str(prefill.get("birth_date", "")), ctx.now.date())
    if (isinstance(nik, Nik) and not isinstance(kpj, Problem)
            and not isinstance(birth, Problem) and nik.matches_birth_date(birth)):
        data = {"nik": nik.digits, "kpj": kpj, "birth_date": birth.isoformat()}
        return await _check_identity(ctx, data, before)
    return Outcome(S.ASK_NIK, (*before, _ask_nik()), data={})


def _ask_nik() -> Say:
    return say("Please type your NIK (the 16-digit number on your KTP).")


async def ask_nik(ctx: Context) -> Outcome:
    """Validate the NIK; it is deleted from the chat once read."""
    if ctx.event.kind is not EventKind.TEXT:
        return Outcome(S.ASK_NIK, (_ask_nik(),))
    nik = parse_nik(ctx.event.text)
    cleanup = delete_member_message(NIK_DELETED)
    if isinstance(nik, Problem):
        return Outcome(S.ASK_NIK, (cleanup, problem_message("nik", nik)))
    return Outcome(S.ASK_KPJ, (cleanup, say(
        "Thank you. Now type your KPJ number (the 11-digit number on your BPJS "
        "Ketenagakerjaan card or in JMO).")), data={"nik": nik.digits})


async def ask_kpj(ctx: Context) -> Outcome:
    """Validate the KPJ number; a membership locked out of verification is named at once."""
    kpj = parse_kpj(ctx.event.text)
    if isinstance(kpj, Problem):
        return Outcome(S.ASK_KPJ, (problem_message("kpj", kpj),))
    wait = await otp.locked_for(ctx, kpj)
    if wait > 0:
        return back_to_menu(otp.locked_notice(ctx, wait))
    return Outcome(S.ASK_BIRTH_DATE, (say(
        "Now type your date of birth as DD-MM-YYYY, for example {date_example}.",
        **EXAMPLES),), data={**ctx.data, "kpj": kpj})


async def ask_birth_date(ctx: Context) -> Outcome:
    """Validate the date, compare it with the NIK, then check identity at the balance service."""
    if ctx.event.kind is EventKind.BUTTON and ctx.event.data == "reg:retry_nik":
        return Outcome(S.ASK_NIK, (_ask_nik(),), data={})
    birth = parse_birth_date(ctx.event.text, ctx.now.date())
    if isinstance(birth, Problem):
        return Outcome(S.ASK_BIRTH_DATE, (problem_message("birth_date", birth),))
    nik = parse_nik(str(ctx.data.get("nik", "")))
    if isinstance(nik, Problem):
        return Outcome(S.ASK_NIK, (_ask_nik(),), data={})
    if not nik.matches_birth_date(birth):
        return Outcome(S.ASK_BIRTH_DATE, (say(
            "This date of birth does not match the one in your NIK. Please check it and type "
            "it again, or type your NIK again.",
            (option("Type NIK again", "reg:retry_nik"),)),))
    return await _check_identity(ctx, {**ctx.data, "birth_date": birth.isoformat()}, ())


async def _refusal(ctx: Context, kpj: str = "") -> Say | None:
    """Why this chat cannot verify now (an OTP lockout of the chat or of ``kpj``, or too many
    failed identity checks this hour) and when it can, else ``None``."""
    wait = await otp.locked_for(ctx, kpj)
    if wait > 0:
        return otp.locked_notice(ctx, wait)
    failures = await _identity_failures(ctx)
    if len(failures) < IDENTITY_FAILURES_PER_HOUR:
        return None
    wait = failures[-IDENTITY_FAILURES_PER_HOUR] + _HOUR - ctx.now.timestamp()
    return say("Too many checks did not match. For your safety, you can try again at {time} "
               "WIB, or call 175.", time=otp.clock_time(ctx, wait))


def _failures_key(ctx: Context) -> str:
    return "idcheck:failed:" + ctx.tag("idcheck")


async def _identity_failures(ctx: Context) -> list[float]:
    """When this chat's identity checks failed within the last hour, oldest first. Only
    failures count: a member who registers again is no attacker."""
    try:
        stored = json.loads(await ctx.ports.kv.get(_failures_key(ctx)) or "[]")
    except ValueError:
        stored = []
    now = ctx.now.timestamp()
    times = stored if isinstance(stored, list) else []
    return sorted(t for t in times if isinstance(t, int | float) and now - t < _HOUR)


async def _check_identity(ctx: Context, data: dict[str, Any], before: tuple[Say, ...]) -> Outcome:
    refusal = await _refusal(ctx)
    if refusal is not None:
        return back_to_menu(*before, refusal)
    match = await ctx.ports.balance.verify_identity(
        data["nik"], data["kpj"], date.fromisoformat(data["birth_date"]))
    if match is None:
        return await _identity_mismatch(ctx, before)
    kept = {"kpj": match.kpj, "phone": match.phone, "email": match.email}
    return Outcome(S.ASK_PHONE, (*before, _ask_phone()), data=kept)


async def _identity_mismatch(ctx: Context, before: tuple[Say, ...]) -> Outcome:
    await ctx.ports.accounts.audit(ctx.key, "identity_mismatch", ctx.now)
    failures = [*await _identity_failures(ctx), ctx.now.timestamp()]
    await ctx.ports.kv.put(_failures_key(ctx), json.dumps(failures), _HOUR)
    mismatch = say("The NIK, KPJ number and date of birth do not match our records together. "
                   "Please check them and start again with your NIK.")
    refusal = await _refusal(ctx)
    if refusal is not None:
        return back_to_menu(*before, mismatch, refusal)
    return Outcome(S.ASK_NIK, (*before, mismatch), data={})


def _ask_phone() -> Say:
    return Say(Text("Almost done. Please share your mobile phone number (tap the button, or "
                    "type it, for example {phone_example}).", EXAMPLES),
               ((Option(Text("Share my phone number"), "contact"),),), SayKind.ASK_CONTACT)


async def ask_phone(ctx: Context) -> Outcome:
    """Take the member's own number, then send a code to the contact on file at BPJS."""
    event = ctx.event
    if event.kind is EventKind.CONTACT and not event.contact_is_own:
        return Outcome(S.ASK_PHONE, (say("Please share your own phone number, not someone "
                                         "else's contact."), _ask_phone()))
    typed = parse_phone(event.phone if event.kind is EventKind.CONTACT else event.text)
    if isinstance(typed, Problem):
        return Outcome(S.ASK_PHONE, (problem_message("phone", typed), _ask_phone()))
    match = IdentityMatch(str(ctx.data.get("kpj", "")), "", str(ctx.data.get("phone", "")),
                          str(ctx.data.get("email", "")))
    contacts = otp.contacts_on_file(ctx, match.phone, match.email)
    if not contacts:
        return back_to_menu(say("There is no phone number or email on file for this "
                                "membership, so I cannot send a code. Please update your "
                                "data in JMO or at a branch office, or call 175."))
    notice = () if same_phone(typed, match.phone) else (say(
        "This number differs from the one on file at BPJS Ketenagakerjaan, so the code goes "
        "to the contact on file. If you no longer use it, update your data in JMO or at a "
        "branch office."),)
    return await otp.send_first(ctx, match.kpj, contacts, notice)


def _yes_no(ctx: Context) -> bool | None:
    event = ctx.event
    if event.kind is EventKind.BUTTON:
        return {"reg:agree": True, "reg:decline": False}.get(event.data)
    text = " ".join(event.text.lower().split()).strip(".!")
    return True if text in _YES else False if text in _NO else None


BEGIN = step(begin, S.CONSENT, S.ASK_NIK, S.ASK_PHONE, MENU)
FLOW = Flow("registration", {
    S.CONSENT: step(consent, S.CONSENT, S.ASK_NIK, S.ASK_PHONE, MENU),
    S.ASK_NIK: step(ask_nik, S.ASK_NIK, S.ASK_KPJ),
    S.ASK_KPJ: step(ask_kpj, S.ASK_KPJ, S.ASK_BIRTH_DATE, MENU),
    S.ASK_BIRTH_DATE: step(ask_birth_date, S.ASK_BIRTH_DATE, S.ASK_NIK, S.ASK_PHONE, MENU),
    S.ASK_PHONE: step(ask_phone, S.ASK_PHONE, MENU, otp.AWAIT),
}, digits=frozenset({S.ASK_NIK, S.ASK_KPJ, S.ASK_BIRTH_DATE, S.ASK_PHONE}),
    entries={"register": BEGIN},
    commands=(Command("daftar", "register", english="register",
                      summary=N_("Register or link your account")),))
