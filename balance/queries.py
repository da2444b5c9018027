"""The SQL behind the reference balance service's answers: one or two queries each.

Every query starts from the ``member`` primary key and reaches ``contribution`` through its
primary key ``(kpj, period)``, so a member's rows are an index range scan on SQLite and
PostgreSQL alike; ``development_rate`` is a handful of rows. The change feed reads
``contribution_change`` by its primary key ``seq`` and joins each row through the same two
primary keys; the missing-contribution list walks ``member`` by primary key (keyset paging)
and probes ``contribution``'s primary key twice per active member. The functions take an open
connection and let database errors through: the caller translates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlmodel import col

from alerts.ports import ChangesPage, MissingMembership, MissingPage, PostedContribution
from balance.rules import Posted, compute_balance
from flows.ports import (
    Contribution,
    ContributionPage,
    Employer,
    JhtBalance,
    MemberSummary,
    PensionMonths,
)
from storage import models

MAX_PAGE_SIZE = 100


class ImmediateConnection:
    """A synchronous connection behind the two awaitable calls the queries make (see
    :func:`storage.db.immediate_reader`): each runs at once, in the caller's thread."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    async def execute(self, statement: sa.Executable,
                      params: Mapping[str, Any] | None = None) -> sa.CursorResult[Any]:
        """Run ``statement`` now."""
        return self._connection.execute(statement, params)

    async def scalars(self, statement: sa.Executable,
                      params: Mapping[str, Any] | None = None) -> sa.ScalarResult[Any]:
        """Run ``statement`` now; the first column of each row."""
        return self._connection.scalars(statement, params)


Conn = AsyncConnection | ImmediateConnection
# Sorts after every "YYYY-MM": a KPJ without contributions comes after those with some.
_NO_PERIOD = "9999-99"

_member_kpj = col(models.Member.kpj)
_employer_npp = col(models.Employer.npp)
_period = col(models.Contribution.period)
_contribution_kpj = col(models.Contribution.kpj)
# Literal arguments: PostgreSQL matches a GROUP BY expression to the selected one textually,
# and two sets of bound parameters would not match.
_period_year = sa.func.substr(_period, sa.literal_column("1"), sa.literal_column("4"))


# ``member`` left-joined to its employer.
_member_and_employer = sa.outerjoin(models.Member, models.Employer,
                                    _employer_npp == col(models.Member.employer_npp))


def _employer(npp: str | None, name: str | None) -> Employer | None:
    return None if npp is None or name is None else Employer(npp=npp, name=name)


_KPJ: sa.BindParameter[str] = sa.bindparam("kpj", type_=sa.String)
# Built once: a statement built per call costs more CPU than SQLite takes to run it, and a
# reused statement keeps its compiled form in SQLAlchemy's cache without a new cache key.
_MEMBER: Any = sa.select(  # typed loosely: a labelled column of SQLModel types as Never
    _member_kpj, col(models.Member.name), col(models.Member.status),
    col(models.Member.segment), _employer_npp,
    col(models.Employer.name).label("employer_name"),
).select_from(_member_and_employer).where(_member_kpj == _KPJ)
_SAME_NIK = (
    sa.select(_member_kpj).select_from(models.Member)
    .outerjoin(models.Contribution, _contribution_kpj == _member_kpj)
    .where(col(models.Member.nik) == sa.select(col(models.Member.nik))
           .where(_member_kpj == _KPJ).scalar_subquery())
    .group_by(_member_kpj)
    .order_by(sa.func.coalesce(sa.func.min(_period), _NO_PERIOD), _member_kpj))


async def member_summary(conn: Conn, kpj: str) -> MemberSummary | None:
    """The member with its employer, and every KPJ of the same NIK (two queries).

    The KPJs are ordered oldest first: by their first contribution period, then by number
    (KPJs without contributions last).
    """
    found = (await conn.execute(_MEMBER, {"kpj": kpj})).mappings().one_or_none()
    if found is None:
        return None
    kpjs = (await conn.scalars(_SAME_NIK, {"kpj": kpj})).all()
    return MemberSummary(kpj=found["kpj"], name=found["name"], status=found["status"],
                         segment=found["segment"],
                         employer=_employer(found["npp"], found["employer_name"]),
                         kpjs=tuple(kpjs))


_POSTED: Any = (sa.select(_member_kpj, _period, col(models.Contribution.employer_part),
                     col(models.Contribution.employee_part), col(models.Contribution.paid_on))
           .select_from(models.Member)
           .outerjoin(models.Contribution, _contribution_kpj == _member_kpj)
           .where(_member_kpj == _KPJ))
_RATES: Any = sa.select(col(models.DevelopmentRate.year), col(models.DevelopmentRate.rate_percent))


async def jht_balance(conn: Conn, kpj: str, as_of: date) -> JhtBalance | None:
    """The balance by :func:`balance.rules.compute_balance` (the KPJ's contributions, then
    the rates: two queries; one when the KPJ is unknown or has no contributions)."""
    rows = (await conn.execute(_POSTED, {"kpj": kpj})).all()
    if not rows:
        return None
    posted = [Posted(period, employer_part, employee_part, paid_on)
              for _, period, employer_part, employee_part, paid_on in rows
              if period is not None]
    rates: dict[int, Decimal] = {}
    if posted:
        rate_rows = await conn.execute(_RATES)
        rates = {int(row[0]): Decimal(row[1]) for row in rate_rows.all()}
    figures = compute_balance(posted, rates, as_of)
    return JhtBalance(kpj=kpj, as_of=as_of, employer_part=figures.employer_part,
                      employee_part=figures.employee_part, development=figures.development,
                      total=figures.total, last_period=figures.last_period,
                      pending_years=figures.pending_years)


_PER_YEAR = (sa.select(
    _member_kpj, _employer_npp, col(models.Employer.name).label("employer_name"),
    _period_year.label("period_year"), sa.func.count(_period).label("months"),
).select_from(_member_and_employer)
  .outerjoin(models.Contribution, _contribution_kpj == _member_kpj)
  .where(_member_kpj == _KPJ)
  .group_by(_member_kpj, _employer_npp, col(models.Employer.name), _period_year)
  .order_by(_period_year.desc()))
_PAGE = (sa.select(_period, col(models.Contribution.wage), col(models.Contribution.employer_part),
                   col(models.Contribution.employee_part), col(models.Contribution.paid_on))
         .where(_contribution_kpj == _KPJ)
         .order_by(_period.desc())
         .limit(sa.bindparam("limit", type_=sa.Integer))
         .offset(sa.bindparam("offset", type_=sa.Integer)))
_YEAR_PAGE = _PAGE.where(_period >= sa.bindparam("first"), _period <= sa.bindparam("last"))


async def contributions(conn: Conn, kpj: str, year: int | None, page: int,
                        page_size: int) -> ContributionPage | None:
    """One page of contributions, newest first (two queries: the member with its count per
    year, then the page itself when it is not empty).

    The reference data keep no employer per contribution: each item carries the member's
    current employer (``None`` for members without one).
    """
    per_year = (await conn.execute(_PER_YEAR, {"kpj": kpj})).all()
    if not per_year:
        return None
    employer = _employer(per_year[0].npp, per_year[0].employer_name)
    counts = {int(row.period_year): int(row.months) for row in per_year
              if row.period_year is not None}
    total = counts.get(year, 0) if year is not None else sum(counts.values())
    pages = -(-total // page_size)
    items: tuple[Contribution, ...] = ()
    if page <= pages:
        params = {"kpj": kpj, "limit": page_size, "offset": (page - 1) * page_size,
                  "first": f"{year or 0:04d}-01", "last": f"{year or 0:04d}-12"}
        rows = await conn.execute(_PAGE if year is None else _YEAR_PAGE, params)
        items = tuple(
            Contribution(period=row.period, wage=row.wage, employer_part=row.employer_part,
                         employee_part=row.employee_part, paid_on=row.paid_on,
                         employer=employer)
            for row in rows.all())
    return ContributionPage(kpj=kpj, year=year, page=page, page_size=page_size, pages=pages,
                            total=total, years=tuple(counts), items=items)


_PERIODS: Any = (sa.select(_member_kpj, _period).select_from(models.Member)
                 .outerjoin(models.Contribution, _contribution_kpj == _member_kpj)
                 .where(_member_kpj == _KPJ)
                 .order_by(_period))


async def contribution_periods(conn: Conn, kpj: str) -> tuple[str, ...] | None:
    """Every contributed period, oldest first (one query: the member's primary key, then a
    range of ``contribution``'s primary key read in its own order)."""
    rows = (await conn.execute(_PERIODS, {"kpj": kpj})).all()
    if not rows:
        return None
    return tuple(period for _, period in rows if period is not None)


async def pension_months(conn: Conn, kpj: str) -> PensionMonths | None:
    """Months of contributions of a wage-earner (PU) membership; 0 for BPU and PMI, which
    have no JP (one query)."""
    found = (await conn.execute(
        sa.select(col(models.Member.segment), sa.func.count(_period).label("months"),
                  sa.func.min(_period).label("first"), sa.func.max(_period).label("last"))
        .select_from(models.Member)
        .outerjoin(models.Contribution, _contribution_kpj == _member_kpj)
        .where(_member_kpj == kpj)
        .group_by(_member_kpj, col(models.Member.segment)))).one_or_none()
    if found is None:
        return None
    if found.segment != models.Segment.PU:
        return PensionMonths(kpj=kpj, months=0, first_period=None, last_period=None)
    return PensionMonths(kpj=kpj, months=int(found.months), first_period=found.first,
                         last_period=found.last)


async def ping(conn: Conn) -> None:
    """A trivial round trip: raises when the database cannot answer."""
    await conn.execute(sa.text("SELECT 1"))


_change_seq = col(models.ContributionChange.seq)
_change_kpj = col(models.ContributionChange.kpj)
_change_period = col(models.ContributionChange.period)
# Outer joins: a change whose contribution (or member) is gone still advances the cursor.
_CHANGES: Any = (
    sa.select(_change_seq, _member_kpj, _period, col(models.Member.segment),
              col(models.Contribution.employer_part), col(models.Contribution.employee_part),
              col(models.Contribution.paid_on))
    .select_from(models.ContributionChange)
    .outerjoin(models.Contribution,
               sa.and_(_contribution_kpj == _change_kpj, _period == _change_period))
    .outerjoin(models.Member, _member_kpj == _contribution_kpj)
    .where(_change_seq > sa.bindparam("since", type_=sa.BigInteger))
    .order_by(_change_seq)
    .limit(sa.bindparam("limit", type_=sa.Integer)))


async def contribution_changes(conn: Conn, since: str, limit: int) -> ChangesPage:
    """Up to ``limit`` changes after cursor ``since`` (a sequence number, ``""`` for 0), in
    insertion order (one query: a range of ``contribution_change``'s primary key, each row
    joined by primary key).

    The cursor is the last sequence number read, skipped changes included (their contribution
    was deleted since), or ``since`` itself when nothing is new; ``more`` says the page was
    full.
    """
    rows = (await conn.execute(_CHANGES, {"since": int(since or 0), "limit": limit})).all()
    items = tuple(
        PostedContribution(kpj=row.kpj, period=row.period, segment=row.segment,
                           employer_part=row.employer_part, employee_part=row.employee_part,
                           paid_on=row.paid_on)
        for row in rows if row.kpj is not None)
    cursor = str(rows[-1].seq) if rows else since
    return ChangesPage(items=items, cursor=cursor, more=len(rows) == limit)


_PERIOD_PARAM: sa.BindParameter[str] = sa.bindparam("period", type_=sa.String)
_probe = aliased(models.Contribution, name="probe")
_earlier = aliased(models.Contribution, name="earlier")
_MISSING: Any = (
    sa.select(_member_kpj, col(models.Member.segment))
    .where(col(models.Member.status) == models.MemberStatus.ACTIVE.value,
           _member_kpj > sa.bindparam("after", type_=sa.String),
           ~sa.exists().where(col(_probe.kpj) == _member_kpj,
                              col(_probe.period) == _PERIOD_PARAM),
           sa.exists().where(col(_earlier.kpj) == _member_kpj,
                             col(_earlier.period) < _PERIOD_PARAM))
    .order_by(_member_kpj)
    .limit(sa.bindparam("limit", type_=sa.Integer)))


async def missing_contributions(conn: Conn, period: str, after: str,
                                limit: int) -> MissingPage:
    """Up to ``limit`` active memberships, KPJ after ``after`` ascending, without a
    contribution for ``period`` but with one before it (one query).

    The plan on PostgreSQL: an index scan of ``member``'s primary key from ``after``, and for
    each active member an anti-join probe of ``contribution``'s primary key at
    ``(kpj, period)`` and a semi-join probe of its range ``(kpj, < period)`` (the first row
    found ends it); the ``LIMIT`` stops the walk, so a page costs about ``limit`` members'
    probes whatever the table's size.
    """
    rows = (await conn.execute(_MISSING, {"period": period, "after": after,
                                          "limit": limit})).all()
    items = tuple(MissingMembership(kpj=row.kpj, segment=row.segment) for row in rows)
    return MissingPage(items=items, after=items[-1].kpj if len(items) == limit else None)


_RATES_BY_YEAR: Any = _RATES.order_by(col(models.DevelopmentRate.year))


async def development_rates(conn: Conn) -> dict[int, Decimal]:
    """Every configured year's development rate in percent, by year (one query)."""
    rows = (await conn.execute(_RATES_BY_YEAR)).all()
    return {int(year): Decimal(rate) for year, rate in rows}
