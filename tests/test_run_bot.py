"""The command line as an operator runs it: classify, the console end to end, the refusals."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.flows.conftest import SITI

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0
_SETTINGS = ("REDIS_URL", "DATABASE_URL", "BALANCE_SERVICE_URL", "OTP_OUTBOX", "OTP_SECRET",
             "DATA_DIR", "SEED_DEMO_MEMBERS", "LOG_LEVEL", "TELEGRAM_BOT_TOKEN",
             "SESSION_TTL_SECONDS", "FLOW_TIMEOUT_SECONDS", "PYTHONPATH")


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _SETTINGS}
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", **settings}


def _embedded(tmp_path: Path) -> dict[str, str]:
    return _env(DATA_DIR=str(tmp_path / "data"),
                DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
                SEED_DEMO_MEMBERS="true", OTP_OUTBOX=str(tmp_path / "outbox.jsonl"))


def _run(*args: str, stdin: str = "", env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "run_bot.py", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, encoding="utf-8",
                          env=env or _env(), timeout=TIMEOUT, check=False)


def test_classify_prints_one_json_line_per_input_line() -> None:
    result = _run("classify", stdin="cek saldo\nriwayat iuran bulan ini\nhalo 😀\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    answers = [json.loads(line) for line in lines]
    assert all(set(a) == {"text", "intent", "score"} for a in answers)
    assert [a["text"] for a in answers] == ["cek saldo", "riwayat iuran bulan ini", "halo 😀"]
    assert [a["intent"] for a in answers] == ["check_balance", "history", "greeting"]
    assert all(isinstance(a["score"], float | int) and 0 <= a["score"] <= 1 for a in answers)


def test_classify_reads_sms_commands_and_empty_lines() -> None:
    from run_bot import run_classify

    printed: list[str] = []
    run_classify(["SALDO 12345678901\r\n", "\n", "qwertyuiop"], printed.append)
    answers = [json.loads(line) for line in printed]
    assert [a["text"] for a in answers] == ["SALDO 12345678901", "", "qwertyuiop"]
    assert [a["intent"] for a in answers] == ["check_balance", "unknown", "unknown"]
    assert answers[0]["score"] == 1.0


def test_telegram_is_not_available_yet_and_exits_2() -> None:
    result = _run("telegram")
    assert result.returncode == 2
    assert "run_bot.py telegram: not available in this release yet." in result.stderr
    assert result.stdout == ""


def test_help_lists_the_commands() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for word in ("console", "classify", "migrate", "usage: run_bot.py"):
        assert word in result.stdout


def test_migrate_creates_the_tables(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    result = _run("migrate", env=_env(DATABASE_URL=f"sqlite:///{database}",
                                      DATA_DIR=str(tmp_path / "data")))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"chat_link", "consent_record", "audit_event", "member"} <= tables


def test_console_stops_at_end_of_input(tmp_path: Path) -> None:
    result = _run(stdin="", env=_embedded(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Type /quit to leave." in result.stdout
    assert "[1] Bahasa Indonesia" in result.stdout and "[2] English" in result.stdout


class Console:
    """``run_bot.py`` (the console) as a child process fed line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())
        await self.process.stdin.drain()

    async def read_until(self, marker: str) -> str:
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), TIMEOUT)
            assert raw, f"output ended before {marker!r}:\n" + "".join(self.seen)
            self.seen.append(raw.decode())
            if marker in self.seen[-1]:
                return self.seen[-1]


async def test_console_registers_the_demo_member_end_to_end(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", cwd=ROOT, env=_embedded(tmp_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    console = Console(process)
    try:
        await console.read_until("[2] English")
        for line in ("1", "/daftar", "1", SITI["nik"], SITI["kpj"], SITI["birth"],
                     SITI["phone"]):
            await console.type(line)
        await console.read_until("SMS ke 0812****7890")
        sent = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
        assert len(sent) == 1 and set(sent[0]) == {"to", "code", "sent_at"}
        assert sent[0]["to"] == "+6281234567890" and len(sent[0]["code"]) == 6
        await console.type(sent[0]["code"])
        await console.read_until("123*****901")
        await console.type("/quit")
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = "".join(console.seen) + out.decode()
    assert process.returncode == 0, err.decode()
    assert "SIMULATED SMS to 0812****7890" in text
    assert f"Kode verifikasi BPJS Ketenagakerjaan Anda: {sent[0]['code']}." in text
    assert "(deleted your last message)" in text
    assert SITI["nik"] not in text and SITI["kpj"] not in text, "identifiers are never echoed"
    assert "Traceback" not in err.decode()
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        links = conn.execute("SELECT channel, kpj FROM chat_link").fetchall()
    assert links == [("console", SITI["kpj"])]
