"""Journey: the grid's keys, search history, busy states and touch editing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from e2e.conftest import Server
from e2e.live import cell, movie, movie_id, saved, show_movie, slow_network


def rows(page: Page):
    """The data rows of the movie table."""
    return page.locator("#movie-rows > tr.data-row")


def test_tab_leaves_the_grid_for_the_pager(page: Page, server: Server) -> None:
    # Issue 10: the grid is one tab stop; its row buttons are not 100 more.
    page.goto(server.url + "/movies")
    first = cell(rows(page).nth(0), "name")
    first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Next")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(cell(rows(page).nth(1), "director")).to_be_focused()
    # The row's buttons are reached with the arrow keys.
    page.keyboard.press("End")
    expect(rows(page).nth(1).locator("td.actions")).to_be_focused()
    page.keyboard.press("Enter")
    expect(rows(page).nth(1).locator("button.delete-button")).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(rows(page).nth(1).locator("td.summary")).to_be_focused()


def test_table_ends_and_pages_keep_the_column(page: Page, server: Server) -> None:
    # Issue 10: Ctrl+Home/End and PageDown/PageUp.
    page.goto(server.url + "/movies")
    cell(rows(page).nth(2), "director").focus()
    page.keyboard.press("Control+End")
    expect(rows(page).last.locator("td.actions")).to_be_focused()
    page.keyboard.press("Control+Home")
    expect(rows(page).first.locator("td.toggle")).to_be_focused()
    cell(rows(page).nth(2), "director").focus()
    first_page = cell(rows(page).nth(2), "name").inner_text()
    page.keyboard.press("PageDown")
    expect(page.locator(".pager-status")).to_have_text("Page 2 of 6")
    expect(page).to_have_url(server.url + "/movies?page=2")
    focused = cell(rows(page).nth(2), "director")
    expect(focused).to_be_focused()
    assert cell(rows(page).nth(2), "name").inner_text() != first_page
    page.keyboard.press("PageUp")
    expect(page.locator(".pager-status")).to_have_text("Page 1 of 6")
    expect(cell(rows(page).nth(2), "director")).to_be_focused()


def test_question_mark_shows_the_keys(page: Page, server: Server) -> None:
    # Issue 10: "?" shows the keys (also linked under the table); Escape goes back.
    page.goto(server.url + "/movies")
    keys = page.locator("details.grid-keys")
    expect(keys.locator("summary")).to_have_text("Keyboard shortcuts")
    expect(keys).not_to_have_attribute("open", "")
    name = cell(rows(page).first, "name")
    name.focus()
    page.keyboard.press("?")
    expect(keys).to_have_attribute("open", "")
    expect(keys.get_by_text("Save and go down")).to_be_visible()
    expect(keys.locator("summary")).to_be_focused()
    page.keyboard.press("Escape")
    expect(keys).not_to_have_attribute("open", "")
    expect(name).to_be_focused()
    assert not name.locator("form").count()  # "?" did not start an edit


def test_typing_a_search_makes_one_history_entry(page: Page, server: Server) -> None:
    # Issue 10: each letter replaces the entry; the pause makes one entry.
    page.goto(server.url + "/movies")
    before = page.evaluate("history.length")
    box = page.get_by_role("searchbox", name="Search movies")
    box.focus()
    # Slower than the 250 ms debounce (a request a key), faster than the 1 s pause.
    page.keyboard.type("star wars", delay=400)
    expect(page).to_have_url(server.url + "/movies?q=star+wars")
    expect(page.locator("#movie-count")).to_contain_text("5 of")
    assert page.evaluate("history.length") == before + 1
    page.keyboard.press("Enter")  # the same view again: no new entry
    expect(page).to_have_url(server.url + "/movies?q=star+wars")
    assert page.evaluate("history.length") == before + 1
    page.locator("#movie-sort-rating").click()  # sort links push as before
    expect(page).to_have_url(server.url + "/movies?q=star+wars&sort=rating")
    assert page.evaluate("history.length") == before + 2
    page.go_back()
    expect(page).to_have_url(server.url + "/movies?q=star+wars")
    page.go_back()
    expect(page).to_have_url(server.url + "/movies")
    expect(page.get_by_role("searchbox", name="Search movies")).to_have_value("")


def test_a_sort_clicked_while_a_search_loads_wins(page: Page, server: Server) -> None:
    # Two views asked for at once: the last one asked for is drawn and kept.
    # The first CI run of session 6 lost such a click (the region it was meant
    # for had been replaced by the search's answer).
    page.goto(server.url + "/movies?q=star+wars")
    expect(page.locator("#movie-count")).to_contain_text("5 of")
    slow_network(page, latency_ms=600)
    box = page.get_by_role("searchbox", name="Search movies")
    box.focus()
    page.keyboard.press("Enter")  # a request now in flight for 600 ms
    page.locator("#movie-sort-rating").click()
    expect(page).to_have_url(server.url + "/movies?q=star+wars&sort=rating")
    expect(page.locator("#movie-table th[aria-sort]")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(page.locator("#movie-count")).to_contain_text("5 of")
    ratings = [
        float(r)
        for r in page.locator("#movie-rows td[data-field=rating]").all_inner_texts()
    ]
    assert ratings == sorted(ratings) and len(ratings) == 5
    page.reload()  # what was drawn is what the URL says
    expect(page.locator("#movie-table th[aria-sort]")).to_have_attribute(
        "aria-sort", "ascending"
    )


def test_two_quick_backs_show_the_page_of_the_address_bar(
    page: Page, server: Server
) -> None:
    # Each Back asks the server for its page. When the first answer is still out
    # as the second Back is pressed, it is cancelled: drawn late, it would show
    # another entry than the address bar (a CI run of session 6 saw exactly that).
    page.goto(server.url + "/movies")
    page.locator("#movie-sort-director").click()
    expect(page).to_have_url(server.url + "/movies?sort=director")
    page.locator("#movie-sort-rating").click()
    expect(page).to_have_url(server.url + "/movies?sort=rating")
    held: list[Route] = []  # the first Back's answer, held back like a slow network
    page.route(
        lambda url: url.endswith("/movies?sort=director"),
        lambda route: held.append(route),
    )
    page.go_back()
    expect(page).to_have_url(server.url + "/movies?sort=director")
    with page.expect_event("requestfailed", lambda r: r.url.endswith("?sort=director")):
        page.go_back()
    assert len(held) == 1
    expect(page).to_have_url(server.url + "/movies")
    for field in (
        "rating",
        "director",
    ):  # the default order is drawn: neither is sorted
        header = page.locator(f"#movie-table th:has(#movie-sort-{field})")
        expect(header).not_to_have_attribute("aria-sort", re.compile("."))
    total = server.query("SELECT count(*) FROM movies")[0][0]
    expect(page.locator("#movie-count")).to_have_text(f"{total} of {total} movies")


def test_a_slow_view_shows_that_the_table_is_busy(page: Page, server: Server) -> None:
    # Issue 10: a table request over ~150 ms marks the region aria-busy.
    page.goto(server.url + "/movies")
    slow_network(page, latency_ms=600)
    region = page.locator("#movie-table")
    page.locator("#movie-sort-rating").click()
    expect(region).to_have_attribute("aria-busy", "true")
    expect(region.locator("table")).to_have_attribute("aria-busy", "true")
    expect(page).to_have_url(server.url + "/movies?sort=rating")
    expect(page.locator("#movie-table")).not_to_have_attribute("aria-busy", "true")


def test_a_save_in_flight_is_shown(page: Page, server: Server) -> None:
    # Issue 10: the cell says it is being saved until the server answers.
    row_id = movie_id(server, "Vertigo")
    row = show_movie(page, server, "Vertigo")
    slow_network(page, latency_ms=600)
    cell(row, "rating").focus()
    page.keyboard.type("8.9")
    page.keyboard.press("Enter")
    expect(cell(row, "rating")).to_have_attribute("aria-busy", "true")
    expect(cell(row, "rating")).to_have_text("8.9")
    expect(cell(row, "rating")).not_to_have_attribute("aria-busy", "true")
    assert movie(server, row_id)[2] == 8.9


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A touch-screen phone: a page in a context with touch and a small screen."""
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, has_touch=True, is_mobile=True
    )
    yield context.new_page()
    context.close()


def test_touch_screens_get_save_and_cancel(phone: Page, server: Server) -> None:
    # Issue 10: leaving the field is not the only way out on a touch screen.
    row_id = movie_id(server, "Psycho")
    row = show_movie(phone, server, "Psycho")
    cell(row, "director").tap()
    box = row.get_by_role("textbox", name="Director")
    expect(box).to_be_focused()
    save = row.get_by_role("button", name="Save")
    cancel = row.get_by_role("button", name="Cancel")
    expect(save).to_be_visible()
    expect(cancel).to_be_visible()
    box.fill("Nobody")
    cancel.tap()
    expect(cell(row, "director")).to_have_text("Alfred Hitchcock")
    cell(row, "director").tap()
    row.get_by_role("textbox", name="Director").fill("A. Hitchcock")
    row.get_by_role("button", name="Save").tap()
    expect(cell(row, "director")).to_have_text("A. Hitchcock")
    saved(phone)
    assert movie(server, row_id)[1] == "A. Hitchcock"
    phone.reload()
    expect(cell(phone.locator(f"#movie-{row_id}"), "director")).to_have_text(
        "A. Hitchcock"
    )


def test_nested_ratings_edit_by_keys(page: Page, server: Server) -> None:
    # Issue 10: the same keys in a movie's ratings, with latency.
    row_id = movie_id(server, "Fight Club")
    row = show_movie(page, server, "Fight Club")
    row.get_by_role("button", name="Show ratings for Fight Club").click()
    nested = page.locator(f"#movie-{row_id}-ratings tbody > tr.data-row")
    expect(nested.first).to_be_visible()
    slow_network(page)
    first_id = int(nested.first.get_attribute("id").removeprefix("rating-"))
    cell(nested.first, "author").focus()
    page.keyboard.type("Quick Typist", delay=10)
    page.keyboard.press("Shift+Tab")  # saves, opens the rating on its left
    page.keyboard.type("3", delay=10)
    page.keyboard.press("Enter")
    expect(cell(nested.first, "author")).to_have_text("Quick Typist")
    saved(page)
    stored = server.query(
        "SELECT rating, author FROM ratings WHERE id = :id", id=first_id
    )
    assert stored == [(3, "Quick Typist")]
