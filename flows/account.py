"""The member's rights over their data: unlink this chat (``/keluar``) and erase everything
the bot stores about them (``/hapusdata``, UU PDP right to erasure). Both ask to confirm
first, so a member saying "keluar dulu ya" does not lose the link by accident.

Erasure covers the record of the contribution statements issued to the chat (their codes no
longer verify) and the support tickets too: their transcripts are deleted, an open ticket is
closed (the agents are told why) and what tied a ticket to this chat is cleared. So do the
OTP guard records of this chat and of its linked memberships (wrong tries, codes sent),
except an active lock-out: it stays until it ends, for the membership's security (UU PDP
allows keeping data for security), or erasing would be a way round the lock. Contribution
alerts end too: the subscriptions and the marks of the alerts sent. Unlinking ends the
subscriptions (alerts need a linked chat) and keeps the marks, so no alert is sent twice."""

from __future__ import annotations

import contextlib
from enum import StrEnum

from flows import alerts, otp
from flows.flow import Command, Context, Flow, Outcome, option, say, step
from flows.i18n import N_
from flows.menu import MENU, back_to_menu
from flows.ports import DeskUnavailable, TicketStatus
from flows.types import EventKind


class AccountState(StrEnum):
    """States of the account flow."""

    CONFIRM_LOGOUT = "account:confirm_logout"
    CONFIRM_ERASE = "account:confirm_erase"


S = AccountState
CONFIRM = S.CONFIRM_ERASE.value
_YES = {"ya", "iya", "yes", "y", "ok", "oke"}


async def ask_logout(ctx: Context) -> Outcome:
    """Explain what unlinking does and ask to confirm."""
    if not await ctx.ports.accounts.linked_kpjs(ctx.key):
        return back_to_menu(say("This chat is not linked to any membership."))
    return Outcome(S.CONFIRM_LOGOUT, (say(
        "Unlink this chat from your membership? Your balance will no longer be shown here, "
        "contribution alerts stop and your consent is withdrawn, until you register again.",
        (option("Yes, unlink", "acct:logout"), option("No, keep it", "acct:keep"))),), data={})


async def confirm_logout(ctx: Context) -> Outcome:
    """Unlink every membership and withdraw consent on an explicit yes."""
    if not _confirmed(ctx, "acct:logout"):
        return back_to_menu(say("Nothing was changed."))
    await alerts.stop_all(ctx)  # alerts need a linked chat
    await ctx.ports.accounts.unlink_all(ctx.key, ctx.now)
    await ctx.ports.accounts.withdraw_consent(ctx.key, ctx.now)
    await ctx.ports.accounts.audit(ctx.key, "unlinked", ctx.now)
    return back_to_menu(say("Done. This chat is no longer linked to your membership and your "
                            "consent is withdrawn; balances are not shown here until you "
                            "register again with /daftar."))


async def ask_erase(ctx: Context) -> Outcome:
    """Explain what erasure removes and ask to confirm."""
    return Outcome(S.CONFIRM_ERASE, (say(
        "Erase your data? This removes the link between this chat and your membership, your "
        "consent record, your conversations with our agents, the record of the statements "
        "issued here (their codes will no longer be found on the verification page), your "
        "contribution alerts and the record of the alerts sent, and this conversation's "
        "state; an open request to an agent is closed. Your membership data at BPJS "
        "Ketenagakerjaan is not affected.",
        (option("Yes, erase", "acct:erase"), option("No, keep it", "acct:keep"))),), data={})


async def confirm_erase(ctx: Context) -> Outcome:
    """Erase on an explicit yes; anything else keeps the data."""
    if not _confirmed(ctx, "acct:erase"):
        return back_to_menu(say("Nothing was erased."))
    await _erase_tickets(ctx)
    if ctx.ports.statements is not None:  # their codes then verify as unknown
        await ctx.ports.statements.erase(ctx.key)
    await alerts.stop_all(ctx)
    if ctx.ports.alert_marks is not None:
        await ctx.ports.alert_marks.forget(ctx.key)
    kpjs = await ctx.ports.accounts.linked_kpjs(ctx.key)
    await otp.forget(ctx, kpjs)
    await ctx.ports.accounts.erase(ctx.key, ctx.now)
    done = say("Your data has been erased. Thank you for using this service.")
    lock = await otp.lock_of(ctx, kpjs)
    if lock <= 0:
        return back_to_menu(done)
    return back_to_menu(done, say(
        "For your membership's safety, the lock on verification after too many wrong codes "
        "stays until {until}.", until=otp.until(ctx, lock)))


ERASED_NOTICE = ("The member erased their data (/hapusdata): this ticket is closed and its "
                 "transcript deleted.")


async def _erase_tickets(ctx: Context) -> None:
    """Forget the chat's tickets; the desk hears that an open one was closed by the erasure
    (best effort: the erasure does not wait for a desk that is down)."""
    tickets, desk = ctx.ports.tickets, ctx.ports.desk
    if tickets is None:
        return
    for ticket in await tickets.erase(ctx.key, ctx.now):
        if desk is not None and ticket.topic_id is not None \
                and ticket.status is not TicketStatus.CLOSED:
            with contextlib.suppress(DeskUnavailable):
                await desk.notice(ticket, ERASED_NOTICE)


def _confirmed(ctx: Context, button: str) -> bool:
    event = ctx.event
    if event.kind is EventKind.BUTTON:
        return event.data == button
    return " ".join(event.text.lower().split()).strip(".!") in _YES


LOGOUT = Command("keluar", "logout", english="logout",
                 summary=N_("Unlink this chat from your membership"))
ERASE = Command("hapusdata", "delete_data", english="deletedata", summary=N_("Erase your data"))

FLOW = Flow("account", {
    S.CONFIRM_LOGOUT: step(confirm_logout, MENU),
    S.CONFIRM_ERASE: step(confirm_erase, MENU),
}, entries={
    "logout": step(ask_logout, S.CONFIRM_LOGOUT, MENU),
    "delete_data": step(ask_erase, CONFIRM),
}, commands=(LOGOUT, ERASE))
