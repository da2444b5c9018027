"""The circuit breaker's states on an injected clock."""

from __future__ import annotations

import pytest

from balance.breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> str:
    """The state, read through a function so that mypy does not narrow it between calls."""
    return breaker.state


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_opens_after_the_threshold_of_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert state(breaker) == "closed"
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) == "open"
    assert not breaker.allow()


def test_a_success_resets_the_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=clock)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state(breaker) == "closed"
    breaker.record_failure()
    assert state(breaker) == "open"


def test_defaults_are_five_failures_and_thirty_seconds(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock=clock)
    for _ in range(4):
        breaker.record_failure()
    assert breaker.allow()
    breaker.record_failure()
    assert not breaker.allow()
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert state(breaker) == "half_open"
    assert breaker.allow()


def test_half_open_lets_one_probe_through_and_its_success_closes(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else still fails fast
    assert state(breaker) == "half_open"
    breaker.record_success()
    assert state(breaker) == "closed"
    assert breaker.allow()
    assert breaker.allow()


def test_a_failed_probe_reopens_for_a_full_cool_down(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    breaker.record_failure()
    clock.now += 15
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) == "open"
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_a_released_probe_lets_the_next_caller_probe(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.release()  # e.g. the probe was cancelled
    assert state(breaker) == "half_open"
    assert breaker.allow()
    assert not breaker.allow()


def test_release_while_closed_changes_nothing(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=clock)
    breaker.record_failure()
    breaker.release()
    breaker.record_failure()
    assert state(breaker) == "open"


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"reset_timeout": -1.0},
                                    {"reset_timeout": float("nan")}])
def test_rejects_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]
