"""The app's document maker: statements issued sealed and verifiable, and the warm-up that
makes a process's first statement and chart in its pools at start-up."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

import app.documents
import statements.chart
from app.documents import DocumentsUnavailable, PooledDocumentMaker, statement_key
from flows.i18n import Catalog
from statements.signing import verify_pdf
from tests.statements.samples import siti

SECRET = b"documents-test-secret-0123456789"


@pytest.fixture
async def maker() -> AsyncIterator[PooledDocumentMaker]:
    made = PooledDocumentMaker(secret=SECRET, verify_url="https://bot.example/verify/",
                                 catalog=Catalog())
    try:
        yield made
    finally:
        made.close()


async def test_a_statement_is_issued_sealed_and_verifies(maker: PooledDocumentMaker) -> None:
    issued = await maker.statement(siti(), locale="en",
                                   issued_at=datetime(2026, 11, 20, 3, 4, 5, 678, tzinfo=UTC))
    verdict = verify_pdf(issued.pdf, statement_key(SECRET))
    assert (verdict.genuine, verdict.code) == (True, issued.code)
    assert verify_pdf(issued.pdf, statement_key(b"another secret")).reason == "bad_code"


async def test_warm_makes_a_statement_and_a_chart_in_their_pools(
        maker: PooledDocumentMaker, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    threads: dict[str, str] = {}
    real_statement, real_chart = app.documents._signed_statement, statements.chart.render_chart

    def statement(*args: object, **kwargs: object) -> bytes:
        threads["statement"] = threading.current_thread().name
        return real_statement(*args, **kwargs)  # type: ignore[arg-type]

    def chart(*args: object, **kwargs: object) -> bytes:
        threads["chart"] = threading.current_thread().name
        return real_chart(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.documents, "_signed_statement", statement)
    monkeypatch.setattr(statements.chart, "render_chart", chart)
    with caplog.at_level(logging.INFO, logger="app.documents"):
        await maker.warm()
    assert threads["statement"].startswith("statement_")
    assert threads["chart"].startswith("chart_")
    assert "documents warmed up in" in caplog.text
    assert "Warm Up" not in caplog.text


async def test_warm_up_statement_is_a_genuine_statement(maker: PooledDocumentMaker,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[bytes] = []
    real = app.documents._signed_statement

    def keep(*args: object, **kwargs: object) -> bytes:
        made.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(app.documents, "_signed_statement", keep)
    await maker.warm()
    assert len(made) == 1 and verify_pdf(made[0], statement_key(SECRET)).genuine


async def test_warm_of_a_closed_maker_logs_and_does_not_raise(
        caplog: pytest.LogCaptureFixture) -> None:
    closed = PooledDocumentMaker(secret=SECRET, verify_url="https://bot.example/verify",
                                   catalog=Catalog())
    closed.close()
    with caplog.at_level(logging.INFO, logger="app.documents"):
        await closed.warm()
    assert "document warm-up incomplete" in caplog.text
    assert "DocumentsUnavailable" in caplog.text
    with pytest.raises(DocumentsUnavailable):
        await closed.statement(siti(), locale="en", issued_at=datetime.now(UTC))


async def test_worker_processes_make_statements_and_charts_off_the_bots_process() -> None:
    from statements.chart import YearBar

    made = PooledDocumentMaker(secret=SECRET, verify_url="https://bot.example/verify",
                               catalog=Catalog(), processes=1)
    try:
        await made.warm()
        issued = await made.statement(siti(), locale="id",
                                      issued_at=datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC))
        chart = await made.chart((YearBar(2025, 1_000_000, 540_000, 60_000, 0),),
                                 locale="en", projection=None)
    finally:
        made.close()
    assert verify_pdf(issued.pdf, statement_key(SECRET)).genuine
    assert chart.startswith(b"\x89PNG")
    assert not any(t.name.startswith(("statement", "chart")) for t in threading.enumerate())


async def test_a_worker_process_that_dies_is_replaced_and_the_document_made(
        caplog: pytest.LogCaptureFixture) -> None:
    import os
    import signal

    made = PooledDocumentMaker(secret=SECRET, verify_url="https://bot.example/verify",
                               catalog=Catalog(), processes=1)
    try:
        first = await made.statement(siti(), locale="en",
                                     issued_at=datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC))
        pids = list(made._statements._processes)  # type: ignore[attr-defined]  # noqa: SLF001
        os.kill(pids[0], signal.SIGKILL)
        await asyncio.sleep(0.5)  # the pool notices its dead worker
        again = await made.statement(siti(), locale="en",
                                     issued_at=datetime(2026, 11, 20, 3, 4, 6, tzinfo=UTC))
    finally:
        made.close()
    assert verify_pdf(first.pdf, statement_key(SECRET)).genuine
    assert verify_pdf(again.pdf, statement_key(SECRET)).genuine
    assert "a document worker process died; starting new ones" in caplog.text
