"""The two bot processes of ``bench_telegram.py``, each served by webhook on loopback.

    python bench/_telegram_harness.py ours --api-base URL --redis URL --prefix P --db FILE ...
    python bench/_telegram_harness.py echo --api-base URL

``ours`` is the project's Telegram channel built as ``run_bot.py serve`` builds it: the real
aiogram dispatcher and client, the engine on Redis (``redis_store_from_url`` under a unique
prefix, deleted on exit), SQLite accounts and the in-process reference balance service, the
web app of ``app/web.py``. ``echo`` is a bare aiogram bot: one handler that answers
``message.text``, behind aiogram's ``SimpleRequestHandler``.

Each process registers its webhook with the (fake) Bot API server, prints one JSON line
``{"url": ...}`` on stdout when ready, and serves until SIGTERM. ``GET /bench/stats`` reports
what the load generator needs from inside: updates finished, Redis commands sent by this
process's client, errors, CPU seconds and peak RSS. ``POST /bench/limiter?mode=paced|unpaced``
switches the flood limiter of ``ours`` between passes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _serving import MONTHS, announce, log_warnings, until_terminated  # noqa: E402
from aiogram import Bot, Dispatcher  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.types import Message  # noqa: E402
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application  # noqa: E402
from aiohttp import web  # noqa: E402

from app import tuning  # noqa: E402 - light: the echo process imports no more
from app.tuning import settle_heap  # noqa: E402
from channels.telegram.throttle import SendThrottle  # noqa: E402

TOKEN = "123456:BENCH-telegram-token"
WEBHOOK_SECRET = "bench-webhook-secret_1"
SECRET = b"bench-telegram"  # the bot's HMAC secret (button tags, OTP keys)
STATS_PATH = "/bench/stats"
LIMITER_PATH = "/bench/limiter"
TELEGRAM_PATH = "/telegram/webhook"  # channels.telegram.web's default path
ERROR_KINDS = ("internal", "telegram", "store", "overload")
T = TypeVar("T")


class SwitchableThrottle(SendThrottle):
    """The channel's :class:`SendThrottle`, one of two settings at a time: ``paced`` for the
    measured pass at the target rate, ``unpaced`` for the saturation pass (so that the
    1 message/s per chat spacing of multi-message replies does not bound the throughput)."""

    def __init__(self, paced: SendThrottle, unpaced: SendThrottle) -> None:
        super().__init__()
        self.modes = {"paced": paced, "unpaced": unpaced}
        self.active = paced

    async def send(self, chat_id: int | str, call: Callable[[], Awaitable[T]]) -> T:
        """Pace ``call`` with the active setting."""
        return await self.active.send(chat_id, call)


class CollectorPauses:
    """The garbage collector's work in this process: the time all its collections took, and
    each full (generation 2) collection, when it ended (``time.monotonic``, one clock for all
    processes on Linux) and how long it stopped the event loop, so that the load generator
    can tell its passes' pauses."""

    def __init__(self) -> None:
        self.pauses: deque[tuple[float, float]] = deque(maxlen=1000)  # (ended at, ms)
        self.seconds = 0.0  # all generations
        self._started = 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.seconds += took
        if info["generation"] == 2:
            self.pauses.append((time.monotonic(), took * 1000))


PAUSES = CollectorPauses()


def usage() -> dict[str, Any]:
    """CPU seconds (all threads), peak resident memory and full collections of this process."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": own.ru_utime + own.ru_stime, "peak_rss_mb": peak_rss_mb(own),
            "full_collections": list(PAUSES.pauses), "gc_seconds": PAUSES.seconds}


def peak_rss_mb(own: resource.struct_rusage) -> float:
    """Peak resident memory in MiB. ``ru_maxrss`` of a process started by fork (or vfork)
    and exec keeps the parent's high-water mark, so Linux's ``VmHWM`` (this program image
    only) is preferred; elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return own.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL; cleans up (the webhook's
    background updates are drained by the app's shutdown hook)."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        await web.SockSite(runner, sock).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def stats_route(read: Callable[[], dict[str, Any]]) -> Callable[[web.Request],
                                                                  Awaitable[web.Response]]:
    """``GET /bench/stats`` (``?full=1``: with the full collections)."""
    async def stats(request: web.Request) -> web.Response:
        figures = {**read(), **usage()} if request.query.get("full") else read()
        return web.json_response(figures)

    return stats


def bot_for(api_base: str, *, json_bodies: bool = False) -> Bot:
    """The real aiogram client pointed at the fake Bot API server: aiogram's own session (the
    echo bot), or the project's, which posts JSON bodies (``run_bot.py`` uses it)."""
    server = TelegramAPIServer.from_base(api_base)
    if json_bodies:
        from channels.telegram.session import JsonAiohttpSession
        return Bot(TOKEN, session=JsonAiohttpSession(api=server))
    return Bot(TOKEN, session=AiohttpSession(api=server))


async def prepare(args: argparse.Namespace) -> None:
    """The bot's database, made in a process of its own so that the bot's peak memory is that
    of serving: migrated, the demo members seeded, and a membership of its own for each of the
    ``--linked`` chats (KPJ ``9000000000i``, ten years of contributions, imported from
    generated CSV files), linked to the chat."""
    from bench_import import write_csvs

    from app.compose import open_database
    from balance.importer import import_csv
    from channels.telegram.render import CHANNEL
    from flows.types import SessionKey
    from storage.accounts import SqlAccountStore

    database = await open_database(f"sqlite:///{args.db}")
    try:
        accounts = SqlAccountStore(database, SECRET)
        members, contributions = write_csvs(args.db.parent, args.linked, MONTHS)
        await import_csv(database, members=members, contributions=contributions)
        now = datetime.now(UTC)
        for i in range(args.linked):
            await accounts.link(SessionKey(CHANNEL, str(args.first_chat + i)), f"9{i:010d}",
                                now)
    finally:
        await database.dispose()


async def serve_ours(args: argparse.Namespace) -> None:  # noqa: PLR0915 - one wiring
    """The project's channel, engine, Redis, SQLite and reference balance service."""
    # Imported here so that the echo process holds only aiogram (its peak RSS is compared).
    from bench_engine import CommandCounter

    from app.compose import build_engine, build_ports
    from app.documents import PooledDocumentMaker
    from app.metrics import CountingOtpSender, Metrics
    from app.otp_delivery import OutboxOtpSender
    from app.web import create_web_app, database_check, kv_check
    from balance.cache import CachedBalanceService
    from balance.service import ReferenceBalanceService
    from channels.telegram.channel import TelegramChannel
    from channels.telegram.render import CHANNEL
    from channels.telegram.web import add_telegram_routes
    from flows.i18n import Catalog
    from storage.accounts import SqlAccountStore
    from storage.db import create_engine
    from storage.sessions import redis_store_from_url
    from storage.statements import SqlStatementIssueStore

    database = create_engine(f"sqlite:///{args.db}")  # made by ``prepare``
    accounts = SqlAccountStore(database, SECRET)
    store = redis_store_from_url(args.redis, prefix=args.prefix)
    counter = CommandCounter(store._client)  # noqa: SLF001 - counts this process's commands
    metrics, catalog = Metrics(), Catalog()
    reference = ReferenceBalanceService(database)
    balance = (CachedBalanceService(reference, ttl=args.balance_cache)  # as run_bot.py does
               if args.balance_cache > 0 else reference)
    # Statements and charts in worker processes, as ``app.compose.runtime`` wires them for
    # serve (``--statement-pool thread``: in threads of the bot's process, for comparison).
    documents = PooledDocumentMaker(secret=SECRET, verify_url="http://localhost/verify",
                                    catalog=catalog,
                                    processes=2 if args.statement_pool == "process" else 0)
    if args.statement_pool == "process":
        await documents.warm()
    ports = build_ports(kv=store, accounts=accounts, balance=balance, secret=SECRET,
                        otp_sender=CountingOtpSender(OutboxOtpSender(Path(args.outbox)), metrics),
                        documents=documents, statements=SqlStatementIssueStore(database, SECRET))
    engine = build_engine(store, ports, catalog=catalog)
    bot = bot_for(args.api_base, json_bodies=True)
    throttle = SwitchableThrottle(
        SendThrottle(per_bot=args.per_bot, per_chat=args.per_chat),
        SendThrottle(per_bot=args.per_bot, per_chat=args.unpaced_per_chat))
    channel = TelegramChannel(bot, serve=engine.serve, ports=ports, inbox=store.inbox("telegram"),
                              throttle=throttle, metrics=metrics, catalog=catalog)
    app = create_web_app(metrics=metrics,
                         checks={"database": database_check(database), "redis": kv_check(store),
                                 "balance_service": reference.ping})
    add_telegram_routes(app, channel, secret=WEBHOOK_SECRET, path=TELEGRAM_PATH)

    def sample(metric: Any, name: str, **labels: str) -> float:
        """One sample of one metric (collecting the whole registry, as ``Metrics.value``
        does, cost the bot 0.2 ms a poll)."""
        return float(sum(s.value for family in metric.collect() for s in family.samples
                         if s.name == name
                         and all(s.labels.get(k) == v for k, v in labels.items())))

    def read() -> dict[str, Any]:  # polled by the generator ten times a second
        return {"completed": sample(metrics.update_seconds, "bot_update_seconds_count",
                                    channel=CHANNEL),
                "redis_commands": counter.count,
                "cache_hits": getattr(balance, "hits", 0),
                "cache_misses": getattr(balance, "misses", 0),
                "errors": sum(sample(metrics.errors, "bot_errors_total", kind=k)
                              for k in ERROR_KINDS)}

    async def limiter(request: web.Request) -> web.Response:
        throttle.active = throttle.modes[request.query["mode"]]
        return web.json_response({"ok": True})

    app.router.add_get(STATS_PATH, stats_route(read))
    app.router.add_post(LIMITER_PATH, limiter)
    try:
        async with served(app) as url:
            await channel.register_webhook(url + TELEGRAM_PATH, WEBHOOK_SECRET)
            await channel.register_commands()
            settle_heap()  # as run_bot.py does once it is serving
            announce(url)
            await until_terminated()
    finally:
        await channel.close()
        documents.close()
        await forget(store._client, args.prefix)  # noqa: SLF001
        await store.aclose()
        await database.dispose()


async def forget(client: Any, prefix: str) -> None:
    """Delete the run's keys from Redis."""
    keys = [key async for key in client.scan_iter(prefix + "*")]
    for start in range(0, len(keys), 1000):
        await client.delete(*keys[start:start + 1000])


async def serve_echo(args: argparse.Namespace) -> None:
    """A bare aiogram echo bot in webhook mode."""
    bot = bot_for(args.api_base)
    dispatcher = Dispatcher()
    done = {"completed": 0.0}

    async def echo(message: Message) -> None:
        await message.answer(message.text or "")
        done["completed"] += 1

    dispatcher.message.register(echo)
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot,
                         secret_token=WEBHOOK_SECRET).register(app, path=TELEGRAM_PATH)
    setup_application(app, dispatcher, bot=bot)
    app.router.add_get(STATS_PATH, stats_route(lambda: dict(done)))
    async with served(app) as url:
        await bot.set_webhook(url + TELEGRAM_PATH, secret_token=WEBHOOK_SECRET)
        if args.settle_heap:  # the process setting ours gets from run_bot.py
            settle_heap()
        announce(url)
        await until_terminated()


def main() -> None:
    """Run one bot process until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bot", choices=("prepare", "ours", "echo"))
    parser.add_argument("--api-base", default="")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--prefix", default=f"bench-tg:{time.time_ns()}:")
    parser.add_argument("--db", type=Path)
    parser.add_argument("--outbox", type=Path)
    parser.add_argument("--first-chat", type=int, default=100_000)
    parser.add_argument("--linked", type=int, default=0)
    parser.add_argument("--balance-cache", type=float, default=60.0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--settle-heap", action="store_true",
                        help="echo: freeze the heap once serving, as ours always does")
    parser.add_argument("--per-bot", type=float, default=30.0)
    parser.add_argument("--per-chat", type=float, default=1.0)
    parser.add_argument("--unpaced-per-chat", type=float, default=1000.0)
    parser.add_argument("--statement-pool", choices=("thread", "process"), default="process",
                        help="ours: statements made in threads (as serve) or processes")
    args = parser.parse_args()
    log_warnings()
    if args.bot == "prepare":
        asyncio.run(prepare(args))
        return
    serve = serve_ours(args) if args.bot == "ours" else serve_echo(args)
    profile = os.environ.get("BENCH_PROFILE")  # a file: pyinstrument's report of this process
    if not profile:
        tuning.run(serve, loop=args.loop)  # both bots on the same loop: a fair comparison
        return
    if profile.endswith(".pstats"):  # cProfile: exact call counts, for `python -m pstats`
        import cProfile  # noqa: PLC0415

        with cProfile.Profile() as deterministic:
            tuning.run(serve, loop=args.loop)
        deterministic.dump_stats(profile)
        return
    from pyinstrument import Profiler  # type: ignore[import-not-found]  # optional: uv run --with

    with Profiler(interval=0.001, async_mode="disabled") as profiler:
        tuning.run(serve, loop=args.loop)
    Path(profile).write_text(profiler.output_text(unicode=False, show_all=False) + "\n"
                             + profiler.output_text(unicode=False, flat=True))


if __name__ == "__main__":
    main()
