"""The contribution statement as an A4 PDF (fpdf2).

Page 1 opens with the member and the period; then a table of every month (wage, employer and
employee parts, total, paid date; unpaid months in red), a totals row and the balance with its
parts. Every page ends with the verification code, the verify URL, its QR code (vector squares)
and the page number. The same input gives the same bytes: the creation date is the issue time.

The statement's payload (:func:`statements.signing.payload_json`) is embedded as the file
``statement.json``: a PDF attachment is the standard place for machine-readable data next to
the printed page (PDF/A-3 and the Factur-X/ZUGFeRD invoices do the same), viewers list it,
pypdf reads it back, and it needs no escaping as XMP metadata would. A rendered statement is
issued once sealed (:func:`statements.signing.sign_statement`), which vouches for its payload
and its pages together.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from flows.i18n import N_, Catalog
from flows.types import Money, Month, Text
from statements import fonts
from statements.data import StatementData, StatementMonth, utc_seconds
from statements.signing import PAYLOAD_NAME, payload_json

WIB = timezone(timedelta(hours=7), "WIB")
"""Western Indonesia Time, the time issue times are printed in (no daylight saving)."""

_MARGIN = 15.0
_PAGE_W, _PAGE_H = 210.0, 297.0
_CONTENT_W = _PAGE_W - 2 * _MARGIN
_FOOTER_TOP = _PAGE_H - 33.0
_ROW_H = 5.0
_QR_SIZE = 22.0
# Table columns: month, wage, employer part, employee part, total, paid on (mm, sum 180).
_COLUMNS = (34.0, 30.0, 27.0, 27.0, 28.0, 34.0)
_INK = (33, 37, 41)
_MUTED = (96, 104, 112)
_RED = (176, 32, 32)
_HEAD_FILL = (222, 232, 242)
_ZEBRA_FILL = (246, 247, 249)
_UNPAID_FILL = (252, 232, 232)
_ACCENT = (18, 86, 150)

SELF_PAYING = frozenset({"BPU", "PMI"})
"""The segments whose members pay their own contributions (no employer pays a part)."""
_SEGMENTS = {"PU": N_("wage earner (PU)"), "BPU": N_("non-wage earner (BPU)"),
             "PMI": N_("migrant worker (PMI)")}


def render_statement(data: StatementData, *, locale: str, issued_at: datetime, code: str,
                     verify_url: str, catalog: Catalog) -> bytes:
    """The statement of ``data`` as A4 PDF bytes, with ``code`` printed and a QR code of
    ``verify_url + "/" + code`` on every page, carrying its payload; it is issued once sealed
    by :func:`statements.signing.sign_statement`. ``issued_at`` must be timezone-aware. A
    statement whose ``nik_masked`` is empty (the balance service gives no NIK) has no NIK row;
    the note under the balance fits the member's ``segment`` (:data:`SELF_PAYING`)."""
    from fpdf import FPDF

    issued = utc_seconds(issued_at)
    writer = _Writer(catalog, locale)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    fonts.add_fonts(pdf, data.name + data.employer + data.nik_masked + data.kpj)
    pdf.set_creation_date(issued)
    pdf.set_lang("id-ID" if locale == "id" else "en-ID")
    pdf.set_title(writer.say(N_("JHT contribution statement")))
    pdf.set_auto_page_break(False)
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.c_margin = 1.5
    pdf.set_text_color(*_INK)
    url = verify_url.rstrip("/") + "/" + code
    pdf.footer = lambda: _footer(pdf, writer, code=code, url=url)  # type: ignore[method-assign]
    pdf.add_page()
    _header(pdf, writer, data, issued)
    _table(pdf, writer, data)
    _balance(pdf, writer, data)
    pdf.embed_file(bytes=payload_json(data, issued_at=issued, code=code, locale=locale,
                                      verify_url=verify_url),
                   basename=PAYLOAD_NAME, modification_date=issued,
                   mime_type="application/json", compress=True,
                   desc=writer.say(N_("Statement data for verification")))
    return bytes(pdf.output())


class _Writer:
    """Catalog rendering for one locale."""

    def __init__(self, catalog: Catalog, locale: str) -> None:
        self.catalog, self.locale = catalog, locale
        self._row_widths: dict[str, float] = {}

    def row_width(self, pdf: Any, text: str) -> float:
        """The width of ``text`` in the rows' font (amounts recur: measured once each)."""
        width = self._row_widths.get(text)
        if width is None:
            width = self._row_widths[text] = pdf.get_string_width(text)
        return width

    def say(self, msgid: str, **params: Any) -> str:
        return self.catalog.render(Text(msgid, params), self.locale)

    def plural(self, msgid: str, plural: str, n: int, **params: Any) -> str:
        return self.catalog.render(Text(msgid, params, plural=plural, n=n), self.locale)

    def value(self, value: Any) -> str:
        return self.catalog.format_value(value, self.locale)

    def money(self, rupiah: int) -> str:
        return self.value(Money(rupiah))


def _header(pdf: Any, w: _Writer, data: StatementData, issued: datetime) -> None:
    pdf.set_font(fonts.FAMILY, "B", 17)
    pdf.set_text_color(*_ACCENT)
    pdf.cell(_CONTENT_W, 9, w.say(N_("JHT contribution statement")),
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.FAMILY, "", 9)
    pdf.set_text_color(*_MUTED)
    pdf.cell(_CONTENT_W, 5, w.say(N_("BPJS Ketenagakerjaan · Jaminan Hari Tua (old-age savings)")),
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    period = w.say(N_("{start} to {end}"), start=Month.parse(data.period_label_from),
                   end=Month.parse(data.period_label_to))
    local = issued.astimezone(WIB)
    issued_text = w.say(N_("{date}, {time} WIB"), date=local.date(),
                        time=f"{local.hour:02d}:{local.minute:02d}")
    segment = w.say(_SEGMENTS[data.segment]) if data.segment in _SEGMENTS else data.segment
    # The name has the whole width; below it, the right column holds the longer values.
    name = ((w.say(N_("Name")), data.name),)
    nik = ((w.say(N_("NIK")), data.nik_masked),) if data.nik_masked else ()
    left = (*nik, (w.say(N_("KPJ")), data.kpj), (w.say(N_("Segment")), segment),
            (w.say(N_("Balance as of")), w.value(data.balance_as_of)))
    right = ((w.say(N_("Employer")), data.employer or "–"), (w.say(N_("Period")), period),
             (w.say(N_("Issued")), issued_text))
    top = pdf.get_y()
    for x, y, column_w, pairs in ((_MARGIN, top, _CONTENT_W, name),
                                  (_MARGIN, top + 6.0, 78.0, left),
                                  (_MARGIN + 78.0, top + 6.0, _CONTENT_W - 78.0, right)):
        for row, (label, value) in enumerate(pairs):
            pdf.set_xy(x, y + row * 6.0)
            pdf.set_font(fonts.FAMILY, "", 8.5)
            pdf.set_text_color(*_MUTED)
            pdf.cell(24, 6, label)
            pdf.set_text_color(*_INK)
            pdf.cell(column_w - 25, 6, _fit(pdf, value, column_w - 25, size=9.5))
    pdf.set_xy(_MARGIN, top + (1 + max(len(left), len(right))) * 6.0 + 5)


def _fit(pdf: Any, text: str, width: float, *, size: float, smallest: float = 6.5) -> str:
    """``text`` in bold at ``size``, or smaller (down to ``smallest``) so it fits ``width``;
    only past that is it shortened with an ellipsis. Sets the font it is to be written in."""
    pdf.set_font(fonts.FAMILY, "B", size)
    room = width - 2 * pdf.c_margin
    natural = pdf.get_string_width(text)
    if natural <= room:
        return text
    pdf.set_font_size(max(smallest, size * room / natural))
    if pdf.get_string_width(text) <= room:
        return text
    while text and pdf.get_string_width(text + "…") > room:
        text = text[:-1]
    return text + "…"


def _table_head(pdf: Any, w: _Writer) -> None:
    titles = (w.say(N_("Month")), w.say(N_("Wage")), w.say(N_("Employer part")),
              w.say(N_("Employee part")), w.say(N_("Total")), w.say(N_("Paid on")))
    pdf.set_font(fonts.FAMILY, "B", 8.5)
    pdf.set_fill_color(*_HEAD_FILL)
    pdf.set_text_color(*_INK)
    for index, (width, title) in enumerate(zip(_COLUMNS, titles, strict=True)):
        pdf.cell(width, 7, title, fill=True, align="L" if index in {0, 5} else "R")
    pdf.ln(7)


def _table(pdf: Any, w: _Writer, data: StatementData) -> None:
    pdf.set_font(fonts.FAMILY, "B", 11)
    pdf.set_text_color(*_ACCENT)
    pdf.cell(_CONTENT_W, 7, w.say(N_("Monthly JHT contributions")), new_x="LMARGIN", new_y="NEXT")
    _table_head(pdf, w)
    for index, month in enumerate(data.months):
        if pdf.get_y() + _ROW_H > _FOOTER_TOP - 2:
            pdf.add_page()
            _table_head(pdf, w)
        _row(pdf, w, month, zebra=index % 2 == 1)
    _ensure_space(pdf, w, 7.0, table=True)
    pdf.set_draw_color(*_MUTED)
    pdf.line(_MARGIN, pdf.get_y(), _MARGIN + _CONTENT_W, pdf.get_y())
    pdf.set_font(fonts.FAMILY, "B", 9)
    pdf.set_text_color(*_INK)
    employer = sum(m.employer_part for m in data.months)
    employee = sum(m.employee_part for m in data.months)
    cells = (w.say(N_("Total")), "", w.money(employer), w.money(employee),
             w.money(employer + employee))
    for index, (width, text) in enumerate(zip(_COLUMNS, cells, strict=False)):
        pdf.cell(width, 7, text, align="L" if index == 0 else "R")
    unpaid = data.unpaid_months
    pdf.set_text_color(*(_RED if unpaid else _MUTED))
    note = (w.plural("{n} month not paid", "{n} months not paid", unpaid) if unpaid
            else w.say(N_("every month paid")))
    pdf.cell(_COLUMNS[5], 7, _fit(pdf, note, _COLUMNS[5], size=8.5))
    pdf.set_text_color(*_INK)
    pdf.ln(9)


def _row(pdf: Any, w: _Writer, month: StatementMonth, *, zebra: bool) -> None:
    """One month's row. Written with ``text`` at computed positions rather than six ``cell``
    calls: half the time, and rows are most of a long statement."""
    unpaid = month.paid_on is None
    top = pdf.get_y()
    if unpaid or zebra:
        pdf.set_fill_color(*(_UNPAID_FILL if unpaid else _ZEBRA_FILL))
        pdf.rect(_MARGIN, top, _CONTENT_W, _ROW_H, style="F")
    pdf.set_font(fonts.FAMILY, "", 8.5)
    baseline = top + _ROW_H / 2 + 0.3 * pdf.font_size
    amounts = (month.wage, month.employer_part, month.employee_part, month.total)
    texts = [w.value(Month.parse(month.period)),
             *("–" if unpaid and amount == 0 else w.money(amount) for amount in amounts)]
    x = _MARGIN
    for index, (width, text) in enumerate(zip(_COLUMNS, texts, strict=False)):
        left = x + pdf.c_margin if index == 0 else (
            x + width - pdf.c_margin - w.row_width(pdf, text))
        pdf.text(left, baseline, text)
        x += width
    if month.paid_on is None:
        pdf.set_text_color(*_RED)
        pdf.set_font(fonts.FAMILY, "B", 8.5)
        pdf.text(x + pdf.c_margin, baseline, w.say(N_("Not paid")))
        pdf.set_text_color(*_INK)
    else:
        pdf.text(x + pdf.c_margin, baseline, w.value(month.paid_on))
    pdf.set_xy(_MARGIN, top + _ROW_H)


def _ensure_space(pdf: Any, w: _Writer, height: float, *, table: bool = False) -> None:
    if pdf.get_y() + height > _FOOTER_TOP - 2:
        pdf.add_page()
        if table:
            _table_head(pdf, w)


def _balance(pdf: Any, w: _Writer, data: StatementData) -> None:
    _ensure_space(pdf, w, 44.0)
    pdf.set_font(fonts.FAMILY, "B", 11)
    pdf.set_text_color(*_ACCENT)
    pdf.cell(_CONTENT_W, 7, w.say(N_("JHT balance as of {date}"), date=data.balance_as_of),
             new_x="LMARGIN", new_y="NEXT")
    lines = ((N_("Employer contributions"), data.employer_total),
             (N_("Employee contributions"), data.employee_total),
             (N_("Development (returns)"), data.development))
    pdf.set_text_color(*_INK)
    for label, amount in lines:
        pdf.set_font(fonts.FAMILY, "", 9.5)
        pdf.cell(70, 6, w.say(label))
        pdf.cell(40, 6, w.money(amount), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(*_MUTED)
    pdf.line(_MARGIN, pdf.get_y(), _MARGIN + 110, pdf.get_y())
    pdf.set_font(fonts.FAMILY, "B", 11)
    pdf.cell(70, 8, w.say(N_("Total balance")))
    pdf.cell(40, 8, w.money(data.balance_total), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(fonts.FAMILY, "", 8)
    pdf.set_text_color(*_MUTED)
    pdf.multi_cell(_CONTENT_W, 4, _note(w, data.segment), align="L")
    pdf.set_text_color(*_INK)


def _note(w: _Writer, segment: str) -> str:
    """The note under the balance: when development is credited, and whom to ask about a month
    marked unpaid: the employer's HR for a wage earner, the member's own payment otherwise."""
    if segment in SELF_PAYING:
        return w.say(N_(
            "Development is credited once a year, on 31 December, for the completed year. "
            "A month marked \u201cNot paid\u201d has no contribution posted: you pay your own "
            "contributions, through the official channels (the JMO app, banks or retail "
            "partners) by the 15th of the following month. If you paid and the month is still "
            "marked, call BPJS Ketenagakerjaan (call centre 175)."))
    return w.say(N_(
        "Development is credited once a year, on 31 December, for the completed year. "
        "A month marked \u201cNot paid\u201d has no contribution posted: ask your employer's HR "
        "first, then BPJS Ketenagakerjaan (call centre 175)."))


def _footer(pdf: Any, w: _Writer, *, code: str, url: str) -> None:
    top = _FOOTER_TOP
    pdf.set_draw_color(*_HEAD_FILL)
    pdf.set_line_width(0.4)
    pdf.line(_MARGIN, top, _MARGIN + _CONTENT_W, top)
    pdf.set_line_width(0.2)
    _qr(pdf, url, x=_MARGIN + _CONTENT_W - _QR_SIZE, y=top + 3, size=_QR_SIZE)
    text_w = _CONTENT_W - _QR_SIZE - 4
    pdf.set_xy(_MARGIN, top + 3)
    pdf.set_font(fonts.FAMILY, "", 8.5)
    pdf.set_text_color(*_MUTED)
    pdf.cell(text_w, 5, w.say(N_("Verification code")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(fonts.FAMILY, "B", 13)
    pdf.set_text_color(*_INK)
    pdf.cell(text_w, 7, " ".join((code[:5], code[5:])), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*_MUTED)
    _one_line(pdf, text_w, 4, w.say(N_("Check this statement at {url} or scan the QR code."),
                                    url=url), size=8)
    pdf.set_xy(_MARGIN, _PAGE_H - 10)
    pdf.cell(text_w, 4, w.say(N_("Page {page} of {pages}"), page=str(pdf.page_no()),
                              pages="{nb}"))
    pdf.set_text_color(*_INK)


def _one_line(pdf: Any, width: float, height: float, text: str, *, size: float) -> None:
    """``text`` on one line, in a smaller font when it would not fit (a long verify URL)."""
    pdf.set_font(fonts.FAMILY, "", size)
    natural = pdf.get_string_width(text)
    if natural > width - 2 * pdf.c_margin:
        pdf.set_font_size(max(5.0, size * (width - 2 * pdf.c_margin) / natural))
    pdf.cell(width, height, text, new_x="LMARGIN", new_y="NEXT")


def _qr(pdf: Any, content: str, *, x: float, y: float, size: float) -> None:
    """A QR code of ``content`` drawn as filled rectangles, one per run of dark modules."""
    matrix = _qr_matrix(content)
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for row_index, row in enumerate(matrix):
        for start, length in _dark_runs(row):
            pdf.rect(x + start * module, y + row_index * module, length * module, module,
                     style="F")


@lru_cache(maxsize=64)  # the same code on every page of a statement
def _qr_matrix(content: str) -> tuple[bytes, ...]:
    import segno

    return tuple(bytes(row) for row in segno.make(content, error="m", micro=False).matrix)


def _dark_runs(row: Any) -> Iterator[tuple[int, int]]:
    start = None
    for index, dark in enumerate((*row, 0)):
        if dark and start is None:
            start = index
        elif not dark and start is not None:
            yield start, index - start
            start = None
