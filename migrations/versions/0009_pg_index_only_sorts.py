"""PostgreSQL: text sort indexes also hold their column, for index-only scans.

A deep page (rows 50,001-50,050 by name) finds its ids in the sort index and then
reads 50 rows (CrudService.items). PostgreSQL reads an expression index such as
lower(name) without the table only if the index also holds `name`; without it,
it visited 50,050 table rows (40 ms at 100,000 movies; 6 ms with it). SQLite reads
its indexes alone already, so nothing changes there.

Revision ID: 0009_pg_index_only_sorts
Revises: 0008_table_versions
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_pg_index_only_sorts"
down_revision = "0008_table_versions"
branch_labels = None
depends_on = None

# (index, table, column): each index is (lower(column), id).
INDEXES = (
    ("ix_movies_name_id", "movies", "name"),
    ("ix_ratings_author_id", "ratings", "author"),
    ("ix_ratings_movie_name_id", "ratings", "movie_name"),
)


def _recreate(include: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index, table, column in INDEXES:
        op.drop_index(index, table_name=table)
        op.create_index(
            index,
            table,
            [sa.text(f"lower({column})"), "id"],
            postgresql_include=[column] if include else [],
        )


def upgrade():
    _recreate(include=True)


def downgrade():
    _recreate(include=False)
