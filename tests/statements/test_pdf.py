"""The statement PDF: A4, every month, unpaid months marked, totals, balance, code, QR and page
numbers; deterministic; texts through the catalog."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from pypdf import PdfReader

from flows.i18n import Catalog
from statements.data import StatementData
from statements.pdf import render_statement
from statements.signing import PAYLOAD_NAME, statement_code
from tests.statements.conftest import render
from tests.statements.samples import ISSUED_AT, KEY, VERIFY_URL, siti, ten_years

A4_POINTS = (595.28, 841.89)


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_one_year_statement_content(one_year: bytes) -> None:
    reader = PdfReader(io.BytesIO(one_year))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width), 2), round(float(box.height), 2)) == A4_POINTS
    text = _text(one_year)
    code = statement_code(siti(), ISSUED_AT, KEY)
    for expected in ("JHT contribution statement", "Siti Rahayu", "317101********01",
                     "12345678901", "PT Maju Bersama", "November 2025 to October 2026",
                     "20 November 2026, 10:04 WIB",  # 03:04 UTC in Western Indonesia Time
                     "October 2026 Rp6,758,000 Rp250,046 Rp135,160 Rp385,206 10 November 2026",
                     "September 2026 – – – – Not paid", "1 month not paid",
                     "Total balance Rp38,876,797", "Development (returns) Rp1,234,567",
                     f"{code[:5]} {code[5:]}", f"{VERIFY_URL}/{code}", "Page 1 of 1"):
        assert expected in text, expected


def test_totals_row_adds_the_months(one_year: bytes) -> None:
    data = siti()
    employer = sum(m.employer_part for m in data.months)
    employee = sum(m.employee_part for m in data.months)
    assert f"Total Rp{employer:,} Rp{employee:,} Rp{employer + employee:,}" in _text(one_year)


def test_payload_is_embedded_with_code_locale_and_url(one_year: bytes) -> None:
    payload = json.loads(PdfReader(io.BytesIO(one_year)).attachments[PAYLOAD_NAME][0])
    assert payload["code"] == statement_code(siti(), ISSUED_AT, KEY)
    assert (payload["locale"], payload["verify_url"]) == ("en", VERIFY_URL)
    assert payload["issued_at"] == "2026-11-20T03:04:05Z"
    assert payload["data"]["balance_total"] == siti().balance_total
    assert len(payload["data"]["months"]) == 12


def test_same_input_gives_the_same_bytes(catalog: Catalog, one_year: bytes) -> None:
    assert render(catalog) == one_year
    metadata = PdfReader(io.BytesIO(one_year)).metadata
    assert metadata is not None and str(metadata["/CreationDate"]) == "D:20261120030405Z"


def test_ten_years_run_over_three_pages_with_header_and_footer_on_each(
        catalog: Catalog) -> None:
    pdf = render(catalog, years=10)
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) == 3
    code = statement_code(ten_years(), ISSUED_AT, KEY)
    for number, page in enumerate(pages, start=1):
        text = page.extract_text()
        assert f"Page {number} of 3" in text
        assert f"{code[:5]} {code[5:]}" in text
        assert "Month Wage Employer part Employee part Total Paid on" in text
    every = _text(pdf)
    assert every.count(" Rp") > 120 * 4
    assert "November 2016 " in every and "October 2026 " in every


def test_texts_go_through_the_catalog(tmp_path: Path) -> None:
    po = tmp_path / "id" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "Not paid"\nmsgstr "Belum dibayar"\n\n'
                  'msgid "Total balance"\nmsgstr "Total saldo"\n', encoding="utf-8")
    data = siti()
    pdf = render_statement(data, locale="id", issued_at=ISSUED_AT,
                           code=statement_code(data, ISSUED_AT, KEY), verify_url=VERIFY_URL,
                           catalog=Catalog(tmp_path))
    text = _text(pdf)
    assert "September 2026 – – – – Belum dibayar" in text
    assert "Oktober 2026 Rp6.758.000" in text  # months and Rupiah as Indonesian writes them
    assert "Total saldo Rp38.876.797" in text


def test_names_outside_the_usual_scripts_render(catalog: Catalog) -> None:
    # Armenian is outside the fonts cut for speed: the full DejaVu Sans is used instead.
    for name in ("Ñoño Łukasz Şahin", "Արամ Մանուկյան"):
        data = siti(name=name)
        pdf = render_statement(data, locale="en", issued_at=ISSUED_AT,
                               code=statement_code(data, ISSUED_AT, KEY), verify_url=VERIFY_URL,
                               catalog=catalog)
        assert name in _text(pdf)


def test_a_statement_without_unpaid_months(catalog: Catalog) -> None:
    data = siti("2025-01", "2025-12")
    pdf = render_statement(data, locale="en", issued_at=ISSUED_AT,
                           code=statement_code(data, ISSUED_AT, KEY), verify_url=VERIFY_URL,
                           catalog=catalog)
    text = _text(pdf)
    assert "Not paid" not in text.replace('A month marked “Not paid”', "")
    assert "every month paid" in text


def test_qr_code_drawn_on_the_page_is_the_verify_url(one_year: bytes) -> None:
    import re

    import segno

    code = statement_code(siti(), ISSUED_AT, KEY)
    expected = segno.make(f"{VERIFY_URL}/{code}", error="m", micro=False).matrix
    contents = PdfReader(io.BytesIO(one_year)).pages[0].get_contents()
    assert contents is not None
    content = contents.get_data()
    rects = [tuple(map(float, m.groups())) for m in re.finditer(
        rb"(-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re f", content)]
    black = [r for r in rects if r[0] > 450 and r[1] < 100]  # the QR sits bottom right
    left = min(x for x, _, _, _ in black)
    top = max(y for _, y, _, _ in black)
    module = min(-h for _, _, _, h in black)
    drawn = [[0] * len(expected) for _ in expected]
    for x, y, w, _ in black:
        row, col = round((top - y) / module), round((x - left) / module)
        for k in range(round(w / module)):
            drawn[row][col + k] = 1
    assert drawn == [list(row) for row in expected]


def test_a_long_name_is_written_whole_in_a_smaller_font(catalog: Catalog) -> None:
    name = "Raden Ajeng Siti Nurhaliza Putri Kusumawardhani"
    data = siti(name=name)
    pdf = render_statement(data, locale="en", issued_at=ISSUED_AT,
                           code=statement_code(data, ISSUED_AT, KEY), verify_url=VERIFY_URL,
                           catalog=catalog)
    assert name in _text(pdf)


def _rendered(catalog: Catalog, data: StatementData, locale: str = "en") -> str:
    return _text(render_statement(data, locale=locale, issued_at=ISSUED_AT,
                                  code=statement_code(data, ISSUED_AT, KEY),
                                  verify_url=VERIFY_URL, catalog=catalog))


def test_no_nik_row_when_the_nik_is_unknown(catalog: Catalog, one_year: bytes) -> None:
    assert "NIK 317101********01" in _text(one_year)
    text = _rendered(catalog, replace(siti(), nik_masked=""))
    assert "NIK" not in text
    assert "KPJ 12345678901" in text


@pytest.mark.parametrize("segment", ["BPU", "PMI"])
def test_a_member_paying_their_own_is_told_to_pay_not_to_ask_hr(catalog: Catalog,
                                                                segment: str) -> None:
    text = " ".join(_rendered(catalog, replace(siti(), segment=segment, employer="")).split())
    assert "you pay your own contributions, through the official channels" in text
    assert "JMO app" in text and "call centre 175" in text
    assert "HR" not in text


def test_a_wage_earner_is_told_to_ask_the_employers_hr(one_year: bytes) -> None:
    text = " ".join(_text(one_year).split())
    assert "ask your employer's HR first, then BPJS Ketenagakerjaan (call centre 175)" in text
    assert "JMO app" not in text
