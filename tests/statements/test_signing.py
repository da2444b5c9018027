"""Verification codes and the check of a statement PDF: genuine files pass, altered or forged
ones do not."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.generic import (
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from flows.i18n import Catalog
from flows.types import Text
from statements.data import StatementData
from statements.pdf import render_statement
from statements.signing import (
    CODE_ALPHABET,
    PAYLOAD_NAME,
    SEAL_ENTRY,
    normalize_code,
    pages_digest,
    sign_statement,
    statement_code,
    summary_of,
    verify_pdf,
)
from tests.statements.conftest import render
from tests.statements.samples import ISSUED_AT, KEY, VERIFY_URL, siti, ten_years


def _content(page: PageObject) -> bytes:
    contents = page.get_contents()
    assert contents is not None
    return contents.get_data()


def _drop_payload(writer: PdfWriter) -> None:
    names = writer.root_object["/Names"]
    assert isinstance(names, DictionaryObject)
    del names[NameObject("/EmbeddedFiles")]


def test_code_is_ten_unambiguous_characters_and_deterministic() -> None:
    code = statement_code(siti(), ISSUED_AT, KEY)
    assert re.fullmatch(f"[{CODE_ALPHABET}]{{10}}", code)
    assert not set(code) & set("01OI")
    assert statement_code(siti(), ISSUED_AT, KEY) == code
    assert set(CODE_ALPHABET).isdisjoint("01OI") and len(set(CODE_ALPHABET)) == 32


def test_code_depends_on_key_content_and_issue_time() -> None:
    code = statement_code(siti(), ISSUED_AT, KEY)
    assert statement_code(siti(), ISSUED_AT, b"another key") != code
    assert statement_code(siti(development=1), ISSUED_AT, KEY) != code
    assert statement_code(siti(), ISSUED_AT + timedelta(seconds=1), KEY) != code
    assert statement_code(siti(), ISSUED_AT + timedelta(microseconds=5), KEY) == code


def test_normalize_code_reads_a_typed_code() -> None:
    assert normalize_code(" m6t5n-gnx4b ") == "M6T5NGNX4B"


def test_summary_holds_only_what_the_holder_has() -> None:
    summary = summary_of(siti(), ISSUED_AT, "ABCDEFGHJK")
    assert (summary.initials, summary.kpj_masked) == ("S.R.", "*******8901")
    assert (summary.period_from, summary.period_to) == ("2025-11", "2026-10")
    assert summary.total == siti().balance_total
    assert summary.issued_at == ISSUED_AT


def test_genuine_statement_is_accepted(one_year: bytes) -> None:
    verdict = verify_pdf(one_year, KEY)
    assert (verdict.genuine, verdict.reason) == (True, "ok")
    assert verdict.code == statement_code(siti(), ISSUED_AT, KEY)
    assert verdict.summary == summary_of(siti(), ISSUED_AT, verdict.code)


def test_ten_year_statement_in_indonesian_is_accepted(catalog: Catalog) -> None:
    verdict = verify_pdf(render(catalog, years=10, locale="id"), KEY)
    assert (verdict.genuine, verdict.reason) == (True, "ok")


def test_another_key_is_refused(one_year: bytes) -> None:
    verdict = verify_pdf(one_year, b"not the bot's key")
    assert (verdict.genuine, verdict.reason, verdict.summary) == (False, "bad_code", None)


def _with_payload(pdf: bytes, edit: dict[str, object]) -> bytes:
    reader = PdfReader(io.BytesIO(pdf))
    payload = json.loads(reader.attachments[PAYLOAD_NAME][0])
    payload["data"].update(edit)
    writer = PdfWriter(clone_from=reader)
    _drop_payload(writer)
    writer.add_attachment(PAYLOAD_NAME, json.dumps(payload).encode())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_changed_total_in_the_payload_is_refused(one_year: bytes) -> None:
    forged = _with_payload(one_year, {"balance_total": 99_000_000})
    assert json.loads(PdfReader(io.BytesIO(forged)).attachments[PAYLOAD_NAME][0])[
        "data"]["balance_total"] == 99_000_000
    verdict = verify_pdf(forged, KEY)
    assert (verdict.genuine, verdict.reason) == (False, "bad_code")


def _edit_page(pdf: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter(clone_from=reader)
    page = writer.pages[0]
    stream = DecodedStreamObject()
    stream.set_data(edit(_content(page)))
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_changed_number_on_the_page_is_refused(one_year: bytes) -> None:
    # After the last switch to bold 11 pt come the label "Total balance" and the amount:
    # change the amount's last digit's glyph into its first digit's (Rp38,876,797 -> ...793).
    def change_total(content: bytes) -> bytes:
        label_end = content.index(b") Tj", content.rindex(b"/F2 11.00 Tf"))
        opening = content.index(b"(", label_end)
        show = content.index(b") Tj", opening)
        glyphs = content[opening + 1:show]
        first_digit = glyphs[4:6]  # after "R", "p"
        return content[:show - 2] + first_digit + content[show:]

    tampered = _edit_page(one_year, change_total)
    before = PdfReader(io.BytesIO(one_year)).pages[0].extract_text()
    after = PdfReader(io.BytesIO(tampered)).pages[0].extract_text()
    assert before != after and "Rp38,876,797" in before and "Rp38,876,793" in after
    verdict = verify_pdf(tampered, KEY)
    assert (verdict.genuine, verdict.reason) == (False, "altered")
    assert verdict.code == statement_code(siti(), ISSUED_AT, KEY)


def test_hidden_unpaid_mark_is_refused(one_year: bytes) -> None:
    # Paint the red of "Not paid" in the text colour: same text, different page.
    red = b"0.6902 0.1255 0.1255 rg"
    assert red in _content(PdfReader(io.BytesIO(one_year)).pages[0])
    tampered = _edit_page(one_year, lambda c: c.replace(red, b"0.1294 0.1451 0.1608 rg"))
    assert (verify_pdf(tampered, KEY).reason) == "altered"


def test_statement_of_other_data_with_a_genuine_payload_is_refused(catalog: Catalog) -> None:
    # The pages of a statement rendered from made-up data, carrying a genuine payload.
    genuine = siti()
    made_up: StatementData = replace(genuine, balance_total=genuine.balance_total * 2)
    code = statement_code(genuine, ISSUED_AT, KEY)
    forged_pages = render_statement(made_up, locale="en", issued_at=ISSUED_AT, code=code,
                                    verify_url=VERIFY_URL, catalog=catalog)
    real = render_statement(genuine, locale="en", issued_at=ISSUED_AT, code=code,
                            verify_url=VERIFY_URL, catalog=catalog)
    forged_content = _content(PdfReader(io.BytesIO(forged_pages)).pages[0])
    tampered = _edit_page(sign_statement(real, KEY), lambda _: forged_content)
    assert verify_pdf(tampered, KEY).reason == "altered"


def test_not_a_pdf_or_no_payload() -> None:
    assert verify_pdf(b"hello", KEY).reason == "no_payload"
    assert verify_pdf(b"", KEY).reason == "no_payload"
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    plain = io.BytesIO()
    writer.write(plain)
    verdict = verify_pdf(plain.getvalue(), KEY)
    assert (verdict.genuine, verdict.reason, verdict.code) == (False, "no_payload", None)


def test_payload_that_is_not_a_statement_is_no_payload(one_year: bytes) -> None:
    reader = PdfReader(io.BytesIO(one_year))
    writer = PdfWriter(clone_from=reader)
    _drop_payload(writer)
    writer.add_attachment(PAYLOAD_NAME, b"[1, 2, 3]")
    out = io.BytesIO()
    writer.write(out)
    assert verify_pdf(out.getvalue(), KEY).reason == "no_payload"


def test_swapped_glyph_widths_in_the_font_are_refused(one_year: bytes) -> None:
    # Same content stream, but the font's width table edited: the page draws differently.
    reader = PdfReader(io.BytesIO(one_year))
    writer = PdfWriter(clone_from=reader)
    resources = writer.pages[0]["/Resources"]
    assert isinstance(resources, DictionaryObject)
    font = resources["/Font"]["/F1"]["/DescendantFonts"][0].get_object()  # type: ignore[index]
    widths = font["/W"]
    assert isinstance(widths, list) and len(widths) > 1
    glyph_widths = widths[1]
    assert isinstance(glyph_widths, list)
    glyph_widths[2] = NumberObject(int(glyph_widths[2]) + 200)
    out = io.BytesIO()
    writer.write(out)
    assert _content(PdfReader(out).pages[0]) == _content(reader.pages[0])
    assert verify_pdf(out.getvalue(), KEY).reason == "altered"


def _rewritten(pdf: bytes, edit: Callable[[PdfWriter], None] = lambda _: None) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    edit(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_the_seal_is_an_incremental_update_after_the_rendered_bytes(catalog: Catalog) -> None:
    data = siti()
    rendered = render_statement(data, locale="en", issued_at=ISSUED_AT,
                                code=statement_code(data, ISSUED_AT, KEY),
                                verify_url=VERIFY_URL, catalog=catalog)
    sealed = sign_statement(rendered, KEY)
    assert sealed.startswith(rendered) and sealed.count(b"%%EOF") == 2
    reader = PdfReader(io.BytesIO(sealed))
    assert reader.metadata is not None
    assert str(reader.metadata[SEAL_ENTRY]).startswith("v1:")
    assert str(reader.metadata["/CreationDate"]) == "D:20261120030405Z"  # the rest is kept
    assert pages_digest(reader) == pages_digest(PdfReader(io.BytesIO(rendered)))
    assert verify_pdf(rendered, KEY).reason == "altered"  # rendered but never issued


def test_a_statement_saved_again_by_another_tool_is_still_genuine(one_year: bytes) -> None:
    # Other object numbers, other compression, same pages: still what was issued.
    def recompress(writer: PdfWriter) -> None:
        for page in writer.pages:
            page.compress_content_streams(level=1)

    resaved = _rewritten(one_year, recompress)
    assert resaved != one_year
    assert verify_pdf(resaved, KEY).reason == "ok"


def test_a_statement_without_its_seal_or_with_another_seal_is_refused(one_year: bytes) -> None:
    def unseal(writer: PdfWriter) -> None:
        del writer._info[NameObject(SEAL_ENTRY)]  # type: ignore[union-attr]

    assert verify_pdf(_rewritten(one_year, unseal), KEY).reason == "altered"
    other = sign_statement(render(Catalog(), years=10), KEY)
    other_seal = PdfReader(io.BytesIO(other)).metadata[SEAL_ENTRY]  # type: ignore[index]

    def reseal(writer: PdfWriter) -> None:
        writer.add_metadata({SEAL_ENTRY: TextStringObject(other_seal)})

    assert verify_pdf(_rewritten(one_year, reseal), KEY).reason == "altered"


def test_pages_of_one_genuine_statement_with_the_payload_of_another_are_refused(
        one_year: bytes, catalog: Catalog) -> None:
    ten = render(catalog, years=10)
    ten_payload = PdfReader(io.BytesIO(ten)).attachments[PAYLOAD_NAME][0]

    def swap(writer: PdfWriter) -> None:
        _drop_payload(writer)
        writer.add_attachment(PAYLOAD_NAME, ten_payload)

    verdict = verify_pdf(_rewritten(one_year, swap), KEY)
    assert (verdict.reason, verdict.code) == ("altered", statement_code(ten_years(), ISSUED_AT,
                                                                        KEY))


def test_a_genuine_statement_stays_genuine_when_a_label_changes(
        one_year: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # The catalog now says "Saldo total" for "Total balance": a statement rendered today
    # draws other pages, the one issued before is still genuine.
    original = Catalog.render

    def relabelled(self: Catalog, text: Text, locale: str) -> str:
        return "Saldo total" if text.msgid == "Total balance" else original(self, text, locale)

    monkeypatch.setattr(Catalog, "render", relabelled)
    today = render(Catalog())
    assert "Saldo total" in PdfReader(io.BytesIO(today)).pages[0].extract_text()
    assert pages_digest(PdfReader(io.BytesIO(today))) != pages_digest(
        PdfReader(io.BytesIO(one_year)))
    assert verify_pdf(one_year, KEY).reason == "ok"


def test_verifying_needs_no_renderer(one_year: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if fpdf2 (or its fonts) had changed beyond recognition: neither can be imported.
    for module in ("fpdf", "fontTools", "matplotlib", "statements.pdf", "statements.fonts"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError):
        import statements.pdf  # noqa: F401
    verdict = verify_pdf(one_year, KEY)
    assert (verdict.genuine, verdict.reason) == (True, "ok")
    assert verify_pdf(_edit_page(one_year, lambda c: c.replace(b"Tj", b"TJ", 1)),
                      KEY).reason == "altered"


def test_only_a_statement_can_be_sealed() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    plain = io.BytesIO()
    writer.write(plain)
    with pytest.raises(ValueError, match="no payload"):
        sign_statement(plain.getvalue(), KEY)


def test_a_file_ending_in_a_cross_reference_stream_is_sealed_whole(catalog: Catalog) -> None:
    # fpdf2 writes a classic cross-reference table; should it write a stream one day, the
    # seal is still written (the file is written again by pypdf) and checks.
    data = siti()
    rendered = render_statement(data, locale="en", issued_at=ISSUED_AT,
                                code=statement_code(data, ISSUED_AT, KEY),
                                verify_url=VERIFY_URL, catalog=catalog)
    writer = PdfWriter(PdfReader(io.BytesIO(rendered)), incremental=True)
    writer.add_metadata({"/Subject": "JHT"})
    updated = io.BytesIO()
    writer.write(updated)
    streamed = updated.getvalue()
    last_xref = int(streamed[streamed.rindex(b"startxref") + 9:].split()[0])
    assert not streamed.startswith(b"xref", last_xref)
    sealed = sign_statement(streamed, KEY)
    assert not sealed.startswith(rendered)
    assert verify_pdf(sealed, KEY).reason == "ok"


def _with_code(pdf: bytes, code: object) -> bytes:
    reader = PdfReader(io.BytesIO(pdf))
    payload = json.loads(reader.attachments[PAYLOAD_NAME][0])
    payload["code"] = code
    writer = PdfWriter(clone_from=reader)
    _drop_payload(writer)
    writer.add_attachment(PAYLOAD_NAME, json.dumps(payload).encode())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("code", ["ÄBCDEFGHJK", "\ud800", 12345])
def test_a_code_that_is_not_ascii_text_is_refused_not_a_crash(one_year: bytes,
                                                               code: object) -> None:
    verdict = verify_pdf(_with_code(one_year, code), KEY)
    assert (verdict.genuine, verdict.reason) == (False, "bad_code")


@pytest.mark.parametrize("entry", ["/OpenAction", "/AA", "/AcroForm", "/OCProperties"])
def test_an_entry_that_acts_when_the_file_opens_makes_it_altered(one_year: bytes,
                                                                 entry: str) -> None:
    def add(writer: PdfWriter) -> None:
        writer._root_object[NameObject(entry)] = DictionaryObject(  # noqa: SLF001
            {NameObject("/S"): NameObject("/JavaScript"),
             NameObject("/JS"): TextStringObject("this.getField('total').value = 999")})

    assert verify_pdf(_rewritten(one_year), KEY).genuine  # saved again: still genuine
    verdict = verify_pdf(_rewritten(one_year, add), KEY)
    assert (verdict.genuine, verdict.reason) == (False, "altered")
