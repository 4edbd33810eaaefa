"""Pages and fragments of the foundation's plain tables."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.db import db
from app.models import Rating
from tests.conftest import Hx
from tests.test_views_imports import upload as upload_csv


def test_home_redirects_to_movies(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/movies"


def test_movies_page_lists_movies(client: FlaskClient, sample: dict) -> None:
    response = client.get("/movies")
    assert response.status_code == 200
    body = response.text
    assert body.startswith("<!doctype html>")
    assert "<caption>Movies</caption>" in body
    assert f'<tr id="movie-{sample["alien"]}"' in body
    assert "3 of 3 movies" in body
    assert "8.0 · 2" in body  # Alien: two ratings averaging 8.0
    assert "HX-Request" in response.headers["Vary"]


def test_movies_fragment_for_htmx(hx: Hx, sample: dict) -> None:
    response = hx.get("/movies?q=blade")
    assert response.status_code == 200
    assert not response.text.lstrip().startswith("<!doctype")
    assert 'id="movie-table"' in response.text
    assert "Blade Runner" in response.text
    assert "Alien" not in response.text
    assert "HX-Request" in response.headers["Vary"]


def test_history_restore_gets_full_page(client: FlaskClient) -> None:
    response = client.get(
        "/movies",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert response.text.startswith("<!doctype html>")


def test_ratings_page(client: FlaskClient, sample: dict) -> None:
    response = client.get("/ratings?movie=alien")
    assert response.status_code == 200
    assert "2 of 4 ratings" in response.text


def test_bad_query_is_400_with_message(client: FlaskClient, hx: Hx) -> None:
    response = client.get("/movies?sort=name;drop%20table%20movies")
    assert response.status_code == 400
    assert "Cannot sort by" in response.text
    response = hx.get("/movies?page=abc")
    assert response.status_code == 400
    assert 'role="alert"' in response.text
    assert "<!doctype" not in response.text


def test_unknown_url_is_404_page(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert "Not Found" in response.text


# Every GET route, by what it answers. A page must come back whole when htmx
# restores it from history (Back/Forward with its cache empty): htmx then swaps
# the answer into <body>, so a fragment would lose the header and heading.
PAGES = {
    "movies.index": "/movies",
    "ratings.index": "/ratings",
    "movies.edit": "/movies/{alien}/edit",
    "ratings.edit": "/ratings/{rating}/edit",
    "csv_io.index": "/import",
    "csv_io.show": "{upload}",
    "auth.login": "/login",
    "changes.index": "/changes",
    "changes.history": "/movies/{alien}/history",
}
NOT_PAGES = {
    "static",  # files
    "home",  # a redirect
    "movies.row",  # a row fragment for the row's own swaps
    "ratings.row",
    "movies.children",  # a movie's ratings row; as a page, see the test below
    "ratings.children",  # ratings declare no children: always 404
    "csv_io.export_csv",  # downloads
    "csv_io.export_children",
    "changes.export_csv",
    "live.since",  # JSON (or 204) for a table's live updates, polled
    "health.healthz",  # JSON
    "auth.csrf_token",
}


def test_every_get_route_is_classified(app: Flask) -> None:
    # A new page joins PAGES (and so the history test), or NOT_PAGES with a reason.
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if "GET" in r.methods}
    assert endpoints == set(PAGES) | NOT_PAGES


@pytest.mark.parametrize("endpoint", sorted(PAGES))
def test_history_restore_of_every_page_is_the_whole_page(
    client: FlaskClient, sample: dict, endpoint: str
) -> None:
    with client.application.app_context():
        rating = db.session.scalar(sa.select(Rating.id).limit(1))
    upload = ""
    if endpoint == "csv_io.show":
        data = b"id,name,director,rating\r\n,Heat,Michael Mann,8.3\r\n"
        upload = upload_csv(client, "movies", data).headers["HX-Push-Url"]
    url = PAGES[endpoint].format(alien=sample["alien"], rating=rating, upload=upload)
    plain = client.get(url)
    restored = client.get(
        url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert plain.status_code == restored.status_code == 200
    for response in (plain, restored):
        body = response.text
        assert body.lstrip().startswith("<!doctype html>")
        assert '<header class="site-header">' in body
        assert "<h1" in body or "<caption>" in body
    assert _page_text(restored.text) == _page_text(plain.text)


def _page_text(html: str) -> str:
    """The page without what differs between two answers (nonces, tokens).

    PostgreSQL's snapshot (data-live-snapshot) moves with any transaction in the
    cluster, this test's or not.
    """
    return re.sub(r'(nonce|value|content|data-live-snapshot)="[^"]*"', r'\1=""', html)


def test_a_child_row_opened_as_a_page_sends_to_the_filtered_table(
    client: FlaskClient, hx: Hx, sample: dict
) -> None:
    alien = sample["alien"]
    assert hx.get(f"/movies/{alien}/ratings").text.lstrip().startswith("<tr ")
    for headers in ({}, {"HX-Request": "true", "HX-History-Restore-Request": "true"}):
        response = client.get(f"/movies/{alien}/ratings", headers=headers)
        assert response.status_code == 303
        assert response.headers["Location"].startswith(f"/ratings?movie_id={alien}")
