"""Contribution alerts: the reference service's change feed, chats' alert subscriptions, the
planner's cursors, and an index to find the chats linked to a KPJ.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``contribution_change``, ``alert_subscription``, ``alert_cursor`` and
    ``ix_chat_link_kpj``."""
    op.create_table(
        "contribution_change",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("kpj", sa.String(length=11), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_contribution_change")),
    )
    op.create_table(
        "alert_subscription",
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("subscribed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "chat_id", "kind", name=op.f("pk_alert_subscription")),
    )
    op.create_table(
        "alert_cursor",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_cursor")),
    )
    op.create_index("ix_chat_link_kpj", "chat_link", ["kpj"])


def downgrade() -> None:
    """Drop what :func:`upgrade` created."""
    op.drop_index("ix_chat_link_kpj", table_name="chat_link")
    op.drop_table("alert_cursor")
    op.drop_table("alert_subscription")
    op.drop_table("contribution_change")
