"""Which update each reply of ``chaos_telegram.py`` answered (see its docstring: *Attribution*).

A reply is known by its *signature*: its first line, digits replaced by ``#``, at most 60
characters. :class:`Classifier` maps a signature to a *class* (the Indonesian signature of the
same message, so that both languages of one message share a class) and a language; it learns
them by calibration (each kind of update sent once in each language to chats of their own,
with no fault), and knows the bot's apologies from the catalogs. :func:`attribute` then walks
each chat's replies in arrival order and gives each to an update of that chat.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APOLOGY = "APOLOGY"
OTHER = "OTHER"
_DIGITS = re.compile(r"\d+")
TAIL_SECONDS = 3.0  # a known reply this soon after an unexpected one may be its follow-up


def signature(text: str) -> str:
    """The first line, digits as ``#``, at most 60 characters."""
    first = text.strip().split("\n", 1)[0]
    return _DIGITS.sub("#", first).strip()[:60]


def apology_texts() -> dict[str, str]:
    """The bot's apologies and "busy" answers in both languages (text -> locale): the engine's
    ``FAULT_MESSAGES`` and the channel's ``APOLOGY``, translated by the catalogs under
    ``locales/``. Read from the modules when they still hold them, so the bench keeps running
    when they move."""
    from babel.messages.pofile import read_po

    msgids: list[str] = []
    try:
        from flows.engine import FAULT_MESSAGES
        msgids.extend(FAULT_MESSAGES.values())
    except ImportError:
        pass
    try:
        from channels.core import APOLOGY as CHANNEL_APOLOGY
        msgids.append(CHANNEL_APOLOGY)
    except ImportError:
        pass
    texts = {msgid: "en" for msgid in msgids}
    for locale in ("id", "en"):
        path = ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po"
        if not path.exists():
            continue
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        for msgid in msgids:
            message = catalog.get(msgid)
            if message is not None and isinstance(message.string, str) and message.string:
                texts[message.string] = locale
    return texts


@dataclass
class Classifier:
    """Reply signature -> (class, language)."""

    classes: dict[str, tuple[str, str]] = field(default_factory=dict)
    apologies: dict[str, str] = field(default_factory=dict)  # signature -> locale
    mismatches: list[str] = field(default_factory=list)  # calibration oddities

    def __post_init__(self) -> None:
        for text, locale in apology_texts().items():
            self.apologies[signature(text)] = locale

    def learn(self, kind: str, by_locale: dict[str, list[str]]) -> list[str]:
        """Learn a kind's replies (signatures in order, per language); returns its classes."""
        ours, theirs = by_locale.get("id", []), by_locale.get("en", [])
        if len(ours) != len(theirs):
            self.mismatches.append(f"{kind}: {len(ours)} replies in Indonesian, "
                                   f"{len(theirs)} in English")
        for position, sig in enumerate(ours):
            self.classes.setdefault(sig, (sig, "id"))
            if position < len(theirs):
                self.classes.setdefault(theirs[position], (sig, "en"))
        return list(ours)

    def classify(self, text: str) -> tuple[str, str | None]:
        """The class of a reply (``APOLOGY``, or ``OTHER`` when unknown) and its language."""
        sig = signature(text)
        if sig in self.apologies:
            return APOLOGY, self.apologies[sig]
        known = self.classes.get(sig)
        if known is None:
            return OTHER, None
        return known


@dataclass
class Update:
    """One update of a chat as the bench sent it, and what it got."""

    chat: int
    index: int  # its place in the chat's sequence
    kind: str
    expected: list[str]  # classes of the replies it should get, in order
    posted_at: float  # first delivery attempt (time.monotonic)
    english: bool = False
    update_id: int = 0
    accepted_at: float | None = None  # first delivery answered 200
    pointer: int = 0  # expected replies received so far (all, once an apology came)
    answers: int = 0  # replies of an expected class
    replies: list[float] = field(default_factory=list)  # arrival times of its replies
    apologies: int = 0
    others: int = 0
    doubled: bool = False
    doubled_by_apology: bool = False

    @property
    def first_reply(self) -> float | None:
        """When its first reply (an apology too) arrived."""
        return min(self.replies) if self.replies else None


@dataclass
class Reply:
    """One accepted message to a chat."""

    chat: int
    text: str
    at: float


@dataclass
class Attribution:
    """What :func:`attribute` concluded."""

    total: int = 0  # replies seen
    unattributed: int = 0  # a reply before any update of its chat was posted
    apologies: int = 0  # apology messages
    others: int = 0  # messages no calibration knows (and no apology)
    by_locale: list[tuple[int, float, str]] = field(default_factory=list)  # chat, at, locale
    tails: int = 0  # known replies right after an unexpected one, taken as its follow-up
    unexpected: Counter[str] = field(default_factory=Counter)  # signatures of OTHER replies


def attribute(updates: list[Update], replies: Iterable[Reply],
              classifier: Classifier) -> Attribution:
    """Give each reply of a chat to one of its updates (see ``chaos_telegram``'s docstring)."""
    result = Attribution()
    by_chat: dict[int, list[Update]] = {}
    for update in updates:
        by_chat.setdefault(update.chat, []).append(update)
    for chat_updates in by_chat.values():
        chat_updates.sort(key=lambda u: u.index)
    last_unexpected: dict[int, float] = {}
    for reply in sorted(replies, key=lambda r: r.at):
        result.total += 1
        posted = [u for u in by_chat.get(reply.chat, []) if u.posted_at <= reply.at]
        cls, locale = classifier.classify(reply.text)
        if locale is not None:
            result.by_locale.append((reply.chat, reply.at, locale))
        if not posted:
            result.unattributed += 1
        elif cls in (APOLOGY, OTHER):
            if cls == OTHER:
                result.unexpected[signature(reply.text)] += 1
            _unexpected(posted, reply, cls, result)
            last_unexpected[reply.chat] = reply.at
        else:
            follows = reply.at - last_unexpected.get(reply.chat, -math.inf) <= TAIL_SECONDS
            outcome = _answer(posted, reply, cls, tail_of_unexpected=follows)
            if outcome == "tail":
                result.tails += 1
            elif outcome == "none":
                result.others += 1
    return result


def _unexpected(posted: list[Update], reply: Reply, cls: str, result: Attribution) -> None:
    """An apology or an unknown text: it answers the earliest update with no reply yet (an
    unknown text, the earliest such press on a button, when there is one)."""
    if cls == APOLOGY:
        result.apologies += 1
    else:
        result.others += 1
    unanswered = [u for u in posted if not u.replies]
    # An unknown text is most likely "that button has expired": it answers a press.
    presses = [u for u in unanswered if u.kind.startswith("press")] if cls == OTHER else []
    candidates = presses or unanswered
    target = candidates[0] if candidates else None
    if target is None:  # every posted update has a reply already: a second one
        target = posted[-1]
        target.doubled = True
        target.doubled_by_apology = cls == APOLOGY
    target.replies.append(reply.at)
    target.pointer = len(target.expected)  # answered: its answer is no longer awaited
    if cls == APOLOGY:
        target.apologies += 1
    else:
        target.others += 1


def _answer(posted: list[Update], reply: Reply, cls: str, *, tail_of_unexpected: bool) -> str:
    """A known reply: to the earliest update waiting for its class ("answer"), else, unless it
    follows an unexpected reply within ``TAIL_SECONDS`` ("tail": the menu after "that menu has
    expired"), a second answer to the newest update that expected it ("double"); "none" when
    no update of the chat expects it."""
    waiting = next((u for u in posted if u.pointer < len(u.expected)
                    and u.expected[u.pointer] == cls), None)
    if waiting is not None:
        waiting.pointer += 1
        waiting.answers += 1
        waiting.replies.append(reply.at)
        return "answer"
    if tail_of_unexpected:
        return "tail"
    again = [u for u in posted if cls in u.expected]
    if again:
        again[-1].doubled = True
        return "double"
    return "none"


def out_of_order(updates: list[Update]) -> list[tuple[Update, bool]]:
    """Updates whose first reply arrived after the first reply of a later update of the same
    chat, each with whether the bot had accepted it (a 200) before that later update: the bot
    reordered them (else the delivery itself came late, after a retry)."""
    by_chat: dict[int, list[Update]] = {}
    for update in updates:
        by_chat.setdefault(update.chat, []).append(update)
    late: list[tuple[Update, bool]] = []
    for chat_updates in by_chat.values():
        ordered = sorted(chat_updates, key=lambda u: u.index)
        for position, update in enumerate(ordered):
            first = update.first_reply
            if first is None:
                continue
            overtaking = [u for u in ordered[position + 1:]
                          if u.first_reply is not None and u.first_reply < first]
            if overtaking:
                accepted = update.accepted_at
                reordered = accepted is not None and any(
                    u.accepted_at is not None and accepted <= u.accepted_at
                    for u in overtaking)
                late.append((update, reordered))
    return late
