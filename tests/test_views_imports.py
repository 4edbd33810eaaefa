"""A big import through the page: a job checks and writes it, the page shows progress.

Regression tests for issue 11, item 2: the preview and the Import POST each held a
worker for the whole file (94 s and 114 s for 400,000 rows) and other writers got
500 "database is locked". Uploads over IMPORT_INLINE_BYTES (0 here: every upload)
are now checked and written by a child process while the page polls its progress,
and while an import writes, other writers get 503 with Retry-After at once.
"""

from __future__ import annotations

import io
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from app.crud import CrudService, WriteBusy
from app.db import db
from app.models import Movie, Rating
from app.resources import MOVIES
from tests.conftest import Hx, dispose, make_app
from tests.test_csv_import import rows

RATINGS_HEADER = b"rating,author,movie_id\r\n"
STATUS = re.compile(r'id="import-job-status" role="status">([^<]*)<')
BUSY = "An import is being written; try again in a few seconds"
JOB_TIMEOUT = 300.0  # seconds; a job here takes a few
POSTGRES = "postgresql" in os.environ.get("TEST_DATABASE_URL", "")


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh database, every upload checked and imported by a job."""
    built = make_app(database_url, tmp_path / "instance", IMPORT_INLINE_BYTES=0)
    yield built
    dispose(built)


def ratings_file(n: int, movie_ids: list[int]) -> bytes:
    """n new ratings spread over the given movies."""
    lines = (
        b"%d,Author %d,%d\r\n" % (1 + i % 10, i, movie_ids[i % len(movie_ids)])
        for i in range(n)
    )
    return RATINGS_HEADER + b"".join(lines)


def upload(client: FlaskClient, name: str, data: bytes, htmx: bool = True) -> Any:
    """Post a file to the import page, as htmx or as a plain form."""
    boundary, body = encode_multipart(
        {"resource": name, "file": FileStorage(io.BytesIO(data), filename="big.csv")}
    )
    return client.post(
        "/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={"HX-Request": "true"} if htmx else {},
    )


def follow(hx: Hx, location: str, seen: list[str] | None = None) -> Any:
    """Poll an import's page as the progress element does, until its job is done.

    Every status line shown on the way is added to `seen`.
    """
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        page = hx.get(location)
        found = STATUS.search(page.text)
        if found is None:
            return page
        if seen is not None and (not seen or seen[-1] != found.group(1)):
            seen.append(found.group(1))
        time.sleep(0.02)
    raise AssertionError(f"the job of {location} did not finish")


class _RolledBack(Exception):
    """Ends an_import_writing without committing."""


@contextmanager
def an_import_writing(app: Flask, movie_id: int) -> Iterator[None]:
    """Hold the database as an import's write transaction does, then roll back.

    The real one: CrudService.transaction(), which csvfile.import_file writes in,
    changing one movie. On PostgreSQL its row stays locked (FOR UPDATE: even a
    rating pointing at it waits) until the end. A session of its own, as another
    process would have: requests made meanwhile must not share its transaction.
    """
    with app.app_context():
        engine = db.engine
    with Session(engine) as session:
        svc = CrudService(MOVIES, session)
        try:
            with svc.transaction():
                svc.bulk.update_many([(movie_id, {"name": "Held by an import"})])
                if POSTGRES:
                    locked = sa.select(Movie).where(Movie.id == movie_id)
                    session.execute(locked.with_for_update())
                yield
                raise _RolledBack
        except _RolledBack:
            pass


# ------------------------------------------------------------------ progress


def test_a_big_upload_is_checked_then_imported_with_progress(
    hx: Hx, sample: dict
) -> None:
    data = ratings_file(60_000, list(sample.values()))
    started = upload(hx.client, "ratings", data)
    # Answered at once with the progress, not after the whole check.
    assert started.status_code == 202
    location = started.headers["HX-Push-Url"]
    assert re.fullmatch(r"/import/[\w-]{24}", location)
    assert 'id="import-preview"' not in started.text
    assert "<progress" in started.text
    assert f'hx-get="{location}" hx-trigger="load delay:1s"' in started.text
    assert "Checking big.csv into ratings" in started.text
    seen: list[str] = []
    preview = follow(hx, location, seen)
    assert preview.status_code == 200
    assert '<th scope="row">New</th><td>60,000</td>' in preview.text
    assert "hx-trigger" not in preview.text  # polling stops here
    checked = [s for s in seen if s.startswith("Checked")]
    assert checked, seen
    assert all(re.fullmatch(r"Checked [\d,]+ of 60,000 rows", s) for s in checked)
    with hx.client.application.app_context():
        assert len(rows(Rating)) == 4  # a preview writes nothing

    importing = hx.post(location)
    assert importing.status_code == 202
    assert "Importing big.csv into ratings" in importing.text
    seen = []
    done = follow(hx, location, seen)
    assert 'id="import-done"' in done.text
    assert "60,000 new and 0 changed" in done.text
    written = [s for s in seen if s.startswith("Written")]
    assert written, seen
    assert all(re.fullmatch(r"Written [\d,]+ of 60,000 rows", s) for s in written)
    numbers = [int(s.split()[1].replace(",", "")) for s in written]
    assert numbers == sorted(numbers)
    with hx.client.application.app_context():
        assert len(rows(Rating)) == 60_004
    # Done: a second click (or a resent form) shows the result, writes nothing.
    again = hx.post(location)
    assert 'id="import-done"' in again.text
    with hx.client.application.app_context():
        assert len(rows(Rating)) == 60_004


def test_without_javascript_the_page_reloads_itself(
    client: FlaskClient, sample: dict
) -> None:
    data = b"name,director,rating\r\nHeat,Michael Mann,\r\n"
    response = upload(client, "movies", data, htmx=False)
    assert response.status_code == 303
    location = response.headers["Location"]
    page = client.get(location).text
    if 'id="import-running"' in page:  # the job may be done already
        assert re.search(r'<noscript>\s*<meta http-equiv="refresh" content="2">', page)
        assert f'<a href="{location}">Reload to see progress</a>' in page
    page = follow(Hx(client), location).text
    assert ">Import 1 row</button>" in page
    assert client.post(location).headers["Location"] == location
    page = client.get(location).text
    while 'id="import-running"' in page:
        assert "<!doctype html>" in page  # a whole page, with its meta refresh
        assert 'http-equiv="refresh"' in page
        time.sleep(0.02)
        page = client.get(location).text
    assert "1 new and 0 changed" in page
    with client.application.app_context():
        assert rows(Movie)[-1] == (4, "Heat", "Michael Mann", None)


def test_a_bad_file_found_by_the_job_is_shown_like_any_bad_file(hx: Hx) -> None:
    started = upload(hx.client, "movies", b"\x89PNG\r\n\x1a\n\x00\x00")
    assert started.status_code == 202
    shown = follow(hx, started.headers["HX-Push-Url"])
    assert shown.status_code == 422
    assert "This is not a CSV file: it holds binary data." in shown.text


def test_reload_back_and_a_second_click_show_the_progress_not_a_second_import(
    app: Flask, hx: Hx, sample: dict
) -> None:
    data = ratings_file(500, list(sample.values()))
    location = upload(hx.client, "ratings", data).headers["HX-Push-Url"]
    follow(hx, location)
    if not POSTGRES:
        # SQLite: claiming the upload is a write too (issue 15: the claim lives
        # in the database), so Import pressed while another import writes is
        # told at once to retry, and nothing is claimed or written.
        with an_import_writing(app, sample["alien"]):
            refused = hx.post(location)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "5"
            assert "An import is being written" in refused.text
            assert 'id="import-preview"' in refused.text
        assert hx.post(location).status_code == 202
        # Import pressed again, or the form resent: the same job, not a second.
        again = hx.post(location)
        assert again.status_code == 200
        assert 'id="import-running"' in again.text or "500 new" in again.text
    else:
        # PostgreSQL: it holds the movie these ratings point at; this one waits
        # for it at its first batch, before any progress.
        with an_import_writing(app, sample["alien"]):
            assert hx.post(location).status_code == 202
            seen: list[str] = []
            while not seen or not seen[-1].startswith("Starting"):
                found = STATUS.search(hx.get(location).text)
                assert found, "the job finished while another import held the rows"
                seen.append(found.group(1))
            # Import pressed again, or the form resent: the same job's progress.
            again = hx.post(location)
            assert again.status_code == 200
            assert 'id="import-running"' in again.text
            # Back or Forward with htmx's history cache empty: the whole page.
            restored = hx.client.get(
                location,
                headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
            )
            assert restored.text.lstrip().startswith("<!doctype html>")
            assert 'id="import-running"' in restored.text
            assert seen[-1] in restored.text
    done = follow(hx, location)
    assert "500 new and 0 changed" in done.text
    with app.app_context():
        assert len(rows(Rating)) == 504  # once, not twice
        assert rows(Movie)[0][1] == "Alien"  # the other import rolled back


# ------------------------------------------------------------------ other writers


@pytest.mark.skipif(
    POSTGRES, reason="SQLite's one writer: PostgreSQL writers wait for rows only"
)
def test_writers_get_503_at_once_while_an_import_holds_sqlite(
    app: Flask, hx: Hx, sample: dict
) -> None:
    with an_import_writing(app, sample["alien"]):
        started = time.monotonic()
        refused = hx.patch(
            f"/movies/{sample['blade']}", data={"director": "New", "version": "1"}
        )
        waited = time.monotonic() - started
        added = hx.post("/movies", data={"name": "Ran", "director": "Kurosawa"})
        plain = hx.client.patch(
            f"/movies/{sample['cure']}", data={"director": "New", "version": "1"}
        )
        # Readers are not affected.
        assert hx.get("/movies").status_code == 200
    # Told at once by the import's gate, not after SQLite's 10 s busy_timeout.
    assert waited < 5, waited
    for response in (refused, added, plain):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == str(WriteBusy.retry_after)
        assert BUSY in response.text
    assert refused.text.lstrip().startswith('<div class="error-message"')
    assert plain.text.lstrip().startswith("<!doctype html>")
    with app.app_context():
        assert [m[2] for m in rows(Movie)] == ["Ridley Scott"] * 2 + [
            "Kiyoshi Kurosawa"
        ]
    # Once the import is over, the same write goes through.
    again = hx.patch(
        f"/movies/{sample['blade']}", data={"director": "New", "version": "1"}
    )
    assert again.status_code == 200


@pytest.mark.skipif(POSTGRES, reason="SQLite's busy_timeout")
def test_a_writer_locked_out_by_an_ungated_writer_gets_503_not_500(
    app: Flask, database_url: str, hx: Hx, sample: dict
) -> None:
    # A writer outside the app (an old `flask import`, sqlite3 in a shell) holds
    # SQLite's write lock past busy_timeout: "database is locked" was a 500.
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"))
    try:
        other.execute("BEGIN IMMEDIATE")
        refused = hx.patch(
            f"/movies/{sample['blade']}", data={"director": "New", "version": "1"}
        )
    finally:
        other.rollback()
        other.close()
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert BUSY in refused.text


@pytest.mark.skipif(not POSTGRES, reason="PostgreSQL's row locks")
def test_postgresql_writers_wait_for_a_row_an_import_holds_then_get_503(
    app: Flask, hx: Hx, sample: dict
) -> None:
    with an_import_writing(app, sample["alien"]):
        refused = hx.patch(
            f"/movies/{sample['alien']}", data={"director": "New", "version": "1"}
        )
        # Rows the import does not hold are written as ever.
        other = hx.patch(
            f"/movies/{sample['blade']}", data={"director": "New", "version": "1"}
        )
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert BUSY in refused.text
    assert other.status_code == 200
    with app.app_context():
        assert rows(Movie)[0][1:3] == ("Alien", "Ridley Scott")


@pytest.mark.skipif(POSTGRES, reason="imports take turns on SQLite only")
def test_a_small_import_while_another_writes_is_refused_with_503(
    database_url: str, tmp_path: Path, sample: dict
) -> None:
    # Small files are imported within their request: that request must not wait
    # for a long import either.
    small = make_app(database_url, tmp_path / "small")
    try:
        client = small.test_client()
        data = b"name,director,rating\r\nRan,Kurosawa,\r\n"
        response = upload(client, "movies", data)
        location = response.headers["HX-Push-Url"]
        with an_import_writing(small, sample["alien"]):
            refused = Hx(client).post(location)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert f"Nothing was imported: {BUSY}" in refused.text
        assert ">Import 1 row</button>" in refused.text  # try again from here
        done = Hx(client).post(location)
        assert "1 new and 0 changed" in done.text
    finally:
        dispose(small)


@pytest.mark.skipif(POSTGRES, reason="imports take turns on SQLite only")
def test_flask_import_while_another_import_writes_says_so_and_exits_75(
    app: Flask, runner: FlaskCliRunner, sample: dict, tmp_path: Path
) -> None:
    # Issue 11: `flask import --commit` met WriteBusy with a traceback.
    path = tmp_path / "movies.csv"
    path.write_bytes(b"name,director,rating\r\nRan,Akira Kurosawa,\r\n")
    with an_import_writing(app, sample["alien"]):
        refused = runner.invoke(args=["import", "movies", str(path), "--commit"])
    assert refused.exit_code == 75, refused.output
    assert isinstance(refused.exception, SystemExit)  # no traceback
    assert refused.output == (
        "Error: Nothing was imported: another import is writing this database."
        " Run this again once it has finished.\n"
    )
    with app.app_context():
        assert "Ran" not in [m[1] for m in rows(Movie)]
    done = runner.invoke(args=["import", "movies", str(path), "--commit"])
    assert done.exit_code == 0, done.output
    with app.app_context():
        assert [m[1] for m in rows(Movie)][-1] == "Ran"
