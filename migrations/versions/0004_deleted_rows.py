"""deleted_rows: snapshots of deleted rows, so a delete can be undone for a while.

Revision ID: 0004
Revises: 0003_users
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003_users"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "deleted_rows",
        sa.Column("token", sa.String(length=43), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_deleted_rows")),
    )
    op.create_index("ix_deleted_rows_expires_at", "deleted_rows", ["expires_at"])


def downgrade():
    op.drop_index("ix_deleted_rows_expires_at", table_name="deleted_rows")
    op.drop_table("deleted_rows")
