"""Start and language choice: greet a new member and let them pick Indonesian or English."""

from __future__ import annotations

from enum import StrEnum

from flows.flow import Context, Flow, Outcome, option, say, step
from flows.i18n import LOCALES
from flows.menu import MENU, back_to_menu, main_menu
from flows.types import EventKind


class StartState(StrEnum):
    """States of the start flow."""

    CHOOSE_LANGUAGE = "start:choose_language"


CHOOSE = StartState.CHOOSE_LANGUAGE.value
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
        return back_to_menu(say("Hello! I am the BPJS Ketenagakerjaan balance assistant."))
    welcome = say("Hello! I am the BPJS Ketenagakerjaan balance assistant. I can show your "
                  "JHT balance and contribution history and answer common questions.")
    question = _language_question()
    return Outcome(CHOOSE, (welcome, *question.says), data={})


async def ask_language(ctx: Context) -> Outcome:
    """``/bahasa``: offer the two languages."""
    return _language_question()


def _chosen(ctx: Context) -> str | None:
    event = ctx.event
    if event.kind is EventKind.BUTTON and event.data.startswith("lang:"):
        lang = event.data.removeprefix("lang:")
        return lang if lang in LOCALES else None
    text = " ".join(event.text.lower().split())
    return next((lang for lang, words in _WORDS.items() if text in words), None)


async def choose_language(ctx: Context) -> Outcome:
    """Switch to the chosen language and show the menu in it."""
    lang = _chosen(ctx)
    if lang is not None:
        done = say("Done, I will write in English from now on.")
        return Outcome(MENU, (done, main_menu()), data={}, locale=lang)
    if ctx.event.kind is EventKind.TEXT:
        return Outcome(MENU, pass_on=True)
    return _language_question()


FLOW = Flow("start", {CHOOSE: step(choose_language, MENU, CHOOSE)})
