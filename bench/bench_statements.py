"""Generation time and memory of a 10-year contribution statement (PDF) and a balance chart.

    uv run python bench/bench_statements.py [--runs 50]

Issues Siti's 10-year statement (120 months, 3 pages: rendered and sealed, as the bot does) and
renders an 11-year chart with the projection to age 56, ``--runs`` times each after a first run
(which pays once per process for the fonts cut to size, matplotlib's import and font cache and
the catalogs; its time is printed: it is what ``PooledDocumentMaker.warm`` spares the first
member). Prints the median, p99 and minimum of wall time and the median and p99 of CPU time (on
a busy machine the minimum and the CPU time are the fairer figures; the load average is printed
first), the peak Python memory of one run (tracemalloc), the process's peak RSS and the PDF and
PNG sizes, and the time to verify a statement (its code, and its seal against the pages as they
are: nothing is rendered again). The issue's targets: a statement under 150 ms median, a chart
under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.i18n import Catalog  # noqa: E402
from statements.chart import YearBar, render_chart  # noqa: E402
from statements.pdf import render_statement  # noqa: E402
from statements.projection import project  # noqa: E402
from statements.signing import sign_statement, statement_code, verify_pdf  # noqa: E402
from tests.statements.samples import ISSUED_AT, KEY, VERIFY_URL, ten_years  # noqa: E402

STATEMENT_TARGET_MS = 150.0
CHART_TARGET_MS = 100.0


def chart_bars() -> list[YearBar]:
    """Year-end balances of Siti's demo contributions, 2016 to 2026, with 6% development."""
    from balance.demo import DEMO_CONTRIBUTIONS

    bars: list[YearBar] = []
    employer = employee = development = 0
    for year in range(2016, 2027):
        rows = [c for c in DEMO_CONTRIBUTIONS
                if c.kpj == "12345678901" and c.period.startswith(f"{year}-")]
        opening = employer + employee + development
        employer += sum(c.employer_part for c in rows)
        employee += sum(c.employee_part for c in rows)
        if year < 2026:
            development += round(0.06 * opening)
        bars.append(YearBar(year, employer, employee, development, 12 - len(rows)
                            if year < 2026 else 10 - len(rows)))
    return bars


def measure(label: str, work: Callable[[], bytes], runs: int, target_ms: float | None) -> bytes:
    """Run ``work`` ``runs`` times and print its timings and memory; returns its last output."""
    first = time.perf_counter()
    output = work()  # the first run pays the process's one-off costs
    first_ms = (time.perf_counter() - first) * 1000
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        output = work()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    tracemalloc.start()
    work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    verdict = ""
    if target_ms is not None:
        met = statistics.median(walls) < target_ms
        verdict = f"  target < {target_ms:.0f} ms median: {'met' if met else 'MISSED'}"
    print(f"{label}: wall median {statistics.median(walls):.1f} ms, p99 {_p99(walls):.1f} ms, "
          f"min {min(walls):.1f} ms; "
          f"cpu median {statistics.median(cpus):.1f} ms, p99 {_p99(cpus):.1f} ms; "
          f"peak Python memory {peak / 1e6:.1f} MB; output {len(output) / 1000:.1f} kB; "
          f"first run {first_ms:.0f} ms{verdict}")
    return output


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    catalog = Catalog()
    data = ten_years()
    code = statement_code(data, ISSUED_AT, KEY)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.runs} runs")
    def issue() -> bytes:
        return sign_statement(render_statement(data, locale="id", issued_at=ISSUED_AT, code=code,
                                               verify_url=VERIFY_URL, catalog=catalog), KEY)

    pdf = measure(f"statement, {len(data.months)} months (render and seal)", issue, args.runs,
                  STATEMENT_TARGET_MS)
    bars = chart_bars()
    projection = project(balance=bars[-1].total, monthly_wage=6_758_000,
                         birth_date=date(1990, 1, 5), today=date(2026, 11, 20), rate=0.06,
                         wage_growth=0.05)
    measure(f"chart, {len(bars)} years + projection to {projection.age_56_year}",
            lambda: render_chart(bars, locale="id", catalog=catalog, projection=projection),
            args.runs, CHART_TARGET_MS)
    def verify() -> bytes:
        return verify_pdf(pdf, KEY).reason.encode()

    measure("verify a 10-year statement (code and seal, no re-render)", verify, args.runs, None)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
    print(f"process peak RSS {peak_rss:.0f} MB (Python, fonts, matplotlib, pypdf loaded)")


if __name__ == "__main__":
    main()
