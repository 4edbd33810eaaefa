"""Migrations build the schema and are safe to extend: autogenerate sees no drift,
base leaves nothing, and ids are never handed out twice (0011).

Most tests migrate a database of their own (a new SQLite file, or a new
PostgreSQL schema), since they take the schema down and up again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import check, downgrade, upgrade

from app.crud import CrudService
from app.db import db
from app.models import DeletedRow, Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import (
    TEST_DATABASE_URL,
    Hx,
    dispose,
    make_app,
)
from tests.live_html import assert_fragment

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
def empty_app(empty_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on a database with no schema at all."""
    app = make_app(empty_database_url, tmp_path)
    yield app
    dispose(app)


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


# ------------------------------------------------------------ the schema at head


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


# ------------------------------------------------------------ ids (0011)

BEFORE = "0010_pg_trigram_fastupdate_off"
AUTOINCREMENT = "0011_sqlite_autoincrement_ids"


def ids(app: Flask, model: type) -> list[int]:
    """The table's ids, read straight from the database."""
    table = model.__table__
    with app.app_context(), db.engine.connect() as conn:
        return list(conn.scalars(sa.select(table.c.id).order_by(table.c.id)))


def stored(app: Flask, model: type, row_id: int) -> dict | None:
    """One row read straight from the database, or None."""
    table = model.__table__
    with app.app_context(), db.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == row_id)).first()
    return dict(row._mapping) if row else None


def add_movie(app: Flask, hx: Hx, name: str) -> int:
    """Add a movie through the app; return its id."""
    response = hx.post("/movies", data={"name": name, "director": "Someone"})
    assert response.status_code == 200
    with app.app_context():
        return db.session.scalar(sa.select(Movie.id).where(Movie.name == name))


def add_rating(app: Flask, hx: Hx, movie_id: int, author: str) -> int:
    """Add a rating through the app; return its id."""
    response = hx.post(
        "/ratings", data={"rating": "7", "author": author, "movie_id": str(movie_id)}
    )
    assert response.status_code == 200
    with app.app_context():
        return db.session.scalar(sa.select(Rating.id).where(Rating.author == author))


def undo_token(html: str) -> str:
    """The Undo token of a delete's toast."""
    return assert_fragment(html).find("input", name="token")["value"]


# ------------------------------------------------------------ ids are not reused


def test_deleted_newest_movie_id_is_not_reused(app: Flask, hx: Hx) -> None:
    # issue 11: SQLite gave the next movie the deleted newest movie's id, so a
    # stale editor's PATCH (version 1) overwrote an unrelated movie.
    add_movie(app, hx, "Older")
    newest = add_movie(app, hx, "Deleted")
    assert hx.delete(f"/movies/{newest}").status_code == 200
    fresh = add_movie(app, hx, "Unrelated")
    assert fresh > newest
    stale = hx.patch(f"/movies/{newest}", data={"name": "Stale", "version": "1"})
    assert stale.status_code == 404
    assert stored(app, Movie, fresh)["name"] == "Unrelated"
    assert stored(app, Movie, newest) is None


def test_deleted_newest_rating_id_is_not_reused(app: Flask, hx: Hx) -> None:
    # issue 11: the same for ratings, and for ratings deleted with their movie.
    movie = add_movie(app, hx, "Heat")
    add_rating(app, hx, movie, "Ana")
    newest = add_rating(app, hx, movie, "Bo")
    assert hx.delete(f"/ratings/{newest}").status_code == 200
    assert add_rating(app, hx, movie, "Cy") > newest
    cascaded = add_rating(app, hx, movie, "Di")
    assert hx.delete(f"/movies/{movie}").status_code == 200
    other = add_movie(app, hx, "Ran")
    assert add_rating(app, hx, other, "Ed") > cascaded


def test_undo_keeps_the_id_and_the_sequence_skips_it(app: Flask, hx: Hx) -> None:
    # issue 11: the deleted movie's undo failed for good once its id was reused.
    add_movie(app, hx, "Alien")
    trashed = add_movie(app, hx, "Brazil")
    rating = add_rating(app, hx, trashed, "Ana")
    token = undo_token(hx.delete(f"/movies/{trashed}").text)
    between = add_movie(app, hx, "Cure")
    assert between > trashed
    response = hx.post("/movies/undo", data={"token": token})
    assert response.status_code == 200
    assert stored(app, Movie, trashed)["name"] == "Brazil"
    assert stored(app, Rating, rating)["movie_id"] == trashed
    after = add_movie(app, hx, "Dune")
    assert after > between
    assert ids(app, Movie)[-3:] == [trashed, between, after]
    assert add_rating(app, hx, after, "Bo") > rating


def test_import_with_ids_does_not_rewind_the_sequence(app: Flask) -> None:
    # issue 11: an insert with explicit ids moved PostgreSQL's sequence to
    # max(id) + 1, below the id of a trashed row, which the next movie then took.
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        first = movies.create({"name": "A", "director": "X"}).id
        second = movies.create({"name": "B", "director": "X"}).id
        third = movies.create({"name": "C", "director": "X"}).id
        movies.trash(third)
        movies.trash(second)
        movies.bulk.load([{"id": second, "name": "B", "director": "X"}])
        fresh = movies.create({"name": "D", "director": "X"}).id
    assert fresh > third
    assert ids(app, Movie) == [first, second, fresh]


# ------------------------------------------------------------ what relies on ids


def test_search_finds_a_renamed_movie(app: Flask, hx: Hx) -> None:
    # issue 11: the search index triggers survive the id migration.
    movie = add_movie(app, hx, "Kagemusha")
    add_movie(app, hx, "Ran")
    response = hx.patch(f"/movies/{movie}", data={"name": "Dersu", "version": "1"})
    assert response.status_code == 200
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        assert [m.id for m in movies.list(movies.parse_query({"q": "ders"})).items] == [
            movie
        ]
        assert movies.list(movies.parse_query({"q": "kagem"})).items == []


def test_counts_and_cascade_stay_right(app: Flask, hx: Hx) -> None:
    # issue 11: the row count triggers and ON DELETE CASCADE survive the migration.
    first = add_movie(app, hx, "Alien")
    second = add_movie(app, hx, "Brazil")
    for author in ("Ana", "Bo"):
        add_rating(app, hx, first, author)
    add_rating(app, hx, second, "Cy")
    assert hx.delete(f"/movies/{first}").status_code == 200
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        ratings = CrudService(RATINGS, db.session)
        assert movies.count() == 1
        assert ratings.count() == 1
        left = db.session.scalars(sa.select(Rating.movie_id)).all()
        assert left == [second]


# ------------------------------------------------------------ the migration


def schema_sql(conn: sa.Connection, kind: str) -> dict[str, str]:
    """{name: CREATE statement} of the movie and rating tables' indexes or triggers."""
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = ?"
        " AND tbl_name IN ('movies', 'ratings') AND sql IS NOT NULL",
        (kind,),
    )
    return dict(rows.all())


def table_sql(conn: sa.Connection, name: str) -> str:
    """The CREATE TABLE statement SQLite keeps for a table."""
    return conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).scalar_one()


def everything(conn: sa.Connection) -> dict[str, list[tuple]]:
    """Every row of the tables the migration rebuilds or must leave alone."""
    return {
        table: conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1").all()
        for table in ("movies", "ratings", "row_counts", "deleted_rows")
    }


@pytest.fixture
def old_sqlite(tmp_path: Path) -> Iterator[Flask]:
    """An app on a SQLite file migrated to 0010 and holding rows, one deleted.

    Written with plain SQL, as the app of 0010 wrote them: today's service logs
    every write in a table (0017) that database does not have yet.
    """
    app = make_app("sqlite:///" + str(tmp_path / "old.sqlite3"), tmp_path)
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            tables = sa.MetaData()
            tables.reflect(conn, only=("movies", "ratings", "deleted_rows"))
            movies, ratings = tables.tables["movies"], tables.tables["ratings"]

            def add(table: sa.Table, **values: object) -> int:
                return conn.execute(sa.insert(table).values(**values)).lastrowid

            alien = add(movies, name="Alien", director="Ridley Scott", version=1)
            heat = add(movies, name="Heat", director="Michael Mann", version=1)
            ran = add(movies, name="Ran", director="Akira Kurosawa", version=1)
            for author, rating, movie, name in (
                ("Ana", 8, heat, "Heat"),
                ("Bo", 8, heat, "Heat"),
                ("Cy", 6, alien, "Alien"),
                ("Di", 9, ran, "Ran"),
            ):
                add(
                    ratings,
                    rating=rating,
                    author=author,
                    movie_id=movie,
                    movie_name=name,
                    version=1,
                )
            # The newest movie and its rating wait in the trash for an undo, in
            # the snapshot format of the time.
            row = conn.execute(sa.select(movies).where(movies.c.id == ran))
            children = conn.execute(sa.select(ratings).where(ratings.c.movie_id == ran))
            payload = {
                "table": "movies",
                "row": dict(row.mappings().one()),
                "children": {"ratings": [dict(r) for r in children.mappings()]},
                "owner": None,
            }
            conn.execute(sa.delete(ratings).where(ratings.c.movie_id == ran))
            conn.execute(sa.delete(movies).where(movies.c.id == ran))
            conn.execute(
                sa.insert(tables.tables["deleted_rows"]).values(
                    token="old-token",
                    table_name="movies",
                    payload=json.dumps(payload, default=lambda v: v.isoformat()),
                    expires_at=int(time.time()) + 600,
                )
            )
    yield app
    dispose(app)


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite only")
def test_migration_rebuilds_tables_with_autoincrement(old_sqlite: Flask) -> None:
    # issue 11: AUTOINCREMENT needs a rebuild that keeps everything else as it was.
    app = old_sqlite
    with app.app_context():
        with db.engine.connect() as conn:
            before = {
                "index": schema_sql(conn, "index"),
                "trigger": schema_sql(conn, "trigger"),
                "movies": table_sql(conn, "movies"),
                "ratings": table_sql(conn, "ratings"),
                "rows": everything(conn),
            }
        assert len(before["trigger"]) == 9  # 3 search, 3 + 3 row counts
        upgrade(revision=AUTOINCREMENT)
        with db.engine.connect() as conn:
            assert schema_sql(conn, "index") == before["index"]
            assert schema_sql(conn, "trigger") == before["trigger"]
            assert everything(conn) == before["rows"]
            for table in ("movies", "ratings"):
                assert "AUTOINCREMENT" in table_sql(conn, table)
            assert "ON DELETE CASCADE" in table_sql(conn, "ratings")
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            # Seeded past the ids still waiting in the trash, not only the table's.
            payload = json.loads(conn.scalar(sa.select(DeletedRow.payload)))
            seq = dict(conn.exec_driver_sql("SELECT * FROM sqlite_sequence").all())
            assert seq["movies"] == payload["row"]["id"]
            assert seq["ratings"] == payload["children"]["ratings"][0]["id"]
        upgrade()  # the rest at head, as the app runs

        movies = CrudService(MOVIES, db.session)
        ratings = CrudService(RATINGS, db.session)
        token = db.session.scalar(sa.select(DeletedRow.token))
        trashed = json.loads(db.session.scalar(sa.select(DeletedRow.payload)))
        fresh = movies.create({"name": "Brazil", "director": "Terry Gilliam"})
        assert fresh.id > trashed["row"]["id"]
        assert movies.undo(token).id == trashed["row"]["id"]
        # Search, counts, copied names and cascade all still work.
        heat = movies.list(movies.parse_query({"q": "heat"})).items[0]
        movies.update(heat.id, {"name": "Thief"}, heat.version)
        assert [
            m.name for m in movies.list(movies.parse_query({"q": "thie"})).items
        ] == ["Thief"]
        assert movies.list(movies.parse_query({"q": "heat"})).items == []
        assert movies.count() == 4
        assert ratings.count() == 4
        movies.trash(heat.id)
        assert movies.count() == 3
        assert ratings.count() == 2
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(Rating.movie_id == heat.id)
            )
            == 0
        )
        db.session.remove()


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite only")
def test_migration_downgrade_restores_the_previous_shape(old_sqlite: Flask) -> None:
    # issue 11: downgrading gives back the tables exactly as 0010 left them.
    app = old_sqlite
    with app.app_context():
        with db.engine.connect() as conn:
            before = {
                "index": schema_sql(conn, "index"),
                "trigger": schema_sql(conn, "trigger"),
                "movies": table_sql(conn, "movies"),
                "ratings": table_sql(conn, "ratings"),
                "rows": everything(conn),
            }
        upgrade(revision=AUTOINCREMENT)
        downgrade(revision=BEFORE)
        with db.engine.connect() as conn:
            after = {
                "index": schema_sql(conn, "index"),
                "trigger": schema_sql(conn, "trigger"),
                "movies": table_sql(conn, "movies"),
                "ratings": table_sql(conn, "ratings"),
                "rows": everything(conn),
            }
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert after == before
        upgrade()  # and up again
        db.session.remove()
