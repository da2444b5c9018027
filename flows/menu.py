"""The main menu and the small answers given from anywhere: help, greeting, thanks, cancel,
not understood; the flow declaring them, with ``/menu``, ``/bantuan`` and ``/batal``."""

from __future__ import annotations

from enum import StrEnum

from flows.faq_content import TOPICS
from flows.flow import Command, Context, Flow, Outcome, option, say, step
from flows.i18n import N_
from flows.intents import normalise
from flows.types import EventKind, Say, Text


class MenuState(StrEnum):
    """The resting state: free text here is classified into an intent by the engine."""

    MAIN = "menu:main"


MENU = MenuState.MAIN.value
MISSES = "misses"
# Short acknowledgements ("ok", "siap kak", "baik pak"): answered briefly, never a miss.
ACKNOWLEDGEMENTS = frozenset({"ok", "oke", "okay", "okeh", "okey", "okee", "okk", "sip",
                              "siap", "baik", "baiklah", "noted", "mantap", "alright", "fine"})


def main_menu(msgid: str = N_("What would you like to do?")) -> Say:
    """The main menu: one question and the six choices as buttons."""
    return say(
        msgid,
        (option("Check balance", "go:check_balance"),
         option("Contribution history", "go:history")),
        (option("Register / link account", "go:register"), option("FAQ", "go:faq")),
        (option("Contact an agent", "go:handoff"), option("Language", "go:change_language")),
    )


def back_to_menu(*says: Say) -> Outcome:
    """Say the given messages, then show the main menu and rest there."""
    return Outcome(MENU, (*says, main_menu()), data={})


async def show_menu(ctx: Context) -> Outcome:
    """``/menu``: the main menu."""
    return back_to_menu()


async def show_help(ctx: Context) -> Outcome:
    """``/bantuan``: what the bot can do and every listed command of the engine's flows, named
    as the member's language types it."""
    locale = ctx.session.locale
    lines = tuple(Text(N_("/{command} - {summary}"),
                       {"command": c.for_locale(locale), "summary": Text(c.summary)})
                  for c in ctx.commands)
    return back_to_menu(say(
        "I can show your JHT balance and contribution history once this chat is linked to "
        "your membership, answer common questions, and connect you with an agent.\n\n"
        "Commands you can use at any time:\n{commands}", commands=lines))


async def greet(ctx: Context) -> Outcome:
    """A greeting gets a greeting and the menu."""
    return back_to_menu(say("Hello! I am the BPJS Ketenagakerjaan balance assistant."))


async def thank(ctx: Context) -> Outcome:
    """Thanks get a short, warm answer."""
    return Outcome(MENU, (say("You're welcome! Anything else I can help with?"),), data={})


async def cancel(ctx: Context) -> Outcome:
    """``/batal``: drop the current step and everything typed in it."""
    if ctx.session.state == MENU:
        return back_to_menu(say("There is nothing to cancel."))
    return back_to_menu(say("Cancelled. Nothing you typed in that step was kept."))


def is_acknowledgement(text: str) -> bool:
    """``text`` only acknowledges ("ok", "oke deh kak", "siap", "baik pak")."""
    words = normalise(text).split()
    return bool(words) and set(words) <= ACKNOWLEDGEMENTS


async def not_understood(ctx: Context) -> Outcome:
    """Free text the classifier could not place; the second miss in a row offers a human.
    An empty line gets a gentle prompt and an acknowledgement a short answer: neither is a
    miss."""
    misses = int(ctx.data.get(MISSES, 0))
    kept = {MISSES: misses} if misses else {}
    if ctx.event.kind is EventKind.TEXT and not ctx.event.text.strip():
        return Outcome(MENU, (main_menu(N_("Please type your question, or choose from the "
                                           "menu:")),), data=kept)
    if ctx.event.kind is EventKind.TEXT and is_acknowledgement(ctx.event.text):
        return Outcome(MENU, (say("All right. Anything else I can help with?"),), data=kept)
    misses += 1
    if misses >= 2:
        return Outcome(MENU, (
            say("Sorry, I still don't understand. Would you like to talk to an agent?",
                (option("Contact an agent", "go:handoff:not_understood"),
                 option("Main menu", "go:menu"))),
        ), data={})
    return Outcome(MENU, (main_menu(N_(
        "Sorry, I didn't understand that. You can write, for example, \"check balance\", "
        "\"contribution history\" or \"how to claim JHT\", or choose from the menu:")),),
        data={MISSES: misses})


INTENT_LABELS: dict[str, str] = {
    "check_balance": N_("Check balance"), "history": N_("Contribution history"),
    "register": N_("Register / link account"), "handoff": N_("Contact an agent"),
    "help": N_("Help"), "change_language": N_("Language"), "logout": N_("Unlink account"),
    "delete_data": N_("Erase your data"), "my_data": N_("My data"),
    **{topic.intent: topic.label for topic in TOPICS},
}
"""The button label of each intent the bot may offer when it asks which one was meant."""


async def clarify(ctx: Context) -> Outcome:
    """The classifier could not choose: ask which of the two intents the member meant, or
    whether they meant the one intent it half recognised, with a way out to the menu. An
    intent without a label (a flow added without one) is not offered."""
    offered = [name for name in (ctx.slots.get("first", ""), ctx.slots.get("second", ""))
               if name in INTENT_LABELS]
    if not offered:
        return back_to_menu(say("I'm not sure what you mean."))
    question = (N_("I'm not sure what you mean. Is it one of these?") if len(offered) > 1
                else N_("I'm not sure what you mean. Is it this?"))
    return Outcome(MENU, (say(
        question, *((option(INTENT_LABELS[name], f"go:{name}"),) for name in offered),
        (option("Something else", "go:menu"),)),), data={})


async def unknown_command(ctx: Context) -> Outcome:
    """A ``/command`` the bot does not know."""
    return back_to_menu(say("I don't know that command. Type /help to see what I can do."))


async def expired_button(ctx: Context) -> Outcome:
    """A button from an old message that no longer fits the conversation."""
    return back_to_menu(say("That menu has expired."))


MENU_COMMAND = Command("menu", "menu", english="menu", summary=N_("Show the main menu"))
HELP = Command("bantuan", "help", english="help", summary=N_("Help and the list of commands"))
CANCEL = Command("batal", "cancel", english="cancel", summary=N_("Cancel the current step"))

FLOW = Flow("menu", entries={
    "menu": step(show_menu, MENU),
    "help": step(show_help, MENU),
    "greeting": step(greet, MENU),
    "thanks": step(thank, MENU),
    "cancel": step(cancel, MENU),
    "unknown": step(not_understood, MENU),
    "clarify": step(clarify, MENU),
    "unknown_command": step(unknown_command, MENU),
    "expired_button": step(expired_button, MENU),
}, commands=(MENU_COMMAND, HELP, CANCEL))
