"""The balance chart: a PNG that decodes to the promised size, with and without projection."""

from __future__ import annotations

import io
import sys
from datetime import date

import pytest

from flows.i18n import Catalog
from statements.chart import HEIGHT_PX, WIDTH_PX, YearBar, render_chart
from statements.projection import project

BARS = (
    YearBar(2024, employer=2_000_000, employee=1_100_000, development=150_000, missing_months=0),
    YearBar(2025, employer=4_700_000, employee=2_500_000, development=500_000, missing_months=2),
    YearBar(2026, employer=7_400_000, employee=4_000_000, development=950_000, missing_months=1),
)


def _decoded(png: bytes) -> tuple[int, int, int]:
    from matplotlib.image import imread

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    shape = imread(io.BytesIO(png), format="png").shape
    return int(shape[0]), int(shape[1]), int(shape[2])


@pytest.mark.parametrize("locale", ["id", "en"])
def test_chart_with_projection_decodes(catalog: Catalog, locale: str) -> None:
    projection = project(balance=BARS[-1].total, monthly_wage=6_758_000,
                         birth_date=date(1990, 1, 5), today=date(2026, 11, 20), rate=0.06,
                         wage_growth=0.05)
    png = render_chart(BARS, locale=locale, catalog=catalog, projection=projection)
    assert _decoded(png)[:2] == (HEIGHT_PX, WIDTH_PX)


def test_chart_without_projection_or_gaps_decodes(catalog: Catalog) -> None:
    paid = [YearBar(b.year, b.employer, b.employee, b.development, 0) for b in BARS]
    assert _decoded(render_chart(paid, locale="en", catalog=catalog))[:2] == (HEIGHT_PX,
                                                                              WIDTH_PX)


def test_chart_of_a_member_past_56_and_of_no_years(catalog: Catalog) -> None:
    done = project(balance=1, monthly_wage=1, birth_date=date(1960, 1, 1),
                   today=date(2026, 1, 1), rate=0.06, wage_growth=0.0)
    assert _decoded(render_chart(BARS, locale="id", catalog=catalog, projection=done))[:2] == (
        HEIGHT_PX, WIDTH_PX)
    assert _decoded(render_chart([], locale="id", catalog=catalog))[:2] == (HEIGHT_PX,
                                                                            WIDTH_PX)


def test_chart_texts_go_through_the_catalog() -> None:
    seen: list[str] = []

    class Recording(Catalog):
        def render(self, text, locale):  # type: ignore[no-untyped-def]
            seen.append(text.msgid)
            return super().render(text, locale)

    render_chart(BARS, locale="id", catalog=Recording())
    assert {"JHT balance by year", "Employer contributions", "Year with unpaid months",
            "{n} month unpaid"} <= set(seen)


def test_importing_the_package_does_not_import_matplotlib() -> None:
    import subprocess

    code = ("import sys, statements.chart, statements.pdf, statements.signing; "
            "print('matplotlib' in sys.modules, 'fpdf' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]
