"""Property tests: any sequence of member events never raises, always answers politely and
always leaves the chat in a declared state (STYLE.md, "Property tests"), on the in-process
store and on a real Redis (whose client refuses text it cannot encode, such as the lone
surrogates a JSON body can carry)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import routes
from flows.engine import Served, View
from flows.ports import SessionBackend
from flows.types import Event, Reply, SayKind, Session, SessionKey
from storage.sessions import MemorySessionStore, redis_store_from_url
from tests.conftest import delete_prefixed
from tests.flows.conftest import SITI, World, world_on

SITI_MASKED_KPJ = "123*****901"
_PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}")
_PROPERTY_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture],
                              deadline=None, max_examples=80)


@dataclass(frozen=True)
class Advance:
    """Not an event: the clock moves on by ``seconds`` before the next event."""

    seconds: float


MEANINGFUL_TEXTS = (
    *(f"/{word}" for word in routes.COMMANDS),  # every command any flow declares
    "/tidakada", "/", "1", "2.", "3)", "12", "cek saldo", "riwayat iuran",
    "halo", "terima kasih", "batal", "menu", "ya", "hapus", "setuju", "tidak", "english",
    SITI["nik"], SITI["kpj"], SITI["birth"], SITI["phone"], "+6281234567890", "123456",
    "123 456", "000000", "3171014501900000", "31-02-1990", "01-01-2990",
    f"DAFTAR SALDO#{SITI['nik']}#{SITI['birth']}#{SITI['kpj']}#siti@example.com",
    f"DAFTAR SALDO#{SITI['nik']}#Siti Rahayu#{SITI['birth']}#{SITI['kpj']}#x@example.com",
    "DAFTAR SALDO#", "DAFTAR SALDO#1#2#3#4#5#6#7", "SALDO", "SALDO 12345678901",
    "saldo jht brp ya", "cara klaim jht", "{kpj} {n} {minutes}", "%s %d",
)
BUTTON_DATA = (
    "reg:agree", "reg:decline", "reg:retry_nik", "otp:resend", "lang:id", "lang:en",
    "lang:fr", "acct:erase", "acct:logout", "acct:keep", "kpj:0", "kpj:1", "kpj:all",
    "bal:refresh", "bal:history", "hist:older", "hist:newer", "hist:year:2020",
    "hist:year:all", "faq:yes", "faq:no", "contact", "go:", "go:nope", "ho:yes", "ho:no",
    "rate:3", "rate:9", "go:handoff:not_understood",
    *(f"go:{name}" for name in routes.ENTRIES),
)
WEIRD_TEXTS = (
    "", " ", "\n\n", "\x00\x01\x1b[31m", "😀👍🏽🇮🇩", "\u200b\u200d", "e\u0301", "\u202ereversed",
    "٣١٧١٠١٤٥٠١٩٠٠٠٠١", "３１７１０１４５０１９０００００１", "Traceback (most recent call last)",
    "\ud800", "halo\udfff", "\ud83d\ude00 split pair", "/daftar\ud800",
)
# Lone surrogates: st.text() never draws them, a JSON "\ud800" escape does.
UNENCODABLE = ("\ud800", "reg:agree\udfff", "go:\ud83d", "lang:\udc80en", "kpj:0\ud800")

texts = st.one_of(
    st.sampled_from(MEANINGFUL_TEXTS),
    st.sampled_from(WEIRD_TEXTS),
    st.text(max_size=40),
    st.text(alphabet="0123456789 -./#", max_size=20),
    st.builds(lambda chunk, n: chunk * n, st.text(min_size=1, max_size=8),
              st.integers(min_value=500, max_value=1200)),
)
language_codes = st.sampled_from(["id", "en", "en-US", "", "fr", "ID_id", "zz-ZZ-x", "e\ud800n"])
events = st.one_of(
    st.builds(Event.message, texts, language_code=language_codes),
    st.builds(Event.button, st.one_of(st.sampled_from(BUTTON_DATA), st.text(max_size=30),
                                      st.sampled_from(UNENCODABLE)),
              language_code=language_codes),
    st.builds(Event.contact,
              st.one_of(st.sampled_from([SITI["phone"], "+6281234567890", "6281234567890",
                                         "+6285612345678", "+14155550100", "",
                                         "+62812\ud80034567890"]),
                        st.text(max_size=20)),
              own=st.booleans(), language_code=language_codes),
    st.builds(Advance, st.floats(min_value=0, max_value=2000, allow_nan=False)),
)
scripts = st.lists(events, min_size=1, max_size=15)


@pytest.fixture(params=["memory", "redis"])
async def world(request: pytest.FixtureRequest, tmp_path: Path,
                unique_prefix: str) -> AsyncIterator[World]:
    """tests/flows/conftest.py's world, on the in-process store and on a real Redis (the
    session store and the key-value port both: OTP counters, caches, dedupe marks)."""
    url = ""
    store: SessionBackend = MemorySessionStore()
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        store = on_redis = redis_store_from_url(url, prefix=unique_prefix)
    async with world_on(tmp_path, store) as built:
        yield built
    if url:
        await on_redis.aclose()
        await delete_prefixed(url, unique_prefix)


# The engine's apology for a crashed step, in both languages: it must never be needed.
_FAULTS = ("something went wrong on our side", "terjadi gangguan di sistem kami")


def _check_replies(replies: list[Reply]) -> None:
    assert replies, "every event gets an answer"
    spoken = [r for r in replies if r.kind is not SayKind.DELETE_MEMBER_MESSAGE]
    assert any(r.text.strip() for r in spoken), replies
    for reply in replies:
        assert isinstance(reply.text, str)
        assert "Traceback" not in reply.text, reply.text
        assert not any(fault in reply.text for fault in _FAULTS), "no step may crash"
        assert not _PLACEHOLDER.search(reply.text), reply.text
        for row in reply.buttons:
            for button in row:
                assert button.label.strip() and button.data, reply
                assert not _PLACEHOLDER.search(button.label), button


async def _stored_or_none(world: World, key: SessionKey) -> Session | None:
    async with world.store.chat(key) as slot:
        return slot.session


async def _stored(world: World, key: SessionKey) -> Session:
    async with world.store.chat(key) as slot:
        assert slot.session is not None, "a handled event always leaves a session"
        return slot.session


async def _play(world: World, key: SessionKey, script: list[Event | Advance]) -> list[str]:
    """Send every event, checking the properties after each; returns all reply texts."""
    seen: list[str] = []
    for item in script:
        if isinstance(item, Advance):
            world.clock.advance(item.seconds)
            continue
        before = await _stored_or_none(world, key)
        replies = await world.engine.handle(key, item)
        relayed = before is not None and before.state == "handoff:active"
        if not (relayed and not replies):  # relayed to an agent: the bot stays silent
            _check_replies(replies)
        seen.extend(r.text for r in replies)
        seen.extend(b.label for r in replies for row in r.buttons for b in row)
        session = await _stored(world, key)
        assert session.state in world.engine.states, session.state
    return seen


@_PROPERTY_SETTINGS
@given(script=scripts)
async def test_any_events_always_answer_and_leave_a_declared_state(
        world: World, script: list[Event | Advance]) -> None:
    await _play(world, SessionKey("prop", uuid.uuid4().hex), script)


_TO_BIRTH_DATE = (Event.message("/daftar"), Event.button("reg:agree"),
                  Event.message(SITI["nik"]), Event.message(SITI["kpj"]))
PREFIXES = {
    "consent": (Event.message("/daftar"),),
    "birth date": _TO_BIRTH_DATE,
    "phone": (*_TO_BIRTH_DATE, Event.message(SITI["birth"])),
    "code": (*_TO_BIRTH_DATE, Event.message(SITI["birth"]),
             Event.contact(SITI["phone"], own=True)),
    "erase": (Event.message("/hapusdata"),),
    "language": (Event.message("/start"),),
    "faq": (Event.button("go:faq.claim_jht"),),
}


@_PROPERTY_SETTINGS
@given(prefix=st.sampled_from(sorted(PREFIXES)), script=scripts)
async def test_events_from_inside_every_flow_keep_the_properties(
        world: World, prefix: str, script: list[Event | Advance]) -> None:
    key = SessionKey("prop", uuid.uuid4().hex)
    await _play(world, key, [*PREFIXES[prefix], *script])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
          max_examples=40)
@given(script=scripts)
async def test_a_chat_never_sees_another_chats_masked_kpj(
        world: World, script: list[Event | Advance]) -> None:
    linked = world.chat("owner-A")
    if not await world.accounts.linked_kpjs(linked.key):
        assert SITI_MASKED_KPJ in await linked.register()
    assert SITI_MASKED_KPJ in await linked.say("cek saldo"), "the owner sees their own KPJ"
    seen = await _play(world, SessionKey("test", "other-" + uuid.uuid4().hex), script)
    assert not any(SITI_MASKED_KPJ in text for text in seen)
    assert not any(SITI["kpj"] in text or SITI["nik"] in text for text in seen)


SURROGATE_EVENTS = {
    "text": Event.message("halo\ud800"),
    "a command's arguments": Event.message("/bahasa e\udfffn"),
    "button data": Event.button("reg:agree\ud800"),
    "button data alone": Event.button("\udfff"),
    "a shared contact": Event.contact("+62812\ud80034567890", own=True),
    "the language code": Event.message("halo", language_code="i\ud800d"),
}


@pytest.mark.parametrize("what", sorted(SURROGATE_EVENTS))
async def test_a_lone_surrogate_anywhere_in_an_event_is_answered_on_every_store(
        world: World, what: str) -> None:
    key = SessionKey("prop", uuid.uuid4().hex)
    await world.engine.handle(key, Event.message("/daftar"))
    replies = await world.engine.handle(key, SURROGATE_EVENTS[what])
    _check_replies(replies)
    assert (await _stored(world, key)).state in world.engine.states
    delivered: list[list[Reply]] = []

    async def deliver(replies: list[Reply], view: View) -> None:
        delivered.append(replies)

    served = await world.engine.serve(key, Event.button("reg:agree\ud800"), deliver)
    assert served is Served.ANSWERED
    event = Event.button("go:faq\udfff")
    once = Event(event.kind, data=event.data, update_id="u\ud800-1")
    assert await world.engine.serve(key, once, deliver) is Served.ANSWERED
    assert await world.engine.serve(key, once, deliver) is Served.REPEAT  # the mark was kept
    assert len(delivered) == 2
    for replies in delivered:
        _check_replies(replies)
