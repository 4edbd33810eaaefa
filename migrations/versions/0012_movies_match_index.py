"""Movies: an index on (name, director), so an import matches rows without an id.

A CSV row without an id is matched to a movie by name and director, exactly (case
and accents count). No index served that: the lookup read every movie for each
batch of 2,000 rows, and a preview of 400,000 rows against 300,000 movies on
PostgreSQL would have taken about 70 minutes (issue 11). With this index each key
is one index probe, on SQLite and PostgreSQL alike.

Revision ID: 0012_movies_match_index
Revises: 0011_sqlite_autoincrement_ids
Create Date: 2026-11-30
"""

from alembic import op

revision = "0012_movies_match_index"
down_revision = "0011_sqlite_autoincrement_ids"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_movies_name_director", "movies", ["name", "director"])


def downgrade():
    op.drop_index("ix_movies_name_director", table_name="movies")
