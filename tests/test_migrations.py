"""Migrations are safe to extend: autogenerate sees no drift, base leaves nothing.

Each test migrates a database of its own (a new SQLite file, or a new PostgreSQL
schema), since it takes the schema down and up again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import check, downgrade, upgrade

from app.config import normalise_database_url
from app.db import db
from tests.conftest import (
    TEST_DATABASE_URL,
    dispose,
    make_app,
    postgres_schema_url,
    shared_extension,
)

# The counters 0006 created on PostgreSQL before it was rewritten to SQLite only:
# databases migrated then still carry these (names from that first version).
STALE_PG_FUNCTIONS = {
    "row_counts_inserted": "UPDATE row_counts SET n = n + (SELECT count(*)"
    " FROM new_rows) WHERE table_name = TG_TABLE_NAME;",
    "row_counts_deleted": "UPDATE row_counts SET n = n - (SELECT count(*)"
    " FROM old_rows) WHERE table_name = TG_TABLE_NAME;",
    "row_counts_truncated": "UPDATE row_counts SET n = 0"
    " WHERE table_name = TG_TABLE_NAME;",
}


@pytest.fixture
def empty_app(tmp_path: Path) -> Iterator[Flask]:
    """The app on a database with no schema at all."""
    if not TEST_DATABASE_URL:
        app = make_app("sqlite:///" + str(tmp_path / "empty.sqlite3"), tmp_path)
        yield app
        dispose(app)
        return
    schema = f"reeltable_migrations_{os.getpid()}"
    admin = sa.create_engine(normalise_database_url(TEST_DATABASE_URL))
    with admin.begin() as conn:
        shared_extension(conn, "pg_trgm")
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    app = make_app(postgres_schema_url(TEST_DATABASE_URL, schema), tmp_path)
    yield app
    dispose(app)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def leftovers() -> set[str]:
    """Every object in the app's schema but Alembic's own version table."""
    if db.engine.dialect.name == "sqlite":
        sql = (
            "SELECT type || ' ' || name FROM sqlite_master"
            " WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> 'alembic_version'"
        )
    else:
        # Tables, indexes, sequences and views (pg_class), functions (pg_proc),
        # triggers (pg_trigger) and types the schema owns.
        sql = """
            SELECT 'relation ' || c.relname FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace
              AND c.relname NOT IN ('alembic_version', 'pk_alembic_version',
                                    'alembic_version_pkc')
            UNION ALL
            SELECT 'function ' || p.proname FROM pg_proc p
            WHERE p.pronamespace = current_schema()::regnamespace
            UNION ALL
            SELECT 'trigger ' || t.tgname FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = current_schema()::regnamespace
              AND NOT t.tgisinternal
            UNION ALL
            SELECT 'type ' || t.typname FROM pg_type t
            WHERE t.typnamespace = current_schema()::regnamespace
              AND t.typrelid = 0 AND t.typelem = 0
        """
    with db.engine.connect() as conn:
        return set(conn.exec_driver_sql(sql).scalars())


def test_autogenerate_finds_nothing_to_change_at_head(empty_app: Flask) -> None:
    # Search tables (FTS5 and its shadow tables) and trigram indexes are made by
    # migrations alone; autogenerate used to offer to drop them.
    with empty_app.app_context():
        upgrade()
        check()  # `flask db check`: exits (SystemExit) when it finds a change


def test_downgrade_to_base_leaves_nothing_behind(empty_app: Flask) -> None:
    with empty_app.app_context():
        upgrade()
        assert "relation movies" in leftovers() or "table movies" in leftovers()
        downgrade(revision="base")
        assert leftovers() == set()
        upgrade()  # and the way back up still works
        check()


def test_stale_postgresql_counters_are_dropped(empty_app: Flask) -> None:
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL only: the stale counters were never made on SQLite")
    with empty_app.app_context():
        upgrade(revision="0015_ratings_search_index")
        with db.engine.begin() as conn:
            # What the first 0006 made, as a database migrated back then has it.
            for name, body in STALE_PG_FUNCTIONS.items():
                conn.exec_driver_sql(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql"
                    f" AS $$ BEGIN {body} RETURN NULL; END $$"
                )
            for table in ("movies", "ratings"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER row_counts_{table}_insert AFTER INSERT ON {table}"
                    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
                    " EXECUTE FUNCTION row_counts_inserted()"
                )
                conn.exec_driver_sql(
                    f"CREATE TRIGGER row_counts_{table}_delete AFTER DELETE ON {table}"
                    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
                    " EXECUTE FUNCTION row_counts_deleted()"
                )
                conn.exec_driver_sql(
                    f"CREATE TRIGGER row_counts_{table}_truncate AFTER TRUNCATE"
                    f" ON {table} FOR EACH STATEMENT"
                    " EXECUTE FUNCTION row_counts_truncated()"
                )
                conn.exec_driver_sql(
                    f"INSERT INTO row_counts (table_name, n) VALUES ('{table}', 0)"
                )
        assert {"function row_counts_inserted", "trigger row_counts_movies_insert"} <= (
            leftovers()
        )
        upgrade()
        stale = {x for x in leftovers() if "row_counts_" in x}
        assert stale == set()
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM row_counts").scalar() == 0
        check()
