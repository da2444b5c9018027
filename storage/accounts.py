"""The :class:`~flows.ports.AccountStore` on SQL: chat links, consent records, the chat's
language preference, the audit log.

The audit log names chats only by :func:`pseudonym`, a keyed hash, so it can outlive an
erasure without holding a raw chat id. Every database failure surfaces as
:class:`~flows.ports.DatabaseUnavailable`, whose message carries no personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import weakref
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from flows.ports import ConsentGiven, DatabaseUnavailable
from flows.types import SessionKey
from storage.db import immediate_reader, insert_ignoring_conflicts, scrub, translate_errors
from storage.models import (
    ACTION_LENGTH,
    DETAIL_LENGTH,
    PSEUDONYM_LENGTH,
    AuditEvent,
    ChatLink,
    ChatPreference,
    ConsentRecord,
)

ERASED = "erased"


def pseudonym(key: SessionKey, secret: bytes) -> str:
    """HMAC-SHA256 of ``"channel:chat_id"`` keyed by ``secret``: hex, first 32 characters."""
    digest = hmac.new(secret, str(key).encode(), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_LENGTH]


_LINKED = (sa.select(col(ChatLink.kpj))
           .where(col(ChatLink.channel) == sa.bindparam("channel"),
                  col(ChatLink.chat_id) == sa.bindparam("chat_id"))
           .order_by(col(ChatLink.linked_at), col(ChatLink.kpj)))
_LANGUAGE = (sa.select(col(ChatPreference.locale))
             .where(col(ChatPreference.channel) == sa.bindparam("channel"),
                    col(ChatPreference.chat_id) == sa.bindparam("chat_id")))


class SqlAccountStore:
    """Links, consent and audit in SQLite or PostgreSQL (migrated with ``storage.db.migrate``).

    ``pseudonym_key`` keys the audit pseudonyms; keep it secret and stable, or earlier audit
    lines can no longer be related to a chat.
    """

    def __init__(self, engine: AsyncEngine, pseudonym_key: bytes) -> None:
        if not pseudonym_key:
            raise ValueError("pseudonym_key must not be empty")
        self._engine = engine
        self._key = pseudonym_key
        # A SQLite file's links are read in the event loop's thread (immediate_reader).
        self._reader = immediate_reader(engine)
        if self._reader is not None:
            weakref.finalize(self, self._reader.dispose)

    async def linked_kpjs(self, key: SessionKey) -> list[str]:
        """The KPJ numbers linked to this chat, oldest link first."""
        params = {"channel": key.channel, "chat_id": key.chat_id}
        with translate_errors(DatabaseUnavailable, "linked_kpjs"):
            if self._reader is not None:
                with self._reader.connect() as connection:
                    return list(connection.scalars(_LINKED, params).all())
            async with self._engine.connect() as conn:
                return list((await conn.scalars(_LINKED, params)).all())

    async def link(self, key: SessionKey, kpj: str, at: datetime) -> None:
        """Link the chat to a KPJ (idempotent: a repeated link keeps its first time)."""
        row = {"channel": key.channel, "chat_id": key.chat_id, "kpj": kpj,
               "linked_at": _aware(at)}
        with translate_errors(DatabaseUnavailable, "link"):
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert_ignoring_conflicts(conn.dialect.name, ChatLink, row))

    async def unlink_all(self, key: SessionKey, at: datetime) -> int:
        """Remove every link of the chat; returns how many were removed."""
        with translate_errors(DatabaseUnavailable, "unlink_all"):
            async with self._engine.begin() as conn:
                result = await conn.execute(sa.delete(ChatLink).where(*_chat_link_of(key)))
                return result.rowcount

    async def record_consent(self, key: SessionKey, version: str, locale: str,
                             at: datetime) -> None:
        """Record that the member agreed to consent notice ``version``."""
        row = {"channel": key.channel, "chat_id": key.chat_id, "version": version,
               "locale": locale, "accepted_at": _aware(at)}
        with translate_errors(DatabaseUnavailable, "record_consent"):
            async with self._engine.begin() as conn:
                await conn.execute(sa.insert(ConsentRecord).values(row))

    async def has_consent(self, key: SessionKey, version: str | None = None) -> bool:
        """True when the chat holds a consent record that was not withdrawn (to notice
        ``version`` when given: a new notice text needs new consent)."""
        conditions = [*_consent_of(key), col(ConsentRecord.withdrawn_at).is_(None)]
        if version is not None:
            conditions.append(col(ConsentRecord.version) == version)
        query = sa.select(sa.exists().where(*conditions))
        with translate_errors(DatabaseUnavailable, "has_consent"):
            async with self._engine.connect() as conn:
                return bool(await conn.scalar(query))

    async def consents(self, key: SessionKey) -> list[ConsentGiven]:
        """The chat's standing (not withdrawn) consent records, oldest first."""
        query = (sa.select(col(ConsentRecord.version), col(ConsentRecord.locale),
                           col(ConsentRecord.accepted_at))
                 .where(*_consent_of(key), col(ConsentRecord.withdrawn_at).is_(None))
                 .order_by(col(ConsentRecord.accepted_at), col(ConsentRecord.id)))
        with translate_errors(DatabaseUnavailable, "consents"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [ConsentGiven(version, locale, accepted_at)
                for version, locale, accepted_at in rows]

    async def withdraw_consent(self, key: SessionKey, at: datetime) -> int:
        """Mark the chat's standing consent records withdrawn; returns how many were."""
        statement = (sa.update(ConsentRecord)
                     .where(*_consent_of(key), col(ConsentRecord.withdrawn_at).is_(None))
                     .values(withdrawn_at=_aware(at)))
        with translate_errors(DatabaseUnavailable, "withdraw_consent"):
            async with self._engine.begin() as conn:
                return (await conn.execute(statement)).rowcount

    async def language(self, key: SessionKey) -> str | None:
        """The language the chat chose (``"id"``, ``"en"``), or ``None`` when it chose none.
        Read for every chat without a session, so on a SQLite file it is read in the event
        loop's thread like the links (0.2 ms through aiosqlite's thread hops)."""
        params = {"channel": key.channel, "chat_id": key.chat_id}
        with translate_errors(DatabaseUnavailable, "language"):
            if self._reader is not None:
                with self._reader.connect() as connection:
                    return connection.scalar(_LANGUAGE, params)
            async with self._engine.connect() as conn:
                return await conn.scalar(_LANGUAGE, params)

    async def set_language(self, key: SessionKey, locale: str, at: datetime) -> None:
        """Remember the chat's language choice (replacing an earlier one)."""
        row = {"channel": key.channel, "chat_id": key.chat_id, "locale": locale,
               "updated_at": _aware(at)}
        with translate_errors(DatabaseUnavailable, "set_language"):
            async with self._engine.begin() as conn:
                insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
                statement = insert(ChatPreference).values(row)
                await conn.execute(statement.on_conflict_do_update(
                    index_elements=["channel", "chat_id"],
                    set_={"locale": statement.excluded.locale,
                          "updated_at": statement.excluded.updated_at}))

    async def erase(self, key: SessionKey, at: datetime) -> None:
        """Erase links, consent records and the language preference of the chat, and audit the
        erasure pseudonymously (in the same transaction: either all happen or none)."""
        with translate_errors(DatabaseUnavailable, "erase"):
            async with self._engine.begin() as conn:
                await conn.execute(sa.delete(ChatLink).where(*_chat_link_of(key)))
                await conn.execute(sa.delete(ConsentRecord).where(*_consent_of(key)))
                await conn.execute(sa.delete(ChatPreference).where(*_preference_of(key)))
                await conn.execute(sa.insert(AuditEvent).values(self._audit_row(key, ERASED, at)))
            await scrub(self._engine)

    async def audit(self, key: SessionKey, action: str, at: datetime, detail: str = "") -> None:
        """Append to the audit log. ``detail`` must never hold a NIK, OTP or phone number; it
        is cut to the column's length."""
        row = self._audit_row(key, action, at, detail)
        with translate_errors(DatabaseUnavailable, "audit"):
            async with self._engine.begin() as conn:
                await conn.execute(sa.insert(AuditEvent).values(row))

    def _audit_row(self, key: SessionKey, action: str, at: datetime,
                   detail: str = "") -> dict[str, Any]:
        return {"at": _aware(at), "subject": pseudonym(key, self._key),
                "action": action[:ACTION_LENGTH], "detail": detail[:DETAIL_LENGTH]}


def _aware(at: datetime) -> datetime:
    """``at`` itself; a naive datetime is a caller's bug, not a database failure."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: pass a timezone-aware one")
    return at


def _chat_link_of(key: SessionKey) -> tuple[sa.ColumnElement[bool], ...]:
    return col(ChatLink.channel) == key.channel, col(ChatLink.chat_id) == key.chat_id


def _consent_of(key: SessionKey) -> tuple[sa.ColumnElement[bool], ...]:
    return (col(ConsentRecord.channel) == key.channel,
            col(ConsentRecord.chat_id) == key.chat_id)


def _preference_of(key: SessionKey) -> tuple[sa.ColumnElement[bool], ...]:
    return (col(ChatPreference.channel) == key.channel,
            col(ChatPreference.chat_id) == key.chat_id)
