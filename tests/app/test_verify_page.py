"""``GET /verify/<code>``: a small page in both languages that says whether a statement was
issued, showing only what its holder already has; everything escaped; 404 when unknown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import web

from app.metrics import Metrics
from app.verify_page import normalized_code, page_for, pick_page_locale
from app.web import add_verify_route, create_web_app
from flows.i18n import Catalog
from flows.ports import DatabaseUnavailable, StatementRecord
from flows.types import SessionKey
from storage.statements import MemoryStatementIssueStore
from tests.conftest import WebClient

CODE = "ABCD2345EF"
RECORD = StatementRecord(code=CODE, initials="S.R.", kpj_masked="*******8901",
                         period_from="2025-11", period_to="2026-10", total=98_765_432,
                         issued_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
CATALOG = Catalog()  # not strict: the page's texts reach the catalogs with this change


async def app_with(*records: StatementRecord) -> web.Application:
    store = MemoryStatementIssueStore()
    for record in records:
        await store.record(SessionKey("telegram", "1"), record)
    app = create_web_app(metrics=Metrics(), checks={})
    add_verify_route(app, store, CATALOG)
    return app


async def test_a_genuine_code_shows_the_summary_in_indonesian_by_default(
        web_client: WebClient) -> None:
    http = await web_client(await app_with(RECORD))
    response = await http.get(f"/verify/{CODE}")
    page = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Content-Language"] == "id"
    assert response.headers["X-Robots-Tag"].startswith("noindex")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert '<html lang="id">' in page
    for shown in (CODE, "S.R.", "*******8901", "Rp98.765.432", "20 November 2026, pukul 16:30 WIB",
                  "November 2025", "Oktober 2026"):
        assert shown in page, shown
    assert "<script" not in page


@pytest.mark.parametrize(("query", "header"), [
    ("?lang=en", None), ("", "en-US,en;q=0.9,id;q=0.8"), ("?lang=EN", "id"),
])
async def test_english_by_query_or_by_the_browsers_preference(
        web_client: WebClient, query: str, header: str | None) -> None:
    http = await web_client(await app_with(RECORD))
    headers = {"Accept-Language": header} if header else {}
    response = await http.get(f"/verify/{CODE}{query}", headers=headers)
    page = await response.text()
    assert response.status == 200
    assert '<html lang="en">' in page
    assert "Genuine statement" in page
    assert "Rp98,765,432" in page
    assert "November 2025" in page and "October 2026" in page


async def test_a_code_typed_loosely_is_found(web_client: WebClient) -> None:
    http = await web_client(await app_with(RECORD))
    assert (await http.get("/verify/abcd-2345-ef")).status == 200


@pytest.mark.parametrize("code", ["ZZZZ2345EF", "not-a-code", "O0O0O0O0O0", "x" * 300])
async def test_an_unknown_code_is_a_404_page(web_client: WebClient, code: str) -> None:
    http = await web_client(await app_with(RECORD))
    response = await http.get(f"/verify/{code}?lang=en")
    page = await response.text()
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "Statement not found" in page
    assert "S.R." not in page and "8901" not in page


async def test_everything_the_page_shows_is_escaped(web_client: WebClient) -> None:
    hostile = StatementRecord(code="HJKL2345MN", initials="<script>alert(1)</script>",
                              kpj_masked='"><img src=x>', period_from="2025-01",
                              period_to="2025-12", total=1, issued_at=RECORD.issued_at)
    http = await web_client(await app_with(hostile))
    page = await (await http.get("/verify/HJKL2345MN")).text()
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    not_found = await (await http.get("/verify/%3Cb%3Ehi%3C%2Fb%3E")).text()
    assert "<b>hi" not in not_found


async def test_a_database_outage_is_a_503_not_a_404(web_client: WebClient) -> None:
    class Down(MemoryStatementIssueStore):
        async def lookup(self, code: str) -> StatementRecord | None:
            raise DatabaseUnavailable("down")

    app = create_web_app(metrics=Metrics(), checks={})
    add_verify_route(app, Down(), CATALOG)
    http = await web_client(app)
    response = await http.get(f"/verify/{CODE}")
    assert response.status == 503
    assert response.headers["Retry-After"] == "30"


@pytest.mark.parametrize(("query", "header", "expected"), [
    (None, None, "id"), ("en", None, "en"), ("id", "en", "id"), ("fr", "en", "en"),
    (None, "fr-FR,en;q=0.5", "en"), (None, "en;q=0.2,id;q=0.9", "id"), (None, "in-ID", "id"),
    (None, "en;q=0", "id"), (None, "en;q=abc", "en"),
])
def test_the_page_language(query: str | None, header: str | None, expected: str) -> None:
    assert pick_page_locale(query, header) == expected


def test_codes_are_normalized_or_refused() -> None:
    assert normalized_code(" abcd 2345 ef ") == CODE
    assert normalized_code("ABCD2345E") is None
    assert normalized_code("ABCD2345E1") is None  # 1 is not in the alphabet
    assert normalized_code("ABCD2345EFG") is None


def test_the_page_is_small() -> None:
    assert len(page_for(RECORD, CODE, "id", CATALOG).html.encode()) < 4096
