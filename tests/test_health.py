"""GET /healthz answers 200 only when the database answers at the head revision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.db import db
from tests.conftest import dispose, make_app


def test_a_current_database_is_healthy(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "migrations": "current"}
    # Cheap to poll: no session is started, so no cookie is set.
    assert "Set-Cookie" not in response.headers


@pytest.fixture
def behind(app: Flask) -> Iterator[str]:
    """The database's recorded revision moved back one step (restored after)."""
    with app.app_context(), db.engine.begin() as conn:
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        conn.execute(
            sa.text("UPDATE alembic_version SET version_num = '0014_sign_in_failures'")
        )
    yield head
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head}
        )


def test_a_database_behind_the_code_is_unhealthy(
    client: FlaskClient, behind: str
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok"
    assert body["migrations"] == "not at head"
    assert body["revision"] == ["0014_sign_in_failures"]
    assert body["head"] == [behind]


def test_an_unreachable_database_is_unhealthy(tmp_path: Path) -> None:
    # A SQLite file in a folder that does not exist cannot even be opened.
    missing = "sqlite:///" + str(tmp_path / "no-such-folder" / "db.sqlite3")
    app = make_app(missing, tmp_path / "instance")
    try:
        response = app.test_client().get("/healthz")
    finally:
        dispose(app)
    assert response.status_code == 503
    assert response.get_json() == {"database": "unreachable", "migrations": "unknown"}
