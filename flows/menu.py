"""The main menu and the small answers given from anywhere: help, greeting, thanks, cancel,
not understood."""

from __future__ import annotations

from enum import StrEnum

from flows.flow import Context, Outcome, option, say
from flows.i18n import N_
from flows.types import Say


class MenuState(StrEnum):
    """The resting state: free text here is classified into an intent by the engine."""

    MAIN = "menu:main"


MENU = MenuState.MAIN.value
MISSES = "misses"


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
    """``/bantuan``: what the bot can do and the commands that work at any time."""
    return back_to_menu(say(
        "I can show your JHT balance and contribution history once this chat is linked to "
        "your membership, answer common questions, and connect you with an agent.\n\n"
        "Commands you can use at any time:\n"
        "/menu - main menu\n/batal - cancel the current step\n/bahasa - change language\n"
        "/daftar - link your membership\n/keluar - unlink this chat\n"
        "/hapusdata - erase your data\n/bantuan - this help"))


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


async def not_understood(ctx: Context) -> Outcome:
    """Free text the classifier could not place; the second miss in a row offers a human."""
    misses = int(ctx.data.get(MISSES, 0)) + 1
    if misses >= 2:
        return Outcome(MENU, (
            say("Sorry, I still don't understand. Would you like to talk to an agent?",
                (option("Contact an agent", "go:handoff:not_understood"),
                 option("Main menu", "go:menu"))),
        ), data={})
    return Outcome(MENU, (main_menu(N_(
        "Sorry, I didn't understand that. You can write, for example, \"cek saldo\", "
        "\"riwayat iuran\" or \"cara klaim JHT\", or choose from the menu:")),),
        data={MISSES: misses})


async def unknown_command(ctx: Context) -> Outcome:
    """A ``/command`` the bot does not know."""
    return back_to_menu(say("I don't know that command. Type /bantuan to see what I can do."))


async def expired_button(ctx: Context) -> Outcome:
    """A button from an old message that no longer fits the conversation."""
    return back_to_menu(say("That menu has expired."))


