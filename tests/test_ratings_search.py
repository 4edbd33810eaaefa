"""Ratings search through an index (issue 11): exact, and kept exact by every write.

On SQLite the ratings' trigram index (migration 0015) is kept by triggers; each test
compares what a search finds through it with what a plain scan in Python finds,
after every kind of write: the ORM's, a movie's rename (copied into its ratings by
one UPDATE), deletes with their cascade, undo, bulk inserts and CSV imports. Two
letters are searched through the index too. On PostgreSQL the same searches run
on the pg_trgm indexes.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade

from app import csvfile
from app.crud import CrudService
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import TEST_DATABASE_URL, Hx, dispose, make_app

NAMES = ["Quiet Summer", "Iron Horizon", "Été à Paris", 'The "Quoted" One', "Xq"]
AUTHORS = ["Ana Abara", "Hiro Moreau", "Günter García", "Bo", "ÉLODIE", "Wen Xq"]
# Three letters and more, two (at a value's end, with a quote, not ASCII), one
# (ASCII: LIKE, which one letter is searched with, folds no other case), nothing.
PROBES = ["summer", "SUMMER", "ro", "xq", "er", '"q', "ÉTÉ", "été", "Ét", "a", "zzq"]


def services() -> tuple[CrudService, CrudService]:
    """The movie and rating services on the current session."""
    return CrudService(MOVIES, db.session), CrudService(RATINGS, db.session)


@pytest.fixture
def catalogue(app: Flask):
    """Movies and 300 ratings of them; yields (movies, ratings) services."""
    rng = random.Random(11)
    with app.app_context():
        movies, ratings = services()
        movies.bulk.load(
            {"name": f"{name} {i}", "director": "D"} for i, name in enumerate(NAMES * 4)
        )
        ids = list(db.session.scalars(sa.select(Movie.id)))
        ratings.bulk.load(
            {
                "rating": rng.randint(1, 10),
                "author": rng.choice(AUTHORS),
                "movie_id": rng.choice(ids),
            }
            for _ in range(300)
        )
        db.session.remove()
        yield services()


def truth(q: str) -> set[int]:
    """Ids of the ratings whose author or movie name holds q (any case), in Python."""
    db.session.remove()  # not a snapshot from before the last write
    rows = db.session.execute(sa.select(Rating.id, Rating.author, Rating.movie_name))
    low = q.lower()
    return {i for i, a, m in rows if low in a.lower() or low in m.lower()}


def found(q: str) -> tuple[int, set[int]]:
    """(count, ids) the service finds for q, through the index where it has one."""
    db.session.remove()  # a fresh session, as a request has
    _, ratings = services()
    page = ratings.list(ratings.parse_query({"q": q, "per_page": "500"}))
    return page.total, {r.id for r in page.items}


def assert_exact() -> None:
    """Every probe finds exactly the rows a scan finds, and counts them so."""
    for q in PROBES:
        got = found(q)
        want = truth(q)
        assert got == (len(want), want), q


def expected_order(q: str, sort: str) -> list[int]:
    """The matching ids in view order, computed in Python (ties by id)."""
    rows = db.session.execute(
        sa.select(Rating.id, Rating.rating, Rating.author, Rating.movie_name)
    ).all()
    low = q.lower()
    rows = [r for r in rows if low in r[2].lower() or low in r[3].lower()]
    keys = sort.split(",") if sort else ["-id"]
    rows.sort(key=lambda r: r[0], reverse=keys[-1].startswith("-"))
    column = {"id": 0, "rating": 1, "author": 2, "movie_name": 3}
    for key in reversed(keys):
        index = column[key.removeprefix("-")]

        def value(r, index=index):
            v = r[index]
            return v.lower() if isinstance(v, str) else v

        rows.sort(key=value, reverse=key.startswith("-"))
    return [r[0] for r in rows]


@pytest.mark.parametrize("q", ["summer", "ro", "xq", "Ét", "a", "garcía"])
@pytest.mark.parametrize("sort", ["movie_name", "-rating", "", "author,-rating"])
def test_pages_and_counts_are_a_scans(catalogue, q: str, sort: str) -> None:
    _, ratings = catalogue
    want = expected_order(q, sort)
    seen: list[int] = []
    for page in range(1, 5):
        args = {"q": q, "sort": sort, "page": str(page), "per_page": "20"}
        got = ratings.list(ratings.parse_query(args))
        assert got.total == len(want)
        seen += [r.id for r in got.items]
    assert seen == want[:80]


def test_the_index_follows_every_write(app: Flask, catalogue, tmp_path: Path) -> None:
    movies, ratings = catalogue
    assert_exact()
    movie = db.session.scalars(sa.select(Movie).order_by(Movie.id)).first()
    # Single writes through the service.
    rating = ratings.create({"rating": "7", "author": "Zed Xq", "movie_id": movie.id})
    assert_exact()
    ratings.update(rating.id, {"author": "Yuri"}, rating.version)
    assert_exact()
    # A rename reaches the movie's ratings in one UPDATE, each row's entry swapped.
    movies.update(movie.id, {"name": "Zzq Night"}, movie.version)
    assert found("zzq")[0] == len(truth("zzq")) > 0
    assert_exact()
    # The same straight in SQL, as any other client could.
    db.session.execute(
        sa.update(Rating)
        .where(Rating.movie_id == movie.id)
        .values(movie_name="Summer Xq")
    )
    db.session.commit()
    assert_exact()
    # Deletes, undo, and a movie's delete cascading to its ratings.
    token, _ = ratings.trash(rating.id)
    assert_exact()
    ratings.undo(token)
    assert_exact()
    token, _ = movies.trash(movie.id)
    assert not truth("zzq") and found("summer xq") == (0, set())
    assert_exact()
    movies.undo(token)
    assert_exact()
    # Bulk work: the service's bulk insert, and CSV imports of both tables.
    ratings.bulk.load(
        {"rating": 5, "author": f"Bulk {i} Xq", "movie_id": movie.id} for i in range(30)
    )
    assert_exact()
    path = tmp_path / "ratings.csv"
    path.write_text(
        "id,rating,author,movie_id\r\n"
        f",4,Imported Ro,{movie.id}\r\n"
        f"{rating.id},3,Renamed Summer,{movie.id}\r\n"
    )
    csvfile.import_file(ratings, path)
    assert_exact()
    db.session.remove()
    movie = movies.get(movie.id)
    path.write_text(
        f"id,name,director,rating\r\n{movie.id},Été Xq Again,{movie.director},\r\n"
    )
    csvfile.import_file(movies, path)
    assert found("xq again")[0] == len(truth("xq again")) > 30
    assert_exact()


def test_a_renamed_movie_is_found_by_its_new_name_on_the_ratings_page(
    app: Flask, hx: Hx, sample: dict
) -> None:
    # Issue 11: the copied movie_name is searched through the index too.
    response = hx.patch(
        f"/movies/{sample['alien']}", data={"name": "Nostromo", "version": "1"}
    )
    assert response.status_code == 200, response.text
    page = hx.get("/ratings?q=nostromo").text
    assert "2 of 4 ratings" in page
    assert "0 of 4 ratings" in hx.get("/ratings?q=alien").text
    # Two letters at the end of the new name.
    assert "2 of 4 ratings" in hx.get("/ratings?q=MO").text


def test_sqlite_indexes_mark_each_value_end_and_list_their_terms(
    catalogue,
) -> None:
    # Two-letter searches rest on the end mark and the term list (migration 0015).
    if db.engine.dialect.name != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    # "Quiet Summer 0" ends " 0", "Wen Xq" ends "xq": each with the mark after.
    for index, end in (("movies_search", " 0"), ("ratings_search", "xq")):
        terms = db.session.execute(
            sa.text(f"SELECT term FROM {index}_terms WHERE term LIKE :like"),
            {"like": end + "_"},
        ).scalars()
        assert end + "\x1f" in set(terms), index


# ------------------------------------------------------------------ the migration

BEFORE_0015 = "0014_sign_in_failures"


def search_schema(conn: sa.Connection) -> dict[str, str]:
    """{name: SQL} of every table, trigger and index SQLite keeps (but sequences)."""
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        " AND name NOT LIKE 'sqlite_%'"
    )
    return dict(rows.all())


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite only")
def test_migration_indexes_existing_rows_and_goes_back(tmp_path: Path) -> None:
    app = make_app("sqlite:///" + str(tmp_path / "old.sqlite3"), tmp_path)
    try:
        with app.app_context():
            upgrade(revision=BEFORE_0015)
            with db.engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO movies (name, director) VALUES"
                    " ('Alien', 'Ridley Scott'), ('Ran', 'Akira Kurosawa')"
                )
                conn.exec_driver_sql(
                    "INSERT INTO ratings (rating, author, movie_id, movie_name)"
                    " VALUES (8, 'Ana', 1, 'Alien'), (6, 'Bo Xq', 2, 'Ran')"
                )
                before = search_schema(conn)
            upgrade()
            # Rows there before the migration are found, by two letters too.
            assert found("alie") == (1, {1})
            assert found("xq") == (1, {2})
            assert found("AN") == (2, {1, 2})  # Ana; Ran at the end of a value
            db.session.remove()
            movies, _ = services()
            page = movies.list(movies.parse_query({"q": "an"}))
            assert [m.name for m in page.items] == ["Ran"]
            downgrade(revision=BEFORE_0015)
            with db.engine.connect() as conn:
                assert search_schema(conn) == before
                # movies_search is revision 0002's again, and holds the rows.
                match = "SELECT rowid FROM movies_search WHERE movies_search MATCH ?"
                assert conn.exec_driver_sql(match, ('"kurosawa"',)).all() == [(2,)]
            upgrade()
            assert found("xq") == (1, {2})
    finally:
        dispose(app)
