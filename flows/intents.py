"""Intent classification of free text typed by members, in Indonesian or English.

:func:`classify` recognises the SMS 2757 commands members already know (``SALDO``,
``SALDO <KPJ>``, ``DAFTAR SALDO#NIK#DD-MM-YYYY#KPJ#EMAIL``) exactly, and everything else with
weighted phrase rules (:mod:`flows.intent_phrases`) over normalised text: lowercased, stripped of
punctuation and emoji, repeated letters collapsed, informal abbreviations expanded, light
Indonesian affixes removed and small typos corrected with rapidfuzz. Pure and I/O-free.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from rapidfuzz import process
from rapidfuzz.distance import OSA

from flows.intent_phrases import CANON_PHRASES, COMMON_WORDS, PHRASES, RULES, TOKEN_MAP

UNKNOWN = "unknown"
INTENTS: tuple[str, ...] = (*RULES, UNKNOWN)
"""Every intent name :func:`classify` can return: one per set of phrase rules
(:data:`flows.intent_phrases.RULES`, whose order breaks ties), and ``unknown``. Each names an
entry a flow declares (:mod:`flows.routes`; a test checks)."""

THRESHOLD = 1.0
"""Minimum rule weight for a non-``unknown`` answer; below it the message is ``unknown``."""

_EMPTY: Mapping[str, str] = MappingProxyType({})
_MAX_CHARS = 600
_MAX_TOKENS = 48


@dataclass(frozen=True)
class Intent:
    """The result of :func:`classify`: an intent name, a confidence in [0, 1], and slots.

    Slots hold values typed in the message: ``kpj`` for ``SALDO <KPJ>`` (or an 11-digit number
    beside a balance or history request), and ``nik``, ``name``, ``birth_date``, ``kpj``,
    ``email`` for ``DAFTAR SALDO#...``. Values are extracted as typed, not validated.
    """

    name: str
    score: float
    slots: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


# --- SMS 2757 commands -------------------------------------------------------------------

_SALDO = re.compile(r"\s*saldo\s*[#:]?\s*((?:\d[\s.-]?){7,15}\d)?\s*", re.IGNORECASE)
_DAFTAR = re.compile(r"\s*daftar\s*#?\s*saldo\s*#(.*)", re.IGNORECASE | re.DOTALL)
_LETTER = re.compile(r"[^\W\d_]")


def _parse_sms(text: str) -> Intent | None:
    saldo = _SALDO.fullmatch(text)
    if saldo:
        kpj = re.sub(r"\D", "", saldo.group(1) or "")
        return Intent("check_balance", 1.0, MappingProxyType({"kpj": kpj}) if kpj else _EMPTY)
    daftar = _DAFTAR.fullmatch(text)
    if daftar:
        return Intent("register", 1.0, MappingProxyType(_registration_slots(daftar.group(1))))
    return None


def _registration_slots(rest: str) -> dict[str, str]:
    fields = [part.strip() for part in rest.split("#")]
    slots: dict[str, str] = {}
    if fields:
        slots["nik"] = re.sub(r"\s", "", fields.pop(0))
    if len(fields) > 1 and _LETTER.search(fields[0]) and not _LETTER.search(fields[1]):
        slots["name"] = fields.pop(0)
    for key, value in zip(("birth_date", "kpj", "email"), fields, strict=False):
        slots[key] = re.sub(r"\s", "", value) if key == "kpj" else value
    return {key: value for key, value in slots.items() if value}


# --- normalisation -------------------------------------------------------------------------

_NON_WORD = re.compile(r"[^a-z0-9]+")
_RUNS3 = re.compile(r"([a-z])\1{2,}")
_RUNS2 = re.compile(r"([a-z])\1+")
_REDUPLICATED = re.compile(r"([a-z]{3,})2")
_YEAR = re.compile(r"(?:19|20)\d\d")
_PREFIXES = ("", "di", "ter", "ber", "ke", "me", "mem", "men", "meng", "pe", "pem", "pen",
             "peng", "per")
_SUFFIXES = ("", "nya", "ku", "mu", "lah", "kah", "kan", "in", "an", "i")
_NASAL = {"mem": "p", "men": "t", "meny": "s", "meng": "k", "pem": "p", "pen": "t",
          "peny": "s", "peng": "k"}


def _rule_words() -> frozenset[str]:
    return frozenset(word for rules in RULES.values() for pattern, _ in rules
                     for word in pattern.replace("+", " ").split())


_RULE_WORDS = _rule_words()
_KNOWN = frozenset(TOKEN_MAP) | _RULE_WORDS | COMMON_WORDS
_BY_SKELETON = {_RUNS2.sub(r"\1", word): word for word in sorted(_KNOWN)}
_FUZZ_TARGETS = sorted(w for w in _RULE_WORDS | set(TOKEN_MAP)
                       if len(w) >= 4 and w.isalpha() and w not in COMMON_WORDS)


def _fuzz_limit(length: int) -> int:
    return 1 if length <= 7 else 2


def _fuzz_index() -> dict[tuple[int, int, str], list[str]]:
    """Typo targets keyed by (token length, letter position 0 or 1, letter at that position)."""
    index: dict[tuple[int, int, str], list[str]] = {}
    for length in range(4, 33):
        for word in _FUZZ_TARGETS:
            if abs(len(word) - length) <= _fuzz_limit(length):
                index.setdefault((length, 0, word[0]), []).append(word)
                index.setdefault((length, 1, word[1]), []).append(word)
    return index


_FUZZ_INDEX = _fuzz_index()


def _resolve(word: str) -> str:
    return TOKEN_MAP.get(word, word)


def _stem(token: str) -> str | None:
    for prefix in (*_PREFIXES, "meny", "peny"):
        if not token.startswith(prefix):
            continue
        body = token[len(prefix):]
        for suffix in _SUFFIXES:
            if suffix and not body.endswith(suffix):
                continue
            root = body[: len(body) - len(suffix)]
            for candidate in (root, _NASAL.get(prefix, "") + root):
                if len(candidate) >= 3 and candidate != token and candidate in _KNOWN:
                    return candidate
    return None


def _fuzzy(token: str) -> str | None:
    # A typo rarely changes both of the first two letters: compare only with words sharing one.
    choices = (_FUZZ_INDEX.get((len(token), 0, token[0]), [])
               + _FUZZ_INDEX.get((len(token), 1, token[1]), []))
    limit = _fuzz_limit(len(token))
    best = process.extractOne(token, choices, scorer=OSA.distance, score_cutoff=limit)
    return None if best is None else str(best[0])


@lru_cache(maxsize=16384)
def _canonical(token: str) -> str:
    """Map one raw token to its canonical form (maybe several words, maybe empty)."""
    if token in TOKEN_MAP or token in _KNOWN:
        return _resolve(token)
    if token.isdigit():
        return "tahun" if _YEAR.fullmatch(token) else token
    reduplicated = _REDUPLICATED.fullmatch(token)
    if reduplicated:
        return _canonical(reduplicated.group(1))
    skeleton = _BY_SKELETON.get(_RUNS2.sub(r"\1", token))
    found = skeleton or _stem(token)
    if found is None and token.isalpha() and len(token) >= 4:
        found = _fuzzy(token)
    return token if found is None else _resolve(found)


def normalise(text: str) -> str:
    """Return the canonical token string the rules are matched against."""
    decomposed = unicodedata.normalize("NFKD", text[:_MAX_CHARS].casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = plain.replace("%", " persen ").replace("'", "").replace("\u2019", "")
    words = _RUNS3.sub(r"\1", _NON_WORD.sub(" ", plain)).split()[:_MAX_TOKENS]
    padded = _rewrite(f" {' '.join(words)} ", PHRASES)
    canonical = " ".join(filter(None, (_canonical(word) for word in padded.split())))
    return _rewrite(f" {canonical} ", CANON_PHRASES).strip()


def _rewrite(padded: str, phrases: tuple[tuple[str, str], ...]) -> str:
    for phrase, replacement in phrases:
        if f" {phrase} " in padded:
            padded = padded.replace(f" {phrase} ", f" {replacement} ")
    return padded


# --- scoring -------------------------------------------------------------------------------

Rule = tuple[str, tuple[str, ...], float]


def _index_rules() -> dict[str, list[Rule]]:
    index: dict[str, list[Rule]] = {}
    for intent, rules in RULES.items():
        for pattern, weight in rules:
            parts = tuple(pattern.split("+"))
            index.setdefault(parts[0].split()[0], []).append((intent, parts, weight))
    return index


_RULE_INDEX = _index_rules()


def _part_matches(part: str, tokens: frozenset[str], padded: str) -> bool:
    return part in tokens if " " not in part else f" {part} " in padded


def score_intents(canonical: str) -> dict[str, float]:
    """Sum the weights of the rules matching ``canonical`` text, per intent (all >= 0)."""
    tokens = frozenset(canonical.split())
    padded = f" {canonical} "
    scores: dict[str, float] = {}
    for token in tokens:
        for intent, parts, weight in _RULE_INDEX.get(token, ()):
            if all(_part_matches(part, tokens, padded) for part in parts):
                scores[intent] = scores.get(intent, 0.0) + weight
    return {intent: score for intent, score in scores.items() if score > 0}


def _confidence(best: float, second: float) -> float:
    confidence = 1.0 - math.exp(-best / 1.5)
    if best > 0:
        confidence *= 1.0 - 0.5 * (second / best)
    return round(min(max(confidence, 0.0), 0.99), 3)


_KPJ = re.compile(r"(?<!\d)\d{11}(?!\d)")
_HISTORY_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")


def _slots(name: str, text: str) -> Mapping[str, str]:
    if name not in ("check_balance", "history"):
        return _EMPTY
    slots: dict[str, str] = {}
    kpj = _KPJ.search(text[:_MAX_CHARS])
    if kpj:
        slots["kpj"] = kpj.group()
    year = _HISTORY_YEAR.search(text[:_MAX_CHARS]) if name == "history" else None
    if year:  # "riwayat iuran 2019": that year's page
        slots["year"] = year.group()
    return MappingProxyType(slots) if slots else _EMPTY


def classify(text: str) -> Intent:
    """Classify one member message; never raises, always returns a name from :data:`INTENTS`.

    SMS 2757 commands score 1.0. Otherwise the score is a confidence in [0, 0.99] that grows
    with the matched rule weight and shrinks when a second intent comes close. When no intent
    reaches :data:`THRESHOLD` the result is ``unknown``, scored with that low confidence.
    """
    if not isinstance(text, str):
        return Intent("unknown", 0.0)
    sms = _parse_sms(text[:_MAX_CHARS * 4])
    if sms is not None:
        return sms
    scores = score_intents(normalise(text))
    ranked = sorted(scores.items(), key=lambda item: (-item[1], INTENTS.index(item[0])))
    if not ranked:
        return Intent("unknown", 0.0)
    name, best = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    confidence = _confidence(best, second)
    if best < THRESHOLD:
        return Intent("unknown", confidence)
    return Intent(name, confidence, _slots(name, text))
