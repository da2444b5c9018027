"""The command line of ``run_bot.py``: one parser, one branch per command.

Each command's implementation is imported inside its branch, so a command loads only what it
uses: the console and ``classify`` never import aiogram, pywa or an aiohttp web app (about
5 s of start-up on a small machine); ``telegram`` and ``serve`` do (:mod:`app.serve`).
An unknown flag or argument is an error (exit code 2 with the usage), never ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.settings import Settings

__all__ = ["COMMANDS", "build_parser", "main", "parse_args"]

COMMANDS = ("console", "classify", "migrate", "balance-service", "purge-transcripts", "import",
            "telegram", "serve", "verify-statement", "notify")

DESCRIPTION = """\
The BPJS Ketenagakerjaan balance assistant.

    uv run run_bot.py                   chat in the terminal on the embedded defaults
    uv run run_bot.py console           the same
    uv run run_bot.py classify          one message per stdin line -> one JSON object per line
    uv run run_bot.py telegram          the Telegram bot: long polling, or the webhook when
                                        TELEGRAM_WEBHOOK_URL is set
    uv run run_bot.py serve             the web app: Telegram and/or WhatsApp webhooks, /healthz,
                                        /metrics
    uv run run_bot.py migrate           apply database migrations (DATABASE_URL or the default)
    uv run run_bot.py balance-service   the reference balance service over HTTP
    uv run run_bot.py import --members M.csv --contributions C.csv [--rates R.csv]
    uv run run_bot.py purge-transcripts delete ticket transcripts past their retention
    uv run run_bot.py verify-statement FILE.pdf
                                        whether a contribution statement is genuine and
                                        unaltered (exit code 0), or not (1)
    uv run run_bot.py notify [--dry-run]
                                        one contribution-alert planning pass: queue the alerts
                                        (the serve processes send them), or print them only
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command and its flags."""
    parser = argparse.ArgumentParser(prog="run_bot.py", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("console", help="chat in the terminal (default)")
    commands.add_parser("classify", help="classify stdin lines into intents (JSON lines)")
    commands.add_parser("migrate", help="apply database migrations")
    service = commands.add_parser("balance-service", help="the reference balance service")
    service.add_argument("--host", default="127.0.0.1")
    service.add_argument("--port", type=int, default=8081)
    commands.add_parser("purge-transcripts",
                        help="delete ticket transcripts older than TRANSCRIPT_RETENTION_DAYS")
    importer = commands.add_parser("import", help="load CSV files into DATABASE_URL")
    importer.add_argument("--members", type=Path)
    importer.add_argument("--contributions", type=Path)
    importer.add_argument("--rates", type=Path)
    commands.add_parser("telegram", help="the Telegram bot: long polling, or the webhook "
                        "app when TELEGRAM_WEBHOOK_URL is set")
    web = commands.add_parser("serve", help="the web app: Telegram and/or WhatsApp webhooks, "
                              "/healthz, /metrics")
    web.add_argument("--host", help="default: WEB_HOST (0.0.0.0)")
    web.add_argument("--port", type=int, help="default: WEB_PORT (8080)")
    verify = commands.add_parser("verify-statement", help="check a statement PDF: genuine "
                                 "and unaltered (exit 0) or not (exit 1)")
    verify.add_argument("file", type=Path, metavar="FILE.pdf")
    notify = commands.add_parser("notify", help="plan contribution alerts once: queue them "
                                 "for the serve processes' workers, or print them (--dry-run)")
    notify.add_argument("--dry-run", action="store_true",
                        help="print the alerts that would be queued; queue nothing")
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line; an unknown flag or argument exits with code 2 and the usage."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "import" and not (args.members or args.contributions or args.rates):
        parser.error("import needs at least one of --members, --contributions, --rates")
    return args


_BATCH = ("migrate", "purge-transcripts", "notify", "import")  # run once, then exit


def _batch(command: str, args: argparse.Namespace,
           settings: Settings) -> Coroutine[Any, Any, int]:
    """The coroutine of a command that runs once and returns its exit code."""
    if command == "migrate":
        from app.commands import run_migrate

        return run_migrate(settings)
    if command == "purge-transcripts":
        from app.commands import run_purge

        return run_purge(settings)
    if command == "notify":
        from app.notify import run_notify

        return run_notify(settings, dry_run=args.dry_run)
    from app.commands import run_import

    return run_import(settings, args.members, args.contributions, args.rates)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` names (``console`` when none); returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from app.logsetup import configure_logging
    from app.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level)
    command = args.command or "console"
    if command == "classify":
        from app.commands import run_classify

        run_classify(sys.stdin)
        return 0
    if command == "verify-statement":
        from app.verify_cli import run_verify_statement

        return run_verify_statement(settings, args.file, sys.stdout)
    if command in _BATCH:
        return asyncio.run(_batch(command, args, settings))
    from app import tuning

    try:
        if command == "balance-service":
            from app.commands import run_balance_service

            asyncio.run(run_balance_service(settings, args.host, args.port))
        elif command == "telegram":
            from app.serve import run_telegram

            tuning.run(run_telegram(settings), loop=settings.event_loop)
        elif command == "serve":
            from app.serve import run_serve

            tuning.run(run_serve(settings, args.host, args.port), loop=settings.event_loop)
        else:
            from app.commands import run_console

            tuning.run(run_console(settings), loop=settings.event_loop)
    except KeyboardInterrupt:
        print()
    return 0
