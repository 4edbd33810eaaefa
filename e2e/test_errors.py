"""Journey: a save fails (server error, network down); the page says so, keeps it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect

from e2e.conftest import Server
from e2e.live import cell, movie, movie_id, saved, show_movie

PATCH_MOVIES = re.compile(r".*/movies/\d+$")


def fail_patches(page: Page, how: str) -> None:
    """Make the next PATCH of a movie fail: a 500 answer or no answer at all."""

    def handle(route: Route) -> None:
        if route.request.method != "PATCH":
            route.continue_()
        elif how == "500":
            route.fulfill(
                status=500,
                content_type="text/html; charset=utf-8",
                body='<div class="error-message" role="alert"><p>'
                "<strong>Something went wrong.</strong> The server broke.</p></div>",
            )
        else:
            route.abort("connectionrefused")

    page.route(PATCH_MOVIES, handle)


def test_server_error_is_shown_and_the_edit_can_be_retried(
    page: Page, server: Server
) -> None:
    row_id = movie_id(server, "Magnolia")
    before = movie(server, row_id)
    row = show_movie(page, server, "Magnolia")
    fail_patches(page, "500")
    cell(row, "name").click()
    box = row.get_by_role("textbox", name="Name")
    box.fill("Magnolia (1999)")
    box.press("Enter")
    # Issue 10: nothing was lost; the editor opens again holding what was typed,
    # with the message next to it (not a toast that piles up).
    alert = cell(row, "name").get_by_role("alert")
    expect(alert).to_have_text(
        "Not saved: Something went wrong. The server broke. Press Enter to try again."
    )
    expect(box).to_have_value("Magnolia (1999)")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_be_focused()
    expect(page.locator(".toast-error")).to_have_count(0)
    assert movie(server, row_id) == before
    page.unroute(PATCH_MOVIES)
    box.press("Enter")
    expect(cell(row, "name")).to_have_text("Magnolia (1999)")
    saved(page)
    assert movie(server, row_id)[0] == "Magnolia (1999)"


def test_network_down_is_shown(page: Page, server: Server) -> None:
    row_id = movie_id(server, "Solaris")
    before = movie(server, row_id)
    row = show_movie(page, server, "Solaris")
    fail_patches(page, "down")
    cell(row, "rating").click()
    box = row.get_by_role("textbox", name="Rating")
    box.fill("8.2")
    box.press("Enter")
    expect(cell(row, "rating").get_by_role("alert")).to_contain_text(
        "Could not reach the server"
    )
    expect(box).to_have_value("8.2")
    assert movie(server, row_id) == before


def test_bad_filter_value_is_explained(page: Page, server: Server) -> None:
    page.goto(server.url + "/movies")
    page.get_by_role("spinbutton", name="Minimum rating").fill("12")
    # Next to the field, not in a toast (issue 12; see e2e/test_view_edges.py).
    expect(page.locator("#movie-filter-min_rating-error")).to_have_text(
        "Minimum rating must be between 0 and 10."
    )
    expect(page.locator(".toast-error")).to_have_count(0)
    expect(page).to_have_url(server.url + "/movies")  # the view did not change
