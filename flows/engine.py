"""The conversation engine: the only code that loads and saves sessions.

``Engine.handle(key, event)`` takes the chat's lock, loads its session, runs one step (a
command, a menu button, free text classified into an intent, or the current state's step),
translates what the step says, saves, and returns the replies. ``Engine.serve`` does the same
and delivers the replies before it saves and unlocks, so that a channel keeps one chat's
replies in order across processes and drops a repeated delivery, all in the session's two
round trips. Every fault has a polite answer: a step that fails leaves the session as it
was; an undeclared transition is refused.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from enum import StrEnum
from typing import Any

from flows import start
from flows.flow import Context, Flow, Outcome, Ports, Step, delete_member_message
from flows.i18n import LOCALES, N_, Catalog, MissingTranslation, pick_locale
from flows.identifiers import contains_nik
from flows.intents import Intent, classify
from flows.menu import MENU
from flows.messages import NIK_DELETED
from flows.ports import (
    AccountStore,
    AlreadySeen,
    BalanceServiceUnavailable,
    DatabaseUnavailable,
    OtpDeliveryFailed,
    PortUnavailable,
    SessionBusy,
    SessionSlot,
    SessionStore,
    StoreUnavailable,
)
from flows.routes import AGENT_EVENTS, FLOWS, Routes
from flows.typed_buttons import shown_buttons, typed_press
from flows.types import (
    Button,
    Event,
    EventKind,
    Reply,
    Say,
    SayKind,
    Session,
    SessionKey,
    Text,
)

log = logging.getLogger(__name__)

MAX_TEXT = 4000
FLOW_TIMEOUT = 30 * 60.0
# Short free text that leaves any step: a member typing "batal" or "menu" mid-flow.
_ESCAPE_INTENTS = frozenset({"cancel"})
_ESCAPE_SCORE = 0.7
_ESCAPE_MAX_WORDS = 4
_ESCAPE_WORDS = {"menu": "menu", "menu utama": "menu", "main menu": "menu"}


View = dict[str, Any]
Deliver = Callable[[list[Reply], View], Awaitable[None]]
# The view of a chat without a stored session (new, or expired with its step): what the
# member's screen shows is unknown, e.g. a share-contact keyboard left from a step that timed out.
UNKNOWN_VIEW: Mapping[str, Any] = {"unknown": True}
# The buttons the last turn showed are kept with the session (``Session.shown``): a label or
# a button's number typed instead of pressed (any channel) is read as the press.


class UndeclaredTransition(RuntimeError):
    """A step returned a state its table entry does not declare."""


class NotServed(Exception):
    """The session store failed before anything was delivered (``Engine.serve`` with
    ``requeue``): nothing ran, nothing was sent; the caller keeps the update and tries again."""


class Served(StrEnum):
    """How :meth:`Engine.serve` ended."""

    ANSWERED = "answered"
    REPEAT = "repeat"  # the update was served before: nothing ran, nothing was sent
    STORE_FAULT = "store_fault"  # the session store failed: the member got an apology


class Engine:
    """Turns one member event into replies, with the session loaded and saved once."""

    def __init__(self, *, sessions: SessionStore, ports: Ports, catalog: Catalog,
                 flows: tuple[Flow, ...] = FLOWS,
                 classifier: Callable[[str], Intent] = classify,
                 flow_timeout: float = FLOW_TIMEOUT, strict: bool = False) -> None:
        self._sessions = sessions
        self._ports = ports
        self._catalog = catalog
        self._routes = Routes.of(flows)
        self._entries = self._routes.entries
        self._classify = classifier
        self._flow_timeout = flow_timeout
        self._strict = strict  # tests: an undeclared transition raises instead of apologising
        self._steps = {state: s for flow in flows for state, s in flow.steps.items()}
        self._captive = frozenset(state for flow in flows for state in flow.captive)
        self._digits = frozenset(state for flow in flows for state in flow.digits)

    @property
    def states(self) -> frozenset[str]:
        """Every declared state, the main menu included."""
        return frozenset(self._steps) | {MENU}

    async def handle(self, key: SessionKey, event: Event) -> list[Reply]:
        """Answer one event of one chat. Never raises; always answers."""
        event = clean(event)
        started = time.perf_counter()
        try:
            async with self._sessions.chat(key) as slot:
                stored = slot.session
                session, replies = await self._turn(key, event, stored)
                self._keep(slot, session, stored.view if stored is not None else {}, replies)
        except (StoreUnavailable, SessionBusy) as exc:
            return [await self._store_fault(key, event, exc)]
        log.info("handled %s update %s in %.1f ms", key.channel, event.update_id or "-",
                 (time.perf_counter() - started) * 1000)
        return replies

    async def serve(self, key: SessionKey, event: Event, deliver: Deliver, *,
                    requeue: bool = False) -> Served:
        """Answer one event and ``deliver`` the replies while the chat is still locked.

        ``deliver`` gets the replies and the channel's view of the chat, a dict it may change,
        saved with the session (:data:`UNKNOWN_VIEW` when no session was stored). An event
        with an ``update_id`` is served once: a repeated delivery (seen by any process)
        returns :attr:`Served.REPEAT` and runs nothing. When the session store fails the
        member is delivered an apology. An exception raised by ``deliver`` is raised again
        once the session is saved: the step is kept. The store keeps the lock alive while
        ``deliver`` waits (a reply held back by flood control).

        When only the save fails, after the replies went out, the member is apologised to
        only if the turn changed the chat's step or language, or what a step in progress
        holds (a half-finished registration would otherwise read the next message in the old
        step); an answer at the menu that left it there (a balance, an FAQ; the menu's own
        follow-up context is not worth an apology) stands alone.

        ``requeue``: the caller keeps the update (a queue) and would rather try it again
        than apologise: when the store fails before anything was delivered (the lock or the
        load), :class:`NotServed` is raised instead of the apology."""
        event = clean(event)
        started = time.perf_counter()
        failure: Exception | None = None
        delivered = False
        moved = True  # the turn changed the chat's step: losing its save matters
        try:
            async with self._sessions.chat(key, once=event.update_id or None) as slot:
                stored = slot.session
                session, replies = await self._turn(key, event, stored)
                moved = stored is None or (session.state, session.locale) != (
                    stored.state, stored.locale) or (session.state != MENU
                                                     and session.data != stored.data)
                view = dict(stored.view) if stored is not None else dict(UNKNOWN_VIEW)
                delivered = True
                try:
                    await deliver(replies, view)
                except Exception as exc:  # noqa: BLE001 - raised again after the save
                    failure = exc
                self._keep(slot, session, view, replies)
        except AlreadySeen:
            return Served.REPEAT
        except (StoreUnavailable, SessionBusy) as exc:
            if failure is not None:
                raise failure from exc
            if requeue and not delivered:
                log.warning("%s update %s not served, kept for another try: %s", key.channel,
                            event.update_id or "-", type(exc).__name__)
                raise NotServed(type(exc).__name__) from exc
            if delivered and not moved:  # answered, and the step is what the store holds
                log.warning("%s update %s answered; its save failed (nothing changed): %s",
                            key.channel, event.update_id or "-", type(exc).__name__)
                return Served.ANSWERED
            await deliver([await self._store_fault(key, event, exc)], {})
            return Served.STORE_FAULT
        if failure is not None:
            raise failure
        log.info("served %s update %s in %.1f ms", key.channel, event.update_id or "-",
                 (time.perf_counter() - started) * 1000)
        return Served.ANSWERED

    def ttl_for(self, session: Session) -> float | None:
        """How long the store keeps ``session`` (:func:`session_ttl` with this engine's flow
        timeout): for code that saves a chat's session outside an update."""
        return session_ttl(session, self._flow_timeout, self._captive)

    def _keep(self, slot: SessionSlot, session: Session, view: Mapping[str, Any],
              replies: list[Reply]) -> None:
        """What the store saves: the session with the channel's view (never the marker of an
        unknown view) and the buttons these replies showed."""
        slot.session = replace(session, view={k: v for k, v in view.items()
                                              if k not in UNKNOWN_VIEW},
                               shown=shown_buttons(replies))
        slot.ttl = self.ttl_for(session)

    async def _store_fault(self, key: SessionKey, event: Event, exc: Exception) -> Reply:
        """The apology when the session (and its language) cannot be read: in the language
        the chat chose, kept in SQL, else its client's."""
        log.warning("session store fault on %s update %s: %s", key.channel,
                    event.update_id or "-", type(exc).__name__)
        return self._plain(fault_message(exc) or _FAULT_DEFAULT,
                           await self._chosen_locale(key, event))

    async def _turn(self, key: SessionKey, event: Event,
                    stored: Session | None) -> tuple[Session, list[Reply]]:
        now = self._ports.clock.now()
        session, notices = await self._current(key, stored, event, now.timestamp())
        if stored is not None:
            pressed = self._typed_press(event, stored)
            # After a step timed out, only a button that works from anywhere (``go:``, an
            # alert's say) is still pressed by its typed number or label.
            if session.state == stored.state or pressed.data.startswith("go:"):
                event = pressed
        ctx = Context(key, event, session, self._ports, now, commands=self._routes.listed)
        try:
            outcome = await self._dispatch(ctx)
            saved = Session(outcome.state, outcome.locale or session.locale,
                            session.data if outcome.data is None else outcome.data,
                            now.timestamp())
            says = (*_nik_cleanup(event, outcome.says), *notices, *outcome.says)
            return saved, self._render(says, saved.locale)
        except Exception as exc:  # noqa: BLE001 - every fault gets a polite answer
            if self._strict and isinstance(exc, UndeclaredTransition | MissingTranslation):
                raise
            return self._fault(ctx, exc)

    def _typed_press(self, event: Event, stored: Session) -> Event:
        """Typed text that names a button the last turn showed, or its number, as the press
        of it (:func:`~flows.typed_buttons.typed_press`). Never in a captive state, where
        every word is the member's message; in a state that reads typed digits (a NIK, a
        KPJ, a code) a number is the member's answer, never a button's."""
        if event.kind is not EventKind.TEXT or stored.state in self._captive:
            return event
        index = typed_press(event.text, [label for label, _ in stored.shown],
                            numbers=stored.state not in self._digits)
        if index is None:
            return event
        return replace(event, kind=EventKind.BUTTON, data=stored.shown[index][1], text="")

    async def _current(self, key: SessionKey, stored: Session | None, event: Event,
                       now: float) -> tuple[Session, tuple[Say, ...]]:
        if stored is None:
            return Session(MENU, await self._chosen_locale(key, event)), ()
        if stored.locale not in LOCALES:
            stored = replace(stored, locale=pick_locale(event.language_code))
        if stored.state not in self.states:
            log.warning("unknown stored state reset to the menu")
            return Session(MENU, stored.locale, {}, stored.updated_at), ()
        stale = now - stored.updated_at > self._flow_timeout
        if stored.state != MENU and stored.state not in self._captive and stale:
            notice = Say(Text("Your previous step timed out, so I started over."))
            return Session(MENU, stored.locale, {}, stored.updated_at), (notice,)
        return stored, ()

    async def _chosen_locale(self, key: SessionKey, event: Event) -> str:
        """A chat with no session (new, expired, or lost with a Redis restart) speaks the
        language it chose before, kept in SQL; else its client's. One read, only for chats
        with no session; a database that is down costs the choice, not the answer."""
        accounts: AccountStore | None = self._ports.accounts  # None: an engine of FAQs only
        if accounts is None:
            return pick_locale(event.language_code)
        try:
            chosen = await accounts.language(key)
        except DatabaseUnavailable:
            log.warning("could not read a %s chat's language choice", key.channel)
            chosen = None
        return chosen if chosen in LOCALES else pick_locale(event.language_code)

    async def _dispatch(self, ctx: Context) -> Outcome:
        if ctx.event.kind is EventKind.AGENT:
            return await self._run(AGENT_EVENTS, ctx)
        if ctx.session.state in self._captive:
            return await self._step(ctx)
        outcome = await self._anywhere(ctx)
        if outcome is not None:
            return outcome
        if ctx.session.state == MENU:
            return await self._from_menu(ctx)
        escape = self._escape(ctx.event)
        if escape is not None:
            return await self._enter(escape, ctx)
        return await self._step(ctx)

    async def _step(self, ctx: Context) -> Outcome:
        """Run the current state's step; a step that declines the event hands it to the menu."""
        outcome = await self._run(self._steps[ctx.session.state], ctx)
        if outcome.pass_on:
            return await self._from_menu(replace(ctx, session=replace(ctx.session,
                                                                      state=MENU)))
        return outcome

    async def _anywhere(self, ctx: Context) -> Outcome | None:
        """What works the same from every state: language, commands, menu buttons."""
        event = ctx.event
        language = start.language_request(event)
        if language is not None:
            return await start.switch_language(ctx, language)
        if event.kind is EventKind.COMMAND:
            return await self._enter(self._routes.commands.get(event.data, "unknown_command"),
                                     ctx)
        if event.kind is EventKind.BUTTON and event.data.startswith("go:"):
            target, _, arg = event.data.removeprefix("go:").partition(":")
            if target not in self._entries:
                return await self._enter("expired_button", ctx)
            return await self._enter(target, ctx, {"arg": arg} if arg else None)
        return None

    def _escape(self, event: Event) -> str | None:
        words = event.text.lower().split()
        if event.kind is not EventKind.TEXT or len(words) > _ESCAPE_MAX_WORDS:
            return None
        if " ".join(words) in _ESCAPE_WORDS:
            return _ESCAPE_WORDS[" ".join(words)]
        intent = self._classify(event.text)
        return intent.name if (intent.name in _ESCAPE_INTENTS
                               and intent.score >= _ESCAPE_SCORE) else None

    async def _from_menu(self, ctx: Context) -> Outcome:
        event = ctx.event
        if event.kind is EventKind.TEXT:
            intent = self._classify(event.text)
            if intent.alternative is not None and "clarify" in self._entries:
                return await self._enter("clarify", ctx, {"first": intent.name,
                                                          "second": intent.alternative})
            return await self._enter(intent.name, ctx, intent.slots)
        if event.kind is EventKind.CONTACT:
            return await self._enter("unknown", ctx)
        return await self._enter("expired_button", ctx)

    async def _enter(self, name: str, ctx: Context,
                     slots: Mapping[str, str] | None = None) -> Outcome:
        entry = self._entries.get(name) or self._entries["unknown"]
        keep = {"misses": ctx.data["misses"]} if name == "unknown" and "misses" in ctx.data else {}
        fresh = replace(ctx, session=replace(ctx.session, data=keep),
                        slots={**(slots or {}), "intent": name})
        return await self._run(entry, fresh)

    async def _run(self, step: Step, ctx: Context) -> Outcome:
        outcome = await step.run(ctx)
        if outcome.pass_on:
            return outcome
        if outcome.state not in step.goes_to or outcome.state not in self.states:
            raise UndeclaredTransition(f"{step.run.__qualname__} -> {outcome.state}")
        return outcome

    def _fault(self, ctx: Context, exc: Exception) -> tuple[Session, list[Reply]]:
        message = fault_message(exc)
        if message is None:
            log.error("step failed in state %s on %s update %s", ctx.session.state,
                      ctx.key.channel, ctx.event.update_id or "-",
                      exc_info=(type(exc), exc, exc.__traceback__))
            message = _FAULT_DEFAULT
        else:
            log.warning("%s in state %s on %s update %s", type(exc).__name__,
                        ctx.session.state, ctx.key.channel, ctx.event.update_id or "-")
        return ctx.session, self._render((Say(Text(message)),), ctx.session.locale)

    def render(self, says: Sequence[Say], locale: str) -> list[Reply]:
        """``says`` as replies in ``locale``: what the bot says outside a member's update (an
        alert), translated as the engine translates a step's."""
        return [self._reply(s, locale) for s in says]

    def _render(self, says: tuple[Say, ...], locale: str) -> list[Reply]:
        return self.render(says, locale)

    def _reply(self, item: Say, locale: str) -> Reply:
        text = self._catalog.render(item.text, locale) if item.text else ""
        rows = tuple(tuple(Button(self._catalog.render(o.label, locale), o.data) for o in row)
                     for row in item.options)
        return Reply(text, rows, item.kind, locale, item.attachment)

    def _plain(self, msgid: str, locale: str) -> Reply:
        return Reply(self._catalog.render(Text(msgid), locale), locale=locale)


_FAULT_DEFAULT = N_("Sorry, something went wrong on our side. Please try again; what you typed "
                  "before is kept.")
FAULT_MESSAGES: Mapping[type[Exception], str] = {
    PortUnavailable: N_("Sorry, the service is busy right now. Please try again in a few "
                        "minutes."),
    BalanceServiceUnavailable: N_("Sorry, the membership service cannot be reached right now. "
                               "Please try again in a few minutes."),
    DatabaseUnavailable: N_("Sorry, our records are unavailable right now. Please try again in a "
                         "few minutes."),
    OtpDeliveryFailed: N_("Sorry, the code could not be sent just now. Please try again in a few "
                       "minutes."),
}
"""The polite answer to a port's failure, by the class that failed. A subclass a backend
defines gets the message of its nearest listed ancestor (:func:`fault_message`)."""


def fault_message(exc: BaseException) -> str | None:
    """The message for ``exc`` along its class's MRO, or ``None`` for an unexpected fault
    (not a :class:`~flows.ports.PortUnavailable`)."""
    return next((FAULT_MESSAGES[cls] for cls in type(exc).__mro__ if cls in FAULT_MESSAGES),
                None)


CAPTIVE = frozenset(state for flow in FLOWS for state in flow.captive)


def session_ttl(session: Session, flow_timeout: float = FLOW_TIMEOUT,
                captive: frozenset[str] = CAPTIVE) -> float | None:
    """How long to keep a saved session: the store's default while it rests (the menu, or a
    captive state such as a talk with an agent); a half-finished step, which may hold a NIK,
    no longer than its timeout."""
    return None if session.state == MENU or session.state in captive else flow_timeout


def _nik_cleanup(event: Event, says: tuple[Say, ...]) -> tuple[Say, ...]:
    """Ask to delete any typed message holding a NIK, whatever step it reached."""
    if any(s.kind is SayKind.DELETE_MEMBER_MESSAGE for s in says):
        return ()
    return (delete_member_message(NIK_DELETED),) if contains_nik(event.text) else ()


# Lone surrogates (a JSON "\\ud800" escape): no encoder takes them, so Redis and SQL would raise.
_UNENCODABLE = re.compile(r"[\ud800-\udfff]")


def clean(event: Event) -> Event:
    """Normalise typed text: NFC, no control characters (lone surrogates included), at most
    ``MAX_TEXT`` characters; in the other fields (button data, phone, ids, language) lone
    surrogates become U+FFFD, so no store meets a ``UnicodeEncodeError``."""
    if any(_UNENCODABLE.search(value) for value in (event.data, event.phone,
                                                    event.language_code, event.update_id,
                                                    event.sender)):
        event = replace(event, data=_encodable(event.data), phone=_encodable(event.phone),
                        language_code=_encodable(event.language_code),
                        update_id=_encodable(event.update_id), sender=_encodable(event.sender))
    if not event.text:
        return event
    text = unicodedata.normalize("NFC", event.text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return replace(event, text=text[:MAX_TEXT])


def _encodable(value: str) -> str:
    return _UNENCODABLE.sub("\N{REPLACEMENT CHARACTER}", value)
