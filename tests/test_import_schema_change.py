"""Writes on a connection opened before a big import rebuilt the indexes elsewhere.

Regression tests for the report "after a big import rebuilds the ratings indexes,
a connection opened earlier gets 'no such table: ratings' on its first DELETE".
A big SQLite import drops the plain indexes and builds them again (a schema
change: Bulk.deferred_indexes), in its own process. Every other connection still
holds the old schema. SQLite (3.40.1 here, 3.51.1 too) then fails the first write
such a connection prepares anew when a trigger of that write feeds an FTS5 index
(0015) the connection has not opened since it read the schema: compiling the
trigger opens the index, which reloads the schema under the compiler. Any schema
change does it, a plain index as well as an expression one. app/db.py has every
write transaction read the schema cookie first, so the write sees the new schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app import crud
from app.crud import CrudService
from app.db import WRITE_INTENT, db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import Hx, dispose, make_app
from tests.test_csv_import_edges import RATINGS_HEADER, import_file

IMPORTED = 300  # ratings: a big load once _REBUILD_MIN is 10, as in the other tests


@pytest.fixture
def importer(
    app: Flask, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    """A second app on the same database, whose imports of 300 rows count as big."""
    monkeypatch.setattr(crud.bulk, "_REBUILD_MIN", 10)
    other = make_app(database_url, tmp_path / "importer")
    yield other
    dispose(other)


def schema_version(app: Flask) -> int | None:
    """SQLite's schema cookie, read on a connection of its own (None elsewhere)."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite"):
        return None
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute("PRAGMA schema_version").fetchone()[0]


def big_import(importer: Flask, tmp_path: Path) -> None:
    """Import 300 new ratings through the other app; on SQLite, check it rebuilt."""
    before = schema_version(importer)
    rows = b"".join(
        f",{i % 10 + 1},Imported {i},{i % 3 + 1},\r\n".encode() for i in range(IMPORTED)
    )
    done = import_file(importer, tmp_path, "ratings", RATINGS_HEADER + rows)
    assert done.counts["new"] == IMPORTED
    if before is not None:
        # The indexes were dropped and made again: the premise of these tests.
        assert schema_version(importer) != before


def test_pooled_connection_writes_after_an_import_elsewhere(
    app: Flask, importer: Flask, hx: Hx, sample: dict, tmp_path: Path
) -> None:
    # The report's journey through the web layer: this app reads and edits
    # ratings, the other one imports, then this one deletes a rating and a movie
    # (whose ratings cascade), edits a rating and adds one, each on its pooled
    # connection. None may answer 500.
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a failure is a 500, as served
    assert hx.get("/ratings").status_code == 200
    edited = hx.patch("/ratings/1", data={"author": "Ana B", "version": "1"})
    assert edited.status_code == 200
    big_import(importer, tmp_path)
    assert hx.delete("/ratings/2").status_code == 200
    assert hx.delete(f"/movies/{sample['cure']}").status_code == 200
    renamed = hx.patch("/ratings/3", data={"author": "Zed", "version": "1"})
    assert renamed.status_code == 200
    alien = sample["alien"]
    added = hx.post(f"/movies/{alien}/ratings", data={"rating": "4", "author": "New"})
    assert added.status_code == 200
    with app.app_context():
        ratings = {r.id: r for r in db.session.scalars(sa.select(Rating))}
        assert 2 not in ratings and 4 not in ratings  # 4 was Cure's
        assert not [r for r in ratings.values() if r.movie_id == sample["cure"]]
        assert db.session.get(Movie, sample["cure"]) is None
        assert (ratings[1].author, ratings[3].author) == ("Ana B", "Zed")
        assert [r.rating for r in ratings.values() if r.author == "New"] == [4]
        # Imported ratings of Cure went with it: 100 of the 300 (movie_id 3).
        assert len(ratings) == 4 - 2 + IMPORTED - IMPORTED // 3 + 1


def write_sql(sql: str) -> Callable[[], None]:
    """A write transaction (as the service opens one) whose first statement is sql."""

    def run() -> None:
        with db.engine.connect() as conn:
            conn.execution_options(**{WRITE_INTENT: True})
            with conn.begin():
                conn.exec_driver_sql(sql)

    return run


FIRST_WRITES: dict[str, Callable[[], object]] = {
    "delete a rating": write_sql("DELETE FROM ratings WHERE id = 2"),
    "delete a movie (its ratings cascade)": write_sql(
        "DELETE FROM movies WHERE id = 3"
    ),
    "edit a rating's author": write_sql(
        "UPDATE ratings SET author = 'Zed' WHERE id = 3"
    ),
    "insert a rating": write_sql(
        "INSERT INTO ratings (rating, author, movie_id, movie_name)"
        " VALUES (4, 'New', 1, 'Alien')"
    ),
    "bulk insert ratings": lambda: CrudService(RATINGS, db.session).bulk.load(
        [{"rating": 4, "author": "New", "movie_id": 1}]
    ),
    "bulk insert movies": lambda: CrudService(MOVIES, db.session).bulk.load(
        [{"name": "Heat", "director": "Michael Mann"}]
    ),
}


@pytest.mark.parametrize("first", FIRST_WRITES, ids=list(FIRST_WRITES))
def test_first_write_after_a_rebuild_elsewhere(
    app: Flask, importer: Flask, sample: dict, tmp_path: Path, first: str
) -> None:
    # The minimal case: this app's connection has read the schema (and opened
    # no full-text index since), the other app's import rebuilds the indexes,
    # and the next statement this connection prepares is a write whose trigger
    # feeds an FTS5 index. Without the schema check it fails with "no such table".
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite only: PostgreSQL keeps its indexes")
    dispose(app)  # the sample's connection opened the FTS5 indexes
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Rating)) == 4
        db.session.commit()
    big_import(importer, tmp_path)
    with app.app_context():
        FIRST_WRITES[first]()
        db.session.commit()
        ratings = db.session.scalar(sa.select(sa.func.count()).select_from(Rating))
        movies = db.session.scalar(sa.select(sa.func.count()).select_from(Movie))
        counted = db.session.execute(
            sa.text("SELECT table_name, n FROM row_counts ORDER BY 1")
        ).all()
    # The write happened, and its triggers ran (the counters agree).
    assert dict(counted) == {"movies": movies, "ratings": ratings}
    assert (movies, ratings) == {
        "delete a rating": (3, 303),
        "delete a movie (its ratings cascade)": (2, 203),
        "edit a rating's author": (3, 304),
        "insert a rating": (3, 305),
        "bulk insert ratings": (3, 305),
        "bulk insert movies": (4, 304),
    }[first]
