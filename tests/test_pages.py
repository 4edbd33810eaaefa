"""Pages and fragments of the foundation's plain tables."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import Hx


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
