"""Reaching a person. This release points to the official contact channels; the handoff
issue adds tickets answered by agents in this chat."""

from __future__ import annotations

from flows.flow import Context, Outcome, say
from flows.menu import back_to_menu


async def offer_contact(ctx: Context) -> Outcome:
    """Tell the member how to reach a person at BPJS Ketenagakerjaan."""
    return back_to_menu(say(
        "To talk to a person at BPJS Ketenagakerjaan:\n"
        "• Call centre 175 (every day, 06:00-22:00 WIB)\n"
        "• Email care@bpjsketenagakerjaan.go.id\n"
        "• A branch office, or Lapak Asik (online service)\n"
        "Never share your PIN, password or OTP code with anyone."))
