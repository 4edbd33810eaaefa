"""The change log: one row per row a write changed, grouped by change set (issue 14).

Written by the CRUD service in the write's own transaction (app/crud/changes.py).
Kept small, as it grows with every edit: `at` is Unix milliseconds (6 bytes on
SQLite, not a 26-character timestamp), `old` and `new` hold only the changed
fields as compact JSON, and the id is SQLite's rowid (AUTOINCREMENT: an id is never
handed out twice, so "changes since id N" and a change set's id stay unambiguous
after a prune). Indexes: a row's history, a change set, a person's changes, and
the prune by time; "since id N" is the primary key.

Revision ID: 0017_changes
Revises: 0016_pg_drop_stale_counters
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_changes"
down_revision = "0016_pg_drop_stale_counters"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_changes_table_name": ["table_name", "row_id", "id"],
    "ix_changes_set_id": ["set_id"],
    "ix_changes_who": ["who", "id"],
    "ix_changes_at": ["at"],
}


def upgrade():
    op.create_table(
        "changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("set_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("who", sa.String(length=80), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("op", sa.String(length=6), nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "op IN ('create', 'update', 'delete')", name=op.f("ck_changes_op_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
        sqlite_autoincrement=True,
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "changes", columns)


def downgrade():
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="changes")
    op.drop_table("changes")
