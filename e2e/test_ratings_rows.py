"""Journey: open a movie's ratings, add, edit and delete them, and watch its figures."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.conftest import Server
from e2e.live import accept_dialogs, cell, movie_id, saved, show_movie


def summary(server: Server, row_id: int) -> str:
    """The movie's "average · count" as the database computes it."""
    ((n, avg),) = server.query(
        "SELECT count(*), avg(rating) FROM ratings WHERE movie_id = :id", id=row_id
    )
    return f"{avg:.1f} · {n}" if n else "no ratings"


def test_expand_add_edit_delete_ratings(page: Page, server: Server) -> None:
    accept_dialogs(page)
    row_id = movie_id(server, "Goodfellas")
    row = show_movie(page, server, "Goodfellas")
    figures = page.locator(f"#movie-{row_id}-ratings-summary")
    expect(figures).to_have_text(summary(server, row_id))
    toggle = row.get_by_role("button", name="Show ratings for Goodfellas")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    ratings = page.get_by_role("table", name="Ratings of Goodfellas")
    expect(ratings).to_be_visible()
    (before,) = server.query(
        "SELECT count(*) FROM ratings WHERE movie_id = :id", id=row_id
    )[0]
    expect(ratings.locator("tbody tr.data-row")).to_have_count(before)

    # Add two ratings: each appears on top and the movie's figures follow.
    child = page.locator(f"#movie-{row_id}-ratings")
    for value, author in (("10", "Henry Hill"), ("2", "Karen Hill")):
        child.get_by_role("textbox", name="Rating").fill(value)
        child.get_by_role("textbox", name="Author").fill(author)
        child.get_by_role("button", name="Add rating").click()
        expect(ratings.locator("tbody tr.data-row").first).to_contain_text(author)
        expect(figures).to_have_text(summary(server, row_id))
    expect(child.get_by_role("textbox", name="Rating")).to_be_focused()
    assert server.query(
        "SELECT rating FROM ratings WHERE movie_id = :id AND author = 'Karen Hill'",
        id=row_id,
    ) == [(2,)]

    # Edit one inline, the same way as a movie cell.
    karen = ratings.locator("tbody tr.data-row").first
    cell(karen, "rating").click()
    box = karen.get_by_role("textbox", name="Rating")
    box.fill("6")
    box.press("Enter")
    expect(cell(karen, "rating")).to_have_text("6")
    saved(
        page
    )  # the cell shows what was typed at once; the figures come with the answer
    expect(figures).to_have_text(summary(server, row_id))
    cell(karen, "author").click()
    box = karen.get_by_role("textbox", name="Author")
    box.fill("")
    box.press("Enter")
    expect(karen.get_by_role("alert")).to_have_text("Author is required.")
    karen.get_by_role("textbox", name="Author").press("Escape")
    expect(cell(karen, "author")).to_have_text("Karen Hill")

    # Delete one; the figures drop; Undo brings it back with its id.
    (karen_id,) = server.query(
        "SELECT id FROM ratings WHERE author = 'Karen Hill' AND movie_id = :id",
        id=row_id,
    )[0]
    karen.get_by_role("button", name="Delete rating 6 by Karen Hill").click()
    expect(page.locator(f"#rating-{karen_id}")).to_have_count(0)
    expect(figures).to_have_text(summary(server, row_id))
    assert server.query("SELECT id FROM ratings WHERE id = :id", id=karen_id) == []
    page.locator(".toast").filter(has_text="Deleted").get_by_role(
        "button", name="Undo"
    ).click()
    expect(page.locator(f"#rating-{karen_id}")).to_be_visible()
    expect(figures).to_have_text(summary(server, row_id))
    assert server.query("SELECT rating FROM ratings WHERE id = :id", id=karen_id) == [
        (6,)
    ]

    # Collapse; the figures survive a reload.
    toggle.click()
    expect(child).to_have_count(0)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expected = summary(server, row_id)
    page.reload()
    expect(page.locator(f"#movie-{row_id}-ratings-summary")).to_have_text(expected)


def test_editing_the_movie_keeps_its_ratings_open(page: Page, server: Server) -> None:
    row_id = movie_id(server, "Ran")
    row = show_movie(page, server, "Ran")
    toggle = row.get_by_role("button", name="Show ratings for Ran")
    toggle.click()
    expect(page.get_by_role("table", name="Ratings of Ran")).to_be_visible()
    cell(row, "name").click()
    box = row.get_by_role("textbox", name="Name")
    box.fill("Ran (1985)")
    box.press("Enter")
    expect(cell(row, "name")).to_have_text("Ran (1985)")
    saved(page)
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator(f"#movie-{row_id}-ratings")).to_be_visible()
    # The ratings carry the new name (copied in the same transaction).
    names = server.query(
        "SELECT DISTINCT movie_name FROM ratings WHERE movie_id = :id", id=row_id
    )
    assert names in ([("Ran (1985)",)], [])
