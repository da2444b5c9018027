"""Acknowledge only what is kept; serve each chat's updates in order, in whatever process.

A channel's webhook (or poller) hands every update to :meth:`Mailroom.put` before it
acknowledges it: the update is queued in the :class:`Inbox` (Redis in production, shared by
every process) under its chat and sequence number, and only then answered 200. When the
inbox cannot take it (Redis down) :class:`~flows.ports.StoreUnavailable` is raised and the
webhook answers a retryable status instead: the platform delivers it again, nothing is lost.

Whoever finds a chat idle takes its *turn* and serves the chat's queued updates one by one,
lowest sequence first, until none is left; updates of that chat received meanwhile by any
process join the queue and are served by the same runner. So a chat's updates are answered
in their platform order even when consecutive ones reach different processes, and never two
at once. An update whose serving could not start (the session store down:
:class:`~flows.engine.NotServed`) stays queued and is tried again after a pause, and again,
for about :data:`PATIENCE` seconds; the last try answers with the engine's apology, so that a
member is never left waiting for ever. A runner that stops hands its turn back; one whose
process died loses it when its lease runs out, and the sweeper of any process
(:meth:`Mailroom.sweep`) takes such stranded chats up again. A process that stops drains
what it runs and hands back the rest: a deploy loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from app.metrics import Metrics
from flows.ports import PortUnavailable, StoreUnavailable
from storage.inbox import Put

__all__ = ["PATIENCE", "RETRY_DELAYS", "Handle", "Inbox", "Mailroom"]

log = logging.getLogger(__name__)
_GONE = object()
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)  # between tries of an update not served
PATIENCE = sum(RETRY_DELAYS)  # then the engine's apology answers it (about 16 s)
RENEW_EVERY = 10.0  # a third of the inbox's lease
SWEEP_EVERY = 5.0
STRANDED_AFTER = 15.0  # a chat whose runner showed no sign of life for this long is taken up


class Inbox(Protocol):
    """Updates kept per chat until served, with one runner per chat at a time
    (:mod:`storage.inbox`). Every method raises :class:`StoreUnavailable` when the backend
    cannot be reached."""

    async def put(self, chat: str, payload: str, seq: int | None = None) -> Put:
        """Queue the update: its sequence number; a turn token when the caller now holds
        the chat's turn; whether the update is the first queued (the turn starts with it)."""
        ...

    async def next(self, chat: str, token: str, done: int | None = None,
                   ) -> tuple[int, str] | None:
        """Drop ``done`` and return the lowest queued update; ``None`` when none is left
        (the turn is released) or the turn was lost."""
        ...

    async def release(self, chat: str, token: str) -> None:
        """Hand the turn back, keeping the queue."""
        ...

    async def renew(self, turns: Mapping[str, str]) -> set[str]:
        """Extend the turns' leases: the chats whose turn was lost."""
        ...

    async def stranded(self, idle: float, limit: int = 100) -> list[tuple[str, str]]:
        """Claim chats with queued updates and no live runner: (chat, token) each."""
        ...

    async def pending(self, chat: str) -> int:
        """How many updates of the chat are queued."""
        ...

    async def forget(self, chat: str) -> None:
        """Erase the chat's queue and turn."""
        ...


# Serves one queued update: (chat, sequence number, payload, the update already parsed by
# this process or None, last try). True when served (answered, or dropped as unusable);
# False when its serving could not start and it should be tried again.
Handle = Callable[[str, int, str, Any, bool], Awaitable[bool]]


@dataclass
class _Turn:
    token: str
    task: asyncio.Task[None] | None = None


class Mailroom:
    """Runs the chats' turns of one process on an :class:`Inbox` (the module docstring).

    ``handle`` serves one update; ``channel`` names the metrics' label. At most
    ``max_backlog`` updates received by this process wait unserved before :meth:`put` says
    no (the webhook answers 503; memory stays bounded)."""

    def __init__(self, inbox: Inbox, handle: Handle, *, channel: str, metrics: Metrics,
                 max_backlog: int = 10_000,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if max_backlog < 1:
            raise ValueError("max_backlog must be at least 1")
        self.inbox = inbox
        self._handle = handle
        self._channel = channel
        self._metrics = metrics
        self._max_backlog = max_backlog
        self._delays = retry_delays
        self._sleep = sleep
        self._turns: dict[str, _Turn] = {}
        self._parsed: dict[str, dict[int, Any]] = {}  # received here, not yet served
        self._backlog = 0
        self._closing = False
        self._keeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Renew this process's turns and take up stranded chats in the background
        (:meth:`keep`) until :meth:`drain`; idempotent."""
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self.keep())

    @property
    def backlog(self) -> int:
        """Updates received by this process and not served yet."""
        return self._backlog

    def waiting(self, chat: Hashable) -> int:
        """Updates of ``chat`` received by this process and not served yet (the one being
        served included)."""
        name = str(chat)
        return len(self._parsed.get(name, ()))

    @property
    def running(self) -> int:
        """Chats whose turn this process holds."""
        return len(self._turns)

    async def put(self, chat: Hashable, payload: str, parsed: Any, seq: int | None = None,
                  ) -> bool:
        """Keep the update (``payload``, and ``parsed`` for this process's runner) and serve
        it in the chat's turn. False, nothing kept, when the backlog is full or the process is
        stopping; :class:`StoreUnavailable` when the inbox could not keep it."""
        if self._closing or self._backlog >= self._max_backlog:
            self._metrics.errors.labels("overload").inc()
            return False
        self.start()
        name = str(chat)
        put = await self.inbox.put(name, payload, seq)
        if put.token is not None and self._closing:  # a drain began meanwhile: kept, and
            await self._hand_back(name, put.token)  # left for the next runner
            return True
        if put.token is not None or name in self._turns:  # served here: not parsed again
            held = self._parsed.setdefault(name, {})
            if put.seq not in held:
                held[put.seq] = parsed
                self._backlog += 1
        if put.token is not None:
            self._start(name, put.token, (put.seq, payload) if put.first else None)
        return True

    def _start(self, chat: str, token: str, first: tuple[int, str] | None = None) -> None:
        turn = _Turn(token)
        self._turns[chat] = turn
        turn.task = asyncio.create_task(self._run(chat, turn, first))

    async def _run(self, chat: str, turn: _Turn, first: tuple[int, str] | None) -> None:
        done: int | None = None
        try:
            while True:
                item = first or await self._next(chat, turn.token, done)
                first = None
                if item is None:
                    return
                number, payload = item
                if not await self._serve(chat, number, payload):
                    await self._hand_back(chat, turn.token)
                    return
                done = number
        except asyncio.CancelledError:
            await self._hand_back(chat, turn.token)
            raise
        except Exception as exc:  # noqa: BLE001 - a runner must not die silently
            log.error("a %s chat's runner failed: %s", self._channel, type(exc).__name__)
            await self._hand_back(chat, turn.token)
        finally:
            if self._turns.get(chat) is turn:
                del self._turns[chat]
            self._drop_parsed(chat)

    async def _next(self, chat: str, token: str, done: int | None) -> tuple[int, str] | None:
        """The chat's next update; ``None`` when there is none or the inbox stays down (the
        turn's lease then runs out and a sweeper takes the chat up again)."""
        for delay in (*self._delays, None):
            try:
                return await self.inbox.next(chat, token, done)
            except StoreUnavailable:
                if delay is None:
                    log.warning("a %s chat's queue is unreachable; left for the sweeper",
                                self._channel)
                    return None
                await self._sleep(delay)
        return None  # pragma: no cover - the loop returns

    async def _serve(self, chat: str, number: int, payload: str) -> bool:
        """Serve one update, trying again while its serving cannot start (a drain's timeout
        cuts the tries short: the update stays queued); false when it was not served."""
        parsed = self._parsed.get(chat, {}).get(number)  # in the backlog until served
        try:
            for delay in (*self._delays, None):
                if await self._handle(chat, number, payload, parsed, delay is None):
                    return True
                self._metrics.errors.labels("requeued").inc()
                if delay is None:
                    return False
                await self._sleep(delay)
            return False  # pragma: no cover - the loop returns
        finally:
            self._forget_parsed(chat, number)

    async def _hand_back(self, chat: str, token: str) -> None:
        with contextlib.suppress(PortUnavailable):  # else the lease runs out: a sweeper
            await self.inbox.release(chat, token)  # takes the chat up

    def _forget_parsed(self, chat: str, number: int) -> None:
        held = self._parsed.get(chat)
        if held is not None and held.pop(number, _GONE) is not _GONE:
            self._backlog -= 1
            if not held:
                del self._parsed[chat]

    def _drop_parsed(self, chat: str) -> None:
        if chat in self._turns:
            return
        held = self._parsed.pop(chat, None)
        if held:
            self._backlog -= len(held)

    # --- keeping turns alive, taking up stranded chats, stopping ------------------------

    async def renew(self) -> int:
        """Extend the leases of this process's turns: how many were lost (a Redis restart
        without persistence loses them all). A runner whose turn was lost finishes the
        update in hand, which the chat's session lock keeps apart from another runner's,
        and stops at its next :meth:`Inbox.next`: cancelling it mid-update would lose that
        update when the restart also lost the queue."""
        turns = {chat: turn.token for chat, turn in self._turns.items()}
        try:
            lost = await self.inbox.renew(turns)
        except PortUnavailable:
            log.warning("could not renew the %s chats' turns", self._channel)
            return 0
        lost = {chat for chat in lost  # a turn that ended meanwhile was released, not lost
                if (turn := self._turns.get(chat)) is not None and turn.token == turns[chat]}
        if lost:
            log.warning("%d %s chats' turns were lost; their runners stop after the update "
                        "in hand", len(lost), self._channel)
        return len(lost)

    async def sweep(self, idle: float = STRANDED_AFTER) -> int:
        """Take up chats left with queued updates and no runner: how many."""
        if self._closing:
            return 0
        try:
            claimed = await self.inbox.stranded(idle)
        except PortUnavailable:
            return 0
        for chat, token in claimed:
            if chat in self._turns:  # ours already (an old runner ending): let it finish
                await self._hand_back(chat, token)
                continue
            self._start(chat, token)
        return len(claimed)

    async def keep(self, *, renew_every: float = RENEW_EVERY,
                   sweep_every: float = SWEEP_EVERY) -> None:
        """Renew and sweep until cancelled (one task per process)."""
        ticks = 0
        while True:
            await asyncio.sleep(sweep_every)  # real time, whatever sleep the retries use
            ticks += 1
            if ticks * sweep_every >= renew_every:
                ticks = 0
                await self.renew()
            await self.sweep()

    async def drain(self, timeout: float = 30.0) -> int:
        """Stop taking updates, let the running turns finish for ``timeout`` seconds, then
        stop the rest and hand their chats back (their updates stay queued for another
        process, or the next start): how many turns were handed back."""
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        tasks = [t.task for t in self._turns.values() if t.task is not None]
        if not tasks:
            return 0
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if late:
            log.warning("handed back %d %s chats still running at shutdown", len(late),
                        self._channel)
        return len(late)

    def reopen(self) -> None:
        """Take updates again after :meth:`drain` (tests restart a channel)."""
        self._closing = False
