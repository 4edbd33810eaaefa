"""Inline editing: cell editors, row fragments and PATCH with its 200/422/409/404."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from app.crud import CrudService
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES
from tests.conftest import Hx
from tests.live_html import Element, assert_fragment, parse, top_level


def stored(app: Flask, model: type, row_id: int) -> dict | None:
    """Read a row straight from the database."""
    table = model.__table__
    with app.app_context(), db.engine.connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.id == row_id)).mappings()
        row = found.first()
    return dict(row) if row else None


def bump(app: Flask, movie_id: int, **values: object) -> None:
    """Change a movie as another person would (its version goes up)."""
    with app.app_context():
        movie = db.session.get(Movie, movie_id)
        for name, value in values.items():
            setattr(movie, name, value)
        db.session.commit()


def only(html: str) -> Element:
    """The single top-level element of a fragment."""
    assert_fragment(html)
    elements = top_level(html)
    assert len(elements) == 1, [e.tag for e in elements]
    return elements[0]


# ------------------------------------------------------------ the editor

# Issue 10: editors open with no round trip. Each grid carries one <template> per
# inline-editable column, drawn by the same code as a refused save's editor.


@pytest.mark.parametrize(
    ("field", "label", "mode"),
    [("name", "Name", None), ("director", "Director", None),
     ("rating", "Rating", "decimal")],
)  # fmt: skip
def test_every_editable_column_has_an_editor_template(
    hx: Hx, sample: dict, field: str, label: str, mode: str | None
) -> None:
    tree = parse(hx.get("/movies").text)
    grid = tree.by_id("movie-table").find("table")
    template = grid.find("template", data_editor=field)
    form = template.find("form", class_="cell-editor")
    assert "hx-patch" not in form.attrs  # app.js sends it, through the row's queue
    box = form.find("input", name=field)
    assert box["aria-label"] == label
    assert box["value"] == "" and box["data-original"] == ""
    assert box.get("inputmode") == mode
    error = form.find("p", class_="field-error")
    assert error["role"] == "alert" and "hidden" in error.attrs
    buttons = [b.text for b in form.find_all("button")]
    assert buttons == ["Save", "Cancel"]
    assert grid.find("template", data_none="").find(class_="none") is not None


def test_only_editable_columns_get_templates(hx: Hx, sample: dict) -> None:
    tree = parse(hx.get(f"/movies/{sample['alien']}/ratings").text)
    nested = tree.find("table", class_="nested-grid")
    editors = [
        t["data-editor"]
        for t in nested.find_all("template")
        if "data-editor" in t.attrs
    ]
    assert editors == ["rating", "author"]  # movie_name is derived, never typed
    labels = [
        t.find("input")["aria-label"]
        for t in nested.find_all("template")
        if "data-editor" in t.attrs
    ]
    assert labels == ["Rating", "Author"]


def test_rows_carry_their_version_and_where_a_save_goes(
    app: Flask, hx: Hx, sample: dict
) -> None:
    movie = sample["alien"]
    row = parse(hx.get("/movies").text).by_id(f"movie-{movie}")
    assert row["data-version"] == "1"
    assert row["data-update-url"] == f"/movies/{movie}"
    bump(app, movie, director="R. Scott")
    row = parse(hx.get("/movies").text).by_id(f"movie-{movie}")
    assert row["data-version"] == "2"


def test_no_request_opens_an_editor(hx: Hx, sample: dict) -> None:
    # The per-cell editor fragment of the old design is gone.
    assert hx.get(f"/movies/{sample['alien']}/cells/name/edit").status_code == 404


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/movies/999/row", 404),
        ("/ratings/999/row?nested=1", 404),
    ],
)
def test_cell_and_row_errors(hx: Hx, sample: dict, url: str, status: int) -> None:
    response = hx.get(url)
    assert response.status_code == status
    alert = assert_fragment(response.text).find(role="alert")
    assert alert is not None and alert.text


def test_row_fragment(hx: Hx, sample: dict) -> None:
    movie = sample["blade"]
    response = hx.get(f"/movies/{movie}/row")
    assert response.status_code == 200
    row = only(response.text)
    assert row.tag == "tr" and row["id"] == f"movie-{movie}"
    assert row["data-row-url"] == f"/movies/{movie}/row"
    assert row.find("td", data_field="name").text == "Blade Runner"
    assert row.by_id(f"movie-{movie}-ratings-summary").text == "8.0 · 1"


def test_rating_row_under_its_movie_drops_the_movie_column(
    hx: Hx, sample: dict
) -> None:
    plain = only(hx.get("/ratings/1/row").text)
    nested = only(hx.get("/ratings/1/row?nested=1").text)
    assert [td.get("data-field") for td in plain.find_all("td")][:3] == [
        "movie_name", "rating", "author"
    ]  # fmt: skip
    assert [td.get("data-field") for td in nested.find_all("td")][:2] == [
        "rating", "author"
    ]  # fmt: skip
    assert nested["data-row-url"] == "/ratings/1/row?nested=1"
    assert nested["data-update-url"] == "/ratings/1?nested=1"
    assert nested["data-version"] == "1"


# ------------------------------------------------------------ saving


@pytest.mark.parametrize(
    ("field", "typed", "shown", "kept"),
    [
        ("name", "  Aliens ", "Aliens", "Aliens"),
        ("director", "James Cameron", "James Cameron", "James Cameron"),
        ("rating", "8.4", "8.4", 8.4),
        ("rating", "", "— none", None),
    ],
)
def test_patch_saves_one_field_and_returns_the_row(
    app: Flask, hx: Hx, sample: dict, field: str, typed: str, shown: str, kept: object
) -> None:
    movie = sample["alien"]
    before = stored(app, Movie, movie)
    response = hx.patch(f"/movies/{movie}", data={field: typed, "version": "1"})
    assert response.status_code == 200
    row = only(response.text)
    assert row["id"] == f"movie-{movie}"
    assert row.by_id(f"movie-{movie}-{field}").text == shown
    # The re-rendered row carries the new version for the next edit.
    assert row["data-version"] == "2"
    after = stored(app, Movie, movie)
    assert after[field] == kept
    assert after["version"] == 2
    others = {k for k in ("name", "director", "rating") if k != field}
    assert {k: after[k] for k in others} == {k: before[k] for k in others}


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("name", "", "Name is required."),
        ("name", "   ", "Name is required."),
        ("rating", "11", "Rating must be between 0 and 10."),
        ("rating", "abc", "Rating must be a number."),
        ("rating", "7.25", "Rating can have at most 1 decimal place."),
        ("director", "x" * 500, "Director must be at most 120 characters."),
    ],
)
def test_invalid_value_keeps_the_editor_open_with_the_message(
    app: Flask, hx: Hx, sample: dict, field: str, typed: str, message: str
) -> None:
    movie = sample["alien"]
    before = stored(app, Movie, movie)
    response = hx.patch(f"/movies/{movie}", data={field: typed, "version": "1"})
    assert response.status_code == 422
    row = only(response.text)
    cell = row.by_id(f"movie-{movie}-{field}")
    assert "editing" in cell.classes
    box = cell.find("input", name=field)
    assert box["value"] == typed  # what was typed stays, to be corrected
    assert box["aria-invalid"] == "true"
    error = cell.by_id(box["aria-describedby"])
    assert error["role"] == "alert"
    assert error.text == message
    # The value the editor started from: the stored one (for the merge).
    assert box["data-original"] == {"name": "Alien", "director": "Ridley Scott",
                                    "rating": "8.5"}[field]  # fmt: skip
    assert stored(app, Movie, movie) == before


def test_stale_version_is_a_conflict_showing_both_values(
    app: Flask, hx: Hx, sample: dict
) -> None:
    movie = sample["alien"]
    bump(app, movie, name="Alien (1979)")
    response = hx.patch(f"/movies/{movie}", data={"name": "Alien!", "version": "1"})
    assert response.status_code == 409
    row = only(response.text)
    cell = row.by_id(f"movie-{movie}-name")
    assert "conflict" in cell.classes
    assert cell.find("strong", class_="theirs").text == "Alien (1979)"
    assert cell.find("strong", class_="mine").text == "Alien!"
    assert cell.find(role="alert") is not None
    buttons = [b.text for b in cell.find_all("button")]
    assert buttons == ["Keep mine", "Take theirs"]
    assert cell.find("button", data_take_theirs="")["hx-get"] == f"/movies/{movie}/row"
    # Keep mine resubmits what was typed with the version now stored, starting
    # from the value now stored.
    assert row["data-version"] == "2"
    assert cell.find("form")["data-original"] == "Alien (1979)"
    assert cell.find("input", name="name")["value"] == "Alien!"
    assert stored(app, Movie, movie)["name"] == "Alien (1979)"
    again = hx.patch(f"/movies/{movie}", data={"name": "Alien!", "version": "2"})
    assert again.status_code == 200
    assert stored(app, Movie, movie)["name"] == "Alien!"


def test_conflict_is_checked_before_validation(
    app: Flask, hx: Hx, sample: dict
) -> None:
    bump(app, sample["alien"], rating=9.0)
    response = hx.patch(
        f"/movies/{sample['alien']}", data={"rating": "x", "version": "1"}
    )
    assert response.status_code == 409
    assert stored(app, Movie, sample["alien"])["rating"] == 9.0


def test_patch_of_a_deleted_row_is_404(app: Flask, hx: Hx, sample: dict) -> None:
    # Issue 10: the message says so and quotes what was typed, to copy it.
    response = hx.patch("/movies/999", data={"name": "X", "version": "1"})
    assert response.status_code == 404
    alert = assert_fragment(response.text).find(role="alert")
    assert alert.text == (
        "Not found. This movie was deleted by someone else. You typed: “X”."
    )


def test_delete_of_a_deleted_row_is_404(app: Flask, hx: Hx, sample: dict) -> None:
    response = hx.delete("/movies/999")
    assert response.status_code == 404
    alert = assert_fragment(response.text).find(role="alert")
    assert alert.text == "Not found. This movie was deleted by someone else."


@pytest.mark.parametrize("version", [None, "", "abc", "-1", "1.5"])
def test_patch_needs_a_well_formed_version(
    app: Flask, hx: Hx, sample: dict, version: str | None
) -> None:
    data = {"name": "X"} if version is None else {"name": "X", "version": version}
    response = hx.patch(f"/movies/{sample['alien']}", data=data)
    assert response.status_code == 400
    assert stored(app, Movie, sample["alien"])["name"] == "Alien"


def test_patch_of_a_field_no_cell_shows_answers_with_a_toast(
    app: Flask, hx: Hx, sample: dict
) -> None:
    response = hx.patch("/ratings/1", data={"movie_id": "2", "version": "1"})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#toasts"
    assert response.headers["HX-Reswap"] == "beforeend"
    toast = only(response.text)
    assert toast["role"] == "alert"
    assert "Movie id cannot be set here." in toast.text
    assert stored(app, Rating, 1)["movie_id"] == sample["alien"]


def test_rating_edit_under_its_movie_updates_the_movie_summary(
    app: Flask, hx: Hx, sample: dict
) -> None:
    alien = sample["alien"]
    with app.app_context():
        rating_id = db.session.scalar(
            sa.select(Rating.id).where(Rating.movie_id == alien, Rating.author == "Bo")
        )
    response = hx.patch(
        f"/ratings/{rating_id}?nested=1", data={"rating": "3", "version": "1"}
    )
    assert response.status_code == 200
    tree = assert_fragment(response.text)
    row = tree.by_id(f"rating-{rating_id}")
    assert row.find("td", data_field="rating").text == "3"
    assert row.find("td", data_field="movie_name") is None
    # The movie's "average · count" comes along out of band, inside a <template>
    # so the row before it parses as a table row.
    template = tree.find("template")
    summary = template.by_id(f"movie-{alien}-ratings-summary")
    assert summary["hx-swap-oob"] == "true"
    assert summary.text == "6.0 · 2"  # (9 + 3) / 2
    assert stored(app, Rating, rating_id)["rating"] == 3


def test_a_movie_edit_answers_with_its_ratings_summary_as_of_the_write(
    app: Flask, hx: Hx, sample: dict
) -> None:
    # The summary is read inside the write (Reader.keep_summaries): the row that
    # comes back shows it, and the next row drawn reads its own again.
    alien, blade = sample["alien"], sample["blade"]
    response = hx.patch(f"/movies/{alien}", data={"director": "R.S.", "version": "1"})
    assert response.status_code == 200
    row = only(response.text)
    assert row.find("td", data_field="director").text == "R.S."
    assert row.by_id(f"movie-{alien}-ratings-summary").text == "8.0 · 2"  # 9, 7
    other = only(hx.get(f"/movies/{blade}/row").text)
    assert other.by_id(f"movie-{blade}-ratings-summary").text == "8.0 · 1"
    with app.app_context():
        reader = CrudService(MOVIES, db.session).reader
        kept = {"ratings": {alien: (99, 1.0)}}
        reader.keep_summaries([alien], kept)
        assert reader.summaries([alien]) == kept
        # Taken once, and only by a call for the same ids.
        assert reader.summaries([alien])["ratings"] == {alien: (2, 8.0)}
        reader.keep_summaries([alien], kept)
        assert reader.summaries([blade])["ratings"] == {blade: (1, 8.0)}
        assert reader.summaries([alien])["ratings"] == {alien: (2, 8.0)}
        db.session.rollback()


def test_rating_edit_on_the_ratings_page_sends_no_summary(hx: Hx, sample: dict) -> None:
    response = hx.patch("/ratings/1", data={"author": "Ana B", "version": "1"})
    assert response.status_code == 200
    assert "hx-swap-oob" not in response.text
    assert only(response.text).find("td", data_field="movie_name").text == "Alien"


def test_renaming_a_movie_renames_it_in_its_ratings(
    app: Flask, hx: Hx, sample: dict
) -> None:
    hx.patch(f"/movies/{sample['alien']}", data={"name": "Alien 1979", "version": "1"})
    row = only(hx.get("/ratings/1/row").text)
    assert row.find("td", data_field="movie_name").text == "Alien 1979"
