"""Journey: the table never shows an impossible state (pages, filters, duplicates)."""

from __future__ import annotations

import math

from playwright.sync_api import Page, expect

from e2e.conftest import Server
from e2e.live import accept_dialogs


def total(server: Server) -> int:
    """How many movies there are."""
    return int(server.query("SELECT count(*) FROM movies")[0][0])


def rows(page: Page, table: str = "movie"):
    """The display rows of a table region."""
    return page.locator(f"#{table}-rows > tr.data-row")


# issue 11: a page past the end said "Page 99 of 6" over an empty table.


def test_a_page_past_the_end_shows_the_last_page(page: Page, server: Server) -> None:
    last = math.ceil(total(server) / 50)
    page.goto(server.url + "/movies?sort=-rating&page=99")
    expect(page).to_have_url(server.url + f"/movies?sort=-rating&page={last}")
    expect(page.locator(".pager-status")).to_have_text(f"Page {last} of {last}")
    expect(rows(page)).not_to_have_count(0)
    expect(page.get_by_text("No movies match this view.")).to_be_hidden()


# issue 11: deleting the last row of the last page left "Page 2 of 2" and no rows.


def test_deleting_the_last_row_of_the_last_page_shows_the_page_before(
    page: Page, server: Server
) -> None:
    accept_dialogs(page)
    everything = total(server)
    per_page = everything - 1  # page 2 holds one movie: the last by name
    ((row_id, name),) = server.query(
        "SELECT id, name FROM movies ORDER BY lower(name) DESC, id DESC LIMIT 1"
    )
    page.goto(server.url + f"/movies?sort=name&page=2&per_page={per_page}")
    expect(page.locator(".pager-status")).to_have_text("Page 2 of 2")
    expect(rows(page)).to_have_count(1)
    page.get_by_role("button", name=f"Delete {name}").click()
    # The page before, its pager and the address bar agree.
    expect(page).to_have_url(server.url + f"/movies?sort=name&per_page={per_page}")
    expect(page.locator(".pager-status")).to_have_text("Page 1 of 1")
    expect(rows(page)).to_have_count(per_page)
    expect(page.locator("#movie-count")).to_have_text(
        f"{per_page:,} of {per_page:,} movies"
    )
    expect(page.locator(".toast").filter(has_text=f"Deleted “{name}”.")).to_be_visible()
    assert server.query("SELECT id FROM movies WHERE id = :id", id=row_id) == []
    page.reload()
    expect(page.locator(".pager-status")).to_have_text("Page 1 of 1")
    expect(rows(page)).to_have_count(per_page)


# issue 12: a bad filter value left the previous rows under it, plus a toast per
# keystroke that never went away.


def test_a_bad_filter_value_is_explained_next_to_its_field(
    page: Page, server: Server
) -> None:
    page.goto(server.url + "/movies?q=star")
    shown = rows(page).all_inner_texts()
    field = page.get_by_role("spinbutton", name="Minimum rating")
    field.press_sequentially("11", delay=50)
    expect(field).to_have_attribute("aria-invalid", "true")
    message = page.locator("#movie-filter-min_rating-error")
    expect(message).to_have_text("Minimum rating must be between 0 and 10.")
    expect(field).to_have_attribute("aria-describedby", "movie-filter-min_rating-error")
    expect(page.locator("#movie-not-applied")).to_have_text(
        "Minimum rating 11 is not applied: Minimum rating must be between 0 and 10."
    )
    expect(page.locator(".toast")).to_have_count(0)
    expect(field).to_be_focused()  # typing goes on undisturbed
    expect(field).to_have_value("11")
    # The table and the address bar show the view without it.
    expect(page).to_have_url(server.url + "/movies?q=star")
    assert rows(page).all_inner_texts() == shown
    field.fill("8")
    expect(page).to_have_url(server.url + "/movies?q=star&min_rating=8")
    expect(field).not_to_have_attribute("aria-invalid", "true")
    expect(message).to_have_text("")
    expect(message).to_be_hidden()
    expect(page.locator("#movie-not-applied")).to_have_count(0)
    (matching,) = server.query(
        "SELECT count(*) FROM movies WHERE (lower(name) LIKE '%star%' "
        "OR lower(director) LIKE '%star%') AND rating >= 8"
    )[0]
    expect(rows(page)).to_have_count(matching)
    page.reload()
    expect(rows(page)).to_have_count(matching)
    expect(field).not_to_have_attribute("aria-invalid", "true")


def test_ratings_are_whole_numbers_and_say_so(page: Page, server: Server) -> None:
    page.goto(server.url + "/ratings?movie=godfather")
    field = page.get_by_role("spinbutton", name="Minimum rating")
    field.fill("7.5")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#rating-filter-min_rating-error")).to_have_text(
        "Minimum rating must be a whole number."
    )
    expect(page.locator("#rating-not-applied")).to_contain_text(
        "Minimum rating 7.5 is not applied"
    )
    expect(page.locator(".toast")).to_have_count(0)
    expect(page).to_have_url(server.url + "/ratings?movie=godfather")
    field.fill("-3")
    expect(page.locator("#rating-filter-min_rating-error")).to_have_text(
        "Minimum rating must be between 1 and 10."
    )
    field.fill("")
    expect(field).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#rating-not-applied")).to_have_count(0)
    expect(page.locator(".toast")).to_have_count(0)


# issue 13: an exact copy of a movie was added silently (and then refused by the
# CSV import as ambiguous).


def test_adding_an_exact_duplicate_asks_first(page: Page, server: Server) -> None:
    ((name, director),) = server.query(
        "SELECT name, director FROM movies ORDER BY id LIMIT 1"
    )
    copies = "SELECT count(*) FROM movies WHERE name = :name AND director = :director"
    before = server.query(copies, name=name, director=director)[0][0]
    page.goto(server.url + "/movies")
    form = page.get_by_role("region", name="Add a movie")
    form.get_by_role("textbox", name="Name").fill(name)
    form.get_by_role("textbox", name="Director").fill(director)
    form.get_by_role("button", name="Add movie").click()
    expect(form.get_by_role("alert")).to_have_text(
        "A movie with this name and director exists: add another?"
    )
    expect(form.get_by_role("textbox", name="Name")).to_have_value(name)
    assert server.query(copies, name=name, director=director)[0][0] == before
    form.get_by_role("button", name="Add another").click()
    expect(page.locator("#movie-rows > tr").first).to_contain_text(name)
    expect(form.get_by_role("alert")).to_have_count(0)
    expect(form.get_by_role("button", name="Add movie")).to_be_visible()
    assert server.query(copies, name=name, director=director)[0][0] == before + 1
