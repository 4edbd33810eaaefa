"""Journey: type fast on a slow network, as in a spreadsheet; nothing typed is lost."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from e2e.conftest import Server
from e2e.live import cell, movie, movie_id, saved, show_movie, slow_network

COLUMNS = {"name": 0, "director": 1, "rating": 2}


@pytest.fixture(autouse=True)
def latency(page: Page) -> None:
    """Every journey here runs with 200 ms of network latency."""
    slow_network(page, 200)


def settled(page: Page) -> None:
    """Wait until every save has been answered and no editor is left open."""
    saved(page)
    expect(page.locator("td.editing")).to_have_count(0)


def grid_rows(page: Page, server: Server, query: str) -> Locator:
    """Open the movie table searched for `query`, sorted by name; return its rows."""
    page.goto(f"{server.url}/movies?q={query}&sort=name")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows.first).to_be_visible()
    return rows


def row_id(row: Locator) -> int:
    """The movie id of a table row (its id is movie-<id>)."""
    return int(row.get_attribute("id").removeprefix("movie-"))


def reloaded_row(page: Page, movie_id: int) -> Locator:
    """Reload the page and return the movie's row."""
    page.reload()
    row = page.locator(f"#movie-{movie_id}")
    expect(row).to_be_visible()
    return row


def test_type_to_replace_a_rating_then_enter_at_once(
    page: Page, server: Server
) -> None:
    # issue 10: "9.9" typed fast after opening the editor was stored as 0.9.
    ran = movie_id(server, "Ran")
    row = show_movie(page, server, "Ran")
    cell(row, "rating").focus()
    page.keyboard.type("9.9", delay=10)
    page.keyboard.press("Enter")
    # The save in flight shows what was typed, marked busy.
    expect(cell(row, "rating")).to_have_attribute("aria-busy", "true")
    expect(cell(row, "rating")).to_have_text("9.9")
    settled(page)
    assert movie(server, ran)[2] == 9.9
    expect(cell(reloaded_row(page, ran), "rating")).to_have_text("9.9")


def test_enter_select_all_type_enter_at_once(page: Page, server: Server) -> None:
    # issue 10: Enter, then typing at once, lost the first key (9.9 -> 0.9).
    amadeus = movie_id(server, "Amadeus")
    row = show_movie(page, server, "Amadeus")
    cell(row, "rating").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type("9.9", delay=0)
    page.keyboard.press("Enter")
    settled(page)
    assert movie(server, amadeus)[2] == 9.9
    expect(cell(reloaded_row(page, amadeus), "rating")).to_have_text("9.9")


def test_tab_across_a_whole_row_without_pausing(page: Page, server: Server) -> None:
    # issue 10: a director typed right after Tab was stored as "avid Fincher".
    rows = grid_rows(page, server, "fincher")
    first, second = rows.nth(0), rows.nth(1)
    expect(cell(first, "name")).to_have_text("Fight Club")
    fight_club = row_id(first)
    cell(first, "name").focus()
    page.keyboard.type("Fight Club (1999)", delay=5)
    page.keyboard.press("Tab")
    page.keyboard.type("David L. Fincher", delay=20)
    page.keyboard.press("Tab")
    page.keyboard.type("8.9", delay=5)
    page.keyboard.press("Tab")  # wraps to the next row's Name editor
    expect(second.get_by_role("textbox", name="Name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(cell(second, "name")).to_be_focused()
    settled(page)
    assert movie(server, fight_club)[:3] == (
        "Fight Club (1999)",
        "David L. Fincher",
        8.9,
    )
    row = reloaded_row(page, fight_club)
    expect(cell(row, "name")).to_have_text("Fight Club (1999)")
    expect(cell(row, "director")).to_have_text("David L. Fincher")
    expect(cell(row, "rating")).to_have_text("8.9")


@pytest.mark.parametrize(
    ("name", "field", "typed", "shown", "stored"),
    [
        ("Heat", "name", "Heat 1995", "Heat 1995", "Heat 1995"),
        (
            "Alien",
            "director",
            "Sir Ridley Scott",
            "Sir Ridley Scott",
            "Sir Ridley Scott",
        ),
        ("Aliens", "rating", "7", "7.0", 7.0),
    ],
)
def test_type_to_replace_each_column(
    page: Page, server: Server, name: str, field: str, typed: str, shown: str, stored
) -> None:
    # issue 10: a focused cell takes typing at once, and keeps every key.
    the_movie = movie_id(server, name)
    row = show_movie(page, server, name)
    cell(row, field).focus()
    page.keyboard.type(typed, delay=10)
    page.keyboard.press("Enter")
    settled(page)
    assert movie(server, the_movie)[COLUMNS[field]] == stored
    expect(cell(reloaded_row(page, the_movie), field)).to_have_text(shown)


def test_enter_moves_down_and_the_next_row_takes_typing(
    page: Page, server: Server
) -> None:
    # issue 10: Enter saves and moves down the column; typing goes on there.
    rows = grid_rows(page, server, "kubrick")
    expect(rows).to_have_count(6)
    ids = [row_id(rows.nth(i)) for i in range(3)]
    cell(rows.nth(0), "rating").focus()
    page.keyboard.type("9.1", delay=10)
    page.keyboard.press("Enter")
    page.keyboard.type("7.5", delay=10)
    page.keyboard.press("Enter")
    expect(cell(rows.nth(2), "rating")).to_be_focused()
    settled(page)
    assert [movie(server, i)[2] for i in ids[:2]] == [9.1, 7.5]
    assert movie(server, ids[2])[3] == 1  # the third row was not saved
    page.reload()
    expect(cell(page.locator(f"#movie-{ids[0]}"), "rating")).to_have_text("9.1")
    expect(cell(page.locator(f"#movie-{ids[1]}"), "rating")).to_have_text("7.5")


def test_shift_tab_wraps_back_to_the_previous_rows_rating(
    page: Page, server: Server
) -> None:
    # issue 10: Shift+Tab from a Name goes to the previous row's Rating editor.
    rows = grid_rows(page, server, "nolan")
    expect(cell(rows.nth(1), "name")).to_have_text("Interstellar")
    upper, lower = row_id(rows.nth(0)), row_id(rows.nth(1))
    cell(rows.nth(1), "name").focus()
    page.keyboard.type("Interstellar (2014)", delay=10)
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("9.4", delay=10)  # the rating is selected: typing replaces it
    page.keyboard.press("Enter")
    expect(cell(rows.nth(1), "rating")).to_be_focused()
    settled(page)
    assert movie(server, upper)[2] == 9.4
    assert movie(server, lower)[0] == "Interstellar (2014)"
    page.reload()
    expect(cell(page.locator(f"#movie-{upper}"), "rating")).to_have_text("9.4")
    expect(cell(page.locator(f"#movie-{lower}"), "name")).to_have_text(
        "Interstellar (2014)"
    )


def test_delete_clears_a_rating(page: Page, server: Server) -> None:
    # issue 10: Delete on a cell saves it empty; a rating may be empty.
    dogs = movie_id(server, "Reservoir Dogs")
    row = show_movie(page, server, "Reservoir Dogs")
    cell(row, "rating").focus()
    page.keyboard.press("Delete")
    settled(page)
    assert movie(server, dogs)[2] is None
    expect(cell(row, "rating").locator(".none")).to_have_text("—")
    expect(cell(row, "rating")).to_be_focused()
    row = reloaded_row(page, dogs)
    expect(cell(row, "rating").locator(".none")).to_have_text("—")


def test_backspace_on_a_name_says_it_is_required(page: Page, server: Server) -> None:
    # issue 10: a Name cannot be cleared: the cell says why, nothing is stored.
    pulp = movie_id(server, "Pulp Fiction")
    before = movie(server, pulp)
    row = show_movie(page, server, "Pulp Fiction")
    cell(row, "name").focus()
    page.keyboard.press("Backspace")
    saved(page)
    expect(cell(row, "name").get_by_role("alert")).to_have_text("Name is required.")
    box = row.get_by_role("textbox", name="Name")
    expect(box).to_be_focused()
    expect(box).to_have_attribute("aria-invalid", "true")
    assert movie(server, pulp) == before
    page.keyboard.press("Escape")
    expect(cell(row, "name")).to_have_text("Pulp Fiction")
    settled(page)
    assert movie(server, pulp) == before
    expect(cell(reloaded_row(page, pulp), "name")).to_have_text("Pulp Fiction")


@pytest.mark.parametrize("opening", ["type to replace", "Enter"])
def test_escape_restores_and_saves_nothing(
    page: Page, server: Server, opening: str
) -> None:
    # issue 10: Escape cancels an edit however it was opened; nothing is sent.
    yojimbo = movie_id(server, "Yojimbo")
    before = movie(server, yojimbo)
    row = show_movie(page, server, "Yojimbo")
    cell(row, "director").focus()
    if opening == "Enter":
        page.keyboard.press("Enter")
        page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type("Nobody at all", delay=10)
    page.keyboard.press("Escape")
    expect(cell(row, "director")).to_have_text("Akira Kurosawa")
    expect(cell(row, "director")).to_be_focused()
    settled(page)
    assert movie(server, yojimbo) == before  # not even the version moved
    expect(cell(reloaded_row(page, yojimbo), "director")).to_have_text("Akira Kurosawa")


def reopen_while_saving(page: Page, row: Locator, typed: str) -> Locator:
    """Save `typed` into the row's rating, reopen it at once, let the answer come."""
    cell(row, "rating").focus()
    page.keyboard.type(typed, delay=10)
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")  # the save of `typed` is still on its way
    box = row.get_by_role("textbox", name="Rating")
    expect(box).to_be_focused()
    saved(page)  # its answer arrives while the editor is open
    return box


def test_a_refused_save_is_shown_in_an_editor_reopened_meanwhile(
    page: Page, server: Server
) -> None:
    # issue 10: a refused save must say so, even when the cell was reopened
    # before the answer came; otherwise "11" stays on screen as if stored.
    rows = grid_rows(page, server, "tarantino")
    rated = row_id(rows.nth(0))
    before = movie(server, rated)
    reopen_while_saving(page, rows.nth(0), "11")
    assert movie(server, rated) == before
    alert = cell(rows.nth(0), "rating").get_by_role("alert")
    expect(alert).to_have_text("Rating must be between 0 and 10.", timeout=2000)


def test_escape_after_the_answer_shows_the_stored_value(
    page: Page, server: Server
) -> None:
    # issue 10: Escape in an editor reopened during a save goes back to what the
    # server stored and drew ("7.0"), not to the text shown before it answered.
    rows = grid_rows(page, server, "cameron")
    rated = row_id(rows.nth(0))
    reopen_while_saving(page, rows.nth(0), "7")
    page.keyboard.press("Escape")
    assert movie(server, rated)[2] == 7.0
    expect(cell(rows.nth(0), "rating")).to_have_text("7.0", timeout=2000)
