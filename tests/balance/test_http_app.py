"""The reference balance service over real HTTP on loopback, checked against balance/openapi.yaml.

Every documented route, method and status is exercised on SQLite and PostgreSQL, and every
JSON body is validated against the schema the document gives for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.ports import ChangesPage, MissingPage
from balance.demo import DEMO_MEMBERS
from balance.http_app import (
    OPENAPI_PATH,
    RouteAccessLogger,
    access_logger,
    create_app,
    serve,
)
from balance.service import ReferenceBalanceService, seed_demo_members
from flows.ports import (
    ContributionPage,
    IdentityMatch,
    JhtBalance,
    MemberSummary,
    PensionMonths,
)
from storage.db import create_engine
from tests.balance.test_service_queries import ALL_NIKS, BPU, NEW, OLD, UNKNOWN, insert_sample

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SITI = DEMO_MEMBERS[0]
EVERY_NIK = {member.nik for member in DEMO_MEMBERS} | set(ALL_NIKS)
BASE = "urn:balance-openapi"
# 20:00 UTC on 30 June is already 1 July in Jakarta (UTC+7).
NOW = datetime(2019, 6, 30, 20, 0, tzinfo=UTC)
MEMBER_ROUTES = ("/v1/members/{kpj}", "/v1/members/{kpj}/jht-balance",
                 "/v1/members/{kpj}/contributions", "/v1/members/{kpj}/contribution-periods",
                 "/v1/members/{kpj}/jp")
# The feed's routes: a valid query, and a bad one (None: the route takes no parameter).
FEED_ROUTES: tuple[tuple[str, str, str | None], ...] = (
    ("/v1/contributions/changes", "?since=3&limit=2", "?since=x"),
    ("/v1/contributions/missing", "?period=2026-09&limit=2", "?period=2026-13"),
    ("/v1/development-rates", "", None),
)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@dataclass
class Answer:
    status: int
    content_type: str
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Contract:
    """The OpenAPI document, and which (path, method, status) the tests have seen answered."""

    doc: dict[str, Any] = field(
        default_factory=lambda: yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8")))
    seen: set[tuple[str, str, int]] = field(default_factory=set)
    bodies: list[str] = field(default_factory=list)

    def documented(self) -> set[tuple[str, str, int]]:
        return {(path, method, int(status))
                for path, operations in self.doc["paths"].items()
                for method, operation in operations.items()
                for status in operation["responses"]}

    def _response(self, path: str, method: str, status: int) -> dict[str, Any]:
        responses = self.doc["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method} {path} answered undocumented {status}"
        response: dict[str, Any] = responses[str(status)]
        if "$ref" in response:
            response = self.doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        return response

    def validate(self, value: Any, schema: dict[str, Any]) -> None:
        registry: Registry[Any] = Registry().with_resource(
            BASE, DRAFT202012.create_resource(self.doc))
        rooted = {"$ref": BASE + schema["$ref"]} if "$ref" in schema else schema
        Draft202012Validator(rooted, registry=registry,
                             format_checker=Draft202012Validator.FORMAT_CHECKER).validate(value)

    def check(self, path: str, method: str, answer: Answer) -> None:
        """``answer`` is a documented status of the route with a body of the documented type."""
        content = self._response(path, method, answer.status)["content"]
        assert answer.content_type in content, answer.content_type
        if answer.content_type == "application/json":
            self.validate(answer.json(), content["application/json"]["schema"])
        self.seen.add((path, method, answer.status))
        self.bodies.append(answer.text)


async def call(client: TestClient[Any, Any], method: str, url: str, *,
               headers: dict[str, str] | None = None, data: bytes | None = None,
               body: Any = None) -> Answer:
    kwargs: dict[str, Any] = {"headers": AUTH if headers is None else headers}
    if data is not None:
        kwargs["data"] = data
    if body is not None:
        kwargs["json"] = body
    async with client.request(method, url, **kwargs) as response:
        return Answer(response.status, response.content_type, await response.text(),
                      dict(response.headers))


@pytest.fixture
async def engine(engine: AsyncEngine) -> AsyncEngine:
    """The migrated engine, demo-seeded, plus the sample rows of ``test_service_queries``."""
    await seed_demo_members(engine)
    await insert_sample(engine)
    return engine


@asynccontextmanager
async def serving(service: ReferenceBalanceService) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(service, token=TOKEN, clock=FixedClock())
    server = TestServer(app, host="127.0.0.1")
    # The access log as serve() configures it (TestServer's constructor ignores these).
    await server.start_server(access_log_class=RouteAccessLogger, access_log=access_logger)
    async with TestClient(server) as client:
        yield client


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[TestClient[Any, Any]]:
    async with serving(ReferenceBalanceService(engine)) as client:
        yield client


@pytest.fixture
async def down_client(
        unreachable_engine: AsyncEngine) -> AsyncIterator[TestClient[Any, Any]]:
    """A service whose database refuses connections."""
    async with serving(ReferenceBalanceService(unreachable_engine)) as client:
        yield client


class BrokenService(ReferenceBalanceService):
    """Every query fails with an unexpected exception whose message holds a NIK."""

    def _boom(self) -> RuntimeError:
        return RuntimeError(f"unexpected failure for {SITI.nik}")

    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        raise self._boom()

    async def member_summary(self, kpj: str) -> MemberSummary | None:
        raise self._boom()

    async def jht_balance(self, kpj: str, as_of: date) -> JhtBalance | None:
        raise self._boom()

    async def contributions(self, kpj: str, *, year: int | None = None, page: int = 1,
                            page_size: int = 12) -> ContributionPage | None:
        raise self._boom()

    async def contribution_periods(self, kpj: str) -> tuple[str, ...] | None:
        raise self._boom()

    async def pension_months(self, kpj: str) -> PensionMonths | None:
        raise self._boom()

    async def contribution_changes(self, since: str = "", limit: int = 1000) -> ChangesPage:
        raise self._boom()

    async def missing_contributions(self, period: str, *, after: str = "",
                                    limit: int = 1000) -> MissingPage:
        raise self._boom()

    async def development_rates(self) -> Mapping[int, Decimal]:
        raise self._boom()


def _verify_body(nik: str = SITI.nik, kpj: str = SITI.kpj,
                 birth_date: str = SITI.birth_date.isoformat()) -> dict[str, str]:
    return {"nik": nik, "kpj": kpj, "birth_date": birth_date}


async def test_every_documented_route_answers_as_documented(
        client: TestClient[Any, Any], down_client: TestClient[Any, Any],
        engine: AsyncEngine) -> None:
    contract = Contract()
    verify = "/v1/identity/verify"

    health = await call(client, "GET", "/healthz", headers={})
    contract.check("/healthz", "get", health)
    assert health.json() == {"status": "ok"}
    document = await call(client, "GET", "/openapi.yaml", headers={})
    contract.check("/openapi.yaml", "get", document)
    assert yaml.safe_load(document.text) == contract.doc

    match = await call(client, "POST", verify, body=_verify_body())
    contract.check(verify, "post", match)
    assert match.json() == {
        "match": True, "kpj": SITI.kpj, "name": SITI.name,
        "contact": {"phone": SITI.phone, "email": SITI.email},
        "masked_contact": {"phone": "0812****7890", "email": "s***@example.com"}}
    no_match = await call(client, "POST", verify, body=_verify_body(birth_date="1990-01-06"))
    contract.check(verify, "post", no_match)
    assert no_match.json() == {"match": False}
    for bad in (_verify_body(nik="317101450190000"), _verify_body(kpj="1234567890x")):
        contract.check(verify, "post", await call(client, "POST", verify, body=bad))
    contract.check(verify, "post", await call(client, "POST", verify, headers={},
                                              body=_verify_body()))

    for template in MEMBER_ROUTES:
        ok = await call(client, "GET", template.format(kpj=OLD))
        contract.check(template, "get", ok)
        assert ok.status == 200 and ok.json()["kpj"] == OLD
        for kpj, status in (("1234567890", 400), ("1234567890a", 400), (UNKNOWN, 404)):
            answer = await call(client, "GET", template.format(kpj=kpj))
            contract.check(template, "get", answer)
            assert answer.status == status
        unauthorized = await call(client, "GET", template.format(kpj=OLD), headers={})
        contract.check(template, "get", unauthorized)
        assert unauthorized.status == 401

    for path, good, bad in FEED_ROUTES:
        ok = await call(client, "GET", path + good)
        contract.check(path, "get", ok)
        assert ok.status == 200
        if bad is not None:
            invalid = await call(client, "GET", path + bad)
            contract.check(path, "get", invalid)
            assert invalid.status == 400
        unauthorized = await call(client, "GET", path + good, headers={})
        contract.check(path, "get", unauthorized)
        assert unauthorized.status == 401

    async with serving(BrokenService(engine)) as broken:
        for template in MEMBER_ROUTES:
            failed = await call(broken, "GET", template.format(kpj=OLD))
            contract.check(template, "get", failed)
            assert failed.json() == {"error": {"code": "internal", "message": "internal error"}}
        for path, good, _ in FEED_ROUTES:
            failed = await call(broken, "GET", path + good)
            contract.check(path, "get", failed)
            assert failed.status == 500
        contract.check(verify, "post", await call(broken, "POST", verify, body=_verify_body()))

    contract.check("/healthz", "get", await call(down_client, "GET", "/healthz", headers={}))
    for template in MEMBER_ROUTES:
        unavailable = await call(down_client, "GET", template.format(kpj=OLD))
        contract.check(template, "get", unavailable)
        assert unavailable.status == 503
    for path, good, _ in FEED_ROUTES:
        unavailable = await call(down_client, "GET", path + good)
        contract.check(path, "get", unavailable)
        assert unavailable.status == 503
    contract.check(verify, "post", await call(down_client, "POST", verify, body=_verify_body()))

    assert contract.seen == contract.documented()
    for body in contract.bodies:
        assert not any(nik in body for nik in EVERY_NIK)


async def test_balance_over_http_equals_the_hand_computation(
        client: TestClient[Any, Any]) -> None:
    # The figures of test_service_queries.test_imported_member_balance_equals_the_hand_computation.
    answer = await call(client, "GET", f"/v1/members/{OLD}/jht-balance?as_of=2019-06-30")
    assert answer.json() == {"kpj": OLD, "as_of": "2019-06-30", "currency": "IDR",
                             "employer_part": 962_000, "employee_part": 520_000,
                             "development": 134_003, "total": 1_616_003,
                             "last_period": "2019-01", "pending_years": []}
    assert answer.headers["Cache-Control"] == "no-store"


async def test_as_of_defaults_to_today_in_jakarta(client: TestClient[Any, Any]) -> None:
    answer = await call(client, "GET", f"/v1/members/{OLD}/jht-balance")
    assert answer.json()["as_of"] == "2019-07-01"
    # 2019-05, paid on 2019-07-10, is still unpaid on 1 July.
    assert answer.json()["last_period"] == "2019-01"


async def test_member_summary_and_jp_over_http(client: TestClient[Any, Any]) -> None:
    summary = await call(client, "GET", f"/v1/members/{NEW}")
    assert summary.json() == {"kpj": NEW, "name": "Siti Contoh", "status": "active",
                              "segment": "PU",
                              "employer": {"npp": "33334444", "name": "PT Kedua Jaya"},
                              "kpjs": [OLD, NEW]}
    own_account = await call(client, "GET", f"/v1/members/{BPU}")
    assert own_account.json()["employer"] is None
    jp = await call(client, "GET", f"/v1/members/{BPU}/jp")
    assert jp.json() == {"kpj": BPU, "months": 0, "first_period": None, "last_period": None}


async def test_contributions_paging_and_year_filter_over_http(
        client: TestClient[Any, Any]) -> None:
    answer = await call(client, "GET",
                        f"/v1/members/{NEW}/contributions?year=2021&page=2&page_size=5")
    body = answer.json()
    assert {key: body[key] for key in ("year", "page", "page_size", "pages", "total", "years")} \
        == {"year": 2021, "page": 2, "page_size": 5, "pages": 3, "total": 12,
            "years": [2022, 2021, 2020]}
    assert [item["period"] for item in body["items"]] == [f"2021-{m:02d}"
                                                          for m in range(7, 2, -1)]
    assert body["items"][0] == {"period": "2021-07", "wage": 4_000_000,
                                "employer_part": 148_000, "employee_part": 80_000,
                                "paid_on": "2021-08-10",
                                "employer": {"npp": "33334444", "name": "PT Kedua Jaya"}}
    default = (await call(client, "GET", f"/v1/members/{NEW}/contributions")).json()
    assert (default["year"], default["page"], default["page_size"], len(default["items"])) == (
        None, 1, 12, 12)


async def test_contribution_periods_over_http(client: TestClient[Any, Any]) -> None:
    answer = await call(client, "GET", f"/v1/members/{OLD}/contribution-periods")
    assert answer.json() == {"kpj": OLD, "periods": ["2016-11", "2016-12", "2017-06",
                                                     "2018-03", "2019-01", "2019-05"]}
    siti = (await call(client, "GET", f"/v1/members/{SITI.kpj}/contribution-periods")).json()
    assert "2026-09" not in siti["periods"] and siti["periods"][-1] == "2026-10"
    assert siti["periods"] == sorted(set(siti["periods"]))


async def test_bad_contribution_parameters_are_400(client: TestClient[Any, Any]) -> None:
    for query in ("page=0", "page=-1", "page=abc", "page=", "page_size=0", "page_size=101",
                  "page_size=1.5", "year=20x1", "year=12345", "year=", "year=٢٠٢١"):
        answer = await call(client, "GET", f"/v1/members/{NEW}/contributions?{query}")
        assert answer.status == 400, query
        assert answer.json()["error"]["code"] == "invalid_request"


async def test_bad_as_of_is_400(client: TestClient[Any, Any]) -> None:
    for as_of in ("2019-02-30", "20190630", "30-06-2019", "", "2019-6-30"):
        answer = await call(client, "GET", f"/v1/members/{OLD}/jht-balance?as_of={as_of}")
        assert answer.status == 400, as_of
        assert answer.json() == {"error": {"code": "invalid_request",
                                           "message": "as_of must be a date YYYY-MM-DD"}}


BAD_AUTHORIZATIONS: tuple[dict[str, str], ...] = (
    {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong"},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN.upper()}"}, {"Authorization": TOKEN},
)


async def test_missing_or_wrong_token_is_401(client: TestClient[Any, Any]) -> None:
    for headers in BAD_AUTHORIZATIONS:
        for method, url in (("GET", f"/v1/members/{OLD}/jht-balance"),
                            ("POST", "/v1/identity/verify"), ("GET", "/v1/nowhere"),
                            ("GET", "/nowhere")):
            answer = await call(client, method, url, headers=headers, body=_verify_body())
            assert answer.status == 401, (headers, url)
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["WWW-Authenticate"] == "Bearer"


async def test_bearer_scheme_is_case_insensitive(client: TestClient[Any, Any]) -> None:
    answer = await call(client, "GET", f"/v1/members/{OLD}",
                        headers={"Authorization": f"bearer {TOKEN}"})
    assert answer.status == 200


MALFORMED_BODIES: tuple[bytes, ...] = (
    b"", b"{", b"[]", b'"text"', b"null", b"\xff\xfe{}",
    json.dumps({**_verify_body(), "extra": 1}).encode(),
    json.dumps({"nik": SITI.nik, "kpj": SITI.kpj}).encode(),
    json.dumps({**_verify_body(), "nik": int(SITI.nik)}).encode(),
    json.dumps(_verify_body(nik="３１７１０１４５０１９００００１")).encode(),
    json.dumps(_verify_body(birth_date="1990-02-30")).encode(),
    json.dumps(_verify_body(birth_date="05-01-1990")).encode(),
)


async def test_malformed_identity_bodies_are_400(client: TestClient[Any, Any]) -> None:
    for data in MALFORMED_BODIES:
        answer = await call(client, "POST", "/v1/identity/verify",
                            headers={**AUTH, "Content-Type": "application/json"}, data=data)
        assert answer.status == 400, data
        assert answer.json()["error"]["code"] == "invalid_request"
        assert not any(nik in answer.text for nik in EVERY_NIK)


async def test_undocumented_routes_and_methods_are_json(client: TestClient[Any, Any]) -> None:
    missing = await call(client, "GET", "/v1/nowhere")
    assert (missing.status, missing.json()["error"]["code"]) == (404, "not_found")
    trailing = await call(client, "GET", f"/v1/members/{OLD}/")
    assert (trailing.status, trailing.content_type) == (404, "application/json")
    wrong_method = await call(client, "DELETE", f"/v1/members/{OLD}")
    assert (wrong_method.status, wrong_method.json()["error"]["code"]) == (405,
                                                                          "invalid_request")
    assert "GET" in wrong_method.headers["Allow"]
    too_big = await call(client, "POST", "/v1/identity/verify", data=b"{" + b" " * 100_000)
    assert (too_big.status, too_big.json()["error"]["code"]) == (413, "invalid_request")


async def test_unexpected_errors_leak_nothing(engine: AsyncEngine,
                                              caplog: pytest.LogCaptureFixture) -> None:
    async with serving(BrokenService(engine)) as broken:
        answer = await call(broken, "POST", "/v1/identity/verify", body=_verify_body())
    assert answer.status == 500
    assert answer.json() == {"error": {"code": "internal", "message": "internal error"}}
    assert "unexpected error on POST /v1/identity/verify" in caplog.text


async def test_access_log_holds_no_query_string_body_or_identifier(
        engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=access_logger.name)
    # Leaving the block stops the server, which waits for the access log lines.
    async with serving(ReferenceBalanceService(engine)) as client:
        await call(client, "GET", f"/v1/members/{OLD}/jht-balance?as_of=2019-06-30")
        await call(client, "POST", "/v1/identity/verify", body=_verify_body())
        await call(client, "GET", f"/v1/members/{SITI.nik}")
    lines = [record.getMessage() for record in caplog.records
             if record.name == access_logger.name]
    assert len(lines) == 3
    assert lines[0].startswith("GET /v1/members/{kpj}/jht-balance 200 ")
    assert lines[1].startswith("POST /v1/identity/verify 200 ")
    for line in lines:
        assert "?" not in line and "as_of" not in line and OLD not in line
        assert not any(nik in line for nik in EVERY_NIK)


def test_openapi_document_validates() -> None:
    validate_spec(Contract().doc)


def test_an_empty_token_is_refused(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ValueError, match="token"):
        create_app(ReferenceBalanceService(engine), token="")


@pytest.fixture
def free_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port


async def test_serve_listens_until_cancelled(engine: AsyncEngine, free_port: int) -> None:
    app = create_app(ReferenceBalanceService(engine), token=TOKEN)
    started = asyncio.Event()
    task = asyncio.create_task(serve(app, "127.0.0.1", free_port, started=started.set))
    await asyncio.wait_for(started.wait(), 10)
    url = f"http://127.0.0.1:{free_port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/healthz") as response:
            assert (response.status, await response.json()) == (200, {"status": "ok"})
        async with session.get(f"{url}/v1/members/{OLD}/jp", headers=AUTH) as response:
            assert (await response.json())["months"] == 6
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz"):
            pass
