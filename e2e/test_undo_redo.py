"""Journey: Ctrl+Z and Ctrl+Shift+Z of my own edits; another's edit blocks an undo."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.conftest import Server
from e2e.live import cell, edit, movie, movie_id, saved, show_movie, slow_network


def test_ctrl_z_undoes_an_edit_and_ctrl_shift_z_redoes_it(
    page: Page, server: Server
) -> None:
    slow_network(page)
    row_id = movie_id(server, "Rashomon")
    before = movie(server, row_id)
    assert before is not None
    row = show_movie(page, server, "Rashomon")
    undo = page.get_by_role("button", name="Undo", exact=True)
    redo = page.get_by_role("button", name="Redo", exact=True)
    expect(undo).to_be_disabled()
    expect(redo).to_be_disabled()

    edit(row, "rating", "Rating", "1.5")
    saved(page)
    assert movie(server, row_id)[2] == 1.5
    what = f"rating of Rashomon {before[2]:.1f} → 1.5"
    expect(undo).to_be_enabled()
    expect(undo).to_have_attribute("title", what)
    expect(undo).to_have_accessible_description(what)

    # The focus is back on the cell (Enter moved it down): Ctrl+Z in the table.
    cell(row, "name").focus()
    page.keyboard.press("Control+z")
    expect(cell(row, "rating")).to_have_text(f"{before[2]:.1f}")
    expect(page.locator("#change-message")).to_have_text(f"Undone: {what}.")
    assert movie(server, row_id)[2] == before[2]
    expect(redo).to_have_accessible_description(what)
    expect(undo).to_be_disabled()

    page.reload()
    row = page.locator(f"#movie-{row_id}")
    expect(cell(row, "rating")).to_have_text(f"{before[2]:.1f}")
    expect(redo).to_be_enabled()  # the tab's stack outlives a reload

    cell(row, "name").focus()
    page.keyboard.press("Control+Shift+z")
    expect(cell(row, "rating")).to_have_text("1.5")
    assert movie(server, row_id)[2] == 1.5
    expect(undo).to_have_accessible_description(what)

    # And the buttons do the same.
    undo.click()
    expect(cell(row, "rating")).to_have_text(f"{before[2]:.1f}")
    assert movie(server, row_id)[2] == before[2]


def test_ctrl_z_in_an_editor_is_the_browsers_own(page: Page, server: Server) -> None:
    row_id = movie_id(server, "Ikiru")
    row = show_movie(page, server, "Ikiru")
    edit(row, "director", "Director", "Someone")
    saved(page)
    cell(row, "director").click()
    box = row.get_by_role("textbox", name="Director")
    box.press("End")
    box.type("X")
    box.press("Control+z")  # the typing is undone, not the saved edit
    expect(box).to_have_value("Someone")
    box.press("Escape")
    assert movie(server, row_id)[1] == "Someone"


def test_another_persons_change_blocks_the_undo_with_the_message(
    page: Page, other: Page, server: Server
) -> None:
    slow_network(page)
    slow_network(other)
    row_id = movie_id(server, "Seven Samurai")
    before = movie(server, row_id)
    assert before is not None
    row = show_movie(page, server, "Seven Samurai")
    edit(row, "rating", "Rating", "2.5")
    saved(page)

    theirs = show_movie(other, server, "Seven Samurai")
    edit(theirs, "rating", "Rating", "3.5")
    saved(other)
    assert movie(server, row_id)[2] == 3.5

    undo = page.get_by_role("button", name="Undo", exact=True)
    what = f"rating of Seven Samurai {before[2]:.1f} → 2.5"
    undo.click()
    message = f"Not done: since then, anonymous changed rating of movies {row_id}."
    expect(page.locator("#change-message")).to_have_text(message)
    expect(page.locator("#toasts .toast-error")).to_contain_text(message)
    assert movie(server, row_id)[2] == 3.5
    # The refused undo stays on this tab's stack, still saying what it would do.
    expect(undo).to_be_enabled()
    expect(undo).to_have_accessible_description(what)

    # The other person takes their change back (their own Undo); mine now goes.
    theirs_undo = other.get_by_role("button", name="Undo", exact=True)
    expect(theirs_undo).to_have_accessible_description(
        "rating of Seven Samurai 2.5 → 3.5"
    )
    theirs_undo.click()
    expect(cell(theirs, "rating")).to_have_text("2.5")
    assert movie(server, row_id)[2] == 2.5
    undo.click()
    expect(page.locator("#change-message")).to_have_text(f"Undone: {what}.")
    expect(cell(row, "rating")).to_have_text(f"{before[2]:.1f}")
    expect(undo).to_be_disabled()
    page.reload()
    expect(cell(page.locator(f"#movie-{row_id}"), "rating")).to_have_text(
        f"{before[2]:.1f}"
    )
    assert movie(server, row_id)[2] == before[2]


FILE = b"id,name,director,rating\r\n,Undo Me Film,Ann Undo,6.1\r\n"


def test_undo_this_import(page: Page, server: Server) -> None:
    page.goto(server.url + "/import")
    page.get_by_label("Movies").check()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "undo.csv", "mimeType": "text/csv", "buffer": FILE}]
    )
    page.get_by_role("button", name="Upload and preview").click()
    page.get_by_role("button", name="Import 1 row").click()
    expect(page.locator("#import-done")).to_contain_text("1 new and 0 changed")
    assert server.query("SELECT name FROM movies WHERE director = 'Ann Undo'")

    page.get_by_role("button", name="Undo this import").click()
    expect(page.locator("#import-done")).to_contain_text("This import was undone")
    assert not server.query("SELECT name FROM movies WHERE director = 'Ann Undo'")
    page.reload()
    expect(page.locator("#import-done")).to_contain_text("This import was undone")
    expect(page.get_by_role("button", name="Undo this import")).to_have_count(0)
