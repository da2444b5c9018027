"""The alert queue on SQL, the embedded default's durable queue: its jobs and the alerts'
exactly-once marks.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``alert_job`` (ids never reused, also on SQLite) with its index, and
    ``alert_mark``."""
    op.create_table(
        "alert_job",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("enqueued_at", sa.Float(), nullable=False),
        sa.Column("consumer", sa.String(length=255), nullable=True),
        sa.Column("handed_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_job")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_job_waiting", "alert_job", ["channel", "consumer", "id"])
    op.create_table(
        "alert_mark",
        sa.Column("tag", sa.String(length=24), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=257), nullable=False),
        sa.PrimaryKeyConstraint("tag", "field", name=op.f("pk_alert_mark")),
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` created."""
    op.drop_table("alert_mark")
    op.drop_index("ix_alert_job_waiting", table_name="alert_job")
    op.drop_table("alert_job")
