"""The writing transaction's id on each change (issue 14's live polling).

PostgreSQL: `changes.xid xid8 NOT NULL DEFAULT pg_current_xact_id()` and an
index on it. A poll's cursor is the newest change id and the snapshot it was
read in; a change whose transaction was in flight in that snapshot is found
again by its xid once it commits, through this index
(app/crud/changelog.py, "live polling"). Rows logged before this revision get
xid 1 (the bootstrap transaction, older than any snapshot's xmin: visible to
all), added as a constant default so the table is not rewritten; the default
then becomes the writer's own id.

SQLite lets one writer in at a time, so change ids commit in order and the
column is never written: it is there (0, and an index that holds no row) only
so the model and the schema agree on both dialects (`flask db check`).

Revision ID: 0021_changes_xid
Revises: 0020_imports
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_changes_xid"
down_revision = "0020_imports"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE changes ADD COLUMN xid xid8 NOT NULL DEFAULT '1'")
        op.execute(
            "ALTER TABLE changes ALTER COLUMN xid SET DEFAULT pg_current_xact_id()"
        )
        op.create_index("ix_changes_xid", "changes", ["xid"])
        return
    op.add_column(
        "changes",
        sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_changes_xid", "changes", ["xid"], sqlite_where=sa.text("xid <> 0")
    )


def downgrade():
    op.drop_index("ix_changes_xid", table_name="changes")
    op.drop_column("changes", "xid")
