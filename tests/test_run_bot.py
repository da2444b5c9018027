"""The command line as an operator runs it: classify, the console end to end, the refusals."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert all(set(a) == {"text", "intent", "score", "runner_up", "ask"} for a in answers)
    assert [a["text"] for a in answers] == ["cek saldo", "riwayat iuran bulan ini", "halo 😀"]
    assert [a["intent"] for a in answers] == ["check_balance", "history", "greeting"]
    assert all(isinstance(a["score"], float | int) and 0 <= a["score"] <= 1 for a in answers)


def test_classify_reads_sms_commands_and_empty_lines() -> None:
    from app.commands import run_classify

    printed: list[str] = []
    run_classify(["SALDO 12345678901\r\n", "\n", "qwertyuiop"], printed.append)
    answers = [json.loads(line) for line in printed]
    assert [a["text"] for a in answers] == ["SALDO 12345678901", "", "qwertyuiop"]
    assert [a["intent"] for a in answers] == ["check_balance", "unknown", "unknown"]
    assert answers[0]["score"] == 1.0


def test_classify_prints_the_runner_up_and_the_question_it_would_ask(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from app.commands import run_classify
    from flows import intents

    def torn(text: str) -> intents.Intent:
        return intents.Intent("check_balance", 0.45, runner_up="history", alternative="history")

    monkeypatch.setattr(intents, "classify", torn)
    printed: list[str] = []
    run_classify(["saldo atau riwayat"], printed.append)
    answer = json.loads(printed[0])
    assert (answer["intent"], answer["runner_up"], answer["ask"]) == (
        "check_balance", "history", "history")


def test_help_lists_the_commands() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for word in ("console", "classify", "migrate", "telegram", "serve", "usage: run_bot.py"):
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
        assert len(sent) == 1 and set(sent[0]) == {"to", "via", "code", "sent_at"}
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
    assert "(pesan terakhir Anda dihapus)" in text, "the console speaks the chat's language"
    assert SITI["nik"] not in text and SITI["kpj"] not in text, "identifiers are never echoed"
    assert "Traceback" not in err.decode()
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        links = conn.execute("SELECT channel, kpj FROM chat_link").fetchall()
    assert links == [("console", SITI["kpj"])]


def _write_import_files(folder: Path) -> tuple[Path, Path]:
    """One member with 27 months of contributions: 2016-10..2017-06 at Rp4,000,000, then
    Rp5,000,000 to 2018-12, each paid on the 10th of the next month."""
    members = folder / "members.csv"
    members.write_text(
        "kpj,nik,name,birth_date,phone,email,segment,status,employer_npp,employer_name\n"
        "67890123456,3201024707950002,Rina Marlina,1995-07-07,081299887766,"
        "rina@example.com,PU,active,87654321,PT Contoh Impor\n", encoding="utf-8")
    rows = ["kpj,period,wage,paid_on"]
    for year, month in [(2016, m) for m in (10, 11, 12)] + [(y, m) for y in (2017, 2018)
                                                             for m in range(1, 13)]:
        wage = 4_000_000 if (year, month) < (2017, 7) else 5_000_000
        paid = (year + 1, 1) if month == 12 else (year, month + 1)
        rows.append(f"67890123456,{year}-{month:02d},{wage},{paid[0]}-{paid[1]:02d}-10")
    contributions = folder / "contributions.csv"
    contributions.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return members, contributions


async def test_an_imported_member_registers_and_sees_the_hand_computed_balance(
        tmp_path: Path) -> None:
    """DATABASE_URL=sqlite:///x.db run_bot.py import ..., then run_bot.py on the same file.

    By hand (DOMAIN.md rule; 2016-2020 rates 7.19, 7.82, 6.26, 6.06, 5.63 %; 2021 onwards not
    published, so pending whenever the test runs after 2021):
    contributions: employer 3.7 % -> 148,000 / 185,000 a month, employee 2 % -> 80,000 /
    100,000: employer 9 x 148,000 + 18 x 185,000 = 4,662,000; employee 2,520,000.
    2016: 7.19 % x (3 x 228,000 weighted 2/12, 1/12, 0/12 = 57,000) = 4,098.3 -> 4,098
    2017: 7.82 % x (688,098 + 228,000 x 51/12 + 285,000 x 15/12 = 2,013,348) -> 157,444
    2018: 6.26 % x (3,923,542 + 285,000 x 66/12 = 5,491,042) -> 343,739
    2019: 6.06 % x 7,687,281 = 465,849.2 -> 465,849 (no contributions that year)
    2020: 5.63 % x 8,153,130 = 459,021.2 -> 459,021
    development 1,430,151; total 7,182,000 + 1,430,151 = 8,612,151.
    """
    members, contributions = _write_import_files(tmp_path)
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", DATA_DIR=str(tmp_path / "d"),
               OTP_OUTBOX=str(tmp_path / "outbox.jsonl"))
    imported = _run("import", "--members", str(members), "--contributions",
                    str(contributions), env=env)
    assert imported.returncode == 0, imported.stderr
    assert "contributions: 27 inserted" in imported.stdout
    again = _run("import", "--members", str(members), "--contributions", str(contributions),
                 env=env)
    assert "contributions: 0 inserted, 0 updated, 27 unchanged" in again.stdout
    process = await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    console = Console(process)
    try:
        await console.read_until("[2] English")
        for line in ("1", "/daftar", "1", "3201024707950002", "67890123456", "07-07-1995",
                     "081299887766"):
            await console.type(line)
        await console.read_until("SMS ke 0812****7766")
        code = json.loads((tmp_path / "outbox.jsonl").read_text().splitlines()[-1])["code"]
        await console.type(code)
        await console.read_until("678*****456")
        await console.type("cek saldo")
        total = await console.read_until("Total:")
        development = next(line for line in console.seen if "Hasil pengembangan" in line)
        await console.type("/quit")
        await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "Rp8.612.151" in total
    assert "Rp1.430.151" in development


def test_a_bad_import_row_is_named_and_nothing_is_imported(tmp_path: Path) -> None:
    members, _ = _write_import_files(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("kpj,period,wage,paid_on\n67890123456,2019-13,100,2020-01-01\n")
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", DATA_DIR=str(tmp_path / "d"))
    result = _run("import", "--members", str(members), "--contributions", str(bad), env=env)
    assert result.returncode == 1
    assert 'bad.csv, line 2, field "period"' in result.stderr
    with sqlite3.connect(tmp_path / "x.db") as conn:
        assert conn.execute("SELECT count(*) FROM member").fetchone() == (0,)
