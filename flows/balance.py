"""Balance and contribution history: only for chats linked to a membership.

This release checks the link and says honestly what is available; the balance-service issue
adds the balance and history screens behind the same entries.
"""

from __future__ import annotations

from flows.flow import Context, Outcome, option, say
from flows.identifiers import mask_kpj
from flows.menu import back_to_menu


async def _linked_or_offer(ctx: Context) -> tuple[list[str], Outcome | None]:
    kpjs = await ctx.ports.accounts.linked_kpjs(ctx.key)
    if kpjs:
        return kpjs, None
    return kpjs, back_to_menu(say(
        "To see your balance, this chat must first be linked to your membership. It takes "
        "about a minute: you need your NIK, KPJ number and date of birth.",
        (option("Register / link account", "go:register"),)))


async def show_balance(ctx: Context) -> Outcome:
    """``cek saldo``: a linked chat hears where to see the balance meanwhile."""
    kpjs, offer = await _linked_or_offer(ctx)
    if offer is not None:
        return offer
    return back_to_menu(say(
        "This chat is linked to KPJ {kpj}. Showing the balance in this chat is not available "
        "yet; meanwhile you can see it in the JMO app or by SMS to 2757.",
        kpj=", ".join(mask_kpj(k) for k in kpjs)))


async def show_history(ctx: Context) -> Outcome:
    """``riwayat iuran``: a linked chat hears where to see the history meanwhile."""
    kpjs, offer = await _linked_or_offer(ctx)
    if offer is not None:
        return offer
    return back_to_menu(say(
        "This chat is linked to KPJ {kpj}. Showing the contribution history in this chat is "
        "not available yet; meanwhile you can see it in the JMO app.",
        kpj=", ".join(mask_kpj(k) for k in kpjs)))
