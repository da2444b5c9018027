"""Extending the bot touches only what the README's recipes say: a flow declares its entries
and commands (routes, /bantuan and the command menu follow), an FAQ topic is its content and
its phrases (the intent, the route, the topic list and the classifier follow)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flows import routes
from flows.engine import Engine
from flows.flow import Command, Context, Flow, Outcome, say, step
from flows.i18n import Catalog
from flows.intents import Intent, classify
from flows.menu import MENU
from flows.routes import Routes
from flows.types import Event, SessionKey
from tests.flows.conftest import World

ROOT = Path(__file__).resolve().parents[2]

ASK, ANSWER = "weather:ask", "weather:answer"


async def _ask(ctx: Context) -> Outcome:
    return Outcome(ASK, (say("Which city?"),))


async def _answer(ctx: Context) -> Outcome:
    return Outcome(MENU, (say("Sunny in {city}.", city=ctx.event.text),), data={})


WEATHER = Flow("weather", {ASK: step(_answer, MENU)},
               entries={"weather": step(_ask, ASK)},
               commands=(Command("cuaca", "weather", english="weather",
                                 summary="Ask about the weather", aliases=("hujan",)),))


def _classify(text: str) -> Intent:
    """The classifier once the phrases of the new intent are in (the FAQ test below runs the
    real one)."""
    return Intent("weather", 0.9) if "cuaca" in text.lower() else classify(text)


def _engine(world: World) -> Engine:
    return Engine(sessions=world.store, ports=world.engine._ports,  # noqa: SLF001
                  catalog=Catalog(), flows=(*routes.FLOWS, WEATHER), classifier=_classify,
                  strict=True)


async def _say(engine: Engine, text: str, chat: str = "w1", language: str = "id") -> str:
    replies = await engine.handle(SessionKey("test", chat), Event.message(
        text, language_code=language))
    return "\n".join(r.text for r in replies)


async def test_a_new_flow_is_routed_from_its_command_button_and_intent(world: World) -> None:
    engine = _engine(world)
    for opening in ("/cuaca", "/weather", "/hujan", "cuaca hari ini?"):
        assert await _say(engine, opening) == "Which city?", opening
        assert await _say(engine, "Jakarta") == "Sunny in Jakarta."
    replies = await engine.handle(SessionKey("test", "w1"), Event.button("go:weather"))
    assert replies[0].text == "Which city?"
    assert "Which city?" not in await _say(_plain_engine(world), "/cuaca", "w2")


def _plain_engine(world: World) -> Engine:
    return Engine(sessions=world.store, ports=world.engine._ports,  # noqa: SLF001
                  catalog=Catalog())


async def test_a_new_flows_command_is_listed_in_help_in_each_language(world: World) -> None:
    engine = _engine(world)
    indonesian = await _say(engine, "/bantuan", "w3")
    english = await _say(engine, "/help", "w4", "en")
    assert "/cuaca - Ask about the weather" in indonesian
    assert "/weather - Ask about the weather" in english
    assert "/hujan" not in indonesian + english, "an alias works but is not listed"
    for command in routes.LISTED:
        assert f"/{command.name} - " in indonesian
        assert f"/{command.english} - " in english


def test_a_new_flows_command_is_in_the_command_menu() -> None:
    from channels.telegram.keyboards import commands

    listed = Routes.of((*routes.FLOWS, WEATHER)).listed
    for language in ("id", "en"):
        menu = {c.command: c.description for c in commands(language, listed, Catalog())}
        assert menu["cuaca"] == "Ask about the weather"
        assert list(menu) == [c.name for c in routes.LISTED] + ["cuaca"]


def test_a_name_declared_twice_is_refused() -> None:
    clash = dataclasses.replace(WEATHER, name="clash", steps={})
    with pytest.raises(ValueError, match="declared before"):
        Routes.of((*routes.FLOWS, WEATHER, clash))
    lost = Flow("lost", commands=(Command("hilang", "nowhere"),))
    with pytest.raises(ValueError, match="no entry"):
        Routes.of((*routes.FLOWS, lost))
    taken = Flow("taken", entries={"x": WEATHER.entries["weather"]},
                 commands=(Command("saldo", "x"),))
    with pytest.raises(ValueError, match="declared before"):
        Routes.of((*routes.FLOWS, taken))


# An FAQ topic added the way the README says: its content and its phrases, nothing else. The
# modules are patched before anything else of the bot is imported, in a fresh interpreter.
FAQ_TOPIC = textwrap.dedent('''
    import asyncio
    from types import MappingProxyType

    import flows.faq_content as content
    import flows.intent_phrases as phrases

    topic = content.FaqTopic(intent="faq.early_pension", label="Early pension",
                             answer="Early pension: from age 56, or earlier only on disability.")
    content.TOPICS = (*content.TOPICS, topic)
    content.TOPIC_BY_INTENT = MappingProxyType({t.intent: t for t in content.TOPICS})
    phrases.RULES["faq.early_pension"] = (("pensiun+dini", 5.0),)
    phrases.EXAMPLES["faq.early_pension"] = "pensiun dini"

    from flows.engine import Engine
    from flows.flow import Ports
    from flows.i18n import Catalog
    from flows.intents import INTENTS, classify
    from flows.routes import ENTRIES
    from flows.types import Event, SessionKey
    from storage.sessions import MemorySessionStore

    assert "faq.early_pension" in INTENTS and "faq.early_pension" in ENTRIES
    from pathlib import Path
    from flows.diagrams import document
    assert document() == Path("docs/flows.md").read_text(encoding="utf-8"), "docs unchanged"
    assert classify("bisa pensiun dini?").name == "faq.early_pension"

    class Clock:
        def now(self):
            from datetime import UTC, datetime
            return datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    async def main():
        store = MemorySessionStore()
        ports = Ports(kv=store, accounts=None, balance=None, otp_sender=None, clock=Clock(),
                      secret=b"s")
        engine = Engine(sessions=store, ports=ports, catalog=Catalog(), strict=True)
        key = SessionKey("test", "faq")
        typed = await engine.handle(key, Event.message("bisa pensiun dini?"))
        assert "Early pension: from age 56" in typed[0].text, typed
        topics = await engine.handle(key, Event.message("/faq"))
        buttons = [b.data for r in topics for row in r.buttons for b in row]
        assert buttons[-1] == "go:faq.early_pension", buttons
        pressed = await engine.handle(key, Event.message(str(len(buttons))))
        assert "Early pension: from age 56" in pressed[0].text, pressed
        print("ok")

    asyncio.run(main())
''')


def test_an_faq_topic_needs_only_its_content_and_its_phrases() -> None:
    done = subprocess.run([sys.executable, "-c", FAQ_TOPIC], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
