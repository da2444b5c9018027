"""``Engine.serve`` standing in for channel tests that need no flows: every update is answered
with the same scripted replies, and the events are kept for assertions."""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.engine import Deliver, Served
from flows.types import Event, Reply, SessionKey


@dataclass
class Scripted:
    """``Engine.serve`` standing in: every update is answered with ``replies``."""

    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    async def __call__(self, key: SessionKey, event: Event, deliver: Deliver, *,
                       requeue: bool = False) -> Served:
        self.events.append(event)
        await deliver(list(self.replies), {})
        return Served.ANSWERED
