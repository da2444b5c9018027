"""The reference balance service over HTTP: contract v1, described by ``balance/openapi.yaml``.

:func:`create_app` builds the aiohttp application on a :class:`ReferenceBalanceService`;
:func:`serve` runs it until cancelled (``run_bot.py balance-service``).

* Every ``/v1`` route, and any other path except ``/healthz`` and ``/openapi.yaml``, needs
  ``Authorization: Bearer <token>``, compared in constant time.
* Every failure is a JSON ``{"error": {"code", "message"}}``, aiohttp's own 404, 405 and 413
  included; an unexpected exception is a 500 ``internal`` whose body holds no detail, and a
  failing database a 503 ``internal``.
* The access log names the route template (``/v1/members/{kpj}``), never the path, the query
  string or a body, which can hold a NIK or KPJ.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler, Middleware

from alerts.ports import PostedContribution
from balance.service import MAX_FEED_LIMIT, MAX_PAGE_SIZE, ReferenceBalanceService
from flows.identifiers import mask_email, mask_phone
from flows.ports import BalanceServiceUnavailable, Clock, IdentityMatch
from flows.ports import Contribution as ContributionItem
from flows.ports import Employer as EmployerRef

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
# Western Indonesian Time: UTC+7 all year (no daylight saving since 1964).
JAKARTA = timezone(timedelta(hours=7), "WIB")
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.yaml"})
MAX_BODY_BYTES = 16 * 1024

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(__name__ + ".access")

_KPJ = re.compile(r"[0-9]{11}")
_NIK = re.compile(r"[0-9]{16}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_YEAR = re.compile(r"[0-9]{4}")
_NUMBER = re.compile(r"[0-9]{1,6}")
_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_CURSOR = re.compile(r"[0-9]{1,18}")
DEFAULT_FEED_LIMIT = 1000
_IDENTITY_FIELDS = frozenset({"nik", "kpj", "birth_date"})

_T = TypeVar("_T")


class _SystemClock:
    """The system time (the default when no clock is injected)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ApiError(Exception):
    """A failure answered as the contract's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json(body: Mapping[str, Any], status: int = 200,
          headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    """The contract's error body."""
    return _json({"error": {"code": code, "message": message}}, status, headers)


def route_name(request: web.BaseRequest) -> str:
    """The matched route template, or ``"-"``: never the raw path, which may hold a NIK."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "-"


class RouteAccessLogger(AbstractAccessLogger):
    """Access log lines of method, route template, status and duration only."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log one request."""
        self.logger.info("%s %s %s %.1fms", request.method, route_name(request),
                         response.status, time * 1000)


def _code_for(status: int) -> str:
    if status == 401:
        return "unauthorized"
    if status == 404:
        return "not_found"
    return "internal" if status >= 500 else "invalid_request"


_MESSAGES = {404: "no such route", 405: "method not allowed for this route",
             413: "request body too large"}


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the contract's JSON error."""
    try:
        return await handler(request)
    except ApiError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        message = _MESSAGES.get(exc.status, exc.reason.lower())
        return error_response(exc.status, _code_for(exc.status), message, allow)
    except BalanceServiceUnavailable as exc:
        logger.warning("database unavailable on %s %s: %s", request.method,
                       route_name(request), exc)
        return error_response(503, "internal", "the service is temporarily unavailable")
    except Exception:
        logger.exception("unexpected error on %s %s", request.method, route_name(request))
        return error_response(500, "internal", "internal error")


def _bearer_matches(header: str, token: bytes) -> bool:
    """Whether ``header`` is ``Bearer <token>`` (scheme case-insensitive, constant time)."""
    scheme, _, credentials = header.strip().partition(" ")
    try:
        presented = credentials.strip().encode()
    except UnicodeEncodeError:  # lone surrogates: cannot be the token
        presented = b""
    same = hmac.compare_digest(presented, token)
    return same and scheme.lower() == "bearer"


def _authentication(token: bytes) -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refuse every non-public path without the right bearer token."""
        if request.path not in PUBLIC_PATHS and not _bearer_matches(
                request.headers.get("Authorization", ""), token):
            raise ApiError(401, "unauthorized", "a valid bearer token is required")
        return await handler(request)

    return authenticate


async def _no_store(_request: web.Request, response: web.StreamResponse) -> None:
    """Personal data must not sit in shared caches."""
    response.headers["Cache-Control"] = "no-store"


def _kpj(request: web.Request) -> str:
    kpj = request.match_info["kpj"]
    if not _KPJ.fullmatch(kpj):
        raise _invalid("kpj must be 11 digits")
    return kpj


def _found(value: _T | None) -> _T:
    if value is None:
        raise ApiError(404, "not_found", "no member with this KPJ")
    return value


def _parse_date(text: object, name: str) -> date:
    if isinstance(text, str) and _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise _invalid(f"{name} must be a date YYYY-MM-DD")


def _number(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not _NUMBER.fullmatch(text) or not low <= int(text) <= high:
        raise _invalid(f"{name} must be a whole number from {low} to {high}")
    return int(text)


async def _json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise _invalid("the body must be a JSON object in UTF-8") from None
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object in UTF-8")
    return body


def _employer(employer: EmployerRef | None) -> dict[str, str] | None:
    return None if employer is None else {"npp": employer.npp, "name": employer.name}


def _contribution(item: ContributionItem) -> dict[str, Any]:
    return {"period": item.period, "wage": item.wage, "employer_part": item.employer_part,
            "employee_part": item.employee_part, "paid_on": item.paid_on.isoformat(),
            "employer": _employer(item.employer)}


def _posted(item: PostedContribution) -> dict[str, Any]:
    return {"kpj": item.kpj, "period": item.period, "segment": item.segment,
            "employer_part": item.employer_part, "employee_part": item.employee_part,
            "paid_on": item.paid_on.isoformat()}


def _percent(rate: Decimal) -> str:
    """``7.19`` for ``Decimal("7.1900")``: no exponent, no trailing zeros."""
    return format(rate.normalize(), "f")


def _identity(match: IdentityMatch) -> dict[str, Any]:
    phone, email = match.phone or None, match.email or None
    return {"match": True, "kpj": match.kpj, "name": match.name,
            "contact": {"phone": phone, "email": email},
            "masked_contact": {"phone": mask_phone(phone) if phone else None,
                               "email": mask_email(email) if email else None}}


class _Routes:
    """The handlers of contract v1."""

    def __init__(self, service: ReferenceBalanceService, clock: Clock) -> None:
        self._service = service
        self._clock = clock
        self._openapi = OPENAPI_PATH.read_bytes()

    async def health(self, _request: web.Request) -> web.Response:
        try:
            await self._service.ping()
        except BalanceServiceUnavailable:
            return _json({"status": "unavailable"}, 503)
        return _json({"status": "ok"})

    async def openapi(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/yaml",
                            charset="utf-8")

    async def verify_identity(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if set(body) != _IDENTITY_FIELDS:
            raise _invalid("the body must have exactly the fields nik, kpj and birth_date")
        nik, kpj = body["nik"], body["kpj"]
        if not isinstance(nik, str) or not _NIK.fullmatch(nik):
            raise _invalid("nik must be 16 digits")
        if not isinstance(kpj, str) or not _KPJ.fullmatch(kpj):
            raise _invalid("kpj must be 11 digits")
        birth_date = _parse_date(body["birth_date"], "birth_date")
        match = await self._service.verify_identity(nik, kpj, birth_date)
        return _json(_identity(match) if match else {"match": False})

    async def member(self, request: web.Request) -> web.Response:
        summary = _found(await self._service.member_summary(_kpj(request)))
        return _json({"kpj": summary.kpj, "name": summary.name, "status": summary.status,
                      "segment": summary.segment, "employer": _employer(summary.employer),
                      "kpjs": list(summary.kpjs)})

    async def jht_balance(self, request: web.Request) -> web.Response:
        kpj = _kpj(request)
        text = request.query.get("as_of")
        as_of = (self._clock.now().astimezone(JAKARTA).date() if text is None
                 else _parse_date(text, "as_of"))
        balance = _found(await self._service.jht_balance(kpj, as_of))
        return _json({"kpj": balance.kpj, "as_of": balance.as_of.isoformat(),
                      "currency": "IDR", "employer_part": balance.employer_part,
                      "employee_part": balance.employee_part,
                      "development": balance.development, "total": balance.total,
                      "last_period": balance.last_period,
                      "pending_years": list(balance.pending_years)})

    async def contributions(self, request: web.Request) -> web.Response:
        kpj = _kpj(request)
        year_text = request.query.get("year")
        if year_text is not None and not _YEAR.fullmatch(year_text):
            raise _invalid("year must be a 4-digit year")
        year = None if year_text is None else int(year_text)
        page = _number(request, "page", 1, 1, 999_999)
        page_size = _number(request, "page_size", 12, 1, MAX_PAGE_SIZE)
        found = _found(await self._service.contributions(kpj, year=year, page=page,
                                                         page_size=page_size))
        return _json({"kpj": found.kpj, "year": found.year, "page": found.page,
                      "page_size": found.page_size, "pages": found.pages,
                      "total": found.total, "years": list(found.years),
                      "items": [_contribution(item) for item in found.items]})

    async def contribution_periods(self, request: web.Request) -> web.Response:
        kpj = _kpj(request)
        periods = _found(await self._service.contribution_periods(kpj))
        return _json({"kpj": kpj, "periods": list(periods)})

    async def pension_months(self, request: web.Request) -> web.Response:
        months = _found(await self._service.pension_months(_kpj(request)))
        return _json({"kpj": months.kpj, "months": months.months,
                      "first_period": months.first_period, "last_period": months.last_period})

    async def contribution_changes(self, request: web.Request) -> web.Response:
        since = request.query.get("since", "")
        if since and not _CURSOR.fullmatch(since):
            raise _invalid("since must be a cursor returned by this route")
        limit = _number(request, "limit", DEFAULT_FEED_LIMIT, 1, MAX_FEED_LIMIT)
        page = await self._service.contribution_changes(since, limit)
        return _json({"items": [_posted(item) for item in page.items], "cursor": page.cursor,
                      "more": page.more})

    async def missing_contributions(self, request: web.Request) -> web.Response:
        period = request.query.get("period", "")
        if not _PERIOD.fullmatch(period):
            raise _invalid("period must be YYYY-MM")
        after = request.query.get("after", "")
        if after and not _KPJ.fullmatch(after):
            raise _invalid("after must be 11 digits")
        limit = _number(request, "limit", DEFAULT_FEED_LIMIT, 1, MAX_FEED_LIMIT)
        page = await self._service.missing_contributions(period, after=after, limit=limit)
        return _json({"items": [{"kpj": item.kpj, "segment": item.segment}
                                for item in page.items], "after": page.after})

    async def development_rates(self, _request: web.Request) -> web.Response:
        rates = await self._service.development_rates()
        return _json({"rates": [{"year": year, "rate_percent": _percent(rate)}
                                for year, rate in sorted(rates.items())]})


def create_app(service: ReferenceBalanceService, *, token: str,
               clock: Clock | None = None) -> web.Application:
    """The HTTP application of contract v1 on ``service``; ``token`` must not be empty.

    ``clock`` gives "today" (in Asia/Jakarta) for a balance without ``as_of``.
    """
    if not token:
        raise ValueError("token must not be empty: the service would be open to anyone")
    app = web.Application(middlewares=[_errors, _authentication(token.encode())],
                          client_max_size=MAX_BODY_BYTES)
    routes = _Routes(service, clock or _SystemClock())
    app.router.add_get("/healthz", routes.health)
    app.router.add_get("/openapi.yaml", routes.openapi)
    app.router.add_post("/v1/identity/verify", routes.verify_identity)
    app.router.add_get("/v1/members/{kpj}", routes.member)
    app.router.add_get("/v1/members/{kpj}/jht-balance", routes.jht_balance)
    app.router.add_get("/v1/members/{kpj}/contributions", routes.contributions)
    app.router.add_get("/v1/members/{kpj}/contribution-periods", routes.contribution_periods)
    app.router.add_get("/v1/members/{kpj}/jp", routes.pension_months)
    app.router.add_get("/v1/contributions/changes", routes.contribution_changes)
    app.router.add_get("/v1/contributions/missing", routes.missing_contributions)
    app.router.add_get("/v1/development-rates", routes.development_rates)
    app.on_response_prepare.append(_no_store)
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    """A runner with the privacy-preserving access log."""
    return web.AppRunner(app, access_log_class=RouteAccessLogger, access_log=access_logger)


async def serve(app: web.Application, host: str, port: int,
                started: Callable[[], None] | None = None) -> None:
    """Serve ``app`` on ``host:port`` until cancelled, then close connections cleanly.

    ``started`` is called once the socket listens.
    """
    runner = make_runner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        logger.info("balance service listening on %s port %d", host, port)
        if started is not None:
            started()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


__all__ = ["create_app", "error_response", "make_runner", "serve"]
