"""Signing out ends the session on the server; idle ones expire (issue 12, item 1)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Flask

from app.accounts import TOUCH_EVERY
from app.db import db
from app.models import UserSession
from app.write_gate import gate_for
from tests.security.conftest import Visitor, add_user, snapshot


def copy_of(visitor: Visitor, app: Flask) -> Visitor:
    """Another client holding a copy of the visitor's session cookie."""
    cookie = visitor.client.get_cookie("session")
    assert cookie is not None
    thief = Visitor(app.test_client())
    thief.client.set_cookie("session", cookie.value)
    return thief


def signed_in_as(visitor: Visitor) -> bool:
    """True when the pages greet the visitor as ana."""
    page = visitor.client.get("/login").get_data(as_text=True)
    return "You are signed in as <strong>ana</strong>" in page


def write_with(visitor: Visitor) -> int:
    """Try to add a movie with this visitor's cookie and token; return the status."""
    token = visitor.token()
    response = visitor.client.post(
        "/movies",
        data={"name": "Written", "director": "By a copy", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    return response.status_code


def test_a_copied_cookie_stops_working_at_sign_out(
    app: Flask, visitor: Visitor
) -> None:
    # Issue 12: the copy still showed the user and wrote (200) after sign-out.
    add_user(app)
    assert visitor.sign_in().status_code == 303
    thief = copy_of(visitor, app)
    thief.token()  # the copy has read a page (and its CSRF token) while valid
    assert signed_in_as(thief)
    assert visitor.send("POST", "/logout").status_code == 303
    before = snapshot(app)
    assert not signed_in_as(thief)
    assert write_with(thief) == 403
    assert snapshot(app) == before


def test_sign_out_ends_only_this_session(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    laptop = Visitor(app.test_client())
    laptop.sign_in()
    visitor.sign_in()
    visitor.send("POST", "/logout")
    assert signed_in_as(laptop)
    assert write_with(laptop) == 200


def test_sign_out_everywhere_ends_every_session(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    laptop = Visitor(app.test_client())
    laptop.sign_in()
    visitor.sign_in()
    page = visitor.client.get("/movies").get_data(as_text=True)
    assert 'name="everywhere" value="1"' in page and "Sign out everywhere" in page
    response = visitor.send("POST", "/logout", data={"everywhere": "1"})
    assert response.status_code == 303
    assert not signed_in_as(laptop)
    assert not signed_in_as(visitor)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(UserSession.id))) == 0


def test_an_idle_session_expires(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    visitor.sign_in()
    assert signed_in_as(visitor)
    idle = 14 * 86400 + 60
    with app.app_context():
        db.session.execute(
            sa.update(UserSession).values(last_seen=int(time.time()) - idle)
        )
        db.session.commit()
    assert not signed_in_as(visitor)
    with app.app_context():  # and it is gone from the server
        assert db.session.scalar(sa.select(sa.func.count(UserSession.id))) == 0


def test_a_used_session_stays(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    visitor.sign_in()
    with app.app_context():
        db.session.execute(
            sa.update(UserSession).values(last_seen=int(time.time()) - 13 * 86400)
        )
        db.session.commit()
    assert signed_in_as(visitor)
    with app.app_context():  # its use was noted
        seen = db.session.scalar(sa.select(UserSession.last_seen))
    assert seen >= int(time.time()) - 60


def test_the_cookie_lapses_with_the_idle_time(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    response = visitor.sign_in()
    cookie = next(
        v for k, v in response.headers.items() if k == "Set-Cookie" and "session=" in v
    )
    assert "Expires=" in cookie  # a permanent cookie, refreshed as it is used


def test_a_cookie_of_the_old_format_is_signed_out(app: Flask) -> None:
    # Sessions from before this change carried "id:stamp" and no sign-in id.
    user_id = add_user(app)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"{user_id}:0123456789abcdef"
        session["_fresh"] = True
    page = client.get("/login").get_data(as_text=True)
    assert "You are signed in" not in page


@contextmanager
def an_import_writing(app: Flask) -> Iterator[None]:
    """Hold the SQLite database as an import does: its gate and the write lock."""
    database = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    gate = gate_for(database)
    assert gate is not None
    with gate.exclusive() as held:
        assert held
        writer = sqlite3.connect(str(database), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            writer.execute("ROLLBACK")
            writer.close()


def last_seen(app: Flask) -> int:
    """The one sign-in's last use as the server noted it."""
    with app.app_context():
        return int(db.session.scalar(sa.select(UserSession.last_seen)))


sqlite_only = pytest.mark.skipif(
    os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="SQLite only: a PostgreSQL import locks table rows, not the sign-in tables",
)


@sqlite_only
def test_a_sign_in_during_an_import_hears_to_retry(
    app: Flask, visitor: Visitor
) -> None:
    # Issue 11: the sign-in waited the 10 s busy_timeout, then failed with a 500.
    add_user(app)
    visitor.token()
    with an_import_writing(app):
        response = visitor.sign_in()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "An import is being written" in response.get_data(as_text=True)
    assert not signed_in_as(visitor)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(UserSession.id))) == 0
    assert visitor.sign_in().status_code == 303  # and works once it is done


@sqlite_only
def test_a_signed_in_read_during_an_import_is_answered(
    app: Flask, visitor: Visitor
) -> None:
    # The read noted the session's use, a write: it waited for the import, then 500.
    add_user(app)
    visitor.sign_in()
    stale = int(time.time()) - 2 * TOUCH_EVERY
    with app.app_context():
        db.session.execute(sa.update(UserSession).values(last_seen=stale))
        db.session.commit()
    with an_import_writing(app):
        response = visitor.client.get("/movies")
        assert response.status_code == 200
        assert "Sign out everywhere" in response.get_data(as_text=True)
    assert last_seen(app) == stale  # the note waits for a free moment
    assert signed_in_as(visitor)
    assert last_seen(app) >= int(time.time()) - 60
