"""``run_bot.py notify [--dry-run]`` on the embedded default: the preview a newcomer sees, the
console chat's alerts printed once, the refusal when the feed is down."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from app.compose import open_database
from app.notify import run_notify
from app.settings import Settings
from domain.alerts import KINDS
from flows.alerts import ALERTS_VERSION
from flows.types import SessionKey
from storage.accounts import SqlAccountStore
from storage.alerts import SqlAlertStore
from tests.app.conftest import embedded_settings as _settings
from tests.app.test_cli import _env
from tests.flows.conftest import SITI, ManualClock

ROOT = Path(__file__).resolve().parents[2]
MORNING = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 10:00 in Jakarta
CONSOLE = SessionKey("console", "local")


async def _notify(settings: Settings, *, dry_run: bool = False,
                  at: datetime = MORNING) -> tuple[int, str]:
    lines: list[str] = []
    code = await run_notify(settings, dry_run=dry_run, write=lines.append,
                            clock=ManualClock(at))
    return code, "\n".join(lines)


async def _subscribe_console(settings: Settings) -> None:
    """The console chat linked to Siti and subscribed to every kind, as /daftar and the
    alerts offer leave it."""
    database = await open_database(settings.database)
    try:
        await SqlAccountStore(database, settings.secret()).link(CONSOLE, SITI["kpj"], MORNING)
        await SqlAlertStore(database).subscribe(CONSOLE, [k.value for k in KINDS],
                                                ALERTS_VERSION, MORNING)
    finally:
        await database.dispose()


async def test_a_dry_run_without_subscribers_previews_the_demo_members_alerts(
        tmp_path: Path) -> None:
    code, text = await _notify(_settings(tmp_path), dry_run=True)

    assert code == 0
    assert "No chat has subscribed to alerts yet" in text
    assert ("Iuran bulan September 2026 untuk KPJ 123*****901 belum tercatat, padahal "
            "perusahaan seharusnya membayarnya paling lambat tanggal 15 Oktober 2026.") in text
    assert "The contribution for September 2026 for KPJ 123*****901 is not recorded" in text
    assert "Iuran mandiri bulan Oktober 2026 untuk KPJ 345*****123 sudah masuk: Rp60.000." in text
    assert "456*****234" not in text, "Dewi is inactive: nothing is missing for her"
    assert SITI["kpj"] not in text


async def test_the_console_chats_alerts_are_printed_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    await _subscribe_console(settings)

    code, first = await _notify(settings)
    assert code == 0
    assert "missing console: planned 1" in first and "posted console: planned 1" in first
    assert "Iuran bulan Oktober 2026 untuk KPJ 123*****901 sudah masuk" in first
    assert "Iuran bulan September 2026 untuk KPJ 123*****901 belum tercatat" in first
    assert "console chat: sent 2" in first
    assert "No chat has subscribed" not in first

    _, second = await _notify(settings)  # a later pass, the next day: nothing twice
    assert "belum tercatat" not in second and "sudah masuk" not in second
    assert "already planned before: 1" in second


async def test_a_dry_run_prints_and_queues_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    await _subscribe_console(settings)

    _, dry = await _notify(settings, dry_run=True)
    assert "would plan 1" in dry and "-- console chat ****cal" not in dry
    assert "console chat **cal · KPJ 123*****901 · missing 2026-09 · id" in dry

    _, real = await _notify(settings)
    assert "console chat: sent 2" in real, "the dry run left nothing behind"


async def test_quiet_hours_do_not_hold_the_console(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    await _subscribe_console(settings)
    night = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # 23:00 in Jakarta

    _, text = await _notify(settings, at=night)
    assert "console chat: sent 2" in text


def test_notify_runs_from_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "run_bot.py", "notify", "--dry-run"], cwd=ROOT,
                            capture_output=True, text=True, encoding="utf-8",
                            env=_env(tmp_path), timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Contribution alerts for " in result.stdout
    assert "Traceback" not in result.stderr
