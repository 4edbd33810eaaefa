"""row_counts.version: bumped by every insert, update and delete (SQLite).

The count of a filtered view ("4,701 of 100,000") costs a search of its own, and
paging or re-sorting the view asks for the same count again. With a version that
changes on every write to the table, the service caches counts by (version,
filter) and a cached count is never stale (CrudService.count, CountCache).
PostgreSQL keeps no row_counts rows (see 0006), so it counts every time.

Revision ID: 0008_table_versions
Revises: 0007_search_walk_indexes
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_table_versions"
down_revision = "0007_search_walk_indexes"
branch_labels = None
depends_on = None

TABLES = ("movies", "ratings")


def _triggers(table: str, version: bool) -> None:
    bump = ", version = version + 1" if version else ""
    for event, change in (("insert", "n + 1"), ("delete", "n - 1")):
        op.execute(f"DROP TRIGGER IF EXISTS row_counts_{table}_{event}")
        op.execute(
            f"CREATE TRIGGER row_counts_{table}_{event}"
            f" AFTER {event.upper()} ON {table}"
            f" BEGIN UPDATE row_counts SET n = {change}{bump}"
            f" WHERE table_name = '{table}'; END"
        )


def upgrade():
    op.add_column(
        "row_counts",
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
    )
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        _triggers(table, version=True)
        op.execute(
            f"CREATE TRIGGER row_counts_{table}_update AFTER UPDATE ON {table} BEGIN"
            f" UPDATE row_counts SET version = version + 1"
            f" WHERE table_name = '{table}'; END"
        )


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds row_counts, which a trigger naming it would block.
        for table in TABLES:
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS row_counts_{table}_{event}")
    with op.batch_alter_table("row_counts") as batch:
        batch.drop_column("version")
    if sqlite:
        for table in TABLES:
            _triggers(table, version=False)
