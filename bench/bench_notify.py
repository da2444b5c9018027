"""Contribution alerts at scale: planning 1,000,000 subscribed members, Redis memory per job,
one worker's send rate, and the time to reach everyone at the platforms' caps (issue 16).

    uv run python bench/bench_notify.py [--members 1000000] [--sends 20000] [--quick]
        [--keep] [--reuse] [--profile N] [--redis URL] [--postgres URL]

1. Data, generated in PostgreSQL by ``INSERT ... SELECT generate_series`` into a database of
   its own (``--postgres``, dropped at the end unless ``--keep``): ``--members`` active
   members (80% PU, 10% BPU, 10% PMI), each linked to a Telegram chat subscribed to the three
   kinds; one earlier month's contribution each (2026-09) and the month's change feed: a
   2026-10 contribution paid on 2026-11-10 for 97% of them (contribution and
   contribution_change rows); the other 3% miss 2026-10, so the missing pass has work.
   The generation time is printed, not part of the targets. ``--reuse`` plans on the
   database a ``--keep`` run left (its cursors cleared).
2. Plan: ``_notify_plan.py`` in a child process plans 2026-11-25 (posted, missing and the
   2025 development) onto Redis Streams; its wall time, jobs/s, peak RSS (the child's own)
   and where the time went: the feed's SQL, the directory's SQL, the queue's scripts, and the
   rest (the planner's Python). Targets: under 60 s and under 300 MB for 1,000,000 members.
   ``--profile N`` profiles the pass (cProfile, the N costliest functions to stderr).
3. Redis memory per queued job: ``INFO memory`` used_memory before and after the plan (the
   whole server: other users of the same Redis move it too), ``MEMORY USAGE`` of the stream
   and of a sample of the chats' mark hashes.
4. Send rate: ``_notify_worker.py`` drains ``--sends`` posted alerts with one worker, pacing
   off, through the real Telegram outbox as ``serve`` builds it for alerts (``locked=False``)
   against the fake Bot API of ``_notify_platform.py`` (a process of its own), again with
   the desk's outbox (the chat's lock and saved view), and with an outbox that sends
   nothing. Target: at least 1,000 sends/s per worker process.
5. The time to send 1,000,000 alerts at each platform's cap, and the workers needed so that
   the workers are not what limits it.

Every Redis key is under ``bench-notify:<run>:`` (``--redis``, database 13 by default) and is
deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _notify_common import (  # noqa: E402
    DEVELOPMENT_YEAR,
    EARLIER_PERIOD,
    KEY_PREFIX,
    POSTED_PERIOD,
)

from storage.db import migrate  # noqa: E402

HERE = Path(__file__).resolve().parent
PLAN_TARGET_SECONDS = 60.0
PLAN_TARGET_MB = 300.0
SEND_TARGET = 1_000.0  # sends/s per worker process
MISSING_EVERY = 100  # members i with i % 100 < 3 miss the posted month
MISSING_PER_HUNDRED = 3
MARK_SAMPLE = 1_000
CAPS = (("Telegram (about 30/s per bot)", 30.0),
        ("WhatsApp, default tier (80/s)", 80.0),
        ("WhatsApp, upgraded tier (1,000/s)", 1_000.0))
REACH = 1_000_000

# Each statement fills one table from generate_series (fast, all in the server); $1: members.
GENERATE = (
    ("member", """
        INSERT INTO member (kpj, nik, name, birth_date, phone, email, segment, status,
                            employer_npp)
        SELECT '9' || lpad(i::text, 10, '0'), '3171' || lpad(i::text, 12, '0'),
               'Peserta ' || i, date '1970-01-01' + (i % 12000),
               '0812' || lpad((i % 100000000)::text, 8, '0'), '',
               CASE i % 10 WHEN 8 THEN 'BPU' WHEN 9 THEN 'PMI' ELSE 'PU' END, 'active', NULL
        FROM generate_series(0, $1 - 1) AS i"""),
    ("chat_link", """
        INSERT INTO chat_link (channel, chat_id, kpj, linked_at)
        SELECT 'telegram', (100000000 + i)::text, '9' || lpad(i::text, 10, '0'), now()
        FROM generate_series(0, $1 - 1) AS i"""),
    ("alert_subscription", """
        INSERT INTO alert_subscription (channel, chat_id, kind, version, subscribed_at)
        SELECT 'telegram', (100000000 + i)::text, kind, 'alerts-1', now()
        FROM generate_series(0, $1 - 1) AS i,
             unnest(ARRAY['posted', 'missing', 'development']) AS kind"""),
    ("contribution (earlier month)", f"""
        INSERT INTO contribution (kpj, period, wage, employer_part, employee_part, paid_on)
        SELECT '9' || lpad(i::text, 10, '0'), '{EARLIER_PERIOD}', w, round(w * 0.037),
               round(w * 0.02), date '2026-10-10'
        FROM generate_series(0, $1 - 1) AS i, LATERAL (SELECT 3000000 + (i % 200) * 50000) AS
             wage(w)"""),
    ("contribution (feed month)", f"""
        INSERT INTO contribution (kpj, period, wage, employer_part, employee_part, paid_on)
        SELECT '9' || lpad(i::text, 10, '0'), '{POSTED_PERIOD}', w, round(w * 0.037),
               round(w * 0.02), date '2026-11-10'
        FROM generate_series(0, $1 - 1) AS i, LATERAL (SELECT 3000000 + (i % 200) * 50000) AS
             wage(w)
        WHERE i % {MISSING_EVERY} >= {MISSING_PER_HUNDRED}"""),
    ("contribution_change", f"""
        INSERT INTO contribution_change (kpj, period, recorded_at)
        SELECT kpj, period, now() FROM contribution WHERE period = '{POSTED_PERIOD}'
        ORDER BY kpj"""),
)


def admin_url(url: str) -> str:
    """The server's ``postgres`` database, where databases are created and dropped."""
    return url.rsplit("/", 1)[0] + "/postgres"


async def database_exists(url: str) -> bool:
    """Whether the database of ``url`` exists."""
    conn = await asyncpg.connect(admin_url(url))
    try:
        name = url.rsplit("/", 1)[1]
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def recreate_database(url: str) -> None:
    """Drop (if any) and create the database of ``url``."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin_url(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the database of ``url``."""
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin_url(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def generate(url: str, members: int) -> None:
    """Migrate and fill the database; prints each table's time."""
    started = time.perf_counter()
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        for table, statement in GENERATE:
            began = time.perf_counter()
            status = await conn.execute(statement, members) if "$1" in statement \
                else await conn.execute(statement)
            rows = int(status.rsplit(" ", 1)[1])
            print(f"    {table}: {rows:,} rows in {time.perf_counter() - began:.1f} s",
                  flush=True)
        await conn.execute(
            "INSERT INTO development_rate (year, rate_percent) VALUES ($1, 6.59) "
            "ON CONFLICT (year) DO NOTHING", DEVELOPMENT_YEAR)
        began = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        print(f"    VACUUM ANALYZE: {time.perf_counter() - began:.1f} s")
    finally:
        await conn.close()
    print(f"  generated {members:,} members in {time.perf_counter() - started:.1f} s "
          f"(not part of the targets)")


async def reset_cursors(url: str) -> None:
    """Forget where an earlier pass stopped (``--reuse``)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM alert_cursor")
        members = await conn.fetchval("SELECT count(*) FROM member")
    finally:
        await conn.close()
    print(f"  reusing the database: {members:,} members, cursors cleared")


async def child(script: str, *arguments: str) -> dict[str, Any]:
    """Run ``script`` with this interpreter; its last stdout line as JSON (stderr passes
    through)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / script), *arguments, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode:
        raise SystemExit(f"{script} failed with exit status {process.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def used_memory(client: redis.asyncio.Redis) -> int:
    """The Redis server's ``used_memory`` (every database)."""
    info = await client.info("memory")
    return int(info["used_memory"])


async def memory_usage(client: redis.asyncio.Redis, key: str, samples: int = 5) -> int:
    """``MEMORY USAGE key SAMPLES n`` (0: exact)."""
    found = await client.execute_command("MEMORY", "USAGE", key, "SAMPLES", samples)
    return int(found or 0)


async def delete_keys(client: redis.asyncio.Redis, pattern: str) -> int:
    """Unlink every key matching ``pattern``; how many."""
    deleted, batch = 0, []
    async for key in client.scan_iter(match=pattern, count=5_000):
        batch.append(key)
        if len(batch) >= 5_000:
            deleted += await client.unlink(*batch)
            batch = []
    if batch:
        deleted += await client.unlink(*batch)
    return deleted


def show_plan(plan: dict[str, Any], members: int) -> None:
    """The planning pass's figures."""
    seconds, jobs = plan["seconds"], plan["jobs"]
    rss = plan.get("hwm_mb", plan["maxrss_mb"])
    print(f"  {jobs:,} jobs ({', '.join(f'{k} {v:,}' for k, v in plan['by_kind'].items())}) "
          f"for {members:,} members in {seconds:.1f} s: {jobs / seconds:,.0f} jobs/s")
    print(f"  peak RSS of the planning process: {rss:.0f} MB (VmHWM; ru_maxrss "
          f"{plan['maxrss_mb']:.0f} MB); CPU of the pass {plan['pass_cpu_seconds']:.1f} s "
          f"({plan['pass_cpu_seconds'] / seconds:.0%} of a core; the process's "
          f"{plan['cpu_seconds']:.1f} s with its imports)")
    phases = plan["phases"]
    print("  phases: " + ", ".join(f"{name} {phases[name]:.1f} s"
                                   for name in ("posted", "missing", "development")))
    spent = plan["spent"]
    rest = seconds - sum(v for k, v in spent.items() if "." not in k)
    own = (f", planner's own {rest:.1f} s ({rest / seconds:.0%})" if rest >= 0 else
           f" (they overlap: the next pages are read while a page is enqueued; "
           f"{-rest:.1f} s more than the wall time)")
    print("  wall time in: " + ", ".join(
        f"{name} {spent.get(name, 0.0):.1f} s ({spent.get(name, 0.0) / seconds:.0%})"
        for name in ("feed", "directory", "queue")) + own)
    detail = sorted((k, v) for k, v in spent.items() if "." in k)
    print("    by call: " + ", ".join(f"{k} {v:.1f} s" for k, v in detail))
    scale = REACH / members
    verdict = "met" if seconds * scale < PLAN_TARGET_SECONDS and rss < PLAN_TARGET_MB \
        else "MISSED"
    print(f"  target (1,000,000 in < {PLAN_TARGET_SECONDS:.0f} s, < {PLAN_TARGET_MB:.0f} MB): "
          f"{verdict}" + (f" (time scaled x{scale:g} from {members:,})" if scale != 1 else ""))


async def redis_figures(client: redis.asyncio.Redis, prefix: str, before: int,
                        jobs: int) -> None:
    """Redis memory per queued job: the server's growth, the stream's and the marks'."""
    after = await used_memory(client)
    stream = f"{prefix}alerts:jobs:telegram"
    length = await client.xlen(stream)
    stream_bytes = await memory_usage(client, stream, 0)
    sample: list[Any] = []
    async for key in client.scan_iter(match=f"{prefix}alerts:marks:*", count=1_000):
        sample.append(key)
        if len(sample) >= MARK_SAMPLE:
            break
    marks_each = (sum([await memory_usage(client, key) for key in sample]) / len(sample)
                  if sample else 0.0)
    fields = (sum([await client.hlen(key) for key in sample]) / len(sample) if sample else 0.0)
    chats = 0
    async for _ in client.scan_iter(match=f"{prefix}alerts:marks:*", count=10_000):
        chats += 1
    print(f"  used_memory: {before / 2**20:,.0f} MB -> {after / 2**20:,.0f} MB, "
          f"{(after - before) / max(jobs, 1):,.0f} bytes per job (whole server)")
    print(f"  stream: {length:,} entries, {stream_bytes / 2**20:,.0f} MB (MEMORY USAGE), "
          f"{stream_bytes / max(length, 1):,.0f} bytes per entry")
    print(f"  marks: {chats:,} chat hashes, {marks_each:,.0f} bytes each on average "
          f"({fields:.1f} marks; sample of {len(sample):,}), "
          f"{marks_each * chats / 2**20:,.0f} MB in all")
    print(f"  stream and marks: {(stream_bytes + marks_each * chats) / max(jobs, 1):,.0f} "
          f"bytes per queued job")


async def send_figures(args: argparse.Namespace, prefix: str) -> float:
    """One worker's rate through the real outbox and a no-op one; the real rate."""
    common = ["--database", args.postgres, "--redis", args.redis, "--jobs", str(args.sends)]
    platform = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "_notify_platform.py"), stdout=asyncio.subprocess.PIPE)
    try:
        assert platform.stdout is not None
        url = json.loads((await platform.stdout.readline()).decode())["url"]
        real = await child("_notify_worker.py", *common, "--prefix", f"{prefix}send:",
                           "--api-base", url)
        locked = await child("_notify_worker.py", *common, "--prefix", f"{prefix}locked:",
                             "--api-base", url, "--locked")
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(f"{url}/stats") as response:
            fake = await response.json()
    finally:
        platform.terminate()
        await platform.wait()
    noop = await child("_notify_worker.py", *common, "--prefix", f"{prefix}noop:", "--noop")
    rate = real["sent"] / real["seconds"]
    for label, run in (("real Telegram outbox for alerts (fake Bot API; locked=False)", real),
                       ("the desk's outbox (the chat's lock, its view loaded and saved)",
                        locked),
                       ("no-op outbox (the worker without sending)", noop)):
        sent = run["sent"]
        print(f"  {label}: {sent:,} sent of {run['enqueued']:,} in {run['seconds']:.2f} s: "
              f"{sent / run['seconds']:,.0f} sends/s, {run['cpu'] / max(sent, 1) * 1e6:,.0f} "
              f"us CPU per send (worker process at {run['cpu'] / run['seconds']:.0%} of a "
              f"core); skipped {run['skipped']}, blocked {run['blocked']}, "
              f"failed {run['failed']}")
    print(f"  fake Bot API: {sum(fake['calls'].values()):,} calls, "
          f"{fake['cpu_seconds']:.1f} s CPU in its process "
          f"({fake['cpu_seconds'] / (real['seconds'] + locked['seconds']):.0%} of a core "
          f"while draining)")
    verdict = "met" if rate >= SEND_TARGET else "MISSED"
    print(f"  target (>= {SEND_TARGET:,.0f} sends/s per worker process, pacing off): {verdict}")
    return rate


def hours_minutes(seconds: float) -> str:
    """``9 h 15 min``."""
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def show_reach(rate: float) -> None:
    """The time to send 1,000,000 alerts at each cap, and the workers it takes."""
    for label, cap in CAPS:
        workers = max(1, math.ceil(cap / rate)) if rate > 0 else 0
        print(f"  {label}: {hours_minutes(REACH / cap)} for {REACH:,} alerts; "
              f"{workers} worker process(es) at {rate:,.0f} sends/s each keep up")


def parse_args() -> argparse.Namespace:
    """The flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="100,000 members (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--reuse", action="store_true",
                        help="plan on the database a --keep run left, if there is one")
    parser.add_argument("--profile", type=int, default=0,
                        help="profile the planning pass: the N costliest functions")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/bench_notify")
    args = parser.parse_args()
    if args.quick:
        args.members = 100_000
    args.sends = min(args.sends, args.members)
    return args


async def main() -> None:
    """Generate, plan, measure, clean up."""
    args = parse_args()
    prefix = f"{KEY_PREFIX}{uuid.uuid4().hex[:8]}:"
    client = redis.asyncio.Redis.from_url(args.redis)
    print(f"bench_notify: {args.members:,} members, {args.sends:,} sends "
          f"(Redis keys under {prefix}, database {args.postgres.rsplit('/', 1)[1]})")
    try:
        print("1. data")
        if args.reuse and await database_exists(args.postgres):
            await reset_cursors(args.postgres)
        else:
            await recreate_database(args.postgres)
            await generate(args.postgres, args.members)
        print("2. plan (a process of its own)")
        before = await used_memory(client)
        plan = await child("_notify_plan.py", "--database", args.postgres, "--redis",
                           args.redis, "--prefix", prefix, "--profile", str(args.profile))
        show_plan(plan, args.members)
        print("3. Redis memory")
        await redis_figures(client, prefix, before, plan["jobs"])
        print("4. one worker's send rate, pacing off")
        rate = await send_figures(args, prefix)
        print(f"5. time to reach {REACH:,} members at the platforms' caps")
        show_reach(rate)
    finally:
        deleted = await delete_keys(client, f"{prefix}*")
        await client.aclose()
        print(f"cleanup: {deleted:,} Redis keys deleted", end="")
        if args.keep:
            print(f"; database {args.postgres} kept")
        else:
            await drop_database(args.postgres)
            print("; database dropped")


if __name__ == "__main__":
    asyncio.run(main())
