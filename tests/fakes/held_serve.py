"""``Engine.serve`` held back: a wrapper that waits for ``release`` before serving, for tests
of what a channel does while updates are in progress."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from channels.core import Serve
from flows.engine import Deliver, Served
from flows.types import Event, SessionKey


def held(release: asyncio.Event,
         started: asyncio.Event | None = None) -> Callable[[Serve], Serve]:
    """Wraps ``Engine.serve`` so that each update waits for ``release`` (``started`` is set
    when the first one waits)."""
    def wrap(serve: Serve) -> Serve:
        async def wrapped(key: SessionKey, event: Event, deliver: Deliver, *,
                          requeue: bool = False) -> Served:
            if started is not None:
                started.set()
            await release.wait()
            return await serve(key, event, deliver, requeue=requeue)

        return wrapped

    return wrap
