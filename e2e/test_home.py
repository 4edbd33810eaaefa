"""Journey: open the home page and see the demo films in a table."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.conftest import Server


def test_home_shows_demo_films(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/movies")
    table = page.get_by_role("table", name="Movies")
    expect(table).to_be_visible()
    expect(
        table.get_by_role("row").filter(has_text="2001: A Space Odyssey")
    ).to_contain_text("Stanley Kubrick")
    (count,) = server.query("SELECT count(*) FROM movies")[0]
    expect(page.get_by_text(f"{count} of {count} movies")).to_be_visible()
