"""The planning pass of ``bench_notify.py``, alone in a process so that its peak RSS is the
planner's, not the data generator's.

    python bench/_notify_plan.py --database URL --redis URL --prefix P [--profile N]

Builds the planner as ``app.compose.alert_planner`` does (the reference balance service's
change feed, the SQL directory and cursors, each channel's Redis Streams queue), plans
:data:`_notify_common.TODAY` once and prints one JSON line: seconds, jobs by kind, where the
wall time went (feed, directory, queue; the rest is the planner's own Python), each kind's
phase and this process's CPU and peak memory. ``--profile N`` runs the pass under cProfile and
prints the N costliest functions (by own time and by cumulative time) to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _notify_common import SECRET, TODAY, emit, usage  # noqa: E402

from alerts.planner import AlertPolicy, Planner  # noqa: E402
from alerts.queue_redis import RedisAlertQueue  # noqa: E402
from alerts.queues import ChannelQueues  # noqa: E402
from app.metrics import Metrics  # noqa: E402
from balance.service import ReferenceBalanceService  # noqa: E402
from storage.alerts import SqlAlertStore  # noqa: E402
from storage.db import create_engine  # noqa: E402
from storage.sessions import redis_store_from_url  # noqa: E402


class Timed:
    """A port whose coroutine methods add their wall time to ``spent[name]`` and note when
    each method was first called (seconds since ``started``)."""

    def __init__(self, inner: Any, name: str, spent: Counter[str],
                 first: dict[str, float], started: float) -> None:
        self._inner, self._name, self._spent = inner, name, spent
        self._first, self._started = first, started

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        call = getattr(self._inner, method)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            begun = time.perf_counter()
            self._first.setdefault(method, begun - self._started)
            try:
                return await call(*args, **kwargs)
            finally:
                took = time.perf_counter() - begun
                self._spent[self._name] += took
                self._spent[f"{self._name}.{method}{_kind(args)}"] += took

        return timed


def _kind(args: tuple[Any, ...]) -> str:
    """``[posted]`` when the first argument is a non-empty list of jobs, else ``""``."""
    jobs = args[0] if args else None
    kind = getattr(jobs[0], "kind", None) if isinstance(jobs, list) and jobs else None
    return f"[{kind.value}]" if kind is not None else ""


async def plan(args: argparse.Namespace) -> dict[str, Any]:
    """One pass; the figures."""
    store = redis_store_from_url(args.redis, prefix=args.prefix)
    database = create_engine(args.database)
    spent: Counter[str] = Counter()
    first: dict[str, float] = {}
    try:
        alerts = SqlAlertStore(database)
        queues = ChannelQueues(lambda channel: RedisAlertQueue(
            store.client, secret=SECRET, prefix=store.prefix, channel=channel))
        cpu_before = usage()["cpu_seconds"]
        started = time.perf_counter()
        planner = Planner(
            feed=Timed(ReferenceBalanceService(database), "feed", spent, first, started),
            directory=Timed(alerts, "directory", spent, first, started),
            cursors=alerts, queue=Timed(queues, "queue", spent, first, started),
            policy=AlertPolicy(), metrics=Metrics())
        report = await planner.plan(TODAY, datetime.now(UTC))
        seconds = time.perf_counter() - started
        cpu = usage()["cpu_seconds"] - cpu_before
    finally:
        await database.dispose()
        await store.aclose()
    by_kind: Counter[str] = Counter()
    for (kind, _channel), count in report.new.items():
        by_kind[kind] += count
    posted_end = first.get("missing_contributions", seconds)
    missing_end = first.get("development_rates", seconds)
    return {"seconds": seconds, "pass_cpu_seconds": cpu, "jobs": sum(by_kind.values()),
            "by_kind": dict(by_kind),
            "already": report.already, "spent": dict(spent),
            "phases": {"posted": posted_end, "missing": missing_end - posted_end,
                       "development": seconds - missing_end}}


def main() -> None:
    """Parse the flags, plan, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--profile", type=int, default=0,
                        help="print the N costliest functions (cProfile) to stderr")
    args = parser.parse_args()
    if args.profile:
        profiler = cProfile.Profile()
        figures = profiler.runcall(asyncio.run, plan(args))
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.profile)
            sys.stderr.write(out.getvalue())
    else:
        figures = asyncio.run(plan(args))
    figures.update(usage())
    emit(figures)


if __name__ == "__main__":
    main()
