"""Journey: search as people type it (issue 15): no accents, words in any order.

On a slow network (200 ms each way), typed fast: the table shows what was meant,
the address bar holds the search, and a reload shows the same.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from app.crud.dialect import fold_text
from e2e.conftest import Server
from e2e.live import slow_network


@pytest.fixture(autouse=True)
def latency(page: Page) -> None:
    """Every journey here runs with 200 ms of network latency."""
    slow_network(page, 200)


def meant(server: Server, *words: str) -> list[str]:
    """Movie names holding every word, accents and case ignored, by name."""
    rows = server.query("SELECT name, director FROM movies ORDER BY lower(name), id")
    return [
        name
        for name, director in rows
        if all(any(w in fold_text(v).lower() for v in (name, director)) for w in words)
    ]


def test_amelie_typed_fast_finds_amelie(page: Page, server: Server) -> None:
    assert meant(server, "amelie") == ["Amélie"]  # the demo catalogue has one
    (total,) = server.query("SELECT count(*) FROM movies")[0]
    page.goto(server.url + "/movies")
    search = page.get_by_role("searchbox", name="Search movies")
    search.press_sequentially("amelie", delay=20)
    expect(page).to_have_url(server.url + "/movies?q=amelie")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows).to_have_count(1)
    expect(rows.locator('td[data-field="name"]')).to_have_text("Amélie")
    expect(page.locator("#movie-count")).to_have_text(f"1 of {total:,} movies")
    expect(search).to_be_focused()  # typing goes on undisturbed
    page.reload()
    expect(page.get_by_role("searchbox", name="Search movies")).to_have_value("amelie")
    expect(rows).to_have_count(1)
    expect(rows.locator('td[data-field="name"]')).to_have_text("Amélie")


def test_words_in_any_order_across_name_and_director(
    page: Page, server: Server
) -> None:
    assert meant(server, "kubrick", "shining") == ["The Shining"]
    assert meant(server, "almodovar") == [
        "All About My Mother",
        "Talk to Her",
        "Volver",
    ]
    page.goto(server.url + "/movies?sort=name")
    search = page.get_by_role("searchbox", name="Search movies")
    search.press_sequentially("kubrick shining", delay=20)
    expect(page).to_have_url(server.url + "/movies?q=kubrick+shining&sort=name")
    names = page.locator('#movie-rows > tr.data-row > td[data-field="name"]')
    expect(names).to_have_text(["The Shining"])
    search.fill("almodovar")
    expect(page).to_have_url(server.url + "/movies?q=almodovar&sort=name")
    expect(names).to_have_text(["All About My Mother", "Talk to Her", "Volver"])
    page.reload()
    expect(names).to_have_text(["All About My Mother", "Talk to Her", "Volver"])
