"""CSV import of members, contributions and rates, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from balance.demo import DEFAULT_RATES
from balance.importer import MAX_REPORTED_ERRORS, CsvImportError, FileReport, import_csv
from balance.rules import jht_parts
from balance.service import ReferenceBalanceService, seed_default_rates
from storage.db import create_engine, migrate

MEMBERS = (
    "kpj,nik,name,birth_date,phone,email,segment,status,employer_npp,employer_name\n"
    "11111111111,3171014501900001,Siti Impor,1990-01-05,0812-3456-7890,Siti@Example.COM,PU,"
    "active,12345678,PT Impor Jaya\n"
    "22222222222,3578031212920002,Agus Impor,1992-12-12,+62 813 9876 5432,,BPU,active,,\n"
    "33333333333,3171014501900001,Siti Impor,1990-01-05,081234567890,,pu,INACTIVE,87654321,"
    '"CV Lama, Tbk"\n')
SITI_PERIODS = ["2019-07", "2019-08", "2019-09", "2019-10", "2019-11", "2019-12",
                "2020-01", "2020-02", "2020-03"]
CONTRIBUTIONS = "kpj,period,wage,paid_on\n" + "".join(
    f"11111111111,{period},1000000,{period}-28\n" for period in SITI_PERIODS) + (
    "22222222222,2020-01,3000000,2020-02-15\n"
    "33333333333,2015-01,2500000,2015-01-01\n")
RATES = "year,rate_percent\n2019,10\n2020,5.0\n"
TABLES = ("employer", "member", "contribution", "development_rate")
TABLE = SQLModel.metadata.tables


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated SQLite engine, for the validation cases (which do not depend on the
    backend)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    await migrate(engine)
    yield engine
    await engine.dispose()


def write(directory: Path, name: str, text: str, *, bom: bool = False,
          crlf: bool = False) -> Path:
    """``text`` as a UTF-8 file (optionally with BOM and Windows line endings)."""
    path = directory / name
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def files(directory: Path, **texts: str) -> dict[str, Path]:
    """The default test files, with any of ``members``/``contributions``/``rates`` replaced."""
    defaults = {"members": MEMBERS, "contributions": CONTRIBUTIONS, "rates": RATES}
    defaults.update(texts)
    return {kind: write(directory, f"{kind}.csv", text) for kind, text in defaults.items()}


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the balance tables, sorted."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in TABLES:
            rows = (await conn.execute(sa.text(f"SELECT * FROM {table}"))).all()
            result[table] = sorted(tuple(str(value) for value in row) for row in rows)
    return result


async def test_happy_import(engine: AsyncEngine, tmp_path: Path) -> None:
    report = await import_csv(engine, **files(tmp_path))
    assert report.members == FileReport(inserted=3)
    assert report.employers == FileReport(inserted=2)
    assert report.contributions == FileReport(inserted=11)
    assert report.rates == FileReport(inserted=2)
    async with engine.connect() as conn:
        members = {row.kpj: row for row in await conn.execute(sa.select(TABLE["member"]))}
        employers = dict((await conn.execute(sa.select(TABLE["employer"]))).all())
        parts = {(row.kpj, row.period): (row.wage, row.employer_part, row.employee_part,
                                         row.paid_on)
                 for row in await conn.execute(sa.select(TABLE["contribution"]))}
    siti, agus, old = members["11111111111"], members["22222222222"], members["33333333333"]
    assert (siti.phone, siti.email, siti.employer_npp, siti.birth_date) == (
        "+6281234567890", "Siti@example.com", "12345678", date(1990, 1, 5))
    assert (agus.phone, agus.email, agus.employer_npp, agus.segment) == (
        "+6281398765432", "", None, "BPU")
    assert (old.segment, old.status, old.nik) == ("PU", "inactive", siti.nik)
    assert employers == {"12345678": "PT Impor Jaya", "87654321": "CV Lama, Tbk"}
    assert parts[("11111111111", "2019-07")] == (1_000_000, *jht_parts(1_000_000, "PU"),
                                                 date(2019, 7, 28))
    assert parts[("11111111111", "2019-07")][1:3] == (37_000, 20_000)
    assert parts[("22222222222", "2020-01")][1:3] == (0, 60_000)
    assert parts[("33333333333", "2015-01")][1:3] == (92_500, 50_000)


async def test_second_import_changes_nothing(engine: AsyncEngine, tmp_path: Path) -> None:
    paths = files(tmp_path)
    await import_csv(engine, **paths)
    before = await snapshot(engine)
    report = await import_csv(engine, **paths)
    assert report.members == FileReport(unchanged=3)
    assert report.employers == FileReport(unchanged=2)
    assert report.contributions == FileReport(unchanged=11)
    assert report.rates == FileReport(unchanged=2)
    assert await snapshot(engine) == before


async def test_changed_rows_are_updated(engine: AsyncEngine, tmp_path: Path) -> None:
    await import_csv(engine, **files(tmp_path))
    (tmp_path / "changed").mkdir()
    changed = files(tmp_path / "changed",
                    members=MEMBERS.replace("PT Impor Jaya", "PT Impor Jaya Baru")
                    .replace("BPU,active", "BPU,inactive"),
                    contributions=CONTRIBUTIONS.replace("3000000", "3500000"),
                    rates=RATES + "2021,4.25\n")
    report = await import_csv(engine, **changed)
    assert report.members == FileReport(updated=1, unchanged=2)
    assert report.employers == FileReport(updated=1, unchanged=1)
    assert report.contributions == FileReport(updated=1, unchanged=10)
    assert report.rates == FileReport(inserted=1, unchanged=2)
    async with engine.connect() as conn:
        row = (await conn.execute(sa.text(
            "SELECT wage, employee_part FROM contribution WHERE kpj = '22222222222'"))).one()
    assert tuple(row) == (3_500_000, 70_000)


async def test_imported_member_balance_matches_the_rule_by_hand(
        engine: AsyncEngine, tmp_path: Path) -> None:
    await seed_default_rates(engine)
    await import_csv(engine, **files(tmp_path))
    balance = await ReferenceBalanceService(engine).jht_balance("11111111111",
                                                                date(2022, 6, 30))
    assert balance is not None
    # Each month 37,000 + 20,000 = 57,000. 2019 (10%): months 7..12 weigh 5+4+3+2+1+0 = 15
    # twelfths: 0.10 * 57,000 * 15/12 = 7,125. 2020 (5%): opening 6 * 57,000 + 7,125 = 349,125,
    # months 1..3 weigh 11+10+9 = 30 twelfths = 142,500: 0.05 * 491,625 = 24,581.25 -> 24,581.
    # 2021: no rate configured, so pending.
    assert (balance.employer_part, balance.employee_part) == (333_000, 180_000)
    assert balance.development == 7_125 + 24_581
    assert balance.total == 333_000 + 180_000 + 31_706
    assert (balance.last_period, balance.pending_years) == ("2020-03", (2021,))


async def test_rates_override_the_defaults(engine: AsyncEngine, tmp_path: Path) -> None:
    assert await seed_default_rates(engine) == len(DEFAULT_RATES)
    report = await import_csv(engine, rates=write(tmp_path, "rates.csv",
                                                  "year,rate_percent\n2020,5.59\n2016,7.19\n"
                                                  "2024,6.1234\n"))
    assert report.rates == FileReport(inserted=1, updated=1, unchanged=1)
    assert (report.members, report.contributions) == (None, None)
    assert await seed_default_rates(engine) == 0
    async with engine.connect() as conn:
        rates = {year: Decimal(str(rate)).quantize(Decimal("0.0001")) for year, rate in
                 await conn.execute(sa.text("SELECT year, rate_percent FROM development_rate"))}
    assert rates[2020] == Decimal("5.5900")
    assert rates[2024] == Decimal("6.1234")
    assert rates[2017] == Decimal("7.8200")


async def test_contributions_of_unknown_kpj_are_refused(engine: AsyncEngine,
                                                        tmp_path: Path) -> None:
    contributions = write(tmp_path, "c.csv", CONTRIBUTIONS)
    with pytest.raises(CsvImportError) as raised:
        await import_csv(engine, contributions=contributions)
    message = str(raised.value)
    assert str(contributions) in message
    assert 'line 2, field "kpj"' in message
    assert "11111111111 is neither in the database nor in the members file" in message
    assert await snapshot(engine) == dict.fromkeys(TABLES, [])
    # Once the members are in the database, the same file imports on its own.
    await import_csv(engine, members=write(tmp_path, "m.csv", MEMBERS))
    report = await import_csv(engine, contributions=contributions)
    assert report.contributions == FileReport(inserted=11)


async def test_bom_and_windows_line_endings(engine: AsyncEngine, tmp_path: Path) -> None:
    paths = {kind: write(tmp_path, f"{kind}.csv", text, bom=True, crlf=True)
             for kind, text in (("members", MEMBERS), ("contributions", CONTRIBUTIONS),
                                ("rates", RATES))}
    report = await import_csv(engine, **paths)
    assert report.members == FileReport(inserted=3)
    assert report.contributions == FileReport(inserted=11)
    plain = tmp_path / "plain"
    plain.mkdir()
    again = await import_csv(engine, **files(plain))
    assert again.members == FileReport(unchanged=3)
    assert again.contributions == FileReport(unchanged=11)


async def test_empty_optional_fields_and_blank_lines(engine: AsyncEngine,
                                                     tmp_path: Path) -> None:
    members = ("KPJ, nik ,name,birth_date,phone,email,segment,status,employer_npp,employer_name\n"
               "\n"
               "44444444444,3578031212920002,Pekerja Migran,1992-12-12,0813 9876 5432,,PMI,"
               "active,,\n"
               "  55555555555 ,3578031212920003, Agus Dua ,1992-12-12,08139876543, ,BPU,"
               "active, , \n"
               "\n")
    report = await import_csv(engine, members=write(tmp_path, "m.csv", members))
    assert report.members == FileReport(inserted=2)
    assert report.employers == FileReport()
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT kpj, name, email, employer_npp FROM member ORDER BY kpj"))).all()
    assert [tuple(row) for row in rows] == [("44444444444", "Pekerja Migran", "", None),
                                            ("55555555555", "Agus Dua", "", None)]


MEMBER_LINE_2 = MEMBERS.splitlines()[1]
CONTRIBUTION_LINE_2 = CONTRIBUTIONS.splitlines()[1]

BAD_ROWS = [
    # (file, line number, replacement for that line, field, fragment of the message)
    ("members", 2, MEMBER_LINE_2.replace("11111111111", "1111111111"), "kpj", "11 digits"),
    ("members", 2, MEMBER_LINE_2.replace("1990-01-05", "1990-01-06"), "nik", "does not match"),
    ("members", 2, MEMBER_LINE_2.replace("3171014501900001", "9971014501900001"), "nik",
     "province"),
    ("members", 2, MEMBER_LINE_2.replace("1990-01-05", "05-01-1990"), "birth_date",
     "YYYY-MM-DD"),
    ("members", 2, MEMBER_LINE_2.replace("1990-01-05", "1990-02-30"), "birth_date",
     "not a real date"),
    ("members", 2, MEMBER_LINE_2.replace("0812-3456-7890", "021-5551234"), "phone",
     "not an Indonesian mobile number"),
    ("members", 2, MEMBER_LINE_2.replace("Siti@Example.COM", "siti-at-example"), "email",
     "not a valid email"),
    ("members", 2, MEMBER_LINE_2.replace(",PU,", ",XYZ,"), "segment", "PU, BPU or PMI"),
    ("members", 2, MEMBER_LINE_2.replace(",active,", ",retired,"), "status",
     "active or inactive"),
    ("members", 2, MEMBER_LINE_2.replace("12345678,PT Impor Jaya", ","), "employer_npp",
     "required for a PU"),
    ("members", 2, MEMBER_LINE_2.replace("12345678,", "123,"), "employer_npp", "8 digits"),
    ("members", 2, MEMBER_LINE_2.replace("PT Impor Jaya", ""), "employer_name", "required"),
    ("members", 2, MEMBER_LINE_2.replace("Siti Impor", ""), "name", "empty"),
    ("members", 4, MEMBERS.splitlines()[3].replace("33333333333", "11111111111"), "kpj",
     "already appears on line 2"),
    ("members", 4, MEMBERS.splitlines()[3].replace("87654321", "12345678"), "employer_name",
     "differs"),
    ("contributions", 2, CONTRIBUTION_LINE_2.replace("2019-07,", "2019-13,"), "period",
     "YYYY-MM"),
    ("contributions", 2, CONTRIBUTION_LINE_2.replace("1000000", "0"), "wage", "greater than 0"),
    ("contributions", 2, CONTRIBUTION_LINE_2.replace("1000000", "1.000.000"), "wage",
     "whole number"),
    ("contributions", 2, CONTRIBUTION_LINE_2.replace("1000000", "-5"), "wage", "whole number"),
    ("contributions", 2, CONTRIBUTION_LINE_2.replace("2019-07-28", "2019-06-30"), "paid_on",
     "before the first day"),
    ("contributions", 2, CONTRIBUTION_LINE_2.replace("2019-07-28", "2019-07-32"), "paid_on",
     "not a real date"),
    ("contributions", 3, CONTRIBUTION_LINE_2, "period", "already appears on line 2"),
    ("contributions", 2, CONTRIBUTION_LINE_2.replace("11111111111", "99999999999"), "kpj",
     "neither in the database nor in the members file"),
    ("rates", 2, "1989,7", "year", "from 1990 to 2100"),
    ("rates", 2, "2019,100", "rate_percent", "below 100"),
    ("rates", 2, "2019,-1", "rate_percent", "negative"),
    ("rates", 2, "2019,7.12345", "rate_percent", "more than 4 decimals"),
    ("rates", 2, "2019,7;19", "rate_percent", "decimal number"),
    ("rates", 3, "2019,5", "year", "already appears on line 2"),
    ("rates", 1, "year,rate", "rate_percent", "column missing"),
    ("rates", 1, "year,rate_percent,note", "note", "unknown column"),
]


@pytest.mark.parametrize(("kind", "line", "replacement", "field", "fragment"), BAD_ROWS,
                         ids=[f"{row[0]}-{row[3]}-{row[4]}" for row in BAD_ROWS])
async def test_a_bad_row_names_file_line_and_field_and_imports_nothing(
        sqlite_engine: AsyncEngine, tmp_path: Path, *, kind: str, line: int,
        replacement: str, field: str, fragment: str) -> None:
    first = tmp_path / "first"
    first.mkdir()
    await import_csv(sqlite_engine, **files(first, rates="year,rate_percent\n2019,6\n"))
    before = await snapshot(sqlite_engine)
    texts = {"members": MEMBERS, "contributions": CONTRIBUTIONS, "rates": RATES}
    lines = texts[kind].splitlines()
    lines[line - 1] = replacement
    # Other rows of the same files change too: none of that may reach the database.
    texts = {"members": MEMBERS.replace("Agus Impor", "Agus Berubah"),
             "contributions": CONTRIBUTIONS.replace("3000000", "3100000"),
             "rates": RATES, kind: "\n".join(lines) + "\n"}
    paths = files(tmp_path, **texts)
    with pytest.raises(CsvImportError) as raised:
        await import_csv(sqlite_engine, **paths)
    message = str(raised.value)
    assert f"{paths[kind]}, line {line}, field \"{field}\": " in message
    assert fragment in message
    assert "nothing was imported" in message
    assert "3171014501900001" not in message and "081234567890" not in message
    assert await snapshot(sqlite_engine) == before


async def test_bad_rows_are_refused_on_postgresql_too(engine: AsyncEngine,
                                                      tmp_path: Path) -> None:
    members = MEMBERS.replace(",active,", ",retired,", 1)
    with pytest.raises(CsvImportError, match=r'line 2, field "status"'):
        await import_csv(engine, **files(tmp_path, members=members))
    assert await snapshot(engine) == dict.fromkeys(TABLES, [])


@pytest.mark.parametrize(("content", "line", "fragment"), [
    ("kpj,period,wage,paid_on\n11111111111,2019-07,1000000\n", 2, "has 3 fields"),
    ("", 1, "is empty"),
    ("kpj,period,wage,paid_on\n11111111111,2019-07,1000000,2019-08-10\n"
     "11111111111,2019-08,\xe9,2019-09-10\n", 3, "not valid UTF-8"),
])
async def test_malformed_files(sqlite_engine: AsyncEngine, tmp_path: Path, content: str,
                               line: int, fragment: str) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(CsvImportError) as raised:
        await import_csv(sqlite_engine, members=write(tmp_path, "m.csv", MEMBERS),
                         contributions=path)
    assert f"{path}, line {line}: " in str(raised.value)
    assert fragment in str(raised.value)
    assert await snapshot(sqlite_engine) == dict.fromkeys(TABLES, [])


async def test_missing_file(sqlite_engine: AsyncEngine, tmp_path: Path) -> None:
    with pytest.raises(CsvImportError, match="cannot be read"):
        await import_csv(sqlite_engine, rates=tmp_path / "nope.csv")


async def test_many_bad_rows_are_summarised(sqlite_engine: AsyncEngine, tmp_path: Path) -> None:
    rows = "".join(f"11111111111,2019-{month:02d},0,2019-12-10\n" for month in range(1, 13))
    bad = "kpj,period,wage,paid_on\n" + rows * 3
    with pytest.raises(CsvImportError) as raised:
        await import_csv(sqlite_engine, members=write(tmp_path, "m.csv", MEMBERS),
                         contributions=write(tmp_path, "c.csv", bad))
    assert len(raised.value.errors) == MAX_REPORTED_ERRORS
    assert raised.value.more > 0
    assert f"... and {raised.value.more} more" in str(raised.value)
