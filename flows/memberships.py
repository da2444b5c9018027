"""Which memberships a chat may see, and choosing one when there are several.

A chat sees the KPJ it was linked to after OTP verification and every other KPJ of the same
person (same NIK) that the balance service lists: several employers over a career.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from flows.flow import Context, Outcome, option, say
from flows.identifiers import mask_kpj
from flows.menu import back_to_menu
from flows.ports import MemberSummary
from flows.types import EventKind, Option, Say, Text

JAKARTA = ZoneInfo("Asia/Jakarta")
MAX_CHOICES = 8


def today(ctx: Context) -> date:
    """Today's date in Jakarta, where the balance's "as of" date is counted."""
    return ctx.now.astimezone(JAKARTA).date()


async def visible_kpjs(ctx: Context) -> list[str]:
    """The chat's linked KPJs first, then the same person's other KPJs; empty if unlinked."""
    linked = await ctx.ports.accounts.linked_kpjs(ctx.key)
    seen = list(dict.fromkeys(linked))
    for kpj in linked:
        summary = await member_summary(ctx, kpj)
        if summary is not None:
            seen.extend(k for k in summary.kpjs if k not in seen)
    return seen


async def member_summary(ctx: Context, kpj: str) -> MemberSummary | None:
    """The membership's summary, read once per update however many steps ask."""
    name = f"summary:{kpj}"
    if name not in ctx.memo:
        ctx.memo[name] = await ctx.ports.balance.member_summary(kpj)
    found: MemberSummary | None = ctx.memo[name]
    return found


def offer_registration() -> Outcome:
    """What an unlinked chat hears instead of personal data."""
    return back_to_menu(say(
        "To see your balance, this chat must first be linked to your membership. It takes "
        "about a minute: you need your NIK, KPJ number and date of birth.",
        (option("Register / link account", "go:register"),)))


def choose_question(msgid: str, kpjs: list[str], *, with_all: bool) -> Say:
    """Ask which KPJ, one button per masked KPJ (and "All" when asked)."""
    buttons = [Option(Text("KPJ {kpj}", {"kpj": mask_kpj(k)}), f"kpj:{i}")
               for i, k in enumerate(kpjs[:MAX_CHOICES])]
    rows = [tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)]
    if with_all:
        rows.append((option("All memberships", "kpj:all"),))
    return Say(Text(msgid), tuple(rows))


def chosen(ctx: Context) -> str | None:
    """The KPJ picked by a ``kpj:<n>`` button (``"all"`` for every one), else ``None``."""
    event = ctx.event
    kpjs = [str(k) for k in ctx.data.get("kpjs", [])]
    if event.kind is not EventKind.BUTTON or not event.data.startswith("kpj:"):
        return None
    pick = event.data.removeprefix("kpj:")
    if pick == "all":
        return "all"
    return kpjs[int(pick)] if pick.isdigit() and int(pick) < len(kpjs) else None


async def target(ctx: Context, question: str, choose_state: str, *,
                 with_all: bool) -> str | Outcome:
    """The KPJ to show: the one named in the message (``SALDO 12345678901``), the only one,
    or else the outcome that asks which (in ``choose_state``), offers registration to an
    unlinked chat, or says a named KPJ is not this chat's."""
    kpjs = await visible_kpjs(ctx)
    if not kpjs:
        return offer_registration()
    asked = ctx.slots.get("kpj", "")
    if asked and asked not in kpjs:
        return back_to_menu(say("KPJ {kpj} is not linked to this chat. To see it, register it "
                                "with /daftar.", kpj=mask_kpj(asked)))
    if asked or len(kpjs) == 1:
        return asked or kpjs[0]
    return Outcome(choose_state, (choose_question(question, kpjs, with_all=with_all),),
                   data={"kpjs": kpjs})
