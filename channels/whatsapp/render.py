"""Engine replies as WhatsApp messages, within the Cloud API's limits.

* Up to 3 choices whose labels fit 20 characters: reply buttons. Up to 10 choices whose labels
  fit 24: a list message opened by a "Pilih"/"Choose" button. Anything more: numbered text,
  and the member answers with the number (the channel keeps the choices to map it back).
* ``ASK_CONTACT``: WhatsApp cannot share a contact on request, but every message carries the
  sender's verified number (``wa_id``), so the member only confirms it with two buttons.
* ``DELETE_MEMBER_MESSAGE``: the Cloud API cannot delete a member's message, so instead of the
  flows' "I deleted your message" the member is asked to delete it themselves.
* Outside the 24-hour window only an approved template may be sent: the replies become its one
  body parameter (one line, choices numbered).

The channel's few words of its own are in :data:`WORDS`, in both languages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from channels.whatsapp.graph import (
    ButtonsMessage,
    ListMessage,
    Outgoing,
    TemplateMessage,
    TextMessage,
)
from flows.i18n import DEFAULT_LOCALE
from flows.identifiers import mask_phone
from flows.types import Button, Reply, SayKind

__all__ = ["CONTACT_OTHER", "CONTACT_OWN", "MAX_BUTTON_TITLE", "MAX_BUTTONS", "MAX_ROW_TITLE",
           "MAX_ROWS", "WORDS", "Rendered", "render", "render_template", "words"]

MAX_TEXT = 4096
MAX_BUTTONS_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_TEMPLATE_PARAM = 900  # the template's own words must fit beside it in 1,024
_Build = Callable[[str], Outgoing]
CONTACT_OWN = "wa:contact:own"
CONTACT_OTHER = "wa:contact:other"

WORDS: dict[str, dict[str, str]] = {
    "id": {
        "choose": "Pilih",
        "options": "Pilihan",
        "prompt": "Silakan pilih:",
        "number_hint": "Balas dengan nomor pilihan Anda.",
        "numbers": "Balas dengan nomor:",
        "own_number": "Pakai nomor WhatsApp ini ({phone})?",
        "use_own": "Ya, pakai nomor ini",
        "use_other": "Nomor lain",
        "type_phone": "Silakan ketik nomor HP Anda, contoh 081234567890.",
        "delete_yourself": "Demi keamanan, mohon hapus pesan yang baru Anda kirim dari chat ini "
                           "(tekan lama pesannya, lalu pilih Hapus).",
    },
    "en": {
        "choose": "Choose",
        "options": "Options",
        "prompt": "Please choose:",
        "number_hint": "Reply with the number of your choice.",
        "numbers": "Reply with a number:",
        "own_number": "Use this WhatsApp number ({phone})?",
        "use_own": "Yes, use this number",
        "use_other": "Use another",
        "type_phone": "Please type your mobile number, for example 081234567890.",
        "delete_yourself": "For your safety, please delete the message you just sent from this "
                           "chat (press and hold it, then choose Delete).",
    },
}


def words(locale: str) -> dict[str, str]:
    """The channel's own words in ``locale`` (Indonesian when unknown)."""
    return WORDS.get(locale) or WORDS[DEFAULT_LOCALE]


@dataclass
class Rendered:
    """The messages to send, in order, each with the index of the reply it renders, and the
    data of numbered choices (``choices[0]`` is what "1" means)."""

    messages: list[tuple[int, Outgoing]] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)


def render(replies: Sequence[Reply], *, locale: str, wa_id: str) -> Rendered:
    """The replies as free-form messages (inside the 24-hour window)."""
    out = Rendered()
    for index, reply in enumerate(replies):
        for message in _render_one(reply, locale, wa_id, out.choices):
            out.messages.append((index, message))
    return out


def render_template(replies: Sequence[Reply], *, name: str, language: str,
                    locale: str) -> Rendered:
    """The replies as one template message whose body parameter holds their text."""
    out = Rendered()
    parts: list[str] = []
    for reply in replies:
        if reply.kind is SayKind.DELETE_MEMBER_MESSAGE or not reply.text.strip():
            continue
        parts.append(reply.text)
        choices = [b for row in reply.buttons for b in row]
        if choices:
            numbered = ", ".join(f"{len(out.choices) + i} = {b.label}"
                                 for i, b in enumerate(choices, start=1))
            parts.append(f"{words(locale)['numbers']} {numbered}")
            out.choices.extend(b.data for b in choices)
    body = _one_line(" — ".join(parts))
    if len(body) > MAX_TEMPLATE_PARAM:
        body = body[:MAX_TEMPLATE_PARAM - 1].rstrip() + "…"
    out.messages.append((0, TemplateMessage(name, language, body or None)))
    return out


def _render_one(reply: Reply, locale: str, wa_id: str, choices: list[str]) -> list[Outgoing]:
    said = words(locale)
    if reply.kind is SayKind.DELETE_MEMBER_MESSAGE:
        return [TextMessage(said["delete_yourself"])]
    if reply.kind is SayKind.ASK_CONTACT:
        question = said["own_number"].format(phone=mask_phone("+" + wa_id))
        text = f"{reply.text}\n\n{question}" if reply.text.strip() else question
        return _with_body(text, MAX_BUTTONS_BODY, lambda body: ButtonsMessage(
            body, ((CONTACT_OWN, said["use_own"]), (CONTACT_OTHER, said["use_other"]))))
    buttons = [b for row in reply.buttons for b in row]
    if not buttons:
        return [TextMessage(part) for part in _split(reply.text, MAX_TEXT) if part.strip()]
    return _choices(reply.text if reply.text.strip() else said["prompt"], buttons, said,
                    choices)


def _choices(text: str, buttons: list[Button], said: dict[str, str],
             choices: list[str]) -> list[Outgoing]:
    ids = tuple((b.data, b.label) for b in buttons)
    unique = len({b.data for b in buttons}) == len(buttons)
    longest = max(len(b.label) for b in buttons)
    if unique and len(buttons) <= MAX_BUTTONS and longest <= MAX_BUTTON_TITLE:
        return _with_body(text, MAX_BUTTONS_BODY, lambda body: ButtonsMessage(body, ids))
    if unique and len(buttons) <= MAX_ROWS and longest <= MAX_ROW_TITLE:
        return _with_body(text, MAX_TEXT, lambda body: ListMessage(
            body, said["choose"], said["options"], ids))
    lines = [f"{len(choices) + i}. {b.label}" for i, b in enumerate(buttons, start=1)]
    choices.extend(b.data for b in buttons)
    numbered = "\n".join([text, "", *lines, "", said["number_hint"]])
    return [TextMessage(part) for part in _split(numbered, MAX_TEXT)]


def _with_body(text: str, limit: int, build: _Build) -> list[Outgoing]:
    """Text too long for an interactive body goes first as plain messages."""
    parts = _split(text, limit)
    return [*(TextMessage(p) for p in parts[:-1]), build(parts[-1])]


def _split(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at line breaks where possible."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        parts.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    return [*parts, rest]


def _one_line(text: str) -> str:
    """Template parameters may hold no line breaks, tabs or runs of more than 4 spaces."""
    return re.sub(r"\s+", " ", text).strip()

