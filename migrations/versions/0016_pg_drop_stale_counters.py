"""PostgreSQL: drop the row-count triggers the first 0006 left in older databases.

0006 first kept row_counts on PostgreSQL too, by statement-level triggers, and
was then rewritten to keep them on SQLite only (a hot counter row serialised
writers). Databases migrated in between still carry those triggers and their
functions: every insert and delete there still updates a row nobody reads, and
the counter rows are stale. This removes them (IF EXISTS: new databases never
had them). Downgrade leaves them gone: they were a mistake, not a schema state.

Revision ID: 0016_pg_drop_stale_counters
Revises: 0015_ratings_search_index
Create Date: 2026-11-30
"""

from alembic import op

revision = "0016_pg_drop_stale_counters"
down_revision = "0015_ratings_search_index"
branch_labels = None
depends_on = None

TABLES = ("movies", "ratings")
EVENTS = ("insert", "delete", "truncate")
FUNCTIONS = ("row_counts_inserted", "row_counts_deleted", "row_counts_truncated")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS row_counts_{table}_{event} ON {table}")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    # The service never reads counter rows on PostgreSQL; stale ones only mislead.
    op.execute("DELETE FROM row_counts")


def downgrade():
    pass
