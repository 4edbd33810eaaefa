"""Journey: copy a block of cells and paste one in, as between spreadsheets.

Shift+arrows grow a block, Ctrl+C copies it as tab-separated text, Ctrl+V pastes
such text (a spreadsheet's too) from the focused cell, every value saved as if
typed; on a slow network, checked as stored and after a reload.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from e2e.conftest import Server
from e2e.live import cell, movie, saved, slow_network


@pytest.fixture(autouse=True)
def clipboard(page: Page, server: Server) -> None:
    """The system clipboard for this page, and 200 ms of network latency."""
    page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=server.url
    )
    slow_network(page, 200)


def grid_rows(page: Page, server: Server, query: str) -> Locator:
    """Open the movie table searched for `query`, sorted by name; return its rows."""
    page.goto(f"{server.url}/movies?q={query}&sort=name")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows.first).to_be_visible()
    return rows


def ids(rows: Locator) -> list[int]:
    """The movie ids of the rows shown, in order."""
    return [
        int(row_id.removeprefix("movie-"))
        for row_id in rows.evaluate_all("rows => rows.map(r => r.id)")
    ]


def put_on_clipboard(page: Page, text: str) -> None:
    """What a person copied elsewhere (a spreadsheet, a text file)."""
    page.evaluate("text => navigator.clipboard.writeText(text)", text)


def test_shift_arrows_and_ctrl_c_copy_a_block(page: Page, server: Server) -> None:
    rows = grid_rows(page, server, "kubrick")
    first, second = ids(rows)[:2]
    cell(rows.nth(0), "name").focus()
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    expect(page.locator("td.in-range")).to_have_count(4)
    expect(cell(rows.nth(1), "director")).to_be_focused()
    page.keyboard.press("ControlOrMeta+C")
    stored = [movie(server, first), movie(server, second)]
    want = "\n".join(f"{name}\t{director}" for name, director, *_ in stored)
    assert page.evaluate("navigator.clipboard.readText()") == want
    expect(page.locator("#live-status")).to_have_text("Copied 4 cells.")
    # Escape ends the block; an arrow without Shift would too.
    page.keyboard.press("Escape")
    expect(page.locator("td.in-range")).to_have_count(0)


def test_a_pasted_block_is_saved_cell_by_cell(page: Page, server: Server) -> None:
    rows = grid_rows(page, server, "fincher")
    first, second = ids(rows)[:2]
    # As a spreadsheet copies: CRLF lines, a quoted cell, a last line break.
    put_on_clipboard(page, 'Dir One\t8.5\r\n"Dir ""Two"""\t6.5\r\n')
    cell(rows.nth(0), "director").focus()
    page.keyboard.press("ControlOrMeta+V")
    # Shown at once, while the saves are under way.
    expect(cell(rows.nth(0), "director")).to_have_text("Dir One")
    expect(cell(rows.nth(1), "director")).to_have_text('Dir "Two"')
    saved(page)
    expect(page.locator("#live-status")).to_have_text("Pasted 4 cells.")
    assert movie(server, first)[1:3] == ("Dir One", 8.5)
    assert movie(server, second)[1:3] == ('Dir "Two"', 6.5)
    # They no longer match "fincher": look them up by their new directors.
    grid_rows(page, server, "dir")
    expect(cell(page.locator(f"#movie-{first}"), "rating")).to_have_text("8.5")
    expect(cell(page.locator(f"#movie-{second}"), "director")).to_have_text('Dir "Two"')


def test_one_value_pasted_on_a_block_fills_it(page: Page, server: Server) -> None:
    rows = grid_rows(page, server, "kubrick")
    third, fourth = ids(rows)[2:4]
    put_on_clipboard(page, "7.5")
    cell(rows.nth(2), "rating").focus()
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("ControlOrMeta+V")
    saved(page)
    assert movie(server, third)[2] == movie(server, fourth)[2] == 7.5
    page.reload()
    for movie_id in (third, fourth):
        row = page.locator(f"#movie-{movie_id}")
        expect(cell(row, "rating")).to_have_text("7.5")


def test_a_paste_that_does_not_fit_says_so_and_keeps_the_rest(
    page: Page, server: Server
) -> None:
    rows = grid_rows(page, server, "kubrick")
    last = ids(rows)[-1]
    before = movie(server, last)
    put_on_clipboard(page, "eleven\n7.5\n")
    cell(rows.last, "rating").focus()
    page.keyboard.press("ControlOrMeta+V")
    # The invalid value comes back in the cell's editor with why; the line past
    # the last row is named in a message, not dropped silently.
    error = cell(rows.last, "rating").locator(".field-error")
    expect(error).to_be_visible()
    expect(error).not_to_have_text("")
    expect(page.locator("#toasts .toast-text")).to_contain_text(
        "1 pasted value was left out"
    )
    saved(page)
    assert movie(server, last) == before
