"""Speed and size of :func:`flows.intents.classify` (phrase rules plus the trained model).

Usage: ``uv run bench/bench_intents.py [calls]`` (default 20,000 calls). Prints:

- start-up: importing the classifier and loading the model, in a fresh interpreter (median of
  five), and the memory that adds (peak RSS after loading minus before);
- the median and 95th percentile per call over the sample, held-out and corpus messages, warm
  and cold (token cache cleared before every message, as for text never seen), and for a
  message answered before (short messages' answers are cached), and calls per second; and the
  same for a 4,000-character message.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILES = (ROOT.parent / "shared/data/intents-sample.tsv", ROOT / "tests/data/intents-heldout.tsv",
         ROOT / "nlu/corpus/holdout.tsv")
_STARTUP = """
import json, resource, time
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
from flows import intent_model, intents
model = intent_model.load()
intents.classify("cek saldo")
took = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": took, "kib": after - before, "features": model.features}))
"""


def messages() -> list[str]:
    """Every message text of the labelled files."""
    texts: list[str] = []
    for path in FILES:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        texts += [line.partition("\t")[2] for line in lines if "\t" in line]
    return texts


def startup() -> None:
    """Print the median start-up time and the memory the model adds, over five fresh runs."""
    runs = [json.loads(subprocess.run([sys.executable, "-c", _STARTUP], cwd=ROOT, check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(5)]
    seconds = statistics.median(run["seconds"] for run in runs)
    mib = statistics.median(run["kib"] for run in runs) / 1024
    print(f"start-up (import + load model + first call): median {seconds * 1000:.0f} ms, "
          f"+{mib:.1f} MiB RSS, {runs[0]['features']:,} weighted features")


def timings(texts: list[str], *, cold: bool, repeated: bool = False) -> list[float]:
    """Microseconds per classify call, one entry per text. The answer cache of short messages
    is cleared before each call unless ``repeated`` (a message the process has answered);
    ``cold`` clears the token cache too (text never seen)."""
    from flows import intents

    result: list[float] = []
    for text in texts:
        if not repeated:
            intents._classify_cached.cache_clear()
        if cold:
            intents._canonical.cache_clear()
        start = time.perf_counter_ns()
        intents.classify(text)
        result.append((time.perf_counter_ns() - start) / 1000)
    return result


def show(label: str, values: list[float]) -> None:
    """Print median, p95 and throughput for one series of timings."""
    median = statistics.median(values)
    p95 = statistics.quantiles(values, n=20)[-1]
    rate = len(values) / (sum(values) / 1e6)
    print(f"{label}: {len(values)} calls, median {median:.1f} us, p95 {p95:.1f} us, "
          f"{rate:,.0f} calls/s")


def main(argv: list[str]) -> int:
    """Run the start-up, warm and cold benchmarks."""
    calls = int(argv[0]) if argv else 20_000
    startup()
    texts = messages()
    timings(texts, cold=False)
    show("warm", timings(list(islice(cycle(texts), calls)), cold=False))
    show("cold", timings(texts, cold=True))
    show("repeated (answered before)", timings(list(islice(cycle(texts), calls)), cold=False,
                                                repeated=True))
    long_text = " ".join(texts)[:4000]
    show("4,000-char message, cold", timings([long_text] * 50, cold=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
