"""The :class:`~flows.ports.TicketStore` on SQL: support tickets and their transcripts.

At most one ticket per chat is not closed: :meth:`SqlTicketStore.open` checks inside a
transaction, and the unique partial index ``uq_ticket_active_chat`` settles a race between
two processes (the loser reads the winner's ticket). Every database failure surfaces as
:class:`~flows.ports.DatabaseUnavailable`, whose message carries no personal data; a wrong
argument (naive datetime, rating outside 1-5, unknown ``who``) is a ``ValueError`` before any
query, and an unknown ticket number a ``LookupError``.

Free text (reasons, transcript lines, resolutions) is stored redacted
(:func:`domain.redaction.redact`): the flows redact what they write already, this is the last
guard. It is also made encodable: a lone surrogate (which an agent's or a member's client can
send through a JSON escape) becomes U+FFFD instead of failing the write with a
``UnicodeEncodeError``. :meth:`SqlTicketStore.erase` forgets a chat's tickets (UU PDP right
to erasure).
"""

from __future__ import annotations

import re
import statistics
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from domain.redaction import redact
from flows.ports import DatabaseUnavailable, Ticket, TicketStatus, TranscriptLine
from flows.types import SessionKey
from storage.db import scrub, translate_errors
from storage.models import (
    AGENT_LENGTH,
    LINE_AUTHORS,
    LINE_TEXT_LENGTH,
    LOCALE_LENGTH,
    REASON_LENGTH,
    SupportTicket,
    TranscriptEntry,
    UtcDateTime,
)

OPEN_ATTEMPTS = 3
T = SupportTicket  # short alias for the many column references below
QUEUED = TicketStatus.QUEUED.value
OPEN = TicketStatus.OPEN.value
CLOSED = TicketStatus.CLOSED.value
ERASED_RESOLUTION = "erased at the member's request"
_UNENCODABLE = re.compile(r"[\ud800-\udfff]")  # lone surrogates: no driver encodes them


class SqlTicketStore:
    """Tickets and transcripts in SQLite or PostgreSQL (migrated with ``storage.db.migrate``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def open(self, key: SessionKey, locale: str, reason: str, at: datetime) -> Ticket:
        """A new queued ticket, or the chat's ticket that is not closed yet (never two)."""
        row = {"channel": key.channel, "chat_id": key.chat_id, "locale": locale[:LOCALE_LENGTH],
               "status": QUEUED, "reason": _stored(reason)[:REASON_LENGTH],
               "opened_at": _aware(at), "resolution": ""}
        with translate_errors(DatabaseUnavailable, "open"):
            for _ in range(OPEN_ATTEMPTS):
                try:
                    async with self._engine.begin() as conn:
                        existing = await _first(conn, *_active_of(key))
                        if existing is not None:
                            return existing
                        insert = sa.insert(T).values(row).returning(col(T.id))
                        new_id = (await conn.execute(insert)).scalar_one()
                        ticket = await _first(conn, col(T.id) == new_id)
                        if ticket is not None:
                            return ticket
                except sa.exc.IntegrityError:
                    continue  # a concurrent open won the unique index: read its ticket
        raise DatabaseUnavailable("database failed during open (no ticket after retries)")

    async def active_for(self, key: SessionKey) -> Ticket | None:
        """The chat's queued or open ticket."""
        with translate_errors(DatabaseUnavailable, "active_for"):
            async with self._engine.connect() as conn:
                return await _first(conn, *_active_of(key))

    async def get(self, ticket_id: int) -> Ticket | None:
        """A ticket by number."""
        with translate_errors(DatabaseUnavailable, "get"):
            async with self._engine.connect() as conn:
                return await _first(conn, col(T.id) == ticket_id)

    async def by_topic(self, topic_id: int) -> Ticket | None:
        """The ticket whose desk thread is ``topic_id`` (the newest, should several be)."""
        with translate_errors(DatabaseUnavailable, "by_topic"):
            async with self._engine.connect() as conn:
                return await _first(conn, col(T.topic_id) == topic_id, newest=True)

    async def set_topic(self, ticket_id: int, topic_id: int) -> None:
        """Remember the desk thread of a ticket."""
        await self._update("set_topic", ticket_id, [], topic_id=topic_id)

    async def claim(self, ticket_id: int, agent: str, at: datetime) -> Ticket:
        """Assign ``agent`` to a queued ticket, which becomes open. The first claim wins: an
        open ticket keeps its agent and a closed one stays closed; the returned ticket shows
        who holds it. ``at`` is checked but not stored (the table has no claim time)."""
        _aware(at)
        statement = (sa.update(T).where(col(T.id) == ticket_id, col(T.status) == QUEUED)
                     .values(agent=agent[:AGENT_LENGTH], status=OPEN))
        with translate_errors(DatabaseUnavailable, "claim"):
            async with self._engine.begin() as conn:
                await conn.execute(statement)
                return _found(await _first(conn, col(T.id) == ticket_id))

    async def touch(self, ticket_id: int, who: str, at: datetime) -> None:
        """Record activity on a ticket that is not closed: ``"agent"`` sets the last agent
        time and the first reply once; ``"member"`` the last member time."""
        at = _aware(at)
        if who == "agent":
            first = sa.func.coalesce(col(T.first_reply_at), sa.literal(at, UtcDateTime()))
            values: dict[str, Any] = {"last_agent_at": at, "first_reply_at": first}
        elif who == "member":
            values = {"last_member_at": at}
        else:
            raise ValueError("who must be 'agent' or 'member'")
        await self._update("touch", ticket_id, [col(T.status) != CLOSED], **values)

    async def close(self, ticket_id: int, at: datetime, resolution: str) -> Ticket:
        """Close the ticket with a resolution note; closing again changes nothing."""
        statement = (sa.update(T).where(col(T.id) == ticket_id, col(T.status) != CLOSED)
                     .values(status=CLOSED, closed_at=_aware(at), resolution=_stored(resolution)))
        with translate_errors(DatabaseUnavailable, "close"):
            async with self._engine.begin() as conn:
                await conn.execute(statement)
                return _found(await _first(conn, col(T.id) == ticket_id))

    async def rate(self, ticket_id: int, rating: int) -> None:
        """Store the member's 1-5 rating (a later rating replaces an earlier one)."""
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise ValueError("rating must be an integer from 1 to 5")
        await self._update("rate", ticket_id, [], rating=rating)

    async def add_line(self, ticket_id: int, who: str, text: str, at: datetime) -> None:
        """Append to the transcript; ``text`` is cut to 4096 characters."""
        if who not in LINE_AUTHORS:
            raise ValueError("who must be one of " + ", ".join(LINE_AUTHORS))
        row = {"ticket_id": ticket_id, "who": who, "text": _stored(text)[:LINE_TEXT_LENGTH],
               "at": _aware(at)}
        with translate_errors(DatabaseUnavailable, "add_line"):
            async with self._engine.begin() as conn:
                if not await conn.scalar(sa.select(sa.exists().where(col(T.id) == ticket_id))):
                    raise LookupError(f"no ticket {ticket_id}")
                await conn.execute(sa.insert(TranscriptEntry).values(row))

    async def last_lines(self, ticket_id: int, limit: int = 10) -> list[TranscriptLine]:
        """The newest ``limit`` transcript lines, oldest first."""
        if limit <= 0:
            return []
        line = TranscriptEntry
        query = (sa.select(col(line.who), col(line.text), col(line.at))
                 .where(col(line.ticket_id) == ticket_id)
                 .order_by(col(line.id).desc()).limit(limit))
        with translate_errors(DatabaseUnavailable, "last_lines"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [TranscriptLine(who=r.who, text=r.text, at=r.at) for r in reversed(rows)]

    async def queue_position(self, ticket_id: int) -> int:
        """1 plus the number of queued tickets opened before this one; 0 when the ticket is
        not queued (or unknown). Equal opening times are ordered by ticket number."""
        with translate_errors(DatabaseUnavailable, "queue_position"):
            async with self._engine.connect() as conn:
                ticket = await _first(conn, col(T.id) == ticket_id)
                if ticket is None or ticket.status is not TicketStatus.QUEUED:
                    return 0
                earlier = sa.or_(col(T.opened_at) < ticket.opened_at,
                                 sa.and_(col(T.opened_at) == ticket.opened_at,
                                         col(T.id) < ticket.id))
                ahead = await conn.scalar(sa.select(sa.func.count())
                                          .where(col(T.status) == QUEUED, earlier))
        return 1 + int(ahead or 0)

    async def median_first_reply(self, since: datetime) -> float | None:
        """Median seconds from opening to the first agent reply, over tickets opened since
        ``since`` that have a reply; ``None`` when there are none."""
        query = sa.select(col(T.opened_at), col(T.first_reply_at)).where(
            col(T.opened_at) >= _aware(since), col(T.first_reply_at).is_not(None))
        with translate_errors(DatabaseUnavailable, "median_first_reply"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        if not rows:
            return None
        return float(statistics.median((r.first_reply_at - r.opened_at).total_seconds()
                                       for r in rows))

    async def waiting(self) -> list[Ticket]:
        """Tickets not closed, oldest first (for timeouts and for delivery to the desk)."""
        query = (sa.select(T).where(col(T.status) != CLOSED)
                 .order_by(col(T.opened_at), col(T.id)))
        with translate_errors(DatabaseUnavailable, "waiting"):
            async with self._engine.connect() as conn:
                return [_ticket(row) for row in (await conn.execute(query)).all()]

    async def purge_transcripts(self, before: datetime) -> int:
        """Delete transcript lines older than ``before``; returns how many."""
        statement = sa.delete(TranscriptEntry).where(col(TranscriptEntry.at) < _aware(before))
        with translate_errors(DatabaseUnavailable, "purge_transcripts"):
            async with self._engine.begin() as conn:
                return (await conn.execute(statement)).rowcount

    async def erase(self, key: SessionKey, at: datetime) -> list[Ticket]:
        """Forget the chat's tickets: their transcripts are deleted, an open one is closed, and
        what tied a ticket to the chat or held member text (chat id, desk thread, reason,
        resolution) is cleared. Channel, language, status, times, agent and rating stay for the
        statistics. Returns the tickets as they were, for telling the desk."""
        at = _aware(at)
        mine = sa.select(col(T.id)).where(col(T.channel) == key.channel,
                                          col(T.chat_id) == key.chat_id)
        with translate_errors(DatabaseUnavailable, "erase"):
            async with self._engine.begin() as conn:
                rows = (await conn.execute(sa.select(T).where(col(T.id).in_(mine))
                                           .order_by(col(T.id)))).all()
                ids = [row.id for row in rows]
                if not ids:
                    return []
                await conn.execute(sa.delete(TranscriptEntry)
                                   .where(col(TranscriptEntry.ticket_id).in_(ids)))
                await conn.execute(sa.update(T).where(col(T.id).in_(ids),
                                                      col(T.status) != CLOSED)
                                   .values(status=CLOSED, closed_at=at))
                await conn.execute(sa.update(T).where(col(T.id).in_(ids)).values(
                    chat_id="", topic_id=None, reason="", resolution=ERASED_RESOLUTION))
            await scrub(self._engine)
        return [_ticket(row) for row in rows]

    async def stats(self) -> dict[str, float]:
        """``opened`` (all tickets), ``claimed`` (with an agent), ``closed``, ``waiting``
        (queued), ``open``, ``rating_avg`` (0.0 when none is rated) and ``rated``."""
        def count_of(status: str) -> sa.ColumnElement[Any]:
            return sa.func.count(sa.case((col(T.status) == status, 1)))

        query = sa.select(sa.func.count(), sa.func.count(col(T.agent)), count_of(CLOSED),
                          count_of(QUEUED), count_of(OPEN), sa.func.avg(col(T.rating)),
                          sa.func.count(col(T.rating)))
        with translate_errors(DatabaseUnavailable, "stats"):
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).one()
        opened, claimed, closed, queued, open_, rating_avg, rated = row
        return {"opened": opened, "claimed": claimed, "closed": closed, "waiting": queued,
                "open": open_, "rating_avg": float(rating_avg or 0.0), "rated": rated}

    async def _update(self, operation: str, ticket_id: int,
                      conditions: list[sa.ColumnElement[bool]], **values: Any) -> None:
        """Update one ticket; ``LookupError`` when there is no such ticket."""
        statement = sa.update(T).where(col(T.id) == ticket_id, *conditions).values(**values)
        with translate_errors(DatabaseUnavailable, operation):
            async with self._engine.begin() as conn:
                if (await conn.execute(statement)).rowcount:
                    return
                exists = await conn.scalar(sa.select(sa.exists().where(col(T.id) == ticket_id)))
        if not exists:
            raise LookupError(f"no ticket {ticket_id}")


async def _first(conn: AsyncConnection, *conditions: sa.ColumnElement[bool],
                 newest: bool = False) -> Ticket | None:
    order = col(T.id).desc() if newest else col(T.id)
    row = (await conn.execute(sa.select(T).where(*conditions).order_by(order).limit(1))).first()
    return None if row is None else _ticket(row)


def _ticket(row: sa.Row[Any]) -> Ticket:
    return Ticket(
        id=row.id, key=SessionKey(row.channel, row.chat_id), locale=row.locale,
        status=TicketStatus(row.status), reason=row.reason, topic_id=row.topic_id,
        agent=row.agent, opened_at=row.opened_at, first_reply_at=row.first_reply_at,
        last_agent_at=row.last_agent_at, last_member_at=row.last_member_at,
        closed_at=row.closed_at, resolution=row.resolution, rating=row.rating)


def _found(ticket: Ticket | None) -> Ticket:
    if ticket is None:
        raise LookupError("no such ticket")
    return ticket


def _active_of(key: SessionKey) -> tuple[sa.ColumnElement[bool], ...]:
    return (col(T.channel) == key.channel, col(T.chat_id) == key.chat_id,
            col(T.status) != CLOSED)


def _aware(at: datetime) -> datetime:
    """``at`` itself; a naive datetime is a caller's bug, not a database failure."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: pass a timezone-aware one")
    return at


def _stored(text: str) -> str:
    """Free text as it is written: redacted, and encodable (lone surrogates replaced)."""
    return redact(_UNENCODABLE.sub("\N{REPLACEMENT CHARACTER}", text))
