"""Delivery to members outside their updates: the router picks the chat's channel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.outbox import OutboxRouter
from flows.types import Reply, SessionKey


@dataclass
class _Recording:
    keys: list[SessionKey] = field(default_factory=list)

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        self.keys.append(key)
        return True


async def test_the_router_picks_the_chat_channel() -> None:
    telegram, whatsapp = _Recording(), _Recording()
    router = OutboxRouter({"telegram": telegram, "whatsapp": whatsapp})
    assert await router.deliver(SessionKey("whatsapp", "628"), [Reply("halo")])
    assert await router.deliver(SessionKey("telegram", "7"), [Reply("halo")])
    assert (whatsapp.keys, telegram.keys) == ([SessionKey("whatsapp", "628")],
                                              [SessionKey("telegram", "7")])
    assert router.channels == frozenset({"telegram", "whatsapp"})
    assert await router.deliver(SessionKey("sms", "1"), [Reply("halo")]), \
        "an unserved channel is logged, never reported as a member who blocked the bot"


@dataclass
class _Knowing(_Recording):
    known: set[SessionKey] = field(default_factory=set)
    asked: list[list[SessionKey]] = field(default_factory=list)

    async def unreachable(self, keys: Sequence[SessionKey]) -> set[SessionKey]:
        self.asked.append(list(keys))
        return self.known & set(keys)


async def test_the_router_asks_each_channel_that_knows_its_unreachable_chats() -> None:
    blocked = SessionKey("telegram", "7")
    telegram, whatsapp = _Knowing(known={blocked}), _Recording()
    router = OutboxRouter({"telegram": telegram, "whatsapp": whatsapp}, strict=True)
    keys = [SessionKey("whatsapp", "628"), blocked, SessionKey("telegram", "8"),
            SessionKey("sms", "1")]
    assert await router.unreachable(keys) == {blocked}
    assert telegram.asked == [[blocked, SessionKey("telegram", "8")]]  # only its own chats
    assert await router.unreachable([]) == set()
