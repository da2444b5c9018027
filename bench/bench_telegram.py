"""Telegram webhook load: the project's bot against a bare aiogram echo bot, same harness.

    uv run python bench/bench_telegram.py [--members 1000] [--rate 200] [--duration 20]
                                          [--rounds 3] [--redis redis://127.0.0.1:6379/15]

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

Profile the bot process with ``BENCH_PROFILE=/tmp/profile.txt`` (pyinstrument) or
``BENCH_PROFILE=/tmp/profile.pstats`` (cProfile: exact call counts).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import redis.asyncio  # noqa: E402
from _telegram_harness import LIMITER_PATH, STATS_PATH, TELEGRAM_PATH  # noqa: E402

from balance.demo import DEMO_MEMBERS  # noqa: E402
from tests.fakes.bot_api import FakeBotApi  # noqa: E402

HARNESS = Path(__file__).with_name("_telegram_harness.py")
FIRST_CHAT = 100_000
FAQ = ["cara klaim jht gmn", "iuran jht berapa persen", "saldo sy kok gak nambah",
       "lupa akun jmo", "nomor call center", "apa itu jkp", "syarat klaim jht apa aja",
       "jkp itu apa"]
REPLY_METHODS = ("sendMessage", "editMessageText")
REGISTERING_SHARE = 0.05
WARMUP_SECONDS = 2.0
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
        message_id = (int(params["message_id"]) if method == "editMessageText"
                      else int(result["message_id"]))
        markup = params.get("reply_markup")
        rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
        buttons = {str(b["callback_data"])[1:].rpartition("|")[0]: str(b["callback_data"])
                   for row in rows for b in row if "callback_data" in b}
        self.screen[chat] = (message_id, buttons)

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

@dataclass
class Person:
    """A demo member someone registers as."""

    nik: str
    kpj: str
    birth: str  # as typed, DD-MM-YYYY
    phone: str  # as typed, 08...
    on_file: str  # where the code goes (the outbox's "to")


PEOPLE = [Person(m.nik, m.kpj, m.birth_date.strftime("%d-%m-%Y"), "0" + m.phone[3:], m.phone)
          for m in DEMO_MEMBERS if m.status.value.lower() == "active"]


@dataclass
class Member:
    """A simulated Telegram user; ``registering`` members walk through registration, the
    others (linked beforehand) check the balance, the history and the FAQ."""

    chat_id: int
    registering: bool
    person: Person
    step: int = 0


@dataclass
class Generator:
    """Builds each member's next update from what the bot last showed them."""

    fake: FakeBotApi
    tracker: Tracker
    outbox: Path
    rng: random.Random
    echo: bool = False
    kinds: Counter[str] = field(default_factory=Counter)

    def next_update(self, member: Member) -> dict[str, Any]:
        """The member's next update (a message, a button press or a shared contact)."""
        if member.registering:
            return self._registration(member)
        roll = self.rng.random() * (1 - REGISTERING_SHARE)
        if roll < 0.60:
            return self._text(member, "cek saldo", "cek saldo")
        if roll < 0.80:
            return self._press(member, "hist:older", "history (older page)") or self._text(
                member, "riwayat", "history (riwayat)")
        return self._text(member, self.rng.choice(FAQ), "faq")

    def _registration(self, member: Member) -> dict[str, Any]:
        person = member.person
        while True:
            step, member.step = member.step % 7, member.step + 1
            if step == 0:
                return self._text(member, "/daftar", "registration")
            if step == 1:  # the consent notice is shown only until consent is recorded
                pressed = self._press(member, "reg:agree", "registration")
                if pressed is not None:
                    return pressed
                continue
            if step in (2, 3, 4):
                return self._text(member, (person.nik, person.kpj, person.birth)[step - 2],
                                  "registration")
            if step == 5:
                if self.echo:
                    return self._text(member, person.phone, "registration")
                self.kinds["registration"] += 1
                return self.fake.contact_update(member.chat_id, person.phone,
                                                contact_user_id=member.chat_id)
            return self._text(member, self._code(person), "registration")

    def _text(self, member: Member, text: str, kind: str) -> dict[str, Any]:
        self.kinds[kind] += 1
        return self.fake.message_update(member.chat_id, text)

    def _press(self, member: Member, data: str, kind: str) -> dict[str, Any] | None:
        """Press the button ``data`` when the bot's newest message carries it."""
        message_id, buttons = self.tracker.screen.get(member.chat_id, (0, {}))
        if data not in buttons:
            return None
        if self.echo:
            return self._text(member, data, kind)
        self.kinds[kind] += 1
        return self.fake.callback_update(member.chat_id, buttons[data], message_id=message_id)

    def _code(self, person: Person) -> str:
        """The newest code sent to the person (the OTP outbox), or a wrong one."""
        if not self.outbox.exists():
            return "000000"
        codes = [json.loads(line) for line in self.outbox.read_text().splitlines() if line]
        mine = [c["code"] for c in codes if c["to"] == person.on_file]
        return str(mine[-1]) if mine else "000000"


def make_members(count: int) -> list[Member]:
    """``count`` members, 5% of them registering, spread evenly through the order."""
    step = max(1, round(1 / REGISTERING_SHARE))
    members = []
    for i in range(count):
        registering = i % step == step - 1
        members.append(Member(FIRST_CHAT + i, registering, PEOPLE[i % len(PEOPLE)]))
    return members


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
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


async def prepare_database(path: Path, members: int) -> None:
    """The bot's database, made by a process of its own (see the harness's ``prepare``)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HARNESS), "prepare", "--db", str(path), "--first-chat",
        str(FIRST_CHAT), "--linked", str(members))
    if await process.wait() != 0:
        raise SystemExit("preparing the bot's database failed")


# --- one pass -----------------------------------------------------------------------------

@dataclass
class Figures:
    """What a pass measured."""

    label: str
    offered: str
    updates: int = 0
    per_second: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    unanswered: int = 0
    replies_per_update: float = 0.0
    redis_per_update: float | None = None
    cache_hit_rate: float | None = None
    timed: list[tuple[float, float]] = field(default_factory=list)  # (posted at s, latency ms)
    errors: int = 0
    bot_cpu: float = 0.0  # share of one core
    harness_cpu: float = 0.0
    redis_cpu: float | None = None
    peak_rss_mb: float = 0.0
    max_lag_ms: float = 0.0  # how late the generator posted against its schedule
    collections: list[float] = field(default_factory=list)  # full GC pauses of the pass, ms
    gc_share: float = 0.0  # of the bot's CPU time, all collections
    note: str = ""

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies (ms)."""
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


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
        info = await self.redis_client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    async def post_all(self, rate: float, duration: float, *, limit: int,
                       saturate: bool, unfinished: Callable[[int], float],
                       ) -> tuple[list[tuple[int, float]], float, float | None]:
        """Post updates open-loop at ``rate``/s for ``duration`` s, each member's in order.

        When ``unfinished(sent)`` reaches ``limit``, a saturation pass waits (the bot stays
        busy without an endless queue) and a paced pass stops: the bot has fallen behind for
        good. Returns ``(chat, posted at)`` per update, the largest lag behind the schedule
        (s), and when a paced pass stopped (s after its start) or ``None``."""
        posts: list[tuple[int, float]] = []
        chains: dict[int, asyncio.Task[None]] = {}
        failures: list[int] = []
        max_lag, stopped = 0.0, None
        start = time.monotonic()
        total = round(rate * duration)
        sent = 0

        async def post(member: Member, previous: asyncio.Task[None] | None) -> None:
            if previous is not None:
                await previous  # this member's updates reach the bot in order
            update = self.generator.next_update(member)
            posted = time.monotonic()
            posts.append((member.chat_id, posted))
            status = await self.fake.post_to_webhook(update, url=self.bot.url + TELEGRAM_PATH)
            if status != 200:
                failures.append(status)

        while sent < total and stopped is None:
            now = time.monotonic()
            if now - start >= duration:
                break
            due = min(total, math.floor((now - start) * rate) + 1)
            blocked = False
            while sent < due:
                if unfinished(sent) >= limit:
                    blocked = True
                    if not saturate:
                        stopped = now - start
                    break
                max_lag = max(max_lag, now - (start + sent / rate))
                member = self.order[sent % len(self.order)]
                chains[member.chat_id] = asyncio.create_task(
                    post(member, chains.get(member.chat_id)))
                sent += 1
            await asyncio.sleep(0.002 if blocked else
                                max(0.0005, start + sent / rate - time.monotonic()))
        await asyncio.gather(*chains.values())
        if failures:
            print(f"  warning: {len(failures)} webhook POSTs answered {Counter(failures)}")
        return posts, max_lag, stopped

    async def wait_idle(self, target: float) -> float:
        """Wait until the bot has finished ``target`` updates in all; returns the count."""
        deadline = time.monotonic() + IDLE_TIMEOUT
        while True:
            done = (await self.bot.stats(full=False))["completed"]
            if done >= target or time.monotonic() > deadline:
                return done
            await asyncio.sleep(0.05)

    async def measure(self, label: str, offered: str, rate: float, duration: float, *,
                      limit: int, saturate: bool = False) -> Figures:
        """One pass: post, wait until every update is finished, compute the figures."""
        self.fake.clear_calls()
        self.tracker.reset()
        # The fake server remembers every message: keep the generator's garbage collections
        # from walking them all again (a full collection stalled it for 300 ms).
        gc.collect()
        gc.freeze()
        before = await self.bot.stats()
        redis_before = await self.redis_cpu_seconds()
        own_before = _cpu_seconds()
        progress = {"completed": before["completed"]}
        poller = asyncio.create_task(self._poll(progress))
        started = time.monotonic()
        try:
            posts, max_lag, stopped = await self.post_all(
                rate, duration, limit=limit, saturate=saturate,
                unfinished=lambda sent: sent - (progress["completed"] - before["completed"]))
        finally:
            poller.cancel()
        finished = await self.wait_idle(before["completed"] + len(posts))
        wall = time.monotonic() - started
        after = await self.bot.stats()
        redis_after = await self.redis_cpu_seconds()
        figures = Figures(label, offered, updates=len(posts),
                          harness_cpu=(_cpu_seconds() - own_before) / wall,
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
        first_post = min(t for _, t in posts)
        # Saturated (unpaced): the last reply ends the pass. Paced: the first reply to the
        # last update does (the later ones are spaced by the per-chat limit).
        end = self.tracker.last_reply() if saturate else max(first_replies, default=first_post)
        figures.per_second = len(posts) / max(1e-9, end - first_post)
        return figures

    async def _poll(self, progress: dict[str, float]) -> None:
        while True:  # 10 Hz: reading the bot's registry costs it about a millisecond
            progress["completed"] = (await self.bot.stats(full=False))["completed"]
            await asyncio.sleep(0.1)

    def _pair(self, posts: list[tuple[int, float]], figures: Figures) -> list[float]:
        """Latency of each update: its post to the chat's first reply after it."""
        by_chat: dict[int, list[float]] = defaultdict(list)
        for chat, posted in posts:
            by_chat[chat].append(posted)
        firsts = []
        start = min((posted for _, posted in posts), default=0.0)
        for chat, posted_times in by_chat.items():
            replies = self.tracker.replies.get(chat, [])
            j = 0
            for posted in sorted(posted_times):
                while j < len(replies) and replies[j] < posted:
                    j += 1
                if j == len(replies):
                    figures.unanswered += 1
                    continue
                figures.latencies_ms.append((replies[j] - posted) * 1000)
                figures.timed.append((posted - start, (replies[j] - posted) * 1000))
                firsts.append(replies[j])
        return firsts


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


# --- the benchmark ------------------------------------------------------------------------

@dataclass
class Contender:
    """One bot under test: its process's run, and its passes so far."""

    name: str
    run: Run
    paced: list[Figures] = field(default_factory=list)
    saturated: list[Figures] = field(default_factory=list)


async def measure_rounds(contenders: list[Contender], args: argparse.Namespace) -> None:
    """Warm each bot up, then ``--rounds`` rounds of a paced pass of each bot followed by a
    saturation pass of each; the bots' order alternates from round to round (ABBA), so that
    the machine's drift over minutes falls on both alike."""
    behind = max(1, round(args.rate * args.max_behind))
    for contender in contenders:
        contender.run.tracker.use(contender.name)
        await contender.run.measure("warm-up", "", args.rate, WARMUP_SECONDS, limit=behind)
    for round_number in range(1, args.rounds + 1):
        order = contenders if round_number % 2 else contenders[::-1]
        for saturate in (False, True):
            for contender in order:
                await one_pass(contender, f"{contender.name} #{round_number}", args,
                               saturate=saturate, behind=behind)


async def one_pass(contender: Contender, label: str, args: argparse.Namespace, *,
                   saturate: bool, behind: int) -> Figures:
    """A paced or a saturation pass of one bot, kept with its passes and shown."""
    run = contender.run
    run.tracker.use(contender.name)
    if contender.name == "ours":
        await run.bot.limiter("unpaced" if saturate else "paced")
    if saturate:
        figures = await run.measure(f"{label} sat",
                                    f"<={args.sat_rate:g}/s x {args.sat_duration:g} s",
                                    args.sat_rate, args.sat_duration, limit=args.sat_window,
                                    saturate=True)
        contender.saturated.append(figures)
    else:
        figures = await run.measure(label, f"{args.rate:g}/s x {args.duration:g} s",
                                    args.rate, args.duration, limit=behind)
        contender.paced.append(figures)
    show(figures)
    return figures


def show(f: Figures) -> None:
    """One line per pass."""
    redis_part = f"{f.redis_per_update:.2f}" if f.redis_per_update is not None else "-"
    redis_cpu = f"{f.redis_cpu:.0%}" if f.redis_cpu is not None else "-"
    print(f"{f.label:<18} {f.offered:>16} {f.updates:>7,} {f.per_second:>8.1f} "
          f"{f.percentile(0.50):>7.1f} {f.percentile(0.95):>7.1f} {f.percentile(0.99):>7.1f} "
          f"{f.percentile(1.0):>8.1f} {f.replies_per_update:>6.2f} {redis_part:>6} "
          f"{f.errors + f.unanswered:>5} {f.bot_cpu:>5.0%} {f.harness_cpu:>5.0%} "
          f"{redis_cpu:>5} {f.peak_rss_mb:>6.0f} {f.max_lag_ms:>6.1f}", flush=True)
    if f.note:
        print(f"{'':<18} ^ {f.note}", flush=True)
    if f.cache_hit_rate is not None:
        print(f"{'':<18} ^ balance answers from the cache: {f.cache_hit_rate:.0%}", flush=True)
    if f.collections or f.gc_share >= 0.005:
        longest = f", longest {max(f.collections):.0f} ms" if f.collections else ""
        print(f"{'':<18} ^ garbage collector: {f.gc_share:.1%} of the CPU; "
              f"{len(f.collections)} full collections{longest}", flush=True)
    windows = by_window(f.timed, WINDOW_SECONDS)
    if len(windows) > 1 and not f.label.endswith(" sat"):  # saturated: latency is queueing
        print(f"{'':<18} ^ p99 by {WINDOW_SECONDS:g}-second window of posting: "
              + ", ".join(f"{p99:.0f}" for p99 in windows) + " ms", flush=True)


WINDOW_SECONDS = 5.0


def by_window(timed: list[tuple[float, float]], seconds: float) -> list[float]:
    """Nearest-rank p99 of the latencies of the updates posted in each window."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for at, latency in timed:
        buckets[int(at // seconds)].append(latency)
    result = []
    for index in sorted(buckets):
        ordered = sorted(buckets[index])
        result.append(ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)])
    return result


HEADER = (f"{'bot':<18} {'offered':>16} {'updates':>7} {'upd/s':>8} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'max ms':>8} {'msg/up':>6} {'redis':>6} {'errs':>5} "
          f"{'botCPU':>5} {'hCPU':>5} {'rdCPU':>5} {'RSS MB':>6} {'lag ms':>6}")


def machine(redis_version: str) -> str:
    """Where the figures come from."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} cores, {model}{memory}; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, aiogram "
            f"{version('aiogram')}, aiohttp {version('aiohttp')}, Redis {redis_version}")


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="updates/s (paced pass)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds (paced pass)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--sat-rate", type=float, default=3000.0)
    parser.add_argument("--sat-duration", type=float, default=10.0)
    parser.add_argument("--sat-window", type=int, default=500,
                        help="most updates unfinished at once in the saturation pass")
    parser.add_argument("--max-behind", type=float, default=3.0,
                        help="a paced pass stops when this many seconds of load are unfinished")
    parser.add_argument("--per-bot", type=float, default=10_000.0,
                        help="bot-wide flood limit of ours, messages/s")
    parser.add_argument("--per-chat", type=float, default=1.0,
                        help="per-chat flood limit of ours in the paced pass, messages/s")
    parser.add_argument("--sat-per-chat", type=float, default=1000.0,
                        help="per-chat flood limit of ours in the saturation pass")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop",
                        help="event loop of both bot processes (run_bot.py's default: uvloop)")
    parser.add_argument("--echo-heap", choices=("both", "default", "settled"), default="both",
                        help="the echo bot's heap: default (left to the collector: the bare "
                             "echo bot of the targets), settled (frozen once it serves, as "
                             "ours is, app.tuning.settle_heap), or both, as two baselines")
    parser.add_argument("--balance-cache", type=float, default=60.0,
                        help="seconds the in-process balance cache keeps an answer; 0: none")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of passes; the ratios are medians over the rounds")
    parser.add_argument("--bots", default="ours,echo", help=argparse.SUPPRESS)  # for profiling
    return parser.parse_args()


async def main() -> None:
    """Both bots, paced and saturated; the ratios."""
    args = parse_args()

    redis_client = redis.asyncio.Redis.from_url(args.redis)
    try:
        redis_version = str((await redis_client.info("server"))["redis_version"])
    except (OSError, redis.RedisError) as exc:
        raise SystemExit(f"Redis at {args.redis} is not reachable: {exc}") from None
    registering = sum(m.registering for m in make_members(args.members))
    print(f"Telegram webhook benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine(redis_version)}")
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
    print(HEADER, flush=True)
    prefix = f"bench-tg:{time.time_ns()}:"
    contenders: list[Contender] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with FakeBotApi() as fake, aiohttp.ClientSession() as http, \
                AsyncExitStack() as processes:
            tracker = Tracker(fake)
            outbox = workdir / "outbox.jsonl"
            if "ours" in args.bots:
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
                    ours, fake, tracker, generator, in_order(args.members), redis_client)))
            echoes: dict[str, list[str]] = {"echo": [], "echo+heap": ["--settle-heap"]}
            if args.echo_heap != "both":
                echoes = {"echo": echoes["echo" if args.echo_heap == "default" else "echo+heap"]}
            for name, heap in echoes.items() if "echo" in args.bots else ():
                echo = await processes.enter_async_context(bot_process(
                    "echo", ["--api-base", fake.api_base, "--loop", args.loop, *heap], http))
                generator = Generator(fake, tracker, outbox, random.Random(7), echo=True)
                contenders.append(Contender(name, Run(
                    echo, fake, tracker, generator, in_order(args.members), None)))
            await measure_rounds(contenders, args)
    await redis_client.aclose()
    kinds = contenders[0].run.generator.kinds if contenders else Counter()
    total = max(1, sum(kinds.values()))
    print("\nmix sent to ours: " + ", ".join(
        f"{kind} {count / total:.1%}" for kind, count in sorted(kinds.items())))
    print("columns: upd/s achieved; latency from POST to the first reply at the fake server; "
          "msg/up replies per update; redis = commands of the bot's client per update; errs = "
          "bot errors + unanswered updates; CPU as share of one core (bot process, this "
          "harness process, redis-server); RSS = bot's peak; lag = generator behind schedule")
    if len(contenders) > 1 and contenders[0].name == "ours":
        report(*contenders)


def in_order(count: int) -> list[Member]:
    """``count`` members in the one fixed order of every pass (each member's updates evenly
    spaced); each bot gets members of its own (their registration steps differ)."""
    order = make_members(count)
    random.Random(11).shuffle(order)
    return order


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
    saturated = [mine.per_second / theirs.per_second
                 for mine, theirs in zip(ours.saturated, echo.saturated, strict=True)]
    paced = [mine.per_second / theirs.per_second
             for mine, theirs in zip(ours.paced, echo.paced, strict=True)]
    if show:
        print(f"\nper round, ours / {echo.name}: max throughput "
              + ", ".join(f"{r:.2f}" for r in saturated) + " (median "
              f"{statistics.median(saturated):.2f}; {echo.name} "
              f"{statistics.median(f.per_second for f in echo.saturated):.0f}/s); throughput "
              f"at {ours.paced[0].offered} " + ", ".join(f"{r:.2f}" for r in paced))
    return statistics.median(saturated), statistics.median(paced)


if __name__ == "__main__":
    asyncio.run(main())
