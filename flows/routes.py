"""Where each intent, command and menu button leads, gathered from the flows' own declarations.

A flow declares its entries (``go:name`` buttons, commands and intents lead to them) and its
commands (:class:`~flows.flow.Flow`); this module only lists the flows. The command menu of a
channel (Telegram's ``/`` menu) and ``/bantuan`` list :attr:`Routes.listed`, in flow order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from flows import (
    account,
    alerts,
    balance,
    faq,
    handoff,
    history,
    menu,
    mydata,
    otp,
    registration,
    start,
    statements,
)
from flows.flow import Command, Flow, Step

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Routes:
    """Every entry and command of a set of flows. ``commands`` maps each command word (no
    slash) to its entry; ``listed`` are the commands with a summary, in flow order."""

    flows: tuple[Flow, ...]
    entries: Mapping[str, Step]
    commands: Mapping[str, str]
    listed: tuple[Command, ...]

    @classmethod
    def of(cls, flows: Sequence[Flow]) -> Routes:
        """Gather the declarations; an entry, a state or a command word declared twice, or a
        command leading to no entry, is refused."""
        entries: dict[str, Step] = {}
        commands: dict[str, str] = {}
        states: dict[str, Step] = {}
        for flow in flows:
            _merge(entries, flow.entries, flow, "entry")
            _merge(states, flow.steps, flow, "state")
            for command in flow.commands:
                _merge(commands, dict.fromkeys(command.words, command.entry), flow, "command")
        unrouted = sorted(word for word, entry in commands.items() if entry not in entries)
        if unrouted:
            raise ValueError(f"commands leading to no entry: {unrouted}")
        listed = tuple(c for flow in flows for c in flow.commands if c.summary)
        return cls(tuple(flows), entries, commands, listed)


def _merge(into: dict[str, T], new: Mapping[str, T], flow: Flow, what: str) -> None:
    twice = sorted(set(into) & set(new))
    if twice:
        raise ValueError(f"flow {flow.name!r} declares a {what} declared before: {twice}")
    into.update(new)


# The order lists the commands: the main menu's actions first, then settings and privacy.
FLOWS: tuple[Flow, ...] = (balance.FLOW, history.FLOW, registration.FLOW, otp.FLOW, faq.FLOW,
                           handoff.FLOW, menu.FLOW, start.FLOW, account.FLOW, mydata.FLOW,
                           statements.FLOW, alerts.FLOW)
ROUTES = Routes.of(FLOWS)
ENTRIES: Mapping[str, Step] = ROUTES.entries
COMMANDS: Mapping[str, str] = ROUTES.commands
LISTED: tuple[Command, ...] = ROUTES.listed
AGENT_EVENTS = handoff.AGENT_EVENTS
