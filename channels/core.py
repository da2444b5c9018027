"""What every channel shares: the skeleton of one update, per-chat order within a process,
background tasks, a chat's view outside an update, the apology, and store keys.

A channel is a thin adapter: it parses its platform's update into an
:class:`~flows.types.Event`, hands it to :meth:`flows.engine.Engine.serve` with a ``deliver``
callback that turns :class:`~flows.types.Reply` values (each carrying its locale) into platform
calls, and counts what happened. The pieces below are the parts of that skeleton that do not
depend on the platform:

* :class:`Updates` runs one update: the chat's turn in this process (:class:`ChatQueue`), the
  caller's work (which calls :meth:`Updates.serve`, i.e. ``Engine.serve`` counted), the
  metrics (updates, duplicates, errors by kind, latency) and, on an exception, the channel's
  apology hook;
* :class:`Tasks` keeps background work (webhook updates) for :meth:`Tasks.drain` at shutdown;
* :func:`open_view` locks a chat outside an update (an agent's answer) and lends its
  ``Session.view`` to the caller, saved afterwards, as ``Engine.serve`` lends it to ``deliver``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

from app.metrics import Metrics
from flows.engine import Deliver, NotServed, Served, session_ttl
from flows.i18n import N_
from flows.menu import MENU
from flows.ports import SessionBusy, SessionSlot, SessionStore, StoreUnavailable
from flows.types import Event, Session, SessionKey

__all__ = ["APOLOGY", "Apologise", "ChatQueue", "Serve", "Tasks", "Updates", "describe",
           "open_view", "split_text", "store_key"]

log = logging.getLogger(__name__)


class Serve(Protocol):
    """:meth:`flows.engine.Engine.serve`."""

    def __call__(self, key: SessionKey, event: Event, deliver: Deliver, *,
                 requeue: bool = False) -> Awaitable[Served]:
        """Answer the event and deliver the replies under the chat's lock."""
        ...


Apologise = Callable[[Exception], Awaitable[None]]  # the channel says APOLOGY to the chat

# What a member reads when their update failed outside the engine (a platform error, a bug in
# the channel): the engine's own faults are answered by the engine, in the chat's language.
APOLOGY = N_("Sorry, something went wrong on our side. Please try again; what you typed "
             "before is kept.")

Chat = TypeVar("Chat", bound=Hashable)


class ChatQueue(Generic[Chat]):
    """Per-chat FIFO locks of this process, kept only while held or awaited.

    ``asyncio.Lock`` wakes waiters in order and takes a free lock without suspending, so
    entering :meth:`hold` before any other ``await`` keeps the order in which tasks started.
    """

    def __init__(self) -> None:
        self._locks: dict[Chat, asyncio.Lock] = {}
        self._users: Counter[Chat] = Counter()

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, chat: Chat) -> AsyncIterator[None]:
        """Hold the chat's turn."""
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._users[chat] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[chat] -= 1
            if not self._users[chat]:
                del self._users[chat], self._locks[chat]


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at line breaks where possible
    (the line break itself is dropped): a platform's message length limit."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        parts.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    return [*parts, rest]


def store_key(channel: str, kind: str, *parts: object) -> str:
    """A key of a channel's own in the shared key-value store: ``"<channel>:<kind>:<parts>"``
    (``store_key("tg", "blocked", 42)`` is ``"tg:blocked:42"``). Parts are ids or pseudonyms,
    never a member's number or text."""
    return ":".join((channel, kind, *(str(part) for part in parts)))


class Updates(Generic[Chat]):
    """The platform-free skeleton of one member update, for a channel named ``channel``.

    ::

        updates = Updates("whatsapp", engine.serve, metrics, platform_errors=(GraphError,))

        async def work() -> None:  # inside the chat's turn: parse, then serve
            await updates.serve(key, event, deliver)

        await updates.run(chat_id, update_ref, work, apologise)

    :meth:`run` holds the chat's turn (first await: arrival order is kept) and, when
    ``concurrency`` is given, one of that many slots; it observes ``bot_update_seconds``. An
    exception out of ``work`` is counted (``bot_updates`` and ``bot_errors`` by kind: ``store``
    for the session store, ``channel`` for ``platform_errors``, else ``internal``), logged
    with ``ref`` and the exception's class (never a member's data) and answered with
    ``apologise(exc)``; :meth:`run` itself raises only :class:`~flows.engine.NotServed` (the
    update was not served and is kept for another try). :meth:`serve` is ``Engine.serve``
    counted: a repeat as ``bot_duplicates``, anything else as ``bot_updates``, a store fault
    (the engine apologised) also as ``bot_errors{kind="store"}``.
    """

    def __init__(self, channel: str, serve: Serve, metrics: Metrics, *,
                 platform_errors: tuple[type[Exception], ...] = (),
                 concurrency: int | None = None) -> None:
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.channel = channel
        self.queue: ChatQueue[Chat] = ChatQueue()
        self._serve = serve
        self._metrics = metrics
        self._platform = platform_errors
        self._slots = asyncio.Semaphore(concurrency) if concurrency is not None else None

    async def run(self, chat: Chat, ref: str, work: Callable[[], Awaitable[object]],
                  apologise: Apologise) -> None:
        """Do ``work`` in the chat's turn; count, log and apologise for what it raises."""
        started = time.perf_counter()
        async with self.queue.hold(chat), self._slots or nullcontext():
            try:
                await work()
            except NotServed:
                raise
            except Exception as exc:  # noqa: BLE001 - every fault gets an apology
                self._metrics.updates.labels(self.channel).inc()
                self._metrics.errors.labels(self.kind(exc)).inc()
                log.error("%s update %s failed: %s", self.channel, ref, describe(exc))
                try:
                    await apologise(exc)
                except Exception as again:  # noqa: BLE001 - nothing more can be done
                    log.error("could not apologise for %s update %s: %s", self.channel, ref,
                              describe(again))
            finally:
                self._metrics.update_seconds.labels(self.channel).observe(
                    time.perf_counter() - started)

    async def serve(self, key: SessionKey, event: Event, deliver: Deliver, *,
                    requeue: bool = False) -> Served:
        """``Engine.serve``, counted; what it raises (``deliver``'s faults) goes to :meth:`run`."""
        served = await self._serve(key, event, deliver, requeue=requeue)
        if served is Served.REPEAT:
            self._metrics.duplicates.inc()
            return served
        self._metrics.updates.labels(self.channel).inc()
        if served is Served.STORE_FAULT:
            self._metrics.errors.labels("store").inc()
        return served

    def kind(self, exc: BaseException) -> str:
        """The ``bot_errors`` label of a fault."""
        if isinstance(exc, StoreUnavailable | SessionBusy):
            return "store"
        return self.channel if isinstance(exc, self._platform) else "internal"


def describe(exc: BaseException) -> str:
    """An exception for a log line: its class, its numeric ``code`` when it has one (a
    platform's error code) and where it was raised; never its message, which may quote a
    member's data."""
    code = getattr(exc, "code", None)
    name = type(exc).__name__ + (f" {code:_}" if isinstance(code, int) else "")
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{name} at {frames[-1].filename}:{frames[-1].lineno}" if frames else name


class Tasks:
    """Background work of a channel (webhook updates answered at once, served later), awaited
    by :meth:`drain` at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` as a task kept until it ends."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float = 30.0) -> int:
        """Wait for the tasks (not the caller's own); cancel those still running after
        ``timeout`` and return how many were cancelled."""
        pending = {t for t in self._tasks if t is not asyncio.current_task()}
        if not pending:
            return 0
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            log.warning("cancelled %d tasks still running at shutdown", len(late))
            await asyncio.wait(late)
        return len(late)


@asynccontextmanager
async def open_view(sessions: SessionStore, key: SessionKey,
                    ttl_for: Callable[[Session], float | None] = session_ttl, *,
                    shown: tuple[tuple[str, str], ...] | None = None,
                    ) -> AsyncIterator[dict[str, Any]]:
    """Lock the chat across processes and lend its ``Session.view`` (a mutable dict, empty
    without a session); save it when the block ends: what ``Engine.serve`` lends ``deliver``,
    for a delivery the engine did not make (an agent's answer, an alert). Two round trips.
    ``shown``, when given, becomes ``Session.shown``: the buttons of what was delivered, so
    that a member who types a button's number or label presses it (a WhatsApp template lists
    its buttons as numbers).

    When the store is busy or down the block still runs, unlocked and with an empty view
    (answering out of order beats not answering); a failed save is logged, not raised. A chat
    without a session gets a resting one (the menu) only when the view holds something."""
    finished = False
    try:
        async with AsyncExitStack() as stack:
            try:
                slot = await stack.enter_async_context(sessions.chat(key))
            except (SessionBusy, StoreUnavailable) as exc:
                log.warning("%s chat served without its lock: %s", key.channel,
                            type(exc).__name__)
                slot = SessionSlot(None)
            view = dict(slot.session.view) if slot.session is not None else {}
            yield view
            finished = True
            if slot.session is not None:
                slot.session = replace(slot.session, view=view,
                                       shown=slot.session.shown if shown is None else shown)
            elif view or shown:
                slot.session = Session(MENU, view=view, updated_at=time.time(),
                                       shown=shown or ())
            slot.ttl = ttl_for(slot.session) if slot.session is not None else None
    except (SessionBusy, StoreUnavailable) as exc:
        if not finished:
            raise
        log.warning("could not save the view of a %s chat: %s", key.channel, type(exc).__name__)
