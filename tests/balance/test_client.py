"""The HTTP balance client against small misbehaving aiohttp servers on loopback.

Every server counts the requests it receives, so retries, the circuit breaker and the cache
are checked by what actually reached the network. No test sleeps: slow handlers wait on an
event released at teardown, timeouts and backoffs are a few milliseconds, the breaker's clock
is injected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from balance.breaker import CircuitBreaker
from balance.client import HttpBalanceService
from flows.ports import (
    BalanceServiceUnavailable,
    Contribution,
    ContributionPage,
    Employer,
    IdentityMatch,
    JhtBalance,
    MemberSummary,
    PensionMonths,
    StoreUnavailable,
)
from storage.sessions import MemorySessionStore

TOKEN = "s3cret-token-value"
KPJ = "12345678901"
NIK = "3171014501900001"
AS_OF = date(2024, 6, 30)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SUMMARY = {"kpj": KPJ, "name": "Siti Rahayu", "status": "active", "segment": "PU",
           "employer": {"npp": "12345678", "name": "PT Maju Bersama"},
           "kpjs": ["99999999999", KPJ]}
BALANCE = {"kpj": KPJ, "as_of": "2024-06-30", "currency": "IDR", "employer_part": 3_700_000,
           "employee_part": 2_000_000, "development": 512_345, "total": 6_212_345,
           "last_period": "2024-05", "pending_years": [2023]}
PAGE = {"kpj": KPJ, "year": 2024, "page": 1, "page_size": 2, "pages": 3, "total": 5,
        "years": [2024, 2023],
        "items": [{"period": "2024-05", "wage": 5_000_000, "employer_part": 185_000,
                   "employee_part": 100_000, "paid_on": "2024-06-10",
                   "employer": {"npp": "12345678", "name": "PT Maju Bersama"}},
                  {"period": "2024-04", "wage": 5_000_000, "employer_part": 185_000,
                   "employee_part": 100_000, "paid_on": "2024-05-10", "employer": None}]}
JP = {"kpj": KPJ, "months": 41, "first_period": "2021-01", "last_period": "2024-05"}
PERIODS = {"kpj": KPJ, "periods": ["2024-03", "2024-04", "2024-06"]}
IDENTITY = {"match": True, "kpj": KPJ, "name": "Siti Rahayu",
            "contact": {"phone": "+6281234567890", "email": "siti@example.com"},
            "masked_contact": {"phone": "0812****7890", "email": "s***@example.com"}}
NOT_FOUND = {"error": {"code": "not_found", "message": "unknown kpj"}}


def ok(body: object) -> web.Response:
    return web.json_response(body)


@dataclass
class Server:
    url: str
    requests: list[web.Request] = field(default_factory=list)

    @property
    def hits(self) -> int:
        return len(self.requests)


class Servers:
    """Starts loopback servers for one test and stops them (and their slow handlers)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self._servers: list[TestServer] = []

    async def start(self, handler: Handler) -> Server:
        server = Server(url="")

        async def counted(request: web.Request) -> web.StreamResponse:
            server.requests.append(request)
            if request.can_read_body:
                await request.read()
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", counted)
        test_server = TestServer(app)
        await test_server.start_server()
        self._servers.append(test_server)
        server.url = str(test_server.make_url("/"))
        return server

    async def script(self, *responses: Callable[[], web.Response]) -> Server:
        """A server answering with ``responses`` in turn, the last one forever after."""
        queue = list(responses)

        async def handler(_request: web.Request) -> web.StreamResponse:
            return (queue.pop(0) if len(queue) > 1 else queue[0])()

        return await self.start(handler)

    async def close(self) -> None:
        self.release.set()
        for server in self._servers:
            await server.close()


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    servers = Servers()
    yield servers
    await servers.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


ClientFactory = Callable[..., HttpBalanceService]


@pytest.fixture
async def make_client(clock: FakeClock) -> AsyncIterator[ClientFactory]:
    clients: list[HttpBalanceService] = []

    def make(url: str, **options: Any) -> HttpBalanceService:
        settings: dict[str, Any] = {"timeout": 0.5, "retries": 2, "backoff": 0.001,
                                    "clock": clock}
        settings.update(options)
        client = HttpBalanceService(url, TOKEN, **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(autouse=True)
def no_secrets_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever a test does, the client's logs never hold the token, a KPJ, a NIK or a body."""
    caplog.set_level(logging.DEBUG, logger="balance.client")
    yield
    for record in caplog.records:
        text = record.getMessage()
        for secret in (TOKEN, KPJ, NIK, "Siti", "as_of=", "<html"):
            assert secret not in text, record


def state(breaker: CircuitBreaker) -> str:
    """The state, read through a function so that mypy does not narrow it between calls."""
    return breaker.state


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- well-formed answers -----------------------------------------------------------------------


async def test_every_method_parses_into_the_port_types(servers: Servers,
                                                       make_client: ClientFactory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        routes: dict[str, object] = {
            "/v1/identity/verify": IDENTITY, f"/v1/members/{KPJ}": SUMMARY,
            f"/v1/members/{KPJ}/jht-balance": BALANCE,
            f"/v1/members/{KPJ}/contributions": PAGE, f"/v1/members/{KPJ}/jp": JP,
            f"/v1/members/{KPJ}/contribution-periods": PERIODS}
        return ok(routes[request.path])

    server = await servers.start(handler)
    client = make_client(server.url)
    employer = Employer(npp="12345678", name="PT Maju Bersama")

    assert await client.verify_identity(NIK, KPJ, date(1990, 1, 5)) == IdentityMatch(
        kpj=KPJ, name="Siti Rahayu", phone="+6281234567890", email="siti@example.com")
    assert await client.member_summary(KPJ) == MemberSummary(
        kpj=KPJ, name="Siti Rahayu", status="active", segment="PU", employer=employer,
        kpjs=("99999999999", KPJ))
    assert await client.jht_balance(KPJ, AS_OF) == JhtBalance(
        kpj=KPJ, as_of=AS_OF, employer_part=3_700_000, employee_part=2_000_000,
        development=512_345, total=6_212_345, last_period="2024-05", pending_years=(2023,))
    assert await client.contributions(KPJ, year=2024, page=1, page_size=2) == ContributionPage(
        kpj=KPJ, year=2024, page=1, page_size=2, pages=3, total=5, years=(2024, 2023),
        items=(Contribution(period="2024-05", wage=5_000_000, employer_part=185_000,
                            employee_part=100_000, paid_on=date(2024, 6, 10),
                            employer=employer),
               Contribution(period="2024-04", wage=5_000_000, employer_part=185_000,
                            employee_part=100_000, paid_on=date(2024, 5, 10),
                            employer=None)))
    assert await client.pension_months(KPJ) == PensionMonths(
        kpj=KPJ, months=41, first_period="2021-01", last_period="2024-05")

    assert await client.contribution_periods(KPJ) == ("2024-03", "2024-04", "2024-06")

    identity, summary, balance, contributions, jp, periods = server.requests
    assert periods.method == "GET" and periods.query_string == ""
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in server.requests)
    assert identity.method == "POST" and identity.query_string == ""
    assert json.loads(await identity.read()) == {"nik": NIK, "kpj": KPJ,
                                                 "birth_date": "1990-01-05"}
    assert summary.method == "GET"
    assert dict(balance.query) == {"as_of": "2024-06-30"}
    assert dict(contributions.query) == {"year": "2024", "page": "1", "page_size": "2"}
    assert jp.method == "GET"


async def test_a_null_contact_is_an_empty_string(servers: Servers,
                                                make_client: ClientFactory) -> None:
    no_email = _with(IDENTITY, contact={"phone": "+6281234567890", "email": None},
                     masked_contact={"phone": "0812****7890", "email": None})
    server = await servers.script(lambda: ok(no_email))
    client = make_client(server.url)
    match = await client.verify_identity(NIK, KPJ, date(1990, 1, 5))
    assert match is not None and match.email == "" and match.phone == "+6281234567890"


async def test_no_match_and_unknown_kpj_are_none(servers: Servers,
                                                 make_client: ClientFactory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/v1/identity/verify":
            return ok({"match": False})
        return web.json_response(NOT_FOUND, status=404)

    server = await servers.start(handler)
    client = make_client(server.url)
    assert await client.verify_identity(NIK, KPJ, date(1990, 1, 5)) is None
    assert await client.member_summary(KPJ) is None
    assert await client.jht_balance(KPJ, AS_OF) is None
    assert await client.contributions(KPJ) is None
    assert await client.pension_months(KPJ) is None
    assert server.hits == 5  # a 404 is an answer: not retried


async def test_malformed_identifiers_are_none_without_a_request(
        servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(lambda: ok(SUMMARY))
    client = make_client(server.url)
    assert await client.member_summary("../admin") is None
    assert await client.jht_balance("1234567890", AS_OF) is None
    assert await client.contributions("1234567890a") is None
    assert await client.pension_months("") is None
    assert await client.verify_identity("317101450190000", KPJ, date(1990, 1, 5)) is None
    assert await client.verify_identity(NIK, "１２３４５６７８９０１", date(1990, 1, 5)) is None
    assert server.hits == 0


@pytest.mark.parametrize(("page", "page_size"), [(0, 12), (1, 0), (1, 101)])
async def test_a_page_out_of_range_is_a_value_error(page: int, page_size: int,
                                                    make_client: ClientFactory) -> None:
    client = make_client(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ValueError):
        await client.contributions(KPJ, page=page, page_size=page_size)


async def test_base_url_may_have_a_path_and_a_trailing_slash(
        servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(lambda: ok(JP))
    client = make_client(server.url + "balance/")
    assert await client.pension_months(KPJ) is not None
    assert server.requests[0].path == f"/balance/v1/members/{KPJ}/jp"


# -- faults --------------------------------------------------------------------------------------


async def test_a_slow_service_times_out_after_the_retries(
        servers: Servers, make_client: ClientFactory, caplog: pytest.LogCaptureFixture) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await servers.release.wait()
        return ok(BALANCE)

    server = await servers.start(slow)
    client = make_client(server.url, timeout=0.05, retries=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING, logger="balance.client"), \
            pytest.raises(BalanceServiceUnavailable, match="timeout"):
        await client.jht_balance(KPJ, AS_OF)
    assert loop.time() - started < 1.0
    # Two attempts, each timed out. Counted by the client: in a clean-clone CI run the retry
    # sometimes timed out before the server saw its request.
    attempts = [r.getMessage() for r in caplog.records if "failed: timeout" in r.getMessage()]
    assert attempts == ["balance service jht-balance attempt 1 failed: timeout",
                        "balance service jht-balance attempt 2 failed: timeout"]
    assert server.hits >= 1


async def test_a_500_then_a_200_is_retried_and_succeeds(servers: Servers,
                                                        make_client: ClientFactory) -> None:
    server = await servers.script(lambda: web.json_response({"error": {"code": "internal"}},
                                                            status=500),
                                  lambda: ok(BALANCE))
    client = make_client(server.url)
    balance = await client.jht_balance(KPJ, AS_OF)
    assert balance is not None and balance.total == 6_212_345
    assert server.hits == 2


async def test_the_identity_check_is_retried_too(servers: Servers,
                                                 make_client: ClientFactory) -> None:
    server = await servers.script(lambda: web.Response(status=503), lambda: ok(IDENTITY))
    client = make_client(server.url)
    assert await client.verify_identity(NIK, KPJ, date(1990, 1, 5)) is not None
    assert server.hits == 2


async def test_always_500_gives_up_then_the_breaker_fails_fast(
        servers: Servers, make_client: ClientFactory, clock: FakeClock) -> None:
    healthy = False

    async def handler(_request: web.Request) -> web.StreamResponse:
        return ok(JP) if healthy else web.Response(status=500)

    server = await servers.start(handler)
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout=30, clock=clock)
    client = make_client(server.url, retries=2, breaker=breaker)

    with pytest.raises(BalanceServiceUnavailable, match="gave up after 3 attempts"):
        await client.pension_months(KPJ)
    assert server.hits == 3
    with pytest.raises(BalanceServiceUnavailable, match="circuit open"):
        await client.pension_months(KPJ)  # failures 4 and 5 open it before a third attempt
    assert server.hits == 5 and state(breaker) == "open"
    for _ in range(3):
        with pytest.raises(BalanceServiceUnavailable, match="circuit open"):
            await client.pension_months(KPJ)
    assert server.hits == 5  # failing fast: no request at all

    healthy = True
    clock.now += 30  # half-open: one probe goes through and closes the circuit
    assert await client.pension_months(KPJ) is not None
    assert server.hits == 6 and state(breaker) == "closed"


async def test_a_failed_half_open_probe_reopens(servers: Servers, make_client: ClientFactory,
                                                clock: FakeClock) -> None:
    server = await servers.script(lambda: web.Response(status=500))
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
    client = make_client(server.url, retries=2, breaker=breaker)
    with pytest.raises(BalanceServiceUnavailable, match="circuit open"):
        await client.member_summary(KPJ)
    assert server.hits == 1
    clock.now += 30
    with pytest.raises(BalanceServiceUnavailable, match="circuit open"):
        await client.member_summary(KPJ)  # the probe fails; the retry is refused
    assert server.hits == 2 and state(breaker) == "open"


async def test_the_default_breaker_uses_the_injected_clock(
        servers: Servers, make_client: ClientFactory, clock: FakeClock) -> None:
    answers = [lambda: web.Response(status=500)] * 5 + [lambda: ok(JP)]
    server = await servers.script(*answers)
    client = make_client(server.url, retries=0)
    for _ in range(5):
        with pytest.raises(BalanceServiceUnavailable):
            await client.pension_months(KPJ)
    assert server.hits == 5
    with pytest.raises(BalanceServiceUnavailable, match="circuit open"):
        await client.pension_months(KPJ)
    clock.now += 30
    assert await client.pension_months(KPJ) is not None
    assert server.hits == 6


async def test_malformed_json_is_unavailable_and_not_retried(
        servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(
        lambda: web.Response(text='{"kpj": "12345678901", "total": 1',
                             content_type="application/json"))
    client = make_client(server.url)
    with pytest.raises(BalanceServiceUnavailable, match="not JSON"):
        await client.jht_balance(KPJ, AS_OF)
    assert server.hits == 1


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def _without(base: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in base.items() if key != name}


BAD_BALANCES = [
    _with(BALANCE, total="6212345"),
    _with(BALANCE, total=6_212_345.0),
    _with(BALANCE, development=True),
    _with(BALANCE, employer_part=None),
    _with(BALANCE, employee_part=-1, total=6_212_344 - 2_000_000),
    _with(BALANCE, total=6_212_346),  # not the sum of its parts
    _with(BALANCE, as_of="30-06-2024"),
    _with(BALANCE, as_of="2024-02-30"),
    _with(BALANCE, as_of="2024-07-01"),  # not the date asked for
    _with(BALANCE, kpj="23456789012"),  # another member's balance
    _with(BALANCE, currency="USD"),
    _with(BALANCE, last_period="2024-13"),
    _with(BALANCE, pending_years="2023"),
    _with(BALANCE, pending_years=[2023.0]),
    _without(BALANCE, "development"),
    _without(BALANCE, "currency"),
    [BALANCE],
    "6212345",
]


@pytest.mark.parametrize("body", BAD_BALANCES)
async def test_wrong_balance_fields_are_unavailable(body: object, servers: Servers,
                                                    make_client: ClientFactory) -> None:
    server = await servers.script(lambda: ok(body))
    client = make_client(server.url)
    with pytest.raises(BalanceServiceUnavailable, match="malformed"):
        await client.jht_balance(KPJ, AS_OF)
    assert server.hits == 1


BAD_ITEM = dict(PAGE["items"][0])  # type: ignore[index]
BAD_ANSWERS: list[tuple[str, object]] = [
    ("member", _with(SUMMARY, status="deceased")),
    ("member", _with(SUMMARY, segment="pu")),
    ("member", _with(SUMMARY, kpjs=["99999999999"])),  # this KPJ missing
    ("member", _with(SUMMARY, kpjs=KPJ)),
    ("member", _with(SUMMARY, employer={"npp": 12345678, "name": "PT"})),
    ("member", _without(SUMMARY, "employer")),
    ("contributions", _with(PAGE, year="2024")),
    ("contributions", _with(PAGE, year=2023)),  # not the year asked for
    ("contributions", _with(PAGE, page=0)),
    ("contributions", _with(PAGE, page_size=1)),  # two items on a page of one
    ("contributions", _with(PAGE, items=[_with(BAD_ITEM, paid_on=None)])),
    ("contributions", _with(PAGE, items=[_with(BAD_ITEM, wage="5000000")])),
    ("contributions", _with(PAGE, items=[_with(BAD_ITEM, period="2024-5")])),
    ("contributions", _with(PAGE, items=["2024-05"])),
    ("periods", _with(PERIODS, periods=["2024-04", "2024-03"])),  # not ascending
    ("periods", _with(PERIODS, periods=["2024-04", "2024-04"])),  # repeated
    ("periods", _with(PERIODS, periods=["2024-4"])),
    ("periods", _with(PERIODS, periods="2024-04")),
    ("periods", _with(PERIODS, kpj="23456789012")),
    ("periods", _without(PERIODS, "periods")),
    ("jp", _with(JP, months="41")),
    ("jp", _with(JP, first_period=202101)),
    ("identity", {"match": "false"}),
    ("identity", {"match": True, "kpj": KPJ, "name": "Siti"}),  # no contact
    ("identity", _with(IDENTITY, kpj="23456789012")),
    ("identity", {}),
    ("identity", _with(IDENTITY, contact={"phone": 6281234567890, "email": None})),
    ("identity", _with(IDENTITY, contact={"phone": "+6281234567890"})),
]


@pytest.mark.parametrize(("route", "body"), BAD_ANSWERS)
async def test_wrong_fields_of_every_answer_are_unavailable(
        route: str, body: object, servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(lambda: ok(body))
    client = make_client(server.url)
    with pytest.raises(BalanceServiceUnavailable, match="malformed"):
        if route == "member":
            await client.member_summary(KPJ)
        elif route == "contributions":
            await client.contributions(KPJ, year=2024, page=1, page_size=2)
        elif route == "jp":
            await client.pension_months(KPJ)
        elif route == "periods":
            await client.contribution_periods(KPJ)
        else:
            await client.verify_identity(NIK, KPJ, date(1990, 1, 5))


async def test_an_html_502_page_is_retried_then_unavailable(
        servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(lambda: web.Response(
        status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"))
    client = make_client(server.url)
    with pytest.raises(BalanceServiceUnavailable, match="HTTP 502"):
        await client.member_summary(KPJ)
    assert server.hits == 3


@pytest.mark.parametrize("response", [
    lambda: web.Response(text="<html>maintenance</html>", content_type="text/html"),
    lambda: web.Response(text=json.dumps(BALANCE), content_type="text/plain"),
    lambda: web.Response(body=json.dumps(BALANCE).encode("utf-16"),
                         content_type="application/json"),
    lambda: web.Response(text="NaN", content_type="application/json"),
    lambda: web.Response(text=json.dumps(_with(BALANCE, total=float("inf"))),
                         content_type="application/json"),
])
async def test_a_200_that_is_not_contract_json_is_unavailable(
        response: Callable[[], web.Response], servers: Servers,
        make_client: ClientFactory) -> None:
    server = await servers.script(response)
    client = make_client(server.url)
    with pytest.raises(BalanceServiceUnavailable, match="malformed"):
        await client.jht_balance(KPJ, AS_OF)
    assert server.hits == 1


async def test_an_oversized_answer_is_unavailable(servers: Servers,
                                                  make_client: ClientFactory) -> None:
    huge = _with(SUMMARY, name="x" * (2 << 20))
    server = await servers.script(lambda: ok(huge))
    client = make_client(server.url)
    with pytest.raises(BalanceServiceUnavailable, match="too large"):
        await client.member_summary(KPJ)


async def test_a_refused_connection_is_retried_then_unavailable(
        make_client: ClientFactory) -> None:
    client = make_client(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(BalanceServiceUnavailable, match="gave up after 3 attempts"):
        await client.member_summary(KPJ)


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_token_is_unavailable_not_retried_and_logged_once(
        status: int, servers: Servers, make_client: ClientFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    server = await servers.script(lambda: web.json_response(
        {"error": {"code": "unauthorized", "message": "bad token"}}, status=status))
    client = make_client(server.url)
    for _ in range(3):
        with pytest.raises(BalanceServiceUnavailable, match=str(status)):
            await client.jht_balance(KPJ, AS_OF)
    assert server.hits == 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "BALANCE_SERVICE_TOKEN" in errors[0].getMessage()


@pytest.mark.parametrize("response", [
    lambda: web.json_response({"error": {"code": "invalid_request", "message": "x"}},
                              status=400),
    lambda: web.Response(status=404, text="<html>Not Found</html>", content_type="text/html"),
    lambda: web.json_response({"error": {"code": "no_route"}}, status=404),
    lambda: web.Response(status=302, headers={"Location": "http://example.com/"}),
    lambda: web.json_response({"error": {"code": "busy"}}, status=429),
])
async def test_other_4xx_and_foreign_404_are_unavailable_without_retry(
        response: Callable[[], web.Response], servers: Servers,
        make_client: ClientFactory) -> None:
    server = await servers.script(response)
    client = make_client(server.url)
    with pytest.raises(BalanceServiceUnavailable):
        await client.member_summary(KPJ)
    assert server.hits == 1


async def test_4xx_do_not_open_the_breaker(servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(lambda: web.json_response(NOT_FOUND, status=404))
    breaker = CircuitBreaker(failure_threshold=1)
    client = make_client(server.url, breaker=breaker)
    for _ in range(3):
        assert await client.member_summary(KPJ) is None
    assert state(breaker) == "closed" and server.hits == 3


async def test_a_404_of_the_identity_route_is_unavailable(servers: Servers,
                                                          make_client: ClientFactory) -> None:
    server = await servers.script(lambda: web.json_response(NOT_FOUND, status=404))
    client = make_client(server.url)
    with pytest.raises(BalanceServiceUnavailable):
        await client.verify_identity(NIK, KPJ, date(1990, 1, 5))


async def test_a_cancelled_probe_gives_the_probe_back(
        servers: Servers, make_client: ClientFactory, clock: FakeClock) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await servers.release.wait()
        return ok(JP)

    server = await servers.start(slow)
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
    breaker.record_failure()
    clock.now += 30
    client = make_client(server.url, breaker=breaker)
    probe = asyncio.create_task(client.pension_months(KPJ))
    while not server.hits:
        await asyncio.sleep(0.001)
    with pytest.raises(BalanceServiceUnavailable, match="circuit open"):
        await client.pension_months(KPJ)  # only one probe at a time
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.allow()  # the slot was given back


# -- cache ---------------------------------------------------------------------------------------


class FailingStore:
    """A key-value store whose backend is down."""

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, name: str) -> str | None:
        self.calls += 1
        raise StoreUnavailable("down")

    async def get_many(self, names: Sequence[str]) -> list[str | None]:
        self.calls += 1
        raise StoreUnavailable("down")

    async def put(self, name: str, value: str, ttl: float) -> None:
        self.calls += 1
        raise StoreUnavailable("down")

    async def put_if_absent(self, name: str, value: str, ttl: float) -> bool:
        raise StoreUnavailable("down")

    async def incr(self, name: str, ttl: float) -> int:
        raise StoreUnavailable("down")

    async def delete(self, *names: str) -> None:
        raise StoreUnavailable("down")


class RecordingStore(MemorySessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[tuple[str, str, float]] = []

    async def put(self, name: str, value: str, ttl: float) -> None:
        self.puts.append((name, value, ttl))
        await super().put(name, value, ttl)


async def test_five_refreshes_cost_one_request(servers: Servers,
                                               make_client: ClientFactory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return ok(_with(BALANCE, as_of=request.query["as_of"]))

    server = await servers.start(handler)
    store = RecordingStore()
    client = make_client(server.url, cache=store, cache_ttl=45)
    answers = [await client.jht_balance(KPJ, AS_OF) for _ in range(5)]
    assert server.hits == 1
    assert answers[0] is not None and all(answer == answers[0] for answer in answers)
    [(name, _value, ttl)] = store.puts
    assert name.startswith("bal:") and len(name) == 4 + 64 and KPJ not in name
    assert ttl == 45

    later = await client.jht_balance(KPJ, date(2024, 7, 1))  # another date, another question
    assert later is not None and later.as_of == date(2024, 7, 1)
    assert server.hits == 2


async def test_summary_and_contributions_are_cached_per_parameters(
        servers: Servers, make_client: ClientFactory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/contributions"):
            return ok(_with(PAGE, page=int(request.query["page"])))
        return ok(SUMMARY)

    server = await servers.start(handler)
    client = make_client(server.url, cache=MemorySessionStore())
    for _ in range(3):
        await client.member_summary(KPJ)
        first = await client.contributions(KPJ, year=2024, page=1, page_size=2)
        second = await client.contributions(KPJ, year=2024, page=2, page_size=2)
    assert first is not None and second is not None and second.page == 2
    assert first.items[0].paid_on == date(2024, 6, 10)  # dates survive the cache
    assert server.hits == 3


async def test_contribution_periods_are_cached_and_unknown_kpjs_are_none(
        servers: Servers, make_client: ClientFactory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if KPJ in request.path:
            return ok(PERIODS)
        return web.json_response(NOT_FOUND, status=404)

    server = await servers.start(handler)
    client = make_client(server.url, cache=MemorySessionStore())
    for _ in range(3):
        assert await client.contribution_periods(KPJ) == ("2024-03", "2024-04", "2024-06")
    assert server.hits == 1
    assert await client.contribution_periods("99999999999") is None
    assert await client.contribution_periods("1234") is None  # malformed: no request
    assert server.hits == 2


async def test_identity_and_pension_are_never_cached(servers: Servers,
                                                     make_client: ClientFactory) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return ok(IDENTITY if request.path == "/v1/identity/verify" else JP)

    server = await servers.start(handler)
    store = RecordingStore()
    client = make_client(server.url, cache=store)
    for _ in range(2):
        await client.verify_identity(NIK, KPJ, date(1990, 1, 5))
        await client.pension_months(KPJ)
    assert server.hits == 4 and store.puts == []


async def test_unknown_kpj_is_not_cached(servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(lambda: web.json_response(NOT_FOUND, status=404),
                                  lambda: ok(SUMMARY))
    client = make_client(server.url, cache=MemorySessionStore())
    assert await client.member_summary(KPJ) is None
    assert await client.member_summary(KPJ) is not None
    assert server.hits == 2


async def test_a_failing_store_still_answers_from_the_network(
        servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(lambda: ok(BALANCE))
    store = FailingStore()
    client = make_client(server.url, cache=store)
    for _ in range(3):
        balance = await client.jht_balance(KPJ, AS_OF)
        assert balance is not None and balance.total == 6_212_345
    assert server.hits == 3 and store.calls == 6


async def test_a_corrupt_cached_value_is_ignored(servers: Servers,
                                                 make_client: ClientFactory) -> None:
    server = await servers.script(lambda: ok(BALANCE))
    store = RecordingStore()
    client = make_client(server.url, cache=store)
    await client.jht_balance(KPJ, AS_OF)
    name = store.puts[0][0]
    await store.put(name, '{"total": "lots"}', 60)
    balance = await client.jht_balance(KPJ, AS_OF)
    assert balance is not None and balance.total == 6_212_345
    assert server.hits == 2


async def test_a_cached_answer_is_served_while_the_circuit_is_open(
        servers: Servers, make_client: ClientFactory) -> None:
    server = await servers.script(lambda: ok(BALANCE), lambda: web.Response(status=500))
    breaker = CircuitBreaker(failure_threshold=1)
    client = make_client(server.url, cache=MemorySessionStore(), breaker=breaker)
    assert await client.jht_balance(KPJ, AS_OF) is not None
    with pytest.raises(BalanceServiceUnavailable):
        await client.member_summary(KPJ)
    assert state(breaker) == "open"
    assert await client.jht_balance(KPJ, AS_OF) is not None
    assert server.hits == 2


# -- session ownership ---------------------------------------------------------------------------


async def test_a_given_session_is_used_and_left_open(servers: Servers) -> None:
    server = await servers.script(lambda: ok(JP))
    async with aiohttp.ClientSession() as session:
        client = HttpBalanceService(server.url, TOKEN, session=session)
        assert await client.pension_months(KPJ) is not None
        await client.aclose()
        assert not session.closed


async def test_an_own_session_is_closed_by_aclose(servers: Servers) -> None:
    server = await servers.script(lambda: ok(JP))
    async with HttpBalanceService(server.url, TOKEN) as client:
        assert await client.pension_months(KPJ) is not None
    await client.aclose()  # twice is harmless


@pytest.mark.parametrize("options", [{"timeout": 0}, {"retries": -1}, {"cache_ttl": 0},
                                     {"backoff": -0.1}])
def test_rejects_nonsense_settings(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HttpBalanceService("http://127.0.0.1:1", TOKEN, **options)  # type: ignore[arg-type]


def test_rejects_an_empty_token() -> None:
    with pytest.raises(ValueError):
        HttpBalanceService("http://127.0.0.1:1", "")
