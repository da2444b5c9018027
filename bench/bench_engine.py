"""Engine latency and throughput on the embedded and the Redis session store.

    uv run python bench/bench_engine.py [--members 1000] [--concurrency 20] [--redis URL]

Simulated members send a realistic mix through the real engine (SQLite accounts, reference
balance service behind its in-process cache of ``--balance-cache`` seconds, as ``run_bot.py``
builds it; 0 computes every answer from SQL): 60% "cek saldo" from linked chats, each linked to
a membership of its own with ten years of contributions, 20% FAQ questions, 10% menu and
greetings, 10% a registration step. ``--concurrency`` updates are in flight at once (as a web
server would run them); the heap is settled first, as ``run_bot.py`` does (``app.tuning``).
Prints the median, p95 and p99 of ``Engine.handle`` in ms, updates per second, Redis commands
per update, and the process's peak resident memory. With the in-process store and a warm cache
most updates never wait on I/O, so with several in flight the ones that do (a registration
step's database reads) wait for the others: compare latencies at ``--concurrency 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio  # noqa: E402
from bench_import import write_csvs  # noqa: E402

from app.compose import build_engine, build_ports, open_database  # noqa: E402
from app.otp_delivery import OutboxOtpSender  # noqa: E402
from app.tuning import settle_heap  # noqa: E402
from balance.cache import CachedBalanceService  # noqa: E402
from balance.importer import import_csv  # noqa: E402
from balance.service import ReferenceBalanceService  # noqa: E402
from flows.ports import SessionBackend  # noqa: E402
from flows.types import Event, SessionKey  # noqa: E402
from storage.accounts import SqlAccountStore  # noqa: E402
from storage.sessions import MemorySessionStore, redis_store_from_url  # noqa: E402

FAQ = ["cara klaim jht gmn", "iuran jht berapa persen", "saldo sy kok gak nambah",
       "lupa akun jmo", "nomor call center", "apa itu jkp"]
MENU = ["menu", "halo min", "makasih"]


def mix(rng: random.Random) -> str:
    """One message of the realistic mix."""
    roll = rng.random()
    if roll < 0.6:
        return "cek saldo"
    if roll < 0.8:
        return rng.choice(FAQ)
    if roll < 0.9:
        return rng.choice(MENU)
    return "/daftar"


async def run(store: SessionBackend, *, members: int, rounds: int, concurrency: int,
              workdir: Path, balance_cache: float,
              count_commands: Callable[[], Awaitable[int]] | None) -> dict[str, float]:
    """Drive the engine; return the figures."""
    database = await open_database(f"sqlite:///{workdir / 'bench.db'}")
    accounts = SqlAccountStore(database, b"bench")
    memberships, contributions = write_csvs(workdir, members, 120)
    await import_csv(database, members=memberships, contributions=contributions)
    now = datetime.now(UTC)
    for i in range(members):
        await accounts.link(SessionKey("bench", str(i)), f"9{i:010d}", now)
    reference = ReferenceBalanceService(database)
    balance = (CachedBalanceService(reference, ttl=balance_cache) if balance_cache > 0
               else reference)
    ports = build_ports(kv=store, accounts=accounts, balance=balance,
                        otp_sender=OutboxOtpSender(workdir / "outbox.jsonl"), secret=b"bench")
    engine = build_engine(store, ports)
    settle_heap()
    rng = random.Random(7)
    latencies: list[float] = []

    async def worker(w: int) -> None:
        for _ in range(rounds):
            for i in range(w, members, concurrency):
                key = SessionKey("bench", str(i))
                started = time.perf_counter()
                await engine.handle(key, Event.message(mix(rng), language_code="id"))
                latencies.append((time.perf_counter() - started) * 1000)

    before = await count_commands() if count_commands else 0
    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    after = await count_commands() if count_commands else 0
    await database.dispose()
    latencies.sort()
    n = len(latencies)
    return {"updates": n, "per_second": n / elapsed,
            "p50": statistics.median(latencies), "p95": latencies[int(n * 0.95) - 1],
            "p99": latencies[int(n * 0.99) - 1],
            "commands_per_update": (after - before) / n if count_commands else 0.0}


class CommandCounter:
    """Counts the commands this client sends (other clients of the server are not counted)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.count = 0
        original = client.execute_command

        async def counted(*args: object, **kwargs: object) -> object:
            self.count += 1
            return await original(*args, **kwargs)

        client.execute_command = counted  # type: ignore[method-assign]

    async def read(self) -> int:
        """Commands sent so far."""
        return self.count


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def show(label: str, figures: dict[str, float], peak_mb: float) -> None:
    """One line of figures."""
    extra = (f", {figures['commands_per_update']:.2f} Redis commands/update"
             if figures["commands_per_update"] else "")
    print(f"{label:<22} {int(figures['updates'])} updates: {figures['per_second']:.0f}/s, "
          f"p50 {figures['p50']:.2f} ms, p95 {figures['p95']:.2f} ms, "
          f"p99 {figures['p99']:.2f} ms{extra}, peak RSS {peak_mb:.0f} MiB")


async def main() -> None:
    """Run on the in-process store, then on Redis when it answers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--balance-cache", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m").mkdir()
        figures = await run(MemorySessionStore(), members=args.members, rounds=args.rounds,
                            concurrency=args.concurrency, workdir=Path(tmp) / "m",
                            balance_cache=args.balance_cache, count_commands=None)
        show("in-process store", figures, peak_rss_mb())
        prefix = f"bench:{time.time_ns()}:"
        store = redis_store_from_url(args.redis, prefix=prefix)
        client = store._client  # noqa: SLF001 - the benchmark counts this client's commands
        try:
            await client.ping()
        except (OSError, redis.RedisError):
            print("Redis not reachable: skipped")
            await store.aclose()
            return
        counter = CommandCounter(client)
        (Path(tmp) / "r").mkdir()
        figures = await run(store, members=args.members, rounds=args.rounds,
                            concurrency=args.concurrency, workdir=Path(tmp) / "r",
                            balance_cache=args.balance_cache, count_commands=counter.read)
        show("Redis store", figures, peak_rss_mb())
        keys = [k async for k in client.scan_iter(prefix + "*")]
        if keys:
            await client.delete(*keys)
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
