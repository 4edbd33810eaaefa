"""Journey: the whole table by keyboard, with a focus ring that can always be seen."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from e2e.conftest import Server
from e2e.live import accept_dialogs, cell, movie, movie_id, saved, show_movie


def focus_ring(locator: Locator) -> tuple[str, float]:
    """The computed outline (style, width in px) of an element."""
    style, width = locator.evaluate(
        "el => [getComputedStyle(el).outlineStyle, getComputedStyle(el).outlineWidth]"
    )
    return style, float(width.removesuffix("px"))


def test_tab_into_the_grid_and_move_with_arrows(page: Page, server: Server) -> None:
    page.goto(server.url + "/movies?q=star+wars&sort=name")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows).to_have_count(5)
    # From the minimum-rating filter, Tab goes to the add form, then the grid.
    page.get_by_role("spinbutton", name="Minimum rating").focus()
    for _ in range(4):  # name, director, rating, "Add movie"
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add movie")).to_be_focused()
    # Then the table's toolbar links, the sort links, the first row's button and
    # the grid's single cell stop.
    first_name = cell(rows.nth(0), "name")
    for _ in range(10):
        page.keyboard.press("Tab")
        if first_name.evaluate("el => el === document.activeElement"):
            break
    expect(first_name).to_be_focused()
    style, width = focus_ring(first_name)
    assert style != "none" and width >= 2
    page.keyboard.press("ArrowRight")
    expect(cell(rows.nth(0), "director")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(cell(rows.nth(1), "director")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowLeft")
    expect(cell(rows.nth(2), "name")).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(cell(rows.nth(1), "name")).to_be_focused()
    page.keyboard.press("End")
    expect(rows.nth(1).locator("td.actions")).to_be_focused()
    page.keyboard.press("Home")
    expect(rows.nth(1).locator("td.toggle")).to_be_focused()
    # The grid is one tab stop: Shift+Tab leaves it, Tab comes back to that cell.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+Tab")
    expect(cell(rows.nth(1), "name")).not_to_be_focused()
    page.keyboard.press("Tab")
    expect(cell(rows.nth(1), "name")).to_be_focused()


def test_enter_edits_and_keys_save_or_cancel(page: Page, server: Server) -> None:
    row_id = movie_id(server, "Star Trek")
    page.goto(server.url + "/movies?q=star+trek&sort=name")
    row = page.locator(f"#movie-{row_id}")
    below = row.locator("xpath=following-sibling::tr[1]")
    cell(row, "rating").focus()
    page.keyboard.press("Enter")
    box = row.get_by_role("textbox", name="Rating")
    expect(box).to_be_focused()
    style, width = focus_ring(box)
    assert style != "none" and width >= 2
    # Issue 10: Enter edits with the caret at the end of the value.
    assert box.evaluate("el => el.selectionStart === el.value.length")
    page.keyboard.press("Control+a")
    page.keyboard.type("8.0")
    page.keyboard.press("Enter")
    expect(cell(row, "rating")).to_have_text("8.0")
    expect(cell(below, "rating")).to_be_focused()  # and Enter saves, going down
    page.keyboard.press("Shift+Tab")  # not an editor: Tab leaves the grid
    page.keyboard.press("Tab")
    expect(cell(below, "rating")).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(cell(row, "rating")).to_be_focused()
    saved(page)
    assert movie(server, row_id)[2] == 8.0
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("F2")
    box = row.get_by_role("textbox", name="Director")
    expect(box).to_be_focused()
    page.keyboard.type("Nobody")
    page.keyboard.press("Escape")
    expect(cell(row, "director")).to_have_text("J.J. Abrams")
    expect(cell(row, "director")).to_be_focused()


def test_expand_and_delete_by_keyboard(page: Page, server: Server) -> None:
    accept_dialogs(page)
    row_id = movie_id(server, "Star Trek II: The Wrath of Khan")
    row = show_movie(page, server, "Star Trek II: The Wrath of Khan")
    row.locator("td.toggle").focus()
    page.keyboard.press("Enter")  # into the cell's button
    toggle = row.get_by_role("button", name="Show ratings for Star Trek II")
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    ratings = page.locator(f"#movie-{row_id}-ratings")
    expect(ratings).to_be_visible()
    page.keyboard.press("Space")
    expect(ratings).to_have_count(0)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    row.locator("td.actions").focus()
    page.keyboard.press("Enter")
    delete = row.get_by_role("button", name="Delete Star Trek II: The Wrath of Khan")
    expect(delete).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"#movie-{row_id}")).to_have_count(0)
    undo = page.locator(".toast").get_by_role("button", name="Undo")
    undo.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#movie-{row_id}")).to_be_visible()
    assert movie(server, row_id) is not None
