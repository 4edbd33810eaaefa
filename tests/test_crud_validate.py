"""Field-level merge of concurrent edits (validate.holds, in CrudService.update)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from app.crud import Conflict, CrudService, Integer, Number, Resource
from app.db import db
from app.models import Movie, Rating
from app.resources import RESOURCES
from tests.test_crud_service import stored

MODELS: dict[str, type] = {"movies": Movie, "ratings": Rating}

# Per editable field: the value "I" save and the value another editor saves.
EDITS: dict[str, dict[str, tuple[str, str]]] = {
    "movies": {
        "name": ("Alien (1979)", "Alien: Director's Cut"),
        "director": ("R. Scott", "Sir Ridley Scott"),
        "rating": ("9.1", "7.9"),
    },
    "ratings": {"rating": ("3", "4"), "author": ("Ana B.", "Anna")},
}

OTHER_FIELD = [
    pytest.param(table, mine, theirs, id=f"{table}-{mine}-after-{theirs}")
    for table, fields in EDITS.items()
    for mine in fields
    for theirs in fields
    if mine != theirs
]
SAME_FIELD = [
    pytest.param(table, name, id=f"{table}-{name}")
    for table, fields in EDITS.items()
    for name in fields
]
FIELD_PAIRS = [
    pytest.param(table, first, second, id=f"{table}-{first}-{second}")
    for table, fields in EDITS.items()
    for first, second in combinations(fields, 2)
]

ROUNDS = 5


@pytest.fixture
def target(app: Flask, sample: dict[str, int]) -> dict[str, int]:
    """The row each table's tests edit: Alien, and Ana's rating of it."""
    with app.app_context():
        ana = db.session.scalar(sa.select(Rating.id).where(Rating.author == "Ana"))
    assert ana is not None
    return {"movies": sample["alien"], "ratings": ana}


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An app context for the test's own service and database reads."""
    with app.app_context():
        yield


def resource(table: str) -> Resource:
    """The declaration of a table."""
    return RESOURCES[table]


def service(table: str) -> CrudService:
    """The service for a table on the app context's session."""
    return CrudService(resource(table), db.session)


def shown(value: Any) -> str:
    """A stored value as an editor's input shows it."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parsed(table: str, name: str, raw: str) -> Any:
    """The value a field stores for raw input."""
    f = resource(table).field(name)
    return f.kind.parse(f.label, raw)


def row_of(table: str, row_id: int) -> dict[str, Any]:
    """The stored row, which must exist."""
    row = stored(MODELS[table], row_id)
    assert row is not None
    return row


def elsewhere(
    table: str,
    row_id: int,
    data: Mapping[str, Any],
    version: int,
    original: Mapping[str, Any] | None = None,
) -> None:
    """Save as another editor's request does: in a session of its own."""
    with Session(db.engine, expire_on_commit=False) as session:
        CrudService(resource(table), session).update(row_id, data, version, original)


def other_field(table: str, name: str) -> str:
    """Some editable field of the table other than `name`."""
    return next(f for f in EDITS[table] if f != name)


def movie_names(movie_id: int) -> set[str]:
    """The movie_name values of a movie's ratings, read from the database."""
    with db.engine.connect() as conn:
        return set(
            conn.scalars(
                sa.select(Rating.movie_name).where(Rating.movie_id == movie_id)
            )
        )


# ------------------------------------------------------------------ one editor late


@pytest.mark.parametrize(("table", "mine", "theirs"), OTHER_FIELD)
def test_stale_save_of_another_field_is_merged(
    ctx: None, target: dict[str, int], table: str, mine: str, theirs: str
) -> None:
    # Issue 10: a save whose field nobody touched since is applied, not a 409.
    row_id = target[table]
    before = row_of(table, row_id)
    elsewhere(table, row_id, {theirs: EDITS[table][theirs][1]}, before["version"])
    row = service(table).update(
        row_id,
        {mine: EDITS[table][mine][0]},
        before["version"],
        original={mine: shown(before[mine])},
    )
    after = row_of(table, row_id)
    assert after[mine] == parsed(table, mine, EDITS[table][mine][0])
    assert after[theirs] == parsed(table, theirs, EDITS[table][theirs][1])
    assert after["version"] == row.version == before["version"] + 2
    for name in EDITS[table]:
        if name not in (mine, theirs):
            assert after[name] == before[name]


@pytest.mark.parametrize(("table", "name"), SAME_FIELD)
def test_stale_save_of_a_field_changed_since_conflicts(
    ctx: None, target: dict[str, int], table: str, name: str
) -> None:
    # Issue 10: only a change of the same field is a conflict; nothing is written.
    row_id = target[table]
    before = row_of(table, row_id)
    mine, theirs = EDITS[table][name]
    elsewhere(table, row_id, {name: theirs}, before["version"])
    middle = row_of(table, row_id)
    with pytest.raises(Conflict) as err:
        service(table).update(
            row_id,
            {name: mine},
            before["version"],
            original={name: shown(before[name])},
        )
    assert getattr(err.value.current, name) == parsed(table, name, theirs)
    after = row_of(table, row_id)
    assert after == middle
    assert after[name] == parsed(table, name, theirs)
    assert after["version"] == before["version"] + 1


@pytest.mark.parametrize(("table", "mine", "theirs"), OTHER_FIELD)
@pytest.mark.parametrize("original", ["none", "other-field-only"])
def test_stale_save_without_its_original_conflicts(
    ctx: None,
    target: dict[str, int],
    table: str,
    mine: str,
    theirs: str,
    original: str,
) -> None:
    # Issue 10: without the value its editor started from, a stale save is a 409.
    row_id = target[table]
    before = row_of(table, row_id)
    elsewhere(table, row_id, {theirs: EDITS[table][theirs][1]}, before["version"])
    middle = row_of(table, row_id)
    started = None if original == "none" else {theirs: shown(before[theirs])}
    with pytest.raises(Conflict):
        service(table).update(
            row_id, {mine: EDITS[table][mine][0]}, before["version"], started
        )
    assert row_of(table, row_id) == middle
    assert middle[mine] == before[mine]


@pytest.mark.parametrize(
    ("table", "name", "setup", "original", "new"),
    [
        ("movies", "rating", "8", "8.0", "9"),
        ("movies", "rating", "8.1", "8.10", "9"),
        ("movies", "rating", None, " 8.5 ", "9"),
        ("movies", "rating", "", "", "9"),
        ("movies", "rating", "", "   ", "9"),
        ("movies", "name", None, "  Alien  ", "Alien (1979)"),
        ("movies", "director", None, "Ridley Scott\t", "R. Scott"),
        ("ratings", "rating", None, " 09 ", "3"),
        ("ratings", "rating", None, "+9", "3"),
        ("ratings", "author", None, "\tAna ", "Ana B."),
    ],
)
def test_original_is_compared_as_parsed(
    ctx: None,
    target: dict[str, int],
    table: str,
    name: str,
    setup: str | None,
    original: str,
    new: str,
) -> None:
    # Issue 10: "8.0" is the stored 8.0, " Ana " is "Ana" and "" is NULL.
    row_id = target[table]
    if setup is not None:
        elsewhere(table, row_id, {name: setup}, row_of(table, row_id)["version"])
    before = row_of(table, row_id)
    theirs = other_field(table, name)
    elsewhere(table, row_id, {theirs: EDITS[table][theirs][1]}, before["version"])
    service(table).update(row_id, {name: new}, before["version"], {name: original})
    after = row_of(table, row_id)
    assert after[name] == parsed(table, name, new)
    assert after[theirs] == parsed(table, theirs, EDITS[table][theirs][1])
    assert after["version"] == before["version"] + 2


@pytest.mark.parametrize(
    ("table", "name", "original"),
    [
        ("movies", "rating", "abc"),
        ("movies", "rating", "8.55"),
        ("movies", "name", ""),
        ("ratings", "rating", "nine"),
        ("ratings", "author", "a" * 81),
    ],
)
def test_unparseable_original_conflicts(
    ctx: None, target: dict[str, int], table: str, name: str, original: str
) -> None:
    # Issue 10: an original the field could never hold cannot be its value.
    row_id = target[table]
    before = row_of(table, row_id)
    theirs = other_field(table, name)
    elsewhere(table, row_id, {theirs: EDITS[table][theirs][1]}, before["version"])
    middle = row_of(table, row_id)
    with pytest.raises(Conflict):
        service(table).update(
            row_id, {name: EDITS[table][name][0]}, before["version"], {name: original}
        )
    assert row_of(table, row_id) == middle


def test_current_version_saves_whatever_original_says(
    ctx: None, target: dict[str, int]
) -> None:
    # Issue 10: at the current version the save goes through as it always did.
    row_id = target["movies"]
    before = row_of("movies", row_id)
    service("movies").update(
        row_id, {"director": "R. Scott"}, before["version"], {"director": "Nobody"}
    )
    after = row_of("movies", row_id)
    assert (after["director"], after["version"]) == ("R. Scott", before["version"] + 1)


def test_keys_that_are_not_fields_do_not_block_a_merge(
    ctx: None, target: dict[str, int]
) -> None:
    # Issue 10: form bookkeeping in `data` has no original and needs none.
    row_id = target["movies"]
    before = row_of("movies", row_id)
    elsewhere("movies", row_id, {"name": "Alien!"}, before["version"])
    service("movies").update(
        row_id,
        {"director": "R. Scott", "nested": "1", "original.director": "Ridley Scott"},
        before["version"],
        {"director": "Ridley Scott"},
    )
    after = row_of("movies", row_id)
    assert (after["name"], after["director"]) == ("Alien!", "R. Scott")
    assert after["version"] == before["version"] + 2


def test_merged_rename_reaches_the_ratings(ctx: None, target: dict[str, int]) -> None:
    # Issue 10: a merged rename copies the name into ratings.movie_name, in its
    # own transaction, and leaves the ratings' versions alone.
    row_id = target["movies"]
    before = row_of("movies", row_id)
    elsewhere("movies", row_id, {"director": "R. Scott"}, before["version"])
    service("movies").update(
        row_id, {"name": "Alien (1979)"}, before["version"], {"name": "Alien"}
    )
    assert row_of("movies", row_id)["name"] == "Alien (1979)"
    assert movie_names(row_id) == {"Alien (1979)"}
    assert row_of("ratings", target["ratings"])["version"] == 1


def test_conflicting_rename_leaves_the_ratings_alone(
    ctx: None, target: dict[str, int]
) -> None:
    # Issue 10: a refused rename must not reach the ratings either.
    row_id = target["movies"]
    before = row_of("movies", row_id)
    elsewhere("movies", row_id, {"name": "Alien!"}, before["version"])
    with pytest.raises(Conflict):
        service("movies").update(
            row_id, {"name": "Alien (1979)"}, before["version"], {"name": "Alien"}
        )
    assert row_of("movies", row_id)["name"] == "Alien!"
    assert movie_names(row_id) == {"Alien!"}


# ------------------------------------------------------------------ racing editors


def race_value(table: str, name: str, round_: int, writer: int) -> str:
    """A value for one writer in one round, unlike any the row held before."""
    kind = resource(table).field(name).kind
    if isinstance(kind, Number):
        return f"{round_}.{writer + 1}"  # 0.1 ... 4.2, never the last round's
    if isinstance(kind, Integer):
        return str(round_ + 1 + 5 * writer)  # 1-5 and 6-10, never the last round's
    return f"{name} {round_}{'ab'[writer]}"


def race(
    app: Flask,
    table: str,
    row_id: int,
    before: Mapping[str, Any],
    edits: list[tuple[str, str]],
    shared_lock: bool,
) -> list[str]:
    """Save each (field, value) from its own thread and session, all at once.

    Every writer starts from `before`; returns "saved" or "conflict" per edit.
    """
    barrier = threading.Barrier(len(edits), timeout=30)
    lock = app.extensions["reeltable.write_lock"] if shared_lock else None

    def save(name: str, value: str) -> str:
        with app.app_context():
            svc = CrudService(resource(table), db.session, write_lock=lock)
            original = {name: shown(before[name])}
            barrier.wait()
            try:
                svc.update(row_id, {name: value}, before["version"], original)
            except Conflict:
                return "conflict"
            return "saved"

    with ThreadPoolExecutor(len(edits)) as pool:
        futures = [pool.submit(save, name, value) for name, value in edits]
        return [f.result() for f in futures]


# The app's write lock makes one process's SQLite writers take turns; without it
# (another process, the CLI) only the database keeps them apart.
LOCKS = [pytest.param(True, id="app-lock"), pytest.param(False, id="no-lock")]


@pytest.mark.parametrize("shared_lock", LOCKS)
@pytest.mark.parametrize(("table", "first", "second"), FIELD_PAIRS)
def test_racing_writers_of_different_fields_both_win(
    app: Flask,
    target: dict[str, int],
    table: str,
    first: str,
    second: str,
    shared_lock: bool,
) -> None:
    # Issue 10: two editors of different fields of one row, from one version,
    # both keep their change.
    row_id = target[table]
    for round_ in range(ROUNDS):
        with app.app_context():
            before = row_of(table, row_id)
        edits = [
            (first, race_value(table, first, round_, 0)),
            (second, race_value(table, second, round_, 1)),
        ]
        outcomes = race(app, table, row_id, before, edits, shared_lock)
        with app.app_context():
            after = row_of(table, row_id)
        assert outcomes == ["saved", "saved"], round_
        for name, value in edits:
            assert after[name] == parsed(table, name, value), round_
        assert after["version"] == before["version"] + 2


@pytest.mark.parametrize("shared_lock", LOCKS)
@pytest.mark.parametrize(("table", "name"), SAME_FIELD)
def test_racing_writers_of_one_field_one_wins(
    app: Flask, target: dict[str, int], table: str, name: str, shared_lock: bool
) -> None:
    # Issue 10: two editors of one field from one version: exactly one saves,
    # the other gets a Conflict, and the stored value is the winner's.
    row_id = target[table]
    for round_ in range(ROUNDS):
        with app.app_context():
            before = row_of(table, row_id)
        edits = [(name, race_value(table, name, round_, w)) for w in (0, 1)]
        outcomes = race(app, table, row_id, before, edits, shared_lock)
        with app.app_context():
            after = row_of(table, row_id)
        assert sorted(outcomes) == ["conflict", "saved"], round_
        winner = edits[outcomes.index("saved")][1]
        assert after[name] == parsed(table, name, winner), round_
        assert after["version"] == before["version"] + 1


# ------------------------------------------------------------------ a write in the gap


class Interrupted(CrudService):
    """A service during whose save another editor saves, after its read."""

    def __init__(
        self, table: str, meanwhile: Callable[[], None], times: int = 1
    ) -> None:
        super().__init__(resource(table), db.session)
        self.meanwhile = meanwhile
        self.times = times
        self.tries = 0

    def validate(self, data: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Let the other editor commit, then validate as usual."""
        # update() validates after its read and before its UPDATE: the gap a
        # concurrent save can fall into on PostgreSQL.
        self.tries += 1
        if self.tries <= self.times:
            self.meanwhile()
        return super().validate(data, **kwargs)


def no_gap_on_sqlite() -> None:
    """Skip on SQLite, whose writers hold the file from before their read."""
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite's BEGIN IMMEDIATE leaves no gap for another writer")


@pytest.mark.parametrize(("table", "mine", "theirs"), OTHER_FIELD)
def test_write_in_the_gap_to_another_field_is_retried_and_merged(
    ctx: None, target: dict[str, int], table: str, mine: str, theirs: str
) -> None:
    # Issue 10: the version in the UPDATE's WHERE catches a save that lands after
    # our read; the merge tries again and keeps both changes.
    no_gap_on_sqlite()
    row_id = target[table]
    before = row_of(table, row_id)
    value = EDITS[table][theirs][1]
    svc = Interrupted(
        table, lambda: elsewhere(table, row_id, {theirs: value}, before["version"])
    )
    svc.update(
        row_id,
        {mine: EDITS[table][mine][0]},
        before["version"],
        {mine: shown(before[mine])},
    )
    after = row_of(table, row_id)
    assert svc.tries == 2
    assert after[mine] == parsed(table, mine, EDITS[table][mine][0])
    assert after[theirs] == parsed(table, theirs, value)
    assert after["version"] == before["version"] + 2


@pytest.mark.parametrize(("table", "name"), SAME_FIELD)
def test_write_in_the_gap_to_the_same_field_conflicts(
    ctx: None, target: dict[str, int], table: str, name: str
) -> None:
    # Issue 10: no lost update: the save that landed in the gap is kept.
    no_gap_on_sqlite()
    row_id = target[table]
    before = row_of(table, row_id)
    mine, theirs = EDITS[table][name]
    svc = Interrupted(
        table, lambda: elsewhere(table, row_id, {name: theirs}, before["version"])
    )
    with pytest.raises(Conflict):
        svc.update(row_id, {name: mine}, before["version"], {name: shown(before[name])})
    after = row_of(table, row_id)
    assert svc.tries == 1
    assert after[name] == parsed(table, name, theirs)
    assert after["version"] == before["version"] + 1


def test_write_in_the_gap_without_original_conflicts_at_once(
    ctx: None, target: dict[str, int]
) -> None:
    # Issue 10: without an original there is nothing to merge, so no retry.
    no_gap_on_sqlite()
    row_id = target["movies"]
    before = row_of("movies", row_id)
    svc = Interrupted(
        "movies",
        lambda: elsewhere("movies", row_id, {"name": "Alien!"}, before["version"]),
    )
    with pytest.raises(Conflict):
        svc.update(row_id, {"director": "R. Scott"}, before["version"])
    after = row_of("movies", row_id)
    assert svc.tries == 1
    assert (after["name"], after["director"]) == ("Alien!", "Ridley Scott")
    assert after["version"] == before["version"] + 1


def test_merge_gives_up_after_three_tries(ctx: None, target: dict[str, int]) -> None:
    # Issue 10: a row that changes under every try ends in a Conflict, not a loop.
    no_gap_on_sqlite()
    row_id = target["movies"]
    before = row_of("movies", row_id)
    names = iter(["Alien 1", "Alien 2", "Alien 3"])

    def rename() -> None:
        current = row_of("movies", row_id)
        elsewhere("movies", row_id, {"name": next(names)}, current["version"])

    svc = Interrupted("movies", rename, times=3)
    with pytest.raises(Conflict):
        svc.update(
            row_id,
            {"director": "R. Scott"},
            before["version"],
            {"director": "Ridley Scott"},
        )
    after = row_of("movies", row_id)
    assert svc.tries == 3
    assert (after["name"], after["director"]) == ("Alien 3", "Ridley Scott")
    assert after["version"] == before["version"] + 3
