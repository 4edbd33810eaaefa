"""PostgreSQL's counter slots (migration 0018) stay exact, and pages read them.

Issue 15: "282 of 282 movies" without a count(*) of the whole table. The slots
must equal count(*) after every kind of write (single, cascade, bulk, import,
rollback, TRUNCATE) and under concurrent writers. PostgreSQL only.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from flask import Flask
from flask.testing import FlaskClient

from app import csvfile
from app.crud import CountCache, CrudService, schema
from app.crud.query import ListQuery
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import TEST_DATABASE_URL
from tests.live_html import parse

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="PostgreSQL only: SQLite keeps row_counts (0006)"
)
TABLES = ("movies", "ratings")
# Rows of the bulk-load measurement (PG_COUNTS_BULK_ROWS=1000000 for the growth size).
BULK_ROWS = int(os.environ.get("PG_COUNTS_BULK_ROWS", "100000"))


def slots(conn: sa.Connection, table: str) -> tuple[int, int, int]:
    """(sum(n), sum(version), slots) of a table's counter slots."""
    row = conn.execute(
        sa.text(
            "SELECT coalesce(sum(n), 0), coalesce(sum(version), 0), count(*)"
            " FROM row_count_slots WHERE table_name = :t"
        ),
        {"t": table},
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def totals() -> dict[str, tuple[int, int]]:
    """{table: (slots' total, count(*))}, read in a new transaction."""
    with db.engine.connect() as conn:
        return {
            t: (
                slots(conn, t)[0],
                int(conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) or 0),
            )
            for t in TABLES
        }


def assert_exact(movies: int, ratings: int) -> None:
    """Both tables' slots and count(*) equal the expected numbers."""
    assert totals() == {"movies": (movies, movies), "ratings": (ratings, ratings)}


@pytest.fixture
def svc(app: Flask) -> Iterator[CrudService[Movie]]:
    """The movies service, inside an app context."""
    with app.app_context():
        yield CrudService(MOVIES, db.session)


def add_movies(count: int, ratings_each: int = 0) -> list[int]:
    """Insert movies (and ratings) in one commit through the ORM; their ids."""
    movies = [Movie(name=f"Film {i:05}", director="Someone") for i in range(count)]
    db.session.add_all(movies)
    db.session.flush()
    db.session.add_all(
        Rating(rating=5, author=f"A{j}", movie_id=m.id)
        for m in movies
        for j in range(ratings_each)
    )
    db.session.commit()
    return [m.id for m in movies]


def test_every_table_has_sixteen_slots_starting_at_zero(app: Flask) -> None:
    # conftest TRUNCATEs between tests: the TRUNCATE trigger zeroes the slots.
    with app.app_context(), db.engine.connect() as conn:
        for table in TABLES:
            n, _version, count = slots(conn, table)
            assert (n, count) == (0, 16)


def test_creates_deletes_and_cascades(svc: CrudService[Movie]) -> None:
    ids = add_movies(5, ratings_each=3)
    assert_exact(5, 15)
    made = svc.create({"name": "Heat", "director": "Michael Mann", "rating": "8.3"})
    assert_exact(6, 15)
    ratings = CrudService(RATINGS, db.session)
    ratings.create({"movie_id": str(made.id), "rating": "7", "author": "Ana"})
    assert_exact(6, 16)
    # The database cascades a movie's ratings (ON DELETE CASCADE): those count too.
    svc.trash(ids[0])
    assert_exact(5, 13)
    token, _snapshot = svc.trash(ids[1])
    assert_exact(4, 10)
    svc.undo(token)
    assert_exact(5, 13)
    assert svc.count() == 5
    assert ratings.count() == 13


def test_bulk_insert_update_and_delete(svc: CrudService[Movie]) -> None:
    rows = [{"name": f"Bulk {i}", "director": "Someone"} for i in range(2500)]
    assert svc.bulk.load(rows, batch=1000) == 2500
    assert_exact(2500, 0)
    with db.engine.connect() as conn:
        before = slots(conn, "movies")[1]
    ids = list(db.session.scalars(sa.select(Movie.id).order_by(Movie.id)))
    with svc.transaction():
        svc.bulk.update_many(
            [(i, {"director": "Another"}) for i in ids[:700]], batch=300
        )
    with db.engine.connect() as conn:
        n, after, _ = slots(conn, "movies")
    # An edit changes no total, but the version (filtered counts may change).
    assert n == 2500
    assert after > before
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM movies WHERE id <= :top"), {"top": ids[999]})
    assert_exact(1500, 0)


def test_an_import_counts(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    lines = [f",Imported {i},Someone,{i % 10}" for i in range(300)]
    path.write_text("id,name,director,rating\r\n" + "\r\n".join(lines) + "\r\n")
    with app.app_context():
        result = csvfile.import_file(CrudService(MOVIES, db.session), path)
        assert result.counts["new"] == 300
        assert_exact(300, 0)


def test_rollbacks_and_savepoints_count_nothing(svc: CrudService[Movie]) -> None:
    add_movies(3)
    with db.engine.connect() as conn:
        version = slots(conn, "movies")[1]
    with db.engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO movies (name, director) VALUES ('X', 'Y')"))
        conn.rollback()
    assert_exact(3, 0)
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO movies (name, director) VALUES ('A', 'B')"))
        inner = conn.begin_nested()
        conn.execute(sa.text("INSERT INTO movies (name, director) VALUES ('C', 'D')"))
        conn.execute(sa.text("DELETE FROM movies WHERE name LIKE 'Film%'"))
        inner.rollback()
        # The first write of a transaction inside a savepoint that rolls back.
    with db.engine.begin() as conn:
        inner = conn.begin_nested()
        conn.execute(sa.text("INSERT INTO movies (name, director) VALUES ('E', 'F')"))
        inner.rollback()
        conn.execute(sa.text("INSERT INTO movies (name, director) VALUES ('G', 'H')"))
    assert_exact(5, 0)
    with db.engine.connect() as conn:
        assert slots(conn, "movies")[1] == version + 2
    # A service write that fails rolls back its count with it.
    with pytest.raises(RuntimeError), svc.transaction():
        svc.bulk.insert_many([{"name": "Lost", "director": "Nobody"}])
        raise RuntimeError("after the insert")
    assert_exact(5, 0)


def test_truncate_in_a_transaction_and_a_writer_counts_its_own_rows(
    svc: CrudService[Movie],
) -> None:
    add_movies(4, ratings_each=1)
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO movies (name, director) VALUES ('A', 'B')"))
        conn.execute(sa.text("TRUNCATE movies, ratings"))
        conn.execute(sa.text("INSERT INTO movies (name, director) VALUES ('C', 'D')"))
    assert_exact(1, 0)
    # Inside a write, the total includes its uncommitted rows, as on SQLite.
    with svc.transaction():
        svc.bulk.insert_many([{"name": f"N{i}", "director": "D"} for i in range(3)])
        assert svc.count() == 4
    assert svc.count() == 4


def test_a_writer_whose_search_path_lacks_the_schema_is_counted(app: Flask) -> None:
    # psql, a loader or another app may name the table with its schema.
    with app.app_context():
        with db.engine.begin() as conn:
            schema_name = conn.scalar(sa.text("SELECT current_schema()"))
            conn.execute(sa.text("SET LOCAL search_path = pg_catalog"))
            conn.execute(
                sa.text(
                    f'INSERT INTO "{schema_name}".movies (name, director)'
                    " VALUES ('Qualified', 'Someone')"
                )
            )
        assert_exact(1, 0)


def test_concurrent_writers_stay_exact(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
        add_movies(50)
        errors: list[BaseException] = []

        def writer(seed: int) -> None:
            """Insert and delete movies and ratings at random, some rolled back."""
            rnd = random.Random(seed)
            try:
                with engine.connect() as conn:
                    for step in range(60):
                        with conn.begin() as tx:
                            n = rnd.randint(1, 5)
                            conn.execute(
                                sa.text(
                                    "INSERT INTO movies (name, director)"
                                    " SELECT 'W' || :s || '-' || :i || '-' || g, 'W'"
                                    " FROM generate_series(1, :n) g"
                                ),
                                {"s": seed, "i": step, "n": n},
                            )
                            conn.execute(
                                sa.text(
                                    "INSERT INTO ratings (rating, author, movie_id,"
                                    " movie_name) SELECT 5, 'w', id, name FROM movies"
                                    " WHERE name LIKE :p"
                                ),
                                {"p": f"W{seed}-{step}-%"},
                            )
                            # Delete a few rows (and their ratings, by cascade);
                            # SKIP LOCKED: writers never wait on each other's rows.
                            conn.execute(
                                sa.text(
                                    "DELETE FROM movies WHERE id IN (SELECT id FROM"
                                    " movies ORDER BY random() LIMIT :k"
                                    " FOR UPDATE SKIP LOCKED)"
                                ),
                                {"k": rnd.randint(0, 3)},
                            )
                            if rnd.random() < 0.2:
                                tx.rollback()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(s,)) for s in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        counted = totals()
    for table in TABLES:
        kept, real = counted[table]
        assert kept == real
    assert counted["movies"][1] > 50  # the writers wrote


def test_cached_filtered_counts_stay_exact_under_8_writers(app: Flask) -> None:
    # The count cache keys a filtered count by sum(version) over the slots
    # (Dialect.counter_version). Readers in REPEATABLE READ see one snapshot for
    # all their statements: the count served (from the cache, stored by any
    # reader under that version, or counted) must equal the uncached count of
    # the same snapshot, whatever the 8 writers commit or roll back meanwhile.
    counts = CountCache()
    # A filter, not a search: the count cache serves both alike, and a filter
    # keeps this test about the cache, not about how text is matched.
    query = ListQuery(filters={"min_rating": 5})
    with app.app_context():
        engine = db.engine
        add_movies(40)
    errors: list[BaseException] = []
    checked: list[tuple[int, int]] = []
    done = threading.Event()

    def writer(seed: int) -> None:
        """Insert, re-rate and delete movies at random, some rolled back."""
        rnd = random.Random(seed)
        try:
            with engine.connect() as conn:
                for step in range(40):
                    with conn.begin() as tx:
                        conn.execute(
                            sa.text(
                                "INSERT INTO movies (name, director, rating)"
                                " SELECT 'W' || :s || '-' || :i || '-' || g, 'W',"
                                " (g + :i) % 10 FROM generate_series(1, :n) g"
                            ),
                            {"s": seed, "i": step, "n": rnd.randint(1, 4)},
                        )
                        conn.execute(
                            sa.text(
                                "UPDATE movies SET rating = CASE WHEN rating >= 5"
                                " THEN 1 ELSE 9 END, version = version + 1"
                                " WHERE id IN (SELECT id FROM movies"
                                " ORDER BY random() LIMIT :k FOR UPDATE SKIP LOCKED)"
                            ),
                            {"k": rnd.randint(0, 2)},
                        )
                        conn.execute(
                            sa.text(
                                "DELETE FROM movies WHERE id IN (SELECT id FROM"
                                " movies ORDER BY random() LIMIT :k"
                                " FOR UPDATE SKIP LOCKED)"
                            ),
                            {"k": rnd.randint(0, 2)},
                        )
                        if rnd.random() < 0.2:
                            tx.rollback()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader() -> None:
        """Compare the cached count with the uncached one, snapshot by snapshot."""
        try:
            with app.app_context():
                while not done.is_set() or len(checked) < 20:
                    db.session.remove()
                    db.session.connection(
                        execution_options={"isolation_level": "REPEATABLE READ"}
                    )
                    served = CrudService(MOVIES, db.session, counts=counts)
                    uncached = CrudService(MOVIES, db.session)
                    checked.append((served.count(query), uncached.count(query)))
                    db.session.rollback()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(s,)) for s in range(8)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert [pair for pair in checked if pair[0] != pair[1]] == []
    assert len(counts._counts) > 1  # counts were cached under several versions
    assert len({uncached for _, uncached in checked}) > 1  # the writers wrote
    with app.app_context():
        final = CrudService(MOVIES, db.session, counts=counts).count(query)
        real = db.session.scalar(
            sa.text("SELECT count(*) FROM movies WHERE rating >= 5")
        )
        assert final == real


def test_a_page_view_counts_nothing_of_the_whole_table(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        add_movies(30, ratings_each=2)
        statements: list[str] = []

        def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            """Keep each statement the app sends."""
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", capture)
        try:
            page = client.get("/movies")
            # One match whether words are matched apart (issue 15) or as one text.
            searched = client.get("/movies?q=Film%2000012")
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", capture)
    assert parse(page.text).by_id("movie-count").text == "30 of 30 movies"
    assert parse(searched.text).by_id("movie-count").text == "1 of 30 movies"
    counts = [s for s in statements if re.search(r"count\(\*\)", s, re.I)]
    assert any("row_count_slots" in s for s in counts), statements
    for statement in counts:
        # Only counts of matches (a WHERE), or the slots, or per-movie figures.
        whole = re.search(r"FROM (movies|ratings)\b(?![^)]*WHERE)", statement, re.I)
        assert not whole or "row_count_slots" in statement, statement


def test_every_write_raises_the_version_and_filtered_counts_follow(
    app: Flask,
) -> None:
    def version() -> int:
        """sum(version) over the movies' slots, committed."""
        with db.engine.connect() as conn:
            return slots(conn, "movies")[1]

    with app.app_context():
        add_movies(12)
        svc = CrudService(MOVIES, db.session, counts=CountCache())
        query = ListQuery(q="Film 0000")
        assert svc.list(query).total == 10
        db.session.commit()
        seen = version()
        made = svc.create({"name": "Film 00009b", "director": "X"})
        assert version() > seen
        seen = version()
        assert svc.list(query).total == 11
        db.session.commit()
        svc.update(made.id, {"name": "Renamed"}, version=made.version)
        assert version() > seen
        seen = version()
        assert svc.list(query).total == 10
        db.session.commit()
        svc.trash(1)
        assert version() > seen
        assert svc.list(query).total == 9
        db.session.commit()
        # A statement that changes no row is no write.
        seen = version()
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE movies SET name = 'x' WHERE id < 0"))
        assert version() == seen


def test_the_helpers_make_what_0018_made(app: Flask) -> None:
    # A declared table's migration calls schema.create_row_counter: on
    # PostgreSQL it must make the same triggers and seed the slots exactly.
    def made(conn: sa.Connection) -> set[tuple[Any, ...]]:
        """The movies' counter triggers (name, definition) and slot rows."""
        triggers = conn.execute(
            sa.text(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
                " WHERE tgrelid = 'movies'::regclass AND NOT tgisinternal"
            )
        )
        rows = conn.execute(
            sa.text(
                "SELECT slot, n FROM row_count_slots WHERE table_name = 'movies'"
                " AND n <> 0"
            )
        )
        return {tuple(r) for r in triggers} | {("slot", *r) for r in rows}

    with app.app_context():
        add_movies(7)
        with db.engine.connect() as conn, conn.begin() as tx:
            shipped = made(conn)
            assert len(shipped) == 5  # four triggers, and 7 in one slot
            op = Operations(MigrationContext.configure(conn))
            schema.drop_row_counter(op, "movies")
            assert made(conn) == set()
            schema.create_row_counter(op, "movies")
            triggers = {r for r in shipped if r[0] != "slot"}
            assert made(conn) == {*triggers, ("slot", 0, 7)}
            tx.rollback()  # DDL is transactional: the template schema stays


def test_bulk_load_with_and_without_triggers(app: Flask) -> None:
    """Measure (print, not assert) a one-transaction load with the triggers off/on."""
    with app.app_context():
        engine = db.engine
    figures: dict[str, float] = {}
    for mode in ("rows", "multirow"):
        for triggers in (False, True):
            with engine.begin() as conn:
                conn.execute(sa.text("TRUNCATE movies, ratings CASCADE"))
            with engine.connect() as conn:
                tx = conn.begin()
                if not triggers:
                    conn.execute(sa.text("ALTER TABLE movies DISABLE TRIGGER USER"))
                started = time.perf_counter()
                if mode == "rows":
                    # Row by row: one INSERT statement (and trigger call) a row.
                    cursor = conn.connection.driver_connection.cursor()
                    cursor.executemany(
                        "INSERT INTO movies (name, director) VALUES (%s, %s)",
                        [(f"Load {i}", "Someone") for i in range(BULK_ROWS)],
                    )
                else:
                    conn.execute(
                        sa.text(
                            "INSERT INTO movies (name, director)"
                            " SELECT 'Load ' || g, 'Someone'"
                            " FROM generate_series(1, :n) g"
                        ),
                        {"n": BULK_ROWS},
                    )
                tx.commit()
                figures[f"{mode} triggers={'on' if triggers else 'off'}"] = (
                    time.perf_counter() - started
                )
                if not triggers:
                    with conn.begin():
                        conn.execute(sa.text("ALTER TABLE movies ENABLE TRIGGER USER"))
                        # Seed as 0018 does: the load went by uncounted.
                        conn.execute(
                            sa.text(
                                "UPDATE row_count_slots SET n = CASE WHEN slot = 0"
                                " THEN (SELECT count(*) FROM movies) ELSE 0 END"
                                " WHERE table_name = 'movies'"
                            )
                        )
            with app.app_context():
                assert_exact(BULK_ROWS, 0)
    for mode in ("rows", "multirow"):
        off, on = figures[f"{mode} triggers=off"], figures[f"{mode} triggers=on"]
        print(
            f"\nbulk load {BULK_ROWS} rows, {mode}: triggers off {off:.2f} s,"
            f" on {on:.2f} s ({on / off:.2f}x)"
        )
