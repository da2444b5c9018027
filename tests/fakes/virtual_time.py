"""Virtual time for tests of pacing and backoff: minutes of waiting in milliseconds, exactly.

:func:`run_virtual` runs a coroutine on an event loop whose clock is a :class:`FakeTime` and
whose selector, instead of blocking, moves that clock to the next timer when every task is
waiting. The code under test gets the same clock (``fake.clock``) and, where it takes one, a
sleep on it (``fake.sleep``, which also records each delay).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["FakeTime", "run_virtual"]

T = TypeVar("T")


class FakeTime:
    """A clock that only moves when the virtual loop has nothing to run."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await asyncio.sleep(delay)


class _VirtualSelector:
    """A real selector whose wait for a timer advances the fake clock instead."""

    def __init__(self, fake: FakeTime) -> None:
        self._inner = selectors.DefaultSelector()
        self._fake = fake

    def select(self, timeout: float | None = None) -> list[Any]:
        events = self._inner.select(0)
        if events:
            return events
        if timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is pending")
        self._fake.now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def run_virtual(main: Callable[[FakeTime], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(fake)`` on a loop whose time is ``fake``; no real time passes."""
    fake = FakeTime()
    loop = asyncio.SelectorEventLoop(_VirtualSelector(fake))  # type: ignore[arg-type]
    loop.time = fake.clock  # type: ignore[method-assign]
    try:
        return loop.run_until_complete(main(fake))
    finally:
        loop.close()
