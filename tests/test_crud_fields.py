"""Ids beyond a column's range (fields.largest_id, fits_id) are found by no path."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from app import crud
from app.crud import CrudService, NotFound, QueryError
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import Hx

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1


# ------------------------------------------------------------ id ranges


def test_largest_id_is_the_smallest_range_of_the_id_columns() -> None:
    # issue 11: PostgreSQL's integer ids stop at 2**31 - 1, SQLite's at 2**63 - 1.
    assert crud.largest_id(Movie) == INT4_MAX
    assert crud.largest_id(Rating) == INT4_MAX


OUT_OF_RANGE = [INT4_MAX + 1, 99_999_999_999, INT8_MAX, INT8_MAX + 1, 10**30]


ROUTES = [
    ("GET", "/movies/{}/row"),
    ("GET", "/movies/{}/edit"),
    ("GET", "/movies/{}/ratings"),
    ("POST", "/movies/{}/ratings"),
    ("PATCH", "/movies/{}"),
    ("POST", "/movies/{}"),
    ("DELETE", "/movies/{}"),
    ("POST", "/movies/{}/delete"),
    ("GET", "/ratings/{}/row"),
    ("PATCH", "/ratings/{}"),
    ("DELETE", "/ratings/{}"),
    ("GET", "/movies/{}/ratings.csv"),
]


@pytest.mark.parametrize("row_id", OUT_OF_RANGE)
def test_path_id_out_of_range_is_404(client, sample: dict, row_id: int) -> None:
    # issue 11: an id beyond the column's range was a 500 (PostgreSQL "integer out
    # of range", SQLite OverflowError), for anonymous visitors too.
    data = {"version": "1", "name": "X", "rating": "7", "author": "Ana"}
    statuses = {
        (method, path, htmx): client.open(
            path.format(row_id),
            method=method,
            data=data,
            headers={"HX-Request": "true"} if htmx else {},
        ).status_code
        for method, path in ROUTES
        for htmx in (True, False)
    }
    assert statuses == dict.fromkeys(statuses, 404)


def test_path_id_at_the_bound_is_an_ordinary_404(client, sample: dict) -> None:
    # issue 11: the largest id the column holds is looked up like any other.
    assert client.get(f"/movies/{INT4_MAX}/row").status_code == 404
    assert client.get(f"/movies/{sample['alien']}/row").status_code == 200


@pytest.mark.parametrize("row_id", OUT_OF_RANGE)
def test_service_get_out_of_range_is_not_found(app: Flask, row_id: int) -> None:
    # issue 11: the service refuses ids the column cannot hold, for every caller.
    with app.app_context():
        movies = CrudService(MOVIES, db.session)
        with pytest.raises(NotFound):
            movies.get(row_id)
        with pytest.raises(NotFound):
            movies.trash(row_id)
        assert movies.lookups.stored_values([row_id], ["name"]) == {}
        ratings = CrudService(RATINGS, db.session)
        assert ratings.lookups.existing_references("movie_id", [row_id]) == set()


@pytest.mark.parametrize("value", [INT4_MAX + 1, INT8_MAX, INT8_MAX + 1, 10**30])
@pytest.mark.parametrize("path", ["/ratings", "/ratings.csv"])
def test_movie_id_filter_out_of_range_is_400(
    client, sample: dict, path: str, value: int
) -> None:
    # issue 11: ?movie_id= beyond the column's range was a 500.
    response = client.get(f"{path}?movie_id={value}")
    assert response.status_code == 400
    assert f"Movie id must be between 1 and {INT4_MAX}." in response.text


def test_movie_id_filter_message(app: Flask) -> None:
    # issue 11: the message names the range, whatever the number of digits.
    with app.app_context():
        ratings = CrudService(RATINGS, db.session)
        for value in (INT4_MAX + 1, 10**30):
            with pytest.raises(QueryError) as err:
                ratings.parse_query({"movie_id": str(value)})
            assert err.value.message == f"Movie id must be between 1 and {INT4_MAX}."
        assert ratings.parse_query({"movie_id": str(INT4_MAX)}).filters == {
            "movie_id": INT4_MAX
        }


@pytest.mark.parametrize("value", [INT4_MAX + 1, INT8_MAX + 1, 10**30])
def test_rating_for_a_movie_id_out_of_range_is_422(
    app: Flask, hx: Hx, sample: dict, value: int
) -> None:
    # issue 11: a new rating's movie id is held to the movies.id range too.
    response = hx.post(
        "/ratings", data={"rating": "7", "author": "Ana", "movie_id": str(value)}
    )
    assert response.status_code == 422
    assert f"Movie id must be between 1 and {INT4_MAX}." in response.text


@pytest.mark.parametrize("value", [INT4_MAX + 1, INT8_MAX + 1, "x"])
def test_bad_movie_id_in_current_url_is_ignored(
    app: Flask, client, sample: dict, value: object
) -> None:
    # issue 11: the page a write came from (HX-Current-URL) is only a hint.
    headers = {
        "HX-Request": "true",
        "HX-Current-URL": f"http://localhost/ratings?movie_id={value}",
    }
    with app.app_context():
        rating = db.session.scalars(sa.select(Rating.id)).first()
    response = client.post(
        "/ratings",
        data={"rating": "7", "author": "Eve", "movie_id": str(sample["alien"])},
        headers=headers,
    )
    assert response.status_code == 200
    response = client.patch(
        f"/ratings/{rating}", data={"rating": "5", "version": "1"}, headers=headers
    )
    assert response.status_code == 200
    response = client.delete(f"/ratings/{rating}", headers=headers)
    assert response.status_code == 200
