"""SQLite: an FTS5 trigram index over movies.name and movies.director.

It serves the case-insensitive "contains" search without scanning the table.
Triggers keep it in step with every insert, update and delete, inside the same
transaction. PostgreSQL gets the same from its pg_trgm indexes (revision 0001).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    "CREATE VIRTUAL TABLE movies_search USING fts5("
    "name, director, content='movies', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER movies_search_insert AFTER INSERT ON movies BEGIN"
    " INSERT INTO movies_search(rowid, name, director)"
    " VALUES (new.id, new.name, new.director); END",
    "CREATE TRIGGER movies_search_delete AFTER DELETE ON movies BEGIN"
    " INSERT INTO movies_search(movies_search, rowid, name, director)"
    " VALUES ('delete', old.id, old.name, old.director); END",
    "CREATE TRIGGER movies_search_update AFTER UPDATE OF name, director ON movies BEGIN"
    " INSERT INTO movies_search(movies_search, rowid, name, director)"
    " VALUES ('delete', old.id, old.name, old.director);"
    " INSERT INTO movies_search(rowid, name, director)"
    " VALUES (new.id, new.name, new.director); END",
    "INSERT INTO movies_search(movies_search) VALUES ('rebuild')",
]


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS movies_search_{trigger}")
    op.execute("DROP TABLE IF EXISTS movies_search")
