"""Timers on open tickets, run every minute by the long-running commands.

- A ticket the desk has not received yet (the desk was down) is delivered again.
- A queued ticket with no agent reply after ``reminder_after`` seconds: the member hears they
  are still in the queue (again every ``reminder_after``).
- An open ticket where the member has not answered the agent's last message for
  ``idle_close_after`` seconds closes with a notice, and the bot asks for a rating.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from flows.ports import Clock, KeyValueStore, Ticket, TicketStatus, TicketStore
from flows.types import Event
from support.desk import DeskService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    """How long to wait before a reminder and before closing an idle conversation."""

    reminder_after: float = 600.0
    idle_close_after: float = 1800.0


class Sweeper:
    """Looks at every ticket that is not closed and acts on the timers above."""

    def __init__(self, *, tickets: TicketStore, desk: DeskService, kv: KeyValueStore,
                 clock: Clock, policy: SweepPolicy = SweepPolicy()) -> None:
        self._tickets = tickets
        self._desk = desk
        self._kv = kv
        self._clock = clock
        self._policy = policy

    async def tick(self) -> None:
        """One pass over the waiting tickets. While one process handles a ticket, the others
        skip it (a claim in the shared store), and one failing ticket does not stop the rest."""
        for ticket in await self._tickets.waiting():
            claim = f"ticket:{ticket.id}:sweeping"
            if not await self._kv.put_if_absent(claim, "1", 60):
                continue
            try:
                await self._one(ticket)
            except Exception:
                log.exception("sweeping ticket %s failed", ticket.id)
            finally:
                await self._kv.delete(claim)

    async def _one(self, ticket: Ticket) -> None:
        now = self._clock.now().timestamp()
        if ticket.topic_id is None:
            await self._desk.tell(ticket, Event.agent(f"deliver:{ticket.id}"))
        if ticket.status is TicketStatus.QUEUED and ticket.first_reply_at is None:
            await self._maybe_remind(ticket, now)
        elif ticket.status is TicketStatus.OPEN and self._idle(ticket, now):
            await self._desk.close_idle(ticket)

    async def _maybe_remind(self, ticket: Ticket, now: float) -> None:
        name = f"ticket:{ticket.id}:reminded"
        last = float(await self._kv.get(name) or ticket.opened_at.timestamp())
        if now - last >= self._policy.reminder_after:
            await self._kv.put(name, str(now), self._policy.reminder_after * 4)
            await self._desk.remind(ticket)

    def _idle(self, ticket: Ticket, now: float) -> bool:
        agent, member = ticket.last_agent_at, ticket.last_member_at
        if agent is None or (member is not None and member > agent):
            return False
        return now - agent.timestamp() >= self._policy.idle_close_after

    async def run(self, interval: float = 60.0) -> None:
        """Tick forever (until cancelled); a failing pass is logged and retried next time."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("ticket sweep failed")
            await asyncio.sleep(interval)
