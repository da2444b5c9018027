"""Contribution statements issued to chats, by verification code (``/verify/<code>``).

Only what the verification page shows is kept: initials, masked KPJ, period, total and the
issue time; the chat is a keyed pseudonym.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``statement_issues`` with an index on the chat's pseudonym."""
    op.create_table(
        "statement_issues",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("initials", sa.String(length=32), nullable=False),
        sa.Column("kpj_masked", sa.String(length=15), nullable=False),
        sa.Column("period_from", sa.String(length=7), nullable=False),
        sa.Column("period_to", sa.String(length=7), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_statement_issues")),
    )
    op.create_index(op.f("ix_statement_issues_subject"), "statement_issues", ["subject"])


def downgrade() -> None:
    """Drop ``statement_issues`` (issued codes then verify as unknown)."""
    op.drop_index(op.f("ix_statement_issues_subject"), table_name="statement_issues")
    op.drop_table("statement_issues")
