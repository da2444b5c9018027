"""The reference balance service: the members' data in the bot's own database.

It stands in for BPJS's shared service in the embedded default and backs
``run_bot.py balance-service``. Identity checks answer only "matches" or "does not", never
which of NIK, KPJ and birth date was wrong.
"""

from __future__ import annotations

import hmac
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from alerts.ports import ChangesPage, MissingPage
from balance import queries
from balance.demo import (
    DEFAULT_RATES,
    DEMO_CONTRIBUTIONS,
    DEMO_EMPLOYERS,
    DEMO_MEMBERS,
    DEMO_RATES,
)
from balance.importer import insert_or_ignore, lock_change_feed, record_changes
from flows.ports import (
    BalanceServiceUnavailable,
    ContributionPage,
    IdentityMatch,
    JhtBalance,
    MemberSummary,
    PensionMonths,
)
from storage.db import immediate_reader, insert_ignoring_conflicts, translate_errors
from storage.models import Contribution, DevelopmentRate, Employer, Member

# Compared against when the KPJ is unknown, so that a miss costs about as long as a mismatch.
_NO_NIK = b"0" * 16
MAX_PAGE_SIZE = queries.MAX_PAGE_SIZE
MAX_FEED_LIMIT = 10_000
_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_KPJ = re.compile(r"[0-9]{11}")
_CURSOR = re.compile(r"[0-9]{1,18}")  # a BIGINT sequence number

_T = TypeVar("_T")
_DEMO_ORDER = tuple((row.kpj, row.period) for row in DEMO_CONTRIBUTIONS)


class ReferenceBalanceService:
    """:class:`~flows.ports.BalanceService` and :class:`~alerts.ports.ContributionFeed` on the
    tables of a migrated database.

    Every method raises :class:`~flows.ports.BalanceServiceUnavailable` when the database
    fails (the message names the operation only, never a NIK); ``None`` means an unknown KPJ.
    The SQL is in :mod:`balance.queries`: one or two index-friendly queries per call.
    """

    def __init__(self, engine: AsyncEngine, *, immediate: bool = True) -> None:
        self._engine = engine
        # SQLite files are read in the event loop's thread (storage.db.immediate_reader).
        self._reader = immediate_reader(engine) if immediate else None
        if self._reader is not None:
            weakref.finalize(self, self._reader.dispose)

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

    async def member_summary(self, kpj: str) -> MemberSummary | None:
        """Status, segment, employer and all KPJ of the member (same NIK, oldest first)."""
        return await self._run("member summary", lambda conn: queries.member_summary(conn, kpj))

    async def jht_balance(self, kpj: str, as_of: date) -> JhtBalance | None:
        """The JHT balance as of ``as_of`` by the rule of DOMAIN.md."""
        return await self._run("JHT balance",
                               lambda conn: queries.jht_balance(conn, kpj, as_of))

    async def contributions(self, kpj: str, *, year: int | None = None, page: int = 1,
                            page_size: int = 12) -> ContributionPage | None:
        """Contributions, newest first, ``page_size`` (1 to 100) a page from page 1; ``year``
        filters by period year. A page past the last one is empty. Raises
        :class:`ValueError` for a page below 1 or a page size out of range."""
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page {page} / page_size {page_size} out of range")
        return await self._run("contributions", lambda conn: queries.contributions(
            conn, kpj, year, page, page_size))

    async def contribution_periods(self, kpj: str) -> tuple[str, ...] | None:
        """Every contributed period, oldest first."""
        return await self._run("contribution periods",
                               lambda conn: queries.contribution_periods(conn, kpj))

    async def pension_months(self, kpj: str) -> PensionMonths | None:
        """Months of JP contributions (0 for BPU and PMI memberships, which have no JP)."""
        return await self._run("pension months",
                               lambda conn: queries.pension_months(conn, kpj))

    async def contribution_changes(self, since: str = "", limit: int = 1000) -> ChangesPage:
        """Contributions inserted or changed after cursor ``since`` (``""``: from the start),
        at most ``limit`` (1 to 10,000) in insertion order; the cursor is returned unchanged
        when nothing is new. Raises :class:`ValueError` for a malformed cursor or a limit out
        of range."""
        _check_limit(limit)
        if since and not _CURSOR.fullmatch(since):
            raise ValueError("since must be a cursor returned by the feed")
        return await self._run("contribution changes",
                               lambda conn: queries.contribution_changes(conn, since, limit))

    async def missing_contributions(self, period: str, *, after: str = "",
                                    limit: int = 1000) -> MissingPage:
        """Active memberships without a contribution for ``period`` (``"YYYY-MM"``) that have
        one before it, KPJ after ``after`` ascending, at most ``limit`` (1 to 10,000). Raises
        :class:`ValueError` for a malformed period or KPJ, or a limit out of range."""
        _check_limit(limit)
        if not _PERIOD.fullmatch(period):
            raise ValueError("period must be YYYY-MM")
        if after and not _KPJ.fullmatch(after):
            raise ValueError("after must be a KPJ of 11 digits")
        return await self._run("missing contributions", lambda conn: (
            queries.missing_contributions(conn, period, after, limit)))

    async def development_rates(self) -> Mapping[int, Decimal]:
        """The development rate credited for each configured year, in percent."""
        return await self._run("development rates", queries.development_rates)

    async def ping(self) -> None:
        """Raise :class:`~flows.ports.BalanceServiceUnavailable` unless the database answers."""
        await self._run("health check", queries.ping)

    async def _run(self, operation: str,
                   query: Callable[[queries.Conn], Awaitable[_T]]) -> _T:
        """``query`` on a pooled connection, database errors translated."""
        with translate_errors(BalanceServiceUnavailable, operation):
            if self._reader is not None:
                with self._reader.connect() as connection:
                    return await query(queries.ImmediateConnection(connection))
            async with self._engine.connect() as conn:
                return await query(conn)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_FEED_LIMIT:
        raise ValueError(f"limit {limit} out of range (1 to {MAX_FEED_LIMIT})")


async def seed_demo_members(engine: AsyncEngine) -> int:
    """Insert the demo employers, members and contributions missing from the database, the
    default development rates (:func:`seed_default_rates`) and the demo's made-up rates for
    2021-2024 (:data:`balance.demo.DEMO_RATES`, never official); returns how many members were
    inserted. Rates already configured are left alone.

    Safe to run concurrently from several processes: existing rows are left untouched (bulk
    ``INSERT ... ON CONFLICT DO NOTHING``), so a database upgraded from before the balance
    tables gets the demo members' contributions too. The contributions it inserts (and only
    those) are recorded in the change feed, so a fresh demo database has one.
    """
    inserted = 0
    with translate_errors(BalanceServiceUnavailable, "seeding demo members"):
        async with engine.begin() as conn:
            dialect = conn.dialect.name
            await conn.execute(insert_or_ignore(dialect, Employer),
                               [employer.model_dump() for employer in DEMO_EMPLOYERS])
            for member in DEMO_MEMBERS:
                statement = insert_ignoring_conflicts(dialect, Member, member.model_dump())
                inserted += (await conn.execute(statement)).rowcount
            await lock_change_feed(conn)
            added = await conn.execute(
                insert_or_ignore(dialect, Contribution).returning(
                    col(Contribution.kpj), col(Contribution.period)),
                [contribution.model_dump() for contribution in DEMO_CONTRIBUTIONS])
            new = {(kpj, period) for kpj, period in added}
            await record_changes(conn, [key for key in _DEMO_ORDER if key in new],
                                 datetime.now(UTC))
    await seed_default_rates(engine)
    await _seed_rates(engine, DEMO_RATES, "seeding demo rates")
    return inserted


async def seed_default_rates(engine: AsyncEngine) -> int:
    """Insert the published development rates (:data:`balance.demo.DEFAULT_RATES`) for the
    years that have no rate yet; returns how many were inserted. Rates already configured (by an
    import) are left alone."""
    return await _seed_rates(engine, DEFAULT_RATES, "seeding default rates")


async def _seed_rates(engine: AsyncEngine, rates: Mapping[int, Decimal], operation: str) -> int:
    """Insert ``rates`` for the years without a rate; returns how many were inserted."""
    with translate_errors(BalanceServiceUnavailable, operation):
        async with engine.begin() as conn:
            configured = set((await conn.execute(select(col(DevelopmentRate.year)))).scalars())
            missing = [{"year": year, "rate_percent": rate}
                       for year, rate in rates.items() if year not in configured]
            if missing:
                await conn.execute(insert_or_ignore(conn.dialect.name, DevelopmentRate),
                                   missing)
    return len(missing)
