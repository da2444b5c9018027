"""What every channel shares: one update's skeleton (turn, serve, metrics, apology),
background tasks drained at shutdown, a chat's view lent outside an update, log-safe faults."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.metrics import Metrics
from channels.core import Tasks, Updates, describe, open_view
from flows.engine import Deliver, Served
from flows.menu import MENU
from flows.ports import StoreUnavailable
from flows.types import Event, Reply, Session, SessionKey
from storage.sessions import MemorySessionStore
from tests.fakes.down_store import DownSessionStore

KEY = SessionKey("demo", "7")


class PlatformError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"refused for member 6281234567890 (code {code})")
        self.code = code


class Engine:
    """``Engine.serve`` answering with a fixed outcome and recording the order of events."""

    def __init__(self, outcome: Served = Served.ANSWERED) -> None:
        self.outcome = outcome
        self.served: list[str] = []

    async def serve(self, key: SessionKey, event: Event, deliver: Deliver, *,
                    requeue: bool = False) -> Served:
        await asyncio.sleep(0)
        self.served.append(event.text)
        if self.outcome is not Served.REPEAT:
            await deliver([Reply(f"re: {event.text}", locale="id")], {})
        return self.outcome


def updates(engine: Engine, metrics: Metrics, **options: int) -> Updates[str]:
    return Updates("demo", engine.serve, metrics, platform_errors=(PlatformError,), **options)


async def nothing(_: list[Reply], __: dict[str, object]) -> None:
    return None


@pytest.mark.parametrize(("outcome", "counted"), [
    (Served.ANSWERED, {"updates": 1, "duplicates": 0, "store": 0}),
    (Served.REPEAT, {"updates": 0, "duplicates": 1, "store": 0}),
    (Served.STORE_FAULT, {"updates": 1, "duplicates": 0, "store": 1}),
])
async def test_serve_counts_what_the_engine_did(outcome: Served,
                                                counted: dict[str, int]) -> None:
    metrics = Metrics()
    skeleton = updates(Engine(outcome), metrics)
    apologies: list[Exception] = []

    async def apologise(exc: Exception) -> None:
        apologies.append(exc)

    async def work() -> None:
        assert await skeleton.serve(KEY, Event.message("halo"), nothing) is outcome

    await skeleton.run("7", "u1", work, apologise)
    assert metrics.value("bot_updates_total", channel="demo") == counted["updates"]
    assert metrics.value("bot_duplicates_total") == counted["duplicates"]
    assert metrics.value("bot_errors_total", kind="store") == counted["store"]
    assert metrics.value("bot_update_seconds_count", channel="demo") == 1
    assert apologies == []


@pytest.mark.parametrize(("fault", "kind"), [
    (PlatformError(131_047), "demo"), (StoreUnavailable("down"), "store"),
    (RuntimeError("boom for 6281234567890"), "internal"),
])
async def test_a_fault_is_counted_logged_without_data_and_apologised_for(
        fault: Exception, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    skeleton = updates(Engine(), metrics)
    apologies: list[Exception] = []

    async def apologise(exc: Exception) -> None:
        apologies.append(exc)

    async def work() -> None:
        raise fault

    await skeleton.run("7", "u9", work, apologise)
    assert apologies == [fault]
    assert metrics.value("bot_errors_total", kind=kind) == 1
    assert metrics.value("bot_updates_total", channel="demo") == 1
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith(f"demo update u9 failed: {type(fault).__name__}")
    assert "6281234567890" not in line and "boom" not in line


async def test_an_apology_that_fails_is_logged_and_run_never_raises(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    skeleton = updates(Engine(), metrics)

    async def work() -> None:
        raise RuntimeError("first")

    async def apologise(exc: Exception) -> None:
        raise PlatformError(131_026)

    await skeleton.run("7", "u2", work, apologise)
    messages = [r.getMessage() for r in caplog.records]
    assert any("could not apologise for demo update u2: PlatformError 131_026" in m
               for m in messages)
    assert metrics.value("bot_errors_total", kind="internal") == 1


async def test_one_chats_updates_are_served_in_arrival_order_and_others_run_alongside() -> None:
    engine, metrics = Engine(), Metrics()
    skeleton = updates(engine, metrics)
    release = asyncio.Event()
    started: list[str] = []

    async def one(chat: str, text: str, wait: bool) -> None:
        async def work() -> None:
            started.append(text)
            if wait:
                await release.wait()
            await skeleton.serve(SessionKey("demo", chat), Event.message(text), nothing)

        async def apologise(exc: Exception) -> None:
            raise AssertionError(exc)

        await skeleton.run(chat, text, work, apologise)

    first = asyncio.create_task(one("a", "a1", True))
    second = asyncio.create_task(one("a", "a2", False))
    other = asyncio.create_task(one("b", "b1", False))
    await other
    assert started == ["a1", "b1"]  # a2 waits for a1's turn; b is another chat
    release.set()
    await asyncio.gather(first, second)
    assert engine.served == ["b1", "a1", "a2"]
    assert len(skeleton.queue) == 0  # nothing kept once the turns are over


async def test_concurrency_bounds_updates_at_once() -> None:
    metrics, running, peak = Metrics(), [0], [0]
    skeleton = updates(Engine(), metrics, concurrency=2)

    async def work() -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0.01)
        running[0] -= 1

    async def apologise(exc: Exception) -> None:
        raise AssertionError(exc)

    await asyncio.gather(*(skeleton.run(str(n), str(n), work, apologise) for n in range(6)))
    assert peak[0] == 2
    with pytest.raises(ValueError, match="at least 1"):
        updates(Engine(), metrics, concurrency=0)


def test_describe_names_the_class_code_and_place_not_the_message() -> None:
    try:
        raise PlatformError(130_429)
    except PlatformError as exc:
        described = describe(exc)
    assert described.startswith("PlatformError 130_429 at ") and "test_core.py" in described
    assert "6281234567890" not in described
    assert describe(ValueError("NIK 3171014501900001")) == "ValueError"


# --- background tasks -------------------------------------------------------------------------


async def test_drain_awaits_tasks_and_cancels_the_late_ones() -> None:
    tasks, done = Tasks(), []

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.append("quick")

    async def stuck() -> None:
        await asyncio.Event().wait()

    tasks.spawn(quick())
    hung = tasks.spawn(stuck())
    assert len(tasks) == 2
    assert await tasks.drain(timeout=0.1) == 1
    assert done == ["quick"] and hung.cancelled() and len(tasks) == 0
    assert await tasks.drain() == 0


async def test_drain_called_from_a_task_does_not_wait_for_itself() -> None:
    tasks = Tasks()

    async def shutdown() -> int:
        return await tasks.drain(timeout=1.0)

    assert await tasks.spawn(shutdown()) == 0


# --- a chat's view outside an update ----------------------------------------------------------


async def test_open_view_lends_the_sessions_view_and_saves_it() -> None:
    store = MemorySessionStore()
    async with store.chat(KEY) as slot:
        slot.session = Session(MENU, "en", {"misses": 1}, 5.0, view={"seen": 1.0})
    async with open_view(store, KEY) as view:
        assert view == {"seen": 1.0}
        view["seen"] = 2.0
    async with store.chat(KEY) as slot:
        assert slot.session is not None
        assert slot.session.view == {"seen": 2.0}
        assert (slot.session.locale, dict(slot.session.data)) == ("en", {"misses": 1})


async def test_open_view_creates_a_resting_session_only_for_a_view_worth_keeping() -> None:
    store = MemorySessionStore()
    async with open_view(store, KEY) as view:
        assert view == {}
    async with store.chat(KEY) as slot:
        assert slot.session is None
    async with open_view(store, KEY) as view:
        view["blocked"] = True
    async with store.chat(KEY) as slot:
        assert slot.session is not None and slot.session.state == MENU
        assert slot.session.view == {"blocked": True}


async def test_open_view_still_runs_when_the_store_is_down() -> None:
    ran = []
    async with open_view(DownSessionStore(), KEY) as view:
        ran.append(dict(view))
    assert ran == [{}]


async def test_open_view_lets_the_blocks_own_errors_through() -> None:
    store = MemorySessionStore()
    with pytest.raises(RuntimeError):
        async with open_view(store, KEY) as view:
            view["seen"] = 3.0
            raise RuntimeError("the delivery failed")
    async with store.chat(KEY) as slot:
        assert slot.session is None  # nothing saved
