"""Fixtures of the end-to-end tests: one bot process (the fake Bot API server, ``fake``, is
the shared one of ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.harness import Harness, harness
from tests.fakes.bot_api import FakeBotApi


@pytest.fixture
async def tg(tmp_path: Path, fake: FakeBotApi) -> AsyncIterator[Harness]:
    """One bot process on the embedded backends (in-process store, SQLite)."""
    async with harness(tmp_path, fake=fake) as world:
        yield world
