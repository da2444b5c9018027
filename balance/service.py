"""The reference balance service: the members' data in the bot's own database.

It stands in for BPJS's shared service in the embedded default and backs
``run_bot.py balance-service``. Identity checks answer only "matches" or "does not", never
which of NIK, KPJ and birth date was wrong.
"""

from __future__ import annotations

import hmac
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from balance.demo import DEMO_MEMBERS
from flows.ports import BalanceServiceUnavailable, IdentityMatch
from storage.db import insert_ignoring_conflicts, translate_errors
from storage.models import Member

# Compared against when the KPJ is unknown, so that a miss costs about as long as a mismatch.
_NO_NIK = b"0" * 16


class ReferenceBalanceService:
    """:class:`~flows.ports.BalanceService` on the ``member`` table of a migrated database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        """The member when NIK, KPJ and birth date belong together, else ``None`` (never
        which field was wrong). Raises :class:`~flows.ports.BalanceServiceUnavailable`."""
        member = await self._member(kpj)
        stored_nik = member.nik.encode() if member else _NO_NIK
        nik_matches = hmac.compare_digest(stored_nik, nik.encode())
        if member is None or not nik_matches or member.birth_date != birth_date:
            return None
        return IdentityMatch(kpj=member.kpj, name=member.name, phone=member.phone,
                             email=member.email)

    async def _member(self, kpj: str) -> Member | None:
        """The member with this KPJ, or ``None``."""
        with translate_errors(BalanceServiceUnavailable, "member lookup"):
            async with AsyncSession(self._engine) as session:
                return await session.get(Member, kpj)


async def seed_demo_members(engine: AsyncEngine) -> int:
    """Insert the demo members missing from the database; returns how many were inserted.

    Safe to run concurrently from several processes: existing members are left untouched.
    """
    inserted = 0
    with translate_errors(BalanceServiceUnavailable, "seeding demo members"):
        async with engine.begin() as conn:
            for member in DEMO_MEMBERS:
                statement = insert_ignoring_conflicts(conn.dialect.name, Member,
                                                      member.model_dump())
                inserted += (await conn.execute(statement)).rowcount
    return inserted
