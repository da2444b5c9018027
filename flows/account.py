"""The member's rights over their data: unlink this chat (``/keluar``) and erase everything
the bot stores about them (``/hapusdata``, UU PDP right to erasure) after confirmation."""

from __future__ import annotations

from enum import StrEnum

from flows.flow import Context, Flow, Outcome, option, say, step
from flows.menu import MENU, back_to_menu
from flows.types import EventKind


class AccountState(StrEnum):
    """States of the account flow."""

    CONFIRM_ERASE = "account:confirm_erase"


CONFIRM = AccountState.CONFIRM_ERASE.value
_YES = {"ya", "iya", "hapus", "yes", "delete", "erase"}


async def logout(ctx: Context) -> Outcome:
    """Unlink every membership from this chat and withdraw the consent given here."""
    removed = await ctx.ports.accounts.unlink_all(ctx.key, ctx.now)
    withdrawn = await ctx.ports.accounts.withdraw_consent(ctx.key, ctx.now)
    if not removed and not withdrawn:
        return back_to_menu(say("This chat is not linked to any membership."))
    await ctx.ports.accounts.audit(ctx.key, "unlinked", ctx.now)
    return back_to_menu(say("Done. This chat is no longer linked to your membership and your "
                            "consent is withdrawn; balances are not shown here until you "
                            "register again with /daftar."))


async def ask_erase(ctx: Context) -> Outcome:
    """Explain what erasure removes and ask to confirm."""
    return Outcome(CONFIRM, (say(
        "Erase your data? This removes the link between this chat and your membership, your "
        "consent record and this conversation's state. Your membership data at BPJS "
        "Ketenagakerjaan is not affected.",
        (option("Yes, erase", "acct:erase"), option("No, keep it", "acct:keep"))),), data={})


async def confirm_erase(ctx: Context) -> Outcome:
    """Erase on an explicit yes; anything else keeps the data."""
    event = ctx.event
    text = " ".join(event.text.lower().split())
    yes = event.data == "acct:erase" if event.kind is EventKind.BUTTON else text in _YES
    if not yes:
        return back_to_menu(say("Nothing was erased."))
    await ctx.ports.accounts.erase(ctx.key, ctx.now)
    return back_to_menu(say("Your data has been erased. Thank you for using this service."))


FLOW = Flow("account", {CONFIRM: step(confirm_erase, MENU)})
