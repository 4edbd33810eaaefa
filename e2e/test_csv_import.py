"""Journey: upload a CSV on the Import page, read the preview, import, see the rows."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.conftest import Server

FILE = (
    b"id,name,director,rating\r\n"
    b",Imported Film One,Ana Import,7.1\r\n"
    b',"Imported Film, Two",Bo Import,6.4\r\n'
    b",=Not a formula,Cy Import,5.0\r\n"
)


def test_import_a_file_and_see_the_rows(page: Page, server: Server) -> None:
    page.goto(server.url + "/movies")
    page.get_by_role("link", name="Import CSV").click()
    expect(page).to_have_url(server.url + "/import")
    page.get_by_label("Movies").check()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "films.csv", "mimeType": "text/csv", "buffer": FILE}]
    )
    page.get_by_role("button", name="Upload and preview").click()

    preview = page.locator("#import-preview")
    counts = preview.get_by_role("table", name="What the import would do")
    expect(counts.get_by_role("row", name="New")).to_contain_text("2")
    expect(counts.get_by_role("row", name="Invalid")).to_contain_text("1")
    errors = preview.get_by_role("table", name="Invalid rows")
    expect(errors.get_by_role("row").nth(1)).to_contain_text("4name")
    expect(errors).to_contain_text("starts with '='")
    expect(page).to_have_url(server.url + "/import/" + page.url.rsplit("/", 1)[1])
    assert not server.query("SELECT id FROM movies WHERE director = 'Ana Import'")

    page.get_by_role("button", name="Import 2 rows").click()
    expect(page.locator("#import-done")).to_contain_text("2 new and 0 changed")
    stored = server.query(
        "SELECT name, rating FROM movies WHERE director LIKE '% Import' ORDER BY name"
    )
    assert stored == [("Imported Film One", 7.1), ("Imported Film, Two", 6.4)]

    page.get_by_role("link", name="Open the movies table").click()
    page.get_by_role("searchbox", name="Search movies").fill("Imported Film")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Imported Film One")
    expect(rows.nth(1)).to_contain_text("Imported Film, Two")
