"""Fixtures for the security suite: CSRF ON, accounts, a visitor with a token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from app.crud import CrudService
from app.db import db
from app.models import User
from app.resources import MOVIES
from app.security import body_limit
from tests.conftest import dispose, make_app

PASSWORD = "correct horse battery"
# Cheap KDF parameters for test users: hashing is tested once, not in every fixture.
FAST_HASH = "scrypt:1024:8:1"
TABLES = ("movies", "ratings", "users")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def build_app(database_url: str, instance: Path, **extra: Any) -> Flask:
    """An app with CSRF checks on (the rest of tests/ turns them off)."""
    config = {
        "WTF_CSRF_ENABLED": True,
        "IMPORT_MAX_BYTES": 4 * 1024 * 1024,
        # Unexpected errors become 500 pages here, as in production.
        "PROPAGATE_EXCEPTIONS": False,
        **extra,
    }
    return make_app(database_url, instance, **config)


def add_probes(app: Flask) -> None:
    """Routes that write a movie when reached, to test the gate on its own.

    The real endpoints are tested in the corpus; these prove the gate, CSRF and
    limits apply to any route, including ones added later.
    """

    def write() -> str:
        """Create a movie through the service (the one write path)."""
        CrudService(MOVIES, db.session).create({"name": "Probe", "director": "P"})
        return "written"

    @body_limit("IMPORT_MAX_BYTES")
    def upload() -> str:
        """The same write, on a route with its own (larger) size limit."""
        return write()

    def crash() -> str:
        """Fail the way a bug would, with a secret in the exception."""
        raise RuntimeError(f"boom {app.config['SECRET_KEY']}")

    methods = ["POST", "PUT", "PATCH", "DELETE"]
    app.add_url_rule("/_probe", "probe", write, methods=methods)
    app.add_url_rule(
        "/_probe/upload",
        "probe_upload",
        upload,
        methods=["POST"],
    )
    app.add_url_rule("/_probe/crash", "probe_crash", crash, methods=["GET"])


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh database, with CSRF protection on (and the probes)."""
    app = build_app(database_url, tmp_path / "instance")
    add_probes(app)
    yield app
    dispose(app)


def add_user(app: Flask, name: str = "ana", password: str = PASSWORD) -> int:
    """Create an account directly (turning accounts on); return its id."""
    with app.app_context():
        user = User(
            name=name, password_hash=generate_password_hash(password, FAST_HASH)
        )
        db.session.add(user)
        db.session.commit()
        return user.id


def snapshot(app: Flask) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a refused request wrote nothing."""
    with app.app_context():
        out = {}
        for table in TABLES:
            rows = db.session.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
            out[table] = [tuple(r) for r in rows]
        db.session.remove()
        return out


def request_headers(
    real: str, token: str | None, htmx: bool, headers: dict[str, str] | None
) -> dict[str, str]:
    """Headers of a visitor's request; token is "valid", None (missing) or a value."""
    sent = dict(headers or {})
    if token == "valid":
        sent["X-CSRFToken"] = real
    elif token is not None:
        sent["X-CSRFToken"] = token
    if htmx:
        sent["HX-Request"] = "true"
    return sent


class Visitor:
    """A browser-like client: keeps cookies, knows its CSRF token, can sign in."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._token: str | None = None

    def token(self) -> str:
        """The CSRF token of this visitor's session (read from a page's meta tag)."""
        if self._token is None:
            page = self.client.get("/login")
            match = CSRF_META.search(page.get_data(as_text=True))
            assert match, "no csrf-token meta tag on the page"
            self._token = match.group(1)
        return self._token

    def sign_in(self, name: str = "ana", password: str = PASSWORD) -> TestResponse:
        """Sign in through the form; the session (and its token) is renewed."""
        response = self.client.post(
            "/login",
            data={"name": name, "password": password, "csrf_token": self.token()},
        )
        self._token = None
        return response

    def send(
        self,
        method: str,
        url: str,
        *,
        token: str | None = "valid",
        htmx: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> TestResponse:
        """Send a request; token is "valid", None (missing) or a literal value."""
        # The session holds a token, as after any page view.
        sent = request_headers(self.token(), token, htmx, headers)
        return self.client.open(url, method=method, headers=sent, **kwargs)


def multipart(payload: bytes, filename: str = "f.csv", **fields: str) -> dict[str, Any]:
    """Request arguments for a one-file multipart upload, encoded in memory.

    (The test client's own encoder spools big files to a temporary file that it
    never closes, which pytest reports as a ResourceWarning.)
    """
    boundary = "reeltable-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        f"{value}\r\n".encode()
        for name, value in fields.items()
    ]
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    body = b"".join(parts) + head + payload + f"\r\n--{boundary}--\r\n".encode()
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture
def visitor(client: FlaskClient) -> Visitor:
    """A visitor with a session and a CSRF token."""
    return Visitor(client)
