"""Statement requests in the Telegram load (``bench_telegram.py --statements F``).

A share of the members ask for PDF statements over and over instead of the usual mix: "cek
saldo" (the balance card), the card's "Download statement" button (``bal:statement``), then
"Last 12 months" (``stmt:last12``), which makes, signs and uploads the PDF. ``F`` is the share
of all updates that are that last press (each costs a PDF); the statement members' updates are
``3 F`` of the load, taken from members who would otherwise chat as the others do.

A chat may get :data:`flows.statements.STATEMENTS_PER_HOUR` statements an hour, so a statement
member moves on to the next chat of a pool of linked chats (each with a membership and ten
years of contributions, as every member's) after each statement; the pool is large enough for
no chat to reach the limit in a run.

The documents are made as ``serve`` makes them, in worker processes
(:class:`app.documents.PooledDocumentMaker`); ``--statement-pool thread`` makes them in threads
of the bot's own process instead, to show what the interpreter lock costs the other chats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    pass

STEPS = 3  # card, "Download statement", the period
CARD, ASK, PERIOD = "cek saldo", "bal:statement", "stmt:last12"
OTHERS, STATEMENT_CHATS, PDF = "others", "statement chats", "PDF"
M = TypeVar("M")
M_co = TypeVar("M_co", covariant=True)


class Asker(Protocol):
    """A member as the mix sees it (``_loadgen.Member``)."""

    chat: Any
    registering: bool
    asks_statements: bool
    step: int


class Channel(Protocol[M_co]):
    """How a channel's mix posts a text and presses a button (``_loadgen.Mix``)."""

    def text(self, member: Any, text: str, kind: str) -> M_co:
        """A text message counted as ``kind``."""
        raise NotImplementedError

    def press(self, member: Any, data: str, kind: str) -> M_co | None:
        """Press ``data`` when the bot's newest message carries it."""
        raise NotImplementedError


def choose_askers(members: Sequence[Asker], share: float) -> int:
    """Mark ``3 * share`` of the members (none of those who register), spread evenly through
    the list, as statement members; returns how many. Marked whatever the bot, so that every
    bot's "others" are the same chats."""
    eligible = [m for m in members if not m.registering]
    wanted = min(len(eligible), round(STEPS * share * len(members)))
    if wanted <= 0:
        return 0
    ratio = wanted / len(eligible)
    for i, member in enumerate(eligible):
        member.asks_statements = math.floor((i + 1) * ratio) > math.floor(i * ratio)
    return sum(m.asks_statements for m in members)


def pool_size(askers: int, share: float, rate: float, seconds: float) -> int:
    """Chats enough for the statements of ``seconds`` of load at ``rate`` (with a margin),
    none of them used more than the hourly limit allows."""
    from flows.statements import STATEMENTS_PER_HOUR

    expected = share * rate * seconds * 1.3 + askers
    return max(2 * askers, math.ceil(expected / STATEMENTS_PER_HOUR))


@dataclass
class StatementCycle:
    """The statement members' updates: card, "Download statement", period, next chat.

    ``pool``: the chats (linked beforehand) statement members take in turn, one a
    statement."""

    pool: Sequence[int]
    turn: int = 0
    last_was_pdf: bool = False

    def next(self, mix: Channel[M], member: Asker) -> M:
        """The member's next update; after the period press it moves to the pool's next
        chat. A button not on screen (its reply has not come) starts again with the card."""
        if not member.registering and member.step == 0 and member.chat not in self.pool:
            member.chat = self._next_chat()  # the member's own chat stays with the others
        step, self.last_was_pdf = member.step, False
        if step == 1:
            pressed = mix.press(member, ASK, "statement (ask)")
            if pressed is not None:
                member.step = 2
                return pressed
        elif step == 2:
            pressed = mix.press(member, PERIOD, "statement (PDF)")
            if pressed is not None:
                member.step = 0
                member.chat = self._next_chat()
                self.last_was_pdf = True
                return pressed
        member.step = 1
        return mix.text(member, CARD, "statement (card)")

    def _next_chat(self) -> int:
        chat = self.pool[self.turn % len(self.pool)]
        self.turn += 1
        return chat


def group_of(member: Asker, cycle: StatementCycle | None) -> str:
    """Which latencies an update of ``member`` counts in: the others', the statement
    members' (whatever they ask), and among those the PDF presses."""
    if not member.asks_statements:
        return OTHERS
    return PDF if cycle is not None and cycle.last_was_pdf else STATEMENT_CHATS
