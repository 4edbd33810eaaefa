"""What forms send and show: adding an exact duplicate asks first."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.db import db
from app.models import Movie, Rating
from tests.conftest import Hx, count
from tests.live_html import parse, top_level

# ------------------------------------------------------------ duplicates

# issue 13: an exact copy of a movie (name and director) was added silently, and
# the CSV import then refused rows matching it as ambiguous.

DUNE = {"name": "Dune", "director": "Denis Villeneuve", "rating": "8.0"}


def test_adding_an_exact_duplicate_asks_first(app: Flask, hx: Hx) -> None:
    assert hx.post("/movies", data=DUNE).status_code == 200
    response = hx.post("/movies", data={**DUNE, "rating": "7.5"})
    assert response.status_code == 422
    assert count(app, Movie, name="Dune") == 1
    form = top_level(response.text)[0]
    assert form["id"] == "movie-add"
    warning = form.by_id("movie-add-duplicate")
    assert warning.text == ("A movie with this name and director exists: add another?")
    assert warning["role"] == "alert"
    # What was typed stays, and the button now confirms.
    assert form.find("input", name="name")["value"] == "Dune"
    assert form.find("input", name="rating")["value"] == "7.5"
    button = form.find("button", type="submit")
    assert button.text == "Add another"
    assert button["aria-describedby"] == "movie-add-duplicate"
    confirm = form.find("input", name="confirm_duplicate")
    assert confirm["type"] == "hidden" and confirm["value"]
    again = hx.post(
        "/movies",
        data={**DUNE, "rating": "7.5", "confirm_duplicate": confirm["value"]},
    )
    assert again.status_code == 200
    assert count(app, Movie, name="Dune") == 2
    assert top_level(again.text)[0].find("input", name="confirm_duplicate") is None


def test_a_confirmation_is_for_the_movie_it_was_asked_about(app: Flask, hx: Hx) -> None:
    hx.post("/movies", data=DUNE)
    hx.post("/movies", data={**DUNE, "name": "Arrival"})
    asked = top_level(hx.post("/movies", data=DUNE).text)[0]
    token = asked.find("input", name="confirm_duplicate")["value"]
    # Changed to another existing movie before confirming: asked again.
    response = hx.post(
        "/movies", data={**DUNE, "name": "Arrival", "confirm_duplicate": token}
    )
    assert response.status_code == 422
    assert count(app, Movie, name="Arrival") == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "dune"},  # not exactly the same name
        {"director": "David Lynch"},
        {"name": " Dune "},  # spaces go; then it is the same, see below
    ],
)
def test_only_an_exact_match_asks(app: Flask, hx: Hx, changes: dict) -> None:
    hx.post("/movies", data=DUNE)
    response = hx.post("/movies", data={**DUNE, **changes})
    same = changes == {"name": " Dune "}
    assert response.status_code == (422 if same else 200)
    assert count(app, Movie) == (1 if same else 2)


def test_without_javascript_a_duplicate_asks_on_the_page(
    app: Flask, client: FlaskClient
) -> None:
    client.post("/movies", data=DUNE)
    response = client.post("/movies", data=DUNE)
    assert response.status_code == 422
    assert response.text.startswith("<!doctype html>")
    form = parse(response.text).by_id("movie-add")
    assert form.by_id("movie-add-duplicate").text == (
        "A movie with this name and director exists: add another?"
    )
    assert form.find("input", name="director")["value"] == "Denis Villeneuve"
    token = form.find("input", name="confirm_duplicate")["value"]
    assert count(app, Movie) == 1
    again = client.post("/movies", data={**DUNE, "confirm_duplicate": token})
    assert again.status_code == 303
    assert count(app, Movie, name="Dune") == 2


def test_an_invalid_duplicate_shows_its_errors_first(app: Flask, hx: Hx) -> None:
    hx.post("/movies", data=DUNE)
    response = hx.post("/movies", data={**DUNE, "rating": "12"})
    assert response.status_code == 422
    form = top_level(response.text)[0]
    assert form.find(id="movie-add-duplicate") is None
    assert form.find("input", name="rating")["aria-invalid"] == "true"


def test_ratings_declare_no_match_so_never_ask(app: Flask, hx: Hx) -> None:
    hx.post("/movies", data=DUNE)
    with app.app_context():
        dune = db.session.scalar(sa.select(Movie.id).where(Movie.name == "Dune"))
    for _ in range(2):
        response = hx.post(
            f"/movies/{dune}/ratings", data={"rating": "8", "author": "Eve"}
        )
        assert response.status_code == 200
    assert count(app, Rating, movie_id=dune, author="Eve") == 2
