"""SQLite: movies and ratings ids are AUTOINCREMENT, so no id is ever handed out twice.

Without it SQLite gives a new row max(id) + 1: delete the newest movie and the next
one takes its id, so an editor still open on the deleted movie saves over the new
one, and the delete's Undo can never put the row back. AUTOINCREMENT keeps the
largest id ever used in sqlite_sequence instead. PostgreSQL's sequences never go
back already: nothing changes there.

SQLite cannot alter a column to AUTOINCREMENT, so both tables are rebuilt: renamed
aside, created anew, copied, dropped. Batch mode would drop `movies` while foreign
keys are on (Alembic runs each migration inside a transaction, where the pragma
cannot be turned off), and that cascades to every rating; renaming keeps them.
The indexes and triggers on the two tables (the FTS5 search index's, the row
counters') are read from sqlite_master first and replayed as they were, so
whatever earlier migrations made of them comes back exactly. sqlite_sequence is
seeded past the largest id in each table or waiting in deleted_rows for an Undo.
At 100,000 movies and 1,000,000 ratings the upgrade takes about 12 s, once.

Revision ID: 0011_sqlite_autoincrement_ids
Revises: 0010_pg_trigram_fastupdate_off
Create Date: 2026-11-30
"""

from alembic import op

revision = "0011_sqlite_autoincrement_ids"
down_revision = "0010_pg_trigram_fastupdate_off"
branch_labels = None
depends_on = None

# Column and constraint definitions as revision 0001 created them (and as SQLite
# keeps them in sqlite_master), the primary key apart.
COLUMNS = {
    "movies": (
        "name VARCHAR(200) NOT NULL",
        "director VARCHAR(120) NOT NULL",
        "rating FLOAT",
        "version INTEGER DEFAULT 1 NOT NULL",
        "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
        "updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
    ),
    "ratings": (
        "rating INTEGER NOT NULL",
        "author VARCHAR(80) NOT NULL",
        "movie_id INTEGER NOT NULL",
        "movie_name VARCHAR(200) NOT NULL",
        "version INTEGER DEFAULT 1 NOT NULL",
        "created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
        "updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL",
    ),
}
CONSTRAINTS = {
    "movies": (
        "CONSTRAINT ck_movies_name_nonblank"
        " CHECK (length(name) <= 200 AND trim(name) <> '')",
        "CONSTRAINT ck_movies_director_nonblank"
        " CHECK (length(director) <= 120 AND trim(director) <> '')",
        "CONSTRAINT ck_movies_rating_range CHECK (rating IS NULL OR (rating >= 0"
        " AND rating <= 10 AND rating * 10 = round(rating * 10)))",
    ),
    "ratings": (
        "CONSTRAINT ck_ratings_rating_range CHECK (rating >= 1 AND rating <= 10)",
        "CONSTRAINT ck_ratings_author_nonblank"
        " CHECK (length(author) <= 80 AND trim(author) <> '')",
        "CONSTRAINT ck_ratings_movie_name_nonblank"
        " CHECK (length(movie_name) <= 200 AND trim(movie_name) <> '')",
        "CONSTRAINT fk_ratings_movie_id_movies FOREIGN KEY(movie_id)"
        " REFERENCES movies (id) ON DELETE CASCADE",
    ),
}
# Parents first: a rating row can only be copied once its movie is there.
TABLES = ("movies", "ratings")


def _create_table(table: str, autoincrement: bool) -> None:
    """CREATE TABLE with the id as AUTOINCREMENT or as the plain rowid it was."""
    if autoincrement:
        # AUTOINCREMENT exists only as a column constraint, so the key moves there.
        head = [f"id INTEGER NOT NULL CONSTRAINT pk_{table} PRIMARY KEY AUTOINCREMENT"]
        key = []
    else:
        head = ["id INTEGER NOT NULL"]
        key = [f"CONSTRAINT pk_{table} PRIMARY KEY (id)"]
    parts = [*head, *COLUMNS[table], *key, *CONSTRAINTS[table]]
    # The layout SQLAlchemy gave revision 0001, so a downgrade restores its text.
    op.execute(f"CREATE TABLE {table} (\n\t" + ", \n\t".join(parts) + "\n)")


def _dependents() -> list[tuple[str, str, str]]:
    """(type, name, CREATE statement) of every index and trigger on the tables."""
    names = ", ".join(f"'{table}'" for table in TABLES)
    rows = op.get_bind().exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master"
        f" WHERE type IN ('index', 'trigger') AND tbl_name IN ({names})"
        # Automatic indexes (of UNIQUE constraints) have no SQL: they come back
        # with their table.
        " AND sql IS NOT NULL ORDER BY type, name"
    )
    return [(kind, name, sql) for kind, name, sql in rows]


def _rebuild(autoincrement: bool) -> None:
    """Recreate both tables around their rows, indexes and triggers."""
    dependents = _dependents()
    for kind, name, _sql in dependents:
        # Their names must be free for the new tables; the old would block them.
        op.execute(f"DROP {kind.upper()} {name}")
    for table in TABLES:
        # Renaming a parent rewrites its children's foreign keys to the new name,
        # so ratings_old follows movies_old and no rating is ever orphaned.
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
    for table in TABLES:
        _create_table(table, autoincrement)
        columns = ", ".join(["id", *(c.split(" ", 1)[0] for c in COLUMNS[table])])
        # No triggers on the new tables yet: the row counts and the search
        # index, which already hold these rows, are left alone.
        op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_old")
    for table in reversed(TABLES):
        # Children first: dropping movies_old while ratings_old refers to it
        # would run its ON DELETE CASCADE.
        op.execute(f"DROP TABLE {table}_old")
    for _kind, _name, sql in dependents:
        op.execute(sql)


def _seed_sequence(table: str) -> None:
    """Start the table's ids past every id it has, or has in the trash for Undo."""
    # deleted_rows holds JSON snapshots: the row under $.row, the rows deleted with
    # it under $.children.<table> (CrudService._snapshot).
    used = (
        f"SELECT id FROM {table}"
        " UNION ALL SELECT json_extract(payload, '$.row.id') FROM deleted_rows"
        f" WHERE table_name = '{table}'"
        " UNION ALL SELECT json_extract(child.value, '$.id') FROM deleted_rows,"
        f" json_each(deleted_rows.payload, '$.children.{table}') AS child"
    )
    op.execute(f"DELETE FROM sqlite_sequence WHERE name = '{table}'")
    op.execute(
        "INSERT INTO sqlite_sequence (name, seq)"
        f" SELECT '{table}', top FROM (SELECT max(id) AS top FROM ({used}))"
        " WHERE top IS NOT NULL"
    )


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=True)
    for table in TABLES:
        _seed_sequence(table)


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=False)
    for table in TABLES:
        op.execute(f"DELETE FROM sqlite_sequence WHERE name = '{table}'")
