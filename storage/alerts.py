"""Contribution alert subscriptions and the planner's cursors on SQL (issue 16).

:class:`SqlAlertStore` is the chat side's :class:`~flows.ports.AlertSubscriptionStore`
(``/notifikasi``), the planner's and workers' :class:`~alerts.ports.SubscriberDirectory` and
the planner's :class:`~alerts.ports.CursorStore`. The directory is read in bulk (5,000 KPJs
a query, one bound parameter: a JSON array on SQLite, a text array on PostgreSQL), as Core
rows, never ORM objects; on a SQLite file it reads in the event loop's thread
(:func:`storage.db.immediate_reader`). Every database failure surfaces as
:class:`~flows.ports.DatabaseUnavailable`.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from alerts.ports import ChatState, Recipient
from flows.ports import DatabaseUnavailable
from flows.types import SessionKey
from storage.db import immediate_reader, translate_errors
from storage.models import AlertCursor, AlertSubscription, ChatLink, ChatPreference

__all__ = ["CHUNK", "DEFAULT_LOCALE", "SqlAlertStore"]

CHUNK = 5_000  # KPJs per directory query
DEFAULT_LOCALE = "id"

_SUB, _LINK = AlertSubscription.__table__, ChatLink.__table__  # type: ignore[attr-defined]
_PREF = ChatPreference.__table__  # type: ignore[attr-defined]
_JOINED = _LINK.join(_SUB, sa.and_(_LINK.c.channel == _SUB.c.channel,
                                   _LINK.c.chat_id == _SUB.c.chat_id))
_RECIPIENT = (_LINK.c.channel, _LINK.c.chat_id, _LINK.c.kpj)


def _subscribed_query(dialect: str) -> sa.Select[Any]:
    """Chats subscribed to ``:kind`` linked to any KPJ of ``:kpjs`` (one bound array)."""
    if dialect == "postgresql":
        wanted = sa.select(sa.func.unnest(sa.bindparam(
            "kpjs", type_=postgresql.ARRAY(sa.String))).label("kpj")).scalar_subquery()
    else:
        each = sa.func.json_each(sa.bindparam("kpjs", type_=sa.String)).table_valued("value")
        wanted = sa.select(each.c.value).scalar_subquery()
    return (sa.select(*_RECIPIENT).select_from(_JOINED)
            .where(_SUB.c.kind == sa.bindparam("kind"), _LINK.c.kpj.in_(wanted)))


_SUBSCRIBED = {name: _subscribed_query(name) for name in ("postgresql", "sqlite")}
_EVERY_FIRST = (sa.select(*_RECIPIENT).select_from(_JOINED)
                .where(_SUB.c.kind == sa.bindparam("kind"))
                .order_by(*_RECIPIENT).limit(sa.bindparam("limit")))
_EVERY_AFTER = _EVERY_FIRST.where(sa.tuple_(*_RECIPIENT) > sa.tuple_(
    sa.bindparam("channel"), sa.bindparam("chat_id"), sa.bindparam("kpj")))
_KINDS = (sa.select(_SUB.c.kind)
          .where(_SUB.c.channel == sa.bindparam("channel"),
                 _SUB.c.chat_id == sa.bindparam("chat_id")))
_CURSOR = sa.select(col(AlertCursor.value)).where(col(AlertCursor.name) == sa.bindparam("name"))


class SqlAlertStore:
    """Alert subscriptions, the directory of subscribed chats and the planner's cursors in
    SQLite or PostgreSQL (tables of :mod:`storage.models`, migrated by ``storage.db.migrate``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader = immediate_reader(engine)
        if self._reader is not None:
            weakref.finalize(self, self._reader.dispose)

    # ------------------------------------------------------------ the chat's subscriptions

    async def kinds(self, key: SessionKey) -> frozenset[str]:
        """The kinds the chat is subscribed to (empty: none)."""
        rows = await self._read("alert_kinds", _KINDS,
                                {"channel": key.channel, "chat_id": key.chat_id})
        return frozenset(kind for (kind,) in rows)

    async def subscribe(self, key: SessionKey, kinds: Collection[str], version: str,
                        at: datetime) -> None:
        """Turn ``kinds`` on (a kind already on takes the new ``version`` and time)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("naive datetime: pass a timezone-aware one")
        rows = [{"channel": key.channel, "chat_id": key.chat_id, "kind": kind,
                 "version": version, "subscribed_at": at} for kind in sorted(set(kinds))]
        if not rows:
            return
        with translate_errors(DatabaseUnavailable, "alert_subscribe"):
            async with self._engine.begin() as conn:
                insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
                statement = insert(AlertSubscription).values(rows)
                await conn.execute(statement.on_conflict_do_update(
                    index_elements=["channel", "chat_id", "kind"],
                    set_={"version": statement.excluded.version,
                          "subscribed_at": statement.excluded.subscribed_at}))

    async def unsubscribe(self, key: SessionKey, kinds: Collection[str] | None = None) -> int:
        """Turn ``kinds`` off (``None``: every kind); returns how many were on."""
        statement = sa.delete(_SUB).where(_SUB.c.channel == key.channel,
                                          _SUB.c.chat_id == key.chat_id)
        if kinds is not None:
            if not kinds:
                return 0
            statement = statement.where(_SUB.c.kind.in_(sorted(set(kinds))))
        with translate_errors(DatabaseUnavailable, "alert_unsubscribe"):
            async with self._engine.begin() as conn:
                return (await conn.execute(statement)).rowcount

    # ------------------------------------------------------------------ the directory

    async def subscribed(self, kind: str, kpjs: Sequence[str]) -> list[Recipient]:
        """The chats subscribed to ``kind`` and linked to any of ``kpjs`` (one per chat and
        KPJ), one query per 5,000 KPJs."""
        found: list[Recipient] = []
        dialect = self._engine.dialect.name
        query = _SUBSCRIBED["postgresql" if dialect == "postgresql" else "sqlite"]
        for start in range(0, len(kpjs), CHUNK):
            chunk = list(kpjs[start:start + CHUNK])
            bound = chunk if dialect == "postgresql" else json.dumps(chunk)
            rows = await self._read("alert_subscribed", query, {"kind": kind, "kpjs": bound})
            found.extend(Recipient(channel, chat_id, kpj) for channel, chat_id, kpj in rows)
        return found

    async def every_subscribed(self, kind: str, after: Recipient | None,
                               limit: int) -> list[Recipient]:
        """Every chat subscribed to ``kind`` with each linked KPJ, ordered by (channel, chat,
        KPJ), after ``after``, at most ``limit``."""
        if after is None:
            query, params = _EVERY_FIRST, {"kind": kind, "limit": limit}
        else:
            query, params = _EVERY_AFTER, {"kind": kind, "limit": limit,
                                           "channel": after.channel,
                                           "chat_id": after.chat_id, "kpj": after.kpj}
        rows = await self._read("alert_every_subscribed", query, params)
        return [Recipient(channel, chat_id, kpj) for channel, chat_id, kpj in rows]

    async def states(self, keys: Sequence[SessionKey]) -> dict[SessionKey, ChatState]:
        """Each chat's kinds, linked KPJs and language (``"id"`` by default), in three
        queries; a chat with neither subscription nor link is absent."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        pairs = [(key.channel, key.chat_id) for key in wanted]
        kinds: dict[SessionKey, set[str]] = {}
        kpjs: dict[SessionKey, set[str]] = {}
        locales: dict[SessionKey, str] = {}
        for table, column, into in ((_SUB, _SUB.c.kind, kinds), (_LINK, _LINK.c.kpj, kpjs)):
            query = sa.select(table.c.channel, table.c.chat_id, column).where(
                sa.tuple_(table.c.channel, table.c.chat_id).in_(pairs))
            for channel, chat_id, value in await self._read("alert_states", query, {}):
                into.setdefault(SessionKey(channel, chat_id), set()).add(value)
        present = [(key.channel, key.chat_id) for key in wanted if key in kinds or key in kpjs]
        if present:
            query = sa.select(_PREF.c.channel, _PREF.c.chat_id, _PREF.c.locale).where(
                sa.tuple_(_PREF.c.channel, _PREF.c.chat_id).in_(present))
            for channel, chat_id, locale in await self._read("alert_states", query, {}):
                locales[SessionKey(channel, chat_id)] = locale
        return {key: ChatState(frozenset(kinds.get(key, ())), frozenset(kpjs.get(key, ())),
                               locales.get(key, DEFAULT_LOCALE))
                for key in wanted if key in kinds or key in kpjs}

    # -------------------------------------------------------------------- the cursors

    async def cursor(self, name: str) -> str | None:
        """The stored value, or ``None``."""
        rows = await self._read("alert_cursor", _CURSOR, {"name": name})
        return str(rows[0][0]) if rows else None

    async def set_cursor(self, name: str, value: str, at: datetime) -> None:
        """Store ``value`` under ``name`` (replacing the one before)."""
        row = {"name": name, "value": value, "updated_at": at}
        with translate_errors(DatabaseUnavailable, "alert_set_cursor"):
            async with self._engine.begin() as conn:
                insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
                statement = insert(AlertCursor).values(row)
                await conn.execute(statement.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"value": statement.excluded.value,
                          "updated_at": statement.excluded.updated_at}))

    async def _read(self, operation: str, query: sa.Executable,
                    params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of ``query`` as tuples: in this thread on a SQLite file, else through
        the async engine."""
        with translate_errors(DatabaseUnavailable, operation):
            if self._reader is not None:
                with self._reader.connect() as connection:
                    return [tuple(row) for row in connection.execute(query, dict(params))]
            async with self._engine.connect() as conn:
                result = await conn.execute(query, dict(params))
                return [tuple(row) for row in result]
