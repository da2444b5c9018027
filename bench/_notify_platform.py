"""A minimal fake Telegram Bot API for ``bench_notify.py``, in a process of its own so that the
worker's CPU is the worker's.

    python bench/_notify_platform.py

Answers ``sendMessage`` (JSON or form body) with the message as Telegram returns it, any other
method with ``true``, and counts the calls; ``GET /stats`` reports the count and this process's
CPU. Prints ``{"url": ...}`` when ready and serves until SIGTERM. Unlike
``tests/fakes/bot_api.py`` it records nothing per call, so that the fake is never what limits
the rate measured.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _notify_common import usage  # noqa: E402
from _serving import announce, log_warnings, until_terminated  # noqa: E402
from aiohttp import web  # noqa: E402

CALLS = web.AppKey("calls", dict)


async def method(request: web.Request) -> web.Response:
    """One Bot API call: ``sendMessage`` answered with its message, anything else ``true``."""
    name = request.match_info["method"]
    calls: dict[str, int] = request.app[CALLS]
    calls[name] = calls.get(name, 0) + 1
    if name.lower() != "sendmessage":
        return web.json_response({"ok": True, "result": True})
    if request.content_type == "application/json":
        params: dict[str, Any] = json.loads(await request.read())
    else:
        params = dict(await request.post())
    result = {"message_id": calls[name], "date": int(time.time()),
              "chat": {"id": int(params["chat_id"]), "type": "private"},
              "text": str(params.get("text", ""))}
    return web.json_response({"ok": True, "result": result})


async def stats(request: web.Request) -> web.Response:
    """Calls by method, and this process's CPU seconds."""
    return web.json_response({"calls": request.app[CALLS], **usage()})


async def serve() -> None:
    """Serve on a free loopback port until terminated."""
    app = web.Application()
    app[CALLS] = {}
    app.router.add_post("/bot{token}/{method}", method)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    announce(f"http://127.0.0.1:{sock.getsockname()[1]}")
    try:
        await until_terminated()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    import asyncio

    log_warnings()
    asyncio.run(serve())
