"""Engines and migrations: URL mapping, SQLite setup, Alembic history matching the models."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.command import downgrade, upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from storage.db import (
    ALEMBIC_DIR,
    alembic_config,
    async_url,
    create_engine,
    immediate_reader,
    migrate,
)

TABLES = {"alembic_version", "audit_event", "chat_link", "consent_record", "contribution",
          "development_rate", "employer", "member", "ticket", "ticket_line",
          "chat_preference", "otp_guard", "statement_issues",
          "contribution_change", "alert_subscription", "alert_cursor",
          "alert_job", "alert_mark"}
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///./data/bot.db", "sqlite+aiosqlite:///./data/bot.db"),
    ("sqlite:////var/lib/bot.db", "sqlite+aiosqlite:////var/lib/bot.db"),
    ("sqlite://", "sqlite+aiosqlite://"),
    ("postgresql://bot:pw@db:5432/bot", "postgresql+asyncpg://bot:pw@db:5432/bot"),
    ("postgres://bot@db/bot", "postgresql+asyncpg://bot@db/bot"),
    ("postgresql+asyncpg://bot@db/bot", "postgresql+asyncpg://bot@db/bot"),
    ("postgresql+psycopg://bot@db/bot", "postgresql+psycopg://bot@db/bot"),
    ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
])
def test_async_url_picks_the_async_driver(url: str, expected: str) -> None:
    assert async_url(url) == expected


async def test_sqlite_engine_creates_its_directory_and_enforces_foreign_keys(
        tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "bot.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("PRAGMA foreign_keys")) == 1
            assert await conn.scalar(sa.text("PRAGMA journal_mode")) == "wal"
    finally:
        await engine.dispose()
    assert path.is_file()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh, not yet migrated database (the migration tests migrate it)."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def test_migrate_is_idempotent_and_reversible(
        database_url: str, engine: AsyncEngine) -> None:
    await migrate(database_url)
    await migrate(database_url)
    assert await _state(engine) == (TABLES, HEAD)
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_to_base)
    assert await _state(engine) == ({"alembic_version"}, None)
    await migrate(engine)
    assert await _state(engine) == (TABLES, HEAD)


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.connect() as conn:
        differences = await conn.run_sync(_compare_with_models)
    assert differences == []


_MEMBER_0001 = ("INSERT INTO member (kpj, nik, name, birth_date, phone, email, segment, status, "
                "employer_npp, employer_name) VALUES (:kpj, '3171014501900001', 'X', "
                "'1990-01-05', '+6281234567890', '', :segment, 'active', :npp, :employer)")


async def test_0002_moves_employer_names_into_employer_and_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_run_alembic, upgrade, "0001")
        for kpj, npp, employer in (("11111111111", "12345678", "PT Satu"),
                                   ("22222222222", "12345678", "PT Satu"),
                                   ("33333333333", "87654321", "CV Dua")):
            await conn.execute(sa.text(_MEMBER_0001),
                               {"kpj": kpj, "segment": "PU", "npp": npp, "employer": employer})
        await conn.execute(sa.text(_MEMBER_0001), {"kpj": "44444444444", "segment": "BPU",
                                                   "npp": None, "employer": None})
    await migrate(engine)
    async with engine.connect() as conn:
        employers = (await conn.execute(sa.text("SELECT npp, name FROM employer "
                                                "ORDER BY npp"))).all()
        members = (await conn.execute(sa.text("SELECT kpj, employer_npp FROM member "
                                              "ORDER BY kpj"))).all()
        columns = await conn.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("member")})
    assert [tuple(row) for row in employers] == [("12345678", "PT Satu"), ("87654321", "CV Dua")]
    assert [row[1] for row in members] == ["12345678", "12345678", "87654321", None]
    assert "employer_name" not in columns
    async with engine.begin() as conn:
        await conn.run_sync(_run_alembic, downgrade, "0001")
    async with engine.connect() as conn:
        names = (await conn.execute(sa.text("SELECT kpj, employer_npp, employer_name FROM member "
                                            "ORDER BY kpj"))).all()
    assert [tuple(row) for row in names] == [
        ("11111111111", "12345678", "PT Satu"), ("22222222222", "12345678", "PT Satu"),
        ("33333333333", "87654321", "CV Dua"), ("44444444444", None, None)]


async def test_0009_keeps_the_marks_there_as_written_at_the_upgrade(
        engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_run_alembic, upgrade, "0008")
        await conn.execute(sa.text("INSERT INTO alert_mark (tag, field, value) "
                                   "VALUES ('t', 'posted:2026-10:k', 'd:sent')"))
    before = time.time()
    await migrate(engine)
    async with engine.connect() as conn:
        [(written_at,)] = (await conn.execute(sa.text("SELECT written_at FROM alert_mark"))).all()
    assert before - 1 <= written_at <= time.time() + 1
    async with engine.begin() as conn:
        await conn.run_sync(_run_alembic, downgrade, "0008")
    async with engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT tag, value FROM alert_mark"))).all() == [
            ("t", "d:sent")]


async def test_foreign_keys_hold_after_migration(engine: AsyncEngine) -> None:
    await migrate(engine)
    with pytest.raises(sa.exc.IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO contribution (kpj, period, wage, employer_part, employee_part, "
                "paid_on) VALUES ('99999999999', '2020-01', 1, 0, 0, '2020-02-10')"))
    with pytest.raises(sa.exc.IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(sa.text(_MEMBER_0001.replace(", employer_name", "")
                                       .replace(", :employer", "")),
                               {"kpj": "11111111111", "segment": "PU", "npp": "00000000"})


def test_alembic_command_line_environment_uses_database_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cli" / "bot.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    config = Config(str(ALEMBIC_DIR.parent / "alembic.ini"))
    config.attributes["configure_logger"] = False
    upgrade(config, "head")
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute(  # not SQLite's own (AUTOINCREMENT's)
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    conn.close()
    assert tables == TABLES


async def _state(engine: AsyncEngine) -> tuple[set[str], str | None]:
    async with engine.connect() as conn:
        return await conn.run_sync(_tables_and_revision)


def _tables_and_revision(connection: Connection) -> tuple[set[str], str | None]:
    tables = set(sa.inspect(connection).get_table_names())
    return tables, MigrationContext.configure(connection).get_current_revision()


def _downgrade_to_base(connection: Connection) -> None:
    _run_alembic(connection, downgrade, "base")


def _run_alembic(connection: Connection, command: Callable[[Config, str], None],
                 revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command(config, revision)


def _compare_with_models(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A SQLite file with one table ``t(n)``, written through the bot's async engine."""
    engine = create_engine(f"sqlite:///{tmp_path / 'reader.db'}")
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE t (n INTEGER)"))
    yield engine
    await engine.dispose()


async def test_the_immediate_reader_keeps_one_connection_and_sees_every_write(
        sqlite_file: AsyncEngine) -> None:
    reader = immediate_reader(sqlite_file)
    assert reader is not None
    try:
        seen, connections = [], set()
        for n in range(3):
            async with sqlite_file.begin() as conn:
                await conn.execute(sa.text("INSERT INTO t VALUES (:n)"), {"n": n})
            with reader.connect() as connection:
                seen.append(connection.scalar(sa.text("SELECT count(*) FROM t")))
                connections.add(id(connection.connection.dbapi_connection))
        assert seen == [1, 2, 3]  # no read keeps a snapshot of the file past its own end
        assert len(connections) == 1
        with reader.connect() as connection, pytest.raises(sa.exc.OperationalError):
            connection.execute(sa.text("INSERT INTO t VALUES (9)"))  # query_only
    finally:
        reader.dispose()


async def test_a_failed_read_closes_the_connection_and_the_next_read_opens_one(
        sqlite_file: AsyncEngine) -> None:
    reader = immediate_reader(sqlite_file)
    assert reader is not None
    try:
        with pytest.raises(sa.exc.OperationalError), reader.connect() as connection:
            connection.execute(sa.text("SELECT * FROM missing"))
        assert connection.closed
        with reader.connect() as again:
            assert again is not connection
            assert again.scalar(sa.text("SELECT count(*) FROM t")) == 0
        with reader.connect() as outer, reader.connect() as inner:  # nested: one each
            assert outer is again
            assert inner is not outer
        assert outer.closed  # one connection is kept, the other closed
        assert not inner.closed
    finally:
        reader.dispose()
    assert inner.closed


def test_only_a_sqlite_file_gets_an_immediate_reader() -> None:
    assert immediate_reader(create_engine("sqlite://")) is None
    assert immediate_reader(create_engine("postgresql://bot@127.0.0.1/bot")) is None
