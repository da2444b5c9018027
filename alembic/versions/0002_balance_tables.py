"""Balance tables: employers, contributions, development rates; member.employer_name moves out.

The distinct (NPP, name) pairs of ``member`` become ``employer`` rows (one name per NPP: the
greatest, should the members disagree), ``member.employer_name`` is dropped and
``member.employer_npp`` becomes a foreign key to ``employer.npp``. The downgrade copies the
names back before dropping the new tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the balance tables and move employer names out of ``member``."""
    op.create_table(
        "employer",
        sa.Column("npp", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("npp", name=op.f("pk_employer")),
    )
    op.execute(sa.text("UPDATE member SET employer_npp = NULL WHERE employer_npp = ''"))
    op.execute(sa.text(
        "INSERT INTO employer (npp, name) "
        "SELECT employer_npp, COALESCE(MAX(employer_name), '') FROM member "
        "WHERE employer_npp IS NOT NULL GROUP BY employer_npp"))
    with op.batch_alter_table("member") as batch_op:
        batch_op.drop_column("employer_name")
        batch_op.alter_column("employer_npp", existing_type=sa.String(length=12),
                              type_=sa.String(length=8), existing_nullable=True)
        batch_op.create_foreign_key(op.f("fk_member_employer_npp_employer"), "employer",
                                    ["employer_npp"], ["npp"])
    op.create_table(
        "contribution",
        sa.Column("kpj", sa.String(length=11), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("wage", sa.Integer(), nullable=False),
        sa.Column("employer_part", sa.Integer(), nullable=False),
        sa.Column("employee_part", sa.Integer(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["kpj"], ["member.kpj"],
                                name=op.f("fk_contribution_kpj_member")),
        sa.PrimaryKeyConstraint("kpj", "period", name=op.f("pk_contribution")),
    )
    op.create_table(
        "development_rate",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rate_percent", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_development_rate")),
    )


def downgrade() -> None:
    """Drop the balance tables, copying the employer names back into ``member`` first."""
    op.drop_table("development_rate")
    op.drop_table("contribution")
    with op.batch_alter_table("member") as batch_op:
        batch_op.drop_constraint(op.f("fk_member_employer_npp_employer"), type_="foreignkey")
        batch_op.alter_column("employer_npp", existing_type=sa.String(length=8),
                              type_=sa.String(length=12), existing_nullable=True)
        batch_op.add_column(sa.Column("employer_name", sa.String(length=128), nullable=True))
    op.execute(sa.text(
        "UPDATE member SET employer_name = "
        "(SELECT employer.name FROM employer WHERE employer.npp = member.employer_npp)"))
    op.drop_table("employer")
