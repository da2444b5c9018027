"""SQLModel tables of the durable data, all on the one shared ``SQLModel.metadata``.

The bot's facts about chats (links to memberships, consent records, the audit log) and the
reference balance service's members live here, so that one Alembic history covers them all.
New tables are added as further classes here and a new revision under ``alembic/versions/``.

Datetimes are timezone-aware: :class:`UtcDateTime` refuses naive values, stores UTC and hands
back aware UTC values on every backend (SQLite keeps no offset of its own).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Named constraints keep Alembic's batch mode (SQLite) and later migrations deterministic.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CHANNEL_LENGTH = 32
CHAT_ID_LENGTH = 128
KPJ_LENGTH = 11
NIK_LENGTH = 16
NPP_LENGTH = 8
PERIOD_LENGTH = 7
PSEUDONYM_LENGTH = 32
ACTION_LENGTH = 64
DETAIL_LENGTH = 500


class UtcDateTime(sa.TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always returns aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Refuse naive datetimes (their zone is unknown); convert aware ones to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: sa.Dialect) -> datetime | None:
        """Attach UTC to what SQLite returns without an offset."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ChatLink(SQLModel, table=True):
    """A chat linked to a membership (KPJ) after identity verification."""

    __tablename__ = "chat_link"
    __table_args__ = (sa.Index("ix_chat_link_kpj", "kpj"),)  # the chats of a KPJ (alerts)

    channel: str = Field(primary_key=True, max_length=CHANNEL_LENGTH)
    chat_id: str = Field(primary_key=True, max_length=CHAT_ID_LENGTH)
    kpj: str = Field(primary_key=True, max_length=KPJ_LENGTH)
    linked_at: datetime = Field(sa_type=UtcDateTime)


class ConsentRecord(SQLModel, table=True):
    """A member's agreement to one version of the consent notice (UU PDP)."""

    __tablename__ = "consent_record"
    __table_args__ = (sa.Index("ix_consent_record_chat", "channel", "chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=CHANNEL_LENGTH)
    chat_id: str = Field(max_length=CHAT_ID_LENGTH)
    version: str = Field(max_length=32)
    locale: str = Field(max_length=16)
    accepted_at: datetime = Field(sa_type=UtcDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ChatPreference(SQLModel, table=True):
    """A chat's own settings that must outlive the session store: the language it chose."""

    __tablename__ = "chat_preference"

    channel: str = Field(primary_key=True, max_length=CHANNEL_LENGTH)
    chat_id: str = Field(primary_key=True, max_length=CHAT_ID_LENGTH)
    locale: str = Field(max_length=16)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class AuditEvent(SQLModel, table=True):
    """One line of the audit log; ``subject`` is a keyed pseudonym, never a raw chat id."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UtcDateTime)
    subject: str = Field(index=True, max_length=PSEUDONYM_LENGTH)
    action: str = Field(max_length=ACTION_LENGTH)
    detail: str = Field(default="", max_length=DETAIL_LENGTH)


class Segment(StrEnum):
    """Membership segment: wage earners, non-wage earners, migrant workers."""

    PU = "PU"
    BPU = "BPU"
    PMI = "PMI"


class MemberStatus(StrEnum):
    """Whether contributions are currently being paid."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class Member(SQLModel, table=True):
    """A member of the reference balance service, identified by KPJ."""

    __tablename__ = "member"
    __table_args__ = (
        sa.CheckConstraint("segment IN ('PU', 'BPU', 'PMI')", name="segment"),
        sa.CheckConstraint("status IN ('active', 'inactive')", name="status"),
    )

    kpj: str = Field(primary_key=True, max_length=KPJ_LENGTH)
    nik: str = Field(index=True, max_length=NIK_LENGTH)
    name: str = Field(max_length=128)
    birth_date: date
    phone: str = Field(max_length=20)
    email: str = Field(default="", max_length=254)
    segment: str = Field(max_length=3)
    status: str = Field(max_length=8)
    employer_npp: str | None = Field(default=None, foreign_key="employer.npp",
                                     max_length=NPP_LENGTH)


class Employer(SQLModel, table=True):
    """An employer of wage-earning (PU) members, by its registration number (NPP)."""

    __tablename__ = "employer"

    npp: str = Field(primary_key=True, max_length=NPP_LENGTH)
    name: str = Field(max_length=128)


class Contribution(SQLModel, table=True):
    """One month's JHT contribution of a KPJ; the parts are computed from ``wage`` at import
    by :func:`balance.rules.jht_parts`. Amounts are whole Rupiah."""

    __tablename__ = "contribution"

    kpj: str = Field(primary_key=True, foreign_key="member.kpj", max_length=KPJ_LENGTH)
    period: str = Field(primary_key=True, max_length=PERIOD_LENGTH)  # "YYYY-MM"
    wage: int
    employer_part: int
    employee_part: int
    paid_on: date


class DevelopmentRate(SQLModel, table=True):
    """The JHT development rate credited for one calendar year, in percent (e.g. 7.19)."""

    __tablename__ = "development_rate"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    rate_percent: Decimal = Field(max_digits=7, decimal_places=4)


REASON_LENGTH = 64
AGENT_LENGTH = 128
LOCALE_LENGTH = 16
LINE_TEXT_LENGTH = 4096
TICKET_STATUSES = ("queued", "open", "closed")
LINE_AUTHORS = ("member", "bot", "agent", "note")

# At most one ticket per chat that is not closed: concurrent opens collide on this index.
NOT_CLOSED = sa.text("status <> 'closed'")


class SupportTicket(SQLModel, table=True):
    """A member's request for a person (see :class:`flows.ports.Ticket`)."""

    __tablename__ = "ticket"
    __table_args__ = (
        sa.CheckConstraint("status IN ('queued', 'open', 'closed')", name="status"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
        sa.Index("ix_ticket_chat_status", "channel", "chat_id", "status"),
        sa.Index("uq_ticket_active_chat", "channel", "chat_id", unique=True,
                 sqlite_where=NOT_CLOSED, postgresql_where=NOT_CLOSED),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=CHANNEL_LENGTH)
    chat_id: str = Field(max_length=CHAT_ID_LENGTH)
    locale: str = Field(max_length=LOCALE_LENGTH)
    status: str = Field(index=True, max_length=8)
    reason: str = Field(max_length=REASON_LENGTH)
    topic_id: int | None = Field(default=None, index=True, sa_type=sa.BigInteger)
    agent: str | None = Field(default=None, max_length=AGENT_LENGTH)
    opened_at: datetime = Field(sa_type=UtcDateTime)
    first_reply_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_agent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_member_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    resolution: str = Field(default="", sa_type=sa.Text)
    rating: int | None = None


class TranscriptEntry(SQLModel, table=True):
    """One line of a ticket's transcript; ``who`` is member, bot, agent or (internal) note."""

    __tablename__ = "ticket_line"
    __table_args__ = (
        sa.CheckConstraint("who IN ('member', 'bot', 'agent', 'note')", name="who"),
        sa.Index("ix_ticket_line_ticket", "ticket_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", ondelete="CASCADE")
    who: str = Field(max_length=8)
    text: str = Field(sa_type=sa.Text)
    at: datetime = Field(index=True, sa_type=UtcDateTime)


SUBJECT_LENGTH = 40


class OtpGuardRecord(SQLModel, table=True):
    """What guards a membership or a chat against OTP guessing (see
    :class:`flows.ports.OtpGuard`); ``subject`` is a keyed pseudonym, never a KPJ or chat id.
    Times are epoch seconds; ``version`` serves compare-and-set updates."""

    __tablename__ = "otp_guard"

    subject: str = Field(primary_key=True, max_length=SUBJECT_LENGTH)
    version: int = 1
    level: int = 0
    locked_until: float = Field(default=0.0, sa_type=sa.Float)
    tries: int = 0
    tries_at: float = Field(default=0.0, sa_type=sa.Float)
    sends: str = Field(default="[]", max_length=400)
    notified_at: float = Field(default=0.0, sa_type=sa.Float)
    expires_at: float = Field(default=0.0, index=True, sa_type=sa.Float)


CODE_LENGTH = 16
INITIALS_LENGTH = 32


class StatementIssue(SQLModel, table=True):
    """A contribution statement issued to a chat, by its verification code. Only what
    ``/verify`` shows is kept (initials, masked KPJ, period, total, issue time); ``subject``
    is the chat's keyed pseudonym, never a chat id."""

    __tablename__ = "statement_issues"

    code: str = Field(primary_key=True, max_length=CODE_LENGTH)
    subject: str = Field(index=True, max_length=PSEUDONYM_LENGTH)
    initials: str = Field(max_length=INITIALS_LENGTH)
    kpj_masked: str = Field(max_length=KPJ_LENGTH + 4)
    period_from: str = Field(max_length=PERIOD_LENGTH)
    period_to: str = Field(max_length=PERIOD_LENGTH)
    total: int = Field(sa_type=sa.BigInteger)
    issued_at: datetime = Field(sa_type=UtcDateTime)


KIND_LENGTH = 16
CURSOR_LENGTH = 64


class ContributionChange(SQLModel, table=True):
    """The reference balance service's change feed: one row per contribution inserted or
    changed (by the importer or the demo seed), in insertion order. ``seq`` is the feed's
    cursor; the contribution itself is read from ``contribution``."""

    __tablename__ = "contribution_change"

    # SQLite gives a row id only to an INTEGER primary key.
    seq: int | None = Field(default=None, primary_key=True,
                            sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                            sa_column_kwargs={"autoincrement": True})
    kpj: str = Field(max_length=KPJ_LENGTH)
    period: str = Field(max_length=PERIOD_LENGTH)
    recorded_at: datetime = Field(sa_type=UtcDateTime)


class AlertSubscription(SQLModel, table=True):
    """A chat's opt-in to one kind of contribution alert (``posted``, ``missing``,
    ``development``), with the version of the alerts notice it agreed to."""

    __tablename__ = "alert_subscription"

    channel: str = Field(primary_key=True, max_length=CHANNEL_LENGTH)
    chat_id: str = Field(primary_key=True, max_length=CHAT_ID_LENGTH)
    kind: str = Field(primary_key=True, max_length=KIND_LENGTH)
    version: str = Field(max_length=32)
    subscribed_at: datetime = Field(sa_type=UtcDateTime)


class AlertCursor(SQLModel, table=True):
    """Where the alert planner stopped reading a feed (``posted``: the contribution change
    feed's cursor), and the last day it planned."""

    __tablename__ = "alert_cursor"

    name: str = Field(primary_key=True, max_length=KIND_LENGTH)
    value: str = Field(max_length=CURSOR_LENGTH)
    updated_at: datetime = Field(sa_type=UtcDateTime)


CONSUMER_LENGTH = 255  # a worker's name: host, process, channel and number
MARK_TAG_LENGTH = 24
MARK_FIELD_LENGTH = 64
MARK_VALUE_LENGTH = 2 + CONSUMER_LENGTH  # "s:<consumer>" at most


class QueuedAlert(SQLModel, table=True):
    """A job of the alert queue on SQL (:mod:`alerts.queue_sql`), until it is finished.
    ``id`` is the queue's order and is never reused (``AUTOINCREMENT`` on SQLite);
    ``consumer`` and ``handed_at`` (epoch seconds) are set when it is handed out."""

    __tablename__ = "alert_job"
    __table_args__ = (sa.Index("ix_alert_job_waiting", "channel", "consumer", "id"),
                      {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True,
                           sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                           sa_column_kwargs={"autoincrement": True})
    channel: str = Field(max_length=CHANNEL_LENGTH)
    payload: str = Field(sa_type=sa.Text)  # AlertJob.encode()
    enqueued_at: float = Field(sa_type=sa.Float)
    consumer: str | None = Field(default=None, max_length=CONSUMER_LENGTH)
    handed_at: float | None = Field(default=None, sa_type=sa.Float)
    attempts: int = 0


class AlertMark(SQLModel, table=True):
    """An exactly-once mark of the alerts (:mod:`alerts.marks`): ``tag`` names the chat by a
    keyed hash, ``field`` the job identity (or ``#sent``, whose value counts the alerts sent
    to the chat), ``value`` the mark, ``written_at`` its last write in epoch seconds (a mark
    unwritten for ``alerts.marks.MARK_TTL`` is deleted, as Redis expires its marks). Neither a
    chat id nor a KPJ is stored."""

    __tablename__ = "alert_mark"

    tag: str = Field(primary_key=True, max_length=MARK_TAG_LENGTH)
    field: str = Field(primary_key=True, max_length=MARK_FIELD_LENGTH)
    value: str = Field(max_length=MARK_VALUE_LENGTH)
    written_at: float = Field(default=0.0, sa_type=sa.Float)
