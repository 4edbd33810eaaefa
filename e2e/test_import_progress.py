"""Journey: a big import shows its progress and result; a save refused meanwhile waits.

Served as `make serve` serves (app/gunicorn_conf.py), with 200 ms of latency on
every request. Issue 11, item 2: the page answers at once and follows the job
that checks, then writes, the file; an edit sent while an import writes gets 503
and the editor keeps the typed text with the server's message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app import create_app
from app.crud import CrudService
from app.db import db
from app.resources import MOVIES
from e2e.conftest import Server, flask, serve
from e2e.live import cell, movie, movie_id, saved, show_movie, slow_network

ROWS = 30_000  # about 700 KB: over IMPORT_INLINE_BYTES, so a job does it
BUSY = "An import is being written; try again in a few seconds"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo catalogue, served by gunicorn from app/gunicorn_conf.py."""
    tmp = tmp_path_factory.mktemp("import-progress")
    database_url = "sqlite:///" + str(tmp / "e2e.sqlite3")
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "e2e-secret"}
    flask(["db", "upgrade"], env)
    flask(["seed"], env)
    app = f"app:create_app(instance_path={str(tmp / 'instance')!r})"
    options = ("--config", "app/gunicorn_conf.py")
    with serve(tmp, env, database_url, options, app) as running:
        yield running


def ratings_file(server: Server) -> bytes:
    """ROWS new ratings spread over the stored movies."""
    ids = [row[0] for row in server.query("SELECT id FROM movies ORDER BY id")]
    lines = (
        b"%d,Reader %d,%d\r\n" % (1 + n % 10, n, ids[n % len(ids)]) for n in range(ROWS)
    )
    return b"rating,author,movie_id\r\n" + b"".join(lines)


def ratings_count(server: Server) -> int:
    """How many ratings are stored."""
    return server.query("SELECT count(*) FROM ratings")[0][0]


def choose(page: Page, data: bytes) -> None:
    """Pick the ratings table and the file, and upload it."""
    page.get_by_label("Ratings").check()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "ratings.csv", "mimeType": "text/csv", "buffer": data}]
    )
    page.get_by_role("button", name="Upload and preview").click()


def test_a_big_import_shows_progress_then_the_result(
    page: Page, served: Server
) -> None:
    before = ratings_count(served)
    slow_network(page)
    page.goto(served.url + "/import")
    choose(page, ratings_file(served))

    # At once: the progress, at the import's own address.
    bar = page.get_by_role("progressbar", name=re.compile(r"^(Starting|Checked)"))
    expect(bar).to_be_visible()
    expect(
        page.get_by_role("heading", name="Checking ratings.csv into ratings")
    ).to_be_visible()
    expect(page).to_have_url(re.compile(r"/import/[\w-]{24}$"))
    status = page.locator("#import-job-status")
    expect(status).to_have_text(
        re.compile(rf"^(Starting|Checked [\d,]+ of {ROWS:,} rows)$")
    )
    # The rest of the site answers meanwhile.
    other = page.context.new_page()
    other.goto(served.url + "/movies")
    expect(other.locator("#movie-rows > tr.data-row").first).to_be_visible()
    other.close()

    counts = page.get_by_role("table", name="What the import would do")
    expect(counts.get_by_role("row", name="New")).to_contain_text(f"{ROWS:,}")
    expect(page.get_by_role("progressbar")).to_have_count(0)
    assert ratings_count(served) == before  # checked, not written

    page.get_by_role("button", name=f"Import {ROWS:,} rows").click()
    heading = page.get_by_role("heading", name="Importing ratings.csv into ratings")
    expect(heading).to_be_visible()
    expect(status).to_have_text(
        re.compile(rf"^(Starting|Written [\d,]+ of {ROWS:,} rows)$")
    )
    done = page.locator("#import-done")
    expect(done).to_contain_text(f"{ROWS:,} new and 0 changed", timeout=60_000)
    assert ratings_count(served) == before + ROWS
    # Reload, Back and Forward show the result; nothing is imported twice.
    page.reload()
    expect(done).to_contain_text(f"{ROWS:,} new and 0 changed")
    page.go_back()
    page.go_forward()
    expect(done).to_contain_text(f"{ROWS:,} new and 0 changed")
    assert ratings_count(served) == before + ROWS


@contextmanager
def an_import_writing(server: Server) -> Iterator[None]:
    """Hold the database as an import does: the real CrudService.transaction()."""
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": server.database_url, "SECRET_KEY": "e2e-secret"},
        instance_path=str(Path(server.database_url.removeprefix("sqlite:///")).parent),
    )
    with app.app_context():
        svc = CrudService(MOVIES, db.session)
        with svc.transaction():
            yield
        db.engine.dispose()


def test_a_save_refused_during_an_import_keeps_the_typed_text(
    page: Page, served: Server
) -> None:
    row_id = movie_id(served, "Heat")
    before = movie(served, row_id)
    slow_network(page)
    row = show_movie(page, served, "Heat")
    with an_import_writing(served):
        cell(row, "director").click()
        box = row.get_by_role("textbox", name="Director")
        box.press_sequentially("Michael Mann, dir.")
        box.press("Enter")
        # 503: the editor opens again with what was typed and the server's words.
        box = row.get_by_role("textbox", name="Director")
        expect(box).to_have_value("Michael Mann, dir.")
        expect(cell(row, "director")).to_contain_text(BUSY)
        saved(page)
        assert movie(served, row_id) == before
    box.press("Enter")  # the import is over: the same text is saved
    expect(row.get_by_role("textbox")).to_have_count(0)
    expect(cell(row, "director")).to_have_text("Michael Mann, dir.")
    saved(page)
    assert movie(served, row_id)[1] == "Michael Mann, dir."


def test_without_javascript_the_progress_page_reloads_itself(
    browser: Browser, served: Server
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        before = ratings_count(served)
        page.goto(served.url + "/import")
        choose(page, ratings_file(served))
        expect(page.get_by_role("link", name="Reload to see progress")).to_be_visible()
        counts = page.get_by_role("table", name="What the import would do")
        # The page reloads itself (every 2 s) until the preview is there.
        expect(counts.get_by_role("row", name="New")).to_contain_text(
            f"{ROWS:,}", timeout=60_000
        )
        page.get_by_role("button", name=f"Import {ROWS:,} rows").click()
        expect(page.locator("#import-done")).to_contain_text(
            f"{ROWS:,} new and 0 changed", timeout=60_000
        )
        assert ratings_count(served) == before + ROWS
    finally:
        context.close()


def test_a_small_import_refused_while_another_writes_says_so_in_place(
    page: Page, served: Server
) -> None:
    page.goto(served.url + "/import")
    page.get_by_label("Movies").check()
    page.get_by_label("CSV file").set_input_files(
        files=[
            {
                "name": "one.csv",
                "mimeType": "text/csv",
                "buffer": b"name,director,rating\r\nWaiting Film,Ana Wait,\r\n",
            }
        ]
    )
    page.get_by_role("button", name="Upload and preview").click()
    button = page.get_by_role("button", name="Import 1 row")
    # The upload is stored in the database, a write: let it land before the
    # import below holds the database, or the upload itself is what waits.
    expect(button).to_be_visible()
    with an_import_writing(served):
        button.click()
        # 503: the preview stays, with why nothing was written.
        expect(page.locator("#import-preview")).to_contain_text(
            f"Nothing was imported: {BUSY}"
        )
    assert not served.query("SELECT id FROM movies WHERE director = 'Ana Wait'")
    button.click()
    expect(page.locator("#import-done")).to_contain_text("1 new and 0 changed")
    assert served.query("SELECT name FROM movies WHERE director = 'Ana Wait'") == [
        ("Waiting Film",)
    ]
