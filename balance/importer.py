"""CSV import of members, contributions and development rates into the reference service's tables.

Formats (header row, UTF-8 with or without BOM, comma-separated, any line endings):

* members: ``kpj,nik,name,birth_date,phone,email,segment,status,employer_npp,employer_name``
  (``birth_date`` ``YYYY-MM-DD``; ``segment`` ``PU``/``BPU``/``PMI``; ``status``
  ``active``/``inactive``; ``email`` may be empty; the employer fields go together and may be
  empty except for ``PU``);
* contributions: ``kpj,period,wage,paid_on`` (``period`` ``YYYY-MM``, ``wage`` whole Rupiah > 0,
  ``paid_on`` ``YYYY-MM-DD`` not before the period's first day; the KPJ must be in the database
  or in the members file of the same import);
* rates: ``year,rate_percent`` (year 1990..2100, ``0 <= rate_percent < 100``, at most 4
  decimals).

Every row of every file is validated first; any bad row raises :class:`CsvImportError` naming
the file, line and field, and nothing is imported. Otherwise everything is written in one
transaction with bulk ``INSERT ... ON CONFLICT DO UPDATE`` (SQLite and PostgreSQL), only for
rows that are new or changed, so importing the same files again changes nothing and reports
them ``unchanged``. The contribution parts come from :func:`balance.rules.jht_parts` with the
member's segment. Every contribution inserted or changed also gets a ``contribution_change``
row, in write order and in the same transaction: the change feed of
:func:`balance.queries.contribution_changes`. Error messages never echo a NIK, phone number,
email address or name.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from balance.rules import jht_parts
from flows.identifiers import Problem, parse_email, parse_nik, parse_phone
from storage.models import (
    NPP_LENGTH,
    Contribution,
    ContributionChange,
    DevelopmentRate,
    Employer,
    Member,
    Segment,
)

_T = TypeVar("_T")

MEMBER_COLUMNS = ("kpj", "nik", "name", "birth_date", "phone", "email", "segment", "status",
                  "employer_npp", "employer_name")
CONTRIBUTION_COLUMNS = ("kpj", "period", "wage", "paid_on")
RATE_COLUMNS = ("year", "rate_percent")

MAX_REPORTED_ERRORS = 20
WRITE_CHUNK = 5000  # rows per executemany
LOOKUP_CHUNK = 500  # keys per IN (...) query
MAX_WAGE = 2**31 - 1  # the column is a 32-bit integer
MIN_RATE_YEAR, MAX_RATE_YEAR = 1990, 2100
MAX_NAME = 128
RATE_DECIMALS = 4

_KPJ = re.compile(r"[0-9]{11}")
_NPP = re.compile(rf"[0-9]{{{NPP_LENGTH}}}")
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WHOLE = re.compile(r"[0-9]+")
_YEAR = re.compile(r"[0-9]{4}")
_SEGMENTS = frozenset(segment.value for segment in Segment)
_STATUSES = frozenset({"active", "inactive"})

_PROBLEM_TEXT = {
    Problem.EMPTY: "is empty",
    Problem.NOT_DIGITS: "must contain digits only",
    Problem.TOO_SHORT: "is too short",
    Problem.TOO_LONG: "is too long",
    Problem.BAD_PROVINCE: "does not start with a known province code",
    Problem.BAD_BIRTH_DATE_IN_NIK: "does not encode a possible birth date",
    Problem.BAD_SERIAL: "has the impossible serial number 0000",
    Problem.NOT_MOBILE: "is not an Indonesian mobile number",
    Problem.BAD_EMAIL: "is not a valid email address",
}


# --- Reports and errors --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RowError:
    """One bad row (or file): ``line`` is 1-based (1 is the header), ``None`` for the file."""

    file: str
    line: int | None
    field: str | None
    problem: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        return f'{where}, field "{self.field}": {self.problem}' if self.field else (
            f"{where}: {self.problem}")


class CsvImportError(Exception):
    """An import refused because of bad rows; nothing was imported. ``errors`` holds the first
    :data:`MAX_REPORTED_ERRORS` problems, ``more`` counts the others."""

    def __init__(self, errors: Sequence[RowError], more: int = 0) -> None:
        self.errors = tuple(errors)
        self.more = more
        lines = [str(error) for error in self.errors]
        if more:
            lines.append(f"... and {more} more")
        super().__init__("import refused, nothing was imported:\n" + "\n".join(lines))


@dataclass(frozen=True, slots=True)
class FileReport:
    """What an import did to one table: rows new, changed, and already as in the file."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        """Every row of the file (distinct employers, for the employers)."""
        return self.inserted + self.updated + self.unchanged


@dataclass(frozen=True, slots=True)
class ImportReport:
    """Per table what the import did; ``None`` when that file was not given. ``employers`` are
    the distinct employers of the members file."""

    members: FileReport | None = None
    employers: FileReport | None = None
    contributions: FileReport | None = None
    rates: FileReport | None = None

    def lines(self) -> list[str]:
        """One human-readable line per table touched."""
        parts = (("members", self.members), ("employers", self.employers),
                 ("contributions", self.contributions), ("rates", self.rates))
        return [f"{name}: {report.inserted} inserted, {report.updated} updated, "
                f"{report.unchanged} unchanged" for name, report in parts if report is not None]


class _Problems:
    """Collects row errors, keeping the first few."""

    def __init__(self) -> None:
        self.errors: list[RowError] = []
        self.more = 0

    def add(self, file: str, line: int | None, field_name: str | None, problem: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(file, line, field_name, problem))
        else:
            self.more += 1

    @property
    def count(self) -> int:
        return len(self.errors) + self.more

    def raise_if_any(self) -> None:
        if self.errors:
            raise CsvImportError(self.errors, self.more)


# --- Dialect-specific bulk statements ------------------------------------------------------------

def _table(model: type[SQLModel] | sa.Table) -> sa.Table:
    if isinstance(model, sa.Table):
        return model
    return SQLModel.metadata.tables[str(getattr(model, "__tablename__"))]  # noqa: B009


def insert_or_ignore(dialect: str, model: type[SQLModel] | sa.Table) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for executemany on ``"sqlite"`` or
    ``"postgresql"``."""
    table = _table(model)
    if dialect == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    raise ValueError(f"unsupported database dialect: {dialect}")


def upsert(dialect: str, model: type[SQLModel] | sa.Table) -> sa.Insert:
    """``INSERT ... ON CONFLICT (primary key) DO UPDATE`` of every other column, for
    executemany on ``"sqlite"`` or ``"postgresql"``."""
    table = _table(model)
    keys = [column.name for column in table.primary_key.columns]
    if dialect == "postgresql":
        pg = pg_insert(table)
        return pg.on_conflict_do_update(index_elements=keys, set_={
            c.name: pg.excluded[c.name] for c in table.columns if c.name not in keys})
    if dialect == "sqlite":
        lite = sqlite_insert(table)
        return lite.on_conflict_do_update(index_elements=keys, set_={
            c.name: lite.excluded[c.name] for c in table.columns if c.name not in keys})
    raise ValueError(f"unsupported database dialect: {dialect}")


# --- Reading CSV ---------------------------------------------------------------------------------

def _decode(path: Path, problems: _Problems) -> str | None:
    """The file's text (UTF-8, BOM dropped), or ``None`` after recording why not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.add(str(path), None, None, f"cannot be read ({exc.strerror or exc})")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        problems.add(str(path), line, None, "is not valid UTF-8")
        return None


def _rows(path: Path, columns: Sequence[str],
          problems: _Problems) -> Iterator[tuple[int, list[str]]]:
    """``(line, values in the order of columns)`` for each data row, stripped of whitespace.

    The header may list the columns in any order, case-insensitively; blank lines are skipped.
    """
    file = str(path)
    text = _decode(path, problems)
    if text is None:
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        problems.add(file, 1, None, "is empty: a header row is required")
        return
    except csv.Error as exc:
        problems.add(file, 1, None, f"malformed CSV ({exc})")
        return
    if not _header_ok(file, header, columns, problems):
        return
    positions = [header.index(name) for name in columns]
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.add(file, line, None, f"malformed CSV ({exc})")
            return
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            problems.add(file, line, None,
                         f"has {len(row)} fields, the header has {len(header)}")
            continue
        yield line, [row[position].strip() for position in positions]


def _header_ok(file: str, header: list[str], columns: Sequence[str],
               problems: _Problems) -> bool:
    ok = True
    for name in columns:
        if name not in header:
            problems.add(file, 1, name, "column missing from the header "
                         f"(expected {','.join(columns)})")
            ok = False
    for position, name in enumerate(header):
        if name not in columns:
            problems.add(file, 1, name or f"#{position + 1}", "unknown column")
            ok = False
        elif header.index(name) != position:
            problems.add(file, 1, name, "column appears twice")
            ok = False
    return ok


def _iso_date(text: str) -> date | str:
    """A ``YYYY-MM-DD`` date, or what is wrong with ``text``."""
    if not text:
        return "is empty"
    if not _DATE.fullmatch(text):
        return f'must be a date written YYYY-MM-DD, got "{text[:20]}"'
    try:
        return date.fromisoformat(text)
    except ValueError:
        return f'is not a real date: "{text}"'


# --- Validation ----------------------------------------------------------------------------------

@dataclass
class _Members:
    """Valid rows of a members file, by KPJ, and its employers by NPP."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, str] = field(default_factory=dict)
    employers: dict[str, str] = field(default_factory=dict)


_Bad = Callable[[str, str], None]


def _validate_members(path: Path, problems: _Problems, today: date) -> _Members:
    file = str(path)
    result = _Members()
    first_line: dict[str, int] = {}
    employer_line: dict[str, int] = {}
    for line, values in _rows(path, MEMBER_COLUMNS, problems):
        def bad(field_name: str, problem: str, line: int = line) -> None:
            problems.add(file, line, field_name, problem)

        problems_before = problems.count
        kpj, segment = values[0], values[6].upper()
        if not _KPJ.fullmatch(kpj):
            bad("kpj", "must be exactly 11 digits")
        elif kpj in first_line:
            bad("kpj", f"{kpj} already appears on line {first_line[kpj]}")
        else:
            first_line[kpj] = line
            # Known even if the row is bad, so its contributions get no second error.
            result.segments[kpj] = segment
        row = _member_fields(values, bad, today)
        npp, employer_name = values[8], values[9]
        if _employer_ok(npp, employer_name, segment, bad):
            known = result.employers.setdefault(npp, employer_name)
            employer_line.setdefault(npp, line)
            if known != employer_name:
                bad("employer_name", f'differs from "{known}" given for employer {npp} '
                    f"on line {employer_line[npp]}")
        if row is not None and problems.count == problems_before:
            result.rows[kpj] = row
    return result


def _member_fields(values: Sequence[str], bad: _Bad, today: date) -> dict[str, Any] | None:
    """The member's row as stored, or ``None`` after reporting what is wrong (the KPJ and
    the employer are checked by the caller)."""
    (kpj, nik_text, name, birth_text, phone_text, email_text, segment_text, status_text,
     npp, _employer_name) = values
    segment, status = segment_text.upper(), status_text.lower()
    nik = parse_nik(nik_text)
    if isinstance(nik, Problem):
        bad("nik", _PROBLEM_TEXT.get(nik, "is not a valid NIK"))
    birth = _iso_date(birth_text)
    if isinstance(birth, str):
        bad("birth_date", birth)
    elif birth > today:
        bad("birth_date", "is in the future")
    elif not isinstance(nik, Problem) and not nik.matches_birth_date(birth):
        bad("nik", "does not match birth_date (the NIK encodes DDMMYY, day + 40 for women)")
    if not name or len(name) > MAX_NAME:
        bad("name", "is empty" if not name else f"is longer than {MAX_NAME} characters")
    phone = parse_phone(phone_text)
    if isinstance(phone, Problem):
        bad("phone", _PROBLEM_TEXT.get(phone, "is not a valid phone number"))
    email = parse_email(email_text) if email_text else ""
    if isinstance(email, Problem):
        bad("email", _PROBLEM_TEXT.get(email, "is not a valid email address"))
    if segment not in _SEGMENTS:
        bad("segment", f'must be PU, BPU or PMI, got "{segment_text[:10]}"')
    if status not in _STATUSES:
        bad("status", f'must be active or inactive, got "{status_text[:10]}"')
    if isinstance(nik, Problem) or isinstance(birth, str) or isinstance(phone, Problem) \
            or isinstance(email, Problem):
        return None
    return {"kpj": kpj, "nik": nik.digits, "name": name, "birth_date": birth, "phone": phone,
            "email": email, "segment": segment, "status": status, "employer_npp": npp or None}


def _employer_ok(npp: str, name: str, segment: str, bad: _Bad) -> bool:
    """Whether the row names a valid employer (after reporting what is wrong); both fields
    empty is fine except for PU members."""
    if not npp:
        if name:
            bad("employer_npp", "is required when employer_name is given")
        elif segment == Segment.PU:
            bad("employer_npp", "is required for a PU (wage earner) member")
        return False
    if not _NPP.fullmatch(npp):
        bad("employer_npp", f"must be exactly {NPP_LENGTH} digits")
    elif not name:
        bad("employer_name", "is required when employer_npp is given")
    elif len(name) > MAX_NAME:
        bad("employer_name", f"is longer than {MAX_NAME} characters")
    else:
        return True
    return False


@dataclass
class _Contributions:
    """Valid rows of a contributions file: ``(kpj, period) -> (wage, paid_on)``, and the
    first line of each KPJ (for an unknown KPJ's error)."""

    rows: dict[tuple[str, str], tuple[int, date]] = field(default_factory=dict)
    kpj_lines: dict[str, list[int]] = field(default_factory=dict)


def _validate_contributions(path: Path, problems: _Problems) -> _Contributions:
    file = str(path)
    result = _Contributions()
    lines: dict[tuple[str, str], int] = {}
    dates: dict[str, date | str] = {}  # a file repeats few distinct paid dates
    for line, (kpj, period, wage_text, paid_text) in _rows(path, CONTRIBUTION_COLUMNS,
                                                            problems):
        ok = True
        if not _KPJ.fullmatch(kpj):
            problems.add(file, line, "kpj", "must be exactly 11 digits")
            ok = False
        if not _PERIOD.fullmatch(period):
            problems.add(file, line, "period", f'must be YYYY-MM, got "{period[:20]}"')
            ok = False
        wage = int(wage_text) if _WHOLE.fullmatch(wage_text) else -1
        if wage <= 0 or wage > MAX_WAGE:
            problem = ("must be a whole number of Rupiah greater than 0 (digits only), "
                       f'got "{wage_text[:20]}"') if wage <= 0 else "is too large"
            problems.add(file, line, "wage", problem)
            ok = False
        paid = dates.get(paid_text)
        if paid is None:
            paid = dates[paid_text] = _iso_date(paid_text)
        if isinstance(paid, str):
            problems.add(file, line, "paid_on", paid)
            ok = False
        elif ok and paid_text < period + "-01":
            problems.add(file, line, "paid_on",
                         f"{paid_text} is before the first day of period {period}")
            ok = False
        if not ok or isinstance(paid, str):
            continue
        key = (kpj, period)
        if key in lines:
            problems.add(file, line, "period",
                         f"{period} of this KPJ already appears on line {lines[key]}")
            continue
        lines[key] = line
        result.rows[key] = (wage, paid)
        result.kpj_lines.setdefault(kpj, []).append(line)
    return result


def _validate_rates(path: Path, problems: _Problems) -> dict[int, Decimal]:
    file = str(path)
    rates: dict[int, Decimal] = {}
    lines: dict[int, int] = {}
    for line, (year_text, rate_text) in _rows(path, RATE_COLUMNS, problems):
        year = int(year_text) if _YEAR.fullmatch(year_text) else 0
        if not MIN_RATE_YEAR <= year <= MAX_RATE_YEAR:
            problems.add(file, line, "year", f"must be a year from {MIN_RATE_YEAR} to "
                         f'{MAX_RATE_YEAR}, got "{year_text[:10]}"')
        elif year in lines:
            problems.add(file, line, "year", f"{year} already appears on line {lines[year]}")
            year = 0
        rate = _rate(rate_text)
        if isinstance(rate, str):
            problems.add(file, line, "rate_percent", rate)
        elif year:
            lines[year] = line
            rates[year] = rate
    return rates


def _rate(text: str) -> Decimal | str:
    """A percentage ``0 <= r < 100`` with at most 4 decimals, or what is wrong."""
    try:
        rate = Decimal(text)
    except InvalidOperation:
        rate = Decimal("NaN")
    exponent = rate.as_tuple().exponent
    if not text or not rate.is_finite() or not isinstance(exponent, int):
        return f'must be a decimal number of percent such as 7.19, got "{text[:20]}"'
    if rate < 0:
        return "must not be negative"
    if rate >= 100:
        return "must be below 100 (it is a percentage)"
    if exponent < -RATE_DECIMALS:
        return f"has more than {RATE_DECIMALS} decimals"
    return rate


@dataclass
class _Validated:
    members: _Members | None
    contributions: _Contributions | None
    rates: dict[int, Decimal] | None


def _validate(members: Path | None, contributions: Path | None, rates: Path | None,
              problems: _Problems) -> _Validated:
    """Everything that can be checked without the database."""
    today = date.today()
    return _Validated(
        members=_validate_members(members, problems, today) if members else None,
        contributions=_validate_contributions(contributions, problems) if contributions
        else None,
        rates=_validate_rates(rates, problems) if rates else None)


# --- Writing -------------------------------------------------------------------------------------

def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def _existing(conn: AsyncConnection, table: sa.Table, filter_column: str,
                    values: Iterable[Any]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Rows of ``table`` whose ``filter_column`` is among ``values``: primary key -> row."""
    keys = [column.name for column in table.primary_key.columns]
    found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for chunk in _chunks(sorted(set(values)), LOOKUP_CHUNK):
        result = await conn.execute(sa.select(table).where(table.c[filter_column].in_(chunk)))
        for row in result.mappings():
            found[tuple(row[key] for key in keys)] = tuple(row.values())
    return found


async def _sync(conn: AsyncConnection, model: type[SQLModel],
                rows: Mapping[tuple[Any, ...], Mapping[str, Any]]
                ) -> tuple[FileReport, list[Mapping[str, Any]]]:
    """Upsert the ``rows`` (by primary key) that are new or differ from the table's; returns
    the report and the rows written, in write order."""
    table = _table(model)
    columns = [column.name for column in table.columns]
    first_key = table.primary_key.columns.values()[0].name
    existing = await _existing(conn, table, first_key, (key[0] for key in rows))
    inserted = updated = 0
    changed: list[Mapping[str, Any]] = []
    for key, row in rows.items():
        current = existing.get(key)
        if current is None:
            inserted += 1
        elif current != tuple(row[column] for column in columns):
            updated += 1
        else:
            continue
        changed.append(row)
    statement = upsert(conn.dialect.name, table)
    for chunk in _chunks(changed, WRITE_CHUNK):
        await conn.execute(statement, list(chunk))
    return FileReport(inserted, updated, len(rows) - inserted - updated), changed


async def lock_change_feed(conn: AsyncConnection) -> None:
    """Take PostgreSQL's ``EXCLUSIVE`` lock on ``contribution_change`` until the transaction
    ends (nothing on SQLite, whose writers are serialised by the database lock anyway).

    ``seq`` comes from a sequence, and sequence values are handed out when a row is inserted,
    not when its transaction commits: two writers could commit seq 7 before seq 6, and a
    reader that saw 7 would move its cursor past 6, which appears later and is never read.
    The lock conflicts with every other writer's (this one's, and the ``ROW EXCLUSIVE`` of any
    ``INSERT``) but not with readers, so writers of the feed take turns, each from its first
    sequence value to its commit, and sequence numbers become visible in commit order. Every
    writer of ``contribution_change`` takes it before its first write.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("LOCK TABLE contribution_change IN EXCLUSIVE MODE"))


async def record_changes(conn: AsyncConnection, keys: Iterable[tuple[str, str]],
                         at: datetime) -> int:
    """Append one ``contribution_change`` row per ``(kpj, period)``, in the order given
    (after :func:`lock_change_feed` in the same transaction); returns how many."""
    rows = [{"kpj": kpj, "period": period, "recorded_at": at} for kpj, period in keys]
    table = _table(ContributionChange)
    for chunk in _chunks(rows, WRITE_CHUNK):
        await conn.execute(sa.insert(table), list(chunk))
    return len(rows)


async def _sync_contributions(conn: AsyncConnection,
                              rows: Mapping[tuple[Any, ...], Mapping[str, Any]]) -> FileReport:
    """:func:`_sync` of the contributions, recording each one written in the change feed."""
    await lock_change_feed(conn)
    report, written = await _sync(conn, Contribution, rows)
    await record_changes(conn, ((row["kpj"], row["period"]) for row in written),
                         datetime.now(UTC))
    return report


async def _segments(conn: AsyncConnection, kpjs: Iterable[str]) -> dict[str, str]:
    """The segment of each of ``kpjs`` that is in the ``member`` table."""
    member = _table(Member)
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(kpjs)), LOOKUP_CHUNK):
        result = await conn.execute(sa.select(member.c.kpj, member.c.segment)
                                    .where(member.c.kpj.in_(chunk)))
        found.update((kpj, segment) for kpj, segment in result)
    return found


def _contribution_rows(contributions: _Contributions, segments: Mapping[str, str]
                       ) -> dict[tuple[Any, ...], dict[str, Any]]:
    cache: dict[tuple[int, str], tuple[int, int]] = {}
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for (kpj, period), (wage, paid_on) in contributions.rows.items():
        segment = segments[kpj]
        parts = cache.get((wage, segment))
        if parts is None:
            parts = cache[(wage, segment)] = jht_parts(wage, segment)
        rows[(kpj, period)] = {"kpj": kpj, "period": period, "wage": wage,
                               "employer_part": parts[0], "employee_part": parts[1],
                               "paid_on": paid_on}
    return rows


async def import_csv(engine: AsyncEngine, *, members: Path | None = None,
                     contributions: Path | None = None,
                     rates: Path | None = None) -> ImportReport:
    """Validate every row of the given files, then import them all in one transaction.

    Raises :class:`CsvImportError` (nothing imported) when any row is bad or a contribution's
    KPJ is neither in the database nor in ``members``. Idempotent: rows already as in the
    files are reported ``unchanged`` and not written. Each contribution written (inserted or
    changed) is recorded in the change feed (:func:`lock_change_feed`).
    """
    problems = _Problems()
    valid = await asyncio.to_thread(_validate, members, contributions, rates, problems)
    async with engine.begin() as conn:
        segments: dict[str, str] = dict(valid.members.segments) if valid.members else {}
        if valid.contributions is not None and contributions is not None:
            kpj_lines = valid.contributions.kpj_lines
            segments.update(await _segments(conn, kpj_lines.keys() - segments.keys()))
            unknown = sorted((line, kpj) for kpj, lines in kpj_lines.items()
                             if kpj not in segments for line in lines)
            for line, kpj in unknown:
                problems.add(str(contributions), line, "kpj",
                             f"{kpj} is neither in the database nor in the members file")
        problems.raise_if_any()
        employer_report = member_report = rate_report = contribution_report = None
        if valid.members is not None:
            employer_report, _ = await _sync(conn, Employer, {
                (npp,): {"npp": npp, "name": name}
                for npp, name in valid.members.employers.items()})
            member_report, _ = await _sync(conn, Member, {
                (kpj,): row for kpj, row in valid.members.rows.items()})
        if valid.rates is not None:
            rate_report, _ = await _sync(conn, DevelopmentRate, {
                (year,): {"year": year, "rate_percent": rate}
                for year, rate in valid.rates.items()})
        if valid.contributions is not None:
            contribution_report = await _sync_contributions(
                conn, _contribution_rows(valid.contributions, segments))
    return ImportReport(members=member_report, employers=employer_report,
                        contributions=contribution_report, rates=rate_report)
