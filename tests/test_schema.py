"""Migrations build the schema; SQLite connections get their pragmas."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade

from app.db import db
from tests.conftest import TEST_DATABASE_URL, dispose, make_app


def index_names() -> set[str]:
    """All index names, including expression indexes SQLite's inspector skips."""
    if db.engine.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    with db.engine.connect() as conn:
        return set(conn.exec_driver_sql(sql).scalars())


def test_upgrade_creates_schema_on_empty_database(app: Flask) -> None:
    with app.app_context():
        inspector = sa.inspect(db.engine)
        assert {"movies", "ratings", "alembic_version"} <= set(
            inspector.get_table_names()
        )
        columns = {c["name"] for c in inspector.get_columns("movies")}
        assert columns == {
            "id",
            "name",
            "director",
            "rating",
            "version",
            "created_at",
            "updated_at",
        }
        columns = {c["name"] for c in inspector.get_columns("ratings")}
        assert {
            "id",
            "rating",
            "author",
            "movie_id",
            "movie_name",
            "version",
        } <= columns
        assert {
            "ix_movies_name_id",
            "ix_movies_director_search",
            "ix_movies_rating_search",
            "ix_ratings_movie_id_id",
            "ix_ratings_rating_id",
            "ix_ratings_author_id",
            "ix_ratings_movie_name_id",
        } <= index_names()
        (fk,) = inspector.get_foreign_keys("ratings")
        assert fk["options"].get("ondelete") == "CASCADE"


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite only")
def test_fresh_sqlite_file_upgrade_and_downgrade(tmp_path: Path) -> None:
    app = make_app("sqlite:///" + str(tmp_path / "new.sqlite3"), tmp_path)
    with app.app_context():
        upgrade()
        assert "movies" in sa.inspect(db.engine).get_table_names()
        downgrade(revision="base")
        assert "movies" not in sa.inspect(db.engine).get_table_names()
        upgrade()
        assert "ratings" in sa.inspect(db.engine).get_table_names()
    dispose(app)


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite only")
def test_sqlite_pragmas_on_every_connection(app: Flask) -> None:
    with app.app_context():
        for _ in range(2):
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -16384
            db.engine.dispose()


def test_postgresql_schema_when_configured(app: Flask) -> None:
    if not TEST_DATABASE_URL:
        pytest.skip(
            "PostgreSQL not configured: set TEST_DATABASE_URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test) to run the suite on it"
        )
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        # The trigram index that serves "contains" search exists only here.
        assert "ix_movies_name_trgm" in index_names()
