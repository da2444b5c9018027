"""Build the intent model from the corpus: ``uv run python -m nlu.build [--check] [--dev]``.

Trains a multinomial logistic regression (scikit-learn, a development dependency only) on every
line of ``nlu/corpus/train/*.tsv``, with the features :func:`flows.intents.message_features`
computes at run time, and writes ``nlu/model/intents.json.gz``. The same corpus gives the same
bytes: the solver is deterministic and the file carries no timestamp.

``--check`` rebuilds in memory and fails when the committed model differs (a test runs it, so a
corpus change without a rebuild cannot land). ``--dev`` sets a sixth of the training lines
aside (by a hash of the text), trains on the rest and prints the accuracy on that part, for
tuning. The set-aside test set ``nlu/corpus/holdout.tsv`` is never read here.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_DIR = ROOT / "nlu" / "corpus" / "train"
C = 4.0
"""Inverse regularisation strength, chosen on the development split (``--dev``)."""
UNKNOWN_WEIGHT = 2.5
"""How much more an out-of-scope line counts in training than an in-scope one."""
MIN_WEIGHT = 0.02
"""Weights smaller than this are dropped from the file: they never change a decision."""


def read_tsv(path: Path) -> list[tuple[str, str]]:
    """(label, text) pairs from a TSV with an ``intent<TAB>text`` header."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        label, _, text = line.partition("\t")
        if text.strip():
            rows.append((label.strip(), text))
    return rows


def corpus(directory: Path = TRAIN_DIR) -> list[tuple[str, str]]:
    """Every training line, files in name order, duplicates dropped."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for path in sorted(directory.glob("*.tsv")):
        for row in read_tsv(path):
            if row not in seen:
                seen.add(row)
                rows.append(row)
    return rows


def is_dev(text: str) -> bool:
    """One line in six, fixed by a hash of its text."""
    return hashlib.sha256(text.encode("utf-8")).digest()[0] % 6 == 0


def noisy(text: str) -> list[str]:
    """Two variants of a line as members mistype it: two neighbouring words joined, and one
    word's last letter stretched ("cek saldo" -> "ceksaldo", "cek saldooo"). Chosen by a hash
    of the text, so the same corpus gives the same variants."""
    words = text.split()
    if not words:
        return []
    seed = hashlib.sha256(text.encode("utf-8")).digest()
    variants = []
    if len(words) >= 2:
        at = seed[1] % (len(words) - 1)
        variants.append(" ".join([*words[:at], words[at] + words[at + 1], *words[at + 2:]]))
    at = seed[2] % len(words)
    variants.append(" ".join([*words[:at], words[at] + words[at][-1] * 3, *words[at + 1:]]))
    return variants


def train(rows: Sequence[tuple[str, str]], c: float = C,
          unknown_weight: float = UNKNOWN_WEIGHT) -> object:
    """Fit the model on (label, text) rows and their :func:`noisy` variants; returns a
    :class:`flows.intent_model.IntentModel`."""
    from sklearn.feature_extraction import DictVectorizer  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    from flows.intent_model import IntentModel
    from flows.intents import INTENTS, message_features

    unknown = sorted({label for label, _ in rows} - set(INTENTS))
    if unknown:
        raise SystemExit(f"labels that are no intent: {unknown}")
    corpus_rows = rows
    rows = [*rows, *((label, variant) for label, text in rows for variant in noisy(text))]
    vectoriser = DictVectorizer()
    matrix = vectoriser.fit_transform([message_features(text) for _, text in rows])
    labels = [label for label, _ in rows]
    fitted = LogisticRegression(C=c, max_iter=3000, tol=1e-6,
                                class_weight={"unknown": unknown_weight}).fit(matrix, labels)
    classes = tuple(str(name) for name in fitted.classes_)
    names = vectoriser.get_feature_names_out()
    weights: dict[str, tuple[tuple[int, float], ...]] = {}
    for column, name in enumerate(names):
        pairs = tuple((row, float(fitted.coef_[row, column])) for row in range(len(classes))
                      if abs(fitted.coef_[row, column]) >= MIN_WEIGHT)
        if pairs:
            weights[str(name)] = pairs
    return IntentModel(classes, tuple(float(b) for b in fitted.intercept_), weights,
                       version=version_of(corpus_rows, c))


def version_of(rows: Sequence[tuple[str, str]], c: float) -> str:
    """The model's version: a digest of the corpus lines it learnt from, and ``C``."""
    digest = hashlib.sha256("\n".join(f"{label}\t{text}" for label, text in rows)
                            .encode("utf-8")).hexdigest()[:12]
    return f"corpus-{digest}-c{c:g}"


TOLERANCE = 0.002
"""How far a rebuilt weight may stray from the committed one (floating-point noise of the
solver across machines) before ``--check`` calls the model stale."""


def difference(one: object, other: object) -> float | None:
    """The largest absolute difference between two models' weights and intercepts, or
    ``None`` when their classes or versions differ."""
    from flows.intent_model import IntentModel

    assert isinstance(one, IntentModel) and isinstance(other, IntentModel)
    if one.classes != other.classes or one.version != other.version:
        return None
    gap = max(abs(a - b) for a, b in zip(one.intercepts, other.intercepts, strict=True))
    ones, others = one.weights, other.weights
    for name in ones.keys() | others.keys():
        mine, theirs = dict(ones.get(name, ())), dict(others.get(name, ()))
        for index in mine.keys() | theirs.keys():
            gap = max(gap, abs(mine.get(index, 0.0) - theirs.get(index, 0.0)))
    return gap


def dev_report(rows: Sequence[tuple[str, str]], c: float) -> float:
    """Train on five sixths, print and return the accuracy on the sixth set aside."""
    from flows.intent_model import IntentModel
    from flows.intents import classify_with

    fit = [row for row in rows if not is_dev(row[1])]
    held = [row for row in rows if is_dev(row[1])]
    model = train(fit, c)
    assert isinstance(model, IntentModel)
    hits = asked = 0
    for label, text in held:
        intent = classify_with(model, text)
        hits += intent.name == label
        asked += intent.alternative is not None
    accuracy = hits / len(held)
    print(f"C={c:g}: dev accuracy {accuracy:.3f} ({hits}/{len(held)}), would ask "
          f"{asked / len(held):.1%}, trained on {len(fit)}")
    return accuracy


def main(argv: Sequence[str] = ()) -> int:
    """Build, check or tune; see the module docstring."""
    sys.path.insert(0, str(ROOT))
    from flows.intent_model import MODEL_PATH, IntentModel, load, save

    parser = argparse.ArgumentParser(prog="python -m nlu.build")
    parser.add_argument("--check", action="store_true", help="fail if the model is stale")
    parser.add_argument("--dev", nargs="*", type=float, metavar="C",
                        help="score on a held-back sixth of the corpus for each C")
    args = parser.parse_args(argv)
    rows = corpus()
    if args.dev is not None:
        for c in args.dev or [C]:
            dev_report(rows, c)
        return 0
    model = train(rows)
    assert isinstance(model, IntentModel)
    if args.check:
        committed = load(MODEL_PATH)
        gap = None if committed is None else difference(committed, model)
        if gap is None or gap > TOLERANCE:
            print(f"{MODEL_PATH} is stale (largest weight difference {gap}): run "
                  "`uv run python -m nlu.build`", file=sys.stderr)
            return 1
        print(f"{MODEL_PATH} matches the corpus ({len(rows)} lines; largest weight "
              f"difference {gap:.5f})")
        return 0
    save(model)
    print(f"wrote {MODEL_PATH}: {len(model.classes)} intents, {model.features} features, "
          f"{len(rows)} lines, version {model.version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
