"""Journey: back and forward restore earlier views; a shared link shows the same."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from e2e.conftest import Server


def names(page: Page) -> list[str]:
    """The movie names in the table, top to bottom."""
    return page.locator(
        '#movie-rows > tr.data-row > td[data-field="name"]'
    ).all_inner_texts()


def test_back_and_forward_restore_views(page: Page, server: Server) -> None:
    page.goto(server.url + "/movies")
    start = names(page)
    page.get_by_role("searchbox", name="Search movies").fill("godfather")
    expect(page).to_have_url(server.url + "/movies?q=godfather")
    expect(page.locator("#movie-count")).to_contain_text("2 of")
    page.locator("#movie-sort-rating").click()
    expect(page).to_have_url(server.url + "/movies?q=godfather&sort=rating")
    sorted_view = names(page)
    page.get_by_role("link", name="Ratings", exact=True).click()  # another page
    expect(page).to_have_url(server.url + "/ratings")

    page.go_back()
    expect(page).to_have_url(server.url + "/movies?q=godfather&sort=rating")
    expect(page.locator("#movie-count")).to_contain_text("2 of")
    assert names(page) == sorted_view
    page.go_back()
    expect(page).to_have_url(server.url + "/movies?q=godfather")
    expect(page.locator("th:has(#movie-sort-name)")).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(page.get_by_role("searchbox", name="Search movies")).to_have_value(
        "godfather"
    )
    page.go_back()
    expect(page).to_have_url(server.url + "/movies")
    expect(page.get_by_role("searchbox", name="Search movies")).to_have_value("")
    expect(page.locator("#movie-rows > tr.data-row")).to_have_count(50)
    assert names(page) == start
    page.go_forward()
    expect(page).to_have_url(server.url + "/movies?q=godfather")
    expect(page.locator("#movie-count")).to_contain_text("2 of")
    # After a restore the page still works live.
    page.locator("#movie-sort-rating").click()
    expect(page).to_have_url(server.url + "/movies?q=godfather&sort=rating")
    assert names(page) == sorted_view


def test_a_shared_link_reproduces_the_view(
    page: Page, browser: Browser, server: Server
) -> None:
    page.goto(server.url + "/movies")
    page.get_by_role("searchbox", name="Search movies").fill("star")
    expect(page).to_have_url(server.url + "/movies?q=star")
    page.get_by_role("spinbutton", name="Minimum rating").fill("7.5")
    expect(page).to_have_url(server.url + "/movies?q=star&min_rating=7.5")
    page.locator("#movie-sort-rating").click()
    # Click again once the table shows the first sort: the link then reverses it
    # (a second click before that is a click on the same, ascending, link).
    expect(page).to_have_url(server.url + "/movies?q=star&min_rating=7.5&sort=rating")
    page.locator("#movie-sort-rating").click()
    expect(page).to_have_url(server.url + "/movies?q=star&min_rating=7.5&sort=-rating")
    mine = names(page)
    count = page.locator("#movie-count").inner_text()

    context = browser.new_context()
    try:
        theirs = context.new_page()
        theirs.goto(page.url)
        expect(theirs.locator("#movie-count")).to_have_text(count)
        assert names(theirs) == mine
        expect(theirs.get_by_role("spinbutton", name="Minimum rating")).to_have_value(
            "7.5"
        )
    finally:
        context.close()
