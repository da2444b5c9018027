"""Latency of :func:`flows.intents.classify` over the sample and held-out messages.

Usage: ``uv run bench/bench_intents.py [calls]`` (default 20,000 calls). Prints the median and
95th percentile per call, calls per second, and the same for a cold pass (token cache cleared
before every message, as for text the process has never seen).
"""

from __future__ import annotations

import statistics
import sys
import time
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows import intents  # noqa: E402

FILES = (ROOT.parent / "shared/data/intents-sample.tsv", ROOT / "tests/data/intents-heldout.tsv")


def messages() -> list[str]:
    """Every message text of the sample and held-out files."""
    texts: list[str] = []
    for path in FILES:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        texts += [line.partition("\t")[2] for line in lines if "\t" in line]
    return texts


def timings(texts: list[str], *, cold: bool) -> list[float]:
    """Microseconds per classify call, one entry per text."""
    result: list[float] = []
    for text in texts:
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
    """Run the warm and cold benchmarks."""
    calls = int(argv[0]) if argv else 20_000
    texts = messages()
    timings(texts, cold=False)
    show("warm", timings(list(islice(cycle(texts), calls)), cold=False))
    show("cold", timings(texts, cold=True))
    long_text = " ".join(texts)[:4000]
    show("4,000-char message, cold", timings([long_text] * 50, cold=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
