"""Fixtures: an app on a fresh database (SQLite, or PostgreSQL if configured)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade

from app import create_app
from app.config import normalise_database_url
from app.db import db
from app.models import Movie, Rating

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def make_app(database_url: str, instance_path: Path, **extra: Any) -> Flask:
    """Create an app for tests on the given database."""
    config = {
        "TESTING": True,
        # Most tests exercise behaviour, not CSRF; tests/security turns it back on.
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        **extra,
    }
    return create_app(config, instance_path=str(instance_path))


def dispose(app: Flask) -> None:
    """Close the app's pooled connections."""
    with app.app_context():
        db.engine.dispose()


def postgres_schema_url(url: str, schema: str) -> str:
    """Return the URL with search_path set to a private schema (then public)."""
    parsed = sa.engine.make_url(normalise_database_url(url))
    options = f"-csearch_path={schema},public"
    return parsed.update_query_dict({"options": options}).render_as_string(
        hide_password=False
    )


def shared_extension(conn: sa.Connection, name: str) -> None:
    """Have extension `name` in the public schema, which every run's path includes.

    The migration creates it where the search path points first: for a test run,
    that run's own schema. Another run would then find it "installed" but not on
    its path, and the first run's DROP SCHEMA ... CASCADE would take it (and the
    indexes built on it) away from everyone.
    """
    found = conn.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension e"
            " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = :name"
        ),
        {"name": name},
    ).scalar()
    if found is None:
        conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {name} SCHEMA public"))
    elif found != "public":
        conn.execute(sa.text(f"ALTER EXTENSION {name} SET SCHEMA public"))


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate one database to head; per-test databases start from it.

    SQLite: a migrated file each test copies. PostgreSQL: a schema of this run's
    own (so parallel runs on one server never meet) is migrated once, each test
    truncates its tables, and it is dropped at the end.
    """
    instance = tmp_path_factory.mktemp("template-instance")
    if TEST_DATABASE_URL:
        schema = f"reeltable_test_{os.getpid()}"
        admin = sa.create_engine(normalise_database_url(TEST_DATABASE_URL))
        with admin.begin() as conn:
            shared_extension(conn, "pg_trgm")
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        url = postgres_schema_url(TEST_DATABASE_URL, schema)
    else:
        url = "sqlite:///" + str(instance / "template.sqlite3")
    app = make_app(url, instance)
    with app.app_context():
        upgrade()
    dispose(app)
    yield url
    if TEST_DATABASE_URL:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def count(app: Flask, model: type, **where: object) -> int:
    """Count rows straight from the database."""
    table = model.__table__
    stmt = sa.select(sa.func.count()).select_from(table)
    for name, value in where.items():
        stmt = stmt.where(table.c[name] == value)
    with app.app_context(), db.engine.connect() as conn:
        return conn.scalar(stmt)


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A database of this test's own with no schema (a SQLite file, or a PG schema)."""
    if not TEST_DATABASE_URL:
        yield "sqlite:///" + str(tmp_path / "empty.sqlite3")
        return
    schema = f"reeltable_empty_{os.getpid()}"
    admin = sa.create_engine(normalise_database_url(TEST_DATABASE_URL))
    with admin.begin() as conn:
        shared_extension(conn, "pg_trgm")
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield postgres_schema_url(TEST_DATABASE_URL, schema)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def database_url(template_db: str, tmp_path: Path) -> str:
    """A database URL whose schema is at head and whose tables are empty."""
    if template_db.startswith("sqlite"):
        src = template_db.removeprefix("sqlite:///")
        dst = tmp_path / "test.sqlite3"
        shutil.copyfile(src, dst)
        return "sqlite:///" + str(dst)
    engine = sa.create_engine(template_db)
    with engine.begin() as conn:
        # Every table the app writes, so no test sees another's rows or undo tokens.
        conn.execute(
            sa.text(
                "TRUNCATE movies, ratings, users, deleted_rows, sign_in_failures,"
                " changes, imports, import_chunks RESTART IDENTITY CASCADE"
            )
        )
    engine.dispose()
    return template_db


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh, empty, migrated database."""
    instance = tmp_path / "instance"
    app = make_app(database_url, instance)
    yield app
    dispose(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner for `flask` commands."""
    return app.test_cli_runner()


class Hx:
    """Send requests the way htmx does (HX-Request: true)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, url: str, **kwargs: Any) -> Any:
        """GET as htmx."""
        return self.client.get(url, headers={"HX-Request": "true"}, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        """POST as htmx."""
        return self.client.post(url, headers={"HX-Request": "true"}, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        """PATCH as htmx."""
        return self.client.patch(url, headers={"HX-Request": "true"}, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        """DELETE as htmx."""
        return self.client.delete(url, headers={"HX-Request": "true"}, **kwargs)


@pytest.fixture
def hx(client: FlaskClient) -> Hx:
    """A client that sends requests as htmx does."""
    return Hx(client)


@pytest.fixture
def sample(app: Flask) -> dict[str, int]:
    """Three movies and four ratings; returns their ids by short name."""
    with app.app_context():
        alien = Movie(name="Alien", director="Ridley Scott", rating=8.5)
        blade = Movie(name="Blade Runner", director="Ridley Scott", rating=8.1)
        cure = Movie(name="Cure", director="Kiyoshi Kurosawa", rating=None)
        db.session.add_all([alien, blade, cure])
        db.session.flush()
        db.session.add_all(
            [
                Rating(rating=9, author="Ana", movie_id=alien.id),
                Rating(rating=7, author="Bo", movie_id=alien.id),
                Rating(rating=8, author="Cy", movie_id=blade.id),
                Rating(rating=6, author="Di", movie_id=cure.id),
            ]
        )
        db.session.commit()
        return {"alien": alien.id, "blade": blade.id, "cure": cure.id}
