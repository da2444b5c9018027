"""SlidingWindow: at most ``rate`` starts in any window, first come first served, pauses kept."""

from __future__ import annotations

import asyncio

from channels.pacing import SlidingWindow
from tests.fakes.virtual_time import FakeTime, run_virtual


def test_a_used_slot_comes_back_one_window_after_it_was_taken() -> None:
    async def main(fake: FakeTime) -> list[float]:
        window = SlidingWindow(2.0, clock=fake.clock, sleep=fake.sleep)
        starts: list[float] = []

        async def start() -> None:
            await window.acquire(lambda: 0.0)
            starts.append(fake.clock())

        await asyncio.gather(*(start() for _ in range(5)))
        return starts

    assert run_virtual(main) == [0.0, 0.0, 1.0, 1.0, 2.0]


def test_nobody_starts_before_the_pause_ends() -> None:
    async def main(fake: FakeTime) -> float:
        window = SlidingWindow(30.0, clock=fake.clock, sleep=fake.sleep)
        await window.acquire(lambda: 7.5)
        return fake.clock()

    assert run_virtual(main) == 7.5
