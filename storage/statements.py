"""The :class:`~flows.ports.StatementIssueStore` on SQL, and an in-process one.

Each issued contribution statement is kept by its verification code with only what
``/verify/<code>`` shows (initials, masked KPJ, period, total, issue time), and the chat that
asked for it as a keyed pseudonym (:func:`storage.accounts.pseudonym`), so ``/datasaya`` can
list a chat's statements and ``/hapusdata`` forget them without the table holding a chat id.
Every database failure surfaces as :class:`~flows.ports.DatabaseUnavailable`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from flows.ports import DatabaseUnavailable, StatementRecord
from flows.types import SessionKey
from storage.accounts import pseudonym
from storage.db import insert_ignoring_conflicts, scrub, translate_errors
from storage.models import StatementIssue

S = StatementIssue
_Row = sa.Row[str, str, str, str, str, int, datetime]  # the columns of _COLUMNS
_COLUMNS = (col(S.code), col(S.initials), col(S.kpj_masked), col(S.period_from),
            col(S.period_to), col(S.total), col(S.issued_at))


class SqlStatementIssueStore:
    """Issued statements in SQLite or PostgreSQL (migrated with ``storage.db.migrate``).

    ``pseudonym_key`` keys the chats' pseudonyms: the same secret as the account store's
    audit log, so that both name a chat alike."""

    def __init__(self, engine: AsyncEngine, pseudonym_key: bytes) -> None:
        if not pseudonym_key:
            raise ValueError("pseudonym_key must not be empty")
        self._engine = engine
        self._key = pseudonym_key

    async def record(self, key: SessionKey, issued: StatementRecord) -> bool:
        """Remember a statement issued to the chat; ``False`` when the code is taken by
        another statement (the same statement twice is kept once)."""
        row = _row(issued, pseudonym(key, self._key))
        with translate_errors(DatabaseUnavailable, "record_statement"):
            async with self._engine.begin() as conn:
                inserted = await conn.execute(insert_ignoring_conflicts(conn.dialect.name, S,
                                                                        row))
                if inserted.rowcount:
                    return True
                query = sa.select(*_COLUMNS).where(col(S.code) == issued.code)
                found = (await conn.execute(query)).first()
        return found is not None and _summary(found) == issued

    async def lookup(self, code: str) -> StatementRecord | None:
        """The statement issued under ``code`` (exactly as issued), or ``None``."""
        query = sa.select(*_COLUMNS).where(col(S.code) == code)
        with translate_errors(DatabaseUnavailable, "lookup_statement"):
            async with self._engine.connect() as conn:
                found = (await conn.execute(query)).first()
        return None if found is None else _summary(found)

    async def for_subject(self, key: SessionKey) -> list[StatementRecord]:
        """The statements issued to the chat, oldest first."""
        query = (sa.select(*_COLUMNS).where(col(S.subject) == pseudonym(key, self._key))
                 .order_by(col(S.issued_at), col(S.code)))
        with translate_errors(DatabaseUnavailable, "statements_of"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [_summary(row) for row in rows]

    async def erase(self, key: SessionKey) -> int:
        """Forget the chat's statements; returns how many were forgotten."""
        statement = sa.delete(S).where(col(S.subject) == pseudonym(key, self._key))
        with translate_errors(DatabaseUnavailable, "erase_statements"):
            async with self._engine.begin() as conn:
                count = (await conn.execute(statement)).rowcount
            await scrub(self._engine)
        return count


class MemoryStatementIssueStore:
    """Issued statements in this process (tests, and a runtime without a database)."""

    def __init__(self) -> None:
        self._issued: dict[str, tuple[SessionKey, StatementRecord]] = {}

    async def record(self, key: SessionKey, issued: StatementRecord) -> bool:
        """Remember a statement issued to the chat; ``False`` when the code is taken by
        another statement (the same statement twice is kept once)."""
        return self._issued.setdefault(issued.code, (key, issued))[1] == issued

    async def lookup(self, code: str) -> StatementRecord | None:
        """The statement issued under ``code``, or ``None``."""
        found = self._issued.get(code)
        return None if found is None else found[1]

    async def for_subject(self, key: SessionKey) -> list[StatementRecord]:
        """The statements issued to the chat, oldest first."""
        return sorted((issued for owner, issued in self._issued.values() if owner == key),
                      key=lambda issued: (issued.issued_at, issued.code))

    async def erase(self, key: SessionKey) -> int:
        """Forget the chat's statements; returns how many were forgotten."""
        codes = [code for code, (owner, _) in self._issued.items() if owner == key]
        for code in codes:
            del self._issued[code]
        return len(codes)


def _row(issued: StatementRecord, subject: str) -> dict[str, Any]:
    return {"code": issued.code, "subject": subject, "initials": issued.initials,
            "kpj_masked": issued.kpj_masked, "period_from": issued.period_from,
            "period_to": issued.period_to, "total": issued.total,
            "issued_at": _aware(issued.issued_at)}


def _summary(row: _Row) -> StatementRecord:
    return StatementRecord(code=row.code, initials=row.initials, kpj_masked=row.kpj_masked,
                           period_from=row.period_from, period_to=row.period_to,
                           total=row.total, issued_at=row.issued_at)


def _aware(at: datetime) -> datetime:
    """``at`` itself; a naive datetime is a caller's bug, not a database failure."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: pass a timezone-aware one")
    return at
