"""What the webhook load benchmarks (``bench_telegram.py``, ``bench_whatsapp.py``) share.

The member mix (60% "cek saldo", 20% history, 15% FAQ, 5% registration steps), the members
and their fixed order, the open-loop generator that paces the posts, the figures of a pass
(nearest-rank percentiles, p99 by window of posting), the CPU readings, the ABBA schedule of
the rounds, and the starting and stopping of the processes under test. Each script keeps what
its channel does differently: how a message is built and posted, how replies are seen, its
table's columns and its targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

import redis.asyncio

from balance.demo import DEMO_MEMBERS

FAQ = ["cara klaim jht gmn", "iuran jht berapa persen", "saldo sy kok gak nambah",
       "lupa akun jmo", "nomor call center", "apa itu jkp", "syarat klaim jht apa aja",
       "jkp itu apa"]
REGISTERING_SHARE = 0.05
WARMUP_SECONDS = 2.0
WINDOW_SECONDS = 5.0
WRONG_CODE = "000000"

K = TypeVar("K", int, str)  # how a channel names a member's chat
M = TypeVar("M")  # what a member posts
F = TypeVar("F", bound="PassFigures")
R = TypeVar("R")
C = TypeVar("C", bound="Named")
B = TypeVar("B", bound="Contender[Any, Any]")


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
          for m in DEMO_MEMBERS if str(m.status).lower() == "active"]


@dataclass
class Member(Generic[K]):
    """A simulated user of a channel; ``registering`` members walk through registration, the
    others (linked beforehand) check the balance, the history and the FAQ."""

    chat: K
    registering: bool
    person: Person
    step: int = 0
    asks_statements: bool = False  # ``bench_telegram.py --statements``: see _statement_mix


def make_members(count: int, first: int, chat: Callable[[int], K]) -> list[Member[K]]:
    """``count`` members (chats ``chat(first + i)``), 5% of them registering, spread evenly
    through the order."""
    step = max(1, round(1 / REGISTERING_SHARE))
    return [Member(chat(first + i), i % step == step - 1, PEOPLE[i % len(PEOPLE)])
            for i in range(count)]


def in_order(members: list[Member[K]]) -> list[Member[K]]:
    """The members in the one fixed order of every pass (each member's messages evenly
    spaced); each bot gets members of its own (their registration steps differ)."""
    random.Random(11).shuffle(members)
    return members


class Mix(Generic[K, M]):
    """Builds each member's next message from what the bot last showed them; a channel says
    how a text, a button press and the shared phone number are posted."""

    def __init__(self, outbox: Path, rng: random.Random) -> None:
        self.outbox = outbox
        self.rng = rng
        self.kinds: Counter[str] = Counter()

    def next(self, member: Member[K]) -> M:
        """The member's next message."""
        if member.registering:
            return self._registration(member)
        roll = self.rng.random() * (1 - REGISTERING_SHARE)
        if roll < 0.60:
            return self.text(member, "cek saldo", "cek saldo")
        if roll < 0.80:
            return self.press(member, "hist:older", "history (older page)") or self.text(
                member, "riwayat", "history (riwayat)")
        return self.text(member, self.rng.choice(FAQ), "faq")

    def _registration(self, member: Member[K]) -> M:
        person = member.person
        while True:
            step, member.step = member.step % 7, member.step + 1
            if step == 0:
                return self.text(member, "/daftar", "registration")
            if step == 1:  # the consent notice is shown only until consent is recorded
                pressed = self.press(member, "reg:agree", "registration")
                if pressed is not None:
                    return pressed
                continue
            if step in (2, 3, 4):
                return self.text(member, (person.nik, person.kpj, person.birth)[step - 2],
                                 "registration")
            if step == 5:
                return self.contact(member)
            return self.text(member, self.code(person), "registration")

    def text(self, member: Member[K], text: str, kind: str) -> M:
        """A text message of the member, counted as ``kind``."""
        self.kinds[kind] += 1
        return self.message(member, text)

    def message(self, member: Member[K], text: str) -> M:
        """The channel's text message."""
        raise NotImplementedError

    def press(self, member: Member[K], data: str, kind: str) -> M | None:
        """Press the button ``data`` when the bot's newest message carries it."""
        raise NotImplementedError

    def contact(self, member: Member[K]) -> M:
        """Give the bot the member's phone number (registration)."""
        raise NotImplementedError

    def code(self, person: Person) -> str:
        """The newest code sent to the person (the OTP outbox), or a wrong one."""
        if not self.outbox.exists():
            return WRONG_CODE
        codes = [json.loads(line) for line in self.outbox.read_text().splitlines() if line]
        mine = [c["code"] for c in codes if c["to"] == person.on_file]
        return str(mine[-1]) if mine else WRONG_CODE


def print_mix(kinds: Counter[str]) -> None:
    """The share of each kind of message sent."""
    total = max(1, sum(kinds.values()))
    print("\nmix sent to ours: " + ", ".join(
        f"{kind} {count / total:.1%}" for kind, count in sorted(kinds.items())))


# --- pacing -------------------------------------------------------------------------------

async def open_loop(order: Sequence[Member[K]], post: Callable[[Member[K]], Awaitable[int]], *,
                    rate: float, duration: float, limit: int, saturate: bool,
                    unfinished: Callable[[int], float], tick: Callable[[], object] = lambda: None,
                    ) -> tuple[float, float, float | None]:
    """Post open-loop at ``rate``/s for ``duration`` s, the members in ``order`` taking turns,
    each member's messages in order (``post`` returns the webhook's HTTP status, 0: none).

    ``tick`` runs before each look at the schedule. When ``unfinished(sent)`` reaches
    ``limit``, a saturation pass waits (the bot stays busy without an endless queue) and a
    paced pass stops: the bot has fallen behind for good. Returns when the pass started
    (``time.monotonic``), the largest lag behind the schedule (s) and when a paced pass
    stopped (s after its start) or ``None``."""
    chains: dict[K, asyncio.Task[None]] = {}
    failures: list[int] = []
    max_lag, stopped = 0.0, None
    start = time.monotonic()
    total = round(rate * duration)
    sent = 0

    async def chained(member: Member[K], previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await previous  # this member's messages reach the bot in order
        status = await post(member)
        if status != 200:
            failures.append(status)

    while sent < total and stopped is None:
        now = time.monotonic()
        if now - start >= duration:
            break
        tick()
        due = min(total, math.floor((now - start) * rate) + 1)
        blocked = False
        while sent < due:
            if unfinished(sent) >= limit:
                blocked = True
                if not saturate:
                    stopped = now - start
                break
            max_lag = max(max_lag, now - (start + sent / rate))
            member = order[sent % len(order)]
            chains[member.chat] = asyncio.create_task(chained(member, chains.get(member.chat)))
            sent += 1
        await asyncio.sleep(0.002 if blocked else
                            max(0.0005, start + sent / rate - time.monotonic()))
    await asyncio.gather(*chains.values())
    if failures:
        print(f"  warning: {len(failures)} webhook POSTs answered {Counter(failures)}")
    return start, max_lag, stopped


# --- the figures --------------------------------------------------------------------------

def nearest_rank(values: Sequence[float], q: float) -> float:
    """Nearest-rank ``q`` quantile of ``values`` (NaN when there are none)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class PassFigures:
    """What a pass measured, whatever the channel."""

    label: str
    offered: str
    per_second: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    timed: list[tuple[float, float]] = field(default_factory=list)  # (posted at s, ms)
    unanswered: int = 0
    errors: int = 0
    bot_cpu: float = 0.0  # share of one core
    harness_cpu: float = 0.0
    redis_cpu: float | None = None
    peak_rss_mb: float = 0.0
    max_lag_ms: float = 0.0  # how late the generator posted against its schedule
    note: str = ""

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies (ms)."""
        return nearest_rank(self.latencies_ms, q)


Cell = tuple[str, int, Callable[[F], str]]  # title, width, the figure as text


def latency_cells() -> list[Cell[PassFigures]]:
    """p50, p95, p99 and the largest latency (ms)."""
    return [("p50 ms", 7, lambda f: f"{f.percentile(0.50):.1f}"),
            ("p95 ms", 7, lambda f: f"{f.percentile(0.95):.1f}"),
            ("p99 ms", 7, lambda f: f"{f.percentile(0.99):.1f}"),
            ("max ms", 8, lambda f: f"{f.percentile(1.0):.1f}")]


def usage_cells(*, cpu_width: int) -> list[Cell[PassFigures]]:
    """CPU of the bot, of this process and of Redis (a share of one core)."""
    return [("botCPU", cpu_width, lambda f: f"{f.bot_cpu:.0%}"),
            ("hCPU", 5, lambda f: f"{f.harness_cpu:.0%}"),
            ("rdCPU", 5, lambda f: "-" if f.redis_cpu is None else f"{f.redis_cpu:.0%}")]


def tail_cells() -> list[Cell[PassFigures]]:
    """The bot's peak RSS and the generator's largest lag."""
    return [("RSS MB", 6, lambda f: f"{f.peak_rss_mb:.0f}"),
            ("lag ms", 6, lambda f: f"{f.max_lag_ms:.1f}")]


class Table(Generic[F]):
    """The passes' table: the label left-aligned in ``label_width``, then a right-aligned
    cell per column; notes go under a row."""

    def __init__(self, label_width: int, cells: Sequence[Cell[F]]) -> None:
        self.label_width = label_width
        self.cells = cells

    def header(self) -> str:
        """The columns' titles."""
        return f"{'bot':<{self.label_width}} " + " ".join(
            f"{title:>{width}}" for title, width, _ in self.cells)

    def row(self, f: F) -> None:
        """One line per pass."""
        print(f"{f.label:<{self.label_width}} " + " ".join(
            f"{cell(f):>{width}}" for _, width, cell in self.cells), flush=True)

    def note(self, text: str) -> None:
        """A line under the row."""
        print(f"{'':<{self.label_width}} ^ {text}", flush=True)

    def windows(self, f: F) -> None:
        """The p99 of each window of a paced pass (a saturation pass's latency is
        queueing)."""
        windows = by_window(f.timed, WINDOW_SECONDS)
        if len(windows) > 1 and not f.label.endswith(" sat"):
            self.note(f"p99 by {WINDOW_SECONDS:g}-second window of posting: "
                      + ", ".join(f"{p99:.0f}" for p99 in windows) + " ms")


def by_window(timed: list[tuple[float, float]], seconds: float) -> list[float]:
    """Nearest-rank p99 of the latencies of the messages posted in each window."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for at, latency in timed:
        buckets[int(at // seconds)].append(latency)
    return [nearest_rank(buckets[index], 0.99) for index in sorted(buckets)]


def throughput_ratios(mine: Sequence[PassFigures], theirs: Sequence[PassFigures]) -> list[float]:
    """Per round, the throughput of one bot over the other's (NaN when the other did none)."""
    return [m.per_second / t.per_second if t.per_second else math.nan
            for m, t in zip(mine, theirs, strict=True)]


# --- CPU, memory and the machine ------------------------------------------------------------

def own_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


async def redis_cpu_seconds(client: redis.asyncio.Redis) -> float:
    """CPU seconds the Redis server has used (user + system)."""
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def redis_version(client: redis.asyncio.Redis, url: str) -> str:
    """The server's version; exits when it is not reachable."""
    try:
        return str((await client.info("server"))["redis_version"])
    except (OSError, redis.RedisError) as exc:
        raise SystemExit(f"Redis at {url} is not reachable: {exc}") from None


def memory() -> str:
    """``, N GiB`` of memory, or nothing."""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return ""
    return f", {kib / 1024 / 1024:.0f} GiB"


def load_average() -> str:
    """``, load average a b c``, or nothing."""
    with suppress(OSError):
        return ", load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return ""


def machine(redis_server: str, *, detail: str, libraries: Sequence[str]) -> str:
    """Where the figures come from: cores, CPU model and ``detail``, system, Python, the
    ``libraries``' versions and Redis's."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores, {model}{detail}; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, "
            + "".join(f"{name} {version(name)}, " for name in libraries)
            + f"Redis {redis_server}")


# --- processes ----------------------------------------------------------------------------

def reply_screen(method: str, params: dict[str, Any], result: Any) -> tuple[int, dict[str, str]]:
    """What a reply the fake Bot API accepted shows: its message id, and its buttons' data
    (without the signature) mapped to the signed data a press sends back."""
    message_id = (int(params["message_id"]) if method == "editMessageText"
                  else int(result["message_id"]))
    markup = params.get("reply_markup")
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    buttons = {str(b["callback_data"])[1:].rpartition("|")[0]: str(b["callback_data"])
               for row in rows for b in row if "callback_data" in b}
    return message_id, buttons


async def stop(process: asyncio.subprocess.Process, timeout: float) -> None:
    """SIGTERM, then SIGKILL when it has not exited after ``timeout`` s."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()


async def prepare_database(harness: Path, *arguments: str) -> None:
    """The bot's database, made by a process of its own (the harness's ``prepare``), so that
    the bot's peak memory is that of serving."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(harness), "prepare", *arguments)
    if await process.wait() != 0:
        raise SystemExit("preparing the bot's database failed")


# --- the rounds ---------------------------------------------------------------------------

class Named(Protocol):
    """A bot under test."""

    @property
    def name(self) -> str:
        """What the tables call it."""
        raise NotImplementedError


@dataclass(frozen=True)
class Load:
    """What one pass offers: ``rate``/s for ``duration`` s, ``limit`` unfinished at most."""

    kind: Literal["warm-up", "paced", "saturated"]
    label: str
    offered: str
    rate: float
    duration: float
    limit: int

    @property
    def saturate(self) -> bool:
        """A saturation pass: waits at ``limit`` instead of stopping."""
        return self.kind == "saturated"


def add_load_arguments(parser: argparse.ArgumentParser, *, unit: str, pending: str,
                       duration: float, sat_duration: float) -> None:
    """The flags of the load and its rounds: ``--members``, ``--rate``, ``--duration``,
    ``--sat-rate``, ``--sat-duration``, ``--sat-window``, ``--max-behind`` and ``--rounds``
    (``unit``: what is posted, e.g. "messages"; ``pending``: "unanswered" or "unfinished").
    """
    parser.add_argument("--members", type=int, default=1000, help="simulated members (chats)")
    parser.add_argument("--rate", type=float, default=200.0, help=f"{unit}/s (paced pass)")
    parser.add_argument("--duration", type=float, default=duration,
                        help="seconds (paced pass)")
    parser.add_argument("--sat-rate", type=float, default=3000.0,
                        help=f"{unit}/s offered at most (saturation pass)")
    parser.add_argument("--sat-duration", type=float, default=sat_duration,
                        help="seconds (saturation pass)")
    parser.add_argument("--sat-window", type=int, default=500,
                        help=f"most {unit} {pending} at once in the saturation pass")
    parser.add_argument("--max-behind", type=float, default=3.0,
                        help=f"a paced pass stops when this many seconds of load are {pending}")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of passes; the ratios are medians over the rounds")


def add_loop_argument(parser: argparse.ArgumentParser, servers: str) -> None:
    """``--loop``: the event loop of the processes under test."""
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop",
                        help=f"event loop of both {servers} (run_bot.py's default: uvloop)")


def paced_limit(args: argparse.Namespace) -> int:
    """Messages unfinished at which a paced pass stops (``--max-behind`` s of load)."""
    return max(1, round(float(args.rate) * float(args.max_behind)))


def schedule(contenders: Sequence[C], args: argparse.Namespace) -> Iterator[tuple[C, Load]]:
    """A warm-up of each bot, then ``--rounds`` rounds of a paced pass of each bot followed
    by a saturation pass of each; the bots' order alternates from round to round (ABBA), so
    that the machine's drift over minutes falls on both alike."""
    behind = paced_limit(args)
    for contender in contenders:
        yield contender, Load("warm-up", "warm-up", "", args.rate, WARMUP_SECONDS, behind)
    for round_number in range(1, args.rounds + 1):
        order = contenders if round_number % 2 else contenders[::-1]
        for saturate in (False, True):
            if saturate and args.sat_duration <= 0:
                continue  # no saturation passes
            for contender in order:
                label = f"{contender.name} #{round_number}"
                if saturate:
                    yield contender, Load(
                        "saturated", f"{label} sat",
                        f"<={args.sat_rate:g}/s x {args.sat_duration:g} s", args.sat_rate,
                        args.sat_duration, args.sat_window)
                else:
                    yield contender, Load(
                        "paced", label, f"{args.rate:g}/s x {args.duration:g} s", args.rate,
                        args.duration, behind)


@dataclass
class Contender(Generic[R, F]):
    """One bot under test: its run, and its passes so far."""

    name: str
    run: R
    paced: list[F] = field(default_factory=list)
    saturated: list[F] = field(default_factory=list)

    def keep(self, load: Load, figures: F) -> None:
        """Keep a measured pass (not a warm-up) with its kind."""
        if load.kind == "saturated":
            self.saturated.append(figures)
        elif load.kind == "paced":
            self.paced.append(figures)


async def run_schedule(contenders: Sequence[B], args: argparse.Namespace,
                       one_pass: Callable[[B, Load], Awaitable[F]],
                       show: Callable[[F], None]) -> None:
    """The passes of :func:`schedule`, each measured by ``one_pass``; every pass but the
    warm-ups is kept with its bot and shown."""
    for contender, load in schedule(contenders, args):
        figures = await one_pass(contender, load)
        if load.kind != "warm-up":
            contender.keep(load, figures)
            show(figures)
