"""One contract for both inbox backends (:mod:`storage.inbox`): in-process and a real Redis.

Each chat's updates are queued until served, lowest sequence number first, and one runner at a
time holds the chat's turn. Redis tests share the server with others: each test uses its own
key prefix and deletes only its own keys afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from storage.inbox import MemoryInbox, RedisInbox
from tests.conftest import delete_prefixed

Inbox = MemoryInbox | RedisInbox
CHAT, OTHER, THIRD = "100200300", "6281234567890", "777"
PAYLOAD = '{"update_id": 5, "message": {"text": "Saldo JHT — Rp 1.000.000 ✓"}}'


@pytest.fixture
async def client(redis_url: str, unique_prefix: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A client like production's (``redis_store_from_url``: strings, not bytes)."""
    made = redis.asyncio.from_url(redis_url, decode_responses=True)
    yield made
    await made.aclose()
    await delete_prefixed(redis_url, unique_prefix)


@pytest.fixture(params=["memory", "redis"])
def inbox(request: pytest.FixtureRequest, unique_prefix: str) -> Inbox:
    """Every contract test runs once per backend."""
    if request.param == "memory":
        return MemoryInbox()
    client: redis.asyncio.Redis = request.getfixturevalue("client")
    return RedisInbox(client, prefix=unique_prefix)


async def put(inbox: Inbox, chat: str, payload: str, seq: int | None = None,
              ) -> tuple[int, str | None]:
    """``inbox.put``: the update's sequence number and the turn's token, if the caller now
    holds it (whatever else the backend says)."""
    result = await inbox.put(chat, payload, seq)
    return result[0], result[1]


async def take(inbox: Inbox, chat: str, payload: str, seq: int | None = None) -> str:
    """Put the first update of an idle chat: the turn's token."""
    _, token = await put(inbox, chat, payload, seq)
    assert token is not None, "an idle chat's first put takes its turn"
    return token


async def serve_all(inbox: Inbox, chat: str, token: str) -> list[tuple[int, str]]:
    """What the chat's runner serves, in order, until the queue is empty."""
    served: list[tuple[int, str]] = []
    done: int | None = None
    while (item := await inbox.next(chat, token, done)) is not None:
        served.append(item)
        done = item[0]
    return served


# --- the contract, on both backends ----------------------------------------------------------


async def test_only_the_first_putter_gets_the_turn_while_it_is_held(inbox: Inbox) -> None:
    number, token = await put(inbox, CHAT, "a", 10)
    assert (number, token is not None) == (10, True)
    assert await put(inbox, CHAT, "b", 11) == (11, None)
    assert await put(inbox, CHAT, "c", 12) == (12, None)
    other = await take(inbox, OTHER, "x", 10)  # another chat has its own turn
    assert other != token
    assert await inbox.pending(CHAT) == 3 and await inbox.pending(OTHER) == 1


async def test_next_serves_the_lowest_sequence_first_even_when_put_out_of_order(
        inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "five", 5)
    await put(inbox, CHAT, "three", 3)
    await put(inbox, CHAT, "four", 4)
    await put(inbox, CHAT, "twelve", 12)  # numerically, not as text ("12" < "3")
    assert await serve_all(inbox, CHAT, token) == [(3, "three"), (4, "four"), (5, "five"),
                                                   (12, "twelve")]


async def test_next_without_done_returns_the_same_update_again(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "one", 1)
    await put(inbox, CHAT, "two", 2)
    assert await inbox.next(CHAT, token) == (1, "one")
    assert await inbox.next(CHAT, token) == (1, "one"), "nothing is dropped without done"
    assert await inbox.pending(CHAT) == 2


async def test_next_with_done_drops_the_served_update(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "one", 1)
    await put(inbox, CHAT, "two", 2)
    assert await inbox.next(CHAT, token) == (1, "one")
    assert await inbox.next(CHAT, token, done=1) == (2, "two")
    assert await inbox.pending(CHAT) == 1
    await put(inbox, CHAT, "three", 3)  # joins the running turn
    assert await inbox.next(CHAT, token, done=2) == (3, "three")
    assert await inbox.pending(CHAT) == 1


async def test_an_empty_queue_releases_the_turn_and_the_next_put_takes_a_new_one(
        inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "one", 1)
    assert await inbox.next(CHAT, token) == (1, "one")
    assert await inbox.next(CHAT, token, done=1) is None
    assert await inbox.pending(CHAT) == 0
    assert await inbox.next(CHAT, token) is None, "the turn is gone with the empty queue"
    number, again = await put(inbox, CHAT, "two", 2)
    assert number == 2 and again is not None and again != token
    assert await inbox.next(CHAT, token) is None, "the old token serves nothing"
    assert await inbox.next(CHAT, again) == (2, "two")


async def test_a_repeated_put_of_the_same_sequence_queues_nothing_more(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "first delivery", 7)
    assert await put(inbox, CHAT, "second delivery", 7) == (7, None)
    assert await put(inbox, CHAT, "third delivery", 7) == (7, None)
    assert await inbox.pending(CHAT) == 1
    assert await serve_all(inbox, CHAT, token) == [(7, "first delivery")]


async def test_without_a_sequence_the_chats_own_counter_keeps_arrival_order(
        inbox: Inbox) -> None:
    number, token = await put(inbox, CHAT, "a")
    assert number == 1 and token is not None
    assert (await put(inbox, CHAT, "b"))[0] == 2
    assert (await put(inbox, OTHER, "x"))[0] == 1, "each chat counts on its own"
    assert (await put(inbox, CHAT, "c"))[0] == 3
    assert await serve_all(inbox, CHAT, token) == [(1, "a"), (2, "b"), (3, "c")]


async def test_next_with_a_wrong_token_returns_none_and_changes_nothing(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "one", 1)
    await put(inbox, CHAT, "two", 2)
    assert await inbox.next(CHAT, "not-the-token") is None
    assert await inbox.next(CHAT, "not-the-token", done=1) is None
    assert await inbox.next(OTHER, token) is None, "a token belongs to its chat"
    assert await inbox.pending(CHAT) == 2
    assert await put(inbox, CHAT, "three", 3) == (3, None), "the turn is still held"
    assert await serve_all(inbox, CHAT, token) == [(1, "one"), (2, "two"), (3, "three")]


async def test_release_keeps_the_queue_and_strands_the_chat_at_once(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "one", 1)
    await put(inbox, CHAT, "two", 2)
    assert await inbox.next(CHAT, token) == (1, "one")
    await inbox.release(CHAT, token)
    assert await inbox.pending(CHAT) == 2, "a hand-back loses nothing"
    assert await inbox.next(CHAT, token) is None, "the released token serves nothing"
    claimed = await inbox.stranded(idle=0)
    assert [chat for chat, _ in claimed] == [CHAT]
    again = claimed[0][1]
    assert again != token
    assert await inbox.stranded(idle=0) == [], "claimed only once"
    assert await put(inbox, CHAT, "three", 3) == (3, None), "the claimant holds the turn"
    assert await serve_all(inbox, CHAT, again) == [(1, "one"), (2, "two"), (3, "three")]
    assert await inbox.stranded(idle=0) == []


async def test_release_with_a_wrong_token_keeps_the_turn(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "one", 1)
    await inbox.release(CHAT, "not-the-token")
    await inbox.release(OTHER, token)
    assert await inbox.stranded(idle=0) == []
    assert await inbox.next(CHAT, token) == (1, "one")


async def test_a_put_after_a_release_takes_the_turn_before_any_sweeper(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "one", 1)
    await inbox.release(CHAT, token)
    await asyncio.sleep(0.005)  # the put's sign of life is later than the sweeper's cutoff
    number, again = await put(inbox, CHAT, "two", 2)
    assert number == 2 and again is not None
    assert await inbox.stranded(idle=0) == [], "the chat has a runner again"
    assert await serve_all(inbox, CHAT, again) == [(1, "one"), (2, "two")]


async def test_stranded_claims_only_handed_back_chats_and_at_most_limit(inbox: Inbox) -> None:
    busy = await take(inbox, THIRD, "busy", 1)  # a live runner: never claimed
    for chat in ("c1", "c2", "c3"):
        await inbox.release(chat, await take(inbox, chat, f"for {chat}", 1))
    first = await inbox.stranded(idle=0, limit=2)
    second = await inbox.stranded(idle=0, limit=2)
    assert len(first) == 2 and len(second) == 1
    assert sorted(chat for chat, _ in first + second) == ["c1", "c2", "c3"]
    assert await inbox.stranded(idle=0) == []
    for chat, token in first + second:
        assert await serve_all(inbox, chat, token) == [(1, f"for {chat}")]
    assert await serve_all(inbox, THIRD, busy) == [(1, "busy")]


async def test_renew_reports_the_lost_turns(inbox: Inbox) -> None:
    assert await inbox.renew({}) == set()
    held = await take(inbox, CHAT, "one", 1)
    released = await take(inbox, OTHER, "x", 1)
    await inbox.release(OTHER, released)
    finished = await take(inbox, THIRD, "y", 1)
    assert await serve_all(inbox, THIRD, finished) == [(1, "y")]
    lost = await inbox.renew({CHAT: held, OTHER: released, THIRD: finished, "none": "t"})
    assert lost == {OTHER, THIRD, "none"}
    assert await inbox.renew({CHAT: "a stranger's token"}) == {CHAT}
    assert await inbox.renew({CHAT: held}) == set()
    assert await inbox.next(CHAT, held) == (1, "one"), "renewing changes nothing else"


async def test_forget_erases_the_queue_and_the_turn(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, "personal data")
    await put(inbox, CHAT, "more personal data")
    await put(inbox, OTHER, "someone else's", 1)
    await inbox.forget(CHAT)
    assert await inbox.pending(CHAT) == 0
    assert await inbox.next(CHAT, token) is None, "the runner stops"
    assert await inbox.renew({CHAT: token}) == {CHAT}
    assert await inbox.stranded(idle=0) == []
    number, again = await put(inbox, CHAT, "new")
    assert number == 1, "the counter is erased too"
    assert again is not None and again != token
    assert await inbox.pending(OTHER) == 1, "only that chat is erased"
    await inbox.forget("never seen")  # erasing nothing is fine


async def test_pending_counts_each_chats_queued_updates(inbox: Inbox) -> None:
    assert await inbox.pending(CHAT) == 0
    token = await take(inbox, CHAT, "a", 1)
    await put(inbox, CHAT, "b", 2)
    await put(inbox, CHAT, "b again", 2)
    await put(inbox, OTHER, "x", 9)
    assert (await inbox.pending(CHAT), await inbox.pending(OTHER)) == (2, 1)
    await inbox.next(CHAT, token)
    assert await inbox.pending(CHAT) == 2, "the update being served is still queued"
    await inbox.next(CHAT, token, done=1)
    assert await inbox.pending(CHAT) == 1


async def test_payloads_come_back_exactly(inbox: Inbox) -> None:
    token = await take(inbox, CHAT, PAYLOAD, 5)
    await put(inbox, CHAT, "", 6)
    assert await serve_all(inbox, CHAT, token) == [(5, PAYLOAD), (6, "")]


async def test_a_telegram_sized_update_id_keeps_its_order(inbox: Inbox) -> None:
    base = 2**31 + 123_456_789  # update_ids are large; scores must stay exact
    token = await take(inbox, CHAT, "later", base + 1)
    await put(inbox, CHAT, "earlier", base)
    assert await serve_all(inbox, CHAT, token) == [(base, "earlier"), (base + 1, "later")]


async def test_concurrent_puts_hand_out_exactly_one_turn(inbox: Inbox) -> None:
    results = await asyncio.gather(*(put(inbox, CHAT, f"u{n}", n) for n in range(20)))
    tokens = [token for _, token in results if token is not None]
    assert len(tokens) == 1
    served = await serve_all(inbox, CHAT, tokens[0])
    assert [number for number, _ in served] == list(range(20))


# --- Redis only: leases, expiry, what stays behind, retried scripts ---------------------------


@pytest.fixture
def redis_inbox(client: redis.asyncio.Redis, unique_prefix: str) -> RedisInbox:
    return RedisInbox(client, prefix=unique_prefix)


async def test_a_turn_whose_lease_ran_out_is_claimed_and_the_old_token_serves_nothing(
        client: redis.asyncio.Redis, unique_prefix: str) -> None:
    inbox = RedisInbox(client, prefix=unique_prefix, lease=0.2)
    old = await take(inbox, CHAT, "one", 1)
    await put(inbox, CHAT, "two", 2)
    assert await inbox.next(CHAT, old) == (1, "one")
    assert await inbox.stranded(idle=0) == [], "the lease still holds"
    await asyncio.sleep(0.3)  # the runner's process died: no renew, no next
    claimed = await inbox.stranded(idle=0)
    assert [chat for chat, _ in claimed] == [CHAT]
    new = claimed[0][1]
    assert await inbox.next(CHAT, old, done=1) is None, "the old runner stops"
    assert await inbox.pending(CHAT) == 2, "and drops nothing: it was not its turn"
    assert await inbox.renew({CHAT: old, "x": "y"}) == {CHAT, "x"}
    assert await serve_all(inbox, CHAT, new) == [(1, "one"), (2, "two")]


async def test_an_expired_lease_lets_the_next_put_take_the_turn(
        client: redis.asyncio.Redis, unique_prefix: str) -> None:
    inbox = RedisInbox(client, prefix=unique_prefix, lease=0.2)
    old = await take(inbox, CHAT, "one", 1)
    await asyncio.sleep(0.3)
    number, new = await put(inbox, CHAT, "two", 2)
    assert number == 2 and new is not None and new != old
    assert await inbox.stranded(idle=0) == []
    assert await serve_all(inbox, CHAT, new) == [(1, "one"), (2, "two")]


async def test_renewing_keeps_a_turn_past_its_lease(
        client: redis.asyncio.Redis, unique_prefix: str) -> None:
    inbox = RedisInbox(client, prefix=unique_prefix, lease=0.3)
    token = await take(inbox, CHAT, "one", 1)
    for _ in range(4):
        await asyncio.sleep(0.15)
        assert await inbox.renew({CHAT: token}) == set()
    assert await inbox.stranded(idle=0) == []
    assert await inbox.next(CHAT, token) == (1, "one")


async def test_stranded_waits_for_idle_seconds_of_silence(
        client: redis.asyncio.Redis, unique_prefix: str) -> None:
    inbox = RedisInbox(client, prefix=unique_prefix, lease=0.1)
    await take(inbox, CHAT, "one", 1)
    await asyncio.sleep(0.2)  # the lease ran out, but the chat was active 0.2 s ago
    assert await inbox.stranded(idle=5.0) == []
    assert [chat for chat, _ in await inbox.stranded(idle=0.1)] == [CHAT]


async def test_queued_keys_expire(client: redis.asyncio.Redis, unique_prefix: str) -> None:
    inbox = RedisInbox(client, prefix=unique_prefix, lease=5.0, ttl=60.0)
    await take(inbox, CHAT, "one")
    tag = f"{unique_prefix}inbox:{{{CHAT}}}"
    for suffix in ("queue", "payloads", "seq"):
        ttl = await client.pttl(f"{tag}:{suffix}")
        assert 50_000 < ttl <= 60_000, (suffix, ttl)
    assert 0 < await client.pttl(f"{tag}:runner") <= 5_000
    keys = sorted([key async for key in client.scan_iter(match=f"{unique_prefix}*")])
    assert keys == sorted([f"{tag}:queue", f"{tag}:payloads", f"{tag}:seq", f"{tag}:runner",
                           f"{unique_prefix}inbox:active"])


async def test_no_key_holds_the_payload_once_it_is_served(
        client: redis.asyncio.Redis, redis_inbox: RedisInbox, unique_prefix: str) -> None:
    marker = "NIK 3174012345678901"
    token = await take(redis_inbox, CHAT, f'{{"text": "{marker}"}}', 1)
    await put(redis_inbox, CHAT, f'{{"text": "again {marker}"}}', 2)
    await put(redis_inbox, CHAT, "no marker", 3)
    served = await serve_all(redis_inbox, CHAT, token)
    assert len(served) == 3
    left: dict[str, object] = {}
    async for key in client.scan_iter(match=f"{unique_prefix}*"):
        kind = await client.type(key)
        if kind == "string":
            left[key] = await client.get(key)
        elif kind == "hash":
            left[key] = await client.hgetall(key)
        elif kind == "zset":
            left[key] = await client.zrange(key, 0, -1, withscores=True)
        else:  # pragma: no cover - the inbox makes no other kind
            left[key] = kind
    assert marker not in repr(left), left
    assert left == {}, left


async def test_a_chat_whose_queue_expired_leaves_the_index(
        client: redis.asyncio.Redis, redis_inbox: RedisInbox, unique_prefix: str) -> None:
    token = await take(redis_inbox, CHAT, "one", 1)
    await redis_inbox.release(CHAT, token)
    tag = f"{unique_prefix}inbox:{{{CHAT}}}"
    await client.delete(f"{tag}:queue", f"{tag}:payloads")  # as their TTL would
    assert await redis_inbox.stranded(idle=0) == []
    assert await client.exists(f"{unique_prefix}inbox:active") == 0


async def test_a_queued_entry_without_its_payload_is_skipped(
        client: redis.asyncio.Redis, redis_inbox: RedisInbox, unique_prefix: str) -> None:
    token = await take(redis_inbox, CHAT, "one", 1)
    await put(redis_inbox, CHAT, "two", 2)
    await client.hdel(f"{unique_prefix}inbox:{{{CHAT}}}:payloads", "1")
    assert await serve_all(redis_inbox, CHAT, token) == [(2, "two")]
    assert await redis_inbox.pending(CHAT) == 0


async def test_the_scripts_are_safe_to_send_twice(
        redis_inbox: RedisInbox, unique_prefix: str) -> None:
    """What redis-py does when a reply is lost after the script ran: the same call again."""
    private = redis_inbox  # the scripts and key names are the inbox's own
    keys = [*private._keys(CHAT), f"{unique_prefix}inbox:active"]  # noqa: SLF001
    put_script, next_ = private._put, private._next  # noqa: SLF001
    for _ in range(2):  # a retried put finds its own turn: held, and queued once
        assert (await put_script(keys, ["one", "1", "token-a", 30_000, 60_000, 1, CHAT]))[:2] == [
            1, "1"]
    assert (await put_script(keys, ["two", "2", "token-b", 30_000, 60_000, 1, CHAT]))[:2] == [
        0, "2"]
    assert await redis_inbox.pending(CHAT) == 2
    queue, payloads, runner, _ = keys[:4]
    next_keys = [queue, payloads, runner, keys[4]]
    for _ in range(2):  # a retried next drops the served update once and returns the same
        assert await next_(next_keys, ["token-a", "1", 30_000, 1, CHAT]) == ["2", "two"]
    assert await redis_inbox.pending(CHAT) == 1
    assert await next_(next_keys, ["token-a", "2", 30_000, 1, CHAT]) == 0  # released
    assert await next_(next_keys, ["token-a", "2", 30_000, 1, CHAT]) == -1  # its retry: gone
    assert await redis_inbox.pending(CHAT) == 0


async def test_a_public_put_repeated_after_a_lost_reply_is_one_update(
        redis_inbox: RedisInbox) -> None:
    token = await take(redis_inbox, CHAT, "one", 1)
    assert await put(redis_inbox, CHAT, "one", 1) == (1, None)
    assert await redis_inbox.pending(CHAT) == 1
    assert await redis_inbox.next(CHAT, token, done=None) == (1, "one")
    assert await redis_inbox.next(CHAT, token, done=1) is None
    assert await redis_inbox.next(CHAT, token, done=1) is None, "a retried next is harmless"


async def test_two_prefixes_never_see_each_others_chats(
        client: redis.asyncio.Redis, unique_prefix: str) -> None:
    mine = RedisInbox(client, prefix=unique_prefix)
    theirs = RedisInbox(client, prefix=f"{unique_prefix}other:")
    await mine.release(CHAT, await take(mine, CHAT, "mine", 1))
    assert await theirs.stranded(idle=0) == []
    assert await theirs.pending(CHAT) == 0
    assert [chat for chat, _ in await mine.stranded(idle=0)] == [CHAT]
