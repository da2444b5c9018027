"""One alert worker of ``bench_notify.py``, alone in a process so that its CPU is the worker's.

    python bench/_notify_worker.py --database URL --redis URL --prefix P --jobs N
        (--api-base URL | --noop)

Enqueues ``--jobs`` posted alerts for the chats of members 0 to N-1 (subscribed and linked by
the generator) on the Telegram queue under ``--prefix``, then drains them with one
:class:`alerts.worker.AlertWorker` built as ``app.compose.alert_workers`` builds it, pacing
off: the real SQL directory, the engine's rendering (:func:`flows.alerts.alert_says`), and
the real :class:`channels.telegram.outbox.TelegramOutbox` as ``serve`` builds it for alerts
(aiogram's client with the project's JSON session, ``locked=False``: no chat lock, no saved
view) on the fake Bot API at ``--api-base``, its flood limiter out of the way; with
``--locked``, the outbox as the agent desk uses it (the chat's view locked and saved in the
Redis session store); or, with ``--noop``, an outbox that sends nothing (what the rest of
the worker costs). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _notify_common import POSTED_PERIOD, SECRET, TODAY, TOKEN, emit, usage  # noqa: E402

from alerts.queue_redis import RedisAlertQueue  # noqa: E402
from alerts.worker import AlertWorker  # noqa: E402
from app.compose import build_engine, build_ports  # noqa: E402
from app.metrics import Metrics  # noqa: E402
from app.otp_delivery import OutboxOtpSender  # noqa: E402
from domain.alerts import AlertJob, AlertKind  # noqa: E402
from flows.alerts import alert_says  # noqa: E402
from flows.i18n import Catalog  # noqa: E402
from flows.ports import MemberOutbox, UnreachableChats  # noqa: E402
from flows.types import Reply, SessionKey  # noqa: E402
from storage.alerts import SqlAlertStore  # noqa: E402
from storage.db import create_engine  # noqa: E402
from storage.sessions import redis_store_from_url  # noqa: E402

UNPACED = 1_000_000.0  # the flood limiter's rates, far above any rate reached


class NoopOutbox:
    """An outbox that delivers nothing and says it did."""

    async def deliver(self, key: SessionKey, replies: list[Reply]) -> bool:
        """Nothing sent; ``True``."""
        return True


def jobs_for(count: int) -> list[AlertJob]:
    """Posted alerts for the chats of members 0 to ``count - 1`` (as the generator made
    them: KPJ ``9`` and ten digits, chat id 100,000,000 plus the member's number)."""
    return [AlertJob("telegram", str(100_000_000 + i), AlertKind.POSTED, POSTED_PERIOD,
                     f"9{i:010d}", "PU", 185_000, 100_000) for i in range(count)]


async def drain(args: argparse.Namespace) -> dict[str, Any]:
    """Enqueue, drain, the figures."""
    store = redis_store_from_url(args.redis, prefix=args.prefix)
    database = create_engine(args.database)
    bot = None
    try:
        alerts = SqlAlertStore(database)
        queue = RedisAlertQueue(store.client, secret=SECRET, prefix=store.prefix,
                                channel="telegram")
        began = time.perf_counter()
        enqueued = await queue.enqueue(jobs_for(args.jobs))
        enqueue_seconds = time.perf_counter() - began
        metrics, catalog = Metrics(), Catalog()
        outbox_dir = tempfile.mkdtemp(prefix="bench-notify-otp-")
        ports = build_ports(kv=store, database=database, secret=SECRET,
                            otp_sender=OutboxOtpSender(Path(outbox_dir) / "otp.jsonl"),
                            alerts=alerts, alert_marks=queue)
        engine = build_engine(store, ports, catalog=catalog)

        def render(job: AlertJob, locale: str) -> list[Reply]:
            return engine.render(alert_says(job, TODAY), locale)

        outbox: MemberOutbox
        if args.noop:
            outbox = NoopOutbox()
        else:
            from aiogram import Bot
            from aiogram.client.telegram import TelegramAPIServer

            from channels.telegram.outbox import TelegramOutbox
            from channels.telegram.session import JsonAiohttpSession
            from channels.telegram.throttle import SendThrottle

            bot = Bot(TOKEN, session=JsonAiohttpSession(
                api=TelegramAPIServer.from_base(args.api_base)))
            throttle = SendThrottle(per_bot=UNPACED, per_chat=UNPACED)
            outbox = TelegramOutbox(bot, throttle, metrics=metrics, secret=SECRET,
                                    sessions=store, kv=store, ttl_for=engine.ttl_for,
                                    locked=args.locked)
        worker = AlertWorker(queue=queue, directory=alerts, outbox=outbox, render=render,
                             consumer="bench-notify-0", pacer=None, metrics=metrics,
                             concurrency=args.concurrency, batch=args.batch,
                             unreachable=(outbox if isinstance(outbox, UnreachableChats)
                                          else None))  # as serve: blocked chats read per batch
        cpu_before = usage()["cpu_seconds"]
        began = time.perf_counter()
        report = await worker.drain()
        seconds = time.perf_counter() - began
        cpu = usage()["cpu_seconds"] - cpu_before
    finally:
        if bot is not None:
            await bot.session.close()
        await database.dispose()
        await store.aclose()
    return {"enqueued": enqueued, "enqueue_seconds": enqueue_seconds, "seconds": seconds,
            "cpu": cpu, "sent": report.sent, "skipped": report.skipped,
            "blocked": report.blocked, "failed": report.failed}


def main() -> None:
    """Parse the flags, drain, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--api-base", default="")
    parser.add_argument("--noop", action="store_true")
    parser.add_argument("--locked", action="store_true",
                        help="the outbox with the chat's lock and saved view (the desk's)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="sends in flight (AlertWorker's default)")
    parser.add_argument("--batch", type=int, default=100,
                        help="jobs received at a time (AlertWorker's default)")
    parser.add_argument("--profile", type=int, default=0,
                        help="print the N costliest functions (cProfile) to stderr")
    args = parser.parse_args()
    if not args.noop and not args.api_base:
        parser.error("--api-base or --noop")
    if args.profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        figures = profiler.runcall(asyncio.run, drain(args))
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.profile)
            sys.stderr.write(out.getvalue())
    else:
        figures = asyncio.run(drain(args))
    figures.update(usage())
    emit(figures)


if __name__ == "__main__":
    main()
