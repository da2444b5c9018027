"""One-time codes: issue, rate-limit, verify. Kept in the key-value store, hashed.

Rules (PRODUCT.md): 6 digits; valid 5 minutes; 5 wrong tries lock verification of that
membership for 15 minutes; a new code after 60 s at the earliest and at most 3 codes an hour;
codes stored only as an HMAC keyed by ``OTP_SECRET`` and compared in constant time. Keys
are named by an HMAC of the KPJ, so the store never holds a KPJ in clear, and the limits hold
for the membership whichever chat asks. A lockout also locks the chat it happened in, so
that chat cannot go on guessing with another membership.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum

from flows.ports import KeyValueStore


@dataclass(frozen=True, slots=True)
class OtpPolicy:
    """The limits; the defaults are the product's rules."""

    ttl: float = 300.0
    max_tries: int = 5
    lock_seconds: float = 900.0
    resend_after: float = 60.0
    sends_per_hour: int = 3


class Verdict(StrEnum):
    """The result of checking a typed code."""

    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Check:
    """A verdict with the tries left (after WRONG) or seconds to wait (LOCKED)."""

    verdict: Verdict
    tries_left: int = 0
    wait: float = 0.0


class Refusal(StrEnum):
    """Why no new code was sent."""

    TOO_SOON = "too_soon"
    HOURLY_LIMIT = "hourly_limit"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Issue:
    """A new code (to send) or a refusal with the seconds to wait."""

    code: str = ""
    refusal: Refusal | None = None
    wait: float = 0.0


class OtpBook:
    """Issues and checks codes; a code belongs to one membership (KPJ) and one chat.

    The code is kept per chat, so a code sent for one chat never links another. Wrong tries,
    the lock and the sending limits are per membership, so many chats cannot multiply them.
    A try is counted (atomically) before the comparison, so concurrent guesses from several
    processes can never exceed ``max_tries``.
    """

    def __init__(self, kv: KeyValueStore, secret: bytes, policy: OtpPolicy = OtpPolicy()) -> None:
        self._kv = kv
        self._secret = secret
        self._policy = policy

    async def issue(self, kpj: str, chat: str, now: float) -> Issue:
        """A fresh code for ``kpj`` in ``chat`` unless locked or rate-limited."""
        base = self._name(kpj)
        refusal, sends = await self._refusal(base, chat, now)
        if refusal is not None:
            return refusal
        code = f"{secrets.randbelow(1_000_000):06d}"
        record = {"h": self._digest(kpj, chat, code), "exp": now + self._policy.ttl}
        await self._kv.put(f"{base}:code:{chat}", json.dumps(record), self._policy.ttl + 60)
        await self._kv.put(base + ":sends", json.dumps([*sends, now]), 3600)
        return Issue(code=code)

    async def refusal(self, kpj: str, chat: str, now: float) -> Issue | None:
        """Why :meth:`issue` would send no code now (with the seconds to wait), else ``None``."""
        refusal, _ = await self._refusal(self._name(kpj), chat, now)
        return refusal

    async def locked_for(self, chat: str, now: float, kpj: str = "") -> float:
        """Seconds until ``chat`` (and ``kpj``, when given) may verify again; 0 when free."""
        chat_wait = await self._wait_until(self._chat_lock(chat), now)
        return max(chat_wait, await self._locked_for(self._name(kpj), now)) if kpj else chat_wait

    async def check(self, kpj: str, chat: str, code: str, now: float) -> Check:
        """Count the try, then compare the typed code in constant time."""
        base = self._name(kpj)
        wait = await self.locked_for(chat, now, kpj)
        if wait > 0:
            return Check(Verdict.LOCKED, wait=wait)
        record = _loads(await self._kv.get(f"{base}:code:{chat}"))
        expires = record.get("exp", 0)
        if not isinstance(expires, int | float) or expires < now:
            return Check(Verdict.EXPIRED)
        tries = await self._kv.incr(base + ":tries", 3600)
        if tries > self._policy.max_tries:
            return await self._lock(base, chat, now)
        if hmac.compare_digest(str(record.get("h", "")), self._digest(kpj, chat, code)):
            await self._kv.delete(f"{base}:code:{chat}", base + ":tries")
            return Check(Verdict.OK)
        if tries == self._policy.max_tries:
            return await self._lock(base, chat, now)
        return Check(Verdict.WRONG, tries_left=self._policy.max_tries - tries)

    async def _refusal(self, base: str, chat: str,
                       now: float) -> tuple[Issue | None, list[float]]:
        wait = max(await self._locked_for(base, now),
                   await self._wait_until(self._chat_lock(chat), now))
        if wait > 0:
            return Issue(refusal=Refusal.LOCKED, wait=wait), []
        sends = await self._recent_sends(base, now)
        # The hour's limit first: its wait is the longer one.
        if len(sends) >= self._policy.sends_per_hour:
            return Issue(refusal=Refusal.HOURLY_LIMIT, wait=sends[0] + 3600 - now), sends
        if sends and now - sends[-1] < self._policy.resend_after:
            return Issue(refusal=Refusal.TOO_SOON,
                         wait=self._policy.resend_after - (now - sends[-1])), sends
        return None, sends

    async def _lock(self, base: str, chat: str, now: float) -> Check:
        until, ttl = str(now + self._policy.lock_seconds), self._policy.lock_seconds + 60
        await self._kv.put(base + ":lock", until, ttl)
        await self._kv.put(self._chat_lock(chat), until, ttl)
        await self._kv.delete(f"{base}:code:{chat}", base + ":tries")
        return Check(Verdict.LOCKED, wait=self._policy.lock_seconds)

    async def _locked_for(self, base: str, now: float) -> float:
        return await self._wait_until(base + ":lock", now)

    async def _wait_until(self, name: str, now: float) -> float:
        raw = await self._kv.get(name)
        try:
            return max(0.0, float(raw) - now) if raw else 0.0
        except ValueError:
            return 0.0

    @staticmethod
    def _chat_lock(chat: str) -> str:
        return f"otp:chat:{chat}:lock"

    async def _recent_sends(self, base: str, now: float) -> list[float]:
        raw = _loads_list(await self._kv.get(base + ":sends"))
        return sorted(t for t in raw if now - t < 3600)

    def _name(self, kpj: str) -> str:
        tag = hmac.new(self._secret, b"otp-key:" + kpj.encode(), hashlib.sha256).hexdigest()
        return "otp:" + tag[:24]

    def _digest(self, kpj: str, chat: str, code: str) -> str:
        message = f"otp-code:{kpj}:{chat}:{code}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def _loads(raw: str | None) -> dict[str, object]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _loads_list(raw: str | None) -> list[float]:
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    return [float(x) for x in value if isinstance(x, int | float)]
