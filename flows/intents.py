"""Intent classification of free text typed by members, in Indonesian, English, Javanese and
Sundanese.

:func:`classify` recognises the SMS 2757 commands members already know (``SALDO``,
``SALDO <KPJ>``, ``DAFTAR SALDO#NIK#DD-MM-YYYY#KPJ#EMAIL``) exactly. Everything else goes
through :func:`focus` (what the member says they do not want is dropped), :func:`normalise`
(lowercased, punctuation and emoji stripped, stretched letters collapsed, slang, abbreviations
and common Javanese and Sundanese words mapped to one vocabulary, joined words split, light
affixes removed, small typos corrected with rapidfuzz), the weighted phrase rules
(:mod:`flows.intent_phrases`) and the trained model (:mod:`flows.intent_model`), which weighs
the words, character n-grams and rule scores together. When the model is unsure it does not
guess: the answer carries an ``alternative`` and the bot asks. Pure and I/O-free.
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

from flows import intent_model
from flows.intent_model import IntentModel, char_words, features, symbols_of
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
    runner_up: str = ""
    """The second most likely intent ("" when none is in the running)."""
    alternative: str | None = None
    """Set when the bot should ask rather than guess: the two best intents are too close to
    choose (it offers ``name`` and ``alternative``), or the message is ``unknown`` but one
    intent is half recognised (it offers ``alternative`` alone)."""


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
_SUFFIXES = ("", "nya", "ku", "mu", "lah", "kah", "kan", "in", "an", "i",
             "ne", "e", "na", "ipun", "nipun", "keun")
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
    if found is None and token.isalpha() and len(token) >= 6:
        joined = _split_joined(token)
        if joined is not None:
            return joined
    if found is None and token.isalpha() and len(token) >= 4:
        found = _fuzzy(token)
    return token if found is None else _resolve(found)


def _known_word(part: str) -> str | None:
    if part in _KNOWN:
        return part
    return _BY_SKELETON.get(_RUNS2.sub(r"\1", part))


def _split_joined(token: str) -> str | None:
    """Two known words typed without a space ("ceksaldoo" -> "cek saldo"), the longest first
    word winning; ``None`` unless both parts (three letters or more) are known and one of them
    is a keyword rather than an everyday word."""
    for cut in range(len(token) - 3, 2, -1):
        left, right = _known_word(token[:cut]), _known_word(token[cut:])
        if left is None or right is None or {left, right} <= COMMON_WORDS:
            continue
        return " ".join(filter(None, (_resolve(left), _resolve(right))))
    return None


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


# --- negation and contrast ----------------------------------------------------------------

_NEGATORS = frozenset({"bukan", "bkn", "gak", "ga", "gk", "nggak", "ngga", "enggak", "engga",
                       "tidak", "tdk", "tak", "ndak", "nda", "ora", "teu", "jangan", "jgn",
                       "dont", "don't", "no", "never"})
_DENIES_A_THING = frozenset({"bukan", "bkn", "not"})
_DENIED_THINGS = frozenset({"the", "my", "a", "an", "about", "for", "asking", "to"})
"""After "not", the words that make it deny a thing ("not the history") rather than a state
("not updated")."""
_WANTS = frozenset({"mau", "ingin", "pengen", "pgn", "pingin", "pengin", "kepengen", "usah",
                    "perlu", "butuh", "minta", "want", "wanna", "need", "badhe", "hoyong",
                    "arep", "kudu"})
_CONTRAST = frozenset({"tapi", "tp", "tpi", "tetapi", "melainkan", "but", "instead", "cuma",
                       "cuman", "hanya", "just", "only", "namung", "mung", "ming", "ngan",
                       "mending", "rather", "tapine", "nanging"})
_WORD_KEY = re.compile(r"[^\w']+")


def focus(text: str) -> str:
    """Drop what the member says they do not want: "bukan riwayat, tapi saldo" -> "saldo",
    "gak mau cek saldo, mau ngobrol sama orang" -> "mau ngobrol sama orang", "not the history,
    just the total" -> "the total". A denial ("bukan X", "not X") or a refusal
    ("gak mau X", "ga usah X", "don't want X") counts only when a contrast follows ("tapi",
    "cuma", "just", or a new "mau"/"want"): "gak jadi" or "saldo gak mau muncul" stay as
    typed."""
    words = text[:_MAX_CHARS].split()
    keys = [_WORD_KEY.sub("", word.casefold()) for word in words]
    for index, key in enumerate(keys):
        if key not in _NEGATORS and key not in _DENIES_A_THING:
            continue
        after = keys[index + 1] if index + 1 < len(keys) else ""
        if after in _CONTRAST:  # "bukan cuma X", "not just X": no denial
            continue
        if key in _DENIES_A_THING and (key != "not" or after in _DENIED_THINGS):
            start = index + 1
        elif after in _WANTS:
            start = index + 2
        else:
            continue
        for later in range(start + 1, len(keys)):
            if keys[later] in _CONTRAST:  # "tapi" itself goes too: it reads as a complaint
                return " ".join(words[:index] + words[later + 1:])
            if keys[later] in _WANTS:
                return " ".join(words[:index] + words[later:])
    return text


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

    SMS 2757 commands score 1.0. Otherwise the trained model (:mod:`flows.intent_model`)
    weighs the words, character n-grams and phrase rules of the message, and the score is its
    probability; see :func:`classify_with`. Without a model file the phrase rules decide alone.
    """
    if isinstance(text, str) and len(text) <= _CACHED_CHARS:
        return _classify_cached(text)
    return classify_with(intent_model.load(), text)


_CACHED_CHARS = 200


@lru_cache(maxsize=8192)
def _classify_cached(text: str) -> Intent:
    """Short messages recur ("cek saldo", "makasih"), and an :class:`Intent` is immutable:
    each is classified once per process (and once per update, where the engine asks twice)."""
    return classify_with(intent_model.load(), text)


def message_features(text: str) -> dict[str, float]:
    """The model's features of one message (``nlu/build.py`` trains on exactly these)."""
    focused = focus(text)
    canonical = normalise(focused)
    return features(canonical, char_words(focused), score_intents(canonical), symbols_of(text))


ANSWER_FROM = 0.8
"""The probability from which the best intent is answered at once; below it the bot asks."""
PAIR_FROM = 0.15
"""When it asks, the second intent is offered beside the first if it has this chance."""
SUGGEST_FROM = 0.1
"""A message whose likeliest intent has less than this chance is ``unknown`` (not even
offered)."""
RULE_ONLY_SCORE = 3.0
"""A phrase-rule score that decides alone for an intent the model was not trained on (a new
FAQ topic works from its phrases before the corpus learns it)."""
NEVER_ASKED = frozenset({UNKNOWN, "greeting", "thanks", "cancel"})
"""Intents never offered in a question back: a greeting or thanks is answered anyway, and a
question about cancelling would only delay it."""


def classify_with(model: IntentModel | None, text: str) -> Intent:
    """:func:`classify` with a given model (``None``: the phrase rules alone)."""
    if not isinstance(text, str):
        return Intent("unknown", 0.0)
    sms = _parse_sms(text[:_MAX_CHARS * 4])
    if sms is not None:
        return sms
    if model is None:
        return _by_rules(text)
    focused = focus(text)
    canonical = normalise(focused)
    rules = score_intents(canonical)
    ranked = model.probabilities(features(canonical, char_words(focused), rules,
                                          symbols_of(text)))
    (name, best), (second, _) = ranked[0], ranked[1]
    ruled = max(rules.items(), key=lambda item: item[1], default=("", 0.0))
    if ruled[0] not in model.classes and ruled[1] >= RULE_ONLY_SCORE:
        return Intent(ruled[0], round(_confidence(ruled[1], 0.0), 3), _slots(ruled[0], text),
                      runner_up=name)
    if name != UNKNOWN and best >= ANSWER_FROM:
        return Intent(name, round(min(best, 0.99), 3), _slots(name, text), runner_up=second)
    return _unsure(ranked, text)


def _unsure(ranked: list[tuple[str, float]], text: str) -> Intent:
    """No intent is likely enough to answer at once: offer the likeliest (and the next, if it
    is in the running too), or give up with ``unknown``."""
    (name, best), (second, runner) = ranked[0], ranked[1]
    likeliest, chance = (second, runner) if name == UNKNOWN else (name, best)
    other = ranked[2] if name == UNKNOWN else (second, runner)
    if likeliest in NEVER_ASKED or chance < SUGGEST_FROM:
        if name != UNKNOWN and name in NEVER_ASKED and best >= 0.5:
            return Intent(name, round(best, 3), runner_up=second)  # a greeting, thanks...
        return Intent(UNKNOWN, round(min(chance, 0.99), 3), runner_up=likeliest)
    if other[0] not in NEVER_ASKED and other[1] >= PAIR_FROM:
        return Intent(likeliest, round(chance, 3), _slots(likeliest, text),
                      runner_up=other[0], alternative=other[0])
    return Intent(UNKNOWN, round(chance, 3), runner_up=likeliest, alternative=likeliest)


def _by_rules(text: str) -> Intent:
    scores = score_intents(normalise(focus(text)))
    ranked = sorted(scores.items(), key=lambda item: (-item[1], INTENTS.index(item[0])
                                                      if item[0] in INTENTS else len(INTENTS)))
    if not ranked:
        return Intent("unknown", 0.0)
    name, best = ranked[0]
    second = ranked[1] if len(ranked) > 1 else ("", 0.0)
    confidence = _confidence(best, second[1])
    if best < THRESHOLD:
        return Intent("unknown", confidence)
    return Intent(name, confidence, _slots(name, text), runner_up=second[0])
