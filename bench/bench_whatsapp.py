"""WhatsApp webhook load: ``run_bot.py serve`` against a bare echo webhook, same harness.

    uv run python bench/bench_whatsapp.py [--members 1000] [--rate 200] [--duration 15]
                                          [--rounds 3] [--redis private|URL] [--postgres URL]

About 4 minutes with the defaults (at most about 5 when the bot falls behind: a pass waits
``--drain`` s for its last replies); ``--rounds 5 --duration 30 --sat-duration 15`` for a
longer, steadier run (about 8 minutes). ``--bot-commit HEAD`` measures the last commit (exported
into a temporary directory) when the work tree holds someone's unfinished changes;
``--log-dir DIR`` keeps the servers' logs.

N simulated members chat the mix of ``bench_telegram.py``: 60% "cek saldo", 20% history
("riwayat", or the "Older" button when a history page is the newest message), 15% FAQ
questions, 5% registration steps (/daftar, the consent button, NIK, KPJ, birth date, "Yes, use
this number", the OTP code read from the outbox). Every member's chat (wa_id 6289900000000 +
i) is linked beforehand to a membership of its own with ten years of contributions, by a process
of its own (``bench/_whatsapp_harness.py prepare``) so that the bot's peak memory is that of
serving; the 5% who register link their chat to a demo member as well.

The bot under test is ``uv run run_bot.py serve`` as deployed, configured only through its
environment (WhatsApp only): ``WHATSAPP_*`` pointing at the fake Graph API
(``tests/fakes/graph_api.py``) that this process serves on loopback, a real Redis
(``--redis``: by default a private ``redis-server`` started for the run, so that Redis's own
``INFO commandstats`` counts the bot's commands alone; or a URL, whose database is FLUSHED
before and after), SQLite (or a fresh PostgreSQL database with ``--postgres``, created and
dropped), the in-process reference balance service behind its cache of ``--balance-cache``
seconds, ``OTP_OUTBOX`` in a temporary directory. ``WHATSAPP_RATE`` is raised to ``--wa-rate``
(the fake has no number-wide limit; Meta's default of 80 messages/s would cap any bot far
below these rates).

The load generator posts webhook notifications as Meta does (``tests/fakes/graph_webhooks.py``:
text messages and button replies stamped with the current time, signed with
``X-Hub-Signature-256`` under the app secret) open-loop at ``--rate`` messages/s for
``--duration`` s, each member's messages in order and ``members / rate`` seconds apart.
Latency runs from just before a message is POSTed to the moment the fake Graph API receives the
first reply (text, interactive or template: not a read receipt) to that member after it; a POST
the bot has not answered within 10 s counts as failed. A paced pass that falls more than
``--max-behind`` seconds of load behind stops offering load there. Then a saturation pass offers
``--sat-rate`` messages/s for ``--sat-duration`` s with at most ``--sat-window`` messages
unanswered, to find the maximum throughput.

The same passes drive the echo (``_whatsapp_harness.py echo``): an aiohttp app that checks the
signature, parses the JSON and sends one text back to the fake Graph API per member message (it
gets the same mix, as text). Rounds: this machine's speed drifts over minutes, so each of
``--rounds`` rounds runs a paced pass of each bot, then a saturation pass of each, the bots
taking turns to go first (ABBA); ratios are taken per round and their median is reported.

Per pass: Redis commands executed per message (the ``INFO commandstats`` delta of the Redis
server, without ``info`` itself, divided by the messages; it counts the commands a Lua script
runs too, so a lock script of 4 calls counts 5), CPU of the bot, of this process and of
redis-server as a share of one core, and the bot process's peak RSS (``VmHWM`` of the Python
process under ``uv run``). The ``others`` column is the CPU every other process of the machine
used meanwhile (``/proc/stat``): figures taken while it is high (a test suite running beside)
are not this bot's. Before the rounds, a counting pass
(``--count-seconds`` at ``--count-rate``) runs ours with Redis ``MONITOR`` on, which marks the
commands scripts run: the commands the bot sent, its round trips, are counted there (MONITOR
slows Redis, so no timed pass has it). ``BENCH_PROFILE=/tmp/bot.pstats`` runs the bot under
cProfile (written when it stops; read it with ``python -m pstats``).

Targets (issue 12, 2 cores): at least 0.5x the echo's saturated throughput, p99 under 100 ms at
200 messages/s, 2.00 Redis commands per message.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _loadgen as lg  # noqa: E402
import aiohttp  # noqa: E402
import redis.asyncio  # noqa: E402
from _loadgen import WARMUP_SECONDS, Load  # noqa: E402

from tests.fakes.graph_api import FakeGraphApi, GraphCall  # noqa: E402
from tests.fakes.graph_webhooks import button_reply, signed, text_message  # noqa: E402

HARNESS = Path(__file__).with_name("_whatsapp_harness.py")
WHATSAPP_PATH = "/whatsapp/webhook"
FIRST_WA = 6289900000000  # members' wa_ids: FIRST_WA + i (no demo member's number)
APP_SECRET = "bench-whatsapp-app-secret"
VERIFY_TOKEN = "bench-verify-token"
OTP_SECRET = "bench-whatsapp-otp-secret-0123456789abcdef"
TEMPLATE = "balas_petugas"  # the fake's approved template
REPLY_TYPES = ("text", "interactive", "template")
CONTACT_OWN = "wa:contact:own"  # the channel's "Yes, use this number" button
IDLE_TIMEOUT = 10.0  # s without any reply while messages are unanswered: the pass ends
SET_UP = frozenset({"hello", "select", "client", "script", "auth"})  # per connection, not message
POST_TIMEOUT = aiohttp.ClientTimeout(total=10)  # a webhook POST the bot takes longer to answer
# Environment variables of the caller that would turn on other parts of the bot.
CLEARED = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_URL", "AGENT_CHAT_ID", "BALANCE_SERVICE_URL",
           "VIRTUAL_ENV")  # uv run --project picks the bot checkout's own environment


# --- what the fake Graph API saw -----------------------------------------------------------

class Tracker:
    """Reads the fake Graph API's calls as they arrive: pairs each posted message with the
    member's first reply after it, and keeps each member's screen (the choices of the newest
    message, ``{id: title}``). Both bots talk to the same members, so each has screens of its
    own (:meth:`use`)."""

    def __init__(self, fake: FakeGraphApi) -> None:
        self.fake = fake
        self._screens: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
        self.screen = self._screens[""]
        self.reset()

    def use(self, bot: str) -> None:
        """The next replies come from ``bot``: show and record its screens."""
        self.screen = self._screens[bot]

    def reset(self) -> None:
        """Forget the calls (a new pass starts)."""
        self.fake.calls.clear()
        for records in ("reads", "refused_reads"):  # read receipts, kept apart by the fake
            kept = getattr(self.fake, records, None)
            if isinstance(kept, list):
                kept.clear()
        self._cursor = 0
        self.pending: dict[str, deque[float]] = defaultdict(deque)
        self.posted = 0
        self.answered = 0
        self.replies = 0
        self.reads = 0
        self.refused: Counter[int] = Counter()
        self.timed: list[tuple[float, float]] = []  # (posted at, latency s)
        self.first_replies: list[float] = []
        self.last_reply = 0.0
        self.last_progress = time.monotonic()

    def posting(self, wa_id: str, at: float) -> None:
        """A message of the member is about to be posted at ``at``."""
        self.pending[wa_id].append(at)
        self.posted += 1

    def sync(self) -> None:
        """Take in the calls that arrived since the last look."""
        calls = self.fake.calls
        while self._cursor < len(calls):
            call = calls[self._cursor]
            self._cursor += 1
            self._saw(call)

    def _saw(self, call: GraphCall) -> None:
        if "status" in call.body or call.type not in REPLY_TYPES:  # a read receipt, say
            self.reads += 1
            return
        if not call.ok:
            self.refused[call.error or 0] += 1
            return
        self.replies += 1
        self.last_reply = max(self.last_reply, call.at)
        self.last_progress = time.monotonic()
        self.screen[call.to] = dict(call.choices)
        queue = self.pending.get(call.to)
        if queue and queue[0] <= call.at:
            posted = queue.popleft()
            self.answered += 1
            self.timed.append((posted, call.at - posted))
            self.first_replies.append(call.at)


# --- the members --------------------------------------------------------------------------

Member = lg.Member[str]  # a simulated WhatsApp user (``chat``: the wa_id)


class Generator(lg.Mix[str, dict[str, Any]]):
    """Builds each member's next notification (a text or a button reply) from what the bot
    last showed them."""

    def __init__(self, tracker: Tracker, outbox: Path, rng: random.Random) -> None:
        super().__init__(outbox, rng)
        self.tracker = tracker

    def next(self, member: Member) -> dict[str, Any]:
        """The member's next notification, after the replies that arrived meanwhile."""
        self.tracker.sync()
        return super().next(member)

    def message(self, member: Member, text: str) -> dict[str, Any]:
        """A text message."""
        return text_message(member.chat, text, at=datetime.now(UTC))

    def press(self, member: Member, data: str, kind: str) -> dict[str, Any] | None:
        """Press the button (or list row) ``data`` when the newest message carries it."""
        choices = self.tracker.screen.get(member.chat, {})
        ident = next((i for i in choices if i == data or i.endswith(data)), None)
        if ident is None:
            return None
        self.kinds[kind] += 1
        return button_reply(member.chat, ident, choices[ident], at=datetime.now(UTC))

    def contact(self, member: Member) -> dict[str, Any]:
        """"Yes, use this number", or the number typed when the button is not shown."""
        return self.press(member, CONTACT_OWN, "registration") or self.text(
            member, member.person.phone, "registration")


def make_members(count: int) -> list[Member]:
    """``count`` members (wa_ids from ``FIRST_WA``), 5% of them registering."""
    return lg.make_members(count, FIRST_WA, str)


# --- processes ----------------------------------------------------------------------------

def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """``pid`` and its descendants, parents first (Linux ``/proc``)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                queue.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def python_pid(pid: int) -> int:
    """The process running ``run_bot.py`` (``uv run`` starts it as its child)."""
    for candidate in descendants(pid):
        try:
            argv = Path(f"/proc/{candidate}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"run_bot.py") for a in argv) and Path(argv[0].decode()).name != "uv":
            return candidate
    return pid


@dataclass
class ProcessStats:
    """CPU seconds and peak RSS of one process, from ``/proc``."""

    pid: int

    def cpu_seconds(self) -> float:
        """User + system time."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """``VmHWM`` in MiB."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            pass
        return math.nan


@dataclass
class BotProcess:
    """A webhook server under test."""

    name: str
    url: str
    stats: ProcessStats
    http: aiohttp.ClientSession
    log: Path

    async def errors(self) -> float:
        """Faults the bot counted: ``bot_errors_total`` (ours) or failed sends (the echo)."""
        if self.name == "echo":
            async with self.http.get(self.url + "/bench/stats") as response:
                return float((await response.json())["errors"])
        async with self.http.get(self.url + "/metrics") as response:
            text = await response.text()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("bot_errors_total"))


@asynccontextmanager
async def started(name: str, command: list[str], *, env: dict[str, str], cwd: Path, url: str,
                  ready: str, log: Path, http: aiohttp.ClientSession,
                  ) -> AsyncIterator[BotProcess]:
    """Start a server, wait until ``url + ready`` answers 200, stop it (SIGTERM) on exit."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.returncode is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                raise SystemExit(f"the {name} process did not start:\n{tail}")
            try:
                async with http.get(url + ready) as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        pid = python_pid(process.pid) if name == "ours" else process.pid
        yield BotProcess(name, url, ProcessStats(pid), http, log)
    finally:
        # cProfile writes its file on a clean exit; else a stuck bot is not waited
        await lg.stop(process, 60 if "BENCH_PROFILE" in os.environ else 15)


@asynccontextmanager
async def redis_server(spec: str, workdir: Path) -> AsyncIterator[tuple[str, bool]]:
    """``(URL, private)``: a ``redis-server`` of the run's own for ``private`` (or ``auto``
    when one is installed), else the URL given, its database flushed before and after."""
    binary = shutil.which("redis-server")
    if spec == "private" and binary is None:
        raise SystemExit("--redis private needs redis-server on the PATH")
    if spec in ("auto", "private") and binary is not None:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir), stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.asyncio.Redis.from_url(url)
            for _ in range(100):
                try:
                    await client.ping()
                    break
                except (OSError, redis.RedisError):
                    await asyncio.sleep(0.05)
            await client.aclose()
            yield url, True
        finally:
            process.terminate()
            await process.wait()
        return
    url = "redis://127.0.0.1:6379/14" if spec == "auto" else spec
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.flushdb()
        yield url, False
    finally:
        await client.flushdb()
        await client.aclose()


@asynccontextmanager
async def database(postgres: str, workdir: Path) -> AsyncIterator[str]:
    """The bot's ``DATABASE_URL``: a SQLite file, or a fresh PostgreSQL database made on the
    server of ``postgres`` and dropped afterwards."""
    if not postgres:
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import asyncpg  # type: ignore[import-untyped]  # no stubs

    parts = urlsplit(postgres.replace("postgresql+asyncpg://", "postgresql://"))
    name = f"bench_whatsapp_{os.getpid()}_{time.time_ns() % 10**9}"
    admin = await asyncpg.connect(postgres.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        admin = await asyncpg.connect(urlunsplit(parts))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def prepare_database(url: str, workdir: Path, members: int) -> None:
    """The bot's database, made by a process of its own (see the harness's ``prepare``)."""
    await lg.prepare_database(HARNESS, "--database", url, "--secret", OTP_SECRET, "--workdir",
                              str(workdir), "--first-wa", str(FIRST_WA), "--linked",
                              str(members))


def bot_environment(fake: FakeGraphApi, args: argparse.Namespace, *, redis_url: str,
                    database_url: str, outbox: Path, port: int, workdir: Path) -> dict[str, str]:
    """``run_bot.py serve``'s settings: WhatsApp only, on the fake Graph API."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update({
        "WHATSAPP_TOKEN": fake.token, "WHATSAPP_PHONE_NUMBER_ID": fake.phone_number_id,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_API_BASE": fake.api_base, "WHATSAPP_RATE": f"{args.wa_rate:g}",
        "WHATSAPP_TEMPLATE_NAME": TEMPLATE, "WHATSAPP_TEMPLATE_LANGUAGES": "id,en_US",
        "TELEGRAM_BOT_TOKEN": "",  # over a .env file's
        "REDIS_URL": redis_url, "DATABASE_URL": database_url, "OTP_SECRET": OTP_SECRET,
        "OTP_OUTBOX": str(outbox), "SEED_DEMO_MEMBERS": "false", "DATA_DIR": str(workdir),
        "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port), "LOG_LEVEL": "WARNING",
        "BALANCE_CACHE_SECONDS": f"{args.balance_cache:g}", "EVENT_LOOP": args.loop,
    })
    return env


def bot_command(bot_dir: Path, profile: str = "") -> list[str]:
    """``uv run run_bot.py serve`` (the interpreter of this run when uv is not installed);
    with ``profile``, under ``python -m cProfile -o profile``."""
    uv = shutil.which("uv")
    script = [str(bot_dir / "run_bot.py"), "serve"]
    if profile:
        script = ["python", "-m", "cProfile", "-o", profile, *script]
    if uv is None:
        return [sys.executable, *script[1:]] if profile else [sys.executable, *script]
    return [uv, "run", "--project", str(bot_dir), *script]


def commit_of(bot_dir: Path, commit: str) -> str:
    """The commit the bot runs on, and whether the tree measured has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(bot_dir), "log", "-1", "--format=%h %s",
                               commit or "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = [] if commit else subprocess.run(
            ["git", "-C", str(bot_dir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    head = head if len(head) <= 80 else head[:79] + "…"
    where = "exported commit" if commit else "work tree at"
    return f"{where} {head}" + (f" (+ uncommitted changes in {len(dirty)} files)"
                                if dirty else "")


def export_commit(bot_dir: Path, commit: str, target: Path) -> Path:
    """``commit`` of the checkout ``bot_dir`` as files under ``target``."""
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(bot_dir), "archive", commit],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {commit} failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


# --- one pass -----------------------------------------------------------------------------

class RoundTrips:
    """Commands the bot itself sent to Redis, by name, read from ``MONITOR`` (which marks the
    commands a Lua script runs as ``lua``: those are not round trips). MONITOR slows Redis
    down, so it watches a counting pass of its own, not the timed ones."""

    def __init__(self, url: str) -> None:
        self._client = redis.asyncio.Redis.from_url(url)
        self._db = int(urlsplit(url).path.strip("/") or 0)
        self.commands: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start counting (returns once MONITOR is on)."""
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._watch(ready))
        await ready.wait()

    async def _watch(self, ready: asyncio.Event) -> None:
        async with self._client.monitor() as monitor:
            ready.set()
            while True:
                seen = await monitor.next_command()
                if seen["client_type"] == "lua" or int(seen["db"]) != int(self._db):
                    continue
                name = str(seen["command"]).split(" ", 1)[0].strip('"').lower()
                if name not in ("info", "monitor"):
                    self.commands[name] += 1

    async def stop(self) -> Counter[str]:
        """Stop counting; the commands counted."""
        await asyncio.sleep(0.2)  # the last commands' echoes
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError, redis.RedisError, OSError):
                await self._task
        await self._client.aclose()
        return self.commands


@dataclass
class Figures(lg.PassFigures):
    """What a pass measured."""

    messages: int = 0
    refused: int = 0
    replies_per_message: float = 0.0
    reads_per_message: float = 0.0  # read receipts the bot sent
    redis_per_message: float | None = None
    redis_commands: Counter[str] = field(default_factory=Counter)
    round_trips: Counter[str] | None = None  # the counting pass only
    other_cpu: float = 0.0  # every other process of the machine


@dataclass
class Run:
    """One bot under load."""

    bot: BotProcess
    fake: FakeGraphApi
    tracker: Tracker
    generator: Generator
    order: list[Member]
    redis_client: redis.asyncio.Redis | None  # the bot's Redis (ours only)
    http: aiohttp.ClientSession
    drain: float = 10.0  # s a pass waits for the replies once its load has ended

    async def redis_usage(self) -> tuple[Counter[str], float] | None:
        """Commands served by the Redis server so far, by name (``info`` left out), and its
        CPU seconds."""
        if self.redis_client is None:
            return None
        stats = await self.redis_client.info("commandstats")
        cpu = await lg.redis_cpu_seconds(self.redis_client)
        calls = Counter({name.removeprefix("cmdstat_"): int(value["calls"])
                         for name, value in stats.items() if name != "cmdstat_info"})
        return calls, cpu

    async def post_all(self, rate: float, duration: float, *, limit: int,
                       saturate: bool) -> tuple[float, float, float | None]:
        """Post messages open-loop (:func:`_loadgen.open_loop`); ``limit``: messages
        unanswered. Returns the first post's time, the largest lag behind the schedule (s) and
        when a paced pass stopped (s after its start) or ``None``."""
        tracker = self.tracker
        url = self.bot.url + WHATSAPP_PATH

        async def post(member: Member) -> int:
            body, headers = signed(self.generator.next(member), APP_SECRET)
            self.fake.member_wrote(member.chat)  # the member's 24-hour window opens
            tracker.posting(member.chat, time.monotonic())
            try:
                async with self.http.post(url, data=body, headers=headers,
                                          timeout=POST_TIMEOUT) as response:
                    await response.read()
                    return response.status
            except (aiohttp.ClientError, TimeoutError):
                return 0  # refused, reset or timed out

        return await lg.open_loop(
            self.order, post, rate=rate, duration=duration, limit=limit, saturate=saturate,
            unfinished=lambda sent: sent - tracker.answered, tick=tracker.sync)

    async def wait_answered(self, drain: float) -> None:
        """Until every message has its reply, no reply came for ``IDLE_TIMEOUT`` s, or
        ``drain`` s have passed."""
        tracker = self.tracker
        deadline = time.monotonic() + drain
        while True:
            tracker.sync()
            if tracker.answered >= tracker.posted:
                break
            now = time.monotonic()
            if now - tracker.last_progress > IDLE_TIMEOUT or now > deadline:
                why = (f"{IDLE_TIMEOUT:g} s without a reply" if now <= deadline
                       else f"{drain:g} s after the load ended")
                print(f"  warning: {tracker.posted - tracker.answered} messages unanswered "
                      f"{why}")
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the last messages' further replies
        tracker.sync()

    async def measure(self, load: Load, monitor: RoundTrips | None = None) -> Figures:
        """One pass: post, wait until every message is answered, compute the figures."""
        tracker = self.tracker
        limit, saturate = load.limit, load.saturate
        tracker.reset()
        gc.collect()  # the fake keeps every call of the pass: keep full collections short
        gc.freeze()
        errors_before = await self.bot.errors()
        redis_before = await self.redis_usage()
        cpu_before, own_before = self.bot.stats.cpu_seconds(), lg.own_cpu_seconds()
        ticks_before = machine_ticks()
        if monitor is not None:
            await monitor.start()
        started_at = time.monotonic()
        first_post, max_lag, stopped = await self.post_all(load.rate, load.duration,
                                                           limit=limit, saturate=saturate)
        await self.wait_answered(self.drain)
        round_trips = await monitor.stop() if monitor is not None else None
        wall = time.monotonic() - started_at
        redis_after = await self.redis_usage()
        figures = Figures(load.label, load.offered, messages=tracker.posted,
                          bot_cpu=(self.bot.stats.cpu_seconds() - cpu_before) / wall,
                          harness_cpu=(lg.own_cpu_seconds() - own_before) / wall,
                          peak_rss_mb=self.bot.stats.peak_rss_mb(), max_lag_ms=max_lag * 1000,
                          errors=round(await self.bot.errors() - errors_before),
                          unanswered=tracker.posted - tracker.answered,
                          refused=sum(tracker.refused.values()))
        gc.unfreeze()
        figures.round_trips = round_trips
        figures.other_cpu = (busy_cores(ticks_before, machine_ticks()) - figures.bot_cpu
                             - figures.harness_cpu)
        if stopped is not None:
            figures.note = f"fell {limit} messages behind after {stopped:.1f} s: load stopped"
        if tracker.refused:
            figures.note += f" refused by the fake Graph API: {dict(tracker.refused)}"
        refused_reads = len(getattr(self.fake, "refused_reads", ()))
        if refused_reads:
            figures.note += f" {refused_reads} read receipts refused"
        if redis_before is not None and redis_after is not None:
            figures.redis_commands = redis_after[0] - redis_before[0]
            figures.redis_per_message = (sum(figures.redis_commands.values())
                                         / max(1, tracker.posted))
            figures.redis_cpu = (redis_after[1] - redis_before[1]) / wall
            figures.other_cpu -= figures.redis_cpu
        figures.replies_per_message = tracker.replies / max(1, tracker.posted)
        reads = len(getattr(self.fake, "reads", ())) + tracker.reads
        figures.reads_per_message = reads / max(1, tracker.posted)
        for posted, latency in tracker.timed:
            figures.latencies_ms.append(latency * 1000)
            figures.timed.append((posted - first_post, latency * 1000))
        # Saturated: the last reply ends the pass. Paced: the first reply to the last message.
        end = tracker.last_reply if saturate else max(tracker.first_replies, default=first_post)
        figures.per_second = (tracker.answered / (end - first_post)
                              if tracker.answered and end > first_post else 0.0)
        return figures


def machine_ticks() -> tuple[int, int]:
    """Busy and all clock ticks of every CPU of the machine so far (``/proc/stat``)."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields) - fields[3] - fields[4], sum(fields)  # idle and iowait are not busy


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many cores were busy on average between two :func:`machine_ticks` readings."""
    ticks = after[1] - before[1]
    return (after[0] - before[0]) / ticks * (os.cpu_count() or 1) if ticks > 0 else math.nan


# --- the benchmark ------------------------------------------------------------------------

@dataclass
class Contender(lg.Contender[Run, Figures]):
    """One bot under test: its run, and its passes so far."""

    counted: Figures | None = None  # the pass whose Redis round trips MONITOR counted


async def measure_rounds(contenders: list[Contender], args: argparse.Namespace) -> None:
    """The counting pass of ours (its Redis round trips, on a bot not yet pushed hard), then
    a warm-up of each bot and the rounds of :func:`_loadgen.schedule` (ABBA)."""
    ours = next((c for c in contenders if c.name == "ours"), None)
    if ours is not None and args.count_seconds > 0 and args.redis_url:
        ours.run.tracker.use("ours")
        rate = min(args.rate, args.count_rate)
        ours.counted = await ours.run.measure(
            Load("paced", "ours count", f"{rate:g}/s x {args.count_seconds:g} s", rate,
                 args.count_seconds, lg.paced_limit(args)),
            monitor=RoundTrips(args.redis_url))
        show(ours.counted)

    async def one_pass(contender: Contender, load: Load) -> Figures:
        contender.run.tracker.use(contender.name)
        return await contender.run.measure(load)

    await lg.run_schedule(contenders, args, one_pass, show)


TABLE = lg.Table[Figures](14, [
    ("offered", 16, lambda f: f.offered), ("msgs", 6, lambda f: f"{f.messages:,}"),
    ("msg/s", 7, lambda f: f"{f.per_second:.1f}"), *lg.latency_cells(),
    ("rep/m", 5, lambda f: f"{f.replies_per_message:.2f}"),
    ("redis", 6,
     lambda f: "-" if f.redis_per_message is None else f"{f.redis_per_message:.2f}"),
    ("errs", 4, lambda f: f"{f.errors + f.unanswered + f.refused}"),
    *lg.usage_cells(cpu_width=6), ("others", 6, lambda f: f"{max(0.0, f.other_cpu):.0%}"),
    *lg.tail_cells()])


def show(f: Figures) -> None:
    """One line per pass, and its notes."""
    TABLE.row(f)
    if f.note:
        TABLE.note(f.note.strip())
    TABLE.windows(f)


def report(ours: Contender, echo: Contender) -> None:
    """Per-round ratios against the echo, their medians, Redis commands, and the targets."""
    offered = ours.paced[0].offered
    saturated = lg.throughput_ratios(ours.saturated, echo.saturated)
    paced = lg.throughput_ratios(ours.paced, echo.paced)
    ratio = statistics.median(saturated)
    print("\nper round, ours / echo: saturated throughput "
          + ", ".join(f"{r:.2f}" for r in saturated) + f" (median {ratio:.2f}; ours "
          f"{statistics.median(f.per_second for f in ours.saturated):.0f}/s, echo "
          f"{statistics.median(f.per_second for f in echo.saturated):.0f}/s); throughput at "
          f"{offered} " + ", ".join(f"{r:.2f}" for r in paced))
    p99s = [f.percentile(0.99) for f in ours.paced]
    print(f"p99 at {offered}: ours " + ", ".join(f"{p:.1f}" for p in p99s) + " ms; echo "
          + ", ".join(f"{f.percentile(0.99):.1f}" for f in echo.paced) + " ms")
    per_message = [f.redis_per_message for f in ours.paced if f.redis_per_message is not None]
    commands: Counter[str] = Counter()
    messages = 0
    for f in ours.paced:
        commands += f.redis_commands
        messages += f.messages
    if per_message:
        print("Redis commands executed per message (ours, paced passes; INFO commandstats, "
              "the commands Lua scripts run included): "
              + ", ".join(f"{r:.2f}" for r in per_message) + "; by command: "
              + ", ".join(f"{name} {count / max(1, messages):.2f}"
                          for name, count in commands.most_common()))
    trips = math.nan
    counted = ours.counted
    if counted is not None and counted.unanswered:
        print(f"Redis round trips per message: not measured (the counting pass left "
              f"{counted.unanswered} of {counted.messages} messages unanswered)")
    elif counted is not None and counted.round_trips is not None:
        sent = Counter({name: count for name, count in counted.round_trips.items()
                        if name not in SET_UP})
        set_up = counted.round_trips - sent
        trips = sum(sent.values()) / max(1, counted.messages)
        print(f"Redis round trips per message (ours, the counting pass at {counted.offered}, "
              f"commands the bot sent as MONITOR shows them): {trips:.2f}; by command: "
              + ", ".join(f"{name} {count / max(1, counted.messages):.2f}"
                          for name, count in sent.most_common())
              + ("; besides, opening connections: " + ", ".join(
                  f"{name} {count}" for name, count in set_up.most_common())
                 if set_up else ""))
    print("Graph API calls per message (ours, paced passes): replies "
          + ", ".join(f"{f.replies_per_message:.2f}" for f in ours.paced) + "; read receipts "
          + ", ".join(f"{f.reads_per_message:.2f}" for f in ours.paced) + " (echo: 1 reply, "
          "no read receipt)")
    print(f"peak RSS: ours {max(f.peak_rss_mb for f in ours.paced):.0f} MB, echo "
          f"{max(f.peak_rss_mb for f in echo.paced):.0f} MB")
    print(f"targets: at least 0.5x the echo's saturated throughput (median of "
          f"{len(saturated)} rounds {ratio:.2f}): {'met' if ratio >= 0.5 else 'MISSED'}; "
          f"p99 under 100 ms at {offered} (every round, worst {max(p99s):.1f} ms): "
          f"{'met' if max(p99s) < 100 else 'MISSED'}; 2.00 Redis commands (round trips) per "
          f"message ({trips:.2f}): "
          f"{'met' if trips <= 2.005 else 'not counted' if math.isnan(trips) else 'MISSED'}")


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    lg.add_load_arguments(parser, unit="messages", pending="unanswered", duration=15.0,
                          sat_duration=8.0)
    parser.add_argument("--drain", type=float, default=10.0,
                        help="seconds a pass waits for the last replies once its load ended "
                             "(then the rest count as unanswered)")
    parser.add_argument("--redis", default="auto",
                        help="private: a redis-server of the run's own (exact command counts); "
                             "a URL: that server, whose database is FLUSHED before and after "
                             "(commandstats then count every client of the server); auto "
                             "(default): private when redis-server is installed, else "
                             "redis://127.0.0.1:6379/14")
    parser.add_argument("--postgres", default="",
                        help="a PostgreSQL server URL (e.g. postgresql://postgres@127.0.0.1/"
                             "test): the bot gets a fresh database made there and dropped "
                             "afterwards; default: SQLite")
    parser.add_argument("--count-seconds", type=float, default=5.0,
                        help="the counting pass before the rounds: ours for this long with "
                             "Redis MONITOR on, which tells the commands the bot sent (round "
                             "trips) from those its Lua scripts ran; 0: none")
    parser.add_argument("--count-rate", type=float, default=50.0,
                        help="messages/s of the counting pass (at most --rate)")
    parser.add_argument("--balance-cache", type=float, default=60.0,
                        help="BALANCE_CACHE_SECONDS of the bot; 0: every answer from SQL")
    parser.add_argument("--wa-rate", type=float, default=10_000.0,
                        help="WHATSAPP_RATE of the bot, messages/s (Meta's default: 80)")
    lg.add_loop_argument(parser, "servers")
    parser.add_argument("--echo-heap", choices=("default", "settled"), default="default",
                        help="the echo's heap: left to the collector, or frozen once it "
                             "serves as run_bot.py serve does (app.tuning.settle_heap)")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep the bot's and the echo's logs and the OTP outbox there "
                             "(default: discarded)")
    parser.add_argument("--bot-dir", type=Path, default=ROOT,
                        help="the checkout whose run_bot.py is measured (default: this one)")
    parser.add_argument("--bot-commit", default="",
                        help="measure this commit of --bot-dir instead of its work tree "
                             "(exported with git archive into the temporary directory; uv "
                             "makes it an environment of its own): e.g. HEAD, when the work "
                             "tree holds someone's unfinished changes")
    return parser.parse_args()


async def main() -> None:
    """Both servers, paced and saturated; the ratios."""
    args = parse_args()
    registering = sum(m.registering for m in make_members(args.members))
    with tempfile.TemporaryDirectory(prefix="bench-wa-") as tmp:
        workdir = Path(tmp)
        async with AsyncExitStack() as stack:
            redis_url, private = await stack.enter_async_context(
                redis_server(args.redis, workdir))
            args.redis_url = redis_url
            redis_client = redis.asyncio.Redis.from_url(redis_url)
            stack.push_async_callback(redis_client.aclose)
            redis_version = await lg.redis_version(redis_client, redis_url)
            print(f"WhatsApp webhook benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
            print("machine: " + lg.machine(redis_version, detail=lg.load_average(),
                                           libraries=("pywa", "aiohttp")))
            print(f"bot: run_bot.py serve, {commit_of(args.bot_dir, args.bot_commit)}")
            print(f"Redis: {'a private redis-server' if private else redis_url} (commands "
                  f"counted by INFO commandstats{'' if private else ', every client'}); "
                  f"database: {'PostgreSQL' if args.postgres else 'SQLite'}")
            print(f"members: {args.members:,}, each linked to a membership of their own "
                  f"({registering} of them also register); balance cache "
                  f"{args.balance_cache:g} s; each writes every "
                  f"{args.members / args.rate:.1f} s in the paced pass; WHATSAPP_RATE "
                  f"{args.wa_rate:g}")
            print(f"saturation: up to {args.sat_rate:g} messages/s for {args.sat_duration:g} "
                  f"s, at most {args.sat_window} unanswered; {WARMUP_SECONDS:g} s warm-up of "
                  f"each; {args.rounds} rounds, each a paced pass of each server, then a "
                  f"saturation pass of each, taking turns to go first (ABBA)\n", flush=True)
            bot_dir = (export_commit(args.bot_dir, args.bot_commit, workdir / "bot")
                       if args.bot_commit else args.bot_dir)
            database_url = await stack.enter_async_context(database(args.postgres, workdir))
            await prepare_database(database_url, workdir, args.members)
            fake = await stack.enter_async_context(FakeGraphApi())
            http = await stack.enter_async_context(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200)))
            logs = args.log_dir or workdir
            logs.mkdir(parents=True, exist_ok=True)
            outbox = logs / "outbox.jsonl"  # the OTP codes sent
            outbox.unlink(missing_ok=True)
            tracker = Tracker(fake)
            port = free_port()
            ours = await stack.enter_async_context(started(
                "ours", bot_command(bot_dir, os.environ.get("BENCH_PROFILE", "")), cwd=bot_dir,
                env=bot_environment(fake, args, redis_url=redis_url, database_url=database_url,
                                    outbox=outbox, port=port, workdir=workdir),
                url=f"http://127.0.0.1:{port}", ready="/healthz", log=logs / "ours.log",
                http=http))
            port = free_port()
            echo = await stack.enter_async_context(started(
                "echo", [sys.executable, str(HARNESS), "echo", "--api-base", fake.api_base,
                         "--token", fake.token, "--phone-number-id", fake.phone_number_id,
                         "--app-secret", APP_SECRET, "--port", str(port), "--loop", args.loop,
                         *(["--settle-heap"] if args.echo_heap == "settled" else [])],
                cwd=ROOT, env=dict(os.environ), url=f"http://127.0.0.1:{port}",
                ready="/bench/stats", log=logs / "echo.log", http=http))
            contenders = [
                Contender("ours", Run(ours, fake, tracker, Generator(
                    tracker, outbox, random.Random(7)), lg.in_order(make_members(args.members)),
                    redis_client, http, args.drain)),
                Contender("echo", Run(echo, fake, tracker, Generator(
                    tracker, outbox, random.Random(7)), lg.in_order(make_members(args.members)),
                    None, http, args.drain)),
            ]
            print(TABLE.header(), flush=True)
            try:
                await measure_rounds(contenders, args)
            finally:
                tail = ours.log.read_text(errors="replace").splitlines()
                problems = [line for line in tail if "ERROR" in line or "Traceback" in line]
                if problems:
                    print(f"\nthe bot logged {len(problems)} errors; the first: "
                          f"{problems[0][:300]}")
    lg.print_mix(contenders[0].run.generator.kinds)
    print("columns: msg/s achieved; latency from the webhook POST to the first reply at the "
          "fake Graph API; rep/m replies per message; redis = Redis commands executed per "
          "message (commandstats); "
          "errs = bot errors + unanswered + refused sends; CPU as share of one core (the bot "
          "process, this process with the fake Graph API, redis-server, every other process "
          "of the machine); RSS = the bot's peak; lag = generator behind schedule")
    report(*contenders)


if __name__ == "__main__":
    asyncio.run(main())
