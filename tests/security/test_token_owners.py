"""Undo and import tokens belong to whoever made them, and uploads stay private.

A token is a capability only for its owner: the signed-in user who made it, or,
while accounts are off, the browser that made it. Anyone else who learns one
(over a shoulder, from a log, from a shared screenshot of the address bar) gets
the same 404 as for a token that never existed.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import TestResponse

from app.db import db
from app.models import Movie
from tests.security.conftest import Visitor, add_user, multipart

CSV = b"id,name,director,rating\r\n,Heat,Michael Mann,8.3\r\n,=bad,Someone,1\r\n"
FILENAME = "ana-private-list.csv"
UNDO_TOKEN = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def two_users(app: Flask) -> Iterator[tuple[Visitor, Visitor]]:
    """Ana and Ben, each signed in in a browser of their own (accounts on)."""
    add_user(app, "ana")
    add_user(app, "ben")
    ana, ben = Visitor(app.test_client()), Visitor(app.test_client())
    assert ana.sign_in("ana").status_code == 303
    assert ben.sign_in("ben").status_code == 303
    yield ana, ben


def delete(visitor: Visitor, movie_id: int) -> str:
    """Delete a movie as htmx does; return the Undo token its toast offers."""
    response = visitor.send("DELETE", f"/movies/{movie_id}", htmx=True)
    assert response.status_code == 200
    match = UNDO_TOKEN.search(response.get_data(as_text=True))
    assert match, "no Undo offer in the toast"
    return match.group(1)


def undo(visitor: Visitor, token: str) -> TestResponse:
    """Ask for a delete to be undone (htmx)."""
    return visitor.send("POST", "/movies/undo", htmx=True, data={"token": token})


def upload(visitor: Visitor) -> str:
    """Upload CSV as a plain form; return the preview's URL."""
    response = visitor.send(
        "POST", "/import", **multipart(CSV, FILENAME, resource="movies")
    )
    assert response.status_code == 303
    return response.headers["Location"]


def exists(app: Flask, movie_id: int) -> bool:
    """True when the movie is in the table."""
    with app.app_context():
        found = db.session.get(Movie, movie_id) is not None
        db.session.remove()
        return found


def movie_names(app: Flask) -> list[str]:
    """Every movie's name, in id order."""
    with app.app_context():
        names = db.session.scalars(sa.select(Movie.name).order_by(Movie.id)).all()
        db.session.remove()
        return list(names)


def assert_hidden(response: TestResponse) -> None:
    """A 404 that says nothing of the import it was asked about."""
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert FILENAME not in body
    assert "=bad" not in body


def test_another_user_cannot_undo_a_delete(
    app: Flask, two_users: tuple[Visitor, Visitor], sample: dict[str, int]
) -> None:
    # issue 12: any signed-in user who learned an Undo token could restore a row
    # someone else deleted.
    ana, ben = two_users
    token = delete(ana, sample["alien"])
    refused = undo(ben, token)
    assert refused.status_code == 404
    assert "This delete can no longer be undone." in refused.get_data(as_text=True)
    assert not exists(app, sample["alien"])
    assert undo(ana, token).status_code == 200
    assert exists(app, sample["alien"])


def test_the_same_user_can_undo_and_import_from_another_sign_in(
    app: Flask, sample: dict[str, int]
) -> None:
    # issue 12: tokens belong to the user, not to one sign-in, so the same
    # person in a second browser (or after signing in again) keeps them.
    add_user(app, "ana")
    laptop, phone = Visitor(app.test_client()), Visitor(app.test_client())
    laptop.sign_in("ana")
    phone.sign_in("ana")
    token = delete(laptop, sample["alien"])
    assert undo(phone, token).status_code == 200
    assert exists(app, sample["alien"])
    location = upload(laptop)
    assert phone.client.get(location).status_code == 200
    assert phone.send("POST", location).status_code == 303
    assert movie_names(app)[-1] == "Heat"


def test_another_user_cannot_view_or_commit_an_import(
    app: Flask, two_users: tuple[Visitor, Visitor], sample: dict[str, int]
) -> None:
    # issue 12: an import token let any signed-in user read the preview and
    # commit someone else's file.
    ana, ben = two_users
    location = upload(ana)
    assert_hidden(ben.client.get(location))
    assert_hidden(ben.client.get(location, headers={"HX-Request": "true"}))
    assert_hidden(ben.send("POST", location))
    assert "Heat" not in movie_names(app)
    preview = ana.client.get(location)
    assert preview.status_code == 200
    assert FILENAME in preview.get_data(as_text=True)
    assert ana.send("POST", location).status_code == 303
    assert movie_names(app)[-1] == "Heat"
    # The finished import's page is Ana's too.
    assert_hidden(ben.client.get(location))


def test_a_signed_out_visitor_cannot_read_a_preview(
    app: Flask, two_users: tuple[Visitor, Visitor], sample: dict[str, int]
) -> None:
    # issue 12: the preview (file name, counts, invalid rows) was readable by
    # anyone with its URL, signed in or not.
    ana, _ = two_users
    location = upload(ana)
    assert_hidden(app.test_client().get(location))


def test_without_accounts_another_browser_cannot_use_the_tokens(
    app: Flask, sample: dict[str, int]
) -> None:
    # issue 12: with accounts off, tokens belong to the browser that made them.
    first, second = Visitor(app.test_client()), Visitor(app.test_client())
    token = delete(first, sample["alien"])
    location = upload(first)
    assert undo(second, token).status_code == 404
    assert not exists(app, sample["alien"])
    assert_hidden(second.client.get(location))
    assert_hidden(second.send("POST", location))
    assert "Heat" not in movie_names(app)
    assert undo(first, token).status_code == 200
    assert exists(app, sample["alien"])
    assert first.client.get(location).status_code == 200
    assert first.send("POST", location).status_code == 303
    assert movie_names(app)[-1] == "Heat"


def test_a_plain_form_undo_of_another_browser_is_404(
    app: Flask, sample: dict[str, int]
) -> None:
    # issue 12: the no-JavaScript Undo form checks the owner too.
    first, second = Visitor(app.test_client()), Visitor(app.test_client())
    token = delete(first, sample["alien"])
    refused = second.send("POST", "/movies/undo", data={"token": token})
    assert refused.status_code == 404
    assert not exists(app, sample["alien"])


def mode(path: Path) -> int:
    """The permission bits of a file."""
    return stat.S_IMODE(path.stat().st_mode)


def test_uploads_are_readable_by_the_server_only(
    app: Flask, visitor: Visitor, sample: dict[str, int]
) -> None:
    # issue 12: uploads and their state were written 0644, readable by every
    # account on the server, while the secret key is 0600. Issue 15: they live
    # in the database now (tables imports, import_chunks), not in any file.
    location = upload(visitor)
    assert visitor.send("POST", location).status_code == 303
    assert not (Path(app.instance_path) / "imports").exists()
    with app.app_context():
        database = db.engine.url.database
        sqlite = db.engine.dialect.name == "sqlite"
    if database and sqlite:
        # The import gate's lock files beside the database (an import's progress
        # note is written into one): the server's user only.
        for suffix in ("-import.lock", "-writes.lock"):
            assert mode(Path(database + suffix)) == 0o600
