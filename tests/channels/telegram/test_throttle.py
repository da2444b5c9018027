"""SendThrottle: bot-wide and per-chat pacing, per-chat FIFO, 429 retries, idle cleanup.

All but one test run on virtual time (``tests.fakes.virtual_time``): the throttle gets the
loop's fake clock and a fake sleep on it, so a test covering minutes of flood control takes
milliseconds and its timings are exact. The last test uses real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import SendMessage

from channels.telegram.throttle import SendThrottle
from tests.fakes.virtual_time import FakeTime, run_virtual

T = TypeVar("T")
EPS = 1e-9


def retry_after(seconds: int, chat_id: int | str = 1) -> TelegramRetryAfter:
    return TelegramRetryAfter(
        method=SendMessage(chat_id=chat_id, text="hi"),
        message=f"Too Many Requests: retry after {seconds}",
        retry_after=seconds,
    )


class FakeApi:
    """Stands in for the Bot API: records every attempt and every delivery with its time.

    ``fail[label]`` lists the exceptions the next attempts for that message raise.
    """

    def __init__(self, fake: FakeTime, latency: Callable[[], float] = lambda: 0.0) -> None:
        self._fake = fake
        self._latency = latency
        self.fail: dict[str, list[BaseException]] = {}
        self.attempts: list[tuple[float, str, str]] = []
        self.delivered: list[tuple[float, str, str]] = []

    def message(self, chat_id: int | str, label: str) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            started = self._fake.now
            self.attempts.append((started, str(chat_id), label))
            if delay := self._latency():
                await asyncio.sleep(delay)
            if self.fail.get(label):
                raise self.fail[label].pop(0)
            self.delivered.append((started, str(chat_id), label))
            return label

        return call

    def times(self, chat_id: int | str | None = None) -> list[float]:
        return [t for t, c, _ in self.delivered if chat_id is None or c == str(chat_id)]

    def labels(self, chat_id: int | str) -> list[str]:
        return [label for _, c, label in self.delivered if c == str(chat_id)]


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most calls started in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    return max(
        sum(1 for u in ordered if t <= u < t + window - EPS) for t in ordered
    )


def assert_spaced(times: list[float], gap: float = 1.0) -> None:
    assert all(b - a >= gap - EPS for a, b in zip(times, times[1:], strict=False)), times


def test_hundred_chats_stay_under_the_bot_limit() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(per_bot=30, clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        results = await asyncio.gather(
            *(throttle.send(chat, api.message(chat, f"m{chat}")) for chat in range(100))
        )
        assert results == [f"m{chat}" for chat in range(100)]
        return api

    api = run_virtual(main)
    times = api.times()
    assert len(times) == 100
    assert max_in_window(times) == 30
    # A burst of 30 at once, then 30 more each second: 30 + 30 + 30 + 10.
    assert times.count(0.0) == 30
    assert max(times) - min(times) >= 3.0 - EPS


def test_bot_limit_holds_over_a_long_run() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(per_bot=30, clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake, latency=lambda: 0.05)
        await asyncio.gather(*(throttle.send(c, api.message(c, str(c))) for c in range(900)))
        return api

    times = run_virtual(main).times()
    assert len(times) == 900
    assert max_in_window(times) <= 30
    assert max(times) >= 29.0 - EPS  # 900 calls at 30/s: no faster than 30 s minus the burst


def test_one_chat_gets_one_message_per_second_in_order() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        await asyncio.gather(*(throttle.send(7, api.message(7, f"m{i}")) for i in range(5)))
        return api

    api = run_virtual(main)
    assert api.labels(7) == [f"m{i}" for i in range(5)]
    assert_spaced(api.times(7))
    assert api.times(7) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_other_chats_are_not_held_up_by_a_busy_chat() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        busy = [throttle.send("busy", api.message("busy", f"b{i}")) for i in range(5)]
        others = [throttle.send(c, api.message(c, "x")) for c in range(10)]
        await asyncio.gather(*busy, *others)
        return api

    api = run_virtual(main)
    assert all(api.times(c) == [0.0] for c in range(10))
    assert api.times("busy") == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_int_and_str_ids_are_the_same_chat() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        await asyncio.gather(
            throttle.send(5, api.message(5, "a")), throttle.send("5", api.message(5, "b"))
        )
        return api

    assert run_virtual(main).times(5) == [0.0, 1.0]


def test_429_delays_the_send_keeps_order_and_spares_other_chats() -> None:
    async def main(fake: FakeTime) -> tuple[FakeApi, list[str]]:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["a"] = [retry_after(2, 7)]
        first = [throttle.send(7, api.message(7, label)) for label in ("a", "b", "c")]
        sending = asyncio.gather(*first)

        async def other_chat_later() -> str:
            await fake.sleep(0.5)  # after the 429 arrived
            return await throttle.send(8, api.message(8, "other"))

        results = await asyncio.gather(sending, other_chat_later())
        return api, [*results[0], results[1]]

    api, results = run_virtual(main)
    assert results == ["a", "b", "c", "other"]
    assert [a[2] for a in api.attempts if a[1] == "7"] == ["a", "a", "b", "c"]
    assert api.labels(7) == ["a", "b", "c"]  # none lost, still in order
    assert api.times(7)[0] >= 2.0 - EPS  # retry_after honoured
    assert_spaced(api.times(7))
    assert api.times(8) == [0.5]  # one chat's 429 does not hold up the others


# --- Which limit a 429 is charged to: the chat's own, or the bot's ------------------------


def test_a_429_pauses_only_its_chat_while_other_chats_go_on() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["a1"] = [retry_after(5, "A")]
        chat_a = asyncio.gather(*(throttle.send("A", api.message("A", m)) for m in ("a1", "a2")))

        async def chat_b() -> list[str]:
            await fake.sleep(0.25)  # A is paused by now
            return await asyncio.gather(
                *(throttle.send("B", api.message("B", f"b{i}")) for i in range(3)))

        await asyncio.gather(chat_a, chat_b())
        return api

    api = run_virtual(main)
    assert [t for t, c, _ in api.attempts if c == "A"] == [0.0, 5.0, 6.0]  # a1, a1 again, a2
    assert api.labels("A") == ["a1", "a2"]
    assert api.times("B") == [0.25, 1.25, 2.25]  # at once, only the usual spacing


def test_repeated_429s_from_one_chat_never_pause_the_bot() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["a"] = [retry_after(3, "A") for _ in range(3)]
        chat_a = throttle.send("A", api.message("A", "a"))

        async def others() -> None:
            for second in range(10):
                await throttle.send(second, api.message(second, "x"))
                await fake.sleep(1.0)

        await asyncio.gather(chat_a, others())
        return api

    api = run_virtual(main)
    assert api.times("A") == [9.0]  # three pauses of 3 s, one after the other
    assert [api.times(second) for second in range(10)] == [[float(s)] for s in range(10)]


@pytest.mark.parametrize(("per_bot", "c_at"), [
    (2, 4.0),  # busy (a call in the last second is half its rate): the bot's limit, until 4
    (30, 2.0),  # far below its rate: two chats' own limits (many chats under load at once)
])
def test_429s_from_two_chats_within_one_pause(per_bot: float, c_at: float) -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(per_bot=per_bot, clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["a"] = [retry_after(5, "A")]
        api.fail["b"] = [retry_after(3, "B")]

        async def at(when: float, chat: str, label: str) -> str:
            await fake.sleep(when)
            return await throttle.send(chat, api.message(chat, label))

        await asyncio.gather(
            at(0.0, "A", "a"),  # A's own pause, until 5
            at(1.0, "B", "b"),  # a second chat inside A's pause
            at(2.0, "C", "c"),  # held by a bot-wide pause, if there is one
            at(5.5, "D", "d"),  # after every pause: at once
        )
        return api

    api = run_virtual(main)
    assert api.times("B") == [4.0]
    assert api.times("C") == [c_at]
    assert api.times("A") == [5.0]  # its own, longer pause still holds
    assert api.times("D") == [5.5]


def test_simultaneous_429s_from_two_chats_pause_the_bot() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(per_bot=3, clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["a"] = [retry_after(2, "A")]
        api.fail["b"] = [retry_after(2, "B")]

        async def late() -> str:
            await fake.sleep(0.5)
            return await throttle.send("C", api.message("C", "c"))

        await asyncio.gather(throttle.send("A", api.message("A", "a")),
                             throttle.send("B", api.message("B", "b")), late())
        return api

    api = run_virtual(main)
    assert api.times("A") == api.times("B") == api.times("C") == [2.0]


def test_a_429_after_the_first_chats_pause_ended_is_charged_to_its_own_chat() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["a"] = [retry_after(2, "A")]
        api.fail["b"] = [retry_after(2, "B")]

        async def at(when: float, chat: str, label: str) -> str:
            await fake.sleep(when)
            return await throttle.send(chat, api.message(chat, label))

        await asyncio.gather(at(0.0, "A", "a"), at(3.0, "B", "b"), at(3.5, "C", "c"))
        return api

    api = run_virtual(main)
    assert api.times("A") == [2.0]
    assert api.times("B") == [5.0]
    assert api.times("C") == [3.5]  # B's 429 came after A's pause: B's alone


def test_a_429_during_a_bot_wide_pause_extends_it() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(per_bot=2, clock=fake.clock, sleep=fake.sleep, max_retries=0)
        api = FakeApi(fake)
        api.fail["a"] = [retry_after(1, "A")]
        api.fail["b"] = [retry_after(5, "B")]

        async def in_flight() -> None:  # started before the bot-wide pause, answered in it
            await fake.sleep(0.4)

            async def slow_429() -> str:
                await asyncio.sleep(1.0)
                raise retry_after(6, "C")

            with pytest.raises(TelegramRetryAfter):
                await throttle.send("C", slow_429)

        async def at(when: float, chat: str, label: str) -> None:
            await fake.sleep(when)
            with contextlib.suppress(TelegramRetryAfter):
                await throttle.send(chat, api.message(chat, label))

        await asyncio.gather(
            at(0.0, "A", "a"),  # A's own pause, until 1
            at(0.5, "B", "b"),  # inside it: bot-wide, until 5.5
            in_flight(),  # its 429 at 1.4, after A's pause but inside the bot's: until 7.4
            at(2.0, "E", "e"),
        )
        return api

    api = run_virtual(main)
    assert api.times("E") == [pytest.approx(7.4)]


def test_order_within_a_chat_is_kept_through_chat_and_bot_pauses() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(per_bot=2, clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["a0"] = [retry_after(2, "A"), retry_after(1, "A")]
        api.fail["a2"] = [retry_after(3, "A")]
        api.fail["b1"] = [retry_after(4, "B")]
        chat_a = [throttle.send("A", api.message("A", f"a{i}")) for i in range(5)]
        chat_b = [throttle.send("B", api.message("B", f"b{i}")) for i in range(3)]
        await asyncio.gather(*chat_a, *chat_b)
        return api

    api = run_virtual(main)
    assert api.labels("A") == [f"a{i}" for i in range(5)]
    assert api.labels("B") == [f"b{i}" for i in range(3)]
    assert [label for _, c, label in api.attempts if c == "A"] == [
        "a0", "a0", "a0", "a1", "a2", "a2", "a3", "a4"]
    assert_spaced(api.times("A"))
    assert_spaced(api.times("B"))
    # b1's 429 at 1 came inside A's first pause (until 2): the whole bot waited until 5.
    assert api.times("B") == [0.0, 5.0, 6.0]
    assert min(t for t, c, _ in api.attempts if c == "A" and t > 1.0) >= 5.0


def test_429_is_retried_up_to_max_retries_then_raised() -> None:
    async def main(fake: FakeTime) -> tuple[FakeApi, float]:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep, max_retries=3)
        api = FakeApi(fake)
        api.fail["doomed"] = [retry_after(1, 7) for _ in range(10)]
        with pytest.raises(TelegramRetryAfter):
            await throttle.send(7, api.message(7, "doomed"))
        failed_at = fake.now
        assert await throttle.send(7, api.message(7, "next")) == "next"
        return api, failed_at

    api, failed_at = run_virtual(main)
    assert [t for t, _, label in api.attempts if label == "doomed"] == [0.0, 1.0, 2.0, 3.0]
    assert failed_at == 3.0
    assert api.labels(7) == ["next"]  # the chat is not stuck after a give-up
    assert api.times(7) == [4.0]


def test_max_retries_raises_while_other_chats_go_on() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep, max_retries=2)
        api = FakeApi(fake)
        api.fail["doomed"] = [retry_after(2, 7) for _ in range(10)]

        async def doomed() -> None:
            with pytest.raises(TelegramRetryAfter):
                await throttle.send(7, api.message(7, "doomed"))
            assert fake.now == 4.0
            await throttle.send(7, api.message(7, "next"))

        async def other() -> None:
            for i in range(6):
                await throttle.send(8, api.message(8, f"o{i}"))

        await asyncio.gather(doomed(), other())
        return api

    api = run_virtual(main)
    assert [t for t, _, label in api.attempts if label == "doomed"] == [0.0, 2.0, 4.0]
    assert api.times(7) == [6.0]  # the last 429's pause holds the chat's next send too
    assert api.times(8) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_429_with_no_retries_allowed_raises_at_once() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep, max_retries=0)
        api = FakeApi(fake)
        api.fail["m"] = [retry_after(5)]
        with pytest.raises(TelegramRetryAfter) as caught:
            await throttle.send(1, api.message(1, "m"))
        assert caught.value.retry_after == 5
        return api

    assert len(run_virtual(main).attempts) == 1


@pytest.mark.parametrize(
    "error",
    [ValueError("boom"), TelegramBadRequest(SendMessage(chat_id=1, text="x"), "Bad Request")],
)
def test_other_errors_propagate_without_retry(error: Exception) -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["bad"] = [error]
        with pytest.raises(type(error)):
            await throttle.send(1, api.message(1, "bad"))
        assert fake.now == 0.0  # raised at once
        await asyncio.gather(
            throttle.send(1, api.message(1, "ok")), throttle.send(2, api.message(2, "ok"))
        )
        return api

    api = run_virtual(main)
    assert [label for _, _, label in api.attempts].count("bad") == 1
    assert api.times(1) == [1.0]  # only the usual spacing, no pause
    assert api.times(2) == [0.0]  # the bot was not paused


def test_concurrent_senders_keep_per_chat_fifo_through_429s() -> None:
    chats, per_chat = 20, 8
    rng = random.Random(4)

    async def main(fake: FakeTime) -> tuple[FakeApi, list[tuple[str, str]]]:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake, latency=lambda: rng.uniform(0.0, 0.3))
        entered: list[tuple[str, str]] = []

        async def send(chat: int, seq: int) -> str:
            label = f"{chat}:{seq}"
            if rng.random() < 0.1:
                api.fail[label] = [retry_after(rng.randint(1, 3), chat)]
            entered.append((str(chat), label))  # no await before send(): this is entry order
            return await throttle.send(chat, api.message(chat, label))

        async def producer(chat: int) -> list[str]:
            tasks = []
            for seq in range(per_chat):
                tasks.append(asyncio.create_task(send(chat, seq)))
                await fake.sleep(rng.uniform(0.0, 0.6))
            return await asyncio.gather(*tasks)

        results = await asyncio.gather(*(producer(chat) for chat in range(chats)))
        assert results == [[f"{c}:{s}" for s in range(per_chat)] for c in range(chats)]
        return api, entered

    api, entered = run_virtual(main)
    assert len(api.delivered) == chats * per_chat  # nothing dropped, nothing duplicated
    for chat in range(chats):
        assert api.labels(chat) == [label for c, label in entered if c == str(chat)]
        assert_spaced(api.times(chat))
    assert max_in_window([t for t, _, _ in api.attempts]) <= 30


def test_idle_chat_state_is_dropped() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(per_bot=1000, clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        await asyncio.gather(*(throttle.send(c, api.message(c, "x")) for c in range(1000)))
        assert throttle.tracked_chats == 1000  # their 1 s spacing has not passed yet
        await fake.sleep(0.5)
        await throttle.send("late", api.message("late", "x"))
        assert throttle.tracked_chats == 1001  # still within the spacing: kept
        await fake.sleep(0.6)
        await throttle.send("new", api.message("new", "x"))
        assert throttle.tracked_chats == 2  # "late" and "new"
        await fake.sleep(1.0)
        await throttle.send("newer", api.message("newer", "x"))
        assert throttle.tracked_chats == 1
        return api

    run_virtual(main)


def test_cleanup_never_forgets_a_chat_inside_its_spacing() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        await throttle.send(1, api.message(1, "a"))
        await fake.sleep(0.4)
        await throttle.send(2, api.message(2, "b"))  # prunes what it can
        await throttle.send(1, api.message(1, "c"))
        return api

    assert run_virtual(main).times(1) == [0.0, 1.0]


def test_state_is_kept_while_senders_wait() -> None:
    async def main(fake: FakeTime) -> None:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep)
        api = FakeApi(fake)
        api.fail["a"] = [retry_after(3)]
        pending = asyncio.gather(*(throttle.send(1, api.message(1, m)) for m in "abc"))
        await fake.sleep(10.0)
        await throttle.send(2, api.message(2, "x"))
        assert await pending == ["a", "b", "c"]
        await fake.sleep(10.0)
        await throttle.send(3, api.message(3, "x"))
        assert throttle.tracked_chats == 1

    run_virtual(main)


def test_a_paused_chat_is_not_pruned_while_paused() -> None:
    async def main(fake: FakeTime) -> FakeApi:
        throttle = SendThrottle(clock=fake.clock, sleep=fake.sleep, max_retries=0)
        api = FakeApi(fake)
        api.fail["a"] = [retry_after(30, 1)]
        with pytest.raises(TelegramRetryAfter):  # nobody waits on chat 1 afterwards
            await throttle.send(1, api.message(1, "a"))
        await fake.sleep(10.0)
        await throttle.send(2, api.message(2, "x"))  # prunes what it can
        assert throttle.tracked_chats == 2  # chat 1 is idle but paused: kept
        await throttle.send(1, api.message(1, "b"))
        assert fake.now == 30.0  # its pause was remembered
        await fake.sleep(1.0)
        await throttle.send(3, api.message(3, "x"))
        assert throttle.tracked_chats == 1  # pause and spacing over: dropped
        return api

    assert run_virtual(main).times(1) == [30.0]


@pytest.mark.parametrize(
    "kwargs", [{"per_bot": 0}, {"per_chat": -1.0}, {"max_retries": -1}]
)
def test_rejects_nonsense_limits(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="positive"):
        SendThrottle(**kwargs)


async def test_real_time_pacing() -> None:
    throttle = SendThrottle(per_chat=10.0)  # real clock and sleep: 0.1 s apart
    started: list[float] = []

    def call(label: str) -> Callable[[], Awaitable[str]]:
        async def sent() -> str:
            started.append(time.monotonic())
            return label

        return sent

    begin = time.monotonic()
    labels = await asyncio.gather(*(throttle.send(1, call(str(i))) for i in range(4)))
    elapsed = time.monotonic() - begin
    assert labels == ["0", "1", "2", "3"]
    assert 0.3 - 0.005 <= elapsed < 2.0
    assert all(b - a >= 0.1 - 0.005 for a, b in zip(started, started[1:], strict=False))
