"""Fixtures of the end-to-end tests: the fake Bot API server and one bot process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.harness import Harness, harness
from tests.fakes.bot_api import FakeBotApi


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    """The fake Bot API server on a free loopback port."""
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def tg(tmp_path: Path, fake: FakeBotApi) -> AsyncIterator[Harness]:
    """One bot process on the embedded backends (in-process store, SQLite)."""
    async with harness(tmp_path, fake=fake) as world:
        yield world
