"""OutboundLimiter: the per-number rate, per-recipient order, backoff on 130429 and 131056.

The tests run on virtual time: an event loop whose clock is a fake one and whose selector,
instead of blocking, moves that clock to the next timer when every task waits. The limiter
gets the same clock, so minutes of backoff take milliseconds and timings are exact.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from channels.whatsapp.channel import classify
from channels.whatsapp.graph import PAIR_RATE_LIMIT, RATE_LIMIT, REENGAGEMENT, GraphError
from channels.whatsapp.limiter import Limit, OutboundLimiter
from tests.fakes.virtual_time import run_virtual as run_on_virtual_time

T = TypeVar("T")
EPS = 1e-9


def run_virtual(main: Callable[[Callable[[], float]], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(clock)`` on a loop whose time is ``clock()``; no real time passes."""
    return run_on_virtual_time(lambda fake: main(fake.clock))


class Api:
    """Records attempts and deliveries with their times; ``fail[label]`` lists the errors the
    next attempts of that message raise."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.fail: dict[str, list[BaseException]] = {}
        self.attempts: list[tuple[float, str, str]] = []
        self.delivered: list[tuple[float, str, str]] = []

    def message(self, to: str, label: str) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            self.attempts.append((self.clock(), to, label))
            if self.fail.get(label):
                raise self.fail[label].pop(0)
            self.delivered.append((self.clock(), to, label))
            return label

        return call

    def labels(self, to: str) -> list[str]:
        return [label for _, t, label in self.delivered if t == to]


def limiter(clock: Callable[[], float], **options: Any) -> OutboundLimiter:
    return OutboundLimiter(classify=classify, clock=clock, **options)


def test_errors_are_classified_by_code() -> None:
    assert classify(GraphError(RATE_LIMIT)) is Limit.NUMBER
    assert classify(GraphError(PAIR_RATE_LIMIT)) is Limit.RECIPIENT
    assert classify(GraphError(REENGAGEMENT)) is None
    assert classify(ValueError()) is None


def test_no_more_than_rate_calls_start_in_any_second() -> None:
    async def main(clock: Callable[[], float]) -> Api:
        api, wa = Api(clock), limiter(clock, rate=80)
        await asyncio.gather(*(wa.send(f"62812{n % 40:04d}", api.message(f"62812{n % 40:04d}",
                                                                          str(n)))
                               for n in range(400)))
        return api

    api = run_virtual(main)
    times = sorted(t for t, _, _ in api.delivered)
    assert len(times) == 400
    assert max(sum(1 for u in times if t <= u < t + 1 - EPS) for t in times) == 80
    assert times[-1] == pytest.approx(4.0)  # 80 now, 80 a second for the rest


def test_a_rate_limit_pauses_the_whole_number_with_doubling_waits() -> None:
    async def main(clock: Callable[[], float]) -> Api:
        api, wa = Api(clock), limiter(clock, rate=80)
        api.fail["a"] = [GraphError(RATE_LIMIT), GraphError(RATE_LIMIT)]
        first = asyncio.create_task(wa.send("A", api.message("A", "a")))
        await asyncio.sleep(0.5)
        await wa.send("B", api.message("B", "b"))  # held by the number-wide pause
        await first
        return api

    api = run_virtual(main)
    assert [t for t, _, label in api.attempts if label == "a"] == [0.0, 1.0, 3.0]
    assert sorted(api.delivered) == [(3.0, "A", "a"), (3.0, "B", "b")]


def test_a_pair_limit_holds_only_that_recipient_and_keeps_its_order() -> None:
    async def main(clock: Callable[[], float]) -> Api:
        api, wa = Api(clock), limiter(clock, recipient_delay=6.0)
        api.fail["a1"] = [GraphError(PAIR_RATE_LIMIT)]
        await asyncio.gather(wa.send("A", api.message("A", "a1")),
                             wa.send("A", api.message("A", "a2")),
                             wa.send("B", api.message("B", "b1")))
        return api

    api = run_virtual(main)
    assert api.labels("A") == ["a1", "a2"]  # a2 never overtakes the retried a1
    assert [(t, label) for t, _, label in api.delivered] == [
        (0.0, "b1"), (6.0, "a1"), (6.0, "a2")]


def test_waits_are_capped_and_reset_by_a_success() -> None:
    async def main(clock: Callable[[], float]) -> Api:
        api, wa = Api(clock), limiter(clock, max_delay=5.0)
        api.fail["a"] = [GraphError(RATE_LIMIT)] * 5
        await wa.send("A", api.message("A", "a"))
        api.fail["b"] = [GraphError(RATE_LIMIT)]
        await wa.send("A", api.message("A", "b"))
        return api

    api = run_virtual(main)
    starts = [t for t, _, label in api.attempts if label == "a"]
    assert [b - a for a, b in zip(starts, starts[1:], strict=False)] == [1, 2, 4, 5, 5]
    b_starts = [t for t, _, label in api.attempts if label == "b"]
    assert b_starts[1] - b_starts[0] == 1.0  # back to the first wait


def test_a_recipients_backoff_outlives_its_empty_queue() -> None:
    async def main(clock: Callable[[], float]) -> Api:
        api, wa = Api(clock), limiter(clock, recipient_delay=6.0)
        api.fail["a1"] = [GraphError(PAIR_RATE_LIMIT), GraphError(PAIR_RATE_LIMIT)]
        with pytest.raises(GraphError):
            await limiter(clock, max_retries=0).send("X", api.message("X", "a1"))
        await wa.send("A", api.message("A", "a1"))  # fails at 0, waits 6 s, succeeds at 6
        assert wa.tracked_recipients == 0
        return api

    api = run_virtual(main)
    assert api.delivered == [(6.0, "A", "a1")]


def test_other_errors_are_raised_at_once_and_retries_are_bounded() -> None:
    async def main(clock: Callable[[], float]) -> Api:
        api, wa = Api(clock), limiter(clock, max_retries=2)
        api.fail["x"] = [GraphError(REENGAGEMENT)]
        with pytest.raises(GraphError) as refused:
            await wa.send("A", api.message("A", "x"))
        assert refused.value.code == REENGAGEMENT
        api.fail["y"] = [GraphError(RATE_LIMIT)] * 3
        with pytest.raises(GraphError):
            await wa.send("A", api.message("A", "y"))
        await wa.send("A", api.message("A", "z"))  # the queue goes on
        return api

    api = run_virtual(main)
    assert [label for _, _, label in api.attempts].count("x") == 1
    assert [label for _, _, label in api.attempts].count("y") == 3
    assert api.labels("A") == ["z"]


def test_nothing_is_dropped_and_each_recipients_order_holds() -> None:
    rng = random.Random(7)

    async def main(clock: Callable[[], float]) -> tuple[Api, dict[str, list[str]]]:
        api, wa = Api(clock), limiter(clock, rate=20)
        sent: dict[str, list[str]] = {}
        calls = []
        for n in range(300):
            to = f"r{rng.randrange(15)}"
            label = f"{to}-{n}"
            sent.setdefault(to, []).append(label)
            if rng.random() < 0.2:
                api.fail[label] = [GraphError(rng.choice([RATE_LIMIT, PAIR_RATE_LIMIT]))]
            calls.append(wa.send(to, api.message(to, label)))
        await asyncio.gather(*calls)
        assert wa.tracked_recipients == 0
        return api, sent

    api, sent = run_virtual(main)
    for to, labels in sent.items():
        assert api.labels(to) == labels


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        OutboundLimiter(rate=0, classify=classify)
