"""Ratings searched through a trigram index as movies are; two letters searched too.

SQLite: ratings get an FTS5 trigram table over author and movie_name, kept in step
by triggers as movies_search is (revision 0002). Every write reaches them: the
ORM's, bulk inserts (seed, CSV import), the UPDATE that copies a renamed movie's
name into its ratings (row by row, each row's entry replaced) and the deletes a
movie's delete cascades to. Before, a search read the table: at 1,000,000 ratings
`/ratings?q=xqz&sort=movie_name` stepped through the whole name index, 3.1 s.

Both tables' indexes now also serve two-letter searches, which no trigram is short
enough to match. Every value is indexed with char(31) after it (a control character
no text field may hold), so every place two letters occur starts a trigram of the
index; CrudService looks those up in the index's own list of trigrams
(`<index>_terms`, an fts5vocab table) and matches any of them. A rare pair
(`/ratings?q=xq&sort=movie_name`, 3.3 s) is then a few lookups. The indexes are
contentless (content=''): they hold what the triggers put in, not the table's
values, so FTS5 never reads the table to rebuild or check them. columnsize=0: no
per-row token counts, which only ranking (never used) needs. At 100,000 movies and
1,000,000 ratings the upgrade takes about 20 s of CPU, once, and the file grows
from 262 to 426 MB.

PostgreSQL has had trigram GIN indexes on ratings.author and ratings.movie_name
since revision 0001 (fastupdate off since 0010): they are made here only if
missing. pg_trgm cannot serve two-letter patterns; the read timeout bounds those.

Revision ID: 0015_ratings_search_index
Revises: 0014_sign_in_failures
Create Date: 2026-12-01
"""

from alembic import op

revision = "0015_ratings_search_index"
down_revision = "0014_sign_in_failures"
branch_labels = None
depends_on = None

# index -> (table, searched columns): the `searchable` fields in app/resources.py.
INDEXES = {
    "movies_search": ("movies", ("name", "director")),
    "ratings_search": ("ratings", ("author", "movie_name")),
}
END = "char(31)"  # after each indexed value; Text fields refuse C0 controls

# (index, column) as revision 0001 named them.
POSTGRESQL = (
    ("ix_ratings_author_trgm", "author"),
    ("ix_ratings_movie_name_trgm", "movie_name"),
)

# movies_search as revision 0002 made it, for the downgrade.
MOVIES_0002 = [
    "CREATE VIRTUAL TABLE movies_search USING fts5("
    "name, director, content='movies', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER movies_search_insert AFTER INSERT ON movies BEGIN"
    " INSERT INTO movies_search(rowid, name, director)"
    " VALUES (new.id, new.name, new.director); END",
    "CREATE TRIGGER movies_search_delete AFTER DELETE ON movies BEGIN"
    " INSERT INTO movies_search(movies_search, rowid, name, director)"
    " VALUES ('delete', old.id, old.name, old.director); END",
    "CREATE TRIGGER movies_search_update AFTER UPDATE OF name, director ON movies"
    " BEGIN"
    " INSERT INTO movies_search(movies_search, rowid, name, director)"
    " VALUES ('delete', old.id, old.name, old.director);"
    " INSERT INTO movies_search(rowid, name, director)"
    " VALUES (new.id, new.name, new.director); END",
    "INSERT INTO movies_search(movies_search) VALUES ('rebuild')",
]


def _values(row: str, columns: tuple[str, ...]) -> str:
    """The indexed values of a row (`new`, `old` or a table): each with END after."""
    return ", ".join(f"{row}.{c} || {END}" for c in columns)


def _create(index: str, table: str, columns: tuple[str, ...]) -> list[str]:
    """The statements that make, fill and maintain one index."""
    names = ", ".join(columns)
    add = (
        f"INSERT INTO {index}(rowid, {names})"
        f" VALUES (new.id, {_values('new', columns)});"
    )
    # A contentless index deletes an entry given the very values it was given.
    remove = (
        f"INSERT INTO {index}({index}, rowid, {names})"
        f" VALUES ('delete', old.id, {_values('old', columns)});"
    )
    return [
        f"CREATE VIRTUAL TABLE {index} USING fts5({names},"
        " content='', columnsize=0, tokenize='trigram')",
        f"CREATE VIRTUAL TABLE {index}_terms USING fts5vocab({index}, 'row')",
        f"CREATE TRIGGER {index}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {index}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        # Only when a searched column is written: a rating's score edit leaves it.
        f"CREATE TRIGGER {index}_update AFTER UPDATE OF {names} ON {table}"
        f" BEGIN {remove} {add} END",
        f"INSERT INTO {index}(rowid, {names})"
        f" SELECT id, {_values(table, columns)} FROM {table}",
        # One segment instead of the many a long insert leaves: faster matches.
        f"INSERT INTO {index}({index}) VALUES ('optimize')",
    ]


def _drop(index: str) -> None:
    """Drop an index, its term list and its triggers."""
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {index}_{trigger}")
    op.execute(f"DROP TABLE IF EXISTS {index}_terms")
    op.execute(f"DROP TABLE IF EXISTS {index}")


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _drop("movies_search")  # revision 0002's, without the END marks
        for index, (table, columns) in INDEXES.items():
            for statement in _create(index, table, columns):
                op.execute(statement)
    elif dialect == "postgresql":
        for index, column in POSTGRESQL:
            op.execute(
                f"CREATE INDEX IF NOT EXISTS {index} ON ratings"
                f" USING gin ({column} gin_trgm_ops) WITH (fastupdate = off)"
            )


def downgrade():
    # PostgreSQL keeps its indexes: revision 0001 made them, not this one.
    if op.get_bind().dialect.name != "sqlite":
        return
    for index in INDEXES:
        _drop(index)
    for statement in MOVIES_0002:
        op.execute(statement)
