"""The :class:`~flows.ports.DocumentMaker` of the app: the pure document package
(:mod:`statements`) run in worker processes, so that a slow PDF never delays another chat.

Worker processes, not threads, in production: fpdf2 and matplotlib are pure Python for the
most part and hold the interpreter lock, so in threads a few PDFs a second raised the other
chats' p99 from 12 ms to 750 ms on the Telegram load bench (README, "Figures"). The workers
are started by a fork server (the bot's own threads and event loop are never forked) and load
the catalogs once. Threads remain for tests (``processes=0``), where start-up time matters more.

Statements are signed with a key derived from the process secret (:func:`statement_key`), the
same in every process that shares the secret, so any of them (and ``run_bot.py
verify-statement``) can check a statement another issued. Statements and charts have a pool
each, bounded: a burst of requests queues here instead of taking every core. Nothing of a
document's content is logged. A worker's first statement and first chart are slow (the fonts
cut to size, matplotlib's import and font cache): :meth:`PooledDocumentMaker.warm` pays that
at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING

from flows.i18n import Catalog
from flows.ports import IssuedStatement, PortUnavailable
from statements.data import StatementData, StatementMonth, utc_seconds
from statements.pdf import render_statement
from statements.signing import sign_statement, statement_code, summary_of

if TYPE_CHECKING:
    from statements.chart import YearBar
    from statements.projection import Projection

__all__ = ["STATEMENT_KEY_LABEL", "DocumentsUnavailable", "PooledDocumentMaker",
           "statement_key"]

log = logging.getLogger(__name__)
STATEMENT_KEY_LABEL = b"statement-v1"


class DocumentsUnavailable(PortUnavailable):
    """A document could not be made just now (the renderer failed, or the process is
    stopping); the member hears the engine's polite "try again" of a port's failure."""


def statement_key(secret: bytes) -> bytes:
    """The key that signs statements: ``HMAC-SHA256(secret, b"statement-v1")``, so the
    process secret itself never signs a document."""
    return hmac.new(secret, STATEMENT_KEY_LABEL, hashlib.sha256).digest()


class PooledDocumentMaker:
    """Statements (PDF) and charts (PNG) made in bounded pools: ``processes`` worker processes
    shared by both, or, with ``processes=0``, threads (``statement_workers`` and
    ``chart_workers``).

    ``verify_url`` is the public address of ``/verify`` (the QR code adds ``/<code>``);
    ``catalog`` renders the documents' texts in threads; worker processes load the default
    catalogs (``locales/``), which is what the bot's messages use."""

    def __init__(self, *, secret: bytes, verify_url: str, catalog: Catalog,
                 statement_workers: int = 2, chart_workers: int = 1,
                 processes: int = 0) -> None:
        self._key = statement_key(secret)
        self._verify_url = verify_url.rstrip("/")
        self._catalog: Catalog | None = catalog
        self._statements: Executor
        self._charts: Executor
        self._workers = processes
        self._closed = False
        if processes > 0:
            self._catalog = None  # each worker loads its own
            self._statements = self._charts = self._process_pool()
        else:
            self._statements = ThreadPoolExecutor(statement_workers, "statement")
            self._charts = ThreadPoolExecutor(chart_workers, "chart")

    async def statement(self, data: StatementData, *, locale: str,
                        issued_at: datetime) -> IssuedStatement:
        """The signed statement of ``data`` in ``locale``, issued at ``issued_at`` (kept to
        the second, in UTC, as the code signs it)."""
        issued_at = utc_seconds(issued_at)
        code = statement_code(data, issued_at, self._key)
        render = partial(_signed_statement, data, locale=locale, issued_at=issued_at,
                         code=code, verify_url=self._verify_url, catalog=self._catalog,
                         key=self._key)
        pdf = await self._run(self._statements, render, "statement")
        return IssuedStatement(code=code, pdf=pdf, summary=summary_of(data, issued_at, code))

    async def chart(self, bars: Sequence[YearBar], *, locale: str,
                    projection: Projection | None) -> bytes:
        """The balance chart of ``bars`` (PNG), with ``projection``'s line when given."""
        render = partial(_chart, tuple(bars), locale=locale, catalog=self._catalog,
                         projection=projection)
        return await self._run(self._charts, render, "chart")

    async def warm(self) -> None:
        """Make one small statement and one chart (with a projection) in the pools and throw
        them away, so that the first member's document does not pay the process's one-off
        costs (seconds: fonts cut to size, matplotlib's import and font cache). The time it
        took is logged; a failure is logged by its class and leaves the maker as it was
        (documents are then slow once, not refused). Meant to run as a background task at
        start-up (``app.compose.background``): members' documents made meanwhile queue
        behind it in the pools, no longer than they would have waited anyway."""
        from statements.chart import YearBar
        from statements.projection import project

        started = time.perf_counter()
        workers = max(self._workers, 1)
        bar = YearBar(_WARM_DAY.year, employer=1_000_000, employee=540_000, development=60_000,
                      missing_months=1)
        projection = project(balance=bar.total, monthly_wage=5_000_000,
                             birth_date=date(1990, 1, 1), today=_WARM_DAY, rate=0.06,
                             wage_growth=0.05)
        results = await asyncio.gather(  # one of each per worker process, as far as it goes
            *(self.statement(_WARM_STATEMENT, locale="id", issued_at=datetime.now(UTC))
              for _ in range(workers)),
            *(self.chart((bar,), locale="id", projection=projection) for _ in range(workers)),
            return_exceptions=True)
        elapsed = time.perf_counter() - started
        failed = [type(result).__name__ for result in results if isinstance(result, Exception)]
        if failed:
            log.warning("document warm-up incomplete after %.2f s (%s)", elapsed,
                        ", ".join(failed))
        else:
            log.info("documents warmed up in %.2f s", elapsed)

    def close(self) -> None:
        """Stop the workers (documents being made are finished first)."""
        self._closed = True
        self._statements.shutdown(wait=True)
        self._charts.shutdown(wait=True)

    def _process_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self._workers, multiprocessing.get_context("forkserver"),
                                   initializer=_start_worker)

    async def _run(self, pool: Executor, render: partial[bytes], what: str) -> bytes:
        """``render`` in ``pool``; any failure (a closed pool included) is
        :class:`DocumentsUnavailable`, logged by its class only: its message might quote the
        document's content. A worker process that died (killed, out of memory) breaks its
        whole pool: the pool is replaced and the document tried once more, so one crash does
        not refuse every document until the bot restarts."""
        loop = asyncio.get_running_loop()
        try:
            try:
                return await loop.run_in_executor(pool, render)
            except BrokenProcessPool:
                if self._closed or pool is not self._statements:
                    raise
                log.warning("a document worker process died; starting new ones")
                self._statements = self._charts = self._process_pool()
                pool.shutdown(wait=False)
                return await loop.run_in_executor(self._statements, render)
        except Exception as exc:
            log.error("the %s could not be made (%s)", what, type(exc).__name__)
            raise DocumentsUnavailable(f"the {what} could not be made") from exc


_WORKER_CATALOG: Catalog | None = None
"""The catalogs of a worker process, loaded once by :func:`_start_worker`."""


def _start_worker() -> None:
    """A worker process's start: its catalogs, and a lower CPU priority (nice 10), so that on
    a machine with few cores the bot's event loop wins a core over a PDF being made."""
    global _WORKER_CATALOG  # noqa: PLW0603 - one per worker process, set at its start
    _WORKER_CATALOG = Catalog()
    with contextlib.suppress(OSError):  # not permitted on some platforms: run at the same
        os.nice(10)


def _catalog_or_workers(catalog: Catalog | None) -> Catalog:
    if catalog is not None:
        return catalog
    if _WORKER_CATALOG is None:
        raise RuntimeError("a worker process without its catalogs")
    return _WORKER_CATALOG


def _signed_statement(data: StatementData, *, locale: str, issued_at: datetime, code: str,
                      verify_url: str, catalog: Catalog | None, key: bytes) -> bytes:
    """The statement rendered and sealed (:func:`statements.signing.sign_statement`)."""
    return sign_statement(render_statement(data, locale=locale, issued_at=issued_at, code=code,
                                           verify_url=verify_url,
                                           catalog=_catalog_or_workers(catalog)), key)


def _chart(bars: tuple[YearBar, ...], *, locale: str, catalog: Catalog | None,
           projection: Projection | None) -> bytes:
    """The chart (:func:`statements.chart.render_chart`)."""
    from statements.chart import render_chart

    return render_chart(bars, locale=locale, catalog=_catalog_or_workers(catalog),
                        projection=projection)


_WARM_DAY = date(2026, 1, 15)
_WARM_STATEMENT = StatementData(
    name="Warm Up", nik_masked="", kpj="00000000000", segment="PU", employer="PT Warm Up",
    period_label_from="2025-11", period_label_to="2025-12",
    months=(StatementMonth("2025-11", 5_000_000, 185_000, 100_000, date(2025, 12, 10)),
            StatementMonth("2025-12", 0, 0, 0, None)),
    balance_as_of=_WARM_DAY, employer_total=185_000, employee_total=100_000, development=0,
    balance_total=285_000)
"""A statement of made-up data (no member's), rendered by :meth:`PooledDocumentMaker.warm`."""
