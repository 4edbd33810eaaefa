"""Sign-ins kept on the server, so signing out ends them (issue 12).

A signed cookie alone cannot be taken back: a copy made before "Sign out" kept
working for its 31 days. Each sign-in now has a row here, which sign-out deletes
(all of a user's rows for "Sign out everywhere"), and an idle one expires.

Revision ID: 0013_user_sessions
Revises: 0012_movies_match_index
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_user_sessions"
down_revision = "0012_movies_match_index"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])


def downgrade():
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
