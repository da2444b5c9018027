"""The command line's contract: unknown flags refused, and a lean start for the console and
``classify`` (no channel library loaded)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import COMMANDS, build_parser, parse_args

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aiogram", "pywa", "aiohttp.web")  # what the console and classify must not import
_CLEARED = ("REDIS_URL", "DATABASE_URL", "BALANCE_SERVICE_URL", "OTP_OUTBOX", "OTP_SECRET",
            "DATA_DIR", "SEED_DEMO_MEMBERS", "LOG_LEVEL", "PYTHONPATH")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in _CLEARED and not k.upper().startswith(("TELEGRAM_", "WHATSAPP_"))}
    return {**env, "PYTHONIOENCODING": "utf-8", "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "SEED_DEMO_MEMBERS": "true"}


def _imported(tmp_path: Path, *args: str, stdin: str) -> set[str]:
    """The modules ``run_bot.py *args`` imports, read from ``python -X importtime``."""
    result = subprocess.run([sys.executable, "-X", "importtime", "run_bot.py", *args],
                            cwd=ROOT, input=stdin, capture_output=True, text=True,
                            encoding="utf-8", env=_env(tmp_path), timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rpartition("|")[2].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize(("args", "stdin"), [((), "/quit\n"), (("console",), ""),
                                             (("classify",), "cek saldo\n")])
def test_the_console_and_classify_import_no_channel_library(
        tmp_path: Path, args: tuple[str, ...], stdin: str) -> None:
    modules = _imported(tmp_path, *args, stdin=stdin)
    assert "flows.intents" in modules, "importtime output was read"
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert loaded == [], f"run_bot.py {' '.join(args)} imported {loaded}"


def test_classify_does_not_even_build_the_engine(tmp_path: Path) -> None:
    modules = _imported(tmp_path, "classify", stdin="halo\n")
    assert not {"flows.engine", "storage.db", "sqlalchemy"} & modules
    assert not (tmp_path / "bot.db").exists()


@pytest.mark.parametrize("argv", [
    ["--verbose"], ["console", "--port", "1"], ["classify", "extra"], ["serve", "--hots", "x"],
    ["import", "--members", "m.csv", "--dry-run"], ["nonsense"],
])
def test_an_unknown_flag_or_argument_is_an_error(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(argv)
    assert stopped.value.code == 2
    assert "usage: run_bot.py" in capsys.readouterr().err


def test_an_unknown_flag_stops_run_bot_with_exit_code_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "run_bot.py", "classify", "--json"], cwd=ROOT,
                            input="cek saldo\n", capture_output=True, text=True,
                            env=_env(tmp_path), timeout=60, check=False)
    assert result.returncode == 2
    assert "unrecognized arguments: --json" in result.stderr
    assert result.stdout == "", "nothing was classified"


def test_known_flags_still_parse() -> None:
    assert parse_args([]).command is None
    serve = parse_args(["serve", "--host", "127.0.0.1", "--port", "9000"])
    assert (serve.command, serve.host, serve.port) == ("serve", "127.0.0.1", 9000)
    service = parse_args(["balance-service"])
    assert (service.host, service.port) == ("127.0.0.1", 8081)
    imported = parse_args(["import", "--members", "m.csv", "--rates", "r.csv"])
    assert (imported.members, imported.contributions, imported.rates) == (
        Path("m.csv"), None, Path("r.csv"))


def test_import_without_a_file_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(["import"])
    assert stopped.value.code == 2
    assert "import needs at least one of" in capsys.readouterr().err


def test_every_command_is_in_the_parser_and_the_help() -> None:
    parser = build_parser()
    text = parser.format_help()
    for command in COMMANDS:
        assert command in text
        extra = {"import": ["--rates", "r.csv"], "verify-statement": ["s.pdf"]}
        assert parse_args([command, *extra.get(command, [])]).command == command
