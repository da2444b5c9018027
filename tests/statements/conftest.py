"""Fixtures of the statement tests: the catalog and Siti's rendered statements (rendering
costs a tenth of a second, so each is made once per module)."""

from __future__ import annotations

import pytest

from flows.i18n import Catalog
from statements.pdf import render_statement
from statements.signing import sign_statement, statement_code
from tests.statements.samples import ISSUED_AT, KEY, VERIFY_URL, siti, ten_years


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The project's catalogs, not strict: msgids the catalogs do not hold yet read as the
    English source text."""
    return Catalog()


def render(catalog: Catalog, *, years: int = 1, locale: str = "en", key: bytes = KEY) -> bytes:
    """Siti's statement, coded and sealed with ``key`` as issued."""
    data = siti() if years == 1 else ten_years()
    return sign_statement(render_statement(data, locale=locale, issued_at=ISSUED_AT,
                                           code=statement_code(data, ISSUED_AT, key),
                                           verify_url=VERIFY_URL, catalog=catalog), key)


@pytest.fixture(scope="module")
def one_year(catalog: Catalog) -> bytes:
    """Siti's statement for November 2025 to October 2026, in English."""
    return render(catalog)
