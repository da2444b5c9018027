"""The helper processes of ``bench_whatsapp.py``: the database of ours, and the echo webhook.

    python bench/_whatsapp_harness.py prepare --database URL --secret S --first-wa N --linked M
    python bench/_whatsapp_harness.py echo --api-base URL --app-secret S --port P [--settle-heap]

``prepare`` makes the database ``run_bot.py serve`` then serves (a process of its own, so that
the bot's peak memory is that of serving): migrated, the demo members seeded, and a membership
of its own for each of the ``--linked`` WhatsApp chats (wa_id ``--first-wa + i``, KPJ
``9000000000i``, ten years of contributions imported from generated CSV files), linked to the
chat under ``--secret`` (the bot's ``OTP_SECRET``).

``echo`` is the bare baseline: an aiohttp app whose ``POST /whatsapp/webhook`` checks the
``X-Hub-Signature-256`` HMAC of the raw body, parses the JSON, answers 200 at once and sends
one text message per member message back through the (fake) Graph API with aiohttp's client,
in a background task (as ``run_bot.py serve`` does). It imports nothing of the project but
``app.tuning`` (the event loop and the heap setting), so its peak RSS is that of aiohttp.
It prints ``{"url": ...}`` once serving and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _serving import MONTHS, announce, log_warnings, until_terminated  # noqa: E402
from aiohttp import ClientSession, TCPConnector, web  # noqa: E402

from app import tuning  # noqa: E402 - light: the echo process imports no more of the project

WHATSAPP_PATH = "/whatsapp/webhook"  # run_bot.py serve's path (channels/whatsapp/web.py)
SIGNATURE_HEADER = "X-Hub-Signature-256"
CHANNEL = "whatsapp"


# --- prepare ------------------------------------------------------------------------------

async def prepare(args: argparse.Namespace) -> None:
    """Migrate, seed, import the generated memberships and link each chat to its own."""
    from bench_import import write_csvs

    from balance.importer import import_csv
    from balance.service import seed_default_rates, seed_demo_members
    from flows.types import SessionKey
    from storage.accounts import SqlAccountStore
    from storage.db import create_engine, migrate

    database = create_engine(args.database)
    try:
        await migrate(database)
        await seed_demo_members(database)
        await seed_default_rates(database)
        accounts = SqlAccountStore(database, args.secret.encode())
        members, contributions = write_csvs(args.workdir, args.linked, MONTHS)
        await import_csv(database, members=members, contributions=contributions)
        now = datetime.now(UTC)
        for i in range(args.linked):
            await accounts.link(SessionKey(CHANNEL, str(args.first_wa + i)), f"9{i:010d}", now)
    finally:
        await database.dispose()


# --- echo ---------------------------------------------------------------------------------

def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Meta's ``sha256=<hex>`` HMAC of the raw body, compared in constant time."""
    if not header:
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.strip().lower().encode(), expected.encode())


def member_messages(payload: Any) -> Iterator[tuple[str, str]]:
    """``(wa_id, text)`` of each member message of a notification (a button's title)."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return
    for entry in payload.get("entry") or ():
        for change in entry.get("changes") or ():
            for message in (change.get("value") or {}).get("messages") or ():
                kind = message.get("type")
                if kind == "text":
                    text = str(message["text"]["body"])
                elif kind == "interactive":
                    interactive = message["interactive"]
                    text = str(interactive[interactive["type"]].get("title", ""))
                else:
                    text = kind or "?"
                yield str(message["from"]), text or "?"


async def serve_echo(args: argparse.Namespace) -> None:
    """The bare echo webhook until SIGTERM."""
    secret = args.app_secret.encode()
    url = f"{args.api_base}/{args.phone_number_id}/messages"
    tasks: set[asyncio.Task[None]] = set()
    stats = {"received": 0, "sent": 0, "errors": 0}
    http = ClientSession(connector=TCPConnector(limit=100),
                         headers={"Authorization": f"Bearer {args.token}"})

    async def reply(wa_id: str, text: str) -> None:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id,
                "type": "text", "text": {"body": text}}
        try:
            async with http.post(url, json=body) as response:
                await response.read()
                stats["sent" if response.status == 200 else "errors"] += 1
        except OSError:
            stats["errors"] += 1

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        if not signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER)):
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "not a notification"}, status=400)
        for wa_id, text in member_messages(payload):
            stats["received"] += 1
            task = asyncio.create_task(reply(wa_id, text))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return web.json_response({"ok": True})

    async def stats_route(_: web.Request) -> web.Response:
        return web.json_response(stats)

    app = web.Application()
    app.router.add_post(WHATSAPP_PATH, webhook)
    app.router.add_get("/bench/stats", stats_route)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        if args.settle_heap:  # what run_bot.py serve does once it is serving
            tuning.settle_heap()
        announce(f"http://127.0.0.1:{args.port}")
        await until_terminated()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
    finally:
        await runner.cleanup()
        await http.close()


def main() -> None:
    """Prepare the database, or serve the echo webhook until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("prepare", "echo"))
    parser.add_argument("--database", default="", help="prepare: SQLAlchemy-style URL")
    parser.add_argument("--secret", default="", help="prepare: the bot's OTP_SECRET")
    parser.add_argument("--workdir", type=Path, default=Path("."),
                        help="prepare: where the generated CSV files go")
    parser.add_argument("--first-wa", type=int, default=6289900000000)
    parser.add_argument("--linked", type=int, default=0)
    parser.add_argument("--api-base", default="", help="echo: the Graph API base URL")
    parser.add_argument("--token", default="", help="echo: the Graph API token")
    parser.add_argument("--phone-number-id", default="")
    parser.add_argument("--app-secret", default="", help="echo: the webhook's app secret")
    parser.add_argument("--port", type=int, default=0, help="echo: the port to listen on")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--settle-heap", action="store_true",
                        help="echo: freeze the heap once serving, as run_bot.py serve does")
    args = parser.parse_args()
    log_warnings()
    if args.command == "prepare":
        asyncio.run(prepare(args))
        return
    tuning.run(serve_echo(args), loop=args.loop)


if __name__ == "__main__":
    main()
