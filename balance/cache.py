"""Recent answers of a balance service, kept in this process for a short while.

A member who checks the balance usually opens the history or refreshes within the minute, and
every answer of the reference service costs SQL queries. :class:`CachedBalanceService` keeps
each answer ``ttl`` seconds (the HTTP client's cache keeps them as long, in the session store),
at most ``size`` of them, least recently used out first. Identity checks are never cached: they
carry the contact an OTP goes to, and a wrong guess must cost a lookup. Failures are not
cached either: the next update asks again. The change feed
(:class:`~alerts.ports.ContributionFeed`) passes through uncached to the inner service, so
the runtime's cached service can serve the alert planner too.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar, cast

from alerts.ports import ChangesPage, ContributionFeed, MissingPage
from flows.ports import (
    BalanceService,
    ContributionPage,
    IdentityMatch,
    JhtBalance,
    MemberSummary,
    PensionMonths,
)

__all__ = ["CachedBalanceService"]

_T = TypeVar("_T")
_MISSING = object()
_FEED_METHODS = ("contribution_changes", "missing_contributions", "development_rates")


class CachedBalanceService:
    """:class:`~flows.ports.BalanceService` in front of another, remembering its answers."""

    def __init__(self, inner: BalanceService, *, ttl: float = 60.0, size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not ttl > 0 or size < 1:
            raise ValueError("ttl must be positive and size at least 1")
        self.inner = inner
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._answers: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._answers)

    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        """Always asked of the service (never cached)."""
        return await self.inner.verify_identity(nik, kpj, birth_date)

    async def member_summary(self, kpj: str) -> MemberSummary | None:
        """The membership's summary."""
        return await self._answer(("summary", kpj), lambda: self.inner.member_summary(kpj))

    async def jht_balance(self, kpj: str, as_of: date) -> JhtBalance | None:
        """The JHT balance as of ``as_of``."""
        return await self._answer(("balance", kpj, as_of),
                                  lambda: self.inner.jht_balance(kpj, as_of))

    async def contributions(self, kpj: str, *, year: int | None = None, page: int = 1,
                            page_size: int = 12) -> ContributionPage | None:
        """One page of contributions."""
        return await self._answer(
            ("contributions", kpj, year, page, page_size),
            lambda: self.inner.contributions(kpj, year=year, page=page, page_size=page_size))

    async def contribution_periods(self, kpj: str) -> tuple[str, ...] | None:
        """Every contributed period, oldest first."""
        return await self._answer(("periods", kpj), lambda: self.inner.contribution_periods(kpj))

    async def pension_months(self, kpj: str) -> PensionMonths | None:
        """Months of JP contributions."""
        return await self._answer(("pension", kpj), lambda: self.inner.pension_months(kpj))

    async def contribution_changes(self, since: str = "", limit: int = 1000) -> ChangesPage:
        """The inner service's change feed (never cached)."""
        return await self._feed().contribution_changes(since, limit)

    async def missing_contributions(self, period: str, *, after: str = "",
                                    limit: int = 1000) -> MissingPage:
        """The inner service's missing contributions (never cached)."""
        return await self._feed().missing_contributions(period, after=after, limit=limit)

    async def development_rates(self) -> Mapping[int, Decimal]:
        """The inner service's development rates (never cached)."""
        return await self._feed().development_rates()

    def _feed(self) -> ContributionFeed:
        """The inner service as a feed; :class:`TypeError` when it offers none."""
        if not all(callable(getattr(self.inner, name, None)) for name in _FEED_METHODS):
            raise TypeError(f"{type(self.inner).__name__} offers no contribution feed")
        return cast(ContributionFeed, self.inner)

    async def _answer(self, name: tuple[Any, ...],
                      ask: Callable[[], Awaitable[_T]]) -> _T:
        now = self._clock()
        deadline, value = self._answers.get(name, (0.0, _MISSING))
        if value is not _MISSING and deadline > now:
            self._answers.move_to_end(name)
            self.hits += 1
            found: _T = value
            return found
        self.misses += 1
        answer = await ask()  # raises on failure: nothing is kept
        self._answers[name] = (now + self._ttl, answer)
        self._answers.move_to_end(name)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)
        return answer
