"""Accuracy report for :func:`flows.intents.classify` on a labelled TSV (``intent<TAB>text``).

Usage: ``uv run bench/intent_accuracy.py [path.tsv ...]`` (default: the shared sample).
Prints overall accuracy, per-intent precision and recall, and every misclassified line.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared/data/intents-sample.tsv"
sys.path.insert(0, str(ROOT))

from flows.intents import classify  # noqa: E402


def load(path: Path) -> list[tuple[str, str]]:
    """Return (intent, text) pairs from a TSV with an ``intent<TAB>text`` header."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(label, text) for label, _, text in (line.partition("\t") for line in lines) if text]


def report(path: Path) -> float:
    """Print the accuracy report for one file and return its accuracy."""
    rows = load(path)
    predicted = [classify(text).name for _, text in rows]
    hits = sum(p == label for p, (label, _) in zip(predicted, rows, strict=True))
    accuracy = hits / len(rows) if rows else 0.0
    print(f"{path}: accuracy {accuracy:.3f} ({hits}/{len(rows)})")
    gold = Counter(label for label, _ in rows)
    guessed = Counter(predicted)
    right = Counter(p for p, (label, _) in zip(predicted, rows, strict=True) if p == label)
    print(f"  {'intent':26} {'prec':>5} {'recall':>6} {'n':>4}")
    for intent in sorted(gold | guessed):
        precision = right[intent] / guessed[intent] if guessed[intent] else 0.0
        recall = right[intent] / gold[intent] if gold[intent] else 0.0
        print(f"  {intent:26} {precision:5.2f} {recall:6.2f} {gold[intent]:4}")
    for p, (label, text) in zip(predicted, rows, strict=True):
        if p != label:
            print(f"  MISS expected {label:24} got {p:24} | {text}")
    return accuracy


def main(argv: list[str]) -> int:
    """Report on each path given (or the default sample)."""
    for path in [Path(arg) for arg in argv] or [DEFAULT]:
        report(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
