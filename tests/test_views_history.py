"""Undo and redo of a person's change sets from the page (issue 14).

Every write answered to htmx names its change set in a token only its owner can
use; POST /history/undo and /history/redo take it back. Each test reads the
database after the write, the undo and the redo.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.db import db
from tests.conftest import Hx, dispose, make_app

HX = {"HX-Request": "true"}


def rows(app: Flask, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run a query on the app's database."""
    with app.app_context():
        return [tuple(r) for r in db.session.execute(sa.text(sql), params)]


def movie(app: Flask, movie_id: int) -> tuple[Any, ...] | None:
    """(name, director, rating) of a movie, or None if it is gone."""
    found = rows(
        app, "SELECT name, director, rating FROM movies WHERE id = :id", id=movie_id
    )
    return found[0] if found else None


def token_of(response: Any) -> str:
    """The change-set token a write's answer carries."""
    assert response.status_code == 200, response.text
    token = response.headers.get("X-Change-Set")
    assert token, dict(response.headers)
    return token


def label_of(response: Any) -> str:
    """What a write's answer says it did."""
    return unquote(response.headers["X-Change-Label"])


def undo(hx: Hx, token: str) -> Any:
    """Undo the set a token names, as app.js does."""
    return hx.post("/history/undo", data={"token": token})


def redo(hx: Hx, token: str) -> Any:
    """Redo the set a token names, as app.js does."""
    return hx.post("/history/redo", data={"token": token})


# ------------------------------------------------------------ the journeys


def test_an_edit_is_undone_and_redone(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    saved = hx.patch(f"/movies/{alien}", data={"rating": "9", "version": "1"})
    token = token_of(saved)
    assert label_of(saved) == "rating of Alien 8.5 → 9.0"
    assert movie(app, alien) == ("Alien", "Ridley Scott", 9.0)

    undone = undo(hx, token)
    assert undone.status_code == 200
    assert movie(app, alien) == ("Alien", "Ridley Scott", 8.5)
    assert undone.headers["X-Changed-Rows"] == f"movie-{alien}"
    assert undone.headers["X-Removed-Rows"] == ""
    assert undone.headers["X-Created-Rows"] == ""

    redone = redo(hx, token_of(undone))
    assert redone.status_code == 200
    assert movie(app, alien) == ("Alien", "Ridley Scott", 9.0)
    # The redo is a change set of its own, which can be undone in turn.
    assert undo(hx, token_of(redone)).status_code == 200
    assert movie(app, alien) == ("Alien", "Ridley Scott", 8.5)


def test_an_undo_updates_the_figures_the_page_shows(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    page = {**HX, "HX-Current-URL": "http://localhost/movies"}
    added = hx.post("/movies", data={"name": "Dune", "director": "D. V."})
    undone = hx.client.post(
        "/history/undo", data={"token": token_of(added)}, headers=page
    )
    # The count is swapped out of band: 3 movies again.
    assert re.search(
        r'<p id="movie-count" class="row-count" hx-swap-oob="true">\s*3 of 3 movies',
        undone.text,
    ), undone.text


def test_a_create_is_undone_and_redone_with_its_id(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    added = hx.post("/movies", data={"name": "Dune", "director": "D. V."})
    assert label_of(added) == "adding Dune"
    ((dune,),) = rows(app, "SELECT id FROM movies WHERE name = 'Dune'")

    undone = undo(hx, token_of(added))
    assert undone.status_code == 200
    assert movie(app, dune) is None
    assert undone.headers["X-Removed-Rows"] == f"movie-{dune}"

    redone = redo(hx, token_of(undone))
    assert redone.status_code == 200
    assert movie(app, dune) == ("Dune", "D. V.", None)
    assert redone.headers["X-Created-Rows"] == f"movie-{dune}"


def test_a_delete_is_undone_with_its_cascade(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    ratings = rows(
        app, "SELECT id, rating FROM ratings WHERE movie_id = :id ORDER BY id", id=alien
    )
    assert len(ratings) == 2
    deleted = hx.delete(f"/movies/{alien}")
    assert label_of(deleted) == "deleting Alien and 2 rows under it"
    assert movie(app, alien) is None
    assert rows(app, "SELECT id FROM ratings WHERE movie_id = :id", id=alien) == []

    undone = undo(hx, token_of(deleted))
    assert undone.status_code == 200
    assert movie(app, alien) == ("Alien", "Ridley Scott", 8.5)
    assert (
        rows(
            app,
            "SELECT id, rating FROM ratings WHERE movie_id = :id ORDER BY id",
            id=alien,
        )
        == ratings
    )
    created = set(undone.headers["X-Created-Rows"].split())
    assert created == {f"movie-{alien}"} | {f"rating-{r}" for r, _ in ratings}

    redone = redo(hx, token_of(undone))
    assert redone.status_code == 200
    assert movie(app, alien) is None
    assert rows(app, "SELECT id FROM ratings WHERE movie_id = :id", id=alien) == []


def test_an_undo_over_someone_elses_change_is_refused_naming_it(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    mine = hx.patch(f"/movies/{alien}", data={"rating": "9", "version": "1"})
    other = Hx(app.test_client())  # another browser
    theirs = other.patch(f"/movies/{alien}", data={"rating": "7", "version": "2"})
    assert theirs.status_code == 200

    refused = undo(hx, token_of(mine))
    assert refused.status_code == 409
    assert (
        f"Not done: since then, anonymous changed rating of movies {alien}."
        in refused.text
    )
    assert 'hx-swap-oob="beforeend:#toasts"' in refused.text
    assert movie(app, alien) == ("Alien", "Ridley Scott", 7.0)


# ------------------------------------------------------------ tokens


def test_forged_and_other_owners_tokens_are_404(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    token = token_of(hx.patch(f"/movies/{alien}", data={"name": "X", "version": "1"}))
    table, set_id, signature = token.split(".")
    other = Hx(app.test_client())
    forged = [
        f"{table}.{set_id}.{'0' * len(signature)}",  # a made-up signature
        f"{table}.{int(set_id) + 1}.{signature}",  # another set, same signature
        f"ratings.{set_id}.{signature}",  # another table
        f"nope.{set_id}.{signature}",
        f"{table}.x.{signature}",
        "",
    ]
    for bad in forged:
        assert undo(hx, bad).status_code == 404, bad
    assert undo(other, token).status_code == 404  # another person's token
    assert redo(hx, token).status_code == 404  # an undo token is no redo token
    assert movie(app, alien) == ("X", "Ridley Scott", 8.5)
    assert undo(hx, token).status_code == 200  # the real one still works
    assert movie(app, alien) == ("Alien", "Ridley Scott", 8.5)


def test_a_write_refused_names_no_change_set(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    refused = hx.patch(f"/movies/{alien}", data={"rating": "eleven", "version": "1"})
    assert refused.status_code == 422
    assert "X-Change-Set" not in refused.headers
    stale = hx.patch(f"/movies/{alien}", data={"rating": "3", "version": "0"})
    assert stale.status_code == 409
    assert "X-Change-Set" not in stale.headers


# ------------------------------------------------------------ imports


def upload(client: FlaskClient, data: bytes) -> Any:
    """Post a movies file to the import page, as htmx."""
    boundary, body = encode_multipart(
        {"resource": "movies", "file": FileStorage(io.BytesIO(data), filename="m.csv")}
    )
    return client.post(
        "/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=HX,
    )


def test_an_import_is_undone_from_its_result_page_by_its_owner_once(
    app: Flask, client: FlaskClient, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    data = (
        b"id,name,director,rating\r\n"
        b",Heat,Michael Mann,8.3\r\n"
        b"%d,Alien,Ridley Scott,9.9\r\n" % alien
    )
    previewed = upload(client, data)
    location = previewed.headers["HX-Push-Url"]
    done = client.post(location, headers=HX)
    assert done.status_code == 200
    assert "Undo this import" in done.text
    assert rows(app, "SELECT count(*) FROM movies WHERE name = 'Heat'") == [(1,)]
    assert movie(app, alien) == ("Alien", "Ridley Scott", 9.9)

    other = app.test_client()
    assert other.post(f"{location}/undo", headers=HX).status_code == 404
    assert movie(app, alien) == ("Alien", "Ridley Scott", 9.9)

    undone = client.post(f"{location}/undo", headers=HX)
    assert undone.status_code == 200
    assert "This import was undone" in undone.text
    assert "Undo this import" not in undone.text
    assert rows(app, "SELECT count(*) FROM movies WHERE name = 'Heat'") == [(0,)]
    assert movie(app, alien) == ("Alien", "Ridley Scott", 8.5)
    # Again (a resent form): shown as undone, not undone twice.
    client.patch(f"/movies/{alien}", data={"rating": "7", "version": "3"})
    again = client.post(f"{location}/undo", headers=HX)
    assert again.status_code == 200
    assert "This import was undone" in again.text
    assert movie(app, alien) == ("Alien", "Ridley Scott", 7.0)


def test_an_import_undo_over_a_later_edit_is_refused(
    app: Flask, client: FlaskClient, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    data = b"id,name,director,rating\r\n%d,Alien,Ridley Scott,9.9\r\n" % alien
    location = upload(client, data).headers["HX-Push-Url"]
    assert client.post(location, headers=HX).status_code == 200
    other = Hx(app.test_client())
    other.patch(f"/movies/{alien}", data={"rating": "2", "version": "2"})
    refused = client.post(f"{location}/undo", headers=HX)
    assert refused.status_code == 409
    assert "since then, anonymous changed rating" in refused.text
    assert "Undo this import" in refused.text
    assert movie(app, alien) == ("Alien", "Ridley Scott", 2.0)


# ------------------------------------------------------------ the write rules


@pytest.fixture
def guarded(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app with CSRF checks on, as in production."""
    built = make_app(database_url, tmp_path / "guarded", WTF_CSRF_ENABLED=True)
    yield built
    dispose(built)


def csrf_token(client: FlaskClient) -> str:
    """The CSRF token the page hands its scripts."""
    page = client.get("/movies").text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found
    return found.group(1)


def test_undo_without_a_csrf_token_changes_nothing(
    guarded: Flask, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    client = guarded.test_client()
    headers = {**HX, "X-CSRFToken": csrf_token(client)}
    saved = client.patch(
        f"/movies/{alien}", data={"rating": "9", "version": "1"}, headers=headers
    )
    token = token_of(saved)
    refused = client.post("/history/undo", data={"token": token}, headers=HX)
    assert refused.status_code in {400, 403}
    assert movie(guarded, alien) == ("Alien", "Ridley Scott", 9.0)
    done = client.post("/history/undo", data={"token": token}, headers=headers)
    assert done.status_code == 200
    assert movie(guarded, alien) == ("Alien", "Ridley Scott", 8.5)


def test_undo_in_read_only_mode_changes_nothing(
    app: Flask,
    client: FlaskClient,
    sample: dict[str, int],
    database_url: str,
    tmp_path: Path,
) -> None:
    alien = sample["alien"]
    token = token_of(
        client.patch(
            f"/movies/{alien}", data={"rating": "9", "version": "1"}, headers=HX
        )
    )
    read_only = make_app(database_url, tmp_path / "ro", READ_ONLY=True)
    try:
        visitor = read_only.test_client()
        cookie = client.get_cookie("session")
        assert cookie is not None  # the same browser: the token is its own
        visitor.set_cookie("session", cookie.value)
        refused = visitor.post("/history/undo", data={"token": token}, headers=HX)
        assert refused.status_code == 403
        assert movie(app, alien) == ("Alien", "Ridley Scott", 9.0)
        assert "change-undo" not in visitor.get("/movies").text
    finally:
        dispose(read_only)
    assert undo(Hx(client), token).status_code == 200


def test_the_buttons_are_on_the_page_for_writers(client: FlaskClient) -> None:
    page = client.get("/movies").text
    assert re.search(
        r'<button type="button" id="change-undo" disabled title="Nothing to undo"'
        r' aria-describedby="change-undo-what">Undo</button>',
        page,
    )
    assert 'id="change-redo"' in page
    assert 'id="change-undo-what" class="visually-hidden">Nothing to undo<' in page


def test_an_import_run_by_a_job_is_undone_too(
    database_url: str, tmp_path: Path
) -> None:
    from tests.test_views_imports import follow

    jobbed = make_app(database_url, tmp_path / "jobs", IMPORT_INLINE_BYTES=0)
    try:
        client = jobbed.test_client()
        data = b"id,name,director,rating\r\n,Heat,Michael Mann,8.3\r\n"
        location = follow(Hx(client), upload(client, data).headers["HX-Push-Url"])
        started = client.post(location.request.path, headers=HX)
        assert started.status_code == 202  # the child job imports it
        done = follow(Hx(client), location.request.path)
        assert "Undo this import" in done.text
        assert rows(jobbed, "SELECT count(*) FROM movies") == [(1,)]
        undone = client.post(f"{location.request.path}/undo", headers=HX)
        assert "This import was undone" in undone.text
        assert rows(jobbed, "SELECT count(*) FROM movies") == [(0,)]
    finally:
        dispose(jobbed)


def test_the_label_is_built_from_the_write_not_read_back_from_the_log(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        saved = hx.patch(
            f"/movies/{sample['alien']}", data={"rating": "9", "version": "1"}
        )
        added = hx.post("/movies", data={"name": "Dune", "director": "D. V."})
        deleted = hx.delete(f"/movies/{sample['blade']}")
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    assert label_of(saved) == "rating of Alien 8.5 → 9.0"
    assert label_of(added) == "adding Dune"
    assert label_of(deleted).startswith("deleting Blade Runner")
    # The writes insert into the log; none reads it back (FROM changes).
    inserts = [s for s in seen if re.search(r"INSERT INTO changes", s)]
    assert len(inserts) >= 3
    reads = [s for s in seen if re.search(r"\bFROM changes\b", s)]
    assert reads == [], reads
