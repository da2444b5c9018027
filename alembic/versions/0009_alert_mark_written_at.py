"""When each alert mark was last written, so that the SQL marks expire as the Redis ones do.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

import time
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``alert_mark.written_at`` (epoch seconds); the marks already there count as
    written now (they are kept ``MARK_TTL`` from the upgrade, not deleted at once)."""
    op.add_column("alert_mark", sa.Column("written_at", sa.Float(), nullable=False,
                                          server_default="0"))
    op.execute(sa.text("UPDATE alert_mark SET written_at = :now").bindparams(now=time.time()))


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    with op.batch_alter_table("alert_mark") as batch:
        batch.drop_column("written_at")
