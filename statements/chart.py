"""The balance chart: a PNG of the JHT balance year by year, stacked employer / employee /
development, years with unpaid months marked, and the projection to age 56 as a dashed line.

matplotlib is imported inside :func:`render_chart` (importing the package stays cheap) and used
through its object API with the Agg canvas, never ``pyplot``, whose global state is not safe
in the thread pool the app renders in.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from flows.i18n import N_, Catalog
from flows.types import Text
from statements.projection import Projection

_NUMBER_LOCALE = {"id": "id_ID", "en": "en"}  # as flows.i18n writes Rupiah: 12,5 jt / 12.5M
_EMPLOYER, _EMPLOYEE, _DEVELOPMENT = "#1f5f99", "#5aa7d6", "#f0a23b"
_MISSING, _PROJECTION, _INK = "#b02020", "#2f7d32", "#21252b"
WIDTH_PX, HEIGHT_PX, DPI = 960, 540, 120
_HALF = 0.4  # half a bar's width, in years


@dataclass(frozen=True)
class YearBar:
    """One year's bar: the balance parts at the end of ``year`` (or as of today for the
    running year) and how many of its months were not paid."""

    year: int
    employer: int
    employee: int
    development: int
    missing_months: int

    @property
    def total(self) -> int:
        """The balance the bar stands for."""
        return self.employer + self.employee + self.development


def render_chart(bars: Sequence[YearBar], *, locale: str, catalog: Catalog,
                 projection: Projection | None = None) -> bytes:
    """The chart as PNG bytes (960 x 540 pixels), texts in ``locale``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    _configure()

    def say(msgid: str, **params: Any) -> str:
        return catalog.render(Text(msgid, params), locale)

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    years = [bar.year for bar in bars]
    employer = [bar.employer for bar in bars]
    employee = [bar.employee for bar in bars]
    development = [bar.development for bar in bars]
    lower = [a + b for a, b in zip(employer, employee, strict=True)]
    handles = [
        _stack(axes, years, employer, [0] * len(years), color=_EMPLOYER,
               label=say(N_("Employer contributions"))),
        _stack(axes, years, employee, employer, color=_EMPLOYEE,
               label=say(N_("Employee contributions"))),
        _stack(axes, years, development, lower, color=_DEVELOPMENT,
               label=say(N_("Development (returns)"))),
    ]
    handles += _mark_missing(axes, bars, catalog, locale)
    if projection is not None and projection.years:
        handles.insert(0, _draw_projection(axes, bars, projection, locale,
                                           say(N_("Projection to age 56 (estimate)"))))
        note = say(N_("Estimate, not a promise: development {rate}% a year, wage growing "
                      "{growth}% a year."),
                   rate=_percent(projection.rate, locale),
                   growth=_percent(projection.wage_growth, locale))
        figure.text(0.01, 0.01, note, fontsize=7.5, color="#555555")
    # An explicit y: matplotlib would otherwise measure every tick label to place the title.
    axes.set_title(say(N_("JHT balance by year")), fontsize=13, color=_INK, loc="left",
                   fontweight="bold", y=1.0, pad=10)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _short_rupiah(value, locale)))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=6))
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(labelsize=8.5)
    axes.autoscale_view()
    axes.set_ylim(bottom=0)
    axes.margins(x=0.02)
    _legend(axes, handles)
    # Fixed margins: tight_layout would lay the figure out twice (a third of the time).
    figure.subplots_adjust(left=0.105, right=0.985, top=0.91,
                           bottom=0.12 if projection is not None else 0.07)
    buffer = io.BytesIO()
    # Light compression: a fifth of the encoding time, and platforms recompress photos anyway.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None},
                   pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _legend(axes: Any, handles: Sequence[Any]) -> None:
    """The legend drawn as plain texts and swatches: matplotlib's own legend lays itself out
    through offset boxes at a fifth of the chart's drawing time."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    for index, handle in enumerate(handles):
        y = 0.965 - index * 0.052
        if isinstance(handle, Line2D):
            axes.add_line(Line2D([0.015, 0.045], [y, y], transform=axes.transAxes,
                                 color=handle.get_color(), linestyle="--", linewidth=1.6))
        else:
            axes.add_patch(Rectangle((0.015, y - 0.014), 0.03, 0.028, transform=axes.transAxes,
                                     facecolor=handle.get_facecolor(),
                                     edgecolor=handle.get_edgecolor(),
                                     hatch=handle.get_hatch(), linewidth=0.8))
        axes.text(0.055, y, handle.get_label(), transform=axes.transAxes, fontsize=8,
                  va="center", ha="left")


@cache
def _configure() -> None:
    """Process-wide matplotlib settings, once. Agg reads text hinting from the global
    rcParams at draw time (there is no per-figure setting); unhinted text looks the same at
    this resolution and draws a quarter faster. The bot draws nothing else with matplotlib."""
    import matplotlib

    matplotlib.rcParams["text.hinting"] = "no_hinting"


def _stack(axes: Any, years: Sequence[int], heights: Sequence[int], bottoms: Sequence[int],
           *, color: str, label: str) -> Any:
    """One layer of the stacked bars as a single collection (much cheaper to draw than one
    patch per bar); returns its legend handle."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    polygons = [[(x - _HALF, low), (x + _HALF, low), (x + _HALF, low + h), (x - _HALF, low + h)]
                for x, h, low in zip(years, heights, bottoms, strict=True)]
    axes.add_collection(PolyCollection(polygons, facecolors=color, edgecolors="none"),
                        autolim=True)
    return Patch(facecolor=color, label=label)


def _mark_missing(axes: Any, bars: Sequence[YearBar], catalog: Catalog,
                  locale: str) -> list[Any]:
    """Hatch the bars of years with unpaid months and write the count above them; returns the
    legend handle (none when every month was paid)."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    gaps = [bar for bar in bars if bar.missing_months]
    if not gaps:
        return []
    polygons = [[(b.year - _HALF, 0), (b.year + _HALF, 0), (b.year + _HALF, b.total),
                 (b.year - _HALF, b.total)] for b in gaps]
    axes.add_collection(PolyCollection(polygons, facecolors="none", edgecolors=_MISSING,
                                       hatch="///", linewidths=0.8))
    for bar in gaps:
        label = catalog.render(Text("{n} month unpaid", plural="{n} months unpaid",
                                    n=bar.missing_months), locale)
        # Right-aligned to the bar's centre: the projection line leaves it to the upper right.
        axes.annotate(label, (bar.year, bar.total), xytext=(3, 3), textcoords="offset points",
                      ha="right", va="bottom", fontsize=7, color=_MISSING)
    label = catalog.render(Text(N_("Year with unpaid months")), locale)
    return [Patch(facecolor="none", edgecolor=_MISSING, hatch="///", label=label)]


def _draw_projection(axes: Any, bars: Sequence[YearBar], projection: Projection, locale: str,
                     label: str) -> Any:
    start = [(bars[-1].year, bars[-1].total)] if bars else []
    points = [*start, *projection.years]
    (line,) = axes.plot([year for year, _ in points], [value for _, value in points],
                        linestyle="--", color=_PROJECTION, linewidth=1.6, marker="o",
                        markersize=2.5, label=label)
    year, value = projection.years[-1]
    axes.annotate(_short_rupiah(value, locale), (year, value), xytext=(0, 6),
                  textcoords="offset points", ha="right", fontsize=8, color=_PROJECTION,
                  fontweight="bold")
    return line


@lru_cache(maxsize=1024)  # axis ticks repeat; Babel parses the compact pattern on every call
def _short_rupiah(value: float, locale: str) -> str:
    """``Rp12,5 jt`` / ``Rp12.5M``: the compact form the locale writes, with the Rupiah sign."""
    from babel.numbers import format_compact_decimal

    if value == 0:
        return "Rp0"
    number = format_compact_decimal(value, locale=_NUMBER_LOCALE.get(locale, "id_ID"),
                                    fraction_digits=1)
    return f"Rp{number}"


def _percent(fraction: float, locale: str) -> str:
    from babel.numbers import format_decimal

    return format_decimal(round(fraction * 100, 2), format="#,##0.##",
                          locale=_NUMBER_LOCALE.get(locale, "id_ID"))
