"""Telegram webhook load: the project's bot against a bare aiogram echo bot, same harness.

    uv run python bench/bench_telegram.py [--members 1000] [--rate 200] [--duration 20]
                                          [--rounds 3] [--redis redis://127.0.0.1:6379/15]
                                          [--statements 0.05] [--statement-pool thread|process]

N simulated members chat a realistic mix (60% "cek saldo", 20% history - "riwayat", or the
"older" button when a history page is on screen -, 15% FAQ questions, 5% registration steps:
/daftar, consent button, NIK, KPJ, birth date, shared contact, OTP code). Every member's chat
is linked beforehand, through the AccountStore, to a membership of its own with ten years of
contributions (imported from generated CSV files by a process of its own before the bot
starts, so that the bot's peak memory is that of serving); the 5% who register then link their
chat to a demo member as well.

The bot under test runs in a process of its own (``bench/_telegram_harness.py``): the real
aiogram dispatcher and client, the project's Telegram channel and web app, the real engine on
Redis (unique key prefix, deleted afterwards), SQLite seeded with the demo data and the
in-process reference balance service behind its cache of ``--balance-cache`` seconds (as
``run_bot.py`` builds it; ``--balance-cache 0`` measures every answer computed from SQL). The
share of balance answers the cache gave is printed for each pass. This process runs the fake
Bot API server (``tests/fakes/bot_api.py``) on loopback and an open-loop load generator that
POSTs updates to the bot's webhook with the secret header at ``--rate`` updates/s for
``--duration`` s, every member's updates in order and ``members / rate`` seconds apart.

Latency runs from just before an update is POSTed to the moment the fake server accepts the
first ``sendMessage``/``editMessageText`` to that chat after it. A paced pass that falls more
than ``--max-behind`` seconds of load behind stops offering load there (its latencies are then
a lower bound). Redis commands are those of the bot's own client; peak RSS is the bot
process's (``VmHWM``). Then a saturation pass offers ``--sat-rate`` updates/s for
``--sat-duration`` s with at most ``--sat-window`` updates unfinished, to find the maximum
throughput. The same passes drive a bare aiogram echo bot (``SimpleRequestHandler``, one
handler answering ``message.text``; it gets the same update mix as text messages), running
beside ours from the start, and a second echo bot whose heap is frozen once it serves, as
ours is (``app.tuning.settle_heap``; ``--echo-heap`` picks one of the two). The targets are
judged against the bare echo bot; the second is the stricter baseline: left to the
collector, the bare one spends much of its CPU in full collections when saturated.

Rounds: this machine's speed drifts by tens of percent over minutes, so one pass of each bot
after the other compares two machines. Each of ``--rounds`` rounds runs a paced pass of each
bot, then a saturation pass of each, the bots taking turns to go first (ABBA); the ratios are
taken per round, and their median is reported with the targets (p99: every round's).

Flood control: the fake server has no bot-wide limit, so the bot-wide limit of the project's
``SendThrottle`` is raised (``--per-bot``, default 10,000 messages/s; Telegram's real limit of
about 30/s would cap any bot far below these rates). The per-chat limit stays at 1 message/s
in the paced pass (members write every ``members / rate`` s, 5 s by default, so it never holds
up a first reply) and is lifted in the saturation pass (``--sat-per-chat``), where members
write more often.

Statements (``--statements 0.05``, issue 17): two processes of ours, identical (both with the
documents port wired as ``serve`` wires it: statements and charts made in 2 worker processes), one
getting the usual mix, the other with that share of all updates being the "Last 12 months"
press that makes, signs and uploads a PDF statement; the statement members also send the steps
before it (the card, "Download statement"), three times that share of the load, taken from
members who otherwise chat as the rest (``bench/_statement_mix.py``). The others are the same
chats in both bots, so their p50/p95/p99 with and without statements compare directly; the
statement replies' own latency (the press to the ``sendDocument`` upload) is shown too. Only
paced passes, no echo bot. ``--statement-pool thread`` makes them in threads of the bot's own
process instead, to show what the interpreter lock costs the other chats.

Profile the bot process with ``BENCH_PROFILE=/tmp/profile.txt`` (pyinstrument) or
``BENCH_PROFILE=/tmp/profile.pstats`` (cProfile: exact call counts).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _loadgen as lg  # noqa: E402
import _statement_mix as sm  # noqa: E402
import aiohttp  # noqa: E402
import redis.asyncio  # noqa: E402
from _loadgen import WARMUP_SECONDS, Load  # noqa: E402
from _telegram_harness import LIMITER_PATH, STATS_PATH, TELEGRAM_PATH  # noqa: E402

from tests.fakes.bot_api import FakeBotApi  # noqa: E402

HARNESS = Path(__file__).with_name("_telegram_harness.py")
FIRST_CHAT = 100_000
REPLY_METHODS = ("sendMessage", "editMessageText", "sendDocument")
IDLE_TIMEOUT = 60.0


# --- what the fake server saw -------------------------------------------------------------

class Tracker:
    """Replies as the fake server accepted them: per chat, arrival times and the buttons of
    the newest message (what the member's screen shows). Both bots talk to the same chats, so
    each has screens of its own (:meth:`use`)."""

    def __init__(self, fake: FakeBotApi) -> None:
        self.replies: dict[int, list[float]] = defaultdict(list)
        self._screens: dict[str, dict[int, tuple[int, dict[str, str]]]] = defaultdict(dict)
        self.screen = self._screens[""]  # chat -> (message id, {data: signed data})
        for method in REPLY_METHODS:
            self._wrap(fake, method)

    def _wrap(self, fake: FakeBotApi, method: str) -> None:
        inner = fake.methods.handlers[method]

        def handler(params: dict[str, Any]) -> Any:
            at = time.monotonic()
            result = inner(params)  # raises ApiError for a call Telegram would refuse
            self._saw(method, params, result, at)
            return result

        fake.on(method, handler)

    def _saw(self, method: str, params: dict[str, Any], result: Any, at: float) -> None:
        chat = int(params["chat_id"])
        self.replies[chat].append(at)
        self.screen[chat] = lg.reply_screen(method, params, result)

    def use(self, bot: str) -> None:
        """The next replies come from ``bot``: show and record its screens."""
        self.screen = self._screens[bot]

    def reset(self) -> None:
        """Forget the reply times (a new pass starts)."""
        self.replies.clear()

    def last_reply(self) -> float:
        """Arrival time of the newest reply of the pass."""
        return max((times[-1] for times in self.replies.values() if times), default=0.0)


# --- the members --------------------------------------------------------------------------

Member = lg.Member[int]  # a simulated Telegram user (``chat``: the chat id)


class Generator(lg.Mix[int, dict[str, Any]]):
    """Builds each member's next update (a message, a button press or a shared contact) from
    what the bot last showed them; ``echo``: as text messages only."""

    def __init__(self, fake: FakeBotApi, tracker: Tracker, outbox: Path, rng: random.Random,
                 *, echo: bool = False, statements: sm.StatementCycle | None = None) -> None:
        super().__init__(outbox, rng)
        self.fake = fake
        self.tracker = tracker
        self.echo = echo
        self.statements = statements  # the statement members' cycle (``--statements``)
        self.group = sm.OTHERS  # of the newest update (see ``_statement_mix.group_of``)

    def next(self, member: Member) -> dict[str, Any]:
        """The member's next update; a statement member's from the statement cycle when this
        bot's mix has one (else the usual mix, counted apart all the same)."""
        if self.statements is not None and member.asks_statements:
            update = self.statements.next(self, member)
        else:
            update = super().next(member)
        self.group = sm.group_of(member, self.statements)
        return update

    def message(self, member: Member, text: str) -> dict[str, Any]:
        """A text message."""
        return self.fake.message_update(member.chat, text)

    def press(self, member: Member, data: str, kind: str) -> dict[str, Any] | None:
        """Press the button ``data`` when the bot's newest message carries it."""
        message_id, buttons = self.tracker.screen.get(member.chat, (0, {}))
        if data not in buttons:
            return None
        if self.echo:
            return self.text(member, data, kind)
        self.kinds[kind] += 1
        return self.fake.callback_update(member.chat, buttons[data], message_id=message_id)

    def contact(self, member: Member) -> dict[str, Any]:
        """Share the contact (the echo bot: the number as text)."""
        if self.echo:
            return self.text(member, member.person.phone, "registration")
        self.kinds["registration"] += 1
        return self.fake.contact_update(member.chat, member.person.phone,
                                        contact_user_id=member.chat)


def make_members(count: int) -> list[Member]:
    """``count`` members (chats from ``FIRST_CHAT``), 5% of them registering."""
    return lg.make_members(count, FIRST_CHAT, int)


# --- the bot process ----------------------------------------------------------------------

@dataclass
class BotProcess:
    """A bot served from ``bench/_telegram_harness.py``."""

    name: str
    process: asyncio.subprocess.Process
    url: str
    http: aiohttp.ClientSession

    async def stats(self, *, full: bool = True) -> dict[str, Any]:
        """The process's counters (updates finished, Redis commands, errors); ``full``: with
        CPU, peak RSS and its full garbage collections."""
        async with self.http.get(self.url + STATS_PATH,
                                 params={"full": "1"} if full else {}) as response:
            return dict(await response.json())

    async def limiter(self, mode: str) -> None:
        """Switch the flood limiter (``ours`` only)."""
        async with self.http.post(self.url + LIMITER_PATH, params={"mode": mode}) as response:
            response.raise_for_status()


@asynccontextmanager
async def bot_process(name: str, arguments: list[str],
                      http: aiohttp.ClientSession) -> AsyncIterator[BotProcess]:
    """Start a bot process, wait until it has registered its webhook, stop it on exit."""
    process = await asyncio.create_subprocess_exec(sys.executable, str(HARNESS), name,
                                                   *arguments, stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 180)
        if not line:
            raise SystemExit(f"the {name} bot process exited during start-up")
        yield BotProcess(name, process, json.loads(line)["url"], http)
    finally:
        await lg.stop(process, 60)


async def prepare_database(path: Path, members: int) -> None:
    """The bot's database, made by a process of its own (see the harness's ``prepare``):
    ``members`` chats from ``FIRST_CHAT`` linked, each to a membership of its own."""
    await lg.prepare_database(HARNESS, "--db", str(path), "--first-chat", str(FIRST_CHAT),
                              "--linked", str(members))


# --- one pass -----------------------------------------------------------------------------

@dataclass
class Figures(lg.PassFigures):
    """What a pass measured."""

    updates: int = 0
    replies_per_update: float = 0.0
    redis_per_update: float | None = None
    cache_hit_rate: float | None = None
    collections: list[float] = field(default_factory=list)  # full GC pauses of the pass, ms
    groups: dict[str, list[float]] = field(  # latencies (ms) by ``_statement_mix`` group
        default_factory=lambda: defaultdict(list))
    gc_share: float = 0.0  # of the bot's CPU time, all collections


@dataclass
class Run:
    """One bot under load."""

    bot: BotProcess
    fake: FakeBotApi
    tracker: Tracker
    generator: Generator
    order: list[Member]
    redis_client: redis.asyncio.Redis | None

    async def redis_cpu_seconds(self) -> float | None:
        """CPU seconds the Redis server has used (user + system)."""
        if self.redis_client is None:
            return None
        return await lg.redis_cpu_seconds(self.redis_client)

    async def post_all(self, rate: float, duration: float, *, limit: int,
                       saturate: bool, unfinished: Callable[[int], float],
                       ) -> tuple[list[tuple[int, float, str]], float, float | None]:
        """Post updates open-loop (:func:`_loadgen.open_loop`). Returns ``(chat, posted
        at, group)`` per update, the largest lag behind the schedule (s), and when a paced
        pass stopped (s after its start) or ``None``."""
        posts: list[tuple[int, float, str]] = []

        async def post(member: Member) -> int:
            update = self.generator.next(member)
            chat = int(update.get("message", update.get("callback_query", {}).get(
                "message", {})).get("chat", {}).get("id", member.chat))
            posts.append((chat, time.monotonic(), self.generator.group))
            return await self.fake.post_to_webhook(update, url=self.bot.url + TELEGRAM_PATH)

        _, max_lag, stopped = await lg.open_loop(
            self.order, post, rate=rate, duration=duration, limit=limit, saturate=saturate,
            unfinished=unfinished)
        return posts, max_lag, stopped

    async def wait_idle(self, target: float) -> float:
        """Wait until the bot has finished ``target`` updates in all; returns the count."""
        deadline = time.monotonic() + IDLE_TIMEOUT
        while True:
            done = float((await self.bot.stats(full=False))["completed"])
            if done >= target or time.monotonic() > deadline:
                return done
            await asyncio.sleep(0.05)

    async def measure(self, load: Load) -> Figures:
        """One pass: post, wait until every update is finished, compute the figures."""
        label, limit, saturate = load.label, load.limit, load.saturate
        self.fake.clear_calls()
        self.tracker.reset()
        # The fake server remembers every message: keep the generator's garbage collections
        # from walking them all again (a full collection stalled it for 300 ms).
        gc.collect()
        gc.freeze()
        before = await self.bot.stats()
        redis_before = await self.redis_cpu_seconds()
        own_before = lg.own_cpu_seconds()
        progress = {"completed": before["completed"]}
        poller = asyncio.create_task(self._poll(progress))
        started = time.monotonic()
        try:
            posts, max_lag, stopped = await self.post_all(
                load.rate, load.duration, limit=limit, saturate=saturate,
                unfinished=lambda sent: sent - (progress["completed"] - before["completed"]))
        finally:
            poller.cancel()
        finished = await self.wait_idle(before["completed"] + len(posts))
        wall = time.monotonic() - started
        after = await self.bot.stats()
        redis_after = await self.redis_cpu_seconds()
        figures = Figures(label, load.offered, updates=len(posts),
                          harness_cpu=(lg.own_cpu_seconds() - own_before) / wall,
                          bot_cpu=(after["cpu_seconds"] - before["cpu_seconds"]) / wall,
                          peak_rss_mb=after["peak_rss_mb"], max_lag_ms=max_lag * 1000,
                          errors=int(after.get("errors", 0) - before.get("errors", 0)))
        if stopped is not None:
            figures.note = (f"fell {limit} updates behind after {stopped:.1f} s: "
                            f"load stopped there")
        if finished < before["completed"] + len(posts):
            print(f"  warning: {label}: {before['completed'] + len(posts) - finished:.0f} "
                  f"updates still unfinished after {IDLE_TIMEOUT:g} s")
        figures.collections = [ms for ended, ms in after.get("full_collections", [])
                               if ended >= started]
        cpu = after["cpu_seconds"] - before["cpu_seconds"]
        if cpu > 0 and "gc_seconds" in after:
            figures.gc_share = (after["gc_seconds"] - before["gc_seconds"]) / cpu
        if redis_before is not None and redis_after is not None:
            figures.redis_cpu = (redis_after - redis_before) / wall
        asked = sum(after.get(k, 0) - before.get(k, 0) for k in ("cache_hits", "cache_misses"))
        if asked:
            figures.cache_hit_rate = (after["cache_hits"] - before["cache_hits"]) / asked
        if "redis_commands" in after:
            figures.redis_per_update = (after["redis_commands"] - before["redis_commands"]) \
                / max(1, len(posts))
        replies = sum(len(times) for times in self.tracker.replies.values())
        figures.replies_per_update = replies / max(1, len(posts))
        first_replies = self._pair(posts, figures)
        first_post = min(t for _, t, _ in posts)
        # Saturated (unpaced): the last reply ends the pass. Paced: the first reply to the
        # last update does (the later ones are spaced by the per-chat limit).
        end = self.tracker.last_reply() if saturate else max(first_replies, default=first_post)
        figures.per_second = len(posts) / max(1e-9, end - first_post)
        return figures

    async def _poll(self, progress: dict[str, float]) -> None:
        while True:  # 10 Hz: reading the bot's registry costs it about a millisecond
            progress["completed"] = (await self.bot.stats(full=False))["completed"]
            await asyncio.sleep(0.1)

    def _pair(self, posts: list[tuple[int, float, str]], figures: Figures) -> list[float]:
        """Latency of each update: its post to the chat's first reply after it."""
        by_chat: dict[int, list[tuple[float, str]]] = defaultdict(list)
        for chat, posted, group in posts:
            by_chat[chat].append((posted, group))
        firsts = []
        start = min((posted for _, posted, _ in posts), default=0.0)
        for chat, posted_times in by_chat.items():
            replies = self.tracker.replies.get(chat, [])
            j = 0
            for posted, group in sorted(posted_times):
                while j < len(replies) and replies[j] < posted:
                    j += 1
                if j == len(replies):
                    figures.unanswered += 1
                    continue
                figures.latencies_ms.append((replies[j] - posted) * 1000)
                figures.groups[group].append((replies[j] - posted) * 1000)
                figures.timed.append((posted - start, (replies[j] - posted) * 1000))
                firsts.append(replies[j])
        return firsts


# --- the benchmark ------------------------------------------------------------------------

Contender = lg.Contender[Run, Figures]


async def measure_rounds(contenders: list[Contender], args: argparse.Namespace) -> None:
    """A warm-up of each bot, then the rounds of :func:`_loadgen.schedule` (ABBA); the flood
    limiter of ours is paced in the paced passes, unpaced in the saturation passes."""
    async def one_pass(contender: Contender, load: Load) -> Figures:
        run = contender.run
        run.tracker.use(contender.name)
        if contender.name.startswith("ours") and load.kind != "warm-up":
            await run.bot.limiter("unpaced" if load.saturate else "paced")
        return await run.measure(load)

    await lg.run_schedule(contenders, args, one_pass, show)


TABLE = lg.Table[Figures](18, [
    ("offered", 16, lambda f: f.offered), ("updates", 7, lambda f: f"{f.updates:,}"),
    ("upd/s", 8, lambda f: f"{f.per_second:.1f}"), *lg.latency_cells(),
    ("msg/up", 6, lambda f: f"{f.replies_per_update:.2f}"),
    ("redis", 6, lambda f: "-" if f.redis_per_update is None else f"{f.redis_per_update:.2f}"),
    ("errs", 5, lambda f: f"{f.errors + f.unanswered}"), *lg.usage_cells(cpu_width=5),
    *lg.tail_cells()])


def show(f: Figures) -> None:
    """One line per pass, and its notes."""
    TABLE.row(f)
    if f.note:
        TABLE.note(f.note)
    if f.cache_hit_rate is not None:
        TABLE.note(f"balance answers from the cache: {f.cache_hit_rate:.0%}")
    if f.collections or f.gc_share >= 0.005:
        longest = f", longest {max(f.collections):.0f} ms" if f.collections else ""
        TABLE.note(f"garbage collector: {f.gc_share:.1%} of the CPU; "
                   f"{len(f.collections)} full collections{longest}")
    TABLE.windows(f)


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    lg.add_load_arguments(parser, unit="updates", pending="unfinished", duration=20.0,
                          sat_duration=10.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--per-bot", type=float, default=10_000.0,
                        help="bot-wide flood limit of ours, messages/s")
    parser.add_argument("--per-chat", type=float, default=1.0,
                        help="per-chat flood limit of ours in the paced pass, messages/s")
    parser.add_argument("--sat-per-chat", type=float, default=1000.0,
                        help="per-chat flood limit of ours in the saturation pass")
    lg.add_loop_argument(parser, "bot processes")
    parser.add_argument("--echo-heap", choices=("both", "default", "settled"), default="both",
                        help="the echo bot's heap: default (left to the collector: the bare "
                             "echo bot of the targets), settled (frozen once it serves, as "
                             "ours is, app.tuning.settle_heap), or both, as two baselines")
    parser.add_argument("--balance-cache", type=float, default=60.0,
                        help="seconds the in-process balance cache keeps an answer; 0: none")
    parser.add_argument("--statements", type=float, default=0.0,
                        help="share of updates that are a press making a PDF statement (e.g. "
                             "0.05): ours with that mix against ours without, same chats; no "
                             "echo bot and no saturation pass then")
    parser.add_argument("--statement-pool", choices=("thread", "process"), default="process",
                        help="statements made in threads (as serve does) or in processes")
    parser.add_argument("--bots", default="ours,echo", help=argparse.SUPPRESS)  # for profiling
    return parser.parse_args()


async def main() -> None:
    """Both bots, paced and saturated; the ratios."""
    args = parse_args()
    if args.statements > 0:
        args.sat_duration = 0.0  # the paced passes' latencies are the question

    redis_client = redis.asyncio.Redis.from_url(args.redis)
    redis_version = await lg.redis_version(redis_client, args.redis)
    registering = sum(m.registering for m in make_members(args.members))
    print(f"Telegram webhook benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print("machine: " + lg.machine(redis_version, detail=lg.memory(),
                                   libraries=("aiogram", "aiohttp")))
    print(f"members: {args.members:,}, each linked to a membership of their own "
          f"({registering} of them also register); balance cache {args.balance_cache:g} s; "
          f"each sends one update every "
          f"{args.members / args.rate:.1f} s in the paced pass")
    print(f"flood limiter of ours: SendThrottle(per_bot={args.per_bot:g}, "
          f"per_chat={args.per_chat:g}) in the paced pass, per_chat={args.sat_per_chat:g} "
          f"in the saturation pass (the fake server has no bot-wide limit; Telegram's "
          f"is about 30 messages/s)")
    print(f"saturation: offered up to {args.sat_rate:g} updates/s for {args.sat_duration:g} s, "
          f"at most {args.sat_window} unfinished at once; {WARMUP_SECONDS:g} s warm-up of each "
          f"bot, not counted; {args.rounds} rounds, each a paced pass of each bot, then a "
          f"saturation pass of each; the bots take turns to go first (ABBA)\n")
    print(TABLE.header(), flush=True)
    prefix = f"bench-tg:{time.time_ns()}:"
    contenders: list[Contender] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with FakeBotApi() as fake, aiohttp.ClientSession() as http, \
                AsyncExitStack() as processes:
            tracker = Tracker(fake)
            outbox = workdir / "outbox.jsonl"
            if args.statements > 0:
                contenders = await statement_contenders(
                    args, fake, tracker, http, processes, workdir=workdir, prefix=prefix,
                    redis_client=redis_client)
            elif "ours" in args.bots:
                await prepare_database(workdir / "bench.db", args.members)
                ours = await processes.enter_async_context(bot_process("ours", [
                    "--api-base", fake.api_base, "--redis", args.redis, "--prefix", prefix,
                    "--db", str(workdir / "bench.db"), "--outbox", str(outbox),
                    "--first-chat", str(FIRST_CHAT), "--linked", str(args.members),
                    "--per-bot", str(args.per_bot), "--per-chat", str(args.per_chat),
                    "--unpaced-per-chat", str(args.sat_per_chat),
                    "--balance-cache", str(args.balance_cache), "--loop", args.loop], http))
                generator = Generator(fake, tracker, outbox, random.Random(7))
                contenders.append(Contender("ours", Run(
                    ours, fake, tracker, generator, lg.in_order(make_members(args.members)),
                    redis_client)))
            echoes: dict[str, list[str]] = {"echo": [], "echo+heap": ["--settle-heap"]}
            if args.echo_heap != "both":
                echoes = {"echo": echoes["echo" if args.echo_heap == "default" else "echo+heap"]}
            for name, heap in echoes.items() if "echo" in args.bots and not contenders_only(
                    args) else ():
                echo = await processes.enter_async_context(bot_process(
                    "echo", ["--api-base", fake.api_base, "--loop", args.loop, *heap], http))
                generator = Generator(fake, tracker, outbox, random.Random(7), echo=True)
                contenders.append(Contender(name, Run(
                    echo, fake, tracker, generator, lg.in_order(make_members(args.members)),
                    None)))
            await measure_rounds(contenders, args)
    await redis_client.aclose()
    lg.print_mix(contenders[-1 if args.statements > 0 else 0].run.generator.kinds
                 if contenders else Counter())
    print("columns: upd/s achieved; latency from POST to the first reply at the fake server; "
          "msg/up replies per update; redis = commands of the bot's client per update; errs = "
          "bot errors + unanswered updates; CPU as share of one core (bot process, this "
          "harness process, redis-server); RSS = bot's peak; lag = generator behind schedule")
    if args.statements > 0:
        statement_report(contenders, args)
    elif len(contenders) > 1 and contenders[0].name == "ours":
        report(*contenders)


# --- statements in the mix (``--statements``) -------------------------------------------------

def contenders_only(args: argparse.Namespace) -> bool:
    """With ``--statements``, ours with and without them are the only bots."""
    return bool(args.statements > 0)


async def statement_contenders(args: argparse.Namespace, fake: FakeBotApi, tracker: Tracker,
                               http: aiohttp.ClientSession, processes: AsyncExitStack, *,
                               workdir: Path, prefix: str,
                               redis_client: redis.asyncio.Redis) -> list[Contender]:
    """Two processes of ours, identical but for the mix they get: ``ours`` the usual one,
    ``ours+stmt`` with ``--statements`` of the updates making a PDF. Both have the same
    members marked as statement members (``ours`` gives them the usual mix), so that the
    others are the same chats; the statement members' chats come from a pool of linked chats
    after the members'."""
    askers = sm.choose_askers(make_members(args.members), args.statements)
    pool = sm.pool_size(askers, args.statements, args.rate,
                        WARMUP_SECONDS + args.rounds * args.duration)
    linked = args.members + pool
    await prepare_database(workdir / "ours.db", linked)
    shutil.copyfile(workdir / "ours.db", workdir / "ours+stmt.db")
    print(f"statements: {args.statements:.1%} of the updates ask for a PDF statement of the "
          f"last 12 months ({args.statements * args.rate:.1f}/s), made in a "
          f"{args.statement_pool} pool; {askers} statement members ({3 * args.statements:.0%} of "
          f"the updates: card, \"Download statement\", period), a chat of {pool} linked chats "
          f"for each statement; the others are the same chats in both bots\n", flush=True)
    contenders = []
    for name, cycle in (("ours", None),
                        ("ours+stmt", sm.StatementCycle(range(FIRST_CHAT + args.members,
                                                              FIRST_CHAT + linked)))):
        outbox = workdir / f"{name}.outbox.jsonl"
        process = await processes.enter_async_context(bot_process("ours", [
            "--api-base", fake.api_base, "--redis", args.redis, "--prefix", f"{prefix}{name}:",
            "--db", str(workdir / f"{name}.db"), "--outbox", str(outbox),
            "--first-chat", str(FIRST_CHAT), "--linked", str(linked),
            "--per-bot", str(args.per_bot), "--per-chat", str(args.per_chat),
            "--unpaced-per-chat", str(args.sat_per_chat),
            "--balance-cache", str(args.balance_cache), "--loop", args.loop,
            "--statement-pool", args.statement_pool], http))
        members = make_members(args.members)
        sm.choose_askers(members, args.statements)
        generator = Generator(fake, tracker, outbox, random.Random(7), statements=cycle)
        contenders.append(Contender(name, Run(process, fake, tracker, generator,
                                              lg.in_order(members), redis_client)))
    return contenders


def group_cells(f: Figures, group: str) -> str:
    """p50, p95, p99, max and count of one group's latencies."""
    values = f.groups.get(group, [])
    if not values:
        return f"{'-':>7} {'-':>7} {'-':>7} {'-':>7} {0:>5}"
    return " ".join(f"{lg.nearest_rank(values, q):>7.1f}" for q in (0.5, 0.95, 0.99, 1.0)) \
        + f" {len(values):>5}"


def statement_report(contenders: list[Contender], args: argparse.Namespace) -> None:
    """Per paced pass, the others' latencies with and without statements in the mix, and
    the statement replies' own; then the medians over the rounds."""
    heads = f"{'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'n':>5}"
    print(f"\nlatency (ms) at {args.rate:g}/s, statements {args.statements:.1%} of the "
          f"updates in ours+stmt (made in a {args.statement_pool} pool)")
    print(f"{'pass':<14} | others (same chats)           {'':>4}| PDF statement replies")
    print(f"{'':<14} | {heads} | {heads}")
    for contender in contenders:
        for f in contender.paced:
            print(f"{f.label:<14} | {group_cells(f, sm.OTHERS)} | {group_cells(f, sm.PDF)}")
    for contender in contenders:
        merged = Figures(contender.name, "")
        for f in contender.paced:
            for group, values in f.groups.items():
                merged.groups[group].extend(values)
        print(f"{contender.name + ' all':<14} | {group_cells(merged, sm.OTHERS)} | "
              f"{group_cells(merged, sm.PDF)}")
    for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        medians = [statistics.median(lg.nearest_rank(f.groups.get(sm.OTHERS, []), q)
                                     for f in c.paced) for c in contenders]
        print(f"others' {name}, median of the rounds: " + ", ".join(
            f"{c.name} {m:.1f} ms" for c, m in zip(contenders, medians, strict=True)))


def report(ours: Contender, echo: Contender, *stricter: Contender) -> None:
    """Per-round ratios against the bare echo bot, their median, and the targets; then the
    ratio against each stricter baseline (an echo bot with ours' heap setting)."""
    offered = ours.paced[0].offered
    ratio, paced_ratio = ratios(ours, echo)
    p99s = [f.percentile(0.99) for f in ours.paced]
    print(f"p99 at {offered}: ours " + ", ".join(f"{p:.1f}" for p in p99s) + " ms; "
          + "; ".join(f"{c.name} " + ", ".join(f"{f.percentile(0.99):.1f}" for f in c.paced)
                      + " ms" for c in (echo, *stricter)))
    print(f"medians: ours {statistics.median(f.per_second for f in ours.saturated):.0f}/s "
          f"saturated, p99 {statistics.median(p99s):.1f} ms at {offered} (worst "
          f"{max(p99s):.1f} ms)")
    met_throughput = ratio >= 0.5 and paced_ratio >= 0.5
    met_p99 = max(p99s) < 100
    print(f"target: at least half the bare echo bot's throughput (median of "
          f"{len(ours.saturated)} rounds): {'met' if met_throughput else 'MISSED'}; p99 under "
          f"100 ms at {offered} (every round): {'met' if met_p99 else 'MISSED'}")
    for baseline in stricter:
        strict, strict_paced = ratios(ours, baseline)
        print(f"against {baseline.name} (the echo bot with ours' heap setting): max throughput "
              f"ratio {strict:.2f}, at {offered} {strict_paced:.2f}: half "
              f"{'reached' if min(strict, strict_paced) >= 0.5 else 'NOT reached'}")


def ratios(ours: Contender, echo: Contender, *, show: bool = True) -> tuple[float, float]:
    """The medians of the per-round throughput ratios (saturated, paced); ``show`` prints
    each round's and the medians."""
    saturated = lg.throughput_ratios(ours.saturated, echo.saturated)
    paced = lg.throughput_ratios(ours.paced, echo.paced)
    if show:
        print(f"\nper round, ours / {echo.name}: max throughput "
              + ", ".join(f"{r:.2f}" for r in saturated) + " (median "
              f"{statistics.median(saturated):.2f}; {echo.name} "
              f"{statistics.median(f.per_second for f in echo.saturated):.0f}/s); throughput "
              f"at {ours.paced[0].offered} " + ", ".join(f"{r:.2f}" for r in paced))
    return statistics.median(saturated), statistics.median(paced)


if __name__ == "__main__":
    asyncio.run(main())
