"""``run_bot.py notify [--dry-run]``: one alert planning pass, for cron or by hand.

The pass reads the balance service's change feed and missing list, finds the subscribed chats
and puts one job per (chat, kind, period, KPJ) on each channel's queue (Redis Streams when
``REDIS_URL`` is set); the workers of the ``serve`` processes send them. ``--dry-run`` prints
what would be queued, each alert in its chat's language, and queues nothing.

On the embedded default (no Redis) the queue lives in this process, so the pass also sends
what it can right away: the console chat's alerts are printed here. And while no chat has
subscribed yet, on the demo database, a preview shows the alerts the demo members would get,
so a newcomer sees them in a minute (Siti's missing September 2026 among them).

Chat ids are never printed whole: a WhatsApp chat id is a phone number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.planner import PlanReport
    from alerts.ports import ChatState, Recipient
    from app.compose import Runtime
    from app.settings import Settings
    from domain.alerts import AlertJob
    from flows.ports import Clock
    from flows.types import SessionKey

__all__ = ["run_notify"]


async def run_notify(settings: Settings, *, dry_run: bool,
                     write: Callable[[str], None] = print, clock: Clock | None = None) -> int:
    """One planning pass (queued, or only printed with ``dry_run``); returns the exit code.
    ``clock`` (tests) fixes today's date; by default the system's."""
    from app.compose import alert_planner, alert_workers, runtime
    from app.otp_delivery import ConsoleOtpSender
    from channels.console.desk import ConsoleOutbox
    from flows.i18n import Catalog
    from flows.memberships import JAKARTA
    from flows.ports import PortUnavailable
    from storage.sessions import RedisSessionStore

    catalog = Catalog()
    async with runtime(settings, ConsoleOtpSender(catalog, write), catalog=catalog,
                       clock=clock) as built:
        now = built.ports.clock.now()
        today = now.astimezone(JAKARTA).date()
        try:
            report = await alert_planner(settings, built).plan(today, now, dry_run=dry_run)
        except PortUnavailable as exc:
            write(f"planning failed: {type(exc).__name__} (the feed, the database or the "
                  "queue cannot be reached); nothing was lost, run it again later")
            return 1
        heading = "would be queued (dry run: nothing queued)" if dry_run else "queued"
        write(f"Contribution alerts for {today.isoformat()}, {heading}:")
        for line in report.lines():
            write(f"  {line}")
        if dry_run:
            await _print_jobs(built, report.jobs, write)
        elif not isinstance(built.store, RedisSessionStore):
            # The in-process queue ends with this process: the console's alerts are printed
            # now (quiet hours are for members' phones, not for this terminal).
            awake = settings.model_copy(update={"alerts_quiet_hours": "off"})
            for worker in alert_workers(awake, built, ConsoleOutbox(write), ("console",))[:1]:
                drained = await worker.drain()
                write("console chat: " + ", ".join(
                    f"{result.value} {count}" for result, count in drained.counts.items())
                    if drained.counts else "console chat: no alerts")
            held = await built.alert_queues.depth()
            if held:
                write(f"{held} alert(s) for Telegram or WhatsApp chats wait in this process "
                      "only: set REDIS_URL so that the serve processes send them")
        else:
            write("The workers of the serve processes send them "
                  f"(quiet hours {settings.alerts_quiet_hours or 'off'}, Asia/Jakarta).")
        if report.total == 0 and settings.should_seed_demo and not await _anyone(built):
            await _preview(settings, built, today, now, write)
    return 0


async def _anyone(built: Runtime) -> bool:
    """Whether any chat subscribed to any kind."""
    from domain.alerts import KINDS

    for kind in KINDS:
        if await built.alerts.every_subscribed(kind.value, None, 1):
            return True
    return False


async def _print_jobs(built: Runtime, jobs: Sequence[AlertJob],
                      write: Callable[[str], None]) -> None:
    from app.compose import alert_renderer
    from channels.console.channel import render_turn
    from flows.identifiers import mask_kpj

    render = alert_renderer(built)
    states = await built.alerts.states(list({job.key for job in jobs}))
    for job in jobs:
        state = states.get(job.key)
        locale = state.locale if state is not None else "id"
        write(f"\n-- {job.channel} chat {_masked(job.chat_id)} · KPJ {mask_kpj(job.kpj)} · "
              f"{job.kind.value} {job.period} · {locale}")
        for text in render_turn(render(job, locale)):
            write(text)


async def _preview(settings: Settings, built: Runtime, today: date, now: datetime,
                   write: Callable[[str], None]) -> None:
    """The alerts the demo members would get were they subscribed, in both languages."""
    from dataclasses import replace

    from alerts.planner import Planner
    from alerts.queue_memory import MemoryAlertQueue
    from alerts.queues import ChannelQueues
    from app.compose import alert_policy
    from balance.demo import DEMO_MEMBERS

    directory = _EveryDemoMember(tuple(member.kpj for member in DEMO_MEMBERS))
    secret = built.ports.secret
    planner = Planner(feed=built.balance, directory=directory, cursors=_Cursors(),
                      queue=ChannelQueues(lambda _: MemoryAlertQueue(secret), ("preview",)),
                      policy=alert_policy(settings))
    report: PlanReport = await planner.plan(today, now, dry_run=True)
    write("\nNo chat has subscribed to alerts yet. A preview: the demo members' alerts, were "
          "they subscribed (link a chat with /daftar, then agree to alerts, to get them):")
    for locale in ("id", "en"):
        jobs = [replace(job, channel="preview") for job in report.jobs]
        await _print_preview(built, jobs, locale, write)


async def _print_preview(built: Runtime, jobs: Sequence[AlertJob], locale: str,
                         write: Callable[[str], None]) -> None:
    from app.compose import alert_renderer
    from channels.console.channel import render_turn
    from flows.identifiers import mask_kpj

    render = alert_renderer(built)
    for job in jobs:
        write(f"\n-- KPJ {mask_kpj(job.kpj)} · {job.kind.value} {job.period} · {locale}")
        for text in render_turn(render(job, locale)):
            write(text)


def _masked(chat_id: str) -> str:
    """A chat id with all but its last three characters hidden."""
    return "*" * max(0, len(chat_id) - 3) + chat_id[-3:]


class _EveryDemoMember:
    """A directory in which every demo membership is its own subscribed chat (the preview)."""

    def __init__(self, kpjs: Sequence[str]) -> None:
        self._kpjs = tuple(sorted(kpjs))

    async def subscribed(self, kind: str, kpjs: Sequence[str]) -> list[Recipient]:
        from alerts.ports import Recipient

        return [Recipient("preview", kpj, kpj) for kpj in kpjs if kpj in self._kpjs]

    async def every_subscribed(self, kind: str, after: Recipient | None,
                               limit: int) -> list[Recipient]:
        from alerts.ports import Recipient

        every = [Recipient("preview", kpj, kpj) for kpj in self._kpjs]
        return [r for r in every if after is None or r > after][:limit]

    async def states(self, keys: Sequence[SessionKey]) -> dict[SessionKey, ChatState]:
        from alerts.ports import ChatState
        from domain.alerts import KINDS

        return {key: ChatState(frozenset(KINDS), frozenset({key.chat_id}), "id")
                for key in keys}


class _Cursors:
    """Cursors that start empty and are forgotten (the preview reads the whole feed)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    async def cursor(self, name: str) -> str | None:
        return self._values.get(name)

    async def set_cursor(self, name: str, value: str, at: datetime) -> None:
        self._values[name] = value

