"""``run_bot.py telegram`` and ``serve`` as an operator runs them, against the fake Bot API."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from app.serve import run_serve, run_telegram
from app.settings import Settings
from tests.e2e.harness import TOKEN, WEBHOOK_SECRET
from tests.fakes.bot_api import FakeBotApi

ROOT = Path(__file__).resolve().parents[2]
CHAT = 4440001
_CLEARED = ("REDIS_URL", "DATABASE_URL", "BALANCE_SERVICE_URL", "OTP_OUTBOX", "OTP_SECRET",
            "DATA_DIR", "SEED_DEMO_MEMBERS", "LOG_LEVEL", "PYTHONPATH", "WEB_HOST", "WEB_PORT")


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in _CLEARED and not k.upper().startswith("TELEGRAM_")}
    return {**env, "PYTHONUNBUFFERED": "1", "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "SEED_DEMO_MEMBERS": "true",
            "OTP_OUTBOX": str(tmp_path / "outbox.jsonl"), "TELEGRAM_BOT_TOKEN": TOKEN,
            **settings}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def running(command: str, env: dict[str, str],
                  ready: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The command started, once it printed ``ready``; stopped with SIGTERM afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", command, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            while ready not in (line := (await process.stdout.readline()).decode()):
                assert line, (await process.communicate())[1].decode()
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                await process.wait()


async def _until_sent(fake: FakeBotApi, count: int) -> list[str]:
    async with asyncio.timeout(20):
        while len(fake.sent_to(CHAT)) < count:
            await asyncio.sleep(0.05)
    return fake.sent_to(CHAT)


async def test_serve_registers_the_webhook_answers_and_reports_health(
        tmp_path: Path, fake: FakeBotApi) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    env = _env(tmp_path, TELEGRAM_API_BASE=fake.api_base, TELEGRAM_WEBHOOK_URL=url,
               TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET, WEB_HOST="127.0.0.1",
               WEB_PORT=str(port))
    async with running("serve", env, "serving on") as process:
        assert (fake.webhook_url, fake.webhook_secret) == (url, WEBHOOK_SECRET)
        assert {lang for _, lang in fake.methods.commands} == {"", "id", "en"}
        assert await fake.post_to_webhook(fake.message_update(CHAT, "/menu")) == 200
        assert await _until_sent(fake, 1) == ["Apa yang ingin Anda lakukan?"]
        assert await fake.post_to_webhook(fake.message_update(CHAT, "/menu"),
                                          secret="forged") == 401
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok", "database": "ok",
                                                  "balance_service": "ok"}
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert 'bot_updates_total{channel="telegram"} 1.0' in await response.text()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await process.wait() == 0


async def test_telegram_polls_for_updates_and_stops_on_a_signal(tmp_path: Path,
                                                                fake: FakeBotApi) -> None:
    fake.push_update(fake.message_update(CHAT, "/bantuan"))
    env = _env(tmp_path, TELEGRAM_API_BASE=fake.api_base)
    async with running("telegram", env, "long polling") as process:
        texts = await _until_sent(fake, 2)
        assert texts[-1] == "Apa yang ingin Anda lakukan?"
        assert fake.calls("deleteWebhook")
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            assert await process.wait() == 0


@pytest.mark.parametrize(("run", "settings", "message"), [
    (run_telegram, {"otp_outbox": ""}, "No way to send OTP codes is configured"),
    (run_serve, {"otp_outbox": ""}, "SMS_GATEWAY with SMS_GATEWAY_TOKEN and SMS_SENDER"),
    (run_serve, {"otp_channels": "pigeon"}, "OTP_CHANNELS names pigeon"),
    (run_serve, {"telegram_bot_token": ""}, "TELEGRAM_BOT_TOKEN must be set"),
    (run_serve, {"telegram_webhook_secret": ""}, "TELEGRAM_WEBHOOK_SECRET must be set"),
    (run_serve, {"telegram_webhook_secret": "has spaces"}, "TELEGRAM_WEBHOOK_SECRET must be"),
    (run_telegram, {"telegram_bot_token": "not-a-token"}, "does not look like a bot token"),
])
async def test_a_missing_setting_stops_the_start_with_a_clear_message(
        tmp_path: Path, run: Callable[[Settings], Awaitable[None]], settings: dict[str, str],
        message: str) -> None:
    values = {"telegram_bot_token": TOKEN, "telegram_webhook_secret": WEBHOOK_SECRET,
              "otp_outbox": str(tmp_path / "outbox.jsonl"), "data_dir": str(tmp_path),
              "database_url": f"sqlite:///{tmp_path / 'bot.db'}", **settings}
    with pytest.raises(SystemExit) as stopped:
        await run(Settings(_env_file=None, **values))
    assert message in str(stopped.value.code)
    assert not (tmp_path / "bot.db").exists()  # refused before touching anything
