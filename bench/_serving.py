"""What the benchmarks' server processes (``_telegram_harness.py``, ``_whatsapp_harness.py``)
share. Standard library only: an echo process that imports it holds no more than before."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

MONTHS = 120  # contributions of each linked member (ten years)


def log_warnings() -> None:
    """Warnings and errors to stderr, each line naming the process."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="[%(process)d %(name)s] %(levelname)s %(message)s")


def announce(url: str) -> None:
    """Tell the load generator where the server listens: one JSON line on stdout."""
    sys.stdout.write(json.dumps({"url": url}) + "\n")
    sys.stdout.flush()


async def until_terminated() -> None:
    """Return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
