"""The view model of a table page: a page past the end, filter values not applied."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.db import db
from app.models import Movie, Rating
from tests.conftest import Hx
from tests.live_html import assert_fragment, parse


def add_movies(app: Flask, count: int) -> None:
    """Insert numbered movies, each with one rating, straight into the database."""
    with app.app_context():
        movies = [
            Movie(name=f"Film {i:03d}", director=f"Director {i % 7}", rating=i % 11)
            for i in range(count)
        ]
        db.session.add_all(movies)
        db.session.flush()
        db.session.add_all(
            Rating(rating=1 + i % 10, author=f"A{i}", movie_id=m.id)
            for i, m in enumerate(movies)
        )
        db.session.commit()


def filter_request(hx: Hx, url: str, table: str = "movie") -> object:
    """GET as htmx does when the filter form of `table` triggered the request."""
    return hx.client.get(
        url, headers={"HX-Request": "true", "HX-Trigger": f"{table}-filter"}
    )


def data_rows(tree, table: str = "movie") -> list:
    """The display rows of a region's body."""
    return tree.by_id(f"{table}-rows").find_all("tr", class_="data-row")


# ------------------------------------------------------------ a page past the end

# issue 11: /movies?page=99 said "Page 99 of 6" over "No movies match this view."


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("/movies?page=99", "/movies?page=3"),
        ("/movies?page=4", "/movies?page=3"),
        ("/movies?q=film&sort=-rating&page=9&per_page=25", None),
        ("/movies?q=nothing+like+this&page=2", "/movies?q=nothing+like+this"),
        ("/ratings?page=7&per_page=100", "/ratings?page=2&per_page=100"),
        ("/ratings?min_rating=10&page=3", "/ratings?min_rating=10"),
    ],
)
def test_a_page_past_the_end_redirects_to_the_last_page(
    app: Flask, client: FlaskClient, url: str, canonical: str | None
) -> None:
    add_movies(app, 120)
    canonical = canonical or "/movies?q=film&sort=-rating&page=5&per_page=25"
    response = client.get(url)
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == canonical
    page = client.get(canonical)
    assert page.status_code == 200
    tree = parse(page.text)
    pager = tree.find("nav", class_="pager").text
    last = pager.split(" of ")[-1].split()[0]
    assert f"Page {last} of {last}" in pager


def test_a_fragment_past_the_end_is_the_last_page_and_pushes_it(
    app: Flask, hx: Hx
) -> None:
    add_movies(app, 120)
    response = hx.get("/movies?sort=name&page=99")
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    assert response.headers["HX-Push-Url"] == "/movies?sort=name&page=3"
    names = [r.find("td", data_field="name").text for r in data_rows(tree)]
    assert names == [f"Film {i:03d}" for i in range(100, 120)]
    assert "Page 3 of 3" in tree.find("nav", class_="pager").text
    assert tree.by_id("movie-page-prev")["href"] == "/movies?sort=name&page=2"


def test_the_last_page_itself_is_not_redirected(
    app: Flask, client: FlaskClient
) -> None:
    add_movies(app, 120)
    assert client.get("/movies?page=3").status_code == 200
    assert client.get("/movies?q=nothing+like+this").status_code == 200


# ------------------------------------------------------------ filter values not applied

# issue 12: a bad filter value left the previous rows under the new value and
# added a toast per keystroke that never went away.


@pytest.mark.parametrize(
    ("url", "table", "param", "applied", "note"),
    [
        (
            "/movies?q=film+00&min_rating=11",
            "movie",
            "min_rating",
            "/movies?q=film+00",
            "Minimum rating 11 is not applied: "
            "Minimum rating must be between 0 and 10.",
        ),
        (
            "/movies?q=film+00&min_rating=-3",
            "movie",
            "min_rating",
            "/movies?q=film+00",
            "Minimum rating -3 is not applied: "
            "Minimum rating must be between 0 and 10.",
        ),
        (
            "/ratings?author=A1&min_rating=7.5",
            "rating",
            "min_rating",
            "/ratings?author=A1",
            "Minimum rating 7.5 is not applied: Minimum rating must be a whole number.",
        ),
    ],
)
def test_a_bad_filter_value_from_the_form_is_shown_next_to_its_field(
    app: Flask,
    hx: Hx,
    url: str,
    table: str,
    param: str,
    applied: str,
    note: str,
) -> None:
    add_movies(app, 120)
    response = filter_request(hx, url, table)
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    # The table is the view without the bad value, and says so.
    expected = assert_fragment(hx.get(applied).text)
    assert [r["id"] for r in data_rows(tree, table)] == [
        r["id"] for r in data_rows(expected, table)
    ]
    assert tree.by_id(f"{table}-not-applied").text == note
    # The URL holds the view shown, not the value it could not apply.
    assert response.headers["HX-Push-Url"] == applied
    # The field's message, for the slot next to the field.
    slot = tree.by_id(f"{table}-filter-{param}-error")
    assert slot["hx-swap-oob"] == "true"
    assert slot["data-for"] == f"{table}-filter-{param}"
    assert slot.text == note.split(": ", 1)[1]


def test_a_good_filter_value_from_the_form_clears_the_field_messages(
    app: Flask, hx: Hx
) -> None:
    add_movies(app, 20)
    response = filter_request(hx, "/ratings?author=A1&min_rating=7&movie=", "rating")
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    assert tree.find(id="rating-not-applied") is None
    for param in ("author", "movie", "min_rating"):
        slot = tree.by_id(f"rating-filter-{param}-error")
        assert slot["hx-swap-oob"] == "true" and slot.text == ""
    assert response.headers["HX-Push-Url"] == "/ratings?author=A1&min_rating=7"


def test_every_bad_filter_value_gets_its_message(app: Flask, hx: Hx) -> None:
    response = filter_request(hx, "/movies?q=" + "x" * 201 + "&min_rating=abc")
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    assert tree.by_id("movie-filter-q-error").text == (
        "The search text must be at most 200 characters."
    )
    assert tree.by_id("movie-filter-min_rating-error").text == (
        "Minimum rating must be a number."
    )
    note = tree.by_id("movie-not-applied").text
    assert "Search movies “" + "x" * 40 + "…” is not applied" in note
    assert "Minimum rating abc is not applied" in note
    assert response.headers["HX-Push-Url"] == "/movies"


def test_the_filter_form_has_a_message_slot_per_field(client: FlaskClient) -> None:
    form = parse(client.get("/ratings").text).by_id("rating-filter")
    for param in ("author", "movie", "min_rating"):
        slot = form.by_id(f"rating-filter-{param}-error")
        assert slot.text == "" and "hx-swap-oob" not in slot.attrs
        assert slot["data-for"] == form.by_id(f"rating-filter-{param}")["id"]


@pytest.mark.parametrize(
    "url", ["/movies?min_rating=11", "/ratings?min_rating=7.5", "/movies?page=abc"]
)
def test_a_bad_value_elsewhere_is_still_400(
    client: FlaskClient, hx: Hx, url: str
) -> None:
    page = client.get(url)
    assert page.status_code == 400
    assert page.text.startswith("<!doctype html>")
    # Not from the filter form (a typed URL, a link): the error, as before.
    assert hx.get(url).status_code == 400
