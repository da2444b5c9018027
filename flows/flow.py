"""The shape of a flow: explicit state tables of steps, each declaring where it may go.

A step is an async function of a :class:`Context` returning an :class:`Outcome` (next state,
what to say, session data to keep). A :class:`Flow` maps each of its states to a :class:`Step`
that names every state it may return; the engine refuses an undeclared transition and a test
checks that every target is a declared state. :func:`mermaid` draws the table.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flows.hours import BusinessHours
from flows.otp_codes import MemoryOtpGuardStore
from flows.ports import (
    AccountStore,
    AgentDesk,
    AlertMarks,
    AlertSubscriptionStore,
    BalanceService,
    Clock,
    DocumentMaker,
    KeyValueStore,
    OtpGuardStore,
    OtpSender,
    StatementIssueStore,
    TicketStore,
)
from flows.types import Event, Option, Say, SayKind, Session, SessionKey, Text


@dataclass(frozen=True, slots=True)
class Ports:
    """Everything a step may talk to, injected once by the composition root
    (``app/compose.py``)."""

    kv: KeyValueStore
    accounts: AccountStore
    balance: BalanceService
    otp_sender: OtpSender
    clock: Clock
    secret: bytes
    tickets: TicketStore | None = None
    desk: AgentDesk | None = None
    hours: BusinessHours = field(default_factory=BusinessHours)
    otp_guard: OtpGuardStore = field(default_factory=MemoryOtpGuardStore)  # SQL when wired
    # The ways a code can travel, in the order they are tried (OTP_CHANNELS): "whatsapp" and
    # "sms" to the phone on file, "email" to the mail on file.
    otp_channels: tuple[str, ...] = ("sms", "email")
    # Statements and charts (issue 17): none means the balance card offers neither.
    documents: DocumentMaker | None = None
    statements: StatementIssueStore | None = None
    # The yearly JHT development rate a projection assumes (JHT_DEVELOPMENT_RATE; by default
    # the average of the configured years' rates, set by the composition root).
    development_rate: float = 0.06
    # Contribution alerts (issue 16): none means /notifikasi says alerts are not offered.
    alerts: AlertSubscriptionStore | None = None
    alert_marks: AlertMarks | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What a step sees: the chat, the member's event, the session so far, the ports."""

    key: SessionKey
    event: Event
    session: Session
    ports: Ports
    now: datetime
    slots: Mapping[str, str] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)  # reads shared by the steps of one update
    commands: tuple[Command, ...] = ()  # the listed commands of the engine's flows (/bantuan)

    @property
    def data(self) -> Mapping[str, Any]:
        """The session data kept by earlier steps."""
        return self.session.data

    def tag(self, purpose: str) -> str:
        """A pseudonym of this chat for ``purpose``: names store keys without a chat id."""
        message = f"{purpose}:{self.key}".encode()
        return hmac.new(self.ports.secret, message, hashlib.sha256).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A step's result. ``data`` replaces the session data when given; ``locale`` switches
    the conversation language; ``pass_on`` hands the event back to the engine to be read as
    free text from the main menu (the step did not expect it)."""

    state: str
    says: tuple[Say, ...] = ()
    data: Mapping[str, Any] | None = None
    locale: str | None = None
    pass_on: bool = False


StepFn = Callable[[Context], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Step:
    """A step function and every state it may return."""

    run: StepFn
    goes_to: frozenset[str]


def step(run: StepFn, *goes_to: str) -> Step:
    """Declare a step and the states it may return."""
    return Step(run, frozenset(goes_to))


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command that opens an entry from anywhere.

    ``name`` is the Indonesian command (the one in the Telegram command menu and in the
    Indonesian ``/bantuan``), ``english`` the English one (named in the English ``/bantuan``),
    ``aliases`` further words that work the same. ``summary``, an English message id, says
    what the command does; a command with a summary is listed in the command menu and in
    ``/bantuan``, one without works but is not listed."""

    name: str
    entry: str
    english: str = ""
    summary: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """Every word that runs the command, the listed one first."""
        return tuple(dict.fromkeys((self.name, self.english or self.name, *self.aliases)))

    def for_locale(self, locale: str) -> str:
        """The command as a member reading ``locale`` is told to type it."""
        return self.english if locale == "en" and self.english else self.name


@dataclass(frozen=True, slots=True)
class Flow:
    """One conversation flow: its name, its table ``{state: step}``, and how members get in.

    ``entries`` maps an entry name to the step that starts it: the name is what a ``go:name``
    button, a command and the intent classifier (its phrases in :mod:`flows.intent_phrases`)
    lead to. ``commands`` are the flow's slash commands, in the order they are listed.
    :mod:`flows.routes` gathers every flow's entries and commands; nothing else lists them.

    In a ``captive`` state every event goes to the step (no global commands, no menu buttons,
    no timeout): a member talking to an agent is relayed, whatever they type. A ``digits``
    state reads typed digits (a NIK, a KPJ, a date, a phone number, a code): a short number
    typed there is the member's answer, never the number of a button on screen."""

    name: str
    steps: Mapping[str, Step] = field(default_factory=dict)
    captive: frozenset[str] = frozenset()
    digits: frozenset[str] = frozenset()
    entries: Mapping[str, Step] = field(default_factory=dict)
    commands: tuple[Command, ...] = ()


def say(msgid: str, *rows: tuple[Option, ...], **params: Any) -> Say:
    """A message with optional rows of buttons."""
    return Say(Text(msgid, params), tuple(rows))


def say_plural(singular: str, plural: str, n: int, **params: Any) -> Say:
    """A message whose wording depends on the count ``n``."""
    return Say(Text(singular, params, plural=plural, n=n))


def option(label: str, data: str, **params: Any) -> Option:
    """A button whose label is a message id."""
    return Option(Text(label, params), data)


def delete_member_message(reason: str) -> Say:
    """Ask the channel to delete the member's last message, telling them why."""
    return Say(Text(reason), kind=SayKind.DELETE_MEMBER_MESSAGE)


def mermaid(flow: Flow, entries: Sequence[tuple[str, str]] = ()) -> str:
    """A Mermaid state diagram of the flow's table (``entries``: (label, entry state) pairs)."""
    lines = ["stateDiagram-v2"]
    for label, target in entries:
        lines.append(f"    [*] --> {_node(target)}: {label}")
    for state, declared in flow.steps.items():
        for target in sorted(declared.goes_to):
            lines.append(f"    {_node(state)} --> {_node(target)}")
    return "\n".join(lines) + "\n"


def _node(state: str) -> str:
    return state.replace(":", "__").replace(".", "_")
