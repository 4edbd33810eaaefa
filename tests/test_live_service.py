"""What the live table added to the generic service: counts, items, trash and undo."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from flask import Flask

from app.crud import Conflict, CrudService, ListQuery, NotFound
from app.db import db
from app.models import Change, DeletedRow, Movie, Rating
from app.resources import MOVIES, RATINGS


@pytest.fixture
def movies(app: Flask):
    """The movie service inside an app context."""
    with app.app_context():
        yield CrudService(MOVIES, db.session)


def stored(model: type, row_id: int) -> dict | None:
    """Read a row straight from the database."""
    table = model.__table__
    with db.engine.connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.id == row_id)).mappings()
        row = found.first()
    return dict(row) if row else None


def trash_row(token: str) -> dict | None:
    """Read a deleted_rows entry straight from the database."""
    table = DeletedRow.__table__
    with db.engine.connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.token == token))
        row = found.mappings().first()
    return dict(row) if row else None


def test_count_with_and_without_query(movies: CrudService, sample: dict) -> None:
    assert movies.count() == 3
    assert movies.count(ListQuery(q="ridley")) == 2
    assert movies.count(ListQuery(filters={"min_rating": 8.2})) == 1


def test_items_pages_without_counting(movies: CrudService, sample: dict) -> None:
    items = movies.reader.items(ListQuery(per_page=2, page=2))
    assert [m.name for m in items] == ["Cure"]


def test_trash_deletes_and_keeps_snapshot(movies: CrudService, sample: dict) -> None:
    before = stored(Movie, sample["alien"])
    token, snapshot = movies.trash(sample["alien"])
    assert stored(Movie, sample["alien"]) is None
    assert snapshot["row"]["name"] == "Alien"
    entry = trash_row(token)
    assert entry is not None
    assert entry["table_name"] == "movies"
    assert entry["expires_at"] > time.time()
    payload = json.loads(entry["payload"])
    assert payload["row"] == sample["alien"]
    # The deleted rows are kept in the change log (issue 14), the token names them.
    logged = db.session.scalars(
        sa.select(Change.table_name).where(Change.set_id == payload["set"])
    ).all()
    assert sorted(logged) == ["movies", "ratings", "ratings"]
    assert before["name"] == "Alien"


def test_undo_restores_row_children_ids_and_timestamps(
    movies: CrudService, sample: dict
) -> None:
    alien = sample["alien"]
    before = stored(Movie, alien)
    with db.engine.connect() as conn:
        ratings_before = conn.execute(
            sa.select(Rating.__table__).where(Rating.__table__.c.movie_id == alien)
        ).all()
    token, _ = movies.trash(alien)
    restored = movies.undo(token)
    assert restored.id == alien
    after = stored(Movie, alien)
    assert after == before
    with db.engine.connect() as conn:
        ratings_after = conn.execute(
            sa.select(Rating.__table__).where(Rating.__table__.c.movie_id == alien)
        ).all()
    assert ratings_after == ratings_before
    # Single use: the snapshot is gone with the undo.
    assert trash_row(token) is None
    with pytest.raises(NotFound):
        movies.undo(token)


def test_undo_refuses_unknown_expired_and_other_tables(
    app: Flask, movies: CrudService, sample: dict
) -> None:
    with pytest.raises(NotFound):
        movies.undo("no-such-token")
    with pytest.raises(NotFound):
        movies.undo("")
    ratings = CrudService(RATINGS, db.session)
    rating_id = db.session.scalars(sa.select(Rating.id)).first()
    token, _ = ratings.trash(rating_id)
    with pytest.raises(NotFound):
        movies.undo(token)  # a rating's token cannot restore a movie
    db.session.execute(
        sa.update(DeletedRow)
        .where(DeletedRow.token == token)
        .values(expires_at=int(time.time()) - 1)
    )
    db.session.commit()
    with pytest.raises(NotFound):
        ratings.undo(token)
    assert stored(Rating, rating_id) is None


def test_trash_sweeps_expired_snapshots(movies: CrudService, sample: dict) -> None:
    old, _ = movies.trash(sample["alien"])
    db.session.execute(
        sa.update(DeletedRow).where(DeletedRow.token == old).values(expires_at=1)
    )
    db.session.commit()
    movies.trash(sample["blade"])
    assert trash_row(old) is None


def test_trash_with_stale_version_conflicts(movies: CrudService, sample: dict) -> None:
    with pytest.raises(Conflict):
        movies.trash(sample["alien"], version=99)
    assert stored(Movie, sample["alien"]) is not None


def test_undo_after_the_id_was_reused_conflicts_and_keeps_snapshot(
    movies: CrudService, sample: dict
) -> None:
    token, snapshot = movies.trash(sample["cure"])
    with movies.transaction():  # someone brought it back another way
        movies.snapshots.put_back(snapshot)
    with pytest.raises(Conflict):
        movies.undo(token)
    assert trash_row(token) is not None  # rolled back with the failed undo
