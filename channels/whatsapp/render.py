"""Engine replies as WhatsApp messages, within the Cloud API's limits.

* Up to 3 choices whose labels fit 20 characters: reply buttons. Up to 10 choices whose labels
  fit 24: a list message opened by a "Pilih"/"Choose" button. Anything more: numbered text.
  Labels are shown as the engine wrote them (never shortened), so a label typed instead of
  pressed is read by the engine as the press (``Session.shown``).
* Numbers follow the engine's contract for every channel: "n" presses the n-th button of the
  turn's replies in order (``Session.shown[n-1]``), the share-contact button excepted. Numbered
  text and template bodies show those numbers; buttons and list rows keep that order.
* ``ASK_CONTACT``: WhatsApp cannot share a contact on request, but every message carries the
  sender's verified number (``wa_id``), so the member only confirms it with two buttons of the
  channel's own (:data:`CONTACT_OWN`, :data:`CONTACT_OTHER`, their labels typed work too:
  :func:`contact_choice`).
* ``DELETE_MEMBER_MESSAGE``: the Cloud API cannot delete a member's message, so instead of the
  flows' "I deleted your message" the member is asked to delete it themselves.
* A reply with a file (``DOCUMENT``, ``PHOTO``): a :class:`FileMessage`, which the channel
  uploads and sends as a document or image message with the reply's text as the caption (a
  text over 1,024 characters goes first as text messages); its buttons follow as the usual
  interactive message, under "Please choose:".
* Outside the 24-hour window only an approved template may be sent: the replies become its one
  body parameter (one line, choices numbered); a file cannot go in a template, so its caption
  is followed by the note the channel gives (``file_note``: the file could not be sent).

The channel's few words of its own are message ids in the catalogs (:class:`Words`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from channels.core import split_text
from channels.whatsapp.graph import (
    ButtonsMessage,
    DocumentMessage,
    ImageMessage,
    ListMessage,
    Outgoing,
    TemplateMessage,
    TextMessage,
)
from flows.i18n import N_, Catalog
from flows.identifiers import mask_phone
from flows.typed_buttons import label_key
from flows.types import Attachment, Button, Reply, SayKind, Text

__all__ = ["CONTACT_OTHER", "CONTACT_OWN", "MAX_BUTTON_TITLE", "MAX_BUTTONS", "MAX_CAPTION",
           "MAX_ROW_TITLE", "MAX_ROWS", "FileMessage", "Rendered", "Words", "carries_file",
           "contact_choice", "numbered", "render", "render_template"]

MAX_TEXT = 4096
MAX_BUTTONS_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_CAPTION = 1024  # a document's or image's caption
MAX_TEMPLATE_PARAM = 900  # the template's own words must fit beside it in 1,024
_Build = Callable[[str], Outgoing]
CONTACT_OWN = "wa:contact:own"
CONTACT_OTHER = "wa:contact:other"  # the button's id ends with ":<locale>"
SHARE_CONTACT = "contact"  # the flows' share-my-number button: never numbered (engine's rule)

CHOOSE = N_("Choose")  # the button that opens a list (at most 20 characters)
OPTIONS = N_("Options")  # the list's section title (at most 24)
PROMPT = N_("Please choose:")
NUMBER_HINT = N_("Reply with the number of your choice.")
NUMBERS = N_("Reply with a number:")
OWN_NUMBER = N_("Use this WhatsApp number ({phone})?")
USE_OWN = N_("Yes, use this number")  # a reply button: at most 20 characters
USE_OTHER = N_("Use another")  # a reply button: at most 20 characters
TYPE_PHONE = N_("Please type your mobile number, for example 0812-0000-0000.")
DELETE_YOURSELF = N_("For your safety, please delete the message you just sent from this "
                     "chat (press and hold it, then choose Delete).")


@dataclass(frozen=True, slots=True)
class Words:
    """The channel's own words in one language."""

    locale: str
    choose: str
    options: str
    prompt: str
    number_hint: str
    numbers: str
    own_number: str  # with ``{phone}``
    use_own: str
    use_other: str
    type_phone: str
    delete_yourself: str

    @classmethod
    def of(cls, catalog: Catalog, locale: str) -> Words:
        """The words as ``catalog`` translates them into ``locale``."""
        def say(msgid: str) -> str:
            return catalog.render(Text(msgid), locale)

        return cls(locale, say(CHOOSE), say(OPTIONS), say(PROMPT), say(NUMBER_HINT),
                   say(NUMBERS), catalog.render(Text(OWN_NUMBER, {"phone": "{phone}"}), locale),
                   say(USE_OWN), say(USE_OTHER), say(TYPE_PHONE), say(DELETE_YOURSELF))


def contact_choice(text: str, languages: Iterable[Words]) -> tuple[str, Words] | None:
    """``(CONTACT_OWN or CONTACT_OTHER, words)`` when ``text`` is one of the phone
    confirmation's labels typed instead of pressed, in one of ``languages`` (case, punctuation
    and arrows aside, as the engine compares typed labels); else ``None``."""
    key = label_key(text)
    if not key:
        return None
    for words in languages:
        for data, label in ((CONTACT_OWN, words.use_own), (CONTACT_OTHER, words.use_other)):
            if label_key(label) == key:
                return data, words
    return None


@dataclass(frozen=True, slots=True)
class FileMessage:
    """A reply's file, uploaded by the channel and then sent as :meth:`sent_as` says."""

    attachment: Attachment
    caption: str
    photo: bool

    def sent_as(self, media_id: str) -> DocumentMessage | ImageMessage:
        """The message naming the uploaded file."""
        if self.photo:
            return ImageMessage(media_id, self.caption)
        return DocumentMessage(media_id, self.attachment.filename, self.caption)


@dataclass
class Rendered:
    """The messages to send, in order, each with the index of the reply it renders."""

    messages: list[tuple[int, Outgoing | FileMessage]] = field(default_factory=list)


def carries_file(reply: Reply) -> bool:
    """Whether ``reply`` is (or was, its bytes dropped after sending) a file."""
    return reply.attachment is not None or reply.kind in (SayKind.DOCUMENT, SayKind.PHOTO)


def numbered(replies: Sequence[Reply]) -> Iterator[tuple[int, list[tuple[int, Button]]]]:
    """Each reply's index and its buttons with their numbers, as the engine numbers them for a
    typed digit: 1, 2, ... through every button of every reply in order, the share-contact
    button excepted (``Session.shown``)."""
    number = 0
    for index, reply in enumerate(replies):
        found: list[tuple[int, Button]] = []
        for row in reply.buttons:
            for button in row:
                if button.data != SHARE_CONTACT:
                    number += 1
                    found.append((number, button))
        yield index, found


def render(replies: Sequence[Reply], *, words: Words, wa_id: str) -> Rendered:
    """The replies as free-form messages (inside the 24-hour window)."""
    out = Rendered()
    for index, buttons in numbered(replies):
        for message in _render_one(replies[index], buttons, words, wa_id):
            out.messages.append((index, message))
    return out


def render_template(replies: Sequence[Reply], *, name: str, language: str, words: Words,
                    skip: int = 0, file_note: str = "") -> Rendered:
    """The replies as one template message whose body parameter holds their text; the first
    ``skip`` replies (delivered already) only keep the numbering. A file's caption is followed
    by ``file_note``."""
    parts: list[str] = []
    for index, buttons in numbered(replies):
        reply = replies[index]
        if index < skip or reply.kind is SayKind.DELETE_MEMBER_MESSAGE:
            continue
        texts = [reply.text, file_note] if carries_file(reply) else [reply.text]
        parts.extend(text for text in texts if text.strip())
        if buttons:
            choices = ", ".join(f"{n} = {b.label}" for n, b in buttons)
            parts.append(f"{words.numbers} {choices}")
    body = _one_line(" — ".join(parts))
    if len(body) > MAX_TEMPLATE_PARAM:
        body = body[:MAX_TEMPLATE_PARAM - 1].rstrip() + "…"
    return Rendered([(0, TemplateMessage(name, language, body or None))])


def _render_one(reply: Reply, buttons: list[tuple[int, Button]], words: Words,
                wa_id: str) -> Sequence[Outgoing | FileMessage]:
    if reply.attachment is not None:
        return _file(reply, reply.attachment, buttons, words)
    if reply.kind is SayKind.DELETE_MEMBER_MESSAGE:
        return [TextMessage(words.delete_yourself)]
    if reply.kind is SayKind.ASK_CONTACT:
        question = words.own_number.format(phone=mask_phone("+" + wa_id))
        text = f"{reply.text}\n\n{question}" if reply.text.strip() else question
        choices = ((CONTACT_OWN, words.use_own),
                   (f"{CONTACT_OTHER}:{words.locale}", words.use_other))
        return _with_body(text, MAX_BUTTONS_BODY, lambda body: ButtonsMessage(body, choices))
    if not buttons:
        return [TextMessage(part) for part in split_text(reply.text, MAX_TEXT) if part.strip()]
    return _choices(reply.text if reply.text.strip() else words.prompt, buttons, words)


def _file(reply: Reply, attachment: Attachment, buttons: list[tuple[int, Button]],
          words: Words) -> list[Outgoing | FileMessage]:
    """The file with its caption (a text too long for one goes first), then its buttons."""
    long = len(reply.text) > MAX_CAPTION
    out: list[Outgoing | FileMessage] = (
        [TextMessage(part) for part in split_text(reply.text, MAX_TEXT) if part.strip()]
        if long else [])
    out.append(FileMessage(attachment, "" if long else reply.text,
                           photo=reply.kind is SayKind.PHOTO))
    if buttons:
        out.extend(_choices(words.prompt, buttons, words))
    return out


def _choices(text: str, buttons: list[tuple[int, Button]], words: Words) -> list[Outgoing]:
    ids = tuple((b.data, b.label) for _, b in buttons)
    unique = len({b.data for _, b in buttons}) == len(buttons)
    longest = max(len(b.label) for _, b in buttons)
    if unique and len(buttons) <= MAX_BUTTONS and longest <= MAX_BUTTON_TITLE:
        return _with_body(text, MAX_BUTTONS_BODY, lambda body: ButtonsMessage(body, ids))
    if unique and len(buttons) <= MAX_ROWS and longest <= MAX_ROW_TITLE:
        return _with_body(text, MAX_TEXT, lambda body: ListMessage(
            body, words.choose, words.options, ids))
    lines = [f"{n}. {b.label}" for n, b in buttons]
    listed = "\n".join([text, "", *lines, "", words.number_hint])
    return [TextMessage(part) for part in split_text(listed, MAX_TEXT)]


def _with_body(text: str, limit: int, build: _Build) -> list[Outgoing]:
    """Text too long for an interactive body goes first as plain messages."""
    parts = split_text(text, limit)
    return [*(TextMessage(p) for p in parts[:-1]), build(parts[-1])]


def _one_line(text: str) -> str:
    """Template parameters may hold no line breaks, tabs or runs of more than 4 spaces."""
    return re.sub(r"\s+", " ", text).strip()

