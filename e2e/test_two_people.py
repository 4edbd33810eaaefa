"""Journey: two people at once; merged saves, conflicts, rows deleted meanwhile."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route, expect

from e2e.conftest import Server
from e2e.live import (
    accept_dialogs,
    cell,
    edit,
    movie,
    movie_id,
    saved,
    show_movie,
    slow_network,
    stale_view,
)

GONE = "This movie was deleted by someone else."
IS_GONE = re.compile(r"\bis-gone\b")


@pytest.fixture(autouse=True)
def behind(page: Page) -> None:
    """The first person's view stays as loaded (see stale_view)."""
    stale_view(page)


def search(page: Page, server: Server, q: str) -> None:
    """Open the movie table searched for `q` (several movies)."""
    page.goto(f"{server.url}/movies?q={q}")
    expect(page.locator("#movie-rows > tr.data-row").first).to_be_visible()


def focus_on_body(page: Page) -> bool:
    """True when the focus has been dropped (on <body> or nowhere)."""
    return page.evaluate(
        "() => !document.activeElement || document.activeElement === document.body"
    )


def test_different_fields_of_one_row_are_both_kept(
    page: Page, other: Page, server: Server
) -> None:
    # issue 10: a save carries the value its editor started from, so an edit of
    # another field of the row meanwhile is merged rather than refused (no 409).
    row_id = movie_id(server, "Rashomon")
    slow_network(page)
    slow_network(other)
    theirs = show_movie(other, server, "Rashomon")  # loaded before A's edit
    mine = show_movie(page, server, "Rashomon")

    edit(mine, "director", "Director", "A. Kurosawa")
    saved(page)
    assert movie(server, row_id)[1] == "A. Kurosawa"

    edit(theirs, "rating", "Rating", "7.9")
    saved(other)
    expect(cell(theirs, "rating")).to_have_text("7.9")
    expect(cell(theirs, "director")).to_have_text("A. Kurosawa")
    expect(other.get_by_role("alert")).to_have_count(0)
    name, director, rating, _ = movie(server, row_id)
    assert (name, director, rating) == ("Rashomon", "A. Kurosawa", 7.9)

    other.reload()
    row = other.locator(f"#movie-{row_id}")
    expect(cell(row, "director")).to_have_text("A. Kurosawa")
    expect(cell(row, "rating")).to_have_text("7.9")


@pytest.mark.parametrize(
    ("name", "choice", "kept"),
    [("Yojimbo", "Keep mine", "Akira K."), ("Ikiru", "Take theirs", "Kurosawa A.")],
)
def test_same_field_offers_the_conflict_choice(
    page: Page, other: Page, server: Server, name: str, choice: str, kept: str
) -> None:
    # issue 10: the same field changed by both is not merged: the second person
    # sees what is stored and what they typed, and chooses.
    row_id = movie_id(server, name)
    slow_network(other)
    theirs = show_movie(other, server, name)
    mine = show_movie(page, server, name)
    edit(mine, "director", "Director", "Kurosawa A.")
    saved(page)

    edit(theirs, "director", "Director", "Akira K.")
    alert = cell(theirs, "director").get_by_role("alert")
    expect(alert).to_contain_text("Someone else changed this")
    expect(alert).to_contain_text("Stored now: Kurosawa A.")
    expect(alert).to_contain_text("You typed: Akira K.")
    assert movie(server, row_id)[1] == "Kurosawa A."  # nothing overwritten

    cell(theirs, "director").get_by_role("button", name=choice).click()
    expect(cell(theirs, "director")).to_have_text(kept)
    expect(cell(theirs, "director")).to_be_focused()
    expect(other.get_by_role("alert")).to_have_count(0)
    saved(other)
    assert movie(server, row_id)[1] == kept
    other.reload()
    expect(cell(other.locator(f"#movie-{row_id}"), "director")).to_have_text(kept)


def test_saving_a_row_deleted_meanwhile_says_so_once(
    page: Page, other: Page, server: Server
) -> None:
    # issue 10: a row someone else deleted is reported once (quoting what was
    # typed), retired on screen, and the focus moves on rather than to <body>.
    accept_dialogs(page)
    row_id = movie_id(server, "Princess Mononoke")
    slow_network(other)
    search(other, server, "Miyazaki")  # all his films, loaded now
    theirs = other.locator(f"#movie-{row_id}")
    mine = show_movie(page, server, "Princess Mononoke")
    mine.get_by_role("button", name="Delete Princess Mononoke").click()
    expect(mine).to_have_count(0)
    assert movie(server, row_id) is None

    # Hold the first save until the second cell's save is queued behind it.
    held: list[Route] = []

    def hold_first_patch(route: Route) -> None:
        if route.request.method == "PATCH" and not held:
            held.append(route)
        else:
            route.continue_()

    other.route(f"**/movies/{row_id}*", hold_first_patch)
    cell(theirs, "name").click()
    box = theirs.get_by_role("textbox", name="Name")
    box.fill("Mononoke-hime")
    box.press("Tab")  # saves it and opens the director's editor
    box = theirs.get_by_role("textbox", name="Director")
    expect(box).to_be_focused()
    box.fill("H. Miyazaki")
    box.press("Enter")
    expect(other.locator('td[aria-busy="true"]')).to_have_count(2)
    assert len(held) == 1
    held[0].continue_()

    toasts = other.locator("#toasts > .toast-error")
    expect(toasts).to_have_count(1)
    expect(toasts).to_have_attribute("role", "alert")
    expect(toasts).to_contain_text(GONE)
    expect(toasts).to_contain_text("You typed: “Mononoke-hime”")
    expect(toasts).to_contain_text("H. Miyazaki")
    saved(other)
    expect(theirs).to_have_class(IS_GONE)
    expect(other.locator("form.cell-editor")).to_have_count(0)
    assert not focus_on_body(other)
    expect(theirs.locator(":focus")).to_have_count(0)

    # The retired row takes no more edits (and so no second message).
    cell(theirs, "rating").click()
    other.keyboard.type("9")
    expect(other.locator("form.cell-editor")).to_have_count(0)
    expect(toasts).to_have_count(1)
    assert movie(server, row_id) is None


def test_deleting_a_row_deleted_meanwhile_says_so(
    page: Page, other: Page, server: Server
) -> None:
    # issue 10: Delete of a row someone else deleted reports it, once.
    accept_dialogs(page)
    accept_dialogs(other)
    row_id = movie_id(server, "Howl's Moving Castle")
    slow_network(other)
    search(other, server, "Miyazaki")
    theirs = other.locator(f"#movie-{row_id}")
    expect(theirs).to_be_visible()
    mine = show_movie(page, server, "Howl's Moving Castle")
    mine.get_by_role("button", name="Delete Howl's Moving Castle").click()
    expect(mine).to_have_count(0)
    assert movie(server, row_id) is None

    theirs.get_by_role("button", name="Delete Howl's Moving Castle").click()
    toasts = other.locator("#toasts > .toast-error")
    expect(toasts).to_have_count(1)
    expect(toasts).to_contain_text(GONE)
    expect(theirs).to_have_class(IS_GONE)
    expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)
    assert not focus_on_body(other)


def delete_by_keyboard(page: Page, server: Server) -> tuple[str, str]:
    """Delete the first Kurosawa film by keyboard; return its id and the next row's."""
    accept_dialogs(page)
    slow_network(page)
    page.goto(server.url + "/movies?q=Kurosawa&sort=name")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows.nth(2)).to_be_visible()
    doomed, after = rows.nth(0), rows.nth(1)
    doomed_id, after_id = doomed.get_attribute("id"), after.get_attribute("id")
    assert doomed_id and after_id

    cell(doomed, "name").click()
    page.keyboard.press("Escape")  # the click opened its editor; back to the cell
    expect(cell(doomed, "name")).to_be_focused()
    page.keyboard.press("End")
    expect(doomed.locator("td.actions")).to_be_focused()
    page.keyboard.press("Enter")
    expect(doomed.get_by_role("button", name="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"#{doomed_id}")).to_have_count(0)
    assert movie(server, int(doomed_id.removeprefix("movie-"))) is None
    return doomed_id, after_id


def test_focus_after_keyboard_delete(page: Page, server: Server) -> None:
    # issue 10: focus is never dropped to <body>: after a delete it goes to the
    # next row's cell in the same column.
    _, after_id = delete_by_keyboard(page, server)
    expect(page.locator(f"#{after_id} > td.actions")).to_be_focused()


def test_focus_after_undo(page: Page, server: Server) -> None:
    # issue 10: after Undo the focus goes to the restored row's first editable
    # cell (not to <body>, where the removed toast's button leaves it).
    doomed_id, _ = delete_by_keyboard(page, server)
    toast = page.locator(".toast").filter(has_text="Deleted “")
    toast.get_by_role("button", name="Undo").click()
    restored = page.locator(f"#{doomed_id}")
    expect(restored).to_be_visible()
    assert movie(server, int(doomed_id.removeprefix("movie-"))) is not None
    expect(cell(restored, "name")).to_be_focused()
    page.reload()
    expect(page.locator(f"#{doomed_id}")).to_be_visible()
