"""Alembic environment for the bot's database, async throughout.

Two ways in:
- ``storage.db.migrate()`` passes an open connection in ``config.attributes["connection"]``;
- the ``alembic`` command line connects to ``DATABASE_URL`` (or ``sqlalchemy.url``, or the
  embedded default ``sqlite:///./data/bot.db``) with the project's async engine.
SQLite migrations render as batch operations, since SQLite alters tables by copying them.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any, Literal

from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from alembic import context
from storage.db import DEFAULT_DATABASE_URL, async_url, create_engine
from storage.models import UtcDateTime  # importing it registers every table

config = context.config
target_metadata = SQLModel.metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)


def database_url() -> str:
    """The database the command line migrates."""
    return (os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
            or DEFAULT_DATABASE_URL)


def render_item(type_: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """Render the project's column types as plain SQLAlchemy types in new revisions."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def configure(**options: Any) -> None:
    """Configure the migration context with this project's autogenerate options."""
    context.configure(target_metadata=target_metadata, render_item=render_item,
                      compare_type=True, **options)


def run_migrations_offline() -> None:
    """Emit the SQL script instead of executing it (``alembic upgrade head --sql``)."""
    url = async_url(database_url())
    configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
              render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on an open connection."""
    configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    """Connect with the project's async engine and migrate."""
    engine = create_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Migrate the connection handed over by ``migrate()``, or connect ourselves."""
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
