"""Trash: a restored row takes its copied fields from its parent as it is now."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from app.crud import CrudService
from app.db import db
from app.models import Change, DeletedRow, Movie, Rating
from app.resources import MOVIES, RATINGS
from tests.conftest import Hx
from tests.live_html import assert_fragment


@pytest.fixture
def services(app: Flask) -> Iterator[tuple[CrudService, CrudService]]:
    """The movie and rating services inside an app context."""
    with app.app_context():
        yield CrudService(MOVIES, db.session), CrudService(RATINGS, db.session)


def movie_names(app: Flask, movie_id: int) -> list[str]:
    """The movie_name of each of a movie's ratings, straight from the database."""
    table = Rating.__table__
    stmt = sa.select(table.c.movie_name).where(table.c.movie_id == movie_id)
    with app.app_context(), db.engine.connect() as conn:
        return list(conn.scalars(stmt.order_by(table.c.id)))


def test_undo_of_a_rating_takes_the_movies_new_name(
    app: Flask, hx: Hx, sample: dict
) -> None:
    # issue 11: a rating deleted, its movie renamed, then undone came back with
    # the movie's old name.
    alien = sample["alien"]
    with app.app_context():
        rating = db.session.scalar(sa.select(Rating.id).where(Rating.author == "Ana"))
    deleted = assert_fragment(hx.delete(f"/ratings/{rating}").text)
    token = deleted.find("input", name="token")["value"]
    renamed = hx.patch(f"/movies/{alien}", data={"name": "Aliens", "version": "1"})
    assert renamed.status_code == 200
    response = hx.post("/ratings/undo", data={"token": token})
    assert response.status_code == 200
    assert "Aliens" in response.text
    assert movie_names(app, alien) == ["Aliens", "Aliens"]


def test_service_undo_and_restore_refresh_copied_fields(
    app: Flask, services: tuple[CrudService, CrudService], sample: dict
) -> None:
    # issue 11: the same through the service, for undo() and restore().
    movies, ratings = services
    blade = sample["blade"]
    (rating,) = db.session.scalars(sa.select(Rating.id).where(Rating.movie_id == blade))
    token, _ = ratings.trash(rating)
    movies.update(blade, {"name": "Blade Runner 2049"}, 1)
    assert ratings.undo(token).movie_name == "Blade Runner 2049"
    _, snapshot = ratings.trash(rating)
    movies.update(blade, {"name": "Blade Runner"}, 2)
    with ratings.transaction():
        restored = ratings.snapshots.put_back(snapshot)
    assert ratings.get(restored).movie_name == "Blade Runner"
    assert movie_names(app, blade) == ["Blade Runner"]


def test_undo_of_a_movie_gives_its_ratings_its_name(
    app: Flask, services: tuple[CrudService, CrudService], sample: dict
) -> None:
    # issue 11: children restored with their parent copy the parent's name too,
    # even from a snapshot whose copies went stale.
    movies, _ = services
    alien = sample["alien"]
    token, _ = movies.trash(alien)
    entry = db.session.get(DeletedRow, token)
    # The delete's rows are in the change log (issue 14): make its copies stale.
    change_set = json.loads(entry.payload)["set"]
    logged = db.session.scalars(
        sa.select(Change).where(
            Change.set_id == change_set, Change.table_name == "ratings"
        )
    ).all()
    assert len(logged) == 2
    for change in logged:
        change.old = json.dumps({**json.loads(change.old), "movie_name": "Stale"})
    db.session.commit()
    assert movies.undo(token).name == "Alien"
    assert movie_names(app, alien) == ["Alien", "Alien"]
    # The restored ratings are the ones deleted, ids and all.
    with app.app_context():
        restored = db.session.scalars(
            sa.select(Rating.author).where(Rating.movie_id == alien).order_by(Rating.id)
        ).all()
    assert restored == ["Ana", "Bo"]
    assert db.session.get(Movie, alien) is not None
