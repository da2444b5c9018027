"""One-time codes: issue, rate-limit, verify. Codes in the key-value store (hashed, short-lived);
what guards against guessing in the durable :class:`~flows.ports.OtpGuardStore` (SQL).

Rules (README, "Registration and OTP rules"): 6 digits; valid 5 minutes; 5 wrong tries lock
verification of the membership (and of the chat they came from) for 15 minutes, a second
lock-out for 1 hour, a third for 24 hours, any further one for 72 hours; the level restarts
once 7 days pass after a lock ends with no new lock-out, and a verified code restarts it. A new
code after 60 s at the earliest, at most 3 codes an hour and 5 a day per membership. Codes are
stored only as an HMAC keyed by ``OTP_SECRET`` and compared in constant time. Records are named
by an HMAC of the KPJ (or the chat's pseudonym), so no store holds a KPJ in clear, and the
limits hold for the membership whichever chat or process asks. A Redis flush loses at most
the live code (the member asks for a new one, which counts against the limits as before).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from flows.ports import DatabaseUnavailable, KeyValueStore, OtpGuard, OtpGuardStore

_DAY = 86400.0
_HOUR = 3600.0
T = TypeVar("T")
_RETRIES = 20  # compare-and-set rounds before giving up (only under extreme contention)


@dataclass(frozen=True, slots=True)
class OtpPolicy:
    """The limits; the defaults are the product's rules."""

    ttl: float = 300.0
    max_tries: int = 5
    lock_ladder: tuple[float, ...] = (900.0, 3600.0, _DAY, 3 * _DAY)
    level_memory: float = 7 * _DAY
    tries_window: float = _HOUR
    resend_after: float = 60.0
    sends_per_hour: int = 3
    sends_per_day: int = 5
    notice_every: float = _DAY

    @property
    def lock_seconds(self) -> float:
        """The first (shortest) lock-out."""
        return self.lock_ladder[0]

    def lock_for(self, level: int) -> float:
        """The lock-out after ``level`` earlier ones in a row."""
        return self.lock_ladder[min(level, len(self.lock_ladder) - 1)]


class MemoryOtpGuardStore:
    """Guard records in this process only: for tests and a bot without a database."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[OtpGuard, int]] = {}

    async def load(self, subject: str) -> tuple[OtpGuard, int]:
        """The record and its version (an empty record and 0 when there is none)."""
        return self._records.get(subject, (OtpGuard(), 0))

    async def save(self, subject: str, guard: OtpGuard, version: int) -> bool:
        """Store ``guard`` if the record is still at ``version``."""
        if self._records.get(subject, (OtpGuard(), 0))[1] != version:
            return False
        self._records[subject] = (guard, version + 1)
        return True

    async def erase(self, subjects: Sequence[str], now: float) -> int:
        """Delete the records of ``subjects`` that hold no active lock."""
        gone = [s for s in subjects if s in self._records
                and self._records[s][0].locked_until <= now]
        for subject in gone:
            del self._records[subject]
        return len(gone)

    async def purge(self, now: float) -> int:
        """Delete the records that expired before ``now``."""
        gone = [s for s, (g, _) in self._records.items() if g.expires_at < now]
        for subject in gone:
            del self._records[subject]
        return len(gone)


class Verdict(StrEnum):
    """The result of checking a typed code."""

    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Check:
    """A verdict with the tries left (after WRONG) or seconds to wait (LOCKED); ``notify`` is
    true when this check locked the membership and the contact on file is due a notice (at
    most once a day)."""

    verdict: Verdict
    tries_left: int = 0
    wait: float = 0.0
    notify: bool = False


class Refusal(StrEnum):
    """Why no new code was sent."""

    TOO_SOON = "too_soon"
    HOURLY_LIMIT = "hourly_limit"
    DAILY_LIMIT = "daily_limit"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Issue:
    """A new code (to send) or a refusal with the seconds to wait."""

    code: str = ""
    refusal: Refusal | None = None
    wait: float = 0.0


class GuardContention(DatabaseUnavailable):
    """A guard record changed under every one of :data:`_RETRIES` attempts (the member is
    answered as when the database fails, and may try again)."""


@dataclass(frozen=True, slots=True)
class _Counted:
    tries: int = 0
    locked_wait: float = 0.0
    full: bool = False


@dataclass(frozen=True, slots=True)
class _Lock:
    wait: float = 0.0
    notify: bool = False


class OtpBook:
    """Issues and checks codes; a code belongs to one membership (KPJ) and one chat.

    The code is kept per chat, so a code sent for one chat never links another. Wrong tries,
    the lock and the sending limits are per membership, so many chats cannot multiply them,
    and they live in the durable guard store, so a Redis restart cannot reset them. A try is
    counted (compare-and-set) before the comparison, so concurrent guesses from several
    processes can never exceed ``max_tries``.
    """

    def __init__(self, kv: KeyValueStore, secret: bytes, guard: OtpGuardStore,
                 policy: OtpPolicy = OtpPolicy()) -> None:
        self._kv = kv
        self._secret = secret
        self._guard = guard
        self._policy = policy

    async def issue(self, kpj: str, chat: str, now: float) -> Issue:
        """A fresh code for ``kpj`` in ``chat`` unless locked or rate-limited. The send is
        recorded durably before the code exists, so a crash can only lose a code, never let
        one go uncounted."""
        wait = await self.locked_for(chat, now, kpj)
        if wait > 0:
            return Issue(refusal=Refusal.LOCKED, wait=wait)

        def take(guard: OtpGuard) -> tuple[OtpGuard | None, Issue | None]:
            if guard.locked_until > now:
                return None, Issue(refusal=Refusal.LOCKED, wait=guard.locked_until - now)
            sends = _recent(guard.sends, now, _DAY)
            refusal = self._send_refusal(sends, now)
            if refusal is not None:
                return None, refusal
            return self._fresh(replace(guard, sends=(*sends, now)), now), None

        refused = await self._change(self._member(kpj), take)
        if refused is not None:
            return refused
        code = f"{secrets.randbelow(1_000_000):06d}"
        record = {"h": self._digest(kpj, chat, code), "exp": now + self._policy.ttl}
        await self._kv.put(self._code_key(kpj, chat), json.dumps(record), self._policy.ttl + 60)
        return Issue(code=code)

    async def refusal(self, kpj: str, chat: str, now: float) -> Issue | None:
        """Why :meth:`issue` would send no code now (with the seconds to wait), else ``None``."""
        wait = await self.locked_for(chat, now, kpj)
        if wait > 0:
            return Issue(refusal=Refusal.LOCKED, wait=wait)
        guard, _ = await self._guard.load(self._member(kpj))
        return self._send_refusal(_recent(guard.sends, now, _DAY), now)

    async def locked_for(self, chat: str, now: float, kpj: str = "") -> float:
        """Seconds until ``chat`` (and ``kpj``, when given) may verify again; 0 when free."""
        subjects = [_chat_subject(chat), *([self._member(kpj)] if kpj else [])]
        return await self._wait(subjects, now)

    async def lock_of(self, kpjs: Sequence[str], chat: str, now: float) -> float:
        """Seconds until the longest active lock of ``chat`` or any of ``kpjs`` ends."""
        return await self._wait([_chat_subject(chat), *map(self._member, kpjs)], now)

    async def forget(self, kpjs: Sequence[str], chat: str, now: float) -> int:
        """Erase the guard records of ``chat`` and ``kpjs`` except those holding an active
        lock (a lock-out is kept until it ends, for the membership's security)."""
        return await self._guard.erase([_chat_subject(chat), *map(self._member, kpjs)], now)

    async def check(self, kpj: str, chat: str, code: str, now: float) -> Check:
        """Count the try, then compare the typed code in constant time."""
        wait = await self.locked_for(chat, now, kpj)
        if wait > 0:
            return Check(Verdict.LOCKED, wait=wait)
        record = _loads(await self._kv.get(self._code_key(kpj, chat)))
        expires = record.get("exp", 0)
        if not isinstance(expires, int | float) or expires < now:
            return Check(Verdict.EXPIRED)
        counted = await self._change(self._member(kpj), self._counter(now))
        if counted.locked_wait > 0:
            return Check(Verdict.LOCKED, wait=counted.locked_wait)
        if not counted.full and hmac.compare_digest(str(record.get("h", "")),
                                                    self._digest(kpj, chat, code)):
            await self._kv.delete(self._code_key(kpj, chat))
            await self._change(self._member(kpj), self._verified(now))
            return Check(Verdict.OK)
        if counted.full or counted.tries >= self._policy.max_tries:
            return await self._lock(kpj, chat, now)
        return Check(Verdict.WRONG, tries_left=self._policy.max_tries - counted.tries)

    def _counter(self, now: float) -> Callable[[OtpGuard], tuple[OtpGuard | None, _Counted]]:
        policy = self._policy

        def count(guard: OtpGuard) -> tuple[OtpGuard | None, _Counted]:
            if guard.locked_until > now:
                return None, _Counted(locked_wait=guard.locked_until - now)
            live = guard.tries > 0 and now - guard.tries_at < policy.tries_window
            tries = guard.tries if live else 0
            if tries >= policy.max_tries:
                return None, _Counted(full=True)
            counted = replace(guard, tries=tries + 1, tries_at=guard.tries_at if live else now)
            return self._fresh(counted, now), _Counted(tries=tries + 1)

        return count

    def _verified(self, now: float) -> Callable[[OtpGuard], tuple[OtpGuard | None, None]]:
        def reset(guard: OtpGuard) -> tuple[OtpGuard | None, None]:
            return self._fresh(replace(guard, tries=0, tries_at=0.0, level=0), now), None

        return reset

    async def _lock(self, kpj: str, chat: str, now: float) -> Check:
        policy = self._policy

        def lock(guard: OtpGuard) -> tuple[OtpGuard | None, _Lock]:
            if guard.locked_until > now:
                return None, _Lock(wait=guard.locked_until - now)
            remembered = guard.level > 0 and now - guard.locked_until < policy.level_memory
            level = guard.level if remembered else 0
            seconds = policy.lock_for(level)
            notify = now - guard.notified_at >= policy.notice_every
            locked = replace(guard, level=level + 1, locked_until=now + seconds, tries=0,
                             tries_at=0.0, notified_at=now if notify else guard.notified_at)
            return self._fresh(locked, now), _Lock(wait=seconds, notify=notify)

        result = await self._change(self._member(kpj), lock)
        until = now + result.wait

        def lock_chat(guard: OtpGuard) -> tuple[OtpGuard | None, None]:
            if guard.locked_until >= until:
                return None, None
            return self._fresh(replace(guard, locked_until=until), now), None

        await self._change(_chat_subject(chat), lock_chat)
        await self._kv.delete(self._code_key(kpj, chat))
        await self._guard.purge(now)
        return Check(Verdict.LOCKED, wait=result.wait, notify=result.notify)

    def _send_refusal(self, sends: tuple[float, ...], now: float) -> Issue | None:
        policy = self._policy
        # The longest wait first: the day's limit, then the hour's, then the 60 s.
        if len(sends) >= policy.sends_per_day:
            wait = sends[-policy.sends_per_day] + _DAY - now
            return Issue(refusal=Refusal.DAILY_LIMIT, wait=wait)
        hour = _recent(sends, now, _HOUR)
        if len(hour) >= policy.sends_per_hour:
            wait = hour[-policy.sends_per_hour] + _HOUR - now
            return Issue(refusal=Refusal.HOURLY_LIMIT, wait=wait)
        if sends and now - sends[-1] < policy.resend_after:
            return Issue(refusal=Refusal.TOO_SOON, wait=policy.resend_after - (now - sends[-1]))
        return None

    def _fresh(self, guard: OtpGuard, now: float) -> OtpGuard:
        """``guard`` with the time after which it guards nothing (and may be purged)."""
        policy = self._policy
        expires = max(now,
                      guard.locked_until + (policy.level_memory if guard.level else 0.0),
                      max(guard.sends, default=0.0) + _DAY,
                      guard.tries_at + policy.tries_window if guard.tries else 0.0,
                      guard.notified_at + policy.notice_every)
        return replace(guard, expires_at=expires)

    async def _change(self, subject: str,
                         change: Callable[[OtpGuard], tuple[OtpGuard | None, T]]) -> T:
        """Apply ``change`` to the subject's record by compare-and-set, retrying when another
        process changed it first; ``None`` as the new record means nothing to store."""
        for _ in range(_RETRIES):
            guard, version = await self._guard.load(subject)
            changed, result = change(guard)
            if changed is None or await self._guard.save(subject, changed, version):
                return result
        raise GuardContention("an OTP guard record kept changing")

    async def _wait(self, subjects: Sequence[str], now: float) -> float:
        waits = [(await self._guard.load(subject))[0].locked_until - now for subject in subjects]
        return max(0.0, *waits)

    def _member(self, kpj: str) -> str:
        return "m:" + self._tag(kpj)

    def _code_key(self, kpj: str, chat: str) -> str:
        return f"otp:{self._tag(kpj)}:code:{chat}"

    def _tag(self, kpj: str) -> str:
        return hmac.new(self._secret, b"otp-key:" + kpj.encode(), hashlib.sha256).hexdigest()[:24]

    def _digest(self, kpj: str, chat: str, code: str) -> str:
        message = f"otp-code:{kpj}:{chat}:{code}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def _chat_subject(chat: str) -> str:
    return "c:" + chat[:32]


def _recent(times: Sequence[float], now: float, span: float) -> tuple[float, ...]:
    return tuple(sorted(t for t in times if now - t < span))


def _loads(raw: str | None) -> dict[str, object]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
