"""Journey: a row's history (button and Alt+H), Restore this value, the Changes page.

Issue 14 (History), over a network with latency, as people meet it.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.conftest import Server
from e2e.live import cell, movie, movie_id, saved, show_movie, slow_network, write


def edit_cell(page: Page, row, field: str, label: str, typed: str) -> None:
    """Type a new value into a cell and save it with Enter."""
    cell(row, field).click()
    box = row.get_by_role("textbox", name=label)
    expect(box).to_be_focused()
    box.press_sequentially(typed)
    box.press("Enter")
    expect(cell(row, field)).to_have_text(typed)
    saved(page)


def test_history_shows_the_edit_and_restores_it(page: Page, server: Server) -> None:
    slow_network(page)
    row_id = movie_id(server, "Heat")
    row = show_movie(page, server, "Heat")
    before = cell(row, "director").inner_text()
    edit_cell(page, row, "director", "Director", "M. Mann")

    row.get_by_role("button", name="History of Heat").click()
    dialog = page.get_by_role("dialog", name="History of Heat")
    expect(dialog).to_be_visible()
    first = dialog.locator(".history-entry").first
    expect(first.locator(".history-change")).to_contain_text(f"Director: {before}")
    expect(first.locator(".history-new")).to_have_text("M. Mann")

    first.get_by_role("button", name="Restore this value").click()
    # The row shows the old value again, and the panel lists the restore on top.
    expect(cell(page.locator(f"#movie-{row_id}"), "director")).to_have_text(before)
    expect(dialog.locator(".history-entry").first.locator(".history-new")).to_have_text(
        before
    )
    saved(page)
    assert movie(server, row_id)[1] == before
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.reload()
    expect(cell(page.locator(f"#movie-{row_id}"), "director")).to_have_text(before)
    # Alt+H on a focused row opens the same history.
    cell(page.locator(f"#movie-{row_id}"), "name").focus()
    page.keyboard.press("Alt+h")
    expect(dialog).to_be_visible()
    news = dialog.locator(".history-new")
    expect(news.nth(0)).to_have_text(before)
    expect(news.nth(1)).to_have_text("M. Mann")


def test_a_stale_restore_shows_the_conflict(page: Page, server: Server) -> None:
    slow_network(page)
    row_id = movie_id(server, "Ran")
    row = show_movie(page, server, "Ran")
    edit_cell(page, row, "director", "Director", "A. Kurosawa")
    row.get_by_role("button", name="History of Ran").click()
    dialog = page.get_by_role("dialog", name="History of Ran")
    expect(dialog).to_be_visible()
    # Someone else saves the row meanwhile: the restore's version is stale.
    other = page.context.browser.new_context().new_page()
    edit_cell(other, show_movie(other, server, "Ran"), "director", "Director", "K. A.")
    other.context.close()
    assert movie(server, row_id)[1] == "K. A."
    dialog.get_by_role("button", name="Restore this value").first.click()
    expect(dialog).to_be_hidden()
    expect(page.locator(f"#movie-{row_id} form.cell-conflict")).to_be_visible()
    assert movie(server, row_id)[1] == "K. A."


def test_changes_page_filters_live_and_downloads(page: Page, server: Server) -> None:
    slow_network(page)
    row = show_movie(page, server, "Alien")
    edit_cell(page, row, "rating", "Rating", "8.7")
    page.get_by_role("navigation", name="Tables").get_by_role(
        "link", name="Changes"
    ).click()
    expect(page.get_by_role("heading", name="Changes", level=1)).to_be_visible()
    page.wait_for_load_state()  # htmx wires the form up once the page has loaded
    page.get_by_label("Table", exact=True).select_option("ratings")
    expect(page).to_have_url(f"{server.url}/changes?table=ratings&per_page=50")
    tables = page.locator("tr.change > td:nth-child(3)")
    expect(tables.first).to_have_text("ratings")
    expect(tables.filter(has_text="movies")).to_have_count(0)
    page.get_by_label("Table", exact=True).select_option("movies")
    page.get_by_label("Row").fill(str(movie_id(server, "Alien")))
    expect(page.locator("tr.change").first).to_contain_text("8.7")
    page.get_by_label("Since").fill("2000-01-01")
    expect(page).to_have_url(re.compile(r"since=2000-01-01"))
    expect(page.locator("tr.change").first).to_contain_text("8.7")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["id", "set_id", "at", "who"]
    assert any('"rating":8.7' in r[8] for r in rows[1:])
    assert all(r[4] == "movies" for r in rows[1:])


def test_show_older_pages_a_long_history(page: Page, server: Server) -> None:
    slow_network(page)
    row_id = movie_id(server, "Rashomon")
    ((earlier,),) = server.query(
        "SELECT count(*) FROM changes WHERE table_name = 'movies' AND row_id = :id",
        id=row_id,
    )
    # A long history, as years of edits leave it: 205 changes of the director.
    write(
        server,
        "INSERT INTO changes (set_id, at, who, table_name, row_id, op, old, new,"
        " version) VALUES (:set, :at, 'archivist', 'movies', :row, 'update',"
        " :old, :new, 2)",
        [
            {
                "set": 9_000_000 + i,
                "at": 1_600_000_000_000 + i * 60_000,
                "row": row_id,
                "old": f'{{"director":"Director {i}"}}',
                "new": f'{{"director":"Director {i + 1}"}}',
            }
            for i in range(205)
        ],
    )
    row = show_movie(page, server, "Rashomon")
    row.get_by_role("button", name="History of Rashomon").click()
    dialog = page.get_by_role("dialog", name="History of Rashomon")
    expect(dialog).to_be_visible()
    entries = dialog.locator(".history-entry")
    expect(entries).to_have_count(200)
    expect(entries.first.locator(".history-new")).to_have_text("Director 205")
    expect(entries.last.locator(".history-new")).to_have_text("Director 6")

    older = dialog.get_by_role("link", name="Show older")
    older.click()
    # The older changes join the list below; the panel stays open, and the
    # focus moves to them.
    expect(entries.nth(200).locator(".history-new")).to_have_text("Director 5")
    expect(entries.nth(204).locator(".history-new")).to_have_text("Director 1")
    expect(dialog.locator("ol.history-list").last).to_be_focused()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="History of Rashomon")).to_be_visible()
    # That was all (a change lists a line per field): no older page.
    expect(dialog.get_by_role("link", name="Show older")).to_have_count(0)
    assert entries.count() >= 205 + earlier
