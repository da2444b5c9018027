"""The commands that need no channel library: console, classify, migrate, purge-transcripts,
import and balance-service. (``telegram`` and ``serve`` are in :mod:`app.serve`.)

Each command imports what it uses inside its function: ``classify`` loads the intent
classifier only (no database, no engine), the console the engine, the stores and the console
channel; none of them aiogram, pywa or an aiohttp web app. ``balance-service`` imports its own
web app.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = ["run_balance_service", "run_classify", "run_console", "run_import", "run_migrate",
           "run_purge"]


async def run_console(settings: Settings, write: Callable[[str], None] = print) -> None:
    """Chat in the terminal; ``@agent`` lines play the support agent."""
    from app.compose import background, otp_sender_for, runtime, support_desk, warm_documents
    from app.otp_delivery import ConsoleOtpSender
    from channels.console.channel import ConsoleChannel, read_stdin
    from channels.console.desk import AgentConsole, ConsoleDesk, ConsoleOutbox
    from flows.i18n import Catalog
    from flows.types import SessionKey

    catalog = Catalog()
    delivery = otp_sender_for(settings, [ConsoleOtpSender(catalog, write)])
    async with runtime(settings, delivery, catalog=catalog, desk=ConsoleDesk(write)) as built:
        desk = support_desk(settings, built, ConsoleOutbox(write))
        agent = AgentConsole(desk=desk.service, tickets=built.tickets,
                             key=SessionKey("console", "local"), write=write)
        write("BPJS Ketenagakerjaan balance assistant (console). Type /quit to leave. Lines "
              "starting with @agent play the support agent.\n")
        async with background(desk.sweeper.run(), warm_documents(built.ports)):
            await ConsoleChannel(built.engine.handle, read=read_stdin, write=write,
                                 agent=agent.handle,
                                 files_dir=settings.data_dir / "files").run()


def run_classify(lines: Iterable[str], write: Callable[[str], None] = print) -> None:
    """Print ``{"text", "intent", "score", "runner_up", "ask"}`` for each input line:
    ``runner_up`` is the second most likely intent, ``ask`` the intent the bot would offer
    beside ``intent`` in a question back (``null`` when it would not ask)."""
    from flows.intents import classify

    for line in lines:
        text = line.rstrip("\r\n")
        intent = classify(text)
        write(json.dumps({"text": text, "intent": intent.name,
                          "score": round(intent.score, 3), "runner_up": intent.runner_up,
                          "ask": intent.alternative}, ensure_ascii=False))


async def run_migrate(settings: Settings) -> int:
    """Apply the database migrations to ``DATABASE_URL`` (or the embedded SQLite file)."""
    from app.compose import database_for
    async with database_for(settings, seed=False):
        pass
    return 0


async def run_purge(settings: Settings) -> int:
    """Delete transcript lines older than ``TRANSCRIPT_RETENTION_DAYS``."""
    from app.compose import database_for
    from storage.tickets import SqlTicketStore

    async with database_for(settings, seed=False) as database:
        cutoff = datetime.now(UTC) - timedelta(days=settings.transcript_retention_days)
        removed = await SqlTicketStore(database).purge_transcripts(cutoff)
    print(f"removed {removed} transcript line(s) older than "
          f"{settings.transcript_retention_days} days")
    return 0


async def run_import(settings: Settings, members: Path | None, contributions: Path | None,
                     rates: Path | None) -> int:
    """Import CSV files into ``DATABASE_URL``; print the report or the first problems."""
    from app.compose import database_for
    from balance.importer import CsvImportError, import_csv

    async with database_for(settings, demo=False) as database:  # the default rates only
        try:
            report = await import_csv(database, members=members, contributions=contributions,
                                      rates=rates)
        except CsvImportError as exc:
            print(exc, file=sys.stderr)
            return 1
    print("\n".join(report.lines()))
    return 0


async def run_balance_service(settings: Settings, host: str, port: int) -> None:
    """Serve the reference balance service on ``DATABASE_URL`` until interrupted."""
    token = settings.balance_service_token.get_secret_value()
    if not token:
        raise SystemExit("BALANCE_SERVICE_TOKEN must be set: the service answers only "
                         "requests that carry it.")
    from app.compose import database_for
    from balance.http_app import create_app, serve
    from balance.service import ReferenceBalanceService

    async with database_for(settings) as database:
        app = create_app(ReferenceBalanceService(database), token=token)
        await serve(app, host, port, started=lambda: print(
            f"balance service on http://{host}:{port} (OpenAPI: /openapi.yaml)", flush=True))
