"""Initial tables: chat links, consent records, audit log, reference members.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the tables of storage/models.py as of this revision."""
    op.create_table(
        "chat_link",
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("kpj", sa.String(length=11), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "chat_id", "kpj", name=op.f("pk_chat_link")),
    )
    op.create_table(
        "consent_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_record")),
    )
    op.create_index("ix_consent_record_chat", "consent_record", ["channel", "chat_id"])
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index(op.f("ix_audit_event_subject"), "audit_event", ["subject"])
    op.create_table(
        "member",
        sa.Column("kpj", sa.String(length=11), nullable=False),
        sa.Column("nik", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("segment", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("employer_npp", sa.String(length=12), nullable=True),
        sa.Column("employer_name", sa.String(length=128), nullable=True),
        sa.CheckConstraint("segment IN ('PU', 'BPU', 'PMI')", name=op.f("ck_member_segment")),
        sa.CheckConstraint("status IN ('active', 'inactive')", name=op.f("ck_member_status")),
        sa.PrimaryKeyConstraint("kpj", name=op.f("pk_member")),
    )
    op.create_index(op.f("ix_member_nik"), "member", ["nik"])


def downgrade() -> None:
    """Drop the tables again (and with them every link, consent record and audit line)."""
    op.drop_index(op.f("ix_member_nik"), table_name="member")
    op.drop_table("member")
    op.drop_index(op.f("ix_audit_event_subject"), table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index("ix_consent_record_chat", table_name="consent_record")
    op.drop_table("consent_record")
    op.drop_table("chat_link")
