"""The ports the conversation needs from the outside world, as Protocols.

Backends live elsewhere (``storage/``, ``balance/``, ``channels/``, ``app/``) and are injected
by constructor from the composition root (``app/compose.py``). Flows depend only on these
Protocols, never on a backend.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from flows.identifiers import mask_email, mask_phone
from flows.types import Reply, Session, SessionKey

if TYPE_CHECKING:  # the pure document package; flows need only its types
    from statements.chart import YearBar
    from statements.data import StatementData
    from statements.projection import Projection


class PortUnavailable(Exception):
    """A port (store, database, service, sender, desk) failed: the member's request could not
    be served just now and may be tried again. Every port's failure derives from it; the
    engine answers any of them, and any subclass a backend defines, with the polite message
    of the nearest class it knows (:data:`flows.engine.FAULT_MESSAGES`)."""


class StoreUnavailable(PortUnavailable):
    """The session store (Redis) cannot be reached or answered with an error."""


class SessionBusy(PortUnavailable):
    """Another update of the same chat held the per-chat lock for too long."""


class AlreadySeen(Exception):
    """The delivery named by ``once`` was handled before (a platform's repeated delivery)."""


class SessionSlot:
    """The session of one chat while its per-chat lock is held.

    ``session`` starts as the stored session (``None`` when there is none); whatever it holds
    when the ``SessionStore.chat`` block exits normally is saved (``None`` deletes it), for
    ``ttl`` seconds when set, else for the store's default time to live.
    """

    __slots__ = ("session", "ttl")

    def __init__(self, session: Session | None) -> None:
        self.session = session
        self.ttl: float | None = None


class SessionStore(Protocol):
    """Per-chat session state with per-chat mutual exclusion (also across processes)."""

    def chat(self, key: SessionKey, *,
             once: str | None = None) -> AbstractAsyncContextManager[SessionSlot]:
        """Lock the chat and load its session (one round trip); save and unlock on exit
        (one round trip). On an exception inside the block nothing is saved, the lock is
        released. Raises :class:`SessionBusy` or :class:`StoreUnavailable`.

        ``once`` names a delivery (a platform's update id): in the same round trip as the
        lock, the store remembers it for the chat (a day), and raises :class:`AlreadySeen`
        instead of locking when it was remembered before, by this process or another."""
        ...


class KeyValueStore(Protocol):
    """Small values with a time to live: OTP codes, attempt counters, rate limits, dedupe.

    Raises :class:`StoreUnavailable` when the backend cannot be reached.
    """

    async def get(self, name: str) -> str | None:
        """The value, or ``None`` when absent or expired."""
        ...

    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        """The values of ``names`` in order (``None`` where absent or expired), in one round
        trip."""
        ...

    async def put(self, name: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any earlier value."""
        ...

    async def put_if_absent(self, name: str, value: str, ttl: float) -> bool:
        """Store only when absent; true when stored."""
        ...

    async def incr(self, name: str, ttl: float) -> int:
        """Add one to a counter and return it; a new counter expires after ``ttl`` seconds."""
        ...

    async def delete(self, *names: str) -> None:
        """Remove the values (absent ones are ignored)."""
        ...


class SessionBackend(SessionStore, KeyValueStore, Protocol):
    """One backend serving both session and key-value ports (Redis, or in-process)."""


@dataclass(frozen=True, slots=True)
class ConsentGiven:
    """A standing consent record: the notice ``version`` agreed to, in ``locale``, at
    ``accepted_at``."""

    version: str
    locale: str
    accepted_at: datetime


class AccountStore(Protocol):
    """Durable facts about chats: links to memberships, consent records, the audit log.

    Raises :class:`DatabaseUnavailable` when the database cannot be reached.
    """

    async def linked_kpjs(self, key: SessionKey) -> list[str]:
        """The KPJ numbers linked to this chat, oldest link first."""
        ...

    async def link(self, key: SessionKey, kpj: str, at: datetime) -> None:
        """Link the chat to a KPJ (idempotent)."""
        ...

    async def unlink_all(self, key: SessionKey, at: datetime) -> int:
        """Remove every link of the chat; returns how many were removed."""
        ...

    async def record_consent(self, key: SessionKey, version: str, locale: str,
                             at: datetime) -> None:
        """Record that the member agreed to consent notice ``version``."""
        ...

    async def withdraw_consent(self, key: SessionKey, at: datetime) -> int:
        """Mark the chat's standing consent records withdrawn; returns how many were."""
        ...

    async def has_consent(self, key: SessionKey, version: str | None = None) -> bool:
        """True when the chat holds a consent record that was not withdrawn (to notice
        ``version`` when given)."""
        ...

    async def consents(self, key: SessionKey) -> list[ConsentGiven]:
        """The chat's standing (not withdrawn) consent records, oldest first."""
        ...

    async def erase(self, key: SessionKey, at: datetime) -> None:
        """Erase links and consent records of the chat (UU PDP right to erasure); the audit
        log keeps only a pseudonymous line that an erasure happened."""
        ...

    async def audit(self, key: SessionKey, action: str, at: datetime, detail: str = "") -> None:
        """Append to the audit log. ``detail`` must never hold a NIK, OTP or phone number."""
        ...

    async def language(self, key: SessionKey) -> str | None:
        """The language the chat chose, or ``None`` when it chose none. Read only for a chat
        with no session (new, expired, or lost with the session store)."""
        ...

    async def set_language(self, key: SessionKey, locale: str, at: datetime) -> None:
        """Remember the chat's language choice; :meth:`erase` forgets it."""
        ...


class DatabaseUnavailable(PortUnavailable):
    """The SQL database cannot be reached or failed."""


class BalanceServiceUnavailable(PortUnavailable):
    """The balance service is down, slow or answered something malformed."""


@dataclass(frozen=True, slots=True)
class IdentityMatch:
    """A member whose NIK, KPJ and birth date belong together, with the contact on file.

    ``phone`` and ``email`` are where an OTP may be sent; they are never shown unmasked.
    """

    kpj: str
    name: str
    phone: str
    email: str


@dataclass(frozen=True, slots=True)
class Employer:
    """An employer by its registration number (NPP, 8 digits) and name."""

    npp: str
    name: str


@dataclass(frozen=True, slots=True)
class MemberSummary:
    """A membership: ``status`` is ``"active"`` or ``"inactive"``, ``segment`` ``"PU"``,
    ``"BPU"`` or ``"PMI"``; ``kpjs`` lists every KPJ of the same person (same NIK), this one
    included, oldest first."""

    kpj: str
    name: str
    status: str
    segment: str
    employer: Employer | None
    kpjs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JhtBalance:
    """The JHT balance of one KPJ as of a date, in whole Rupiah.

    ``last_period`` is the newest posted contribution period (``"YYYY-MM"``);
    ``pending_years`` are completed years whose development rate is not yet published, so
    their development is not included.
    """

    kpj: str
    as_of: date
    employer_part: int
    employee_part: int
    development: int
    total: int
    last_period: str | None
    pending_years: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Contribution:
    """One month's JHT contribution as posted."""

    period: str
    wage: int
    employer_part: int
    employee_part: int
    paid_on: date
    employer: Employer | None


@dataclass(frozen=True, slots=True)
class ContributionPage:
    """One page of contributions, newest period first; ``year`` is the filter (``None``: all
    years); ``years`` every year that has contributions, newest first."""

    kpj: str
    year: int | None
    page: int
    page_size: int
    pages: int
    total: int
    years: tuple[int, ...]
    items: tuple[Contribution, ...]


@dataclass(frozen=True, slots=True)
class PensionMonths:
    """How many months of JP (pension) contributions a KPJ has, and their span."""

    kpj: str
    months: int
    first_period: str | None
    last_period: str | None


class BalanceService(Protocol):
    """The balance service shared with BPJS's other channels.

    Every method raises :class:`BalanceServiceUnavailable` when the service is down, slow or
    answers something malformed; ``None`` means the KPJ is unknown.
    """

    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        """The member when NIK, KPJ and birth date belong together, else ``None`` (never
        which field was wrong)."""
        ...

    async def member_summary(self, kpj: str) -> MemberSummary | None:
        """Status, segment, employer and all KPJ of the member."""
        ...

    async def jht_balance(self, kpj: str, as_of: date) -> JhtBalance | None:
        """The JHT balance as of ``as_of``."""
        ...

    async def contributions(self, kpj: str, *, year: int | None = None, page: int = 1,
                            page_size: int = 12) -> ContributionPage | None:
        """Contributions, newest first, paged; ``year`` filters by period year."""
        ...

    async def contribution_periods(self, kpj: str) -> tuple[str, ...] | None:
        """Every contributed period (``"YYYY-MM"``) of the KPJ, oldest first, each once: the
        record that contribution gaps are computed from (:mod:`domain.gaps`)."""
        ...

    async def pension_months(self, kpj: str) -> PensionMonths | None:
        """Months of JP contributions."""
        ...


class OtpDeliveryFailed(PortUnavailable):
    """The OTP could not be handed to the SMS gateway, the mail server or WhatsApp.

    ``reason`` is a short label for metrics and logs, never an address or a code:
    ``auth`` (credentials refused), ``refused`` (connection refused or reset), ``timeout``,
    ``rejected`` (the recipient or message refused for good: an invalid number or address),
    ``throttled`` (the provider asks to slow down), ``server`` (the provider's own fault,
    5xx), ``template`` (a WhatsApp template missing or not approved), ``error`` (else)."""

    def __init__(self, message: str = "the code could not be sent", *,
                 reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OtpDestination:
    """Where an OTP goes: ``kind`` is ``"sms"``, ``"whatsapp"`` (both to a phone number on
    file) or ``"email"``; ``address`` the number or the mail address."""

    kind: str
    address: str

    def masked(self) -> str:
        """The address as it may be shown: ``0812****7890`` or ``s***@example.com``."""
        return mask_email(self.address) if self.kind == "email" else mask_phone(self.address)


class OtpSender(Protocol):
    """Delivers OTP codes. Raises :class:`OtpDeliveryFailed`."""

    async def send(self, to: OtpDestination, code: str, locale: str) -> None:
        """Send ``code`` to ``to`` with a message in ``locale``."""
        ...


class Clock(Protocol):
    """The current time, injectable so that tests control expiry and locks."""

    def now(self) -> datetime:
        """Timezone-aware current time."""
        ...


class TicketStatus(StrEnum):
    """Where a support ticket is: waiting for an agent, being handled, or done."""

    QUEUED = "queued"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Ticket:
    """A member's request for a person. ``topic_id`` is the agent desk's thread (``None``
    until the desk has received it); ``agent`` the claiming agent's display name."""

    id: int
    key: SessionKey
    locale: str
    status: TicketStatus
    reason: str
    topic_id: int | None
    agent: str | None
    opened_at: datetime
    first_reply_at: datetime | None
    last_agent_at: datetime | None
    last_member_at: datetime | None
    closed_at: datetime | None
    resolution: str
    rating: int | None


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line of a ticket's transcript: ``who`` is member, bot, agent or note."""

    who: str
    text: str
    at: datetime


class TicketStore(Protocol):
    """Durable support tickets and their transcripts. Raises :class:`DatabaseUnavailable`."""

    async def open(self, key: SessionKey, locale: str, reason: str, at: datetime) -> Ticket:
        """A new queued ticket, or the chat's ticket that is not closed yet (never two)."""
        ...

    async def active_for(self, key: SessionKey) -> Ticket | None:
        """The chat's queued or open ticket."""
        ...

    async def get(self, ticket_id: int) -> Ticket | None:
        """A ticket by number."""
        ...

    async def by_topic(self, topic_id: int) -> Ticket | None:
        """The ticket whose desk thread is ``topic_id``."""
        ...

    async def set_topic(self, ticket_id: int, topic_id: int) -> None:
        """Remember the desk thread of a ticket."""
        ...

    async def claim(self, ticket_id: int, agent: str, at: datetime) -> Ticket:
        """Assign an agent; a queued ticket becomes open."""
        ...

    async def touch(self, ticket_id: int, who: str, at: datetime) -> None:
        """Record activity: ``who`` is ``"agent"`` (sets first reply once) or ``"member"``."""
        ...

    async def close(self, ticket_id: int, at: datetime, resolution: str) -> Ticket:
        """Close the ticket with a resolution note."""
        ...

    async def rate(self, ticket_id: int, rating: int) -> None:
        """Store the member's 1-5 rating."""
        ...

    async def add_line(self, ticket_id: int, who: str, text: str, at: datetime) -> None:
        """Append to the transcript; ``text`` is stored redacted (no raw NIK, phone, KPJ or
        email; callers redact first, with the context the store lacks, e.g. a pending OTP)."""
        ...

    async def last_lines(self, ticket_id: int, limit: int = 10) -> list[TranscriptLine]:
        """The newest ``limit`` transcript lines, oldest first."""
        ...

    async def queue_position(self, ticket_id: int) -> int:
        """1 for the oldest queued ticket; 0 when the ticket is not queued."""
        ...

    async def median_first_reply(self, since: datetime) -> float | None:
        """Median seconds from opening to the first agent reply, over tickets opened since."""
        ...

    async def waiting(self) -> list[Ticket]:
        """Tickets not closed, oldest first (for timeouts and for delivery to the desk)."""
        ...

    async def purge_transcripts(self, before: datetime) -> int:
        """Delete transcript lines older than ``before``; returns how many."""
        ...

    async def erase(self, key: SessionKey, at: datetime) -> list[Ticket]:
        """Forget the chat's tickets (UU PDP right to erasure): delete their transcripts, close
        an open one, clear what links a ticket to the chat or holds member text; keep only
        statistics. Returns the tickets as they were before (to tell the desk)."""
        ...

    async def stats(self) -> dict[str, float]:
        """Counts and averages for /metrics: opened, claimed, closed, waiting, rating_avg."""
        ...


class DeskUnavailable(PortUnavailable):
    """The agent desk cannot be reached or refuses (e.g. the bot is not an admin there)."""


@dataclass(frozen=True, slots=True)
class TicketBrief:
    """What an agent sees first: the ticket and its context, never a full identifier."""

    ticket: Ticket
    member: str
    linked_kpj: str | None
    membership: str | None
    transcript: tuple[TranscriptLine, ...]


class AgentDesk(Protocol):
    """Where agents work (a Telegram forum group, or the console). Raises
    :class:`DeskUnavailable`."""

    async def open(self, brief: TicketBrief) -> int:
        """Open the ticket's thread with its context; returns the thread id."""
        ...

    async def relay(self, ticket: Ticket, text: str) -> None:
        """Post a member's message into the ticket's thread."""
        ...

    async def notice(self, ticket: Ticket, text: str) -> None:
        """Post a system notice (member ended, closed for inactivity) into the thread."""
        ...


class MemberOutbox(Protocol):
    """Delivers replies to a member outside their own update (an agent answered)."""

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Send the replies on the chat's channel; false when the member cannot be reached
        (blocked the bot)."""
        ...


@runtime_checkable
class UnreachableChats(Protocol):
    """An outbox that knows, before sending, which chats cannot be reached now (the member
    blocked the bot): alert workers record those alerts as blocked without spending one of
    the platform's sends on them."""

    async def unreachable(self, keys: Sequence[SessionKey]) -> set[SessionKey]:
        """Those of ``keys`` known not to take messages now."""
        ...


@dataclass(frozen=True, slots=True)
class OtpGuard:
    """What guards one subject against OTP guessing: a membership (``"m:"`` and a keyed hash
    of its KPJ) or a chat (``"c:"`` and the chat's pseudonym); never a KPJ or chat id in clear.

    Times are epoch seconds (0: never). ``level`` counts lock-outs in a row (it restarts once a
    day passes after the last lock ends); ``tries`` the wrong tries since ``tries_at``;
    ``sends`` when codes were sent within the last day; ``notified_at`` when the contact on
    file was last told of a lock-out; ``expires_at`` when the record guards nothing any more
    and may be purged."""

    level: int = 0
    locked_until: float = 0.0
    tries: int = 0
    tries_at: float = 0.0
    sends: tuple[float, ...] = ()
    notified_at: float = 0.0
    expires_at: float = 0.0


class OtpGuardStore(Protocol):
    """Durable OTP guard records (SQL is the authority: a Redis restart must not reset a lock).

    Every change is a compare-and-set on the record's version, so that concurrent processes
    can neither exceed the wrong tries nor the codes allowed. Raises
    :class:`DatabaseUnavailable`."""

    async def load(self, subject: str) -> tuple[OtpGuard, int]:
        """The record and its version (an empty record and 0 when there is none)."""
        ...

    async def save(self, subject: str, guard: OtpGuard, version: int) -> bool:
        """Store ``guard`` if the record is still at ``version`` (0: absent); false when
        another process changed it first (load again and retry)."""
        ...

    async def erase(self, subjects: Sequence[str], now: float) -> int:
        """Delete the records of ``subjects`` that hold no active lock; returns how many."""
        ...

    async def purge(self, now: float) -> int:
        """Delete the records that expired before ``now``; returns how many."""
        ...


@runtime_checkable
class OtpWarner(Protocol):
    """An :class:`OtpSender` that can also tell the contact on file, without a code, that
    someone tried to link a chat to the membership. Raises :class:`OtpDeliveryFailed`."""

    async def warn(self, to: OtpDestination) -> None:
        """Send the short bilingual notice of a locked verification to ``to``."""
        ...


@dataclass(frozen=True, slots=True)
class StatementRecord:
    """What is kept of an issued statement and shown by ``/verify/<code>``: no more than its
    holder already has (name initials, masked KPJ, the period ``"YYYY-MM"`` to ``"YYYY-MM"``,
    the total in Rupiah, the aware issue time)."""

    code: str
    initials: str
    kpj_masked: str
    period_from: str
    period_to: str
    total: int
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedStatement:
    """A signed contribution statement: its verification ``code``, the ``pdf`` and what
    ``/verify/<code>`` shows of it (``summary``)."""

    code: str
    pdf: bytes
    summary: StatementRecord


class DocumentMaker(Protocol):
    """Makes the member's documents (a signed PDF statement, a PNG chart) off the event loop.
    Raises a :class:`PortUnavailable` when it cannot."""

    async def statement(self, data: StatementData, *, locale: str,
                        issued_at: datetime) -> IssuedStatement:
        """The statement of ``data`` in ``locale``, signed with its issue time."""
        ...

    async def chart(self, bars: Sequence[YearBar], *, locale: str,
                    projection: Projection | None) -> bytes:
        """The balance chart (PNG), with the projection's line when given."""
        ...


class StatementIssueStore(Protocol):
    """Every statement issued, by its verification code (``/verify``, ``/datasaya``,
    ``/hapusdata``). Chats are named by a keyed pseudonym, never a chat id. Raises
    :class:`DatabaseUnavailable`."""

    async def record(self, key: SessionKey, issued: StatementRecord) -> bool:
        """Remember a statement issued to the chat; ``False`` when its code already names
        another statement (50-bit codes do collide, rarely: the caller issues it again with
        another issue time). Recording the same statement twice is ``True``."""
        ...

    async def lookup(self, code: str) -> StatementRecord | None:
        """The statement issued under ``code``, or ``None``."""
        ...

    async def for_subject(self, key: SessionKey) -> list[StatementRecord]:
        """The statements issued to the chat, oldest first."""
        ...

    async def erase(self, key: SessionKey) -> int:
        """Forget the chat's statements (UU PDP right to erasure); returns how many. Their
        codes then verify as unknown."""
        ...


class AlertSubscriptionStore(Protocol):
    """A chat's contribution alert subscriptions (issue 16): which kinds (``posted``,
    ``missing``, ``development``) it receives. Raises :class:`DatabaseUnavailable`."""

    async def kinds(self, key: SessionKey) -> frozenset[str]:
        """The kinds the chat is subscribed to (empty: none)."""
        ...

    async def subscribe(self, key: SessionKey, kinds: Collection[str], version: str,
                        at: datetime) -> None:
        """Turn ``kinds`` on, recording the alerts notice ``version`` agreed to."""
        ...

    async def unsubscribe(self, key: SessionKey, kinds: Collection[str] | None = None) -> int:
        """Turn ``kinds`` off (``None``: every kind); returns how many were on."""
        ...


class AlertMarks(Protocol):
    """The alerts' exactly-once marks of a chat, kept in the alert queue's store."""

    async def sent_count(self, key: SessionKey) -> int:
        """How many alerts were sent to the chat."""
        ...

    async def forget(self, key: SessionKey) -> int:
        """Erase the chat's marks; returns how many there were."""
        ...
