"""Holding requests in the fake Bot API server: the platform stops answering mid-pass.

:meth:`Hold.hold_after` lets the next ``count`` calls of a method (``sendMessage`` by default)
through; from then on every request, of any method, waits unanswered and unrecorded until
:meth:`Hold.release`. What it models: Telegram has not yet received a request that waits
here. So a held request whose client connection is gone (the bot's process was killed, or it
gave up and closed the connection) is dropped, never recorded: the platform never got it and
the member never saw the message. A held request whose client is still connected at the
release is served and recorded as if it had just arrived (a slow platform, not a lost call).

The fake serves on one event loop, so counting and deciding to hold happen without a yield in
between: exactly ``count`` calls of the method are let through, whatever the concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from aiohttp import web

__all__ = ["Hold"]

POLL: Final = 0.02  # seconds between checks of a held request's connection


def connection_gone(request: web.Request) -> bool:
    """Whether the client of ``request`` closed its connection (or lost it)."""
    transport = request.transport
    return transport is None or transport.is_closing()


class Hold:
    """Holds requests once ``count`` calls of a method went through; see the module
    docstring. ``held`` is how many wait now, ``dropped`` how many were given up because
    their connection was gone."""

    def __init__(self) -> None:
        self._method = ""
        self._left: int | None = None  # None: not holding; else calls let through before it
        self._released = asyncio.Event()
        self._released.set()
        self.held = 0
        self.dropped = 0

    def hold_after(self, count: int, method: str = "sendMessage") -> None:
        """Let the next ``count`` calls of ``method`` through, then hold every request."""
        if count < 0:
            raise ValueError("count must not be negative")
        self._method, self._left = method, count
        self._released.clear()

    def release(self) -> None:
        """Stop holding: requests still waiting (their client connected) are served now."""
        self._left = None
        self._released.set()

    async def admit(self, request: web.Request, method: str) -> bool:
        """Whether to serve the request (``method`` is its canonical name): at once when not
        holding or while calls of the method are let through; else after the release, unless
        its connection is gone first (or at the release), then ``False``: dropped."""
        if self._left is None:
            return True
        if self._left > 0:
            if method == self._method:
                self._left -= 1
            return True
        self.held += 1
        try:
            while not self._released.is_set():
                if connection_gone(request):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), POLL)
        finally:
            self.held -= 1
        if connection_gone(request):
            self.dropped += 1
            return False
        return True
