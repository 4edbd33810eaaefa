"""Accounts: the users table (once it has a row, only signed-in users may write).

Revision ID: 0003_users
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_users"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "length(name) <= 80 AND trim(name) <> ''",
            name=op.f("ck_users_name_nonblank"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(
        "uq_users_name_lower", "users", [sa.text("lower(name)")], unique=True
    )


def downgrade():
    op.drop_index("uq_users_name_lower", table_name="users")
    op.drop_table("users")
