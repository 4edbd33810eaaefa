"""The database handle: SQLite's pragmas, and the read timeout.

A statement timeout bounds every page and fragment read (issue 11).

Four anonymous clients searching for random pairs of letters held both workers for
1-6.5 s a request. The reads of a page or fragment may now take READ_TIMEOUT_MS in
all: past it the database stops them (SQLite's progress handler, PostgreSQL's
statement_timeout) and the view answers a 503 that says so; the worker answers the
next request at once. Writes, CSV downloads and imports are not bounded. The slow
statements here are real: a recursive count the database must step through, and a
search scan.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.crud import CrudService
from app.db import ReadTimeout, bounded_reads, db
from app.resources import MOVIES, RATINGS
from tests.conftest import TEST_DATABASE_URL, Hx, dispose, make_app

# ------------------------------------------------------------ pragmas


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite only")
def test_sqlite_pragmas_on_every_connection(app: Flask) -> None:
    # `app` is this module's (a read limit, test views): pragmas are the same.
    with app.app_context():
        for _ in range(2):
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -16384
            db.engine.dispose()


# ------------------------------------------------------------ the read timeout


TOO_SLOW = "This view took too long to compute; narrow the search or try again."


def counting(n: int) -> sa.TextClause:
    """A statement the database must take n steps to answer (about 1 µs each)."""
    return sa.text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
        f" WHERE x < {n}) SELECT count(*) FROM c"
    )


ENDLESS = counting(100_000_000)  # a minute or more, unless stopped
SLOWER_THAN_LIMIT = counting(1_000_000)  # 0.2-2 s: well past LIMIT_MS
LIMIT_MS = 50


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app with a 50 ms read limit and three test-only views that count."""
    built = make_app(database_url, tmp_path / "instance", READ_TIMEOUT_MS=LIMIT_MS)

    def slow_read() -> str:
        """A page whose query takes far longer than the limit."""
        return str(db.session.execute(ENDLESS).scalar())

    def slow_write() -> str:
        """A POST whose statement takes longer than the limit (and then ends)."""
        return str(db.session.execute(SLOWER_THAN_LIMIT).scalar())

    def late_read() -> str:
        """A quick read, other work past the limit, then a read of 100,000 steps."""
        db.session.execute(counting(10))
        time.sleep(LIMIT_MS / 1000 + 0.02)
        return str(db.session.execute(counting(100_000)).scalar())

    built.add_url_rule("/test-slow-read", view_func=slow_read)
    built.add_url_rule("/test-late-read", view_func=late_read)
    built.add_url_rule("/test-slow-write", view_func=slow_write, methods=["POST"])
    yield built
    dispose(built)


def test_a_slow_page_is_a_503_and_the_worker_answers_the_next(
    client: FlaskClient, sample: dict
) -> None:
    started = time.monotonic()
    response = client.get("/test-slow-read")
    took = time.monotonic() - started
    assert response.status_code == 503
    assert TOO_SLOW in response.text
    assert "<html" in response.text.lower()  # the full error page
    assert response.headers["Retry-After"] == "5"
    assert took < 30, took  # stopped, not run to its end
    # The same app (one thread, as a worker) reads normally at once.
    after = client.get("/movies")
    assert after.status_code == 200
    assert "3 of 3 movies" in after.text


def test_the_limit_is_for_all_the_reads_of_a_request(client: FlaskClient) -> None:
    # Each statement alone is quick; the second starts after the time is up.
    response = client.get("/test-late-read")
    assert response.status_code == 503
    assert TOO_SLOW in response.text


def test_a_slow_fragment_is_a_503_message_htmx_shows(hx: Hx, sample: dict) -> None:
    response = hx.get("/test-slow-read")
    assert response.status_code == 503
    assert 'class="error-message"' in response.text
    assert TOO_SLOW in response.text
    assert "<html" not in response.text.lower()
    assert hx.get("/ratings?q=ana").status_code == 200


@pytest.fixture
def many_ratings(app: Flask, sample: dict) -> dict:
    """20,000 more ratings, so that a one-letter search must scan for a while."""
    with app.app_context():
        ratings = CrudService(RATINGS, db.session)
        ratings.bulk.load(
            {"rating": 1 + i % 10, "author": f"Author {i}", "movie_id": sample["cure"]}
            for i in range(20_000)
        )
    return sample


def test_a_real_view_past_a_tiny_limit_is_a_503(
    database_url: str, tmp_path: Path, many_ratings: dict
) -> None:
    # One letter is searched by scanning (no trigram index for it): 20,004 rows
    # take far more than the artificial 1 ms. "u": every "Author", and the
    # ratings of Blade Runner and Cure.
    tight = make_app(database_url, tmp_path / "tight", READ_TIMEOUT_MS=1)
    try:
        client = tight.test_client()
        response = client.get("/ratings?q=u", headers={"HX-Request": "true"})
        assert response.status_code == 503
        assert TOO_SLOW in response.text
        # Turned off (0), the same view is answered in full.
        tight.config["READ_TIMEOUT_MS"] = 0
        response = client.get("/ratings?q=u", headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert "20,002 of 20,004 ratings" in response.text
    finally:
        dispose(tight)


def test_downloads_and_writes_are_not_bounded(
    database_url: str, tmp_path: Path, many_ratings: dict
) -> None:
    tight = make_app(database_url, tmp_path / "tight", READ_TIMEOUT_MS=1)
    try:
        client = tight.test_client()
        # The page of this search is too slow for 1 ms (as above) ...
        assert client.get("/ratings?q=u").status_code == 503
        # ... its CSV download streams every row all the same.
        response = client.get("/ratings.csv?q=u")
        assert response.status_code == 200
        lines = response.get_data(as_text=True).splitlines()
        assert len(lines) == 1 + 20_002  # the header, then each rating
    finally:
        dispose(tight)


def test_a_write_request_is_not_bounded(client: FlaskClient) -> None:
    response = client.post("/test-slow-write")
    assert response.status_code == 200
    assert response.text == "1000000"


def test_a_bound_ends_with_its_block_and_its_thread(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(ReadTimeout), bounded_reads(LIMIT_MS):
            db.session.execute(SLOWER_THAN_LIMIT)
        db.session.rollback()
        # Outside the block the same statement runs to its end.
        assert db.session.execute(SLOWER_THAN_LIMIT).scalar() == 1_000_000
        # Another thread (another request) has no bound of this one's.
        results: list[object] = []

        def elsewhere() -> None:
            with app.app_context():
                results.append(db.session.execute(SLOWER_THAN_LIMIT).scalar())

        with bounded_reads(LIMIT_MS):
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join()
        assert results == [1_000_000]


def test_postgresql_bounds_only_the_transaction_it_was_set_in(app: Flask) -> None:
    # SET LOCAL: a pooled connection never takes the limit to a write or download.
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("statement_timeout is PostgreSQL's")
        show = sa.text("SHOW statement_timeout")
        with bounded_reads(1234):
            # The time left when the statement starts: at most the 1,234 ms.
            left = db.session.execute(show).scalar()
            assert left.endswith("ms") and 1000 < int(left[:-2]) <= 1234, left
        # Later in the same transaction, and in the next one: the server's own.
        assert db.session.execute(show).scalar() == "0"
        with bounded_reads(1234):
            db.session.execute(show)
        db.session.commit()
        assert db.session.execute(show).scalar() == "0"
        with pytest.raises(ReadTimeout), bounded_reads(LIMIT_MS):
            db.session.execute(ENDLESS)
        db.session.rollback()
        movies = CrudService(MOVIES, db.session)
        assert movies.count() == 0


def test_postgresql_sets_the_limit_again_only_once_it_could_overrun(app: Flask) -> None:
    # One SET LOCAL serves the statements that follow while the time since it
    # was set is under a tenth of it; then the time left is set again.
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("statement_timeout is PostgreSQL's")
        show = sa.text("SHOW statement_timeout")
        with bounded_reads(5000):
            first = db.session.execute(show).scalar()
            seen = []
            for _ in range(3):
                db.session.execute(sa.text("SELECT pg_sleep(0.01)"))  # 10 ms pass
                seen.append(db.session.execute(show).scalar())
            assert seen == [first] * 3
        with bounded_reads(200):
            # Set again (the earlier block's timeout is far off), to the time left:
            # 200 ms less what passed since the block began, on a slow machine 199.
            left = db.session.execute(show).scalar()
            assert left.endswith("ms") and 150 < int(left[:-2]) <= 200, left
            db.session.execute(sa.text("SELECT pg_sleep(0.05)"))  # 50 ms > a tenth
            left = db.session.execute(show).scalar()
            assert left.endswith("ms") and int(left[:-2]) <= 150, left
        db.session.rollback()


def test_the_limit_is_five_seconds_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("READ_TIMEOUT_MS", raising=False)
    assert create_app(instance_path=str(tmp_path)).config["READ_TIMEOUT_MS"] == 5000
    monkeypatch.setenv("READ_TIMEOUT_MS", "1500")
    assert create_app(instance_path=str(tmp_path)).config["READ_TIMEOUT_MS"] == 1500
