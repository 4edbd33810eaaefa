"""Journey: with JavaScript off the pages still filter, sort, add, edit and delete."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import Server
from e2e.live import cell, movie, movie_id


@pytest.fixture
def plain(browser: Browser) -> Iterator[Page]:
    """A page in a browser context with JavaScript disabled."""
    context = browser.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_filter_and_sort_without_javascript(plain: Page, server: Server) -> None:
    plain.goto(server.url + "/movies")
    # The controls that need JavaScript are not offered.
    expect(plain.get_by_role("button", name="Show ratings for Heat")).to_be_hidden()
    plain.get_by_role("searchbox", name="Search movies").fill("kurosawa")
    plain.get_by_role("spinbutton", name="Minimum rating").fill("8.3")
    plain.get_by_role("button", name="Filter").click()
    expect(plain).to_have_url(server.url + "/movies?q=kurosawa&min_rating=8.3")
    stored = server.query(
        "SELECT count(*) FROM movies WHERE lower(director) LIKE '%kurosawa%' "
        "AND rating >= 8.3"
    )[0][0]
    expect(plain.locator("#movie-count")).to_contain_text(f"{stored} of")
    plain.locator("#movie-sort-rating").click()
    expect(plain).to_have_url(
        server.url + "/movies?q=kurosawa&min_rating=8.3&sort=rating"
    )
    ratings = plain.locator('#movie-rows td[data-field="rating"]').all_inner_texts()
    assert ratings == sorted(ratings, key=float)
    # The filter form carries the sort along.
    plain.get_by_role("searchbox", name="Search movies").fill("akira")
    plain.get_by_role("button", name="Filter").click()
    expect(plain).to_have_url(server.url + "/movies?q=akira&min_rating=8.3&sort=rating")


def test_add_edit_and_delete_without_javascript(plain: Page, server: Server) -> None:
    plain.goto(server.url + "/movies")
    form = plain.get_by_role("region", name="Add a movie")
    form.get_by_role("textbox", name="Name").fill("Past Lives")
    form.get_by_role("button", name="Add movie").click()
    expect(form.get_by_role("alert")).to_have_text("Director is required.")
    assert server.query("SELECT id FROM movies WHERE name = 'Past Lives'") == []
    form.get_by_role("textbox", name="Director").fill("Celine Song")
    form.get_by_role("button", name="Add movie").click()
    expect(plain).to_have_url(server.url + "/movies")
    expect(plain.locator("#toasts")).to_contain_text("Added “Past Lives”.")
    row_id = movie_id(server, "Past Lives")

    # Edit through the per-row form.
    plain.goto(server.url + "/movies?q=past+lives")
    row = plain.locator(f"#movie-{row_id}")
    row.get_by_role("link", name="Edit Past Lives").click()
    expect(plain.get_by_role("heading", name="Edit movie “Past Lives”")).to_be_visible()
    plain.get_by_role("textbox", name="Rating").fill("12")
    plain.get_by_role("button", name="Save").click()
    expect(plain.get_by_role("alert")).to_have_text("Rating must be between 0 and 10.")
    assert movie(server, row_id)[2] is None
    plain.get_by_role("textbox", name="Rating").fill("7.9")
    plain.get_by_role("button", name="Save").click()
    expect(plain).to_have_url(server.url + "/movies?q=past+lives")
    expect(cell(plain.locator(f"#movie-{row_id}"), "rating")).to_have_text("7.9")
    assert movie(server, row_id)[2] == 7.9

    # Delete, then undo from the message on the next page.
    plain.locator(f"#movie-{row_id}").get_by_role(
        "button", name="Delete Past Lives"
    ).click()
    expect(plain).to_have_url(server.url + "/movies?q=past+lives")
    expect(plain.locator(f"#movie-{row_id}")).to_have_count(0)
    assert movie(server, row_id) is None
    plain.locator(".toast").get_by_role("button", name="Undo").click()
    expect(plain).to_have_url(server.url + "/movies?q=past+lives")
    expect(plain.locator("#toasts")).to_contain_text("Restored “Past Lives”.")
    expect(plain.locator(f"#movie-{row_id}")).to_be_visible()
    assert movie(server, row_id)[2] == 7.9


def test_ratings_page_without_javascript(plain: Page, server: Server) -> None:
    plain.goto(server.url + "/ratings")
    plain.get_by_role("searchbox", name="Movie").fill("godfather")
    plain.get_by_role("button", name="Filter").click()
    # A plain GET form sends its empty fields too; they mean "no filter".
    expect(plain).to_have_url(
        server.url + "/ratings?author=&movie=godfather&min_rating="
    )
    (rating_id, value) = server.query(
        "SELECT id, rating FROM ratings WHERE movie_name LIKE '%Godfather%' "
        "ORDER BY id DESC LIMIT 1"
    )[0]
    row = plain.locator(f"#rating-{rating_id}")
    row.get_by_role("link", name="Edit").click()
    new = 1 if value != 1 else 2
    plain.get_by_role("textbox", name="Rating").fill(str(new))
    plain.get_by_role("button", name="Save").click()
    expect(plain).to_have_url(server.url + "/ratings?movie=godfather")  # canonical
    expect(cell(plain.locator(f"#rating-{rating_id}"), "rating")).to_have_text(str(new))
    assert server.query("SELECT rating FROM ratings WHERE id = :id", id=rating_id) == [
        (new,)
    ]
