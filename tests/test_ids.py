"""Ids are never handed out twice, and ids beyond a column's range are not found."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade

from app import crud
from app.crud import CrudService, NotFound, QueryError
from app.db import db
from app.models import DeletedRow, Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import TEST_DATABASE_URL, Hx, dispose, make_app
from tests.live_html import assert_fragment

INT4_MAX = 2**31 - 1
BEFORE = "0010_pg_trigram_fastupdate_off"
AUTOINCREMENT = "0011_sqlite_autoincrement_ids"
INT8_MAX = 2**63 - 1


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


# ------------------------------------------------------------ id ranges


def test_largest_id_is_the_smallest_range_of_the_id_columns() -> None:
    # issue 11: PostgreSQL's integer ids stop at 2**31 - 1, SQLite's at 2**63 - 1.
    assert crud.largest_id(Movie) == INT4_MAX
    assert crud.largest_id(Rating) == INT4_MAX


OUT_OF_RANGE = [INT4_MAX + 1, 99_999_999_999, INT8_MAX, INT8_MAX + 1, 10**30]


ROUTES = [
    ("GET", "/movies/{}/row"),
    ("GET", "/movies/{}/edit"),
    ("GET", "/movies/{}/ratings"),
    ("POST", "/movies/{}/ratings"),
    ("PATCH", "/movies/{}"),
    ("POST", "/movies/{}"),
    ("DELETE", "/movies/{}"),
    ("POST", "/movies/{}/delete"),
    ("GET", "/ratings/{}/row"),
    ("PATCH", "/ratings/{}"),
    ("DELETE", "/ratings/{}"),
    ("GET", "/movies/{}/ratings.csv"),
]


@pytest.mark.parametrize("row_id", OUT_OF_RANGE)
def test_path_id_out_of_range_is_404(client, sample: dict, row_id: int) -> None:
    # issue 11: an id beyond the column's range was a 500 (PostgreSQL "integer out
    # of range", SQLite OverflowError), for anonymous visitors too.
    data = {"version": "1", "name": "X", "rating": "7", "author": "Ana"}
    statuses = {
        (method, path, htmx): client.open(
            path.format(row_id),
            method=method,
            data=data,
            headers={"HX-Request": "true"} if htmx else {},
        ).status_code
        for method, path in ROUTES
        for htmx in (True, False)
    }
    assert statuses == dict.fromkeys(statuses, 404)


def test_path_id_at_the_bound_is_an_ordinary_404(client, sample: dict) -> None:
    # issue 11: the largest id the column holds is looked up like any other.
    assert client.get(f"/movies/{INT4_MAX}/row").status_code == 404
    assert client.get(f"/movies/{sample['alien']}/row").status_code == 200


@pytest.mark.parametrize("row_id", OUT_OF_RANGE)
def test_service_get_out_of_range_is_not_found(app: Flask, row_id: int) -> None:
    # issue 11: the service refuses ids the column cannot hold, for every caller.
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        with pytest.raises(NotFound):
            movies.get(row_id)
        with pytest.raises(NotFound):
            movies.trash(row_id)
        assert movies.lookups.stored_values([row_id], ["name"]) == {}
        ratings = CrudService(RATINGS, db.session)
        assert ratings.lookups.existing_references("movie_id", [row_id]) == set()


@pytest.mark.parametrize("value", [INT4_MAX + 1, INT8_MAX, INT8_MAX + 1, 10**30])
@pytest.mark.parametrize("path", ["/ratings", "/ratings.csv"])
def test_movie_id_filter_out_of_range_is_400(
    client, sample: dict, path: str, value: int
) -> None:
    # issue 11: ?movie_id= beyond the column's range was a 500.
    response = client.get(f"{path}?movie_id={value}")
    assert response.status_code == 400
    assert f"Movie id must be between 1 and {INT4_MAX}." in response.text


def test_movie_id_filter_message(app: Flask) -> None:
    # issue 11: the message names the range, whatever the number of digits.
    with app.app_context():
        ratings = CrudService(RATINGS, db.session)
        for value in (INT4_MAX + 1, 10**30):
            with pytest.raises(QueryError) as err:
                ratings.parse_query({"movie_id": str(value)})
            assert err.value.message == f"Movie id must be between 1 and {INT4_MAX}."
        assert ratings.parse_query({"movie_id": str(INT4_MAX)}).filters == {
            "movie_id": INT4_MAX
        }


@pytest.mark.parametrize("value", [INT4_MAX + 1, INT8_MAX + 1, 10**30])
def test_rating_for_a_movie_id_out_of_range_is_422(
    app: Flask, hx: Hx, sample: dict, value: int
) -> None:
    # issue 11: a new rating's movie id is held to the movies.id range too.
    response = hx.post(
        "/ratings", data={"rating": "7", "author": "Ana", "movie_id": str(value)}
    )
    assert response.status_code == 422
    assert f"Movie id must be between 1 and {INT4_MAX}." in response.text


@pytest.mark.parametrize("value", [INT4_MAX + 1, INT8_MAX + 1, "x"])
def test_bad_movie_id_in_current_url_is_ignored(
    app: Flask, client, sample: dict, value: object
) -> None:
    # issue 11: the page a write came from (HX-Current-URL) is only a hint.
    headers = {
        "HX-Request": "true",
        "HX-Current-URL": f"http://localhost/ratings?movie_id={value}",
    }
    with app.app_context():
        rating = db.session.scalars(sa.select(Rating.id)).first()
    response = client.post(
        "/ratings",
        data={"rating": "7", "author": "Eve", "movie_id": str(sample["alien"])},
        headers=headers,
    )
    assert response.status_code == 200
    response = client.patch(
        f"/ratings/{rating}", data={"rating": "5", "version": "1"}, headers=headers
    )
    assert response.status_code == 200
    response = client.delete(f"/ratings/{rating}", headers=headers)
    assert response.status_code == 200
