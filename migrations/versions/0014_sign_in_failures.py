"""Failed sign-ins counted in the database, shared by every worker (issue 12).

Flask-Limiter counted them in each process's memory (per gunicorn worker) and
locked an account for everyone after a few failures from anywhere. The limits
now read this table: per account and address pair, per address, and per account
(which only slows sign-ins down).

Revision ID: 0014_sign_in_failures
Revises: 0013_user_sessions
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_sign_in_failures"
down_revision = "0013_user_sessions"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sign_in_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    op.create_index(
        "ix_sign_in_failures_account_address_at",
        "sign_in_failures",
        ["account", "address", "at"],
    )
    op.create_index(
        "ix_sign_in_failures_address_at", "sign_in_failures", ["address", "at"]
    )
    op.create_index(
        "ix_sign_in_failures_account_at", "sign_in_failures", ["account", "at"]
    )
    op.create_index("ix_sign_in_failures_at", "sign_in_failures", ["at"])


def downgrade():
    op.drop_index("ix_sign_in_failures_at", table_name="sign_in_failures")
    op.drop_index("ix_sign_in_failures_account_at", table_name="sign_in_failures")
    op.drop_index("ix_sign_in_failures_address_at", table_name="sign_in_failures")
    op.drop_index(
        "ix_sign_in_failures_account_address_at", table_name="sign_in_failures"
    )
    op.drop_table("sign_in_failures")
