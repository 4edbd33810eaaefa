"""Other people's edits, live (issue 14): GET /changes/since, the poll of an open table.

Nothing new: 204 after one primary-key lookup. Else the asked table's changed
rows, each under what happened to it, with the change sets that touched it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.crud import CrudService, changelog
from app.db import db
from app.models import Movie
from app.resources import MOVIES
from tests.conftest import Hx


def newest(app: Flask) -> int:
    """The newest change id, read straight from the database."""
    with app.app_context():
        return int(db.session.scalar(sa.text("SELECT max(id) FROM changes")) or 0)


def since(client: FlaskClient, after: int | str, table: str = "movies") -> Any:
    """Ask what changed after a change id, as live.js does."""
    return client.get(f"/changes/since?after={after}&table={table}")


@contextmanager
def statements(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    """Collect the SQL statements (with their parameters) the app runs in the block."""
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        # Not the SQLite transaction's own BEGIN (app/db.py _sqlite_begin): a
        # deferred BEGIN takes no lock and reads nothing.
        if statement != "BEGIN":
            seen.append((statement, params))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def set_of(token: str) -> int:
    """The change set id an X-Change-Set token names ("<table>.<set>.<signature>")."""
    return int(token.split(".")[1])


def test_nothing_changed_is_a_204_without_a_body(
    client: FlaskClient, app: Flask, sample: dict
) -> None:
    start = newest(app)
    answer = since(client, start)
    assert answer.status_code == 204
    assert answer.data == b""
    assert "Set-Cookie" not in answer.headers  # no session write per poll


def test_the_page_is_drawn_with_the_change_id_it_starts_from(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    hx.patch(f"/movies/{sample['alien']}", data={"rating": "9", "version": "1"})
    start = newest(app)
    assert start > 0
    for page in (client.get("/movies"), hx.get("/movies?q=Alien")):
        assert page.status_code == 200
        found = re.findall(r'data-live-after="(\d+)"', page.text)
        assert found == [str(start)]
        assert 'data-live-url="/changes/since"' in page.text
        assert 'data-live-table="movies"' in page.text


def test_an_edit_a_delete_and_a_create_are_listed_by_op(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    start = newest(app)
    alien = sample["alien"]
    edited = hx.patch(f"/movies/{alien}", data={"rating": "9", "version": "1"})
    deleted = hx.delete(f"/movies/{sample['blade']}")
    created = hx.post("/movies", data={"name": "Dune", "director": "D. Villeneuve"})
    for write in (edited, deleted, created):
        assert write.status_code == 200, write.text
    with app.app_context():
        dune = db.session.scalar(sa.text("SELECT id FROM movies WHERE name = 'Dune'"))

    answer = since(client, start)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["last"] == newest(app) > start
    assert answer.headers["X-Last-Change"] == str(body["last"])
    assert answer.headers["Cache-Control"] == "no-store"
    sets = {
        name: set_of(write.headers["X-Change-Set"])
        for name, write in (("edit", edited), ("delete", deleted), ("add", created))
    }
    assert body["updated"] == [[sample["alien"], [sets["edit"]]]]
    assert body["deleted"] == [[sample["blade"], [sets["delete"]]]]
    assert body["created"] == [[dune, [sets["add"]]]]
    # The deleted movie's ratings went with it: listed for the ratings table.
    ratings = since(client, start, "ratings").get_json()
    assert ratings["updated"] == ratings["created"] == []
    assert len(ratings["deleted"]) == 1
    # Asked again from the id it gave: nothing new.
    assert since(client, body["last"]).status_code == 204


def test_a_row_created_then_edited_is_created_and_one_edited_then_deleted_deleted(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    start = newest(app)
    hx.post("/movies", data={"name": "Dune", "director": "D. Villeneuve"})
    with app.app_context():
        dune = db.session.scalar(sa.text("SELECT id FROM movies WHERE name = 'Dune'"))
    hx.patch(f"/movies/{dune}", data={"rating": "8", "version": "1"})
    hx.patch(f"/movies/{sample['cure']}", data={"rating": "7", "version": "1"})
    hx.delete(f"/movies/{sample['cure']}")
    body = since(client, start).get_json()
    assert [row for row, _ in body["created"]] == [dune]
    assert len(body["created"][0][1]) == 2  # both of its change sets
    assert [row for row, _ in body["deleted"]] == [sample["cure"]]
    assert body["updated"] == []


def test_changes_of_a_table_not_shown_only_move_the_last_id(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    start = newest(app)
    with app.app_context():
        rating = db.session.scalar(sa.text("SELECT min(id) FROM ratings"))
    saved = hx.patch(f"/ratings/{rating}", data={"rating": "5", "version": "1"})
    assert saved.status_code == 200, saved.text
    # Ratings are shown under movies, not the other way round.
    body = since(client, start, "ratings").get_json()
    body.pop("snapshot", None)  # PostgreSQL's
    last = newest(app)
    assert body == {
        "last": last,
        "updated": [[rating, [set_of(saved.headers["X-Change-Set"])]]],
        "deleted": [],
        "created": [],
    }
    movies_only = {"last": last, "updated": [], "deleted": [], "created": []}
    with app.app_context():
        db.session.execute(sa.text("UPDATE changes SET table_name = 'elsewhere'"))
        db.session.commit()
    body = since(client, start, "movies").get_json()
    body.pop("snapshot", None)
    assert body == movies_only


def test_ratings_changed_are_listed_for_the_movies_page_with_their_movie(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    alien = sample["alien"]
    with app.app_context():
        first, second = db.session.execute(
            sa.text("SELECT id FROM ratings WHERE movie_id = :m ORDER BY id"),
            {"m": alien},
        ).scalars()
    start = newest(app)
    edited = hx.patch(
        f"/ratings/{first}?nested=1", data={"rating": "5", "version": "1"}
    )
    deleted = hx.delete(f"/ratings/{second}?nested=1")
    added = hx.post(
        f"/movies/{sample['cure']}/ratings", data={"rating": "6", "author": "Cy"}
    )
    for write in (edited, deleted, added):
        assert write.status_code == 200, write.text
    with app.app_context():
        new = db.session.scalar(sa.text("SELECT max(id) FROM ratings"))
    body = since(client, start, "movies").get_json()
    assert body["updated"] == body["deleted"] == body["created"] == []
    sets = {k: set_of(w.headers["X-Change-Set"]) for k, w in
            (("edit", edited), ("delete", deleted), ("add", added))}  # fmt: skip
    # Each with its movie: the page follows the movie's summary and open list,
    # the deleted rating's movie read from the log.
    assert body["children"] == {
        "ratings": {
            "singular": "rating",
            "updated": [[first, [sets["edit"]], alien]],
            "deleted": [[second, [sets["delete"]], alien]],
            "created": [[new, [sets["add"]], sample["cure"]]],
        }
    }


def test_too_many_changes_ask_for_a_redraw(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict, monkeypatch: Any
) -> None:
    monkeypatch.setattr(changelog, "ROWS_MAX", 2)
    start = newest(app)
    for name in ("A", "B", "C"):
        hx.post("/movies", data={"name": name, "director": "X"})
    body = since(client, start).get_json()
    body.pop("snapshot", None)
    last = newest(app)
    # The page draws its region again, from a cursor of its own.
    assert body == {"last": last, "refresh": True}
    monkeypatch.setattr(changelog, "ROWS_MAX", 200)
    monkeypatch.setattr(changelog, "SCAN_MAX", 2)
    assert since(client, start).get_json()["refresh"] is True
    monkeypatch.setattr(changelog, "SCAN_MAX", 3)
    assert len(since(client, start).get_json()["created"]) == 3


@pytest.mark.parametrize(
    "after", ["", "x", "-1", "1.5", "１２", "١٢", "99999999999999999999", "9" * 19]
)
def test_a_bad_after_is_a_400(client: FlaskClient, after: str) -> None:
    answer = since(client, after)
    # 9,999,999,999,999,999,999 is past a BIGINT too.
    assert answer.status_code == 400, after


@pytest.mark.parametrize("table", ["", "changes", "users", "movies;"])
def test_a_table_not_declared_is_a_400(client: FlaskClient, table: str) -> None:
    assert since(client, 0, table).status_code == 400


def test_after_missing_is_a_400(client: FlaskClient) -> None:
    assert client.get("/changes/since?table=movies").status_code == 400


def plan_of(app: Flask, statement: tuple[str, Any], seqscan: bool = True) -> str:
    """The database's plan for a statement the app ran, as one line of text."""
    sql, params = statement
    with app.app_context():
        conn = db.session.connection()
        if conn.dialect.name == "sqlite":
            steps = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
            return " ".join(str(step[-1]) for step in steps)
        if not seqscan:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return " ".join(conn.exec_driver_sql("EXPLAIN " + sql, params).scalars())


def postgres(app: Flask) -> bool:
    """Whether the test runs on PostgreSQL."""
    return not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")


def test_an_idle_poll_is_one_primary_key_lookup(
    client: FlaskClient, app: Flask, sample: dict
) -> None:
    start = newest(app)
    since(client, start)  # a warm connection, as in a running server
    with statements(app) as seen:
        assert since(client, start).status_code == 204
    assert len(seen) == 1, seen
    assert re.search(r"max\((changes\.)?id\)", seen[0][0])
    plan = plan_of(app, seen[0])
    # SQLite answers max(rowid) from the b-tree's last entry (no SCAN step);
    # PostgreSQL from the primary key's last entry.
    assert "SCAN" not in plan, plan
    if postgres(app):
        assert "Index Only Scan Backward using pk_changes" in plan, plan
        assert "Seq Scan" not in plan, plan


def test_an_idle_poll_from_a_cursor_naming_running_writers_is_one_lookup(
    client: FlaskClient, app: Flask, sample: dict
) -> None:
    """PostgreSQL: writers in the cursor's snapshot that still run cost nothing:
    the statement's own snapshot says they run, no read of the log."""
    if not postgres(app):
        pytest.skip("SQLite: the cursor is an id alone")
    with app.app_context():
        engine = db.engine
    with engine.connect() as elsewhere:
        # A writer's id, held.
        xid = int(elsewhere.scalar(sa.text("SELECT pg_current_xact_id()::text")))
        idle = []
        # A test running elsewhere on the server may end between the page and
        # its poll (a 200 that moves the cursor): asked again from a new page.
        for _ in range(10):
            cursor = cursor_of(client.get("/movies").text)
            # The running writer is one the cursor's snapshot did not see.
            assert not changelog.parse_snapshot(cursor["snapshot"]).finished(xid)
            with statements(app) as seen:
                answer = client.get("/changes/since", query_string=cursor)
            if answer.status_code == 204:
                idle = seen
                break
        elsewhere.rollback()
    assert len(idle) == 1, idle
    assert "pg_current_snapshot()" in idle[0][0]
    plan = plan_of(app, idle[0])
    # max(xid): the last entry of ix_changes_xid; the running list is compared
    # with the statement's snapshot in Python.
    assert "Index Only Scan Backward using ix_changes_xid" in plan, plan
    assert "Seq Scan" not in plan and "pk_changes" not in plan, plan


def test_a_busy_poll_reads_index_ranges(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    cursor = cursor_of(client.get("/movies").text)
    hx.patch(f"/movies/{sample['alien']}", data={"rating": "9", "version": "1"})
    with statements(app) as seen:
        assert client.get("/changes/since", query_string=cursor).status_code == 200
    # SQLite: max(id), then the id range. PostgreSQL: the snapshot and max(xid),
    # then the changes the cursor's snapshot did not see.
    assert len(seen) == 2, seen
    if postgres(app):
        assert "pg_current_snapshot()" in seen[0][0]
    # PostgreSQL reads a test's few dozen changes faster whole (a Seq Scan and a
    # sort); with that way closed it must take an index's range, as it does by
    # itself on a log of any size.
    plan = plan_of(app, seen[-1], seqscan=False)
    ranged = r"INTEGER PRIMARY KEY \(rowid>\?|Index Scan (?:using|on) ix_changes_xid"
    assert re.search(ranged, plan), plan
    assert not re.search(r"SCAN changes$|Seq Scan", plan), plan


def test_changes_of_running_writers_are_read_by_their_xid(
    client: FlaskClient, app: Flask, sample: dict
) -> None:
    """PostgreSQL: a cursor naming running transactions reads their changes
    through ix_changes_xid, never a scan of the log."""
    if not postgres(app):
        pytest.skip("SQLite: the cursor is an id alone")
    with app.app_context():
        top = newest(app)
        old = changelog.Cursor(top, changelog.Snapshot(3, 1000, (5, 900)))
        new = changelog.Cursor(top + 1, changelog.Snapshot(1000, 1000))
        with statements(app) as seen:
            changelog._read(db.session, old, new, 10)
    plan = plan_of(app, seen[-1], seqscan=False)
    assert plan.count("ix_changes_xid") == 2, plan  # the list, and from xmax on
    assert "Seq Scan" not in plan, plan


def cursor_of(page: str, table: str = "movies") -> dict[str, Any]:
    """The cursor a table page was drawn at (data-live-after, data-live-snapshot)."""
    after = re.search(r'data-live-after="(\d+)"', page)
    snapshot = re.search(r'data-live-snapshot="([0-9:,]*)"', page)
    assert after and snapshot, page
    return {"after": after[1], "snapshot": snapshot[1], "table": table}


def follow(client: FlaskClient, body: dict[str, Any], table: str = "movies") -> Any:
    """Ask again with the cursor an answer gave, as live.js does."""
    args = {"after": body["last"], "table": table}
    if "snapshot" in body:
        args["snapshot"] = body["snapshot"]
    return client.get("/changes/since", query_string=args)


def settle(client: FlaskClient, body: dict[str, Any]) -> tuple[Any, list[int]]:
    """Follow answers until a 204; the change sets they listed on the way.

    PostgreSQL: a test running elsewhere on the server may end after a cursor
    named its transaction: the next answer moves the cursor and lists nothing.
    """
    listed: list[int] = []
    for _ in range(50):
        answer = follow(client, body)
        if answer.status_code == 204:
            return answer, listed
        body = answer.get_json()
        for group in ("updated", "deleted", "created"):
            listed += [s for _, sets in body[group] for s in sets]
        time.sleep(0.1)
    return answer, listed


def test_the_cursor_comes_back_and_an_idle_tab_hears_204(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    start = newest(app)
    saved = hx.patch(f"/movies/{sample['alien']}", data={"rating": "9", "version": "1"})
    body = since(client, start).get_json()
    assert body["last"] == newest(app)
    assert body["updated"] == [
        [sample["alien"], [set_of(saved.headers["X-Change-Set"])]]
    ]
    if postgres(app):
        changelog.parse_snapshot(body["snapshot"])  # PostgreSQL's own text
    else:
        # One writer at a time: ids commit in order, the id is the cursor.
        assert "snapshot" not in body
    # Followed with the cursor it gives, the answers come to a 204, and none
    # lists the change again: each change is reported once.
    answer, listed = settle(client, body)
    assert answer.status_code == 204
    assert listed == []


BAD_SNAPSHOTS = [
    "x",
    "1:2",
    "1:2:3:4",
    "-1:5:",
    "0:5:",
    "5:4:",
    "3:9:2",  # running before xmin
    "3:9:9",  # running at xmax
    "3:9:5,4",  # out of order
    "3:9:5,5",
    "3:9:5,",
    "3:9: 5",
    "１:2:",
    "3:9:" + "00000000000000000005",  # 20 digits
    "99999999999999999999:99999999999999999999:",  # past a BIGINT
    "1:" + str(2**62) + ":" + ",".join(str(2 + i) for i in range(201)),  # 201 running
    "1:2:" + "," * 4000,  # oversized
    "1:2:" + "9" * 100000,
]


@pytest.mark.parametrize("snapshot", BAD_SNAPSHOTS, ids=lambda s: s[:24])
def test_a_bad_snapshot_is_a_400(
    client: FlaskClient, app: Flask, sample: dict, snapshot: str
) -> None:
    before = newest(app)
    answer = client.get(
        "/changes/since",
        query_string={"after": before, "table": "movies", "snapshot": snapshot},
    )
    assert answer.status_code == 400, snapshot
    assert b"snapshot" in answer.data
    assert newest(app) == before


@pytest.mark.parametrize(
    "snapshot", ["", "5:5:", "3:9:4,8", "1:" + str(2**63 - 1) + ":"]
)
def test_a_good_snapshot_is_read(
    client: FlaskClient, app: Flask, sample: dict, snapshot: str
) -> None:
    answer = client.get(
        "/changes/since",
        query_string={"after": newest(app), "table": "movies", "snapshot": snapshot},
    )
    assert answer.status_code in (200, 204), answer.text


def test_a_change_that_commits_late_with_a_smaller_id_is_not_missed(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    """PostgreSQL: A takes its change id, B takes a larger one and commits first."""
    if not postgres(app):
        pytest.skip("SQLite lets one writer in at a time: ids commit in order")
    start = newest(app)
    with app.app_context():
        engine = db.engine
        # A, on a connection of its own: writes through the change log and holds
        # its transaction open.
        session, writing, a_set = open_write(engine, sample["alien"])
    try:
        # B, through the app: a larger change id, committed at once.
        b = hx.patch(f"/movies/{sample['blade']}", data={"rating": "7", "version": "1"})
        assert b.status_code == 200, b.text
        b_set = set_of(b.headers["X-Change-Set"])
        assert b_set > a_set
        first = since(client, start).get_json()
        assert first["updated"] == [[sample["blade"], [b_set]]]
        assert first["last"] >= b_set
        # The cursor's snapshot names A, which may still commit...
        assert writer_xid(session) in changelog.parse_snapshot(first["snapshot"]).xip
        # ...and however often the page asks while A runs, A is not reported.
        held = follow(client, first)
        if held.status_code == 200:  # a test elsewhere ended: the cursor moves
            assert [sample["alien"], [a_set]] not in held.get_json()["updated"]
            first = held.get_json()
    finally:
        writing.__exit__(None, None, None)  # A commits
        session.close()
    # The next poll, from B's id, reports A's change, once.
    second = follow(client, first)
    assert second.status_code == 200
    body = second.get_json()
    assert [sample["alien"], [a_set]] in body["updated"]
    answer, listed = settle(client, body)
    assert answer.status_code == 204 and listed == []
    # Polled the old way (only `after`), A's change is missed: the hole this closes.
    assert since(client, first["last"]).status_code == 204


def open_write(engine: sa.Engine, movie: int) -> tuple[Session, Any, int]:
    """A write of a movie's rating through the change log, its transaction held
    open on a connection of its own: (session, transaction, change set id)."""
    session = Session(engine)
    writing = CrudService(MOVIES, session).transaction(bulk=False)
    log = writing.__enter__()
    table = Movie.__table__
    session.execute(
        sa.update(table)
        .where(table.c.id == movie)
        .values(rating=9.9, version=table.c.version + 1)
    )
    log.updated("movies", movie, {"rating": 8.5}, {"rating": 9.9}, 2)
    assert log.id is not None
    return session, writing, log.id


def writer_xid(session: Session) -> int:
    """The transaction id a held write runs as."""
    return int(session.scalar(sa.text("SELECT pg_current_xact_id()::text")))


def test_a_page_drawn_while_an_older_write_runs_hears_of_it(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    """PostgreSQL: A holds a change id and its transaction; the page is drawn
    (its cursor at the newest id, above A's); B commits; A commits. The poll
    from the page's cursor reports both."""
    if not postgres(app):
        pytest.skip("SQLite lets one writer in at a time: ids commit in order")
    with app.app_context():
        engine = db.engine
        session, writing, a_set = open_write(engine, sample["alien"])
    try:
        # Something newer than A's id committed before the page is drawn, so
        # the page's id is above A's.
        before = hx.patch(
            f"/movies/{sample['cure']}", data={"rating": "6", "version": "1"}
        )
        assert before.status_code == 200, before.text
        page = client.get("/movies")
        assert page.status_code == 200
        cursor = cursor_of(page.text)
        assert int(cursor["after"]) > a_set
        assert writer_xid(session) in changelog.parse_snapshot(cursor["snapshot"]).xip
        b = hx.patch(f"/movies/{sample['blade']}", data={"rating": "7", "version": "1"})
        assert b.status_code == 200, b.text
        b_set = set_of(b.headers["X-Change-Set"])
    finally:
        writing.__exit__(None, None, None)  # A commits
        session.close()
    answer = client.get("/changes/since", query_string=cursor)
    assert answer.status_code == 200
    body = answer.get_json()
    assert [sample["alien"], [a_set]] in body["updated"]
    assert [sample["blade"], [b_set]] in body["updated"]
    # The change before the page was drawn is in its rows, not reported again.
    assert set_of(before.headers["X-Change-Set"]) not in {
        s for _, sets in body["updated"] for s in sets
    }
    # Polled from the id alone (the cursor before this change), A's is missed.
    old = client.get(
        "/changes/since", query_string={"after": cursor["after"], "table": "movies"}
    )
    assert [sample["alien"], [a_set]] not in old.get_json()["updated"]


def test_a_long_transaction_elsewhere_costs_no_reread(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    """PostgreSQL: an open write that logs nothing (a migration, say) is named
    by every cursor while it runs, yet polls stay 204 until it ends, and its
    end moves the cursor once with nothing listed."""
    if not postgres(app):
        pytest.skip("SQLite lets one writer in at a time: nothing is held back")
    with app.app_context():
        engine = db.engine
    with engine.connect() as elsewhere:
        # A transaction id taken and kept open, as any long write has, on no
        # table the log covers.
        elsewhere.execute(sa.text("SELECT pg_current_xact_id()"))
        start = newest(app)
        saved = hx.patch(
            f"/movies/{sample['alien']}", data={"rating": "9", "version": "1"}
        )
        assert saved.status_code == 200, saved.text
        body = since(client, start).get_json()
        assert body["updated"] == [
            [sample["alien"], [set_of(saved.headers["X-Change-Set"])]]
        ]
        answer, listed = settle(client, body)
        assert answer.status_code == 204 and listed == []
        elsewhere.rollback()
    answer, listed = settle(client, body)
    assert answer.status_code == 204 and listed == []


def test_concurrent_writers_each_change_is_reported_once(
    client: FlaskClient, app: Flask, sample: dict
) -> None:
    """PostgreSQL: writers that take ids and commit in any order while a page
    polls: every change is reported, none twice."""
    if not postgres(app):
        pytest.skip("SQLite lets one writer in at a time: ids commit in order")
    import random
    import threading

    with app.app_context():
        engine = db.engine
    movies = [sample["alien"], sample["blade"], sample["cure"]]
    written: list[int] = []
    lock = threading.Lock()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(12):
            session, writing, set_id = open_write(engine, rng.choice(movies))
            time.sleep(rng.random() * 0.05)  # hold it: others commit meanwhile
            writing.__exit__(None, None, None)
            session.close()
            with lock:
                written.append(set_id)

    body = cursor_of(client.get("/movies").text)
    body = {"last": body["after"], "snapshot": body["snapshot"]}
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    reported: list[int] = []
    while any(thread.is_alive() for thread in threads):
        answer = follow(client, body)
        if answer.status_code == 200:
            body = answer.get_json()
            reported += [s for _, sets in body["updated"] for s in sets]
        time.sleep(0.01)
    for thread in threads:
        thread.join()
    answer, listed = settle(client, body)
    assert answer.status_code == 204
    reported += listed
    missing = sorted(set(written) - set(reported))
    assert sorted(reported) == sorted(written), (missing, sorted(reported))
    assert len(written) == 48


def test_a_snapshot_too_long_for_a_cursor_is_cut_and_stays_exact() -> None:
    running = tuple(range(10, 260))  # 250 running transactions
    whole = changelog.Snapshot(10, 300, running)
    text = whole.text()
    with pytest.raises(ValueError):
        changelog.parse_snapshot(text)  # from a request: too many
    assert changelog.parse_snapshot(text, bounded=False) == whole  # the server's own
    cut = whole.cut()
    assert cut.xip == running[: changelog.XIP_MAX]
    assert cut.xmax == running[changelog.XIP_MAX]  # the first left out
    assert changelog.parse_snapshot(cut.text()) == cut  # fits a request again
    # Everything the whole snapshot did not see, the cut one did not either.
    for xid in range(1, 400):
        if not whole.finished(xid):
            assert not cut.finished(xid), xid


def test_changes_from_the_snapshots_xmax_on_are_reported(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    """PostgreSQL: a transaction that ran past the snapshot's xmax (not in its
    running list) is read by the range from xmax, whatever its change id."""
    if not postgres(app):
        pytest.skip("SQLite: the cursor is an id alone")
    cursor = cursor_of(client.get("/movies").text)
    saved = hx.patch(f"/movies/{sample['alien']}", data={"rating": "9", "version": "1"})
    set_id = set_of(saved.headers["X-Change-Set"])
    with app.app_context():
        xid = int(
            db.session.scalar(
                sa.text("SELECT xid::text FROM changes WHERE set_id = :s"),
                {"s": set_id},
            )
        )
    # A cursor at the newest id whose snapshot ends at that change's xid.
    cursor = {**cursor, "after": str(newest(app)), "snapshot": f"{xid}:{xid}:"}
    body = client.get("/changes/since", query_string=cursor).get_json()
    assert body["updated"] == [[sample["alien"], [set_id]]]
