"""Journey: two people edit the same cell; the second sees a conflict and chooses."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import Server
from e2e.live import cell, movie, movie_id, saved, show_movie, stale_view


@pytest.fixture(autouse=True)
def behind(page: Page) -> None:
    """The first person's view stays as loaded (see stale_view)."""
    stale_view(page)


def save(page: Page, server: Server, name: str, field: str, label: str, typed: str):
    """Open a movie's cell, type and press Enter; return the row."""
    row = show_movie(page, server, name)
    cell(row, field).click()
    box = row.get_by_role("textbox", name=label)
    box.fill(typed)
    box.press("Enter")
    return row


def test_conflict_keep_mine(page: Page, other: Page, server: Server) -> None:
    row_id = movie_id(server, "Seven Samurai")
    mine = show_movie(page, server, "Seven Samurai")  # loaded before the other edit
    theirs = save(other, server, "Seven Samurai", "director", "Director", "Kurosawa")
    expect(cell(theirs, "director")).to_have_text("Kurosawa")
    saved(other)

    cell(mine, "director").click()
    box = mine.get_by_role("textbox", name="Director")
    box.fill("Akira K.")
    box.press("Enter")
    conflict = cell(mine, "director")
    expect(conflict.get_by_role("alert")).to_contain_text("Stored now: Kurosawa")
    expect(conflict.get_by_role("alert")).to_contain_text("You typed: Akira K.")
    assert movie(server, row_id)[1] == "Kurosawa"  # nothing overwritten silently
    keep = conflict.get_by_role("button", name="Keep mine")
    expect(keep).to_be_focused()
    keep.click()
    expect(cell(mine, "director")).to_have_text("Akira K.")
    expect(cell(mine, "director")).to_be_focused()
    saved(page)
    assert movie(server, row_id)[1] == "Akira K."
    page.reload()
    expect(cell(page.locator(f"#movie-{row_id}"), "director")).to_have_text("Akira K.")


def test_conflict_take_theirs(page: Page, other: Page, server: Server) -> None:
    row_id = movie_id(server, "High and Low")
    mine = show_movie(page, server, "High and Low")
    save(other, server, "High and Low", "rating", "Rating", "8.5")
    expect(other.locator(f"#movie-{row_id}-rating")).to_have_text("8.5")
    saved(other)

    cell(mine, "rating").click()
    box = mine.get_by_role("textbox", name="Rating")
    box.fill("7.0")
    box.press("Enter")
    conflict = cell(mine, "rating")
    expect(conflict.get_by_role("alert")).to_contain_text("Stored now: 8.5")
    conflict.get_by_role("button", name="Take theirs").click()
    expect(cell(mine, "rating")).to_have_text("8.5")
    expect(cell(mine, "rating")).to_be_focused()
    expect(mine.get_by_role("alert")).to_have_count(0)
    assert movie(server, row_id)[2] == 8.5
    # The row now carries the stored version: the next edit saves normally.
    cell(mine, "rating").click()
    box = mine.get_by_role("textbox", name="Rating")
    box.fill("8.6")
    box.press("Enter")
    expect(cell(mine, "rating")).to_have_text("8.6")
    saved(page)
    assert movie(server, row_id)[2] == 8.6
