"""Journey: add a movie, delete it (with its ratings) and undo the delete."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.conftest import Server
from e2e.live import accept_dialogs, movie_id, show_movie


def movie_count(server: Server) -> int:
    """How many movies the database holds."""
    return int(server.query("SELECT count(*) FROM movies")[0][0])


def test_add_movie_appears_on_top_highlighted(page: Page, server: Server) -> None:
    before = movie_count(server)
    page.goto(server.url + "/movies")
    form = page.get_by_role("region", name="Add a movie")
    form.get_by_role("textbox", name="Name").fill("Aftersun")
    form.get_by_role("textbox", name="Director").fill("Charlotte Wells")
    form.get_by_role("textbox", name="Rating").fill("7.7")
    form.get_by_role("button", name="Add movie").click()
    first = page.locator("#movie-rows > tr").first
    expect(first).to_contain_text("Aftersun")
    new_id = movie_id(server, "Aftersun")
    expect(first).to_have_id(f"movie-{new_id}")
    expect(first).to_have_class("data-row is-new")
    expect(first).to_contain_text("Charlotte Wells")
    expect(page.locator("#movie-count")).to_have_text(
        f"{before + 1:,} of {before + 1:,} movies"
    )
    # The form is empty again and ready for the next one.
    expect(form.get_by_role("textbox", name="Name")).to_have_value("")
    expect(form.get_by_role("textbox", name="Name")).to_be_focused()
    assert server.query(
        "SELECT director, rating FROM movies WHERE id = :id", id=new_id
    ) == [("Charlotte Wells", 7.7)]
    page.goto(server.url + "/movies?q=aftersun")
    expect(page.locator(f"#movie-{new_id}")).to_contain_text("7.7")


def test_add_movie_errors_show_per_field(page: Page, server: Server) -> None:
    before = movie_count(server)
    page.goto(server.url + "/movies")
    form = page.get_by_role("region", name="Add a movie")
    form.get_by_role("textbox", name="Director").fill("Nobody")
    form.get_by_role("textbox", name="Rating").fill("eleven")
    form.get_by_role("button", name="Add movie").click()
    name = form.get_by_role("textbox", name="Name")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()
    expect(form.get_by_role("alert")).to_have_text(
        ["Name is required.", "Rating must be a number."]
    )
    expect(form.get_by_role("textbox", name="Director")).to_have_value("Nobody")
    assert movie_count(server) == before
    name.fill("Somebody's Film")
    form.get_by_role("textbox", name="Rating").fill("")
    form.get_by_role("button", name="Add movie").click()
    expect(form.get_by_role("alert")).to_have_count(0)
    expect(page.locator("#movie-rows > tr").first).to_contain_text("Somebody's Film")
    assert movie_count(server) == before + 1


def test_delete_movie_and_undo(page: Page, server: Server) -> None:
    accept_dialogs(page)
    row_id = movie_id(server, "Fight Club")
    ratings = server.query(
        "SELECT id, rating, author FROM ratings WHERE movie_id = :id ORDER BY id",
        id=row_id,
    )
    assert ratings, "the demo data gives Fight Club some ratings"
    row = show_movie(page, server, "Fight Club")
    row.get_by_role("button", name="Show ratings for Fight Club").click()
    expect(page.locator(f"#movie-{row_id}-ratings")).to_be_visible()
    row.get_by_role("button", name="Delete Fight Club").click()
    expect(page.locator(f"#movie-{row_id}")).to_have_count(0)
    expect(page.locator(f"#movie-{row_id}-ratings")).to_have_count(0)
    expect(page.locator("#movie-count")).to_contain_text("0 of")
    assert server.query("SELECT id FROM movies WHERE id = :id", id=row_id) == []
    assert server.query("SELECT id FROM ratings WHERE movie_id = :id", id=row_id) == []

    toast = page.locator(".toast").filter(has_text="Deleted “Fight Club”.")
    toast.get_by_role("button", name="Undo").click()
    expect(page.locator(f"#movie-{row_id}")).to_contain_text("Fight Club")
    expect(
        page.locator(".toast").filter(has_text="Restored “Fight Club”.")
    ).to_be_visible()
    expect(page.locator("#movie-count")).to_contain_text("1 of")
    assert (
        server.query(
            "SELECT id, rating, author FROM ratings WHERE movie_id = :id ORDER BY id",
            id=row_id,
        )
        == ratings
    )
    page.reload()
    expect(page.locator(f"#movie-{row_id}")).to_contain_text("Fight Club")


def test_cancelled_confirmation_deletes_nothing(page: Page, server: Server) -> None:
    page.on("dialog", lambda dialog: dialog.dismiss())
    row_id = movie_id(server, "Inception")
    row = show_movie(page, server, "Inception")
    row.get_by_role("button", name="Delete Inception").click()
    expect(row).to_be_visible()
    page.reload()
    expect(page.locator(f"#movie-{row_id}")).to_be_visible()
    assert server.query("SELECT name FROM movies WHERE id = :id", id=row_id) == [
        ("Inception",)
    ]


def test_toast_can_be_dismissed(page: Page, server: Server) -> None:
    accept_dialogs(page)
    row = show_movie(page, server, "Forrest Gump")
    row.get_by_role("button", name="Delete Forrest Gump").click()
    toast = page.locator(".toast").filter(has_text="Deleted “Forrest Gump”.")
    expect(toast).to_be_visible()
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)
