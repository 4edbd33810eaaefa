"""Typed errors and HTTP errors as pages or fragments.

A database with no room left: a clear 507, nothing written (issue 11, item 9).

SQLite's "database or disk is full" was a 500. Here the SQLite file really fills:
each connection is capped at the pages the file has (PRAGMA max_page_count), and
movies are added until one no longer fits. PostgreSQL cannot be filled in a test;
there the server itself raises disk_full (SQLSTATE 53100, as when it cannot extend
a file) from a trigger, and the driver and app handle it as they would the real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.db import db
from app.models import Movie
from tests.conftest import Hx

NO_ROOM = "The server has no room left to save this change; nothing was written."


def movies(app: Flask) -> list[tuple[Any, ...]]:
    """Every movie row, straight from the database."""
    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(sa.select(Movie.__table__).order_by(Movie.id)).all()


@pytest.fixture
def capped(app: Flask) -> Flask:
    """The app on a SQLite file that may not grow by a page."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("max_page_count is SQLite's")
        engine = db.engine
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        engine.dispose()  # every later connection gets the cap

        @sa.event.listens_for(engine, "connect")
        def cap(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    return app


def fill(app: Flask, hx: Hx) -> tuple[Any, list[tuple[Any, ...]]]:
    """Add movies until one does not fit; its response and the rows before it."""
    for i in range(2000):
        before = movies(app)
        response = hx.post(
            "/movies", data={"name": f"Filler {i:04} " + "x" * 150, "director": "D"}
        )
        if response.status_code != 200:
            return response, before
    raise AssertionError("the capped database never filled")


def test_a_full_sqlite_database_answers_507_and_writes_nothing(
    capped: Flask, hx: Hx, client: FlaskClient
) -> None:
    app = capped
    response, before = fill(app, hx)
    assert len(before) > 0  # a few fitted first
    assert response.status_code == 507
    assert NO_ROOM in response.text
    assert 'class="error-message"' in response.text  # the fragment htmx shows
    assert movies(app) == before
    # The form without JavaScript gets the full page, and nothing either.
    page = client.post("/movies", data={"name": "Z" * 200, "director": "D" * 120})
    assert page.status_code == 507
    assert NO_ROOM in page.text
    assert "<html" in page.text.lower()
    assert movies(app) == before
    # Reading goes on as before.
    listing = client.get("/movies")
    assert listing.status_code == 200
    assert f"{len(before)} of {len(before)} movies" in listing.text
    with app.app_context(), db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


@pytest.fixture
def pg_disk_full(app: Flask, sample: dict) -> Iterator[Flask]:
    """The sample movies, then PostgreSQL raising disk_full on any more."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("a PostgreSQL trigger")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE FUNCTION test_disk_full() RETURNS trigger"
                " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION"
                " 'could not extend file: No space left on device'"
                " USING ERRCODE = 'disk_full'; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER test_disk_full BEFORE INSERT ON movies"
                " FOR EACH ROW EXECUTE FUNCTION test_disk_full()"
            )
    try:
        yield app
    finally:
        # The schema outlives this test (conftest migrates it once per run).
        with app.app_context(), db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER test_disk_full ON movies")
            conn.exec_driver_sql("DROP FUNCTION test_disk_full()")


def test_postgresql_disk_full_answers_507_and_writes_nothing(
    pg_disk_full: Flask, hx: Hx, client: FlaskClient
) -> None:
    app = pg_disk_full
    before = movies(app)
    response = hx.post("/movies", data={"name": "Heat", "director": "Michael Mann"})
    assert response.status_code == 507
    assert NO_ROOM in response.text
    assert 'class="error-message"' in response.text
    page = client.post("/movies", data={"name": "Heat", "director": "Michael Mann"})
    assert page.status_code == 507
    assert "<html" in page.text.lower()
    assert movies(app) == before
    assert client.get("/movies").status_code == 200
