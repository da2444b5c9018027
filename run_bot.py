"""The bot's command line (the implementation is :mod:`app.cli`; the runtime is built by
:mod:`app.compose`).

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
"""

from __future__ import annotations

from app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
