"""The change feed over HTTP: the reference service's routes (shapes, 400s, the access log),
and the HTTP client against the real application on loopback and against malformed answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.ports import ChangesPage, MissingMembership, MissingPage, PostedContribution
from balance.client import HttpBalanceService
from balance.demo import DEFAULT_RATES, DEMO_CONTRIBUTIONS, DEMO_RATES
from balance.http_app import access_logger
from balance.service import ReferenceBalanceService, seed_demo_members
from flows.ports import BalanceServiceUnavailable
from tests.balance.conftest import Both
from tests.balance.test_http_app import AUTH, TOKEN, call, serving

SITI = "12345678901"
FIRST = {"kpj": SITI, "period": "2016-01", "segment": "PU", "employer_part": 148_000,
         "employee_part": 80_000, "paid_on": "2016-02-10"}


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[TestClient[Any, Any]]:
    await seed_demo_members(engine)
    async with serving(ReferenceBalanceService(engine)) as client:
        yield client


# ---------------------------------------------------------------------------- the routes


async def test_changes_over_http(client: TestClient[Any, Any]) -> None:
    first = (await call(client, "GET", "/v1/contributions/changes?limit=2")).json()
    assert first["items"][0] == FIRST
    assert (len(first["items"]), first["cursor"], first["more"]) == (2, "2", True)
    default = (await call(client, "GET", "/v1/contributions/changes?since=")).json()
    assert len(default["items"]) == len(DEMO_CONTRIBUTIONS) < 1000  # the default limit
    end = str(len(DEMO_CONTRIBUTIONS))
    assert default["cursor"] == end and default["more"] is False
    at_end = await call(client, "GET", f"/v1/contributions/changes?since={end}&limit=10000")
    assert at_end.json() == {"items": [], "cursor": end, "more": False}
    assert at_end.headers["Cache-Control"] == "no-store"


async def test_missing_and_rates_over_http(client: TestClient[Any, Any]) -> None:
    missing = await call(client, "GET", "/v1/contributions/missing?period=2026-09")
    assert missing.json() == {"items": [{"kpj": SITI, "segment": "PU"}], "after": None}
    november = (await call(client, "GET",
                           "/v1/contributions/missing?period=2026-11&limit=2")).json()
    assert november == {"items": [{"kpj": SITI, "segment": "PU"},
                                  {"kpj": "23456789012", "segment": "PU"}],
                        "after": "23456789012"}
    rest = (await call(client, "GET", "/v1/contributions/missing?period=2026-11"
                       "&after=23456789012&limit=2")).json()
    assert rest == {"items": [{"kpj": "34567890123", "segment": "BPU"}], "after": None}
    rates = (await call(client, "GET", "/v1/development-rates")).json()["rates"]
    assert rates[0] == {"year": 2016, "rate_percent": "7.19"}
    assert {rate["year"]: Decimal(rate["rate_percent"]) for rate in rates} == {
        **DEFAULT_RATES, **DEMO_RATES}
    assert [rate["year"] for rate in rates] == sorted(rate["year"] for rate in rates)
    assert {"year": 2024, "rate_percent": "6"} in rates


BAD_QUERIES = (
    "/v1/contributions/changes?since=x", "/v1/contributions/changes?since=-1",
    "/v1/contributions/changes?since=1.5", "/v1/contributions/changes?limit=0",
    "/v1/contributions/changes?limit=10001", "/v1/contributions/changes?limit=abc",
    "/v1/contributions/changes?limit=", "/v1/contributions/changes?since=" + "9" * 19,
    "/v1/contributions/missing", "/v1/contributions/missing?period=",
    "/v1/contributions/missing?period=2026-13", "/v1/contributions/missing?period=2026-9",
    "/v1/contributions/missing?period=2026-09&after=123",
    "/v1/contributions/missing?period=2026-09&after=1234567890a",
    "/v1/contributions/missing?period=2026-09&limit=10001",
)


async def test_bad_feed_parameters_are_400(client: TestClient[Any, Any]) -> None:
    for url in BAD_QUERIES:
        answer = await call(client, "GET", url)
        assert answer.status == 400, url
        assert answer.json()["error"]["code"] == "invalid_request"


async def test_feed_routes_need_the_token(client: TestClient[Any, Any]) -> None:
    for url in ("/v1/contributions/changes", "/v1/contributions/missing?period=2026-09",
                "/v1/development-rates"):
        answer = await call(client, "GET", url, headers={"Authorization": "Bearer wrong"})
        assert answer.status == 401
        assert answer.json()["error"]["code"] == "unauthorized"


async def test_the_access_log_holds_no_query(engine: AsyncEngine,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=access_logger.name)
    async with serving(ReferenceBalanceService(engine)) as client:
        await call(client, "GET", f"/v1/contributions/missing?period=2026-09&after={SITI}")
        await call(client, "GET", "/v1/contributions/changes?since=12")
    lines = [record.getMessage() for record in caplog.records
             if record.name == access_logger.name]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "GET /v1/contributions/missing 200", "GET /v1/contributions/changes 200"]


# ------------------------------------------------------------ the client against the app


async def test_the_client_reads_the_whole_feed_as_the_service_gives_it(both: Both) -> None:
    since, pages = "", 0
    items: list[PostedContribution] = []
    while True:
        page = await both.remote.contribution_changes(since, 97)
        assert page == await both.local.contribution_changes(since, 97)
        items.extend(page.items)
        since, pages = page.cursor, pages + 1
        if not page.more:
            break
    assert [(item.kpj, item.period) for item in items] == [
        (row.kpj, row.period) for row in DEMO_CONTRIBUTIONS]
    assert len(DEMO_CONTRIBUTIONS) % 97 and pages == -(-len(DEMO_CONTRIBUTIONS) // 97)
    assert await both.remote.contribution_changes(since) == ChangesPage((), since, False)


async def test_the_client_reads_missing_and_rates_as_the_service_gives_them(
        both: Both) -> None:
    for period in ("2026-09", "2026-11", "2016-01", "2030-01"):
        for after in ("", SITI, "99999999999"):
            for limit in (1, 2, 1000):
                assert await both.remote.missing_contributions(
                    period, after=after, limit=limit) == await both.local.missing_contributions(
                    period, after=after, limit=limit)
    assert await both.remote.missing_contributions("2026-09") == MissingPage(
        (MissingMembership(SITI, "PU"),), None)
    assert await both.remote.development_rates() == await both.local.development_rates()


async def test_the_client_refuses_bad_arguments_without_asking(both: Both) -> None:
    async with HttpBalanceService("http://127.0.0.1:1", TOKEN, retries=0) as nowhere:
        for call_bad in (lambda: nowhere.contribution_changes("x"),
                         lambda: nowhere.contribution_changes("", 0),
                         lambda: nowhere.contribution_changes("", 10_001),
                         lambda: nowhere.missing_contributions("2026-13"),
                         lambda: nowhere.missing_contributions("2026-09", after="1"),
                         lambda: nowhere.missing_contributions("2026-09", limit=0)):
            with pytest.raises(ValueError):
                await call_bad()


async def test_a_wrong_token_makes_the_feed_unavailable(both: Both) -> None:
    async with HttpBalanceService(both.url, "not-" + TOKEN, retries=0) as client:
        with pytest.raises(BalanceServiceUnavailable, match="401"):
            await client.contribution_changes()
        with pytest.raises(BalanceServiceUnavailable, match="401"):
            await client.development_rates()


# -------------------------------------------------------- the client on answers made here

ITEM = FIRST


def _answering(body: Any, status: int = 200) -> web.Application:
    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/v1/contributions/changes", handler)
    app.router.add_get("/v1/contributions/missing", handler)
    app.router.add_get("/v1/development-rates", handler)
    return app


@pytest.fixture
async def answering() -> AsyncIterator[Callable[[Any], Any]]:
    servers: list[TestServer] = []
    clients: list[HttpBalanceService] = []

    async def make(body: Any, status: int = 200) -> HttpBalanceService:
        server = TestServer(_answering(body, status))
        await server.start_server()
        servers.append(server)
        client = HttpBalanceService(str(server.make_url("/")), TOKEN, retries=0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for server in servers:
        await server.close()


MALFORMED_CHANGES: tuple[Any, ...] = (
    [], {"items": [], "cursor": 3, "more": False}, {"items": [], "cursor": "x", "more": False},
    {"items": [], "cursor": "3", "more": 1}, {"items": [], "cursor": "3"},
    {"items": [{**ITEM, "segment": "XX"}], "cursor": "3", "more": False},
    {"items": [{**ITEM, "kpj": "123"}], "cursor": "3", "more": False},
    {"items": [{**ITEM, "period": "2016-13"}], "cursor": "3", "more": False},
    {"items": [{**ITEM, "employer_part": -1}], "cursor": "3", "more": False},
    {"items": [{**ITEM, "paid_on": "2016-02-30"}], "cursor": "3", "more": False},
    {"items": [ITEM, ITEM, ITEM], "cursor": "3", "more": True},  # more than the limit 2
)
MALFORMED_MISSING: tuple[Any, ...] = (
    {"items": []}, {"items": [{"kpj": SITI}], "after": None},
    {"items": [{"kpj": SITI, "segment": "PU"}], "after": "23456789012"},
    {"items": [{"kpj": "23456789012", "segment": "PU"}, {"kpj": SITI, "segment": "PU"}],
     "after": None},
    {"items": [], "after": SITI},
)
MALFORMED_RATES: tuple[Any, ...] = (
    {"rates": [{"year": 2020, "rate_percent": 5.63}]},
    {"rates": [{"year": 2020, "rate_percent": "5,63"}]},
    {"rates": [{"year": "2020", "rate_percent": "5.63"}]},
    {"rates": [{"year": 2020, "rate_percent": "5.63"}, {"year": 2020, "rate_percent": "1"}]},
    {"rate": []},
)


async def test_malformed_feed_answers_are_unavailable(answering: Any) -> None:
    for body in MALFORMED_CHANGES:
        client = await answering(body)
        with pytest.raises(BalanceServiceUnavailable, match="malformed"):
            await client.contribution_changes("", 2)
    for body in MALFORMED_MISSING:
        client = await answering(body)
        with pytest.raises(BalanceServiceUnavailable, match="malformed"):
            await client.missing_contributions("2026-09", limit=2)
    for body in MALFORMED_RATES:
        client = await answering(body)
        with pytest.raises(BalanceServiceUnavailable, match="malformed"):
            await client.development_rates()
    not_found = await answering({"error": {"code": "not_found", "message": "no"}}, 404)
    with pytest.raises(BalanceServiceUnavailable, match="404"):
        await not_found.development_rates()


async def test_a_full_page_of_ten_thousand_is_read(answering: Any) -> None:
    items = [{**ITEM, "kpj": f"{index:011d}"} for index in range(10_000)]
    client = await answering({"items": items, "cursor": "10000", "more": True})
    page = await client.contribution_changes("", 10_000)
    assert len(page.items) == 10_000 and page.more and page.cursor == "10000"
    assert page.items[0] == PostedContribution(
        kpj="00000000000", period="2016-01", segment="PU", employer_part=148_000,
        employee_part=80_000, paid_on=date(2016, 2, 10))


async def test_the_first_page_is_asked_without_since(answering: Any) -> None:
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        assert request.headers["Authorization"] == AUTH["Authorization"]
        return web.json_response({"items": [], "cursor": "", "more": False})

    app = web.Application()
    app.router.add_get("/v1/contributions/changes", handler)
    server = TestServer(app)
    await server.start_server()
    try:
        async with HttpBalanceService(str(server.make_url("/")), TOKEN) as client:
            await client.contribution_changes()
            await client.contribution_changes("41", 7)
    finally:
        await server.close()
    assert seen == [{"limit": "1000"}, {"since": "41", "limit": "7"}]
