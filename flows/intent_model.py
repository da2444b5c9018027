"""The trained half of the intent classifier: a linear model over word and character n-grams.

:func:`features` turns a message into the features the model was trained on (``nlu/build.py``
trains with this very function, so training and run time cannot drift apart): the canonical
words of :func:`flows.intents.normalise` and their pairs, character n-grams of the message as
typed (so unseen spellings, dialect words and joined words still share pieces with known ones),
and the weight each phrase rule gives each intent. :class:`IntentModel` holds the weights
``nlu/build.py`` wrote (``nlu/model/intents.json.gz``, versioned with the corpus) and turns
features into probabilities with a softmax. Pure and I/O-free but for loading the file once.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

MODEL_PATH = Path(__file__).resolve().parents[1] / "nlu" / "model" / "intents.json.gz"
FORMAT = 1
_CHAR_SIZES = (3, 4, 5)
_CANON_SIZES = (3, 4)
_NON_WORD = re.compile(r"[^\w]+")
_RUNS = re.compile(r"(\w)\1{2,}")
_DIGITS = re.compile(r"\d+")
_MAX_CHARS = 600


def char_words(text: str) -> list[str]:
    """The message as typed, reduced to lowercase words: punctuation and emoji dropped, letters
    stretched three times or more cut to two ("tolonggg" -> "tolongg"), numbers replaced by
    their length class ("#d11" for a KPJ, "#d4" for a year)."""
    plain = _RUNS.sub(r"\1\1", _NON_WORD.sub(" ", text[:_MAX_CHARS].casefold()).replace("_", " "))
    return [_DIGITS.sub(lambda m: f"#d{min(len(m.group()), 16)}", w) for w in plain.split()]


def features(canonical: str, typed: Sequence[str],
             rule_scores: Mapping[str, float], symbols: str = "") -> dict[str, float]:
    """Every feature of one message, with its value.

    ``canonical`` is the normalised text, ``typed`` the words of :func:`char_words`,
    ``rule_scores`` the phrase rules' weight per intent and ``symbols`` the emoji and other
    symbols typed (:func:`symbols_of`). Word, n-gram and symbol features are present (1.0) or
    absent; a rule score counts up to 4, scaled to [0, 1].
    """
    found: dict[str, float] = {}
    words = canonical.split()
    for index, word in enumerate(words):
        found["w:" + word] = 1.0
        if index:
            found[f"b:{words[index - 1]}_{word}"] = 1.0
        _ngrams(found, "k:", word, _CANON_SIZES)
    for word in typed:
        _ngrams(found, "c:", word, _CHAR_SIZES)
    for symbol in symbols:
        found["e:" + symbol] = 1.0
    for intent, score in rule_scores.items():
        found["r:" + intent] = min(score, 4.0) / 4.0
    if not found:
        found["empty"] = 1.0
    return found


def _ngrams(found: dict[str, float], prefix: str, word: str, sizes: Sequence[int]) -> None:
    padded = f"<{word}>"
    for size in sizes:
        for start in range(len(padded) - size + 1):
            found[prefix + padded[start:start + size]] = 1.0


def symbols_of(text: str) -> str:
    """The emoji and other symbols of a message, skin tones and variation selectors dropped
    ("👍🏻" -> "👍")."""
    return "".join(dict.fromkeys(ch for ch in text[:_MAX_CHARS]
                                 if unicodedata.category(ch) == "So"
                                 and not 0x1F3FB <= ord(ch) <= 0x1F3FF))


@dataclass(frozen=True)
class IntentModel:
    """A softmax over linear scores: ``intercepts[c] + sum(value * weight[c])`` per class."""

    classes: tuple[str, ...]
    intercepts: tuple[float, ...]
    weights: Mapping[str, tuple[tuple[int, float], ...]]
    version: str = ""

    def probabilities(self, found: Mapping[str, float]) -> list[tuple[str, float]]:
        """Each class with its probability, the most likely first (ties in class order)."""
        scores = list(self.intercepts)
        for name, value in found.items():
            for index, weight in self.weights.get(name, ()):
                scores[index] += value * weight
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        total = sum(exps)
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [(self.classes[i], exps[i] / total) for i in ranked]

    def to_json(self) -> dict[str, Any]:
        """The JSON form :meth:`from_json` reads (weights rounded to 4 decimals)."""
        return {"format": FORMAT, "version": self.version, "classes": list(self.classes),
                "intercepts": [round(b, 4) for b in self.intercepts],
                "weights": {name: [[i, round(w, 4)] for i, w in pairs]
                            for name, pairs in sorted(self.weights.items())}}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> IntentModel:
        """Rebuild a model written by :meth:`to_json`; a file of another format is refused."""
        if raw.get("format") != FORMAT:
            raise ValueError(f"intent model format {raw.get('format')!r}, expected {FORMAT}")
        return cls(tuple(raw["classes"]), tuple(float(b) for b in raw["intercepts"]),
                   {name: tuple((int(i), float(w)) for i, w in pairs)
                    for name, pairs in raw["weights"].items()},
                   str(raw.get("version", "")))


def save(model: IntentModel, path: Path = MODEL_PATH) -> None:
    """Write the model as deterministic gzipped JSON (no timestamp: the same model, the same
    bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(model.to_json(), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                               filename="") as out:
        out.write(text.encode("utf-8"))


@cache
def load(path: Path = MODEL_PATH) -> IntentModel | None:
    """The model at ``path``, read once; ``None`` when there is none (the rules then decide
    alone)."""
    if not path.exists():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as source:
        return IntentModel.from_json(json.load(source))
