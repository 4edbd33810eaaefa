"""Adding, deleting and undoing rows; the ratings row under a movie; no-JS forms."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.db import db
from app.models import DeletedRow, Movie, Rating
from tests.conftest import Hx, count
from tests.live_html import assert_fragment, parse, top_level


def rows(app: Flask, model: type, **where: object) -> list[dict]:
    """Read rows straight from the database, by id."""
    table = model.__table__
    stmt = sa.select(table).order_by(table.c.id)
    for name, value in where.items():
        stmt = stmt.where(table.c[name] == value)
    with app.app_context(), db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def partial_rows(tree, target: str):
    """The rows an <hx-partial> puts into `target`, and its swap style."""
    for el in tree.find_all("hx-partial"):
        if el["hx-target"] == target:
            return el["hx-swap"], el.find_all("tr", class_="data-row")
    raise AssertionError(f"no hx-partial for {target}")


# ------------------------------------------------------------ add a movie


def test_add_movie_returns_fresh_form_new_row_and_count(
    app: Flask, hx: Hx, sample: dict
) -> None:
    response = hx.client.post(
        "/movies",
        data={"name": "Heat", "director": "Michael Mann", "rating": "8.3"},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://localhost/movies?q=ridley",
        },
    )
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    (new,) = rows(app, Movie, name="Heat")
    assert (new["director"], new["rating"]) == ("Michael Mann", 8.3)
    first = top_level(response.text)[0]
    assert first.tag == "form" and first["id"] == "movie-add"
    assert first.find("input", name="name")["value"] == ""
    assert "autofocus" in first.find("input", name="name").attrs
    swap, (row,) = partial_rows(tree, "#movie-rows")
    assert swap == "afterbegin"
    assert row["id"] == f"movie-{new['id']}"
    assert "is-new" in row.classes
    assert row.by_id(f"movie-{new['id']}-ratings-summary").text == "no ratings"
    counter = tree.by_id("movie-count")
    assert counter["hx-swap-oob"] == "true"
    # Counted for the filter the page shows (q=ridley), out of all movies.
    assert counter.text == "2 of 4 movies"


def test_add_movie_invalid_shows_messages_per_field(
    app: Flask, hx: Hx, sample: dict
) -> None:
    response = hx.post("/movies", data={"name": " ", "director": "X", "rating": "12"})
    assert response.status_code == 422
    form = top_level(response.text)[0]
    assert form["id"] == "movie-add"
    name = form.find("input", name="name")
    assert name["aria-invalid"] == "true"
    assert form.by_id(name["aria-describedby"]).text == "Name is required."
    rating = form.find("input", name="rating")
    assert form.by_id(rating["aria-describedby"]).text == (
        "Rating must be between 0 and 10."
    )
    assert "aria-invalid" not in form.find("input", name="director").attrs
    assert form.find("input", name="director")["value"] == "X"
    assert "autofocus" in name.attrs  # the first field to fix
    assert count(app, Movie) == 3


def test_add_movie_without_javascript_redirects(
    app: Flask, client: FlaskClient, sample: dict
) -> None:
    response = client.post(
        "/movies", data={"name": "Heat", "director": "Michael Mann", "rating": ""}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/movies"
    assert count(app, Movie, name="Heat") == 1
    page = client.get("/movies")
    assert "Added “Heat”." in parse(page.text).by_id("toasts").text


def test_add_movie_without_javascript_invalid_is_the_page_with_messages(
    app: Flask, client: FlaskClient, sample: dict
) -> None:
    response = client.post("/movies", data={"name": "", "director": "", "rating": ""})
    assert response.status_code == 422
    assert response.text.startswith("<!doctype html>")
    form = parse(response.text).by_id("movie-add")
    assert [p.text for p in form.find_all("p", role="alert")] == [
        "Name is required.",
        "Director is required.",
    ]
    assert count(app, Movie) == 3


# ------------------------------------------------------------ delete and undo


def test_delete_movie_empty_body_toast_and_count(
    app: Flask, hx: Hx, sample: dict
) -> None:
    alien = sample["alien"]
    response = hx.delete(f"/movies/{alien}")
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    # Nothing but out-of-band parts: the row itself is swapped for nothing.
    assert all(el.get("hx-swap-oob") for el in top_level(response.text))
    toast_box = tree.find("div", hx_swap_oob="beforeend:#toasts")
    assert "Deleted “Alien”." in toast_box.text
    undo = toast_box.find("form")
    assert undo["hx-post"] == "/movies/undo"
    assert toast_box.find("button", class_="undo-button").text == "Undo"
    assert tree.by_id("movie-count").text == "2 of 2 movies"
    assert count(app, Movie, id=alien) == 0
    assert count(app, Rating, movie_id=alien) == 0  # cascade
    token = undo.find("input", name="token")["value"]
    assert count(app, DeletedRow, token=token) == 1


def test_undo_restores_movie_and_ratings_with_their_ids(
    app: Flask, hx: Hx, sample: dict
) -> None:
    alien = sample["alien"]
    ratings_before = rows(app, Rating, movie_id=alien)
    movie_before = rows(app, Movie, id=alien)
    tree = assert_fragment(hx.delete(f"/movies/{alien}").text)
    token = tree.find("input", name="token")["value"]
    response = hx.post("/movies/undo", data={"token": token})
    assert response.status_code == 200
    assert rows(app, Movie, id=alien) == movie_before
    assert rows(app, Rating, movie_id=alien) == ratings_before
    tree = assert_fragment(response.text)
    toast = top_level(response.text)[0]
    assert "toast" in toast.classes and toast.text.startswith("Restored “Alien”.")
    swap, (row,) = partial_rows(tree, "#movie-rows")
    assert swap == "afterbegin" and row["id"] == f"movie-{alien}"
    assert row.by_id(f"movie-{alien}-ratings-summary").text == "8.0 · 2"
    assert tree.by_id("movie-count").text == "3 of 3 movies"
    # An undo is used once.
    again = hx.post("/movies/undo", data={"token": token})
    assert again.status_code == 404
    assert "can no longer be undone" in assert_fragment(again.text).text


@pytest.mark.parametrize("token", ["", "nope", "x" * 100])
def test_undo_with_a_bad_token_is_404(hx: Hx, sample: dict, token: str) -> None:
    assert hx.post("/movies/undo", data={"token": token}).status_code == 404


def test_undo_of_a_rating_token_on_movies_is_404(
    app: Flask, hx: Hx, sample: dict
) -> None:
    tree = assert_fragment(hx.delete("/ratings/1").text)
    token = tree.find("input", name="token")["value"]
    assert hx.post("/movies/undo", data={"token": token}).status_code == 404
    assert hx.post("/ratings/undo", data={"token": token}).status_code == 200
    assert count(app, Rating, id=1) == 1


def test_delete_missing_movie_is_404(hx: Hx, sample: dict) -> None:
    assert hx.delete("/movies/999").status_code == 404


def test_delete_without_javascript_redirects_back_with_undo(
    app: Flask, client: FlaskClient, sample: dict
) -> None:
    response = client.post(
        f"/movies/{sample['cure']}/delete", data={"next": "/movies?q=cu"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/movies?q=cu"
    assert count(app, Movie, id=sample["cure"]) == 0
    page = parse(client.get("/movies?q=cu").text)
    toast = page.by_id("toasts")
    assert "Deleted “Cure”." in toast.text
    form = toast.find("form")
    assert form["action"] == "/movies/undo" and form["method"] == "post"
    assert form.find("input", name="next")["value"] == "/movies?q=cu"
    undone = client.post(
        "/movies/undo",
        data={
            "token": form.find("input", name="token")["value"],
            "next": "/movies?q=cu",
        },
    )
    assert undone.status_code == 303
    assert undone.headers["Location"] == "/movies?q=cu"
    assert count(app, Movie, id=sample["cure"]) == 1
    assert count(app, Rating, movie_id=sample["cure"]) == 1


@pytest.mark.parametrize(
    "unsafe", ["//evil.example/", "https://evil.example/", "\\\\x"]
)
def test_redirects_stay_on_this_site(
    client: FlaskClient, sample: dict, unsafe: str
) -> None:
    response = client.post(f"/movies/{sample['cure']}/delete", data={"next": unsafe})
    assert response.headers["Location"] == "/movies"


def test_ratings_page_delete_updates_its_own_count(hx: Hx, sample: dict) -> None:
    response = hx.client.delete(
        "/ratings/1",
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://localhost/ratings?author=b",
        },
    )
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    assert tree.by_id("rating-count").text == "1 of 3 ratings"  # Bo, of 3 left
    assert "Deleted “rating 9 by Ana”." in tree.text


# ------------------------------------------------------------ ratings under a movie


def test_ratings_row_fragment(hx: Hx, sample: dict) -> None:
    alien = sample["alien"]
    response = hx.get(f"/movies/{alien}/ratings")
    assert response.status_code == 200
    (row,) = top_level(response.text)
    assert row.tag == "tr" and row["id"] == f"movie-{alien}-ratings"
    assert row["data-child-of"] == f"movie-{alien}"
    assert row.find("td")["colspan"] == "6"
    table = row.by_id(f"movie-{alien}-ratings-table")
    assert table.find("caption").text == "Ratings of Alien"
    found = [
        (r.find("td", data_field="rating").text, r.find("td", data_field="author").text)
        for r in row.by_id(f"movie-{alien}-ratings-rows").find_all(
            "tr", class_="data-row"
        )
    ]
    assert found == [("7", "Bo"), ("9", "Ana")]  # newest first
    form = row.by_id(f"movie-{alien}-rating-add")
    assert form["hx-post"] == f"/movies/{alien}/ratings"
    labels = [
        form.find("label", for_=i["id"]).text
        for i in form.find_all("input", type="text")
    ]
    assert labels == ["Rating", "Author"]
    assert form.find("button").text == "Add rating"
    deletes = [b.text for b in row.find_all("button", class_="delete-button")]
    assert deletes == ["Delete rating 7 by Bo", "Delete rating 9 by Ana"]


def test_ratings_row_of_a_missing_movie_is_404(hx: Hx, sample: dict) -> None:
    assert hx.get("/movies/999/ratings").status_code == 404


def test_add_rating_updates_the_movie_summary(app: Flask, hx: Hx, sample: dict) -> None:
    cure = sample["cure"]
    response = hx.post(
        f"/movies/{cure}/ratings", data={"rating": "10", "author": "Eve"}
    )
    assert response.status_code == 200
    (new,) = rows(app, Rating, movie_id=cure, author="Eve")
    assert (new["rating"], new["movie_name"]) == (10, "Cure")
    tree = assert_fragment(response.text)
    form = top_level(response.text)[0]
    assert form["id"] == f"movie-{cure}-rating-add"
    swap, (row,) = partial_rows(tree, f"#movie-{cure}-ratings-rows")
    assert swap == "afterbegin" and row["id"] == f"rating-{new['id']}"
    assert row.find("td", data_field="movie_name") is None
    summary = tree.by_id(f"movie-{cure}-ratings-summary")
    assert summary["hx-swap-oob"] == "true"
    assert summary.text == "8.0 · 2"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"rating": "11", "author": "Eve"},
            "rating",
            "Rating must be between 1 and 10.",
        ),
        ({"rating": "x", "author": "Eve"}, "rating", "Rating must be a whole number."),
        ({"rating": "5", "author": "  "}, "author", "Author is required."),
    ],
)
def test_add_rating_invalid(
    app: Flask, hx: Hx, sample: dict, data: dict, field: str, message: str
) -> None:
    cure = sample["cure"]
    response = hx.post(f"/movies/{cure}/ratings", data=data)
    assert response.status_code == 422
    form = top_level(response.text)[0]
    assert form["id"] == f"movie-{cure}-rating-add"
    box = form.find("input", name=field)
    assert box["aria-invalid"] == "true"
    assert form.by_id(box["aria-describedby"]).text == message
    assert count(app, Rating, movie_id=cure) == 1


def test_add_rating_ignores_a_movie_id_in_the_form(
    app: Flask, hx: Hx, sample: dict
) -> None:
    cure, alien = sample["cure"], sample["alien"]
    hx.post(
        f"/movies/{cure}/ratings",
        data={"rating": "5", "author": "Eve", "movie_id": alien},
    )
    assert count(app, Rating, movie_id=cure, author="Eve") == 1


def test_delete_rating_under_its_movie_and_undo(
    app: Flask, hx: Hx, sample: dict
) -> None:
    alien = sample["alien"]
    (_ana, bo) = rows(app, Rating, movie_id=alien)
    response = hx.delete(f"/ratings/{bo['id']}?nested=1")
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    assert tree.by_id(f"movie-{alien}-ratings-summary").text == "9.0 · 1"
    assert tree.find("input", name="nested")["value"] == "1"
    assert count(app, Rating, id=bo["id"]) == 0
    token = tree.find("input", name="token")["value"]
    undone = hx.post("/ratings/undo", data={"token": token, "nested": "1"})
    assert undone.status_code == 200
    assert rows(app, Rating, id=bo["id"]) == [bo]
    tree = assert_fragment(undone.text)
    swap, (row,) = partial_rows(tree, f"#movie-{alien}-ratings-rows")
    assert row["id"] == f"rating-{bo['id']}"
    assert tree.by_id(f"movie-{alien}-ratings-summary").text == "8.0 · 2"


def test_undo_after_the_movie_is_gone_is_refused(
    app: Flask, hx: Hx, sample: dict
) -> None:
    tree = assert_fragment(hx.delete("/ratings/1?nested=1").text)
    token = tree.find("input", name="token")["value"]
    hx.delete(f"/movies/{sample['alien']}")
    response = hx.post("/ratings/undo", data={"token": token, "nested": "1"})
    # The rating's movie no longer exists: the database refuses, nothing half-done.
    assert response.status_code == 409
    assert "Could not undo" in assert_fragment(response.text).find(role="alert").text
    assert count(app, Rating, id=1) == 0
    assert count(app, DeletedRow, token=token) == 1


# ------------------------------------------------------------ no-JS edit form


def test_edit_page_and_save(app: Flask, client: FlaskClient, sample: dict) -> None:
    alien = sample["alien"]
    page = client.get(f"/movies/{alien}/edit?next=/movies?sort=-rating")
    assert page.status_code == 200
    form = parse(page.text).find("form", class_="edit-form")
    assert form["action"] == f"/movies/{alien}"
    assert form.find("input", name="name")["value"] == "Alien"
    assert form.find("input", name="rating")["value"] == "8.5"
    assert form.find("input", name="version")["value"] == "1"
    assert form.find("input", name="next")["value"] == "/movies?sort=-rating"
    response = client.post(
        f"/movies/{alien}",
        data={
            "name": "Alien",
            "director": "Sir Ridley Scott",
            "rating": "8.6",
            "version": "1",
            "next": "/movies?sort=-rating",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/movies?sort=-rating"
    (movie,) = rows(app, Movie, id=alien)
    assert (movie["director"], movie["rating"], movie["version"]) == (
        "Sir Ridley Scott",
        8.6,
        2,
    )


def test_edit_page_save_invalid_is_422_with_messages(
    app: Flask, client: FlaskClient, sample: dict
) -> None:
    alien = sample["alien"]
    response = client.post(
        f"/movies/{alien}",
        data={"name": "", "director": "X", "rating": "99", "version": "1"},
    )
    assert response.status_code == 422
    form = parse(response.text).find("form", class_="edit-form")
    assert [p.text for p in form.find_all("p", role="alert")] == [
        "Name is required.",
        "Rating must be between 0 and 10.",
    ]
    assert form.find("input", name="rating")["value"] == "99"
    assert rows(app, Movie, id=alien)[0]["name"] == "Alien"


def test_edit_page_save_conflict_is_409_and_saving_again_keeps_mine(
    app: Flask, client: FlaskClient, hx: Hx, sample: dict
) -> None:
    alien = sample["alien"]
    hx.patch(f"/movies/{alien}", data={"director": "R. Scott", "version": "1"})
    mine = {"name": "Alien", "director": "Ridley", "rating": "8.5"}
    response = client.post(f"/movies/{alien}", data={**mine, "version": "1"})
    assert response.status_code == 409
    tree = parse(response.text)
    assert "Stored now:" in tree.find(role="alert").text
    assert "“R. Scott”" in tree.find(role="alert").text
    form = tree.find("form", class_="edit-form")
    assert form.find("input", name="director")["value"] == "Ridley"
    assert form.find("input", name="version")["value"] == "2"
    assert rows(app, Movie, id=alien)[0]["director"] == "R. Scott"
    again = client.post(f"/movies/{alien}", data={**mine, "version": "2"})
    assert again.status_code == 303
    assert rows(app, Movie, id=alien)[0]["director"] == "Ridley"


def test_rating_edit_page(app: Flask, client: FlaskClient, sample: dict) -> None:
    form = parse(client.get("/ratings/1/edit").text).find("form", class_="edit-form")
    assert [i["name"] for i in form.find_all("input", type="text")] == [
        "rating",
        "author",
    ]
    response = client.post(
        "/ratings/1", data={"rating": "4", "author": "Ana", "version": "1"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/ratings"
    assert rows(app, Rating, id=1)[0]["rating"] == 4


def test_edit_page_of_missing_row_is_404(client: FlaskClient) -> None:
    assert client.get("/movies/999/edit").status_code == 404


# ------------------------------------------------------------ CSRF


def test_writes_need_the_csrf_token(database_url: str, tmp_path, sample: dict) -> None:
    from tests.conftest import dispose, make_app

    app = make_app(database_url, tmp_path / "csrf", WTF_CSRF_ENABLED=True)
    try:
        client = app.test_client()
        page = client.get("/movies")
        token = parse(page.text).find("meta", name="csrf-token")["content"]
        url = f"/movies/{sample['alien']}"
        data = {"name": "Aliens", "version": "1"}
        refused = client.patch(url, data=data, headers={"HX-Request": "true"})
        assert refused.status_code == 400
        assert count(app, Movie, name="Aliens") == 0
        accepted = client.patch(
            url, data=data, headers={"HX-Request": "true", "X-CSRFToken": token}
        )
        assert accepted.status_code == 200
        assert count(app, Movie, name="Aliens") == 1
    finally:
        dispose(app)
