"""OTP guard records: lock level, lock-until, wrong tries and codes sent per membership or chat.

They live in SQL so that a Redis flush or restart cannot reset a lock-out or a sending limit.
``subject`` is a keyed pseudonym (never a KPJ or chat id); ``version`` serves compare-and-set.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``otp_guard`` with its expiry index."""
    op.create_table(
        "otp_guard",
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("tries_at", sa.Float(), nullable=False),
        sa.Column("sends", sa.String(length=400), nullable=False),
        sa.Column("notified_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_otp_guard")),
    )
    op.create_index(op.f("ix_otp_guard_expires_at"), "otp_guard", ["expires_at"])


def downgrade() -> None:
    """Drop the table (every lock-out and sending limit is forgotten)."""
    op.drop_index(op.f("ix_otp_guard_expires_at"), table_name="otp_guard")
    op.drop_table("otp_guard")
