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

import base64
import gzip
import json
import math
import re
import sys
import unicodedata
from array import array
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

MODEL_PATH = Path(__file__).resolve().parents[1] / "nlu" / "model" / "intents.json.gz"
FORMAT = 2
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


class IntentModel:
    """A softmax over linear scores: ``intercepts[c] + sum(value * weight[c])`` per class.

    The weights are kept in three flat arrays (feature ``i`` owns the entries from
    ``starts[i]`` to ``starts[i + 1]``: a class index and a 32-bit weight each), a few MiB for
    the whole model where tuples of Python floats took tens."""

    def __init__(self, classes: Sequence[str], intercepts: Sequence[float],
                 weights: Mapping[str, Sequence[tuple[int, float]]], version: str = "") -> None:
        self.classes = tuple(classes)
        self.intercepts = tuple(float(b) for b in intercepts)
        self.version = version
        names = sorted(weights)
        self._index = {name: number for number, name in enumerate(names)}
        self._starts, self._rows, self._values = array("I", [0]), array("B"), array("f")
        for name in names:
            for row, weight in weights[name]:
                self._rows.append(row)
                self._values.append(weight)
            self._starts.append(len(self._rows))

    @property
    def weights(self) -> dict[str, tuple[tuple[int, float], ...]]:
        """Each feature's (class index, weight) pairs, weights as stored (32-bit)."""
        return {name: tuple((self._rows[k], self._values[k])
                            for k in range(self._starts[i], self._starts[i + 1]))
                for name, i in self._index.items()}

    @property
    def features(self) -> int:
        """How many features carry a weight."""
        return len(self._index)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, IntentModel) and self.to_json() == other.to_json())

    __hash__ = None  # type: ignore[assignment]

    def probabilities(self, found: Mapping[str, float]) -> list[tuple[str, float]]:
        """Each class with its probability, the most likely first (ties in class order)."""
        scores = list(self.intercepts)
        index, starts, rows, values = self._index, self._starts, self._rows, self._values
        for name, value in found.items():
            number = index.get(name)
            if number is None:
                continue
            for k in range(starts[number], starts[number + 1]):
                scores[rows[k]] += value * values[k]
        top = max(scores)
        exps = [math.exp(score - top) for score in scores]
        total = sum(exps)
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        return [(self.classes[i], exps[i] / total) for i in ranked]

    def to_json(self) -> dict[str, Any]:
        """The JSON form :meth:`from_json` reads: names in order, and the three arrays as
        base64 of their little-endian bytes (weights rounded to 4 decimals first)."""
        values = array("f", (round(v, 4) for v in self._values))
        return {"format": FORMAT, "version": self.version, "classes": list(self.classes),
                "intercepts": [round(b, 4) for b in self.intercepts],
                "features": sorted(self._index, key=self._index.__getitem__),
                "starts": _pack(self._starts), "rows": _pack(self._rows),
                "values": _pack(values)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> IntentModel:
        """Rebuild a model written by :meth:`to_json`; a file of another format is refused."""
        if raw.get("format") != FORMAT:
            raise ValueError(f"intent model format {raw.get('format')!r}, expected {FORMAT}")
        model = cls(raw["classes"], raw["intercepts"], {}, str(raw.get("version", "")))
        model._index = {name: number for number, name in enumerate(raw["features"])}
        model._starts = _unpack("I", raw["starts"])
        model._rows = _unpack("B", raw["rows"])
        model._values = _unpack("f", raw["values"])
        if len(model._starts) != len(model._index) + 1 or len(model._rows) != len(model._values):
            raise ValueError("intent model arrays do not match its features")
        return model


def _pack(values: array[Any]) -> str:
    data = values if sys.byteorder == "little" else array(values.typecode, values)
    if sys.byteorder != "little":
        data.byteswap()
    return base64.b64encode(data.tobytes()).decode("ascii")


def _unpack(typecode: str, text: str) -> array[Any]:
    values = array(typecode)
    values.frombytes(base64.b64decode(text))
    if sys.byteorder != "little":
        values.byteswap()
    return values


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
