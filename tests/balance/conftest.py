"""What the balance tests share: the reference service and the HTTP client in front of it,
served on loopback from one SQLite database with the demo members and the default rates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from balance.client import HttpBalanceService
from balance.http_app import create_app
from balance.service import ReferenceBalanceService, seed_default_rates, seed_demo_members
from storage.db import create_engine, migrate

TOKEN = "loopback-test-token"


@dataclass
class Both:
    """The service itself (``local``) and the HTTP client of its app (``remote``, at ``url``),
    to compare one answer both ways."""

    local: ReferenceBalanceService
    remote: HttpBalanceService
    url: str


@pytest.fixture
async def both(tmp_path: Path) -> AsyncIterator[Both]:
    engine = create_engine(f"sqlite:///{tmp_path}/balance.db")
    await migrate(engine)
    await seed_default_rates(engine)
    await seed_demo_members(engine)
    service = ReferenceBalanceService(engine)
    server = TestServer(create_app(service, token=TOKEN))
    await server.start_server()
    url = str(server.make_url("/"))
    client = HttpBalanceService(url, TOKEN, timeout=5.0)
    try:
        yield Both(service, client, url)
    finally:
        await client.aclose()
        await server.close()
        await engine.dispose()
