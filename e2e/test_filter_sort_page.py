"""Journey: type to filter, click headers to sort (shift adds a key), page through."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.conftest import Server


def names(page: Page) -> list[str]:
    """The movie names in the table, top to bottom."""
    return page.locator(
        '#movie-rows > tr.data-row > td[data-field="name"]'
    ).all_inner_texts()


def total(server: Server) -> int:
    """How many movies there are."""
    return int(server.query("SELECT count(*) FROM movies")[0][0])


def test_search_narrows_the_table_and_the_url_follows(
    page: Page, server: Server
) -> None:
    page.goto(server.url + "/movies")
    everything = total(server)
    expect(page.locator("#movie-count")).to_have_text(
        f"{everything:,} of {everything:,} movies"
    )
    search = page.get_by_role("searchbox", name="Search movies")
    search.press_sequentially("STAR w", delay=30)
    expect(page).to_have_url(server.url + "/movies?q=STAR+w")
    (matching,) = server.query(
        "SELECT count(*) FROM movies WHERE lower(name) LIKE '%star w%' "
        "OR lower(director) LIKE '%star w%'"
    )[0]
    expect(page.locator("#movie-count")).to_have_text(
        f"{matching} of {everything:,} movies"
    )
    for name in names(page):
        assert "star w" in name.lower()
    expect(search).to_be_focused()  # typing goes on undisturbed
    # Directors match too, anywhere in the text.
    search.fill("kuros")
    expect(page).to_have_url(server.url + "/movies?q=kuros")
    expect(page.locator("#movie-rows")).to_contain_text("Seven Samurai")
    page.get_by_role("spinbutton", name="Minimum rating").fill("8.4")
    expect(page).to_have_url(server.url + "/movies?q=kuros&min_rating=8.4")
    shown = names(page)
    stored = server.query(
        "SELECT name FROM movies WHERE lower(director) LIKE '%kuros%' "
        "AND rating >= 8.4 ORDER BY lower(name), id"
    )
    assert shown == [n for (n,) in stored]
    page.reload()  # the URL alone reproduces the view
    expect(page.get_by_role("searchbox", name="Search movies")).to_have_value("kuros")
    assert names(page) == shown


def test_header_clicks_sort_and_shift_click_adds_a_key(
    page: Page, server: Server
) -> None:
    page.goto(server.url + "/movies?q=kurosawa")
    header = page.locator("th:has(#movie-sort-rating)")
    expect(header).not_to_have_attribute("aria-sort", re.compile("."))
    header.get_by_role("link", name="Rating").click()
    expect(page).to_have_url(server.url + "/movies?q=kurosawa&sort=rating")
    expect(header).to_have_attribute("aria-sort", "ascending")
    header.get_by_role("link", name="Rating").click()
    expect(page).to_have_url(server.url + "/movies?q=kurosawa&sort=-rating")
    expect(header).to_have_attribute("aria-sort", "descending")
    stored = server.query(
        "SELECT name FROM movies WHERE lower(director) LIKE '%kurosawa%' "
        "ORDER BY rating DESC NULLS LAST, id DESC"
    )
    assert names(page) == [n for (n,) in stored]
    # Shift-click: then by name; the headers show the order of the keys.
    name = page.locator("th:has(#movie-sort-name)")
    name.get_by_role("link").click(modifiers=["Shift"])
    expect(page).to_have_url(server.url + "/movies?q=kurosawa&sort=-rating,name")
    expect(page.locator("#movie-sort-rating .sort-mark")).to_have_text("▼1")
    expect(page.locator("#movie-sort-name .sort-mark")).to_have_text("▲2")
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(name).not_to_have_attribute("aria-sort", re.compile("."))
    stored = server.query(
        "SELECT name FROM movies WHERE lower(director) LIKE '%kurosawa%' "
        "ORDER BY rating DESC NULLS LAST, lower(name), id"
    )
    assert names(page) == [n for (n,) in stored]
    assert len(page.context.pages) == 1  # no new window from the shift-click


def test_paging_forward_and_back(page: Page, server: Server) -> None:
    everything = total(server)
    page.goto(server.url + "/movies?sort=name")
    first_page = names(page)
    assert len(first_page) == 50
    expect(page.locator(".pager-status")).to_have_text(
        f"Page 1 of {(everything + 49) // 50}"
    )
    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(server.url + "/movies?sort=name&page=2")
    expect(page.locator(".pager-status")).to_contain_text("Page 2 of")
    second_page = names(page)
    stored = server.query("SELECT name FROM movies ORDER BY lower(name), id")
    assert second_page == [n for (n,) in stored[50:100]]
    expect(page.locator("#movie-count")).to_have_text(
        f"{everything:,} of {everything:,} movies"
    )
    page.get_by_role("link", name="Previous").click()
    expect(page).to_have_url(server.url + "/movies?sort=name")
    assert names(page) == first_page
    expect(page.get_by_role("link", name="Previous")).to_have_attribute(
        "aria-disabled", "true"
    )


def test_ratings_table_filters_and_sorts(page: Page, server: Server) -> None:
    page.goto(server.url + "/ratings")
    page.get_by_role("searchbox", name="Author").fill("kai")
    expect(page).to_have_url(server.url + "/ratings?author=kai")
    stored = server.query(
        "SELECT count(*) FROM ratings WHERE lower(author) LIKE '%kai%'"
    )[0][0]
    everything = server.query("SELECT count(*) FROM ratings")[0][0]
    expect(page.locator("#rating-count")).to_have_text(
        f"{stored} of {everything} ratings"
    )
    page.get_by_role("link", name="Rating", exact=True).click()
    expect(page).to_have_url(server.url + "/ratings?author=kai&sort=rating")
    shown = page.locator('#rating-rows td[data-field="rating"]').all_inner_texts()
    assert shown == sorted(shown, key=int)
