"""The agent side of a ticket: claim, reply, internal note, close.

Each action updates the ticket store, then tells the member through the engine (an ``AGENT``
event, handled under the member's chat lock like any other update) and delivers the replies
on the member's channel through the :class:`MemberOutbox`. A member who cannot be reached
(blocked the bot) gets the ticket closed with a note. What an agent writes is stored with
identifiers masked (:func:`domain.redaction.redact`), like the member's lines.
"""

from __future__ import annotations

from enum import StrEnum

from domain.redaction import redact
from flows.engine import Engine
from flows.ports import Clock, MemberOutbox, Ticket, TicketStatus, TicketStore
from flows.types import Event


class Result(StrEnum):
    """What an agent action achieved, for the desk to tell the agent."""

    DONE = "done"
    UNKNOWN = "unknown"
    CLOSED = "closed"
    UNREACHABLE = "unreachable"
    TAKEN = "taken"


class DeskService:
    """Agent actions on tickets, shared by every desk (Telegram forum group, console)."""

    def __init__(self, *, engine: Engine, tickets: TicketStore, outbox: MemberOutbox,
                 clock: Clock) -> None:
        self._engine = engine
        self._tickets = tickets
        self._outbox = outbox
        self._clock = clock

    async def claim(self, ticket_id: int, agent: str) -> Result:
        """The agent takes the ticket; the member hears who is handling it."""
        ticket = await self._open_ticket(ticket_id)
        if not isinstance(ticket, Ticket):
            return ticket
        claimed = await self._tickets.claim(ticket.id, agent, self._clock.now())
        if claimed.agent != agent:
            return Result.TAKEN
        return await self.tell(ticket, Event.agent(f"claimed:{ticket.id}", sender=agent))

    async def reply(self, ticket_id: int, agent: str, text: str) -> Result:
        """Relay the agent's words to the member (claiming the ticket if nobody has)."""
        ticket = await self._open_ticket(ticket_id)
        if not isinstance(ticket, Ticket):
            return ticket
        now = self._clock.now()
        if ticket.agent is None:
            await self._tickets.claim(ticket.id, agent, now)
        # The member reads the agent's words as written; the transcript keeps them masked.
        await self._tickets.add_line(ticket.id, "agent", redact(text), now)
        await self._tickets.touch(ticket.id, "agent", now)
        return await self.tell(ticket, Event.agent(f"message:{ticket.id}", text, sender=agent))

    async def note(self, ticket_id: int, agent: str, text: str) -> Result:
        """An internal note: kept in the transcript, never relayed."""
        ticket = await self._tickets.get(ticket_id)
        if ticket is None:
            return Result.UNKNOWN
        await self._tickets.add_line(ticket.id, "note", f"{agent}: {redact(text)}",
                                     self._clock.now())
        return Result.DONE

    async def close(self, ticket_id: int, agent: str, resolution: str = "") -> Result:
        """Close the ticket; the bot takes over and asks the member for a rating."""
        ticket = await self._open_ticket(ticket_id)
        if not isinstance(ticket, Ticket):
            return ticket
        await self._tickets.close(ticket.id, self._clock.now(),
                                  redact(resolution) or f"closed by {agent}")
        return await self.tell(ticket, Event.agent(f"closed:{ticket.id}", sender=agent))

    async def remind(self, ticket: Ticket) -> Result:
        """Tell a waiting member they are still in the queue."""
        return await self.tell(ticket, Event.agent(f"reminder:{ticket.id}"))

    async def close_idle(self, ticket: Ticket) -> Result:
        """Close a ticket whose member stopped answering the agent."""
        await self._tickets.close(ticket.id, self._clock.now(), "closed for inactivity")
        return await self.tell(ticket, Event.agent(f"idle_closed:{ticket.id}"))

    async def _open_ticket(self, ticket_id: int) -> Ticket | Result:
        ticket = await self._tickets.get(ticket_id)
        if ticket is None:
            return Result.UNKNOWN
        return Result.CLOSED if ticket.status is TicketStatus.CLOSED else ticket

    async def tell(self, ticket: Ticket, event: Event) -> Result:
        """Hand a desk event to the member's conversation and deliver what it says."""
        replies = await self._engine.handle(ticket.key, event)
        if await self._outbox.deliver(ticket.key, replies):
            return Result.DONE
        now = self._clock.now()
        await self._tickets.add_line(ticket.id, "note", "the member blocked the bot", now)
        if ticket.status is not TicketStatus.CLOSED:
            await self._tickets.close(ticket.id, now, "the member blocked the bot")
        return Result.UNREACHABLE
