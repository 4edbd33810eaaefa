"""Helpers the live-table journeys share: find rows, open views, read the database."""

from __future__ import annotations

from urllib.parse import quote

import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from e2e.browser import slow_network as slow_network  # the journeys import it here
from e2e.conftest import Server


def movie_id(server: Server, name: str) -> int:
    """The id of the (first) movie with this name."""
    ((found,),) = server.query(
        "SELECT min(id) FROM movies WHERE name = :name", name=name
    )
    assert found is not None, f"no movie called {name!r}"
    return int(found)


def movie(server: Server, movie_id: int) -> tuple | None:
    """(name, director, rating, version) of a movie as stored, or None."""
    found = server.query(
        "SELECT name, director, rating, version FROM movies WHERE id = :id", id=movie_id
    )
    return found[0] if found else None


def show_movie(page: Page, server: Server, name: str) -> Locator:
    """Open the movie table searched down to `name`; return that movie's row."""
    row_id = movie_id(server, name)
    page.goto(f"{server.url}/movies?q={quote(name)}")
    row = page.locator(f"#movie-{row_id}")
    expect(row).to_be_visible()
    return row


def cell(row: Locator, field: str) -> Locator:
    """A cell of a row by its field name."""
    return row.locator(f':scope > td[data-field="{field}"]')


def saved(page: Page) -> None:
    """Wait until no save is in flight: no cell is marked busy (issue 10)."""
    expect(page.locator('td[aria-busy="true"]')).to_have_count(0)


def accept_dialogs(page: Page) -> None:
    """Say yes to every confirm() (the delete confirmation)."""
    page.on("dialog", lambda dialog: dialog.accept())


def stale_view(page: Page) -> None:
    """Keep this page's view as loaded: its live updates hear "nothing changed".

    For journeys about a view that is behind the database (a conflict, a row
    deleted meanwhile): live updates (issue 14) would otherwise catch it up
    first, as they do for anyone whose page polls in time.
    """
    page.route("**/changes/since*", lambda route: route.fulfill(status=204))


def edit(row: Locator, field: str, label: str, typed: str) -> None:
    """Open a cell's editor with a click, type and press Enter."""
    cell(row, field).click()
    box = row.get_by_role("textbox", name=label)
    box.fill(typed)
    box.press("Enter")


def write(server: Server, sql: str, rows: list[dict]) -> None:
    """Run SQL once per parameter set against the server's database, committed."""
    engine = sa.create_engine(server.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), rows)
    finally:
        engine.dispose()
