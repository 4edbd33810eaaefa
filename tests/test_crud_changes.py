"""The change log (issue 14): every write path logs in its own transaction, undo
and redo of a change set, refusals naming who changed what since, and pruning.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner
from werkzeug.security import generate_password_hash

from app import csvfile
from app.crud import CrudService, UndoRefused, acting_as
from app.crud.changes import ChangeSet
from app.db import db
from app.models import Change, Movie, Rating, User
from app.resources import MOVIES, RATINGS
from tests.conftest import Hx

Services = tuple[CrudService[Movie], CrudService[Rating]]


@pytest.fixture
def services(app: Flask) -> Iterator[Services]:
    """The movie and rating services inside an app context."""
    with app.app_context():
        yield CrudService(MOVIES, db.session), CrudService(RATINGS, db.session)


def logged(**where: Any) -> list[Change]:
    """The change log's rows (matching `where`), oldest first, read afresh."""
    db.session.expire_all()
    stmt = sa.select(Change).order_by(Change.id)
    for name, value in where.items():
        stmt = stmt.where(getattr(Change, name) == value)
    return list(db.session.scalars(stmt))


def last_set() -> int:
    """The id of the newest change set."""
    return logged()[-1].set_id


def values(text: str | None) -> dict[str, Any] | None:
    """A change's JSON values."""
    return json.loads(text) if text is not None else None


def table_rows(model: type, **where: Any) -> list[dict[str, Any]]:
    """Rows straight from the table, by id."""
    table = model.__table__
    stmt = sa.select(table).order_by(table.c.id)
    for name, value in where.items():
        stmt = stmt.where(table.c[name] == value)
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


# ------------------------------------------------------------ every write logs


def test_create_logs_its_values(services: Services) -> None:
    movies, _ = services
    heat = movies.create({"name": "Heat", "director": "Michael Mann", "rating": "8.3"})
    (change,) = logged()
    assert (change.table_name, change.row_id, change.op) == (
        "movies",
        heat.id,
        "create",
    )
    assert values(change.new) == {
        "name": "Heat",
        "director": "Michael Mann",
        "rating": 8.3,
    }
    assert change.old is None
    assert change.version == 1
    assert change.who == "anonymous"
    # From the change ids' sequence: never reused, never after its first change.
    assert 0 < change.set_id <= change.id
    assert abs(change.at / 1000 - time.time()) < 60


def test_update_logs_only_the_changed_fields(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    alien = sample["alien"]
    data = {"name": "Alien", "director": "Ridley Scott", "rating": "9"}
    movies.update(alien, data, version=1)
    (change,) = logged()
    assert (change.table_name, change.row_id, change.op) == ("movies", alien, "update")
    assert values(change.old) == {"rating": 8.5}
    assert values(change.new) == {"rating": 9.0}
    assert change.version == 2
    # Saving the same values again changes nothing, and logs nothing.
    movies.update(alien, data, version=2)
    assert len(logged()) == 1


def test_a_merged_update_logs_its_own_field(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    alien = sample["alien"]
    movies.update(alien, {"name": "Alien³"}, version=1)
    # An editor opened at version 1 saves the rating: merged per field.
    movies.update(alien, {"rating": "7"}, version=1, original={"rating": "8.5"})
    first, second = logged()
    assert first.set_id != second.set_id
    assert values(second.old) == {"rating": 8.5}
    assert values(second.new) == {"rating": 7.0}
    assert second.version == 3


def test_a_delete_logs_the_row_and_its_cascaded_children(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    alien = sample["alien"]
    ratings_before = table_rows(Rating, movie_id=alien)
    movies.trash(alien)
    changes = logged()
    assert {c.set_id for c in changes} == {changes[0].set_id}
    assert [(c.table_name, c.op) for c in changes] == [
        ("ratings", "delete"),
        ("ratings", "delete"),
        ("movies", "delete"),
    ]
    assert [c.row_id for c in changes[:2]] == [r["id"] for r in ratings_before]
    assert values(changes[2].old)["name"] == "Alien"
    assert values(changes[0].old)["author"] == "Ana"
    assert all(c.new is None for c in changes)


def test_the_undo_toast_is_a_change_set_of_its_own(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    alien = sample["alien"]
    token, _ = movies.trash(alien)
    deleted = last_set()
    movies.undo(token)
    restored = [c for c in logged() if c.set_id != deleted]
    assert {c.set_id for c in restored} == {restored[0].set_id}
    assert [(c.table_name, c.op) for c in restored] == [
        ("movies", "create"),
        ("ratings", "create"),
        ("ratings", "create"),
    ]
    assert restored[0].row_id == alien


def test_restore_of_a_snapshot_logs_creates(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    _, snapshot = movies.trash(sample["cure"])
    with movies.transaction():
        movies.snapshots.put_back(snapshot)
    restored = logged(set_id=last_set())
    assert [(c.table_name, c.op) for c in restored] == [
        ("movies", "create"),
        ("ratings", "create"),
    ]
    assert restored[0].row_id == sample["cure"]


def test_bulk_insert_is_one_change_set(
    services: Services, sample: dict[str, int]
) -> None:
    _, ratings = services
    rows = [{"rating": r, "author": "Eve", "movie_id": sample["blade"]} for r in (3, 4)]
    assert ratings.bulk.load(rows) == 2
    changes = logged()
    assert len(changes) == 2 and len({c.set_id for c in changes}) == 1
    assert [values(c.new) for c in changes] == [
        {
            "rating": r,
            "author": "Eve",
            "movie_id": sample["blade"],
            "movie_name": "Blade Runner",
        }
        for r in (3, 4)
    ]
    stored = table_rows(Rating, author="Eve")
    assert sorted(c.row_id for c in changes) == [r["id"] for r in stored]


def test_an_import_is_one_change_set_and_undoes_as_one(
    services: Services, sample: dict[str, int], tmp_path: Path
) -> None:
    movies, _ = services
    alien = sample["alien"]
    before = table_rows(Movie)
    path = tmp_path / "movies.csv"
    path.write_bytes(
        b"id,name,director,rating\r\n"
        + f"{alien},Alien,Ridley Scott,9.0\r\n".encode()
        + b",Heat,Michael Mann,8.3\r\n"
    )
    csvfile.import_file(movies, path)
    changes = logged()
    assert len({c.set_id for c in changes}) == 1
    assert sorted((c.op, c.row_id == alien) for c in changes) == [
        ("create", False),
        ("update", True),
    ]
    imported = changes[0].set_id
    undo = movies.undo_set(imported)
    assert [r["name"] for r in table_rows(Movie)] == [r["name"] for r in before]
    assert table_rows(Movie, id=alien)[0]["rating"] == 8.5
    assert {c.op for c in logged(set_id=undo)} == {"delete", "update"}
    movies.redo_set(imported)
    assert table_rows(Movie, id=alien)[0]["rating"] == 9.0
    assert [r["name"] for r in table_rows(Movie, name="Heat")] == ["Heat"]


def test_a_rename_logs_the_movie_not_the_copies_in_its_ratings(
    services: Services, sample: dict[str, int]
) -> None:
    # The ratings' movie_name follows the name (a copy); the log holds the source.
    movies, _ = services
    alien = sample["alien"]
    movies.update(alien, {"name": "Aliens"}, version=1)
    assert [(c.table_name, c.row_id) for c in logged()] == [("movies", alien)]
    assert {r["movie_name"] for r in table_rows(Rating, movie_id=alien)} == {"Aliens"}
    movies.undo_set(last_set())
    assert {r["movie_name"] for r in table_rows(Rating, movie_id=alien)} == {"Alien"}


def test_views_log_their_writes_as_the_signed_in_user(
    app: Flask, hx: Hx, sample: dict[str, int]
) -> None:
    alien = sample["alien"]
    response = hx.patch(f"/movies/{alien}", data={"rating": "9", "version": "1"})
    assert response.status_code == 200
    with app.app_context():
        db.session.add(
            User(
                name="Ana",
                password_hash=generate_password_hash("pw", "scrypt:1024:8:1"),
            )
        )
        db.session.commit()
    signed_in = hx.client.post("/login", data={"name": "Ana", "password": "pw"})
    assert signed_in.status_code == 303
    response = hx.patch(f"/movies/{alien}", data={"rating": "7", "version": "2"})
    assert response.status_code == 200
    with app.app_context():
        assert [c.who for c in logged()] == ["anonymous", "Ana"]


# ------------------------------------------------------------ nothing unlogged


def test_a_rolled_back_write_leaves_no_log_row(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    with pytest.raises(RuntimeError), movies.transaction():
        movies.bulk.insert_many([{"name": "Heat", "director": "Michael Mann"}])
        movies.bulk.update_many([(sample["alien"], {"rating": 1.0})])
        raise RuntimeError("the import failed")
    assert logged() == []
    assert table_rows(Movie, name="Heat") == []


@pytest.mark.parametrize("part", ["add", "created"])
def test_no_write_commits_when_its_log_row_fails(
    services: Services,
    sample: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
    part: str,
) -> None:
    movies, _ = services

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the log is full")

    monkeypatch.setattr(ChangeSet, part, refuse)
    with pytest.raises(RuntimeError):
        if part == "add":
            movies.update(sample["alien"], {"rating": "1"}, version=1)
        else:
            movies.create({"name": "Heat", "director": "Michael Mann"})
    assert table_rows(Movie, id=sample["alien"])[0]["rating"] == 8.5
    assert table_rows(Movie, name="Heat") == []
    assert logged() == []


# ------------------------------------------------------------ undo and redo


def test_undo_and_redo_of_an_edit_restore_exactly(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    alien = sample["alien"]
    movies.update(alien, {"name": "Alien³", "rating": "6.4"}, version=1)
    edit = last_set()
    undo = movies.undo_set(edit)
    assert undo != edit
    (row,) = table_rows(Movie, id=alien)
    assert (row["name"], row["rating"], row["version"]) == ("Alien", 8.5, 3)
    (undone,) = logged(set_id=undo)
    assert values(undone.old) == {"name": "Alien³", "rating": 6.4}
    assert values(undone.new) == {"name": "Alien", "rating": 8.5}
    movies.redo_set(edit)
    (row,) = table_rows(Movie, id=alien)
    assert (row["name"], row["rating"], row["version"]) == ("Alien³", 6.4, 4)
    # Undoing the undo is the same as a redo, and is refused now: it is done.
    with pytest.raises(UndoRefused):
        movies.redo_set(edit)


def test_undo_over_a_newer_change_by_someone_else_is_refused_naming_them(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    alien = sample["alien"]
    with acting_as("ana"):
        movies.update(alien, {"rating": "9"}, version=1)
    anas = last_set()
    with acting_as("ben"):
        movies.update(alien, {"rating": "2"}, version=2)
    with acting_as("ana"), pytest.raises(UndoRefused) as refused:
        movies.undo_set(anas)
    (since,) = refused.value.since
    assert (since.who, since.table, since.row_id, since.field) == (
        "ben",
        "movies",
        alien,
        "rating",
    )
    assert "ben changed rating" in str(refused.value)
    assert table_rows(Movie, id=alien)[0]["rating"] == 2.0
    assert len(logged()) == 2


def test_undo_restores_fields_nobody_touched_since(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    alien = sample["alien"]
    with acting_as("ana"):
        movies.update(alien, {"rating": "9"}, version=1)
    anas = last_set()
    with acting_as("ben"):
        movies.update(alien, {"name": "Alien (1979)"}, version=2)
    with acting_as("ana"):
        movies.undo_set(anas)
    (row,) = table_rows(Movie, id=alien)
    assert (row["name"], row["rating"]) == ("Alien (1979)", 8.5)
    assert logged()[-1].who == "ana"


def test_undo_of_a_cascaded_delete_restores_the_children_with_their_ids(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    alien = sample["alien"]
    movie_before = table_rows(Movie, id=alien)
    ratings_before = table_rows(Rating, movie_id=alien)
    assert len(ratings_before) == 2
    movies.trash(alien)
    deleted = last_set()
    movies.undo_set(deleted)
    assert table_rows(Movie, id=alien) == movie_before
    assert table_rows(Rating, movie_id=alien) == ratings_before
    movies.redo_set(deleted)
    assert table_rows(Movie, id=alien) == []
    assert table_rows(Rating, movie_id=alien) == []


def test_undo_of_a_create_edited_since_is_refused(
    services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    with acting_as("ana"):
        heat = movies.create({"name": "Heat", "director": "Michael Mann"})
    created = last_set()
    with acting_as("ben"):
        movies.update(heat.id, {"director": "M. Mann"}, version=1)
    with pytest.raises(UndoRefused) as refused:
        movies.undo_set(created)
    assert refused.value.since[0].who == "ben"
    assert table_rows(Movie, id=heat.id) != []


# ------------------------------------------------------------ retention


def test_prune_removes_only_old_changes(
    app: Flask, runner: FlaskCliRunner, services: Services, sample: dict[str, int]
) -> None:
    movies, _ = services
    movies.update(sample["alien"], {"rating": "9"}, version=1)
    movies.update(sample["blade"], {"rating": "9"}, version=1)
    old, new = logged()
    day_ms = 86_400_000
    db.session.execute(
        sa.update(Change)
        .where(Change.id == old.id)
        .values(at=int(time.time() * 1000) - 91 * day_ms)
    )
    db.session.execute(
        sa.update(Change)
        .where(Change.id == new.id)
        .values(at=int(time.time() * 1000) - 89 * day_ms)
    )
    db.session.commit()
    result = runner.invoke(args=["changes", "prune", "--older-than", "90d"])
    assert result.exit_code == 0, result.output
    assert "Pruned 1 change " in result.output
    assert [c.id for c in logged()] == [new.id]
    # Without --older-than, CHANGES_KEEP_DAYS decides.
    app.config["CHANGES_KEEP_DAYS"] = 30
    result = runner.invoke(args=["changes", "prune"])
    assert "Pruned 1 change " in result.output
    assert logged() == []


def test_prune_refuses_an_age_it_cannot_read(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["changes", "prune", "--older-than", "90 days"])
    assert result.exit_code == 2
    assert "use a number and d, h, m or s" in result.output
