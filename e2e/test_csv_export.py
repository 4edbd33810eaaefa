"""Journey: filter and sort the table, click "Download CSV", get exactly those rows."""

from __future__ import annotations

import csv
import io

from playwright.sync_api import Page, expect

from e2e.conftest import Server


def shown_ids(page: Page) -> list[int]:
    """The ids of the movie rows on the page, top to bottom."""
    ids = page.locator("#movie-rows > tr.data-row").evaluate_all(
        "rows => rows.map(r => r.id)"
    )
    return [int(i.removeprefix("movie-")) for i in ids]


def download(page: Page, link_name: str) -> tuple[str, bytes]:
    """Click a download link; return the file name and the bytes."""
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name).click()
    got = info.value
    assert got.failure() is None  # the transfer ended cleanly
    with open(got.path(), "rb") as f:
        return got.suggested_filename, f.read()


def test_download_has_the_filtered_rows_in_the_shown_order(
    page: Page, server: Server
) -> None:
    page.goto(server.url + "/movies")
    page.get_by_role("searchbox", name="Search movies").fill("the")
    expect(page).to_have_url(server.url + "/movies?q=the")
    page.get_by_role("spinbutton", name="Minimum rating").fill("8.5")
    expect(page).to_have_url(server.url + "/movies?q=the&min_rating=8.5")
    page.get_by_role("link", name="Rating", exact=True).click()  # sort by rating
    expect(page).to_have_url(server.url + "/movies?q=the&min_rating=8.5&sort=rating")
    ids = shown_ids(page)
    (matching,) = server.query(
        "SELECT count(*) FROM movies WHERE rating >= 8.5 AND"
        " (lower(name) LIKE '%the%' OR lower(director) LIKE '%the%')"
    )[0]
    assert 1 < len(ids) == matching  # all on one page

    name, data = download(page, "Download CSV")
    assert name.startswith("movies-") and name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == ["id", "name", "director", "rating"]
    assert [int(r[0]) for r in rows[1:]] == ids
    stored = {
        i: (n, d, f"{r:.1f}")
        for i, n, d, r in server.query(
            "SELECT id, name, director, rating FROM movies WHERE rating IS NOT NULL"
        )
    }
    assert [tuple(r[1:]) for r in rows[1:]] == [stored[i] for i in ids]

    excel_name, excel = download(page, "CSV for Excel")
    assert excel_name == name
    assert excel == b"\xef\xbb\xbf" + data
