"""What the processes of ``bench_notify.py`` share: the day the pass plans for, the bot's
secret and token, and how a child process reports its own CPU and peak memory. Standard
library only, so that importing it adds nothing to a child's peak RSS."""

from __future__ import annotations

import json
import resource
import sys
from datetime import date
from pathlib import Path
from typing import Any

TODAY = date(2026, 11, 25)  # the pass's day: 2026-10 is past its due date plus grace
POSTED_PERIOD = "2026-10"  # the month's change feed (paid 2026-11-10, fresh on TODAY)
EARLIER_PERIOD = "2026-09"  # one earlier month each ("has a contribution before P")
DEVELOPMENT_YEAR = 2025  # the year the development pass announces on TODAY
SECRET = b"bench-notify"  # names the queue's marks
TOKEN = "123456:BENCH-notify-token"
KEY_PREFIX = "bench-notify:"  # every Redis key of the benchmark starts with it


def usage() -> dict[str, float]:
    """CPU seconds of this process (user and system), its peak RSS in MiB as
    ``ru_maxrss`` reports it and as Linux's ``VmHWM`` (this program image only)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"cpu_seconds": own.ru_utime + own.ru_stime,
               "user_seconds": own.ru_utime, "system_seconds": own.ru_stime,
               "maxrss_mb": own.ru_maxrss / 1024}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                figures["hwm_mb"] = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return figures


def emit(report: dict[str, Any]) -> None:
    """The child's result: one JSON line on stdout, read by ``bench_notify.py``."""
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
