"""The agent desk of the console: the embedded default's stand-in for the agents' group.

Ticket threads are printed as ``[desk]`` lines, and lines typed as ``@agent ...`` play the
agent: ``@agent claim``, ``@agent <reply>``, ``@agent note <text>`` (internal, not relayed),
``@agent close [resolution]``. A newcomer can watch a whole handoff in one terminal.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.console.channel import render_turn
from flows.ports import Ticket, TicketBrief, TicketStore
from flows.types import Reply, SessionKey
from support.desk import DeskService, Result

AGENT_PREFIX = "@agent"
AGENT_NAME = "Rina"  # the console's pretend agent: a first name, as agents sign in the group


class ConsoleDesk:
    """:class:`~flows.ports.AgentDesk` printing to the terminal; the thread id is the ticket's."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self._write = write

    async def open(self, brief: TicketBrief) -> int:
        """Print the ticket's context as the agents would see it."""
        ticket = brief.ticket
        lines = [f"[desk] ticket #{ticket.id} opened ({ticket.reason}); language "
                 f"{ticket.locale}; member {brief.member}; KPJ {brief.linked_kpj or '-'}; "
                 f"{brief.membership or 'not linked'}"]
        lines += [f"[desk]   {line.who}: {line.text}" for line in brief.transcript]
        lines.append("[desk] answer with: @agent claim | @agent <reply> | @agent note <text> "
                     "| @agent close [resolution]")
        self._write("\n".join(lines))
        return ticket.id

    async def relay(self, ticket: Ticket, text: str) -> None:
        """Print the member's message in the ticket's thread."""
        self._write(f"[desk] #{ticket.id} member: {text}")

    async def notice(self, ticket: Ticket, text: str) -> None:
        """Print a system notice in the ticket's thread."""
        self._write(f"[desk] #{ticket.id} {text}")


class ConsoleOutbox:
    """:class:`~flows.ports.MemberOutbox` for the console member: prints the replies."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self._write = write

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Print what the member would receive."""
        for text in render_turn(replies):
            self._write(text)
        return True


class AgentConsole:
    """Turns ``@agent ...`` lines into desk actions on the console member's open ticket."""

    def __init__(self, *, desk: DeskService, tickets: TicketStore, key: SessionKey,
                 write: Callable[[str], None] = print) -> None:
        self._desk = desk
        self._tickets = tickets
        self._key = key
        self._write = write

    async def handle(self, line: str) -> None:
        """Run one ``@agent`` line and say what happened."""
        ticket = await self._tickets.active_for(self._key)
        if ticket is None:
            self._write("[desk] there is no open ticket for this chat")
            return
        verb, _, rest = line.removeprefix(AGENT_PREFIX).strip().partition(" ")
        result = await self._act(ticket.id, verb.lower(), rest.strip(), line)
        if result is not Result.DONE:
            self._write(f"[desk] #{ticket.id}: {result.value}")

    async def _act(self, ticket_id: int, verb: str, rest: str, line: str) -> Result:
        if verb == "claim":
            return await self._desk.claim(ticket_id, AGENT_NAME)
        if verb == "note":
            return await self._desk.note(ticket_id, AGENT_NAME, rest)
        if verb == "close":
            return await self._desk.close(ticket_id, AGENT_NAME, rest)
        text = line.removeprefix(AGENT_PREFIX).strip()
        return await self._desk.reply(ticket_id, AGENT_NAME, text)
