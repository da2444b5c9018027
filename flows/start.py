"""Start and language choice: greet a new member and let them pick Indonesian or English;
the flow declares ``/start`` and ``/bahasa``."""

from __future__ import annotations

import logging
from enum import StrEnum

from flows import otp, registration
from flows.flow import Command, Context, Flow, Outcome, option, say, step
from flows.i18n import LOCALES, N_
from flows.menu import MENU, back_to_menu, main_menu
from flows.ports import DatabaseUnavailable
from flows.types import Event, EventKind, Say

log = logging.getLogger(__name__)


class StartState(StrEnum):
    """States of the start flow."""

    CHOOSE_LANGUAGE = "start:choose_language"


CHOOSE = StartState.CHOOSE_LANGUAGE.value
_REGISTERING = frozenset({*registration.RegistrationState, otp.AWAIT})
_WORDS = {
    "id": ("id", "indonesia", "bahasa indonesia", "indonesian", "indo", "bahasa"),
    "en": ("en", "english", "inggris", "bahasa inggris", "eng"),
}


def _language_question() -> Outcome:
    return Outcome(CHOOSE, (say(
        "Please choose your language / Silakan pilih bahasa:",
        (option("Bahasa Indonesia", "lang:id"), option("English", "lang:en"))),), data={})


async def start(ctx: Context) -> Outcome:
    """``/start``: welcome; a member seen for the first time also chooses a language."""
    if ctx.session.updated_at:
        return back_to_menu(*_dropped(ctx),
                            say("Hello! I am the BPJS Ketenagakerjaan balance assistant."))
    welcome = say("Hello! I am the BPJS Ketenagakerjaan balance assistant. I can show your "
                  "JHT balance and contribution history and answer common questions.")
    question = _language_question()
    return Outcome(CHOOSE, (welcome, *question.says), data={})


def _dropped(ctx: Context) -> tuple[Say, ...]:
    """``/start`` in the middle of registration starts over: say that what was typed is gone."""
    if ctx.session.state not in _REGISTERING:
        return ()
    return (say("Registration was cancelled; nothing you typed was kept. You can start again "
                "with /register."),)


async def ask_language(ctx: Context) -> Outcome:
    """"ganti bahasa" typed at the menu: offer the two languages."""
    return _language_question()


def language_request(event: Event) -> str | None:
    """``"ask"`` for ``/bahasa`` (``/bahasa en`` names the language), a locale for a pressed
    language button, else ``None``. Language is a setting: it never ends the current step."""
    if event.kind is EventKind.COMMAND and event.data in LANGUAGE.words:
        named = next((lang for lang, words in _WORDS.items()
                      if " ".join(event.text.lower().split()) in words), None)
        return named or "ask"
    if event.kind is EventKind.BUTTON and event.data.startswith("lang:"):
        lang = event.data.removeprefix("lang:")
        return lang if lang in LOCALES else "ask"
    return None


async def switch_language(ctx: Context, request: str) -> Outcome:
    """Ask for, or switch to, a language, keeping the current step and what was typed."""
    state = ctx.session.state
    if request == "ask":
        question = _language_question().says
        return Outcome(CHOOSE if state == MENU else state, question)
    await _remember(ctx, request)
    done = say("Done, I will write in English from now on.")
    if state in (MENU, CHOOSE):
        return Outcome(MENU, (done, main_menu()), data={}, locale=request)
    return Outcome(state, (done, say("Please answer the last question again, or type /batal to "
                                     "cancel.")), locale=request)


async def _remember(ctx: Context, locale: str) -> None:
    """Keep the choice in SQL too, so that it outlives the session (a Redis restart, an
    expired session). Best effort: the switch itself never waits for a database that is
    down; the session still holds the choice."""
    try:
        await ctx.ports.accounts.set_language(ctx.key, locale, ctx.now)
    except DatabaseUnavailable:
        log.warning("could not record a %s chat's language choice", ctx.key.channel)


async def choose_language(ctx: Context) -> Outcome:
    """A language typed by name switches to it; anything else is read from the menu."""
    text = " ".join(ctx.event.text.lower().split())
    lang = next((lang for lang, words in _WORDS.items() if text in words), None)
    if ctx.event.kind is EventKind.TEXT and lang is not None:
        return await switch_language(ctx, lang)
    if ctx.event.kind is EventKind.TEXT:
        return Outcome(MENU, pass_on=True)
    return _language_question()


LANGUAGE = Command("bahasa", "change_language", english="language",
                   summary=N_("Change language"))

FLOW = Flow("start", {CHOOSE: step(choose_language, MENU, CHOOSE)}, entries={
    "start": step(start, CHOOSE, MENU),
    "change_language": step(ask_language, CHOOSE),
}, commands=(Command("start", "start"), LANGUAGE))
