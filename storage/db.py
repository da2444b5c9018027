"""Database engines and migrations for SQLite (embedded default) and PostgreSQL (production).

``DATABASE_URL`` may be written the usual way (``sqlite:///./data/bot.db``,
``postgresql://user@host/db``); :func:`async_url` picks the async driver. :func:`migrate` runs
``alembic upgrade head`` in-process, against the repository's ``alembic/`` directory whatever the
working directory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.command import upgrade
from alembic.config import Config
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_DATABASE_URL = "sqlite:///./data/bot.db"
ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"

# What a failing database looks like: SQLAlchemy's wrapped driver errors, and the OS errors
# (refused connection, timeout) that drivers raise while connecting.
DB_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError)

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def async_url(url: str) -> str:
    """``url`` with the async driver of its database; explicit drivers are left alone."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    return f"{_ASYNC_DRIVERS.get(scheme, scheme)}://{rest}"


def create_engine(url: str = DEFAULT_DATABASE_URL) -> AsyncEngine:
    """An async engine for ``url``; creates the SQLite file's directory when needed."""
    # hide_parameters: error messages carry no bound values, so no chat id or NIK reaches a log.
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        _ensure_parent_dir(parsed.database)
        engine = create_async_engine(parsed, hide_parameters=True,
                                     connect_args={"timeout": 15})
        sa.event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return create_async_engine(
        parsed, hide_parameters=True, pool_pre_ping=True, pool_size=5, max_overflow=10,
        pool_recycle=1800, pool_timeout=10, connect_args=_pg_connect_args(parsed.drivername))


def immediate_reader(engine: AsyncEngine) -> ImmediateReader | None:
    """For a SQLite file, a :class:`ImmediateReader` of the same file, else ``None``.

    A read that SQLite answers from its page cache in tens of microseconds costs aiosqlite a
    hop to its thread and back for every cursor call, about ten times the query itself, so
    the reference balance service and the chat links read a local SQLite file in the event
    loop's own thread. WAL (set by :func:`create_engine`) lets those reads run beside a writer
    without waiting; ``query_only`` keeps this engine from writing, and a short busy timeout
    bounds how long a checkpoint could hold the event loop."""
    url = engine.url
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") \
            or database.startswith("file:"):
        return None
    reader = sa.create_engine(url.set(drivername="sqlite"), hide_parameters=True)
    sa.event.listen(reader, "connect", _configure_reader)
    return ImmediateReader(reader)


class ImmediateReader:
    """Synchronous reads of a SQLite file on one kept connection.

    Checking a connection out of the pool and wrapping it costs more than a small query
    (about 15 of 34 microseconds for a chat's links), and every read here runs to its end
    without yielding to the event loop, so one connection serves them all, one at a time.
    Each read ends with a rollback, so no read holds a snapshot of the file (or a checkpoint)
    past its own end. A read that fails closes the connection; the next opens a new one. A
    read nested in another (not done today) gets a connection of its own."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._kept: Connection | None = None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """The kept connection (or a new one) for one read."""
        connection, self._kept = self._kept or self.engine.connect(), None
        try:
            yield connection
            connection.rollback()
        except BaseException:
            connection.close()
            raise
        if self._kept is None:
            self._kept = connection
        else:
            connection.close()

    def dispose(self) -> None:
        """Close the kept connection and the engine's pool."""
        kept, self._kept = self._kept, None
        if kept is not None:
            kept.close()
        self.engine.dispose()


def _configure_reader(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=250")
    finally:
        cursor.close()


def _pg_connect_args(driver: str) -> dict[str, Any]:
    """Bounded connect and command times, so a dead server fails fast instead of hanging."""
    return {"timeout": 10, "command_timeout": 30} if driver.endswith("asyncpg") else {}


def _ensure_parent_dir(database: str | None) -> None:
    """Create the directory of a file database (not of ``:memory:`` or ``file:`` URIs)."""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Enforce foreign keys, use WAL so readers never block the writer, and overwrite deleted
    rows with zeros (an erased transcript must not linger in the file's free space)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0] not in ("memory", "wal"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


async def scrub(engine: AsyncEngine) -> None:
    """After an erasure on SQLite, fold the write-ahead log into the database file and empty
    it: the log still holds the pages as they were before the delete. Best effort (a reader
    in the middle of a transaction can keep some frames until the next erasure or checkpoint);
    nothing to do on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def alembic_config() -> Config:
    """An Alembic configuration for the repository's migrations, independent of the cwd."""
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("path_separator", "os")
    return config


async def migrate(target: AsyncEngine | str = DEFAULT_DATABASE_URL) -> None:
    """Bring the database at ``target`` (an engine or a URL) to the latest revision."""
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_head)
    finally:
        if isinstance(target, str):
            await engine.dispose()


def _upgrade_head(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    upgrade(config, "head")


def insert_ignoring_conflicts(dialect: str, model: Any, values: Mapping[str, Any]) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for ``dialect`` (``"sqlite"`` or ``"postgresql"``).

    The row count of the executed statement tells whether the row was new.
    """
    if dialect == "postgresql":
        return pg_insert(model).values(dict(values)).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(model).values(dict(values)).on_conflict_do_nothing()
    raise ValueError(f"unsupported database dialect: {dialect}")


@contextmanager
def translate_errors(error: type[Exception], operation: str) -> Iterator[None]:
    """Re-raise any database error inside the block as ``error``, chained.

    The message names only the operation and the error class: no personal data.
    """
    try:
        yield
    except DB_ERRORS as exc:
        raise error(f"database failed during {operation} ({type(exc).__name__})") from exc
