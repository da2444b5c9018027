"""Accuracy report for :func:`flows.intents.classify` on labelled TSVs (``intent<TAB>text``).

Usage: ``uv run bench/intent_accuracy.py [path.tsv ...]`` (default: the shared sample).
Prints, per file: overall accuracy; how often the bot would ask which of two intents was meant,
and its accuracy on the messages where it does not ask; how often an out-of-scope message
(labelled ``unknown``) is answered as an in-scope intent; per-intent precision and recall; and
every miss with the runner-up.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared/data/intents-sample.tsv"
sys.path.insert(0, str(ROOT))

from flows.intents import Intent, classify  # noqa: E402


def load(path: Path) -> list[tuple[str, str]]:
    """Return (intent, text) pairs from a TSV with an ``intent<TAB>text`` header."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(label, text) for label, _, text in (line.partition("\t") for line in lines) if text]


@dataclass(frozen=True)
class Score:
    """The figures of one labelled file."""

    lines: int
    accuracy: float
    asked: float
    accuracy_unasked: float
    asked_right_pair: float
    out_of_scope_taken: float


def score(rows: list[tuple[str, str]], results: list[Intent]) -> Score:
    """Figures for labelled rows and what :func:`classify` made of them."""
    pairs = list(zip(rows, results, strict=True))
    hits = sum(label == got.name for (label, _), got in pairs)
    asked = [(label, got) for (label, _), got in pairs if got.alternative is not None]
    unasked = [(label, got) for (label, _), got in pairs if got.alternative is None]
    out_of_scope = [got for (label, _), got in pairs if label == "unknown"]
    return Score(
        lines=len(rows),
        accuracy=hits / len(rows) if rows else 0.0,
        asked=len(asked) / len(rows) if rows else 0.0,
        accuracy_unasked=(sum(label == got.name for label, got in unasked) / len(unasked)
                          if unasked else 0.0),
        asked_right_pair=(sum(label in (got.name, got.alternative) for label, got in asked)
                          / len(asked) if asked else 0.0),
        out_of_scope_taken=(sum(got.name != "unknown" for got in out_of_scope)
                            / len(out_of_scope) if out_of_scope else 0.0))


def report(path: Path) -> float:
    """Print the accuracy report for one file and return its accuracy."""
    rows = load(path)
    results = [classify(text) for _, text in rows]
    figures = score(rows, results)
    print(f"{path}: accuracy {figures.accuracy:.3f} on {figures.lines} lines; asks on "
          f"{figures.asked:.1%} (the right intent among the two offered: "
          f"{figures.asked_right_pair:.0%}); accuracy when not asking "
          f"{figures.accuracy_unasked:.3f}; out of scope answered as in scope "
          f"{figures.out_of_scope_taken:.1%}")
    predicted = [result.name for result in results]
    gold = Counter(label for label, _ in rows)
    guessed = Counter(predicted)
    right = Counter(p for p, (label, _) in zip(predicted, rows, strict=True) if p == label)
    print(f"  {'intent':26} {'prec':>5} {'recall':>6} {'n':>4}")
    for intent in sorted(gold | guessed):
        precision = right[intent] / guessed[intent] if guessed[intent] else 0.0
        recall = right[intent] / gold[intent] if gold[intent] else 0.0
        print(f"  {intent:26} {precision:5.2f} {recall:6.2f} {gold[intent]:4}")
    for result, (label, text) in zip(results, rows, strict=True):
        if result.name != label:
            asking = f" (asks: {result.alternative})" if result.alternative else ""
            print(f"  MISS expected {label:24} got {result.name:24} "
                  f"runner-up {result.runner_up:24}{asking} | {text}")
    return figures.accuracy


def main(argv: list[str]) -> int:
    """Report on each path given (or the default sample)."""
    for path in [Path(arg) for arg in argv] or [DEFAULT]:
        report(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
