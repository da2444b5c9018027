"""The :class:`~flows.ports.OtpGuardStore` on SQL (SQLite or PostgreSQL).

Each record is changed by compare-and-set on its ``version``: an insert that ignores a
conflict for a new record, an ``UPDATE ... WHERE version = :seen`` otherwise. Two processes
that change one record at once cannot both succeed; the loser loads again and retries, so no
wrong try and no code sent is ever lost, whichever process serves the chat. Database failures
surface as :class:`~flows.ports.DatabaseUnavailable`, naming no subject.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from flows.ports import DatabaseUnavailable, OtpGuard
from storage.db import insert_ignoring_conflicts, scrub, translate_errors
from storage.models import OtpGuardRecord

_COLUMNS = (col(OtpGuardRecord.version), col(OtpGuardRecord.level),
            col(OtpGuardRecord.locked_until), col(OtpGuardRecord.tries),
            col(OtpGuardRecord.tries_at), col(OtpGuardRecord.sends),
            col(OtpGuardRecord.notified_at), col(OtpGuardRecord.expires_at))


class SqlOtpGuardStore:
    """OTP guard records in the ``otp_guard`` table (migrated with ``storage.db.migrate``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self, subject: str) -> tuple[OtpGuard, int]:
        """The record and its version (an empty record and 0 when there is none)."""
        query = sa.select(*_COLUMNS).where(col(OtpGuardRecord.subject) == subject)
        with translate_errors(DatabaseUnavailable, "otp_guard.load"):
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).first()
        if row is None:
            return OtpGuard(), 0
        version, level, locked_until, tries, tries_at, sends, notified_at, expires_at = row
        return OtpGuard(level=level, locked_until=locked_until, tries=tries, tries_at=tries_at,
                        sends=_times(sends), notified_at=notified_at,
                        expires_at=expires_at), int(version)

    async def save(self, subject: str, guard: OtpGuard, version: int) -> bool:
        """Store ``guard`` if the record is still at ``version`` (0: absent)."""
        values = _values(guard)
        with translate_errors(DatabaseUnavailable, "otp_guard.save"):
            async with self._engine.begin() as conn:
                if version == 0:
                    statement: sa.Executable = insert_ignoring_conflicts(
                        conn.dialect.name, OtpGuardRecord,
                        {"subject": subject, "version": 1, **values})
                else:
                    statement = (sa.update(OtpGuardRecord)
                                 .where(col(OtpGuardRecord.subject) == subject,
                                        col(OtpGuardRecord.version) == version)
                                 .values(version=version + 1, **values))
                result = await conn.execute(statement)
                return bool(getattr(result, "rowcount", 0) == 1)

    async def erase(self, subjects: Sequence[str], now: float) -> int:
        """Delete the records of ``subjects`` that hold no active lock."""
        if not subjects:
            return 0
        statement = sa.delete(OtpGuardRecord).where(
            col(OtpGuardRecord.subject).in_(list(subjects)),
            col(OtpGuardRecord.locked_until) <= now)
        with translate_errors(DatabaseUnavailable, "otp_guard.erase"):
            async with self._engine.begin() as conn:
                deleted = int((await conn.execute(statement)).rowcount)
            if deleted:
                await scrub(self._engine)
        return deleted

    async def purge(self, now: float) -> int:
        """Delete the records that expired before ``now``."""
        statement = sa.delete(OtpGuardRecord).where(col(OtpGuardRecord.expires_at) < now)
        with translate_errors(DatabaseUnavailable, "otp_guard.purge"):
            async with self._engine.begin() as conn:
                return int((await conn.execute(statement)).rowcount)


def _values(guard: OtpGuard) -> dict[str, Any]:
    return {"level": guard.level, "locked_until": guard.locked_until, "tries": guard.tries,
            "tries_at": guard.tries_at, "sends": json.dumps(list(guard.sends)),
            "notified_at": guard.notified_at, "expires_at": guard.expires_at}


def _times(raw: str) -> tuple[float, ...]:
    try:
        value = json.loads(raw)
    except ValueError:
        return ()
    if not isinstance(value, list):
        return ()
    return tuple(float(x) for x in value if isinstance(x, int | float))
