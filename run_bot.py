"""The bot's entry point: ``uv run run_bot.py [command]``; with no command, the console.

``uv run run_bot.py --help`` lists the commands (console, classify, telegram, serve, migrate,
balance-service, import, purge-transcripts); they are defined in :mod:`app.cli`, and the
runtime they serve on is built by :mod:`app.compose`.
"""

from __future__ import annotations

from app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
