"""The :class:`~flows.ports.BalanceService` port over the balance service's HTTP contract v1.

Fault behaviour (every failure reaches the caller as :class:`BalanceServiceUnavailable`, never
as a guessed or partial answer):

- each attempt has a total ``timeout``; timeouts, connection errors and 5xx answers are retried
  ``retries`` times with exponential backoff and jitter; other answers are never retried;
- a :class:`~balance.breaker.CircuitBreaker` counts failed attempts and, while open, fails fast
  without a network call;
- every answer is parsed strictly (content type, JSON, field types, dates, the KPJ asked for);
  anything unexpected is a failure. 404 ``not_found`` and ``{"match": false}`` are ``None``;
- with a ``cache``, balance, summary, contribution and period answers are kept ``cache_ttl``
  seconds in the key-value store under ``bal:<sha256>`` names; a store failure falls back to
  the network. The change feed (:class:`~alerts.ports.ContributionFeed`) is never cached.

Logs name the route and the status only: never the token, a body, a NIK, a KPJ or a query.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Self, TypeVar

import aiohttp

from alerts.ports import (
    ChangesPage,
    MissingMembership,
    MissingPage,
    PostedContribution,
)
from balance.breaker import CircuitBreaker
from flows.ports import (
    BalanceServiceUnavailable,
    Contribution,
    ContributionPage,
    Employer,
    IdentityMatch,
    JhtBalance,
    KeyValueStore,
    MemberSummary,
    PensionMonths,
    StoreUnavailable,
)

__all__ = ["HttpBalanceService"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_MAX_PAGE_SIZE = 100  # the contract's bound
_MAX_BODY = 1 << 20  # no answer about one member comes near 1 MiB
_MAX_FEED_BODY = 8 << 20  # 10,000 feed items of about 130 bytes each, with room to spare
_MAX_FEED_LIMIT = 10_000
_CURSOR = re.compile(r"[0-9]{0,18}")
_RATE = re.compile(r"[0-9]{1,2}(\.[0-9]{1,4})?")
_KPJ = re.compile(r"[0-9]{11}")
_NIK = re.compile(r"[0-9]{16}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_STATUSES = frozenset({"active", "inactive"})
_SEGMENTS = frozenset({"PU", "BPU", "PMI"})
_CACHE_VERSION = "v1"


class _Malformed(Exception):
    """An answer (or a cached value) that does not follow the contract."""


class _Transient(Exception):
    """A failed attempt worth retrying: timeout, connection error, 5xx."""


# ---------------------------------------------------------------------------------------------
# Strict parsing of the contract's JSON into the port dataclasses.


def _loads(raw: bytes | str) -> object:
    def no_constant(name: str) -> object:
        raise _Malformed(f"non-finite number {name}")

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Malformed("not JSON") from exc


def _obj(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise _Malformed(f"{what} is not an object")
    return value


def _field(data: Mapping[str, object], name: str) -> object:
    if name not in data:
        raise _Malformed(f"missing field {name}")
    return data[name]


def _str(data: Mapping[str, object], name: str) -> str:
    value = _field(data, name)
    if not isinstance(value, str):
        raise _Malformed(f"{name} is not a string")
    return value


def _optional_str(data: Mapping[str, object], name: str) -> str:
    """A string that the contract allows to be null (no contact of that kind): ``""``."""
    return "" if _field(data, name) is None else _str(data, name)


def _int(data: Mapping[str, object], name: str, *, minimum: int = 0) -> int:
    value = _field(data, name)
    if type(value) is not int:  # bool is an int subclass, 1.0 is a float: both rejected
        raise _Malformed(f"{name} is not an integer")
    if value < minimum:
        raise _Malformed(f"{name} is below {minimum}")
    return value


def _optional_int(data: Mapping[str, object], name: str) -> int | None:
    return None if _field(data, name) is None else _int(data, name)


def _date(data: Mapping[str, object], name: str) -> date:
    text = _str(data, name)
    if not _DATE.fullmatch(text):
        raise _Malformed(f"{name} is not a YYYY-MM-DD date")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise _Malformed(f"{name} is not a valid date") from exc


def _period(data: Mapping[str, object], name: str) -> str:
    text = _str(data, name)
    if not _PERIOD.fullmatch(text):
        raise _Malformed(f"{name} is not a YYYY-MM period")
    return text


def _optional_period(data: Mapping[str, object], name: str) -> str | None:
    return None if _field(data, name) is None else _period(data, name)


def _list(data: Mapping[str, object], name: str) -> list[object]:
    value = _field(data, name)
    if not isinstance(value, list):
        raise _Malformed(f"{name} is not a list")
    return value


def _int_tuple(data: Mapping[str, object], name: str) -> tuple[int, ...]:
    return tuple(_int({name: item}, name) for item in _list(data, name))


def _kpj(data: Mapping[str, object], expected: str) -> str:
    kpj = _str(data, "kpj")
    if kpj != expected:  # an answer about another member is never shown
        raise _Malformed("the answer is about another KPJ")
    return kpj


def _employer(data: Mapping[str, object]) -> Employer | None:
    value = _field(data, "employer")
    if value is None:
        return None
    employer = _obj(value, "employer")
    return Employer(npp=_str(employer, "npp"), name=_str(employer, "name"))


def _identity(body: object, kpj: str) -> IdentityMatch | None:
    data = _obj(body, "answer")
    match = _field(data, "match")
    if match is False:
        return None
    if match is not True:
        raise _Malformed("match is not a boolean")
    contact = _obj(_field(data, "contact"), "contact")
    return IdentityMatch(kpj=_kpj(data, kpj), name=_str(data, "name"),
                         phone=_optional_str(contact, "phone"),
                         email=_optional_str(contact, "email"))


def _summary(body: object, kpj: str) -> MemberSummary:
    data = _obj(body, "answer")
    status, segment = _str(data, "status"), _str(data, "segment")
    if status not in _STATUSES or segment not in _SEGMENTS:
        raise _Malformed("unknown status or segment")
    kpjs = tuple(_str({"kpjs": item}, "kpjs") for item in _list(data, "kpjs"))
    if kpj not in kpjs or not all(_KPJ.fullmatch(other) for other in kpjs):
        raise _Malformed("kpjs is not a list of KPJ including this one")
    return MemberSummary(kpj=_kpj(data, kpj), name=_str(data, "name"), status=status,
                         segment=segment, employer=_employer(data), kpjs=kpjs)


def _balance(body: object, kpj: str, as_of: date) -> JhtBalance:
    data = _obj(body, "answer")
    if _str(data, "currency") != "IDR":
        raise _Malformed("currency is not IDR")
    balance = JhtBalance(
        kpj=_kpj(data, kpj), as_of=_date(data, "as_of"),
        employer_part=_int(data, "employer_part"), employee_part=_int(data, "employee_part"),
        development=_int(data, "development"), total=_int(data, "total"),
        last_period=_optional_period(data, "last_period"),
        pending_years=_int_tuple(data, "pending_years"))
    if balance.as_of != as_of:
        raise _Malformed("the balance is as of another date")
    if balance.total != balance.employer_part + balance.employee_part + balance.development:
        raise _Malformed("the total is not the sum of its parts")
    return balance


def _contribution(value: object) -> Contribution:
    data = _obj(value, "item")
    return Contribution(period=_period(data, "period"), wage=_int(data, "wage"),
                        employer_part=_int(data, "employer_part"),
                        employee_part=_int(data, "employee_part"),
                        paid_on=_date(data, "paid_on"), employer=_employer(data))


def _page(body: object, kpj: str, year: int | None) -> ContributionPage:
    data = _obj(body, "answer")
    page = ContributionPage(
        kpj=_kpj(data, kpj), year=_optional_int(data, "year"), page=_int(data, "page", minimum=1),
        page_size=_int(data, "page_size", minimum=1), pages=_int(data, "pages"),
        total=_int(data, "total"), years=_int_tuple(data, "years"),
        items=tuple(_contribution(item) for item in _list(data, "items")))
    if page.year != year:
        raise _Malformed("the page is of another year")
    if len(page.items) > page.page_size:
        raise _Malformed("more items than the page size")
    return page


def _periods(body: object, kpj: str) -> tuple[str, ...]:
    data = _obj(body, "answer")
    _kpj(data, kpj)
    periods = tuple(_period({"periods": item}, "periods") for item in _list(data, "periods"))
    if any(older >= newer for older, newer in zip(periods, periods[1:], strict=False)):
        raise _Malformed("periods are not ascending and distinct")
    return periods


def _periods_json(periods: tuple[str, ...], kpj: str) -> dict[str, Any]:
    return {"kpj": kpj, "periods": list(periods)}


def _pension(body: object, kpj: str) -> PensionMonths:
    data = _obj(body, "answer")
    return PensionMonths(kpj=_kpj(data, kpj), months=_int(data, "months"),
                         first_period=_optional_period(data, "first_period"),
                         last_period=_optional_period(data, "last_period"))


def _segment(data: Mapping[str, object]) -> str:
    segment = _str(data, "segment")
    if segment not in _SEGMENTS:
        raise _Malformed("unknown segment")
    return segment


def _feed_kpj(data: Mapping[str, object]) -> str:
    kpj = _str(data, "kpj")
    if not _KPJ.fullmatch(kpj):
        raise _Malformed("kpj is not 11 digits")
    return kpj


def _bool(data: Mapping[str, object], name: str) -> bool:
    value = _field(data, name)
    if not isinstance(value, bool):
        raise _Malformed(f"{name} is not a boolean")
    return value


def _posted(value: object) -> PostedContribution:
    data = _obj(value, "item")
    return PostedContribution(kpj=_feed_kpj(data), period=_period(data, "period"),
                              segment=_segment(data),
                              employer_part=_int(data, "employer_part"),
                              employee_part=_int(data, "employee_part"),
                              paid_on=_date(data, "paid_on"))


def _changes(body: object, limit: int) -> ChangesPage:
    data = _obj(body, "answer")
    cursor = _str(data, "cursor")
    if not _CURSOR.fullmatch(cursor):
        raise _Malformed("cursor is not a feed position")
    items = tuple(_posted(item) for item in _list(data, "items"))
    if len(items) > limit:
        raise _Malformed("more items than the limit")
    return ChangesPage(items=items, cursor=cursor, more=_bool(data, "more"))


def _missing(body: object, after: str, limit: int) -> MissingPage:
    data = _obj(body, "answer")
    items = tuple(MissingMembership(kpj=_feed_kpj(item), segment=_segment(item))
                  for item in (_obj(value, "item") for value in _list(data, "items")))
    kpjs = [after, *(item.kpj for item in items)]
    if len(items) > limit or any(older >= newer
                                 for older, newer in zip(kpjs, kpjs[1:], strict=False)):
        raise _Malformed("items are not KPJs ascending after the one asked for")
    next_after = None if _field(data, "after") is None else _feed_kpj({"kpj": data["after"]})
    if next_after is not None and (not items or next_after != items[-1].kpj):
        raise _Malformed("after is not the last KPJ of the page")
    return MissingPage(items=items, after=next_after)


def _rates(body: object) -> dict[int, Decimal]:
    data = _obj(body, "answer")
    rates: dict[int, Decimal] = {}
    for value in _list(data, "rates"):
        item = _obj(value, "rate")
        year, text = _int(item, "year"), _str(item, "rate_percent")
        if not _RATE.fullmatch(text) or year in rates:
            raise _Malformed("rate_percent is not a percentage, or a year appears twice")
        rates[year] = Decimal(text)  # the pattern admits only plain decimal numbers
    return rates


# ---------------------------------------------------------------------------------------------
# Cached values: the contract's own JSON, so that a cached value is read by the same parsers.


def _employer_json(employer: Employer | None) -> dict[str, str] | None:
    return None if employer is None else {"npp": employer.npp, "name": employer.name}


def _summary_json(summary: MemberSummary) -> dict[str, Any]:
    return {"kpj": summary.kpj, "name": summary.name, "status": summary.status,
            "segment": summary.segment, "employer": _employer_json(summary.employer),
            "kpjs": list(summary.kpjs)}


def _balance_json(balance: JhtBalance) -> dict[str, Any]:
    return {"kpj": balance.kpj, "as_of": balance.as_of.isoformat(), "currency": "IDR",
            "employer_part": balance.employer_part, "employee_part": balance.employee_part,
            "development": balance.development, "total": balance.total,
            "last_period": balance.last_period, "pending_years": list(balance.pending_years)}


def _page_json(page: ContributionPage) -> dict[str, Any]:
    return {"kpj": page.kpj, "year": page.year, "page": page.page, "page_size": page.page_size,
            "pages": page.pages, "total": page.total, "years": list(page.years),
            "items": [{"period": item.period, "wage": item.wage,
                       "employer_part": item.employer_part,
                       "employee_part": item.employee_part,
                       "paid_on": item.paid_on.isoformat(),
                       "employer": _employer_json(item.employer)} for item in page.items]}


def _cache_name(secret: bytes, *parts: object) -> str:
    """``bal:`` and an HMAC-SHA256 of the request keyed by ``secret``: no KPJ in the store's
    key space (shared with sessions), and no way to recover one by hashing all 11-digit
    numbers without the key."""
    material = "|".join([_CACHE_VERSION, *(str(part) for part in parts)])
    return "bal:" + hmac.new(secret, material.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------


class HttpBalanceService:
    """:class:`~flows.ports.BalanceService` over HTTP (contract v1) with aiohttp.

    ``base_url`` is the service root (``/v1/...`` is appended); ``token`` the bearer token.
    Owns its :class:`aiohttp.ClientSession` unless given one; close with :meth:`aclose`.
    """

    def __init__(self, base_url: str, token: str, *, cache: KeyValueStore | None = None,
                 session: aiohttp.ClientSession | None = None, timeout: float = 3.0,
                 retries: int = 2, backoff: float = 0.1, breaker: CircuitBreaker | None = None,
                 cache_ttl: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 cache_secret: bytes = b"") -> None:
        if not token:
            raise ValueError("the balance service token is empty")
        if not timeout > 0 or retries < 0 or not backoff >= 0 or not cache_ttl > 0:
            raise ValueError("timeout and cache_ttl must be positive, retries and backoff not "
                             "negative")
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._cache = cache
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = retries
        self._backoff = backoff
        self._breaker = breaker if breaker is not None else CircuitBreaker(clock=clock)
        self._cache_ttl = cache_ttl
        self._cache_secret = cache_secret or secrets.token_bytes(32)
        self._auth_error_logged = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session when this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _name(self, *parts: object) -> str:
        return _cache_name(self._cache_secret, *parts)

    # -- the port ------------------------------------------------------------------------------

    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        """The member when NIK, KPJ and birth date belong together, else ``None``. Never
        cached: the answer carries the contact an OTP goes to."""
        if not (_NIK.fullmatch(nik) and _KPJ.fullmatch(kpj)):
            return None  # no member has a malformed NIK or KPJ; nothing is sent
        payload = {"nik": nik, "kpj": kpj, "birth_date": birth_date.isoformat()}
        # A POST only because the NIK must not travel in a URL: the check is read-only, so
        # retrying it is as safe as retrying a GET.
        answer = await self._call("identity", "POST", "/v1/identity/verify",
                                  lambda body: (_identity(body, kpj),), json_body=payload)
        if answer is None:
            raise self._unavailable("identity", "HTTP 404 from the identity route")
        return answer[0]

    async def member_summary(self, kpj: str) -> MemberSummary | None:
        """Status, segment, employer and all KPJ of the member; ``None`` when unknown."""
        if not _KPJ.fullmatch(kpj):
            return None
        return await self._cached(
            "member", self._name("member", kpj), f"/v1/members/{kpj}", {},
            parse=lambda body: _summary(body, kpj), encode=_summary_json)

    async def jht_balance(self, kpj: str, as_of: date) -> JhtBalance | None:
        """The JHT balance as of ``as_of``; ``None`` when the KPJ is unknown."""
        if not _KPJ.fullmatch(kpj):
            return None
        return await self._cached(
            "jht-balance", self._name("jht-balance", kpj, as_of.isoformat()),
            f"/v1/members/{kpj}/jht-balance", {"as_of": as_of.isoformat()},
            parse=lambda body: _balance(body, kpj, as_of), encode=_balance_json)

    async def contributions(self, kpj: str, *, year: int | None = None, page: int = 1,
                            page_size: int = 12) -> ContributionPage | None:
        """Contributions, newest first, paged; ``year`` filters; ``None`` when unknown.
        Raises :class:`ValueError` for a page below 1 or a page size outside 1 to 100, as
        the reference service does in process."""
        if page < 1 or not 1 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page {page} / page_size {page_size} out of range")
        if not _KPJ.fullmatch(kpj):
            return None
        params = {"page": str(page), "page_size": str(page_size)}
        if year is not None:
            params["year"] = str(year)
        return await self._cached(
            "contributions", self._name("contributions", kpj, year, page, page_size),
            f"/v1/members/{kpj}/contributions", params,
            parse=lambda body: _page(body, kpj, year), encode=_page_json)

    async def contribution_periods(self, kpj: str) -> tuple[str, ...] | None:
        """Every contributed period, oldest first; ``None`` when the KPJ is unknown."""
        if not _KPJ.fullmatch(kpj):
            return None
        return await self._cached(
            "contribution-periods", self._name("contribution-periods", kpj),
            f"/v1/members/{kpj}/contribution-periods", {},
            parse=lambda body: _periods(body, kpj),
            encode=lambda periods: _periods_json(periods, kpj))

    async def pension_months(self, kpj: str) -> PensionMonths | None:
        """Months of JP contributions; ``None`` when the KPJ is unknown."""
        if not _KPJ.fullmatch(kpj):
            return None
        return await self._call("jp", "GET", f"/v1/members/{kpj}/jp",
                                lambda body: _pension(body, kpj))

    # -- the change feed (never cached) ---------------------------------------------------------

    async def contribution_changes(self, since: str = "", limit: int = 1000) -> ChangesPage:
        """Contributions inserted or changed after cursor ``since``, at most ``limit`` (1 to
        10,000), in insertion order. Raises :class:`ValueError` for a limit out of range or a
        malformed cursor, as the reference service does in process."""
        _check_feed_limit(limit)
        if not _CURSOR.fullmatch(since):
            raise ValueError("since must be a cursor returned by the feed")
        params = {"limit": str(limit)}
        if since:
            params["since"] = since
        return await self._feed_call("changes", "/v1/contributions/changes", params,
                                     lambda body: _changes(body, limit))

    async def missing_contributions(self, period: str, *, after: str = "",
                                    limit: int = 1000) -> MissingPage:
        """Active memberships without a contribution for ``period`` that have one before it,
        KPJ after ``after``, at most ``limit`` (1 to 10,000). Raises :class:`ValueError` for
        a malformed period or KPJ or a limit out of range."""
        _check_feed_limit(limit)
        if not _PERIOD.fullmatch(period):
            raise ValueError("period must be YYYY-MM")
        if after and not _KPJ.fullmatch(after):
            raise ValueError("after must be a KPJ of 11 digits")
        params = {"period": period, "limit": str(limit)}
        if after:
            params["after"] = after
        return await self._feed_call("missing", "/v1/contributions/missing", params,
                                     lambda body: _missing(body, after, limit))

    async def development_rates(self) -> Mapping[int, Decimal]:
        """The development rate credited for each configured year, in percent."""
        return await self._feed_call("development-rates", "/v1/development-rates", {}, _rates)

    async def _feed_call(self, route: str, path: str, params: Mapping[str, str],
                         parse: Callable[[object], _T]) -> _T:
        answer = await self._call(route, "GET", path, lambda body: (parse(body),),
                                  params=params, max_body=_MAX_FEED_BODY)
        if answer is None:  # the feed has no "unknown member": a 404 is a broken contract
            raise self._unavailable(route, "HTTP 404 from a feed route")
        return answer[0]

    # -- cache ---------------------------------------------------------------------------------

    async def _cached(self, route: str, name: str, path: str, params: Mapping[str, str], *,
                      parse: Callable[[object], _T],
                      encode: Callable[[_T], dict[str, Any]]) -> _T | None:
        if self._cache is not None:
            hit = await self._cache_get(route, name, parse)
            if hit is not None:
                return hit
        value = await self._call(route, "GET", path, parse, params=params)
        if value is None:
            return None
        if self._cache is not None:
            text = json.dumps(encode(value), ensure_ascii=False, separators=(",", ":"))
            try:
                await self._cache.put(name, text, self._cache_ttl)
            except StoreUnavailable:
                _log.warning("could not cache a %s answer: the store is unavailable", route)
        return value

    async def _cache_get(self, route: str, name: str,
                         parse: Callable[[object], _T]) -> _T | None:
        assert self._cache is not None
        try:
            raw = await self._cache.get(name)
        except StoreUnavailable:
            _log.warning("%s cache unavailable; asking the balance service", route)
            return None
        if raw is None:
            return None
        try:
            return parse(_loads(raw))
        except _Malformed:
            _log.warning("ignoring a malformed cached %s answer", route)
            return None

    # -- HTTP ----------------------------------------------------------------------------------

    def _unavailable(self, route: str, reason: str) -> BalanceServiceUnavailable:
        _log.warning("balance service %s failed: %s", route, reason)
        return BalanceServiceUnavailable(f"balance service {route}: {reason}")

    async def _call(self, route: str, method: str, path: str, parse: Callable[[object], _T], *,
                    params: Mapping[str, str] | None = None,
                    json_body: Mapping[str, str] | None = None,
                    max_body: int = _MAX_BODY) -> _T | None:
        """The parsed answer of a 200, or ``None`` for a contract 404. Retries transient
        failures: every caller is read-only (GETs and the identity check)."""
        last = ""
        for attempt in range(self._retries + 1):
            if attempt:
                delay = self._backoff * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))  # jitter: 0.5x to 1.5x
            if not self._breaker.allow():
                raise self._unavailable(route, "circuit open, failing fast")
            verdict = False
            try:
                status, content_type, body = await self._attempt(method, path, params,
                                                                 json_body, max_body)
                answer = self._answer(route, status, content_type, body)
                result = None if answer is None else parse(answer)
                self._breaker.record_success()
                verdict = True
            except _Transient as exc:
                self._breaker.record_failure()
                verdict = True
                _log.warning("balance service %s attempt %d failed: %s", route, attempt + 1,
                             exc)
                last = str(exc)
                continue
            except _Malformed as exc:  # a service answering garbage is a broken service
                self._breaker.record_failure()
                verdict = True
                raise self._unavailable(route, f"malformed answer ({exc})") from None
            except BalanceServiceUnavailable:  # a 4xx: the service is up but refused us
                self._breaker.record_success()
                verdict = True
                raise
            finally:
                if not verdict:  # cancelled or an unexpected error: no verdict on the service
                    self._breaker.release()
            return result
        raise self._unavailable(route, f"gave up after {self._retries + 1} attempts ({last})")

    async def _attempt(self, method: str, path: str, params: Mapping[str, str] | None,
                       json_body: Mapping[str, str] | None,
                       max_body: int = _MAX_BODY) -> tuple[int, str, bytes]:
        """One request: status, content type and body of any non-5xx answer. Raises
        :class:`_Transient` for timeouts, connection errors and 5xx, :class:`_Malformed` for
        an answer larger than ``max_body``, too large to be the contract's."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                    method, self._base + path, params=params, json=json_body,
                    headers=self._headers, timeout=self._timeout,
                    allow_redirects=False) as response:
                if response.status >= 500:
                    raise _Transient(f"HTTP {response.status}")
                return (response.status, response.content_type,
                        await _read(response, max_body))
        except TimeoutError:
            raise _Transient("timeout") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _Transient(type(exc).__name__) from None
        except aiohttp.ClientError as exc:
            raise _Malformed(type(exc).__name__) from None

    def _answer(self, route: str, status: int, content_type: str, body: bytes) -> object | None:
        """The decoded JSON of a 200, ``None`` for a contract 404; raise for anything else."""
        if status in (401, 403):
            if not self._auth_error_logged:
                self._auth_error_logged = True
                _log.error("the balance service refused the token (HTTP %d): check "
                           "BALANCE_SERVICE_TOKEN", status)
            raise BalanceServiceUnavailable(f"balance service {route}: HTTP {status}")
        if content_type != "application/json":
            raise _Malformed(f"HTTP {status} with content type {content_type or 'none'}")
        decoded = _loads(body)
        if status == 200:
            return decoded
        if status == 404 and _error_code(decoded) == "not_found":
            return None
        raise self._unavailable(route, f"HTTP {status} ({_error_code(decoded) or 'no code'})")


def _error_code(body: object) -> str | None:
    if isinstance(body, dict) and isinstance(error := body.get("error"), dict):
        code = error.get("code")
        return code if isinstance(code, str) else None
    return None


def _check_feed_limit(limit: int) -> None:
    if not 1 <= limit <= _MAX_FEED_LIMIT:
        raise ValueError(f"limit {limit} out of range (1 to {_MAX_FEED_LIMIT})")


async def _read(response: aiohttp.ClientResponse, max_body: int = _MAX_BODY) -> bytes:
    """The body, refusing more than ``max_body`` bytes."""
    if response.content_length is not None and response.content_length > max_body:
        raise _Malformed("answer too large")
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_body:
            raise _Malformed("answer too large")
    return bytes(body)
