"""Support tickets for the human handoff, and their transcript lines.

A unique partial index keeps at most one ticket per chat that is not closed, so two
concurrent openings cannot both succeed (PostgreSQL and SQLite both support partial indexes).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_CLOSED = sa.text("status <> 'closed'")


def upgrade() -> None:
    """Create ``ticket`` and ``ticket_line`` with their indexes."""
    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("topic_id", sa.BigInteger(), nullable=True),
        sa.Column("agent", sa.String(length=128), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_agent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_member_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'open', 'closed')",
                           name=op.f("ck_ticket_status")),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_ticket_rating")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket")),
    )
    op.create_index("ix_ticket_chat_status", "ticket", ["channel", "chat_id", "status"])
    op.create_index("uq_ticket_active_chat", "ticket", ["channel", "chat_id"], unique=True,
                    sqlite_where=NOT_CLOSED, postgresql_where=NOT_CLOSED)
    op.create_index(op.f("ix_ticket_status"), "ticket", ["status"])
    op.create_index(op.f("ix_ticket_topic_id"), "ticket", ["topic_id"])
    op.create_table(
        "ticket_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("who", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("who IN ('member', 'bot', 'agent', 'note')",
                           name=op.f("ck_ticket_line_who")),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"],
                                name=op.f("fk_ticket_line_ticket_id_ticket"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_line")),
    )
    op.create_index("ix_ticket_line_ticket", "ticket_line", ["ticket_id", "id"])
    op.create_index(op.f("ix_ticket_line_at"), "ticket_line", ["at"])


def downgrade() -> None:
    """Drop both tables (and with them every ticket and transcript line)."""
    op.drop_index(op.f("ix_ticket_line_at"), table_name="ticket_line")
    op.drop_index("ix_ticket_line_ticket", table_name="ticket_line")
    op.drop_table("ticket_line")
    op.drop_index(op.f("ix_ticket_topic_id"), table_name="ticket")
    op.drop_index(op.f("ix_ticket_status"), table_name="ticket")
    op.drop_index("uq_ticket_active_chat", table_name="ticket")
    op.drop_index("ix_ticket_chat_status", table_name="ticket")
    op.drop_table("ticket")
