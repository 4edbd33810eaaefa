"""app/db.py's pool: a connection pinged only after it sat idle, and the
transactions an edit takes (issue 15: round trips on PostgreSQL).

The app here is conftest's, without test_db.py's 50 ms read limit: these tests
are about connections, and a loaded machine must not turn them into 503s.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.pool import NullPool

import app.db as app_db
from app.crud import CrudService
from app.db import db
from app.resources import MOVIES
from tests.conftest import TEST_DATABASE_URL, Hx


@pytest.fixture
def one_pooled_connection(app: Flask) -> int:
    """Leave the app's pool holding one idle connection; return its server pid."""
    with app.app_context():
        db.engine.dispose()
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        db.session.commit()  # back to the pool
        return int(pid)


def drop_from_the_server(app: Flask, pid: int) -> None:
    """End a backend as a server restart or an idle timeout would, and wait for it."""
    admin = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=NullPool)
    with admin.connect() as conn:
        ended = conn.execute(
            sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
        )
        assert ended.scalar() is True
    admin.dispose()


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only: a server ends it")
def test_a_connection_dropped_while_idle_is_replaced_before_use(
    app: Flask,
    client: FlaskClient,
    sample: dict,
    one_pooled_connection: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drop_from_the_server(app, one_pooled_connection)
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE_S", 0.0)  # every checkout is "idle"
    response = client.get("/movies")
    assert response.status_code == 200
    assert "3 of 3 movies" in response.text
    with app.app_context():
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        assert pid != one_pooled_connection


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only: a server ends it")
def test_a_connection_reused_at_once_is_not_pinged(
    app: Flask, one_pooled_connection: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trade-off, shown: within the idle window there is no ping, so a
    # connection dropped meanwhile fails one statement; the pool, told of the
    # disconnect, then starts afresh.
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE_S", 3600.0)
    drop_from_the_server(app, one_pooled_connection)
    with app.app_context():
        with pytest.raises(sa.exc.OperationalError):
            db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
        assert db.session.execute(sa.text("SELECT 1")).scalar() == 1


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only: its ping")
def test_the_ping_keeps_an_autocommit_engine_in_autocommit(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bench.stress reads through such an engine: after a ping, a statement must
    # still commit on its own, not open a transaction nobody ends.
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE_S", 0.0)  # every checkout pings
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(2):  # the second checkout is pinged
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                assert conn.connection.dbapi_connection.autocommit is True
    finally:
        engine.dispose()


def test_an_edit_takes_as_few_transactions_as_its_database_allows(
    app: Flask, hx: Hx, sample: dict
) -> None:
    # PostgreSQL writes on in the transaction that read the session (READ
    # COMMITTED) and reads the row's summary for the answer in it too: one.
    # SQLite ends the reads first, so the write can begin IMMEDIATE: two.
    with app.app_context():
        engine = db.engine
    begun: list[str] = []

    def note(conn: sa.Connection) -> None:
        begun.append(conn.dialect.name)

    sa.event.listen(engine, "begin", note)
    try:
        url = f"/movies/{sample['alien']}"
        response = hx.patch(url, data={"director": "R. Scott", "version": "1"})
    finally:
        sa.event.remove(engine, "begin", note)
    assert response.status_code == 200
    assert "R. Scott" in response.text
    assert len(begun) == (1 if engine.dialect.name == "postgresql" else 2)
    with app.app_context():
        alien = CrudService(MOVIES, db.session).get(sample["alien"])
        assert (alien.director, alien.version) == ("R. Scott", 2)


# ---------------------------------------------------------------- lock_timeout

PG_ONLY = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL's lock_timeout")


def shown(setting: str) -> str:
    """A setting of the session's connection, as SHOW prints it."""
    return str(db.session.execute(sa.text(f"SHOW {setting}")).scalar())


@PG_ONLY
def test_connections_open_with_the_lock_timeout_beside_the_urls_options(
    app: Flask,
) -> None:
    # Set as the connection opens, with no statement of its own; the URL's own
    # options (conftest's private search_path) are kept, not replaced.
    with app.app_context():
        db.engine.dispose()
        assert shown("lock_timeout") == f"{app_db.PG_LOCK_TIMEOUT_MS // 1000}s"
        schema = db.session.execute(sa.text("SELECT current_schema()")).scalar()
        assert str(schema).startswith("reeltable_test_")
        db.session.rollback()


@PG_ONLY
def test_an_import_lifts_the_lock_timeout_for_its_transaction_only(
    app: Flask,
) -> None:
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        with svc.transaction(bulk=False):
            assert shown("lock_timeout") == "3s"
        with svc.transaction(bulk=True):
            assert shown("lock_timeout") == "0"
        # SET LOCAL ended with the import: the pooled connection is bounded again.
        assert shown("lock_timeout") == "3s"
        db.session.rollback()


@PG_ONLY
def test_a_read_that_waits_out_the_lock_timeout_is_a_read_timeout(
    app: Flask, sample: dict
) -> None:
    # A migration's lock held past the timeout: the read stops with the error the
    # app answers 503 for, not a bare OperationalError (a 500), nor a hang when no
    # read limit applies (a CSV download has none).
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    holder = sa.create_engine(url, poolclass=NullPool)
    try:
        with holder.connect() as conn:
            conn.execute(sa.text("LOCK TABLE movies IN ACCESS EXCLUSIVE MODE"))
            with app.app_context():
                app_db.limit_reads(None)
                with pytest.raises(app_db.ReadTimeout) as stopped:
                    db.session.execute(sa.text("SELECT count(*) FROM movies"))
                assert stopped.value.orig.sqlstate == app_db.PG_LOCK_NOT_AVAILABLE
                db.session.rollback()
            conn.rollback()
    finally:
        holder.dispose()
