"""The console channel: chat with the bot in a terminal (the embedded default).

Each turn's buttons are numbered, the last message's first (its first button is always
``[1]``), and a button repeated in one turn (the same action) keeps one number. The member
answers with the number, the label (case, arrows and punctuation do not matter) or free text,
read as the engine reads them on every channel (:func:`flows.typed_buttons.typed_press`: a
label that reads as the typed text wins over a number).
When the bot asks for the phone number, a typed number stands for a shared contact. The
console's own words are translated into the language of the replies. ``/quit`` or end of
input stops. A reply with a file is written to ``files_dir`` (``DATA_DIR/files``) as
``<UTC timestamp>-<filename>``, and its caption is printed with the file's path: on the
console the file on disk is the delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path, PurePath

from flows.i18n import DEFAULT_LOCALE, N_, Catalog
from flows.identifiers import Problem, parse_phone
from flows.typed_buttons import CONTACT, typed_press
from flows.types import Attachment, Button, Event, Reply, SayKind, SessionKey, Text

Handler = Callable[[SessionKey, Event], Awaitable[list[Reply]]]
QUIT = {"/quit", "/exit", "/q"}
CONTACT_HINT = N_("(type your phone number to share it)")
DELETED = N_("(deleted your last message)")
FILE_SAVED = N_("File saved: {path}")
FILES_DIR = Path("data") / "files"  # DATA_DIR's default, for a console built without one


@cache
def _default_catalog() -> Catalog:
    return Catalog()


def words(msgid: str, locale: str, catalog: Catalog | None = None) -> str:
    """One of the console's own messages in ``locale`` (Indonesian when unknown)."""
    return (catalog or _default_catalog()).render(Text(msgid), locale or DEFAULT_LOCALE)


def numbering(replies: Sequence[Reply]) -> list[Button]:
    """The turn's buttons in number order (``[1]`` is the first): the last reply's first,
    then the earlier replies'; a button whose data was numbered already gets no new number."""
    seen: dict[str, Button] = {}
    for reply in reversed(replies):
        for row in reply.buttons:
            for button in row:
                seen.setdefault(button.data, button)
    return list(seen.values())


def render_turn(replies: Sequence[Reply], catalog: Catalog | None = None) -> list[str]:
    """Every reply of one turn as terminal text, numbered as :func:`numbering` says."""
    numbers = {b.data: i for i, b in enumerate(numbering(replies), start=1)}
    return [render(reply, numbers, catalog) for reply in replies]


class ConsoleChannel:
    """Reads lines, turns them into events, prints the replies."""

    def __init__(self, handle: Handler, *, read: Callable[[], Awaitable[str | None]],
                 write: Callable[[str], None], chat_id: str = "local",
                 language_code: str = "",
                 agent: Callable[[str], Awaitable[None]] | None = None,
                 catalog: Catalog | None = None, files_dir: Path = FILES_DIR) -> None:
        self._handle = handle
        self._agent = agent
        self._read = read
        self._write = write
        self._key = SessionKey("console", chat_id)
        self._language_code = language_code
        self._buttons: list[Button] = []
        self._asks_contact = False
        self._locale = ""
        self._catalog = catalog
        self._files_dir = files_dir

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
                self._write("    " + words(CONTACT_HINT, self._locale, self._catalog))
            else:
                await self.send(event)

    async def send(self, event: Event) -> None:
        """Hand one event to the engine and print what comes back."""
        replies = await self._handle(self._key, event)
        self._buttons = numbering(replies)
        self._asks_contact = any(r.kind is SayKind.ASK_CONTACT for r in replies)
        self._locale = next((r.locale for r in reversed(replies) if r.locale), self._locale)
        shown = [await self._saved(reply) for reply in replies]
        for text in render_turn(shown, self._catalog):
            self._write(text)

    async def _saved(self, reply: Reply) -> Reply:
        """A reply with a file: the file written, the reply's text followed by its path."""
        if reply.attachment is None:
            return reply
        path = await asyncio.to_thread(save_file, self._files_dir, reply.attachment,
                                       datetime.now(UTC))
        note = (self._catalog or _default_catalog()).render(
            Text(FILE_SAVED, {"path": str(path)}), reply.locale or DEFAULT_LOCALE)
        text = f"{reply.text}\n{note}" if reply.text.strip() else note
        return replace(reply, text=text, attachment=None)

    def event_for(self, line: str) -> Event | None:
        """A typed line as the event it stands for: a button, a shared contact (a phone number
        typed when the bot asks for one), or a message. ``None``: nothing to send yet."""
        text = line.strip()
        chosen = self._button(text)
        lang = self._language_code
        if chosen is not None and chosen.data == CONTACT:
            return None
        if chosen is not None:
            return Event.button(chosen.data, language_code=lang)
        if self._asks_contact and not isinstance(parse_phone(text), Problem):
            return Event.contact(text, own=True, language_code=lang)
        return Event.message(line, language_code=lang)

    def _button(self, text: str) -> Button | None:
        index = typed_press(text, [b.label for b in self._buttons])  # the engine's reading
        return None if index is None else self._buttons[index]


def render(reply: Reply, numbers: Mapping[str, int] | int = 1,
           catalog: Catalog | None = None) -> str:
    """A reply as terminal text: its buttons numbered by their data (``numbers``), or in
    order from a first number."""
    if reply.kind is SayKind.DELETE_MEMBER_MESSAGE:
        return f"  {words(DELETED, reply.locale, catalog)} {reply.text}"
    lines = [_indent(reply.text)] if reply.text else []
    next_number = numbers if isinstance(numbers, int) else 1
    for row in reply.buttons:
        cells = []
        for button in row:
            if isinstance(numbers, int):
                number, next_number = next_number, next_number + 1
            else:
                number = numbers[button.data]
            cells.append(f"[{number}] {button.label}")
        lines.append("    " + "   ".join(cells))
    if reply.kind is SayKind.ASK_CONTACT:
        lines.append("    " + words(CONTACT_HINT, reply.locale, catalog))
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("bot> " + line if i == 0 else "     " + line
                     for i, line in enumerate(text.splitlines() or [""]))


def save_file(directory: Path, attachment: Attachment, at: datetime) -> Path:
    """Write ``attachment`` to ``directory`` (created when missing) as
    ``<YYYYmmddTHHMMSSZ>-<filename>``, never over an existing file (``-2``, ``-3``, ... is
    added before the extension); returns its path. Only the file name's last part is kept:
    a name cannot point outside ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    name = PurePath(attachment.filename.replace("\\", "/")).name or "file"
    stem = f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{name}"
    base, dot, extension = stem.rpartition(".") if "." in name else (stem, "", "")
    for number in range(1, 1000):
        candidate = stem if number == 1 else f"{base}-{number}{dot}{extension}"
        path = directory / candidate
        try:
            with path.open("xb") as file:
                file.write(attachment.content)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"too many files named {stem} in {directory}")


async def read_stdin(prompt: str = "you> ") -> str | None:
    """One line from the terminal without blocking the event loop; ``None`` at end of input."""
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None
