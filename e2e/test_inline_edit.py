"""Journey: edit cells in place; Enter and blur save, Escape cancels, Tab moves on."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import Server
from e2e.live import cell, movie, movie_id, saved, show_movie


@pytest.mark.parametrize(
    ("name", "field", "label", "typed", "shown", "stored"),
    [
        ("Heat", "name", "Name", "Heat (1995)", "Heat (1995)", "Heat (1995)"),
        (
            "Amélie",
            "director",
            "Director",
            "J.-P. Jeunet",
            "J.-P. Jeunet",
            "J.-P. Jeunet",
        ),
        ("Ran", "rating", "Rating", "8.4", "8.4", 8.4),
    ],
)
def test_edit_each_column_and_reload(
    page: Page,
    server: Server,
    name: str,
    field: str,
    label: str,
    typed: str,
    shown: str,
    stored: object,
) -> None:
    row_id = movie_id(server, name)
    row = show_movie(page, server, name)
    cell(row, field).click()
    box = row.get_by_role("textbox", name=label)
    expect(box).to_be_focused()
    # The current value is selected, so typing replaces it.
    assert page.evaluate(
        "() => document.activeElement.selectionStart === 0 && "
        "document.activeElement.selectionEnd === document.activeElement.value.length"
    )
    box.press_sequentially(typed)
    box.press("Enter")
    expect(row.get_by_role("textbox")).to_have_count(0)
    expect(cell(row, field)).to_have_text(shown)
    # Enter goes down the same column, as in a spreadsheet (issue 10); the search
    # may list this movie alone, and then the focus stays on its cell.
    focused = page.locator(f'td[data-field="{field}"]:focus')
    expect(focused).to_have_count(1)
    saved(page)
    columns = {"name": 0, "director": 1, "rating": 2}
    assert movie(server, row_id)[columns[field]] == stored
    page.reload()
    expect(cell(page.locator(f"#movie-{row_id}"), field)).to_have_text(shown)


def test_leaving_the_field_saves(page: Page, server: Server) -> None:
    row_id = movie_id(server, "Yojimbo")
    row = show_movie(page, server, "Yojimbo")
    cell(row, "director").click()
    row.get_by_role("textbox", name="Director").fill("A. Kurosawa")
    page.get_by_role("heading", name="Movies").click()  # somewhere else
    expect(cell(row, "director")).to_have_text("A. Kurosawa")
    saved(page)
    assert movie(server, row_id)[1] == "A. Kurosawa"


def test_escape_cancels_without_saving(page: Page, server: Server) -> None:
    row_id = movie_id(server, "Ikiru")
    before = movie(server, row_id)
    row = show_movie(page, server, "Ikiru")
    cell(row, "name").focus()
    page.keyboard.press("F2")
    box = row.get_by_role("textbox", name="Name")
    box.fill("Something else")
    box.press("Escape")
    expect(row.get_by_role("textbox")).to_have_count(0)
    expect(cell(row, "name")).to_have_text("Ikiru")
    expect(cell(row, "name")).to_be_focused()
    assert movie(server, row_id) == before  # not even the version moved


def test_tab_saves_and_opens_the_next_cell_shift_tab_the_previous(
    page: Page, server: Server
) -> None:
    row_id = movie_id(server, "Rashomon")
    row = show_movie(page, server, "Rashomon")
    cell(row, "name").click()
    row.get_by_role("textbox", name="Name").fill("Rashōmon")
    page.keyboard.press("Tab")
    director = row.get_by_role("textbox", name="Director")
    expect(director).to_be_focused()
    expect(cell(row, "name")).to_have_text("Rashōmon")
    saved(page)
    assert movie(server, row_id)[0] == "Rashōmon"
    page.keyboard.press("Tab")  # unchanged: nothing is sent, the next cell opens
    expect(row.get_by_role("textbox", name="Rating")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(row.get_by_role("textbox", name="Director")).to_be_focused()
    page.keyboard.press("Escape")
    expect(row.get_by_role("textbox")).to_have_count(0)
    assert movie(server, row_id)[3] == 2  # one save: only the name changed


@pytest.mark.parametrize(
    ("field", "label", "typed", "message"),
    [
        ("name", "Name", "", "Name is required."),
        ("name", "Name", "    ", "Name is required."),
        ("rating", "Rating", "11", "Rating must be between 0 and 10."),
        ("rating", "Rating", "abc", "Rating must be a number."),
        ("director", "Director", "x" * 500, "Director must be at most 120 characters."),
    ],
)
def test_invalid_values_show_the_message_and_persist_nothing(
    page: Page, server: Server, field: str, label: str, typed: str, message: str
) -> None:
    row_id = movie_id(server, "Amadeus")
    before = movie(server, row_id)
    row = show_movie(page, server, "Amadeus")
    cell(row, field).click()
    box = row.get_by_role("textbox", name=label)
    box.fill(typed)
    box.press("Enter")
    alert = row.get_by_role("alert")
    expect(alert).to_have_text(message)
    box = row.get_by_role("textbox", name=label)
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_be_focused()
    expect(box).to_have_value(typed)
    assert movie(server, row_id) == before
    box.press("Escape")
    expect(row.get_by_role("alert")).to_have_count(0)
    page.reload()
    expect(page.locator(f"#movie-{row_id}")).to_contain_text("Amadeus")
    assert movie(server, row_id) == before
