"""The console channel: chat with the bot in a terminal (the embedded default).

Each reply is printed with its buttons numbered; the member answers with the number, the label
or free text. When the bot asks for the phone number, a typed number stands for a shared
contact. ``/quit`` or end of input stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from flows.identifiers import Problem, parse_phone
from flows.types import Button, Event, Reply, SayKind, SessionKey

Handler = Callable[[SessionKey, Event], Awaitable[list[Reply]]]
QUIT = {"/quit", "/exit", "/q"}
CONTACT_HINT = "    (type your phone number to share it)"


class ConsoleChannel:
    """Reads lines, turns them into events, prints the replies."""

    def __init__(self, handle: Handler, *, read: Callable[[], Awaitable[str | None]],
                 write: Callable[[str], None], chat_id: str = "local",
                 language_code: str = "",
                 agent: Callable[[str], Awaitable[None]] | None = None) -> None:
        self._handle = handle
        self._agent = agent
        self._read = read
        self._write = write
        self._key = SessionKey("console", chat_id)
        self._language_code = language_code
        self._buttons: list[Button] = []
        self._asks_contact = False

    async def run(self) -> None:
        """Converse until end of input or ``/quit``."""
        await self.send(Event.message("/start", language_code=self._language_code))
        while (line := await self._read()) is not None:
            if line.strip().lower() in QUIT:
                break
            if self._agent is not None and line.strip().lower().startswith("@agent"):
                await self._agent(line.strip())
                continue
            event = self.event_for(line)
            if event is None:
                self._write(CONTACT_HINT)
            else:
                await self.send(event)

    async def send(self, event: Event) -> None:
        """Hand one event to the engine and print what comes back."""
        replies = await self._handle(self._key, event)
        self._buttons = [b for r in replies for row in r.buttons for b in row]
        self._asks_contact = any(r.kind is SayKind.ASK_CONTACT for r in replies)
        number = 1
        for reply in replies:
            self._write(render(reply, number))
            number += sum(len(row) for row in reply.buttons)

    def event_for(self, line: str) -> Event | None:
        """A typed line as the event it stands for: a button, a shared contact (a phone number
        typed when the bot asks for one), or a message. ``None``: nothing to send yet."""
        text = line.strip()
        chosen = self._button(text)
        lang = self._language_code
        if chosen is not None and chosen.data == "contact":
            return None
        if chosen is not None:
            return Event.button(chosen.data, language_code=lang)
        if self._asks_contact and not isinstance(parse_phone(text), Problem):
            return Event.contact(text, own=True, language_code=lang)
        return Event.message(line, language_code=lang)

    def _button(self, text: str) -> Button | None:
        if text.isascii() and text.isdigit() and 1 <= int(text) <= len(self._buttons):
            return self._buttons[int(text) - 1]
        folded = text.casefold()
        return next((b for b in self._buttons if b.label.casefold() == folded), None)


def render(reply: Reply, first_number: int = 1) -> str:
    """A reply as terminal text, its buttons numbered from ``first_number``."""
    if reply.kind is SayKind.DELETE_MEMBER_MESSAGE:
        return f"  (deleted your last message) {reply.text}"
    lines = [_indent(reply.text)] if reply.text else []
    number = first_number
    for row in reply.buttons:
        cells = []
        for button in row:
            cells.append(f"[{number}] {button.label}")
            number += 1
        lines.append("    " + "   ".join(cells))
    if reply.kind is SayKind.ASK_CONTACT:
        lines.append(CONTACT_HINT)
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("bot> " + line if i == 0 else "     " + line
                     for i, line in enumerate(text.splitlines() or [""]))


async def read_stdin(prompt: str = "you> ") -> str | None:
    """One line from the terminal without blocking the event loop; ``None`` at end of input."""
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None
