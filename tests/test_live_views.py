"""Other people's edits, live (issue 14): GET /changes/since, the poll of an open table.

Nothing new: 204 after one primary-key lookup. Else the asked table's changed
rows, each under what happened to it, with the change sets that touched it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.db import db
from app.views import live
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


def test_changes_of_another_table_only_move_the_last_id(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    start = newest(app)
    with app.app_context():
        rating = db.session.scalar(sa.text("SELECT min(id) FROM ratings"))
    saved = hx.patch(f"/ratings/{rating}", data={"rating": "5", "version": "1"})
    assert saved.status_code == 200, saved.text
    body = since(client, start, "movies").get_json()
    assert body == {
        "last": newest(app), "updated": [], "deleted": [], "created": []
    }  # fmt: skip


def test_too_many_changes_ask_for_a_redraw(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict, monkeypatch: Any
) -> None:
    monkeypatch.setattr(live, "ROWS_MAX", 2)
    start = newest(app)
    for name in ("A", "B", "C"):
        hx.post("/movies", data={"name": name, "director": "X"})
    body = since(client, start).get_json()
    assert body == {"last": newest(app), "refresh": True}
    monkeypatch.setattr(live, "ROWS_MAX", 200)
    monkeypatch.setattr(live, "SCAN_MAX", 2)
    assert since(client, start).get_json() == {"last": newest(app), "refresh": True}
    monkeypatch.setattr(live, "SCAN_MAX", 3)
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


def test_an_idle_poll_is_one_primary_key_lookup(
    client: FlaskClient, app: Flask, sample: dict
) -> None:
    start = newest(app)
    since(client, start)  # a warm connection, as in a running server
    with statements(app) as seen:
        assert since(client, start).status_code == 204
    assert len(seen) == 1, seen
    assert re.search(r"max\(changes\.id\)", seen[0][0])
    plan = plan_of(app, seen[0])
    # SQLite answers max(rowid) from the b-tree's last entry (no SCAN step);
    # PostgreSQL from the primary key's last entry.
    assert "SCAN" not in plan, plan
    if "postgresql" in str(app.config["SQLALCHEMY_DATABASE_URI"]):
        assert "Index Only Scan Backward using pk_changes" in plan, plan


def test_a_busy_poll_reads_a_primary_key_range(
    client: FlaskClient, hx: Hx, app: Flask, sample: dict
) -> None:
    start = newest(app)
    hx.patch(f"/movies/{sample['alien']}", data={"rating": "9", "version": "1"})
    with statements(app) as seen:
        assert since(client, start).status_code == 200
    assert len(seen) == 2, seen
    # PostgreSQL reads a test's few dozen changes faster whole (a Seq Scan and a
    # sort); with that way closed it must take the primary key's range, as it
    # does by itself on a log of any size.
    plan = plan_of(app, seen[1], seqscan=False)
    ranged = r"INTEGER PRIMARY KEY \(rowid>\?\)|Index Scan (?:using|on) pk_changes"
    assert re.search(ranged, plan), plan
    assert not re.search(r"SCAN changes$|Seq Scan", plan), plan
