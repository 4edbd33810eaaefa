"""Journey: other people's edits appear live, without a reload (issue 14).

Two people, A (`page`) and B (`other`), each in a browser context of their own,
200 ms from the server (two gunicorn workers). B's table learns of A's writes
through static/js/live.js: within the issue's 2 s (the timeouts below allow
2.5 s from A's save being answered).
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

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
)

LIVE_MS = 2500  # the 2 s, and a margin for a loaded test machine
LIT = re.compile(r"\blive-changed\b")
GONE = re.compile(r"\bis-gone\b")


def test_an_edit_elsewhere_shows_without_a_reload(
    page: Page, other: Page, server: Server
) -> None:
    slow_network(page)
    slow_network(other)
    theirs = show_movie(other, server, "Ikiru")
    mine = show_movie(page, server, "Ikiru")
    expect(cell(theirs, "rating")).to_have_text("8.3")

    edit(mine, "rating", "Rating", "8.0")
    saved(page)
    expect(cell(theirs, "rating")).to_have_text("8.0", timeout=LIVE_MS)
    expect(theirs).to_have_class(LIT)
    # B's row carries the stored version: B's next edit saves without a conflict.
    edit(theirs, "rating", "Rating", "8.1")
    saved(other)
    expect(other.get_by_role("alert")).to_have_count(0)
    assert movie(server, movie_id(server, "Ikiru"))[2] == 8.1
    # And A, who made the first edit, sees B's.
    expect(cell(mine, "rating")).to_have_text("8.1", timeout=LIVE_MS)


def test_an_open_editor_keeps_its_text_when_its_row_changes(
    page: Page, other: Page, server: Server
) -> None:
    row_id = movie_id(server, "Yojimbo")
    slow_network(page)
    slow_network(other)
    theirs = show_movie(other, server, "Yojimbo")
    mine = show_movie(page, server, "Yojimbo")

    cell(theirs, "director").click()
    typing = theirs.get_by_role("textbox", name="Director")
    typing.fill("A. Kurosawa (typed)")
    edit(mine, "rating", "Rating", "7.7")
    saved(page)

    expect(cell(theirs, "rating")).to_have_text("7.7", timeout=LIVE_MS)
    expect(typing).to_have_value("A. Kurosawa (typed)")
    expect(typing).to_be_focused()
    typing.press("Enter")
    saved(other)
    expect(cell(theirs, "director")).to_have_text("A. Kurosawa (typed)")
    expect(other.get_by_role("alert")).to_have_count(0)
    assert movie(server, row_id)[:3] == ("Yojimbo", "A. Kurosawa (typed)", 7.7)


def test_a_row_deleted_elsewhere_goes(page: Page, other: Page, server: Server) -> None:
    accept_dialogs(page)
    row_id = movie_id(server, "Ran")
    slow_network(page)
    slow_network(other)
    other.goto(f"{server.url}/movies?q=kurosawa")
    theirs = other.locator(f"#movie-{row_id}")
    expect(theirs).to_be_visible()
    shown = other.locator("#movie-rows > tr.data-row")
    before = shown.count()
    count = other.locator("#movie-count").inner_text()

    mine = show_movie(page, server, "Ran")
    mine.get_by_role("button", name="Delete Ran").click()
    expect(page.locator(f"#movie-{row_id}")).to_have_count(0)
    assert movie(server, row_id) is None

    expect(theirs).to_have_class(GONE, timeout=LIVE_MS)
    expect(theirs).to_have_count(0, timeout=LIVE_MS)
    expect(shown).to_have_count(before - 1)
    expect(other.locator("#movie-count")).not_to_have_text(count)


def test_a_movie_added_elsewhere_waits_behind_a_notice(
    page: Page, other: Page, server: Server
) -> None:
    slow_network(page)
    slow_network(other)
    other.goto(f"{server.url}/movies?q=kurosawa")
    shown = other.locator("#movie-rows > tr.data-row")
    expect(shown.first).to_be_visible()
    before = shown.count()
    first = shown.first.get_attribute("id")
    notice = other.get_by_role("status").filter(has_text="new movie")
    expect(notice).to_have_count(0)

    page.goto(server.url + "/movies")
    form = page.get_by_role("region", name="Add a movie")
    form.get_by_role("textbox", name="Name").fill("Dersu Uzala")
    form.get_by_role("textbox", name="Director").fill("Akira Kurosawa")
    form.get_by_role("button", name="Add movie").click()
    expect(page.locator("#movie-rows > tr").first).to_contain_text("Dersu Uzala")
    new_id = movie_id(server, "Dersu Uzala")

    said = re.compile(r"^\s*1 new movie\s+Show\s*$")
    expect(notice).to_have_text(said, timeout=LIVE_MS)
    # The page did not jump: the same rows, the same first row; the count follows.
    expect(shown).to_have_count(before)
    expect(shown.first).to_have_attribute("id", first)
    expect(other.locator(f"#movie-{new_id}")).to_have_count(0)
    expect(other.locator("#movie-count")).to_contain_text(f"{before + 1:,} of")

    notice.get_by_role("button", name="Show").click()
    expect(other.locator(f"#movie-{new_id}")).to_be_visible()
    expect(shown).to_have_count(before + 1)
    expect(notice).to_have_count(0)
