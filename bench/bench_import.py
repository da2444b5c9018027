"""CSV import throughput on SQLite (and PostgreSQL with ``--postgres URL``).

    uv run python bench/bench_import.py [--members 1000] [--months 100] [--postgres URL]

Generates ``--members`` members (PU, BPU and PMI, 50 employers) with ``--months`` monthly
contributions each (100,000 rows by default) into temporary CSV files, imports them into a fresh
SQLite file, then imports them again (idempotent: everything unchanged). Prints seconds and
contribution rows per second for both imports; the issue's target is the first import under
30 s on SQLite. With ``--postgres URL`` (an empty database, migrated here) the same on
PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from balance.importer import ImportReport, import_csv  # noqa: E402
from storage.db import create_engine, migrate  # noqa: E402

TARGET_SECONDS = 30.0


def write_csvs(directory: Path, members: int, months: int, seed: int = 7) -> tuple[Path, Path]:
    """A members file and a contributions file of ``members * months`` rows."""
    rng = random.Random(seed)
    members_path, contributions_path = directory / "members.csv", directory / "contributions.csv"
    kpjs: list[tuple[str, int]] = []
    with members_path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["kpj", "nik", "name", "birth_date", "phone", "email", "segment",
                         "status", "employer_npp", "employer_name"])
        for i in range(members):
            born = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 40))
            female = rng.random() < 0.5
            day = born.day + 40 if female else born.day
            nik = f"317101{day:02d}{born.month:02d}{born.year % 100:02d}{i % 9999 + 1:04d}"
            kpj = f"9{i:010d}"
            segment = rng.choices(["PU", "BPU", "PMI"], weights=[8, 1, 1])[0]
            npp, employer = ((f"{10_000_000 + i % 50}", f"PT Contoh {i % 50}")
                             if segment == "PU" else ("", ""))
            writer.writerow([kpj, nik, f"Peserta {i}", born.isoformat(),
                             f"0812{rng.randrange(10**8):08d}",
                             f"peserta{i}@example.com" if i % 3 else "", segment,
                             "active" if i % 10 else "inactive", npp, employer])
            kpjs.append((kpj, rng.randrange(2_000, 20_000) * 1000))
    with contributions_path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["kpj", "period", "wage", "paid_on"])
        for kpj, wage in kpjs:
            year, month = 2026 - months // 12 - 1, 1
            for _ in range(months):
                paid = date(year + 1, 1, 10) if month == 12 else date(year, month + 1, 10)
                writer.writerow([kpj, f"{year:04d}-{month:02d}", wage, paid.isoformat()])
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return members_path, contributions_path


async def run(url: str, label: str, members: Path, contributions: Path, rows: int) -> bool:
    """Migrate ``url``, import twice, print the figures; whether the first import met the
    target (only meaningful for SQLite)."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        ok = True
        for attempt in ("first import", "second import (idempotent)"):
            started = time.perf_counter()
            report = await import_csv(engine, members=members, contributions=contributions)
            seconds = time.perf_counter() - started
            print(f"{label} {attempt}: {seconds:.2f} s, {rows / seconds:,.0f} contribution rows/s")
            print("    " + "; ".join(report.lines()))
            if attempt == "first import":
                ok = seconds < TARGET_SECONDS and _all(report, "inserted", rows)
            elif not _all(report, "unchanged", rows):
                print("    NOT IDEMPOTENT")
                ok = False
        return ok
    finally:
        await engine.dispose()


def _all(report: ImportReport, kind: str, rows: int) -> bool:
    return report.contributions is not None and getattr(report.contributions, kind) == rows


async def main() -> int:
    """Parse the arguments, generate the files, run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--months", type=int, default=100)
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database")
    args = parser.parse_args()
    rows = args.members * args.months
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        members, contributions = write_csvs(directory, args.members, args.months)
        print(f"generated {args.members:,} members and {rows:,} contribution rows "
              f"in {time.perf_counter() - started:.2f} s")
        ok = await run(f"sqlite:///{directory / 'bench.db'}", "SQLite", members, contributions,
                       rows)
        print(f"SQLite target (< {TARGET_SECONDS:.0f} s for the first import): "
              f"{'met' if ok else 'MISSED'}")
        if args.postgres:
            await run(args.postgres, "PostgreSQL", members, contributions, rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
