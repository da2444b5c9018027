"""A circuit breaker: stop calling a service that keeps failing, and probe it now and then.

``closed``: calls go through; ``failure_threshold`` consecutive failures open the circuit.
``open``: calls fail fast (no network call) until ``reset_timeout`` seconds have passed.
``half_open``: one probe call goes through (the others still fail fast); its success closes the
circuit, its failure opens it again for another ``reset_timeout``.

All state changes happen synchronously between awaits, so one event loop needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

__all__ = ["CircuitBreaker", "State"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Counts consecutive failures of one service; the clock is injectable for tests.

    A caller asks :meth:`allow` before each call and then reports exactly one of
    :meth:`record_success`, :meth:`record_failure` or :meth:`release` (the call ended without
    telling anything about the service, e.g. it was cancelled).
    """

    def __init__(self, *, failure_threshold: int = 5, reset_timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if not reset_timeout >= 0:
            raise ValueError("reset_timeout must be a non-negative number of seconds")
        self._threshold = failure_threshold
        self._reset_timeout = reset_timeout
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None  # None: closed
        self._probing = False  # half-open with the probe in flight

    @property
    def state(self) -> State:
        """``closed``, ``open`` or ``half_open`` (cool-down over: the next call is a probe)."""
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self._reset_timeout:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """True when a call may go out now; in ``half_open`` only the first caller gets true."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        """The call reached a working service: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        """The call failed (down, slow, broken): count it, open the circuit at the threshold
        and reopen it at once when the failed call was the half-open probe."""
        self._failures += 1
        if self._probing or self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._probing = False

    def release(self) -> None:
        """The call ended without an outcome: a half-open probe slot is given back."""
        self._probing = False
