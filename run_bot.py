"""Composition root and command line: reads settings, builds stores, services, engine, channel.

    uv run run_bot.py               chat in the terminal on the embedded defaults
    uv run run_bot.py console       the same
    uv run run_bot.py classify      one message per stdin line -> one JSON object per line
    uv run run_bot.py migrate       apply database migrations (DATABASE_URL or the SQLite default)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from balance.service import ReferenceBalanceService, seed_demo_members
from bot.clock import SystemClock
from bot.config import Settings
from bot.console import ConsoleChannel, read_stdin
from bot.logsetup import configure_logging
from bot.otp_delivery import ConsoleOtpSender, FanOutOtpSender, OutboxOtpSender
from flows.engine import Engine
from flows.flow import Ports
from flows.i18n import Catalog
from flows.intents import classify
from flows.ports import OtpSender, SessionBackend
from storage.accounts import SqlAccountStore
from storage.db import create_engine, migrate
from storage.sessions import MemorySessionStore, redis_store_from_url

log = logging.getLogger("run_bot")


@asynccontextmanager
async def build_engine(settings: Settings, otp_senders: Sequence[OtpSender],
                       catalog: Catalog) -> AsyncIterator[Engine]:
    """The engine on the backends the settings name; closes them on exit."""
    async with AsyncExitStack() as stack:
        store = await _session_store(settings, stack)
        database = create_engine(settings.database)
        stack.push_async_callback(database.dispose)
        await migrate(database)
        if settings.balance_service_url:
            raise SystemExit("BALANCE_SERVICE_URL is not supported yet: the HTTP balance "
                             "client arrives with the balance-service release.")
        if settings.should_seed_demo:
            await seed_demo_members(database)
        secret = settings.secret()
        ports = Ports(kv=store, accounts=SqlAccountStore(database, secret),
                      balance=ReferenceBalanceService(database),
                      otp_sender=_otp_sender(settings, otp_senders), clock=SystemClock(),
                      secret=secret)
        yield Engine(sessions=store, ports=ports, catalog=catalog,
                     flow_timeout=settings.flow_timeout_seconds)


async def _session_store(settings: Settings, stack: AsyncExitStack) -> SessionBackend:
    if not settings.redis_url:
        return MemorySessionStore(ttl=settings.session_ttl_seconds)
    store = redis_store_from_url(settings.redis_url, ttl=settings.session_ttl_seconds)
    stack.push_async_callback(store.aclose)
    return store


def _otp_sender(settings: Settings, senders: Sequence[OtpSender]) -> OtpSender:
    chosen = list(senders)
    if settings.otp_outbox:
        chosen.append(OutboxOtpSender(Path(settings.otp_outbox)))
    if not chosen:
        raise SystemExit("No OTP delivery is configured: set OTP_OUTBOX for this channel.")
    return chosen[0] if len(chosen) == 1 else FanOutOtpSender(chosen)


async def run_console(settings: Settings, write: Callable[[str], None] = print) -> None:
    """Chat in the terminal."""
    catalog = Catalog()
    async with build_engine(settings, [ConsoleOtpSender(catalog, write)], catalog) as engine:
        write("BPJS Ketenagakerjaan balance assistant (console). Type /quit to leave.\n")
        await ConsoleChannel(engine.handle, read=read_stdin, write=write).run()


def run_classify(lines: Iterable[str], write: Callable[[str], None] = print) -> None:
    """Print ``{"text", "intent", "score"}`` for each input line."""
    for line in lines:
        text = line.rstrip("\r\n")
        intent = classify(text)
        write(json.dumps({"text": text, "intent": intent.name,
                          "score": round(intent.score, 3)}, ensure_ascii=False))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="run_bot.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("console", help="chat in the terminal (default)")
    commands.add_parser("classify", help="classify stdin lines into intents (JSON lines)")
    commands.add_parser("migrate", help="apply database migrations")
    for name in ("telegram", "serve", "balance-service", "import"):
        commands.add_parser(name, help="not available in this release", add_help=False)
    args, _ = parser.parse_known_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings()
    configure_logging(settings.log_level)
    command = args.command or "console"
    if command == "classify":
        run_classify(sys.stdin)
    elif command == "migrate":
        asyncio.run(migrate(settings.database))
    elif command == "console":
        try:
            asyncio.run(run_console(settings))
        except KeyboardInterrupt:
            print()
    else:
        print(f"run_bot.py {command}: not available in this release yet.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
