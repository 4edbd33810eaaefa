"""Journey: other people's edits appear live, without a reload (issue 14).

Two people, A (`page`) and B (`other`), each in a browser context of their own,
200 ms from the server (two gunicorn workers). B's table learns of A's writes
through static/js/live.js: within the issue's 2 s (the timeouts below allow
2.5 s from A's save being answered).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Locator, Page, Route, expect

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


def summary_of(server: Server, row_id: int) -> str:
    """A movie's ratings summary as the page shows it ("7.4 · 12"), as stored."""
    ((count, average),) = server.query(
        "SELECT count(*), avg(rating) FROM ratings WHERE movie_id = :id", id=row_id
    )
    return f"{average:.1f} · {count:,}" if count else "no ratings"


def open_ratings(page: Page, server: Server, name: str) -> tuple[int, Locator]:
    """Show a movie's row and open its ratings; return its id and the open list."""
    row_id = movie_id(server, name)
    row = show_movie(page, server, name)
    row.get_by_role("button", name=f"Show ratings for {name}").click()
    child = page.locator(f"#movie-{row_id}-ratings")
    expect(child).to_be_visible()
    return row_id, child


def test_ratings_changed_elsewhere_follow_in_an_open_list_and_the_summary(
    page: Page, other: Page, server: Server
) -> None:
    accept_dialogs(page)
    slow_network(page)
    slow_network(other)
    row_id, theirs = open_ratings(other, server, "Pulp Fiction")
    summary = other.locator(f"#movie-{row_id}-ratings-summary")
    expect(summary).to_have_text(summary_of(server, row_id))
    _, mine = open_ratings(page, server, "Pulp Fiction")
    ((rating_id, value),) = server.query(
        "SELECT id, rating FROM ratings WHERE movie_id = :id ORDER BY id DESC LIMIT 1",
        id=row_id,
    )

    # An edit of a rating: the other person's open list and summary follow.
    new_value = 1 if value != 1 else 2
    edit(mine.locator(f"#rating-{rating_id}"), "rating", "Rating", str(new_value))
    saved(page)
    assert server.query("SELECT rating FROM ratings WHERE id = :id", id=rating_id) == [
        (new_value,)
    ]
    expect(cell(theirs.locator(f"#rating-{rating_id}"), "rating")).to_have_text(
        re.compile(rf"^{new_value}(\.0)?$"), timeout=LIVE_MS
    )
    expect(summary).to_have_text(summary_of(server, row_id), timeout=LIVE_MS)

    # A rating added: it joins their open list, which stays open.
    mine.get_by_role("textbox", name="Rating").fill("3")
    mine.get_by_role("textbox", name="Author").fill("Live Adder")
    mine.get_by_role("button", name="Add rating").click()
    expect(mine.locator("tbody tr.data-row").first).to_contain_text("Live Adder")
    ((added,),) = server.query(
        "SELECT id FROM ratings WHERE author = 'Live Adder' AND movie_id = :id",
        id=row_id,
    )
    expect(theirs.locator(f"#rating-{added}")).to_contain_text(
        "Live Adder", timeout=LIVE_MS
    )
    expect(theirs).to_be_visible()
    expect(summary).to_have_text(summary_of(server, row_id), timeout=LIVE_MS)

    # A rating deleted: it goes from their list.
    mine.locator(f"#rating-{added}").get_by_role(
        "button", name=re.compile("^Delete")
    ).click()
    expect(mine.locator(f"#rating-{added}")).to_have_count(0)
    assert server.query("SELECT id FROM ratings WHERE id = :id", id=added) == []
    expect(theirs.locator(f"#rating-{added}")).to_have_count(0, timeout=LIVE_MS)
    expect(summary).to_have_text(summary_of(server, row_id), timeout=LIVE_MS)
    expect(theirs).to_be_visible()


def test_undoing_a_rating_delete_keeps_open_lists_open(
    page: Page, server: Server
) -> None:
    accept_dialogs(page)
    slow_network(page)
    page.goto(f"{server.url}/movies?q=heat")
    heat = movie_id(server, "Heat")
    page.locator(f"#movie-{heat}").get_by_role(
        "button", name="Show ratings for Heat"
    ).click()
    heat_list = page.locator(f"#movie-{heat}-ratings")
    expect(heat_list).to_be_visible()
    rows = heat_list.locator("tbody tr.data-row")
    expect(rows.first).to_be_visible()
    before = rows.count()
    first = rows.first
    rating_id = int((first.get_attribute("id") or "").removeprefix("rating-"))
    # Something typed in the list stays: the list is not drawn again.
    heat_list.get_by_role("textbox", name="Author").fill("Half typed")

    first.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator(f"#rating-{rating_id}")).to_have_count(0)
    assert server.query("SELECT id FROM ratings WHERE id = :id", id=rating_id) == []

    # The Undo above the table (this tab's change sets), not the toast's.
    undo = page.locator(".change-bar").get_by_role("button", name="Undo")
    expect(undo).to_have_accessible_description(re.compile("^deleting rating"))
    undo.click()
    expect(page.locator(f"#rating-{rating_id}")).to_be_visible()
    assert server.query("SELECT id FROM ratings WHERE id = :id", id=rating_id) == [
        (rating_id,)
    ]
    expect(heat_list).to_be_visible()
    expect(rows).to_have_count(before)
    expect(heat_list.get_by_role("textbox", name="Author")).to_have_value("Half typed")
    expect(page.locator(f"#movie-{heat}-ratings-summary")).to_have_text(
        summary_of(server, heat)
    )


def test_the_page_sends_back_the_cursor_each_answer_gives(
    page: Page, server: Server
) -> None:
    """The client's half of the PostgreSQL cursor: the snapshot the region was
    drawn with (none on SQLite), then each answer's, goes back with the next
    poll. The server's answers are stood in for here (this server is SQLite,
    whose cursor is an id alone); tests/test_views_live.py proves the server's
    half on PostgreSQL."""
    asked: list[str] = []
    answers = iter(
        [
            '{"last": 900007, "snapshot": "5:9:6,8", "updated": [], "deleted": [],'
            ' "created": []}',
            '{"last": 900008, "updated": [], "deleted": [], "created": []}',
        ]
    )

    def answer(route: Route) -> None:
        body = next(answers, None)
        if body is None:
            route.fulfill(status=204)
        else:
            route.fulfill(status=200, content_type="application/json", body=body)

    def query(url: str) -> dict[str, list[str]]:
        return parse_qs(urlparse(url).query)

    page.route("**/changes/since*", answer)
    # Heard before expect_request's own listener below: in order, all of them.
    page.on(
        "request",
        lambda r: asked.append(r.url) if "/changes/since" in r.url else None,
    )
    page.goto(server.url + "/movies")
    notice = page.locator(".live-notice[data-live-url]")
    expect(notice).to_have_attribute("data-live-snapshot", "")
    with page.expect_request(
        lambda r: query(r.url).get("after") == ["900008"], timeout=LIVE_MS * 3
    ):
        pass
    polls = [url for url in asked if "after" in query(url)]
    assert len(polls) == 3, polls
    assert "snapshot" not in polls[0]  # SQLite: the page was drawn with none
    assert query(polls[1]) == {
        "after": ["900007"],
        "table": ["movies"],
        "snapshot": ["5:9:6,8"],
    }
    # An answer without a snapshot (SQLite's) clears it: the id alone again.
    assert query(polls[2]) == {"after": ["900008"], "table": ["movies"]}
    # Nothing was followed, and the page never moved.
    expect(notice).to_be_hidden()
