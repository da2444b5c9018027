"""Chaos run of the Telegram webhook: two ``serve`` processes, duplicates, 429s, Redis killed.

    uv run python bench/chaos_telegram.py                 # the fault pass (about 5 minutes)
    uv run python bench/chaos_telegram.py --control       # no Redis kill, 2,000 updates, 2.5% 429
    uv run python bench/chaos_telegram.py --aof           # Redis with appendonly yes
    options: --updates N --members N --seed N --gap S --burst chat|bot --database postgres|sqlite
             --settle S --keep --dump FILE (the troubled chats, update by update)

The world (``bench/_chaos_infra.py``): a redis-server of the bench's own on port 6395
(``--redis-port``) in a temporary directory, with no persistence at all, or ``appendonly yes``
with ``--aof``; a new PostgreSQL database ``chaos_<hex>`` on 127.0.0.1:5432 (``--postgres``,
dropped afterwards), or with ``--database sqlite`` a SQLite file both processes share; two
``run_bot.py serve`` processes started as an operator would, through the documented
environment only (``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_API_BASE`` pointing at the fake,
``TELEGRAM_WEBHOOK_SECRET``, ``REDIS_URL``, ``DATABASE_URL``, ``OTP_SECRET``, ``OTP_OUTBOX``,
``WEB_PORT``, ``TELEGRAM_MESSAGES_PER_SECOND``); and the tests' fake Bot API server
(``tests/fakes/bot_api.py``) in this process, answering ``sendMessage`` with 429
(``retry_after`` 1) in bursts, about 5% of calls in all (2.5% in the control pass): by
default a burst refuses 1 to 4 calls in a row to one chat (``--burst chat``: that chat's own
limit); ``--burst bot`` refuses 4 to 12 calls in a row whatever their chat (the bot's
limit). The bench talks to the bot only over HTTP: the webhook, ``/healthz``, ``/metrics``
(its ``bot_*_total`` counters are printed).

``TELEGRAM_MESSAGES_PER_SECOND`` is raised to ``--per-second`` (500) per process: Telegram's
real bot-wide limit (about 30/s) would cap the run far below its offered rate. The per-chat
limit (1 message/s) is the channel's own and stays.

The members: ``--members`` chats (500) linked beforehand, straight in the database through
the account store (as registration links them, keyed by ``OTP_SECRET``), to the three active
demo members (single memberships, so a balance is answered at once). About half (chosen by
``--seed``) switch to English with ``/bahasa en`` in a set-up phase before the run, through
the webhook, so the bot stores the choice its own way (the session's locale, and the SQL
preference where the code keeps one); every update carries ``language_code`` "id", so a
forgotten choice shows as an Indonesian reply. Then each member sends ``--updates /
--members`` updates (20) in sequence, ``--gap`` seconds apart on average (uniform 0.5x to
1.5x; 4 s), all members at once: "cek saldo", a press on "Check balance" (or "refresh") when
the chat's newest message carries it (else "cek saldo"), ``/menu``, ``/bantuan``, eight FAQ
questions, and a press on "yes, it helped" right after a FAQ question (else ``/menu``). A
press answered after newer messages reached the chat gets "that menu has expired": counted
as an unexpected reply. Each update goes to one of the two processes at random; 10% are
delivered a second time 0.05 to 1.5 s later, half of those to the other process. A delivery
answered with anything but 200 (or not answered within 10 s) is delivered again as Telegram
does, to either process, after ``Retry-After`` (at least 1 s, doubling to
8 s), for at most 60 s. In the fault pass, Redis is killed with SIGKILL once half the
updates are sent, and started again 5 s later (same port, same directory: it reloads its AOF
with ``--aof``).

Attribution (``bench/_chaos_replies.py``). The fake sees only ``chat_id`` and text, and a
member writes again before the answer to their last message arrived (the per-chat limit alone
spaces a two-message answer by a second), so replies are matched to updates by content and
time:

1. *Calibration*, before the run, no faults: each kind of update is sent once in each language
   to a chat of its own; the replies it gets, each known by its signature (first line, digits
   as ``#``), give the kind's expected classes in order (``/bantuan``: help, then the menu).
   A class is the Indonesian signature of a message, so both languages share it, and each
   signature says its language. The apologies are the engine's ``FAULT_MESSAGES`` and the
   channel's ``APOLOGY`` in both catalogs.
2. *Plans* keep replies tellable apart: no update of a chat expects a class that either of the
   two updates before it expects (no "cek saldo" right after a press on "Check balance", no
   ``/menu`` right after ``/bantuan``).
3. Each chat's replies are walked in arrival order. A reply of a known class goes to the
   earliest update of the chat, posted before the reply arrived, whose next expected class it
   is; when none waits for it, it repeats an answer already given: the newest such update is
   *doubled*, unless it follows an unexpected reply of the chat within 3 s (the menu after
   "that menu has expired"). An apology (or an unknown text) goes to the earliest posted
   update with no reply yet (an unknown text to the earliest such button press, if any),
   which then awaits nothing more (with none, the newest is doubled). Two updates of one
   class three or more apart can swap their answers: the counts
   of lost and doubled stay right, the order of those two is taken as sent.

Figures: *lost*, updates with no reply at all once the run settled (no new message for
``--settle`` s); *doubled*, updates answered twice; *apologies*, apology messages and updates
answered by one; *out of order*, updates whose first reply arrived after the first reply of a
later update of the same chat; *English in Indonesian*, replies to English members written in
Indonesian, before and after the restart; the webhook's HTTP statuses over every delivery
(retries and duplicates included); *undelivered*, updates never answered 200 within 60 s of
retries. One JSON line (``chaos:`` prefix) and a table.

Reading the figures: the members offer about 125 updates/s (500 members, 4 s apart), four
times what Telegram lets one bot send, so the share of 429s decides the pace: with none the
control pass answers in 20 ms (median), with 2.5% of sends refused the replies queue behind
the flood pauses for seconds. ``--rate-429 0`` or a larger ``--gap`` separates the two.

Not part of the test suite; it needs redis-server on PATH and, by default, PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
from _chaos_infra import (  # noqa: E402
    ChaosBotApi,
    RedisServer,
    ServeProcess,
    free_port,
    pg_database,
    post_update,
    scrape_metrics,
    seed,
    serve_environment,
    sql_languages,
    start_serve,
    stop_serve,
)
from _chaos_replies import (  # noqa: E402
    Attribution,
    Classifier,
    Reply,
    Update,
    attribute,
    out_of_order,
    signature,
)

FIRST_CHAT = 700_000
CALIBRATION_CHAT = 9_000_000
LINKED_KPJS = ("12345678901", "23456789012", "34567890123")  # active, one membership each
FAQ = ("cara klaim jht gmn", "iuran jht berapa persen", "saldo sy kok gak nambah",
       "lupa akun jmo", "nomor call center", "apa itu jkp", "syarat klaim jht apa aja",
       "jkp itu apa")
RETRY_FOR = 60.0  # seconds a delivery is retried, as Telegram does
POST_TIMEOUT = 10.0
OUTAGE = 5.0  # seconds Redis stays down


@dataclass(frozen=True)
class Kind:
    """A kind of update: a text, or a press on a button (``press``: its data, first found
    wins) with the text sent instead when no message on screen carries it."""

    name: str
    text: str
    weight: float
    press: tuple[str, ...] = ()
    after_faq: bool = False  # only right after a FAQ question

    @property
    def is_faq(self) -> bool:
        """A FAQ question."""
        return self.text in FAQ and not self.press


KINDS = (
    Kind("cek saldo", "cek saldo", 30),
    Kind("press balance", "cek saldo", 8, press=("go:check_balance", "bal:refresh")),
    Kind("/menu", "/menu", 10),
    Kind("/bantuan", "/bantuan", 7),
    *(Kind(f"faq: {q}", q, 4.5) for q in FAQ),
    Kind("press faq:yes", "/menu", 9, press=("faq:yes",), after_faq=True),
)
BY_NAME = {kind.name: kind for kind in KINDS}


# --- the members and their plans ---------------------------------------------------------

@dataclass
class Member:
    """A linked chat and what it will send."""

    chat: int
    english: bool
    plan: list[Kind]
    rng: random.Random
    sent: list[Update] = field(default_factory=list)


def plan_for(rng: random.Random, count: int, expected: dict[str, list[str]]) -> list[Kind]:
    """``count`` kinds drawn by weight, none expecting a class that either of the two before
    it expects (so that their replies can be told apart)."""
    plan: list[Kind] = []
    for _ in range(count):
        recent = {cls for kind in plan[-2:] for cls in expected[kind.name]}
        allowed = [k for k in KINDS
                   if not recent & set(expected[k.name])
                   and (not k.after_faq or (bool(plan) and plan[-1].is_faq))]
        plan.append(rng.choices(allowed, weights=[k.weight for k in allowed])[0])
    return plan


# --- delivery, as Telegram does it ---------------------------------------------------------

@dataclass
class Deliveries:
    """Every delivery attempt and its HTTP status."""

    http: aiohttp.ClientSession
    processes: list[ServeProcess]
    statuses: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    retries: int = 0
    undelivered: int = 0
    duplicates: int = 0
    duplicates_elsewhere: int = 0
    accepted: dict[int, float] = field(default_factory=dict)  # update_id -> first 200
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def deliver(self, update: dict[str, Any], target: int, rng: random.Random) -> None:
        """POST until a 200, retrying like Telegram (``Retry-After``, at least 1 s, doubling
        to 8 s, to either process) for at most ``RETRY_FOR`` s."""
        started, wait = time.monotonic(), 1.0
        while True:
            self.attempts += 1
            status = await post_update(self.http, self.processes[target].webhook, update)
            self.statuses["no answer" if status == 0 else str(status)] += 1
            if status == 200:
                self.accepted.setdefault(int(update["update_id"]), time.monotonic())
                return
            if time.monotonic() - started > RETRY_FOR:
                self.undelivered += 1
                return
            self.retries += 1
            await asyncio.sleep(wait)
            wait = min(wait * 2, 8.0)
            target = rng.randrange(len(self.processes))

    def spawn(self, work: Awaitable[None]) -> None:
        """Run a delivery in the background."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def twice(self, update: dict[str, Any], first: int, rng: random.Random) -> None:
        """The duplicate: 0.05 to 1.5 s later, to the other process half of the time."""
        await asyncio.sleep(rng.uniform(0.05, 1.5))
        other = rng.random() < 0.5
        self.duplicates += 1
        self.duplicates_elsewhere += other
        await self.deliver(update, (1 - first) if other else first, rng)

    async def settle(self) -> None:
        """Wait for every delivery in flight."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def build_update(fake: ChaosBotApi, chat: int, kind: Kind) -> tuple[dict[str, Any], Kind]:
    """The update for ``kind`` (a press on the newest message carrying the button, else its
    text) and the kind actually sent."""
    if kind.press:
        found = fake.button(chat, *kind.press)
        if found is not None:
            message_id, data = found
            return fake.callback_update(chat, data, message_id=message_id), kind
        kind = next(k for k in KINDS if k.text == kind.text and not k.press)
    return fake.message_update(chat, kind.text, language_code="id"), kind


# --- calibration and set-up ------------------------------------------------------------------

async def quiet(fake: ChaosBotApi, chats: list[int], *, after: int, quiet_for: float,
                limit: float) -> None:
    """Wait until each chat has more than ``after`` messages and none came for ``quiet_for``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        now = time.monotonic()
        done = True
        for chat in chats:
            sent = fake.by_chat.get(chat, [])
            if len(sent) <= after or now - sent[-1].at < quiet_for:
                done = False
                break
        if done:
            return
        await asyncio.sleep(0.1)


async def calibrate(fake: ChaosBotApi, post: Callable[[dict[str, Any]], Awaitable[int]],
                    classifier: Classifier) -> dict[str, list[str]]:
    """Send each kind once in each language, each to a fresh chat linked like the members;
    learn their replies' classes (see the module docstring)."""
    setups = {"press balance": "/menu", "press faq:yes": "apa itu jkp"}
    chats = {(kind.name, locale): CALIBRATION_CHAT + i * 2 + (locale == "en")
             for i, kind in enumerate(KINDS) for locale in ("id", "en")}
    english = [chat for (_, locale), chat in chats.items() if locale == "en"]
    for chat in english:
        await post(fake.message_update(chat, "/bahasa en", language_code="id"))
    await quiet(fake, english, after=0, quiet_for=1.5, limit=20)
    for (name, _), chat in chats.items():
        if name in setups:
            await post(fake.message_update(chat, setups[name], language_code="id"))
    await quiet(fake, [chats[key] for key in chats if key[0] in setups], after=0,
                quiet_for=1.5, limit=20)
    marks = {chat: len(fake.by_chat.get(chat, [])) for chat in chats.values()}
    for (name, _), chat in chats.items():
        update, sent_kind = build_update(fake, chat, BY_NAME[name])
        if sent_kind.name != name:
            raise SystemExit(f"calibration: no button to press for {name}")
        await post(update)
    for chat, mark in marks.items():
        await quiet(fake, [chat], after=mark, quiet_for=1.8, limit=20)
    expected: dict[str, list[str]] = {}
    for kind in KINDS:
        by_locale = {locale: [signature(s.text) for s in
                              fake.by_chat.get(chats[(kind.name, locale)], [])
                              [marks[chats[(kind.name, locale)]]:]]
                     for locale in ("id", "en")}
        expected[kind.name] = classifier.learn(kind.name, by_locale)
        if not expected[kind.name]:
            raise SystemExit(f"calibration: no reply to {kind.name}")
    return expected


# --- the run -----------------------------------------------------------------------------------

@dataclass
class Outage:
    """When Redis was killed and started again (``time.monotonic``)."""

    killed: float | None = None
    restarted: float | None = None


@dataclass
class Run:
    """One pass."""

    args: argparse.Namespace
    fake: ChaosBotApi
    deliveries: Deliveries
    members: list[Member]
    expected: dict[str, list[str]]
    redis: RedisServer
    outage: Outage = field(default_factory=Outage)
    posted: int = 0

    async def member(self, member: Member) -> None:
        """One member's updates in sequence, ``--gap`` s apart on average."""
        rng = member.rng
        await asyncio.sleep(rng.uniform(0, self.args.gap))
        for index, planned in enumerate(member.plan):
            update, kind = build_update(self.fake, member.chat, planned)
            member.sent.append(Update(member.chat, index, kind.name, self.expected[kind.name],
                                      time.monotonic(), member.english,
                                      update_id=int(update["update_id"])))
            target = rng.randrange(2)
            self.posted += 1
            self.deliveries.spawn(self.deliveries.deliver(update, target, rng))
            if rng.random() < self.args.duplicates:
                self.deliveries.spawn(self.deliveries.twice(update, target, rng))
            await asyncio.sleep(rng.uniform(0.5, 1.5) * self.args.gap)

    async def chaos(self, total: int) -> None:
        """Kill Redis once half the updates are sent; start it again ``OUTAGE`` s later."""
        while self.posted < total // 2:
            await asyncio.sleep(0.05)
        self.outage.killed = time.monotonic()
        self.redis.kill()
        await asyncio.sleep(OUTAGE)
        await self.redis.start()
        self.outage.restarted = time.monotonic()

    async def go(self) -> float:
        """Run every member; returns when the replies settled (no new one for ``--settle``
        s, at most 180 s after the last delivery)."""
        total = sum(len(m.plan) for m in self.members)
        chaos = None if self.args.control else asyncio.create_task(self.chaos(total))
        await asyncio.gather(*(self.member(m) for m in self.members))
        if chaos is not None:
            await chaos
        await self.deliveries.settle()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            last = self.fake.sent[-1].at if self.fake.sent else 0.0
            if time.monotonic() - last >= self.args.settle:
                break
            await asyncio.sleep(0.2)
        return self.fake.sent[-1].at if self.fake.sent else time.monotonic()


# --- figures -----------------------------------------------------------------------------------

def figures(run: Run, updates: list[Update], attribution: Attribution, *, started: float,
            ended: float, sql: dict[int, str | None], logs: dict[str, Any],
            metrics: dict[str, float]) -> dict[str, Any]:
    """Everything the pass measured, as one JSON object."""
    english_chats = {m.chat for m in run.members if m.english}
    killed, restarted = run.outage.killed, run.outage.restarted

    def window(at: float) -> str:
        if killed is None or restarted is None or at < killed:
            return "before"
        return "outage" if at < restarted else "after"

    english = {w: Counter[str]() for w in ("before", "outage", "after")}
    hit: set[int] = set()
    for chat, at, loc in attribution.by_locale:
        if chat in english_chats:
            english[window(at)][loc] += 1
            if loc == "id" and window(at) == "after":
                hit.add(chat)
    late = out_of_order(updates)
    deliveries = run.deliveries
    outage = run.outage
    return {
        "pass": "control" if run.args.control else "fault", "commit": head_commit(),
        "aof": run.args.aof, "burst": run.args.burst, "gap": run.args.gap,
        "database": run.args.database, "seed": run.args.seed,
        "members": len(run.members), "english_members": len(english_chats),
        "updates": len(updates),
        "lost": sum(1 for u in updates if not u.replies),
        "doubled": sum(1 for u in updates if u.doubled),
        "doubled_by_apology": sum(1 for u in updates if u.doubled_by_apology),
        "apology_messages": attribution.apologies,
        "apologised_updates": sum(1 for u in updates if u.apologies),
        "apologised_not_answered": sum(1 for u in updates if u.apologies
                                       and not u.answers),
        "unexpected_replies": attribution.others,
        "unexpected_texts": dict(attribution.unexpected.most_common(5)),
        "follow_ups_of_unexpected": attribution.tails,
        "unattributed_replies": attribution.unattributed,
        "out_of_order": len(late),
        "out_of_order_share": round(len(late) / max(1, len(updates)), 4),
        "out_of_order_reordered_by_bot": sum(1 for _, reordered in late if reordered),
        "english_replies_in_id": {w: f"{c['id']}/{sum(c.values())}"
                                  for w, c in english.items()},
        "english_members_answered_in_id_after_restart": len(hit),
        "english_preference_in_sql": sum(1 for chat in english_chats
                                         if sql.get(chat) == "en"),
        "http_statuses": dict(sorted(deliveries.statuses.items())),
        "deliveries": deliveries.attempts, "retries": deliveries.retries,
        "undelivered": deliveries.undelivered, "duplicates": deliveries.duplicates,
        "duplicates_to_other_process": deliveries.duplicates_elsewhere,
        "send_calls": run.fake.calls_total, "send_429": run.fake.calls_429,
        "replies": attribution.total,
        "first_reply_seconds": latency(updates),
        "redis_killed_at_s": None if outage.killed is None else round(outage.killed - started,
                                                                     1),
        "redis_restarted_at_s": None if outage.restarted is None
        else round(outage.restarted - started, 1),
        "duration_s": round(ended - started, 1),
        "serve_log": logs,
        "serve_metrics": metrics,
        "mix": dict(Counter(u.kind for u in updates).most_common()),
    }


def latency(updates: list[Update]) -> dict[str, float]:
    """Seconds from an update's first delivery to its first reply: median, p95, max."""
    waits = sorted(u.first_reply - u.posted_at for u in updates if u.first_reply is not None)
    if not waits:
        return {}
    return {"p50": round(waits[len(waits) // 2], 2),
            "p95": round(waits[min(len(waits) - 1, int(len(waits) * 0.95))], 2),
            "max": round(waits[-1], 2)}


def head_commit() -> str:
    """The checkout's commit (the code the serve processes ran)."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
                              cwd=Path(__file__).resolve().parents[1], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(f: dict[str, Any]) -> None:
    """The figures, readable."""
    n = max(1, f["updates"])

    def share(value: int, of: int = n) -> str:
        return f"{value:,} ({value / max(1, of):.1%})"

    rows = [
        ("pass", f"{f['pass']} at {f['commit']} (Redis {'AOF' if f['aof'] else 'no persistence'}, "
                 f"{f['database']}, seed {f['seed']})"),
        ("members (English)", f"{f['members']} ({f['english_members']}; SQL preference 'en': "
                              f"{f['english_preference_in_sql']})"),
        ("updates sent", f"{f['updates']:,}; duplicates {f['duplicates']:,} "
                         f"({f['duplicates_to_other_process']:,} to the other process)"),
        ("lost (no reply)", share(f["lost"])),
        ("doubled", share(f["doubled"]) + f"; {f['doubled_by_apology']:,} of them a second "
                    f"reply that is an apology"),
        ("apologies", f"{f['apology_messages']:,} messages; {share(f['apologised_updates'])} "
                      f"updates answered by one ({f['apologised_not_answered']:,} never got "
                      f"their answer)"),
        ("out of order", share(f["out_of_order"]) + f"; {f['out_of_order_reordered_by_bot']:,} "
                        f"accepted (200) before the update that overtook them"),
        ("English in Indonesian", "replies to English members written in Indonesian: "
         + ", ".join(f"{w} {v}" for w, v in f["english_replies_in_id"].items())
         + f" ({f['english_members_answered_in_id_after_restart']} members after)"),
        ("webhook statuses", ", ".join(f"{k}: {v:,}" for k, v in f["http_statuses"].items())
         + f"; retries {f['retries']:,}; undelivered {f['undelivered']:,}"),
        ("sendMessage 429", share(f["send_429"], f["send_calls"])
         + f" of {f['send_calls']:,} calls, in bursts of the {f['burst']}"),
        ("unexpected replies", f"{f['unexpected_replies']:,} (+{f['unattributed_replies']} "
                               f"before any update of their chat; "
                               f"{f['follow_ups_of_unexpected']} follow-ups): "
                               + "; ".join(f"{k!r} x{v}" for k, v
                                           in f["unexpected_texts"].items())),
        ("Redis outage", "none" if f["redis_killed_at_s"] is None else
         f"SIGKILL at {f['redis_killed_at_s']} s, back at {f['redis_restarted_at_s']} s"),
        ("duration", f"{f['duration_s']} s (first update to last reply); first reply after "
                     + ", ".join(f"{k} {v} s" for k, v in f["first_reply_seconds"].items())
                     + f"; {f['replies']:,} replies"),
        ("serve logs", ", ".join(f"{k}: {v}" for k, v in f["serve_log"].items()
                                 if k != "top")),
        ("serve counters", ", ".join(f"{k}: {v:g}" for k, v in f["serve_metrics"].items())),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def dump(path: Path, updates: list[Update], replies: list[Reply], classifier: Classifier,
         started: float) -> None:
    """The troubled chats, one JSON line each: their updates and classified replies (times in
    seconds from the start)."""
    late = {id(u) for u, _ in out_of_order(updates)}
    troubled = {u.chat for u in updates
                if not u.replies or u.doubled or u.apologies or u.others or id(u) in late}
    with path.open("w") as out:
        for chat in sorted(troubled):
            out.write(json.dumps({
                "chat": chat,
                "updates": [{"n": u.index, "kind": u.kind,
                             "posted": round(u.posted_at - started, 2),
                             "got": u.answers, "of": len(u.expected), "doubled": u.doubled,
                             "apologies": u.apologies, "late": id(u) in late,
                             "replies": [round(at - started, 2) for at in u.replies]}
                            for u in updates if u.chat == chat],
                "replies": [{"at": round(r.at - started, 2),
                             "class": classifier.classify(r.text)[0][:30],
                             "text": r.text[:60]} for r in replies if r.chat == chat],
            }, ensure_ascii=False) + "\n")


def log_counts(processes: list[ServeProcess]) -> dict[str, Any]:
    """Warnings, errors and stack traces the serve processes logged, and their most frequent
    messages (digits as ``#``)."""
    counts: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for process in processes:
        text = process.stderr.read_text(errors="replace")
        counts["tracebacks"] += text.count("Traceback (most recent call last)")
        for line in text.splitlines():
            for level in ("WARNING", "ERROR", "CRITICAL"):
                if f" {level} " in line:
                    counts[level.lower()] += 1
                    messages[signature(line.partition(f" {level} ")[2])[:90]] += 1
    return {**counts, "top": dict(messages.most_common(6))}


# --- main ------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--control", action="store_true",
                        help="no Redis kill, 2,000 updates, 2.5%% of sends answered 429")
    parser.add_argument("--updates", type=int, default=None,
                        help="updates in all (10,000; control 2,000)")
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--aof", action="store_true", help="Redis with appendonly yes")
    parser.add_argument("--gap", type=float, default=4.0,
                        help="mean seconds between two updates of a member")
    parser.add_argument("--duplicates", type=float, default=0.10,
                        help="share of updates delivered twice")
    parser.add_argument("--rate-429", type=float, default=None,
                        help="share of sendMessage calls answered 429 (5%%; control 2.5%%)")
    parser.add_argument("--burst", choices=("chat", "bot"), default="chat",
                        help="429 bursts refuse one chat's next calls (its own limit: 1 to 4 "
                             "calls) or the next calls of any chat (the bot's limit: 4 to 12)")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds without a new reply that end the run")
    parser.add_argument("--per-second", type=float, default=500.0,
                        help="TELEGRAM_MESSAGES_PER_SECOND of each process")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="an existing database; the run creates and drops its own beside")
    parser.add_argument("--redis-port", type=int, default=6395)
    parser.add_argument("--dump", type=Path, default=None,
                        help="write the chats with a lost, doubled, apologised, unexpected or "
                             "late update there (JSON lines: updates and classified replies)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (the serve processes' logs)")
    args = parser.parse_args()
    if args.updates is None:
        args.updates = 2_000 if args.control else 10_000
    if args.rate_429 is None:
        args.rate_429 = 0.025 if args.control else 0.05
    return args


async def run_pass(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Build the world, calibrate, set up, run, measure."""
    rng = random.Random(args.seed)
    chats = [FIRST_CHAT + i for i in range(args.members)]
    links = {chat: LINKED_KPJS[i % len(LINKED_KPJS)] for i, chat in enumerate(chats)}
    links.update({CALIBRATION_CHAT + i: LINKED_KPJS[0] for i in range(2 * len(KINDS))})
    redis = RedisServer(args.redis_port, workdir / "redis", aof=args.aof)
    await redis.start()
    try:
        if args.database == "postgres":
            async with pg_database(args.postgres) as url:
                return await with_database(args, workdir, rng=rng, chats=chats, links=links,
                                           redis=redis, database_url=url)
        url = f"sqlite:///{workdir / 'bot.db'}"
        return await with_database(args, workdir, rng=rng, chats=chats, links=links,
                                           redis=redis, database_url=url)
    finally:
        redis.stop()


async def with_database(args: argparse.Namespace, workdir: Path, *,  # noqa: PLR0913
                        rng: random.Random, chats: list[int], links: dict[int, str],
                        redis: RedisServer, database_url: str) -> dict[str, Any]:
    """The pass on a seeded database."""
    await seed(database_url, links)
    timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
    async with ChaosBotApi(random.Random(args.seed + 1), args.burst) as fake, \
            aiohttp.ClientSession(timeout=timeout) as http:
        processes: list[ServeProcess] = []
        try:
            for name in ("serve-a", "serve-b"):
                env = serve_environment(api_base=fake.api_base, redis_url=redis.url,
                                        database_url=database_url,
                                        outbox=workdir / "otp.jsonl", port=free_port(),
                                        per_second=args.per_second)
                processes.append(await start_serve(name, env, workdir))
            deliveries = Deliveries(http, processes)
            setup_rng = random.Random(args.seed + 2)

            async def post(update: dict[str, Any]) -> int:
                await deliveries.deliver(update, setup_rng.randrange(2), setup_rng)
                return 200

            classifier = Classifier()
            expected = await calibrate(fake, post, classifier)
            per_member = max(1, args.updates // args.members)
            members = [Member(chat, rng.random() < 0.5, [], random.Random(args.seed * 7919 + chat))
                       for chat in chats]
            for member in members:
                member.plan = plan_for(member.rng, per_member, expected)
            english = [m.chat for m in members if m.english]
            marks = {chat: len(fake.by_chat.get(chat, [])) for chat in english}
            await asyncio.gather(*(post(fake.message_update(chat, "/bahasa en",
                                                            language_code="id"))
                                   for chat in english))
            await quiet(fake, english, after=0, quiet_for=2.0, limit=60)
            del marks
            deliveries.statuses.clear()
            deliveries.attempts = deliveries.retries = 0
            fake.share = args.rate_429
            fake.calls_total = fake.calls_429 = 0
            first_reply_index = len(fake.sent)
            run = Run(args, fake, deliveries, members, expected, redis)
            started = time.monotonic()
            print(f"calibrated {len(expected)} kinds; {len(english)} members chose English; "
                  f"running {per_member * len(members):,} updates...", flush=True)
            ended = await run.go()
            fake.share = 0.0
            updates = [u for m in members for u in m.sent]
            for u in updates:
                u.accepted_at = deliveries.accepted.get(u.update_id)
            member_chats = set(chats)
            replies = [Reply(s.chat, s.text, s.at) for s in fake.sent[first_reply_index:]
                       if s.chat in member_chats]
            attribution = attribute(updates, replies, classifier)
            sql = await sql_languages(database_url, english)
            metrics: dict[str, float] = {}
            for process in processes:
                for name, value in (await scrape_metrics(http, process)).items():
                    metrics[name] = metrics.get(name, 0.0) + value
            if args.dump is not None:
                dump(args.dump, updates, replies, classifier, started)
        finally:
            for process in processes:
                await stop_serve(process)
        result = figures(run, updates, attribution, started=started, ended=ended, sql=sql,
                         logs=log_counts(processes), metrics=metrics)
        if classifier.mismatches:
            result["calibration_notes"] = classifier.mismatches
        return result


async def main() -> None:
    """One pass: the fault pass, or ``--control``."""
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-telegram-"))
    try:
        result = await run_pass(args, workdir)
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    print("chaos: " + json.dumps(result, sort_keys=False))
    table(result)


if __name__ == "__main__":
    asyncio.run(main())
