"""Journey: a long table's header and a phone's first column stay; copy copies cells."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import Server

PHONE = {"width": 375, "height": 740}

# Select the data rows from `first` to `last` (indexes) as a mouse drag would.
SELECT_ROWS = """([first, last]) => {
  const rows = document.querySelectorAll('#movie-rows > tr.data-row');
  const range = document.createRange();
  range.setStartBefore(rows[first]);
  range.setEndAfter(rows[last]);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  return selection.toString();
}"""


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A page in a 375 px wide touch-screen phone."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_header_stays_in_view_while_the_page_scrolls(
    page: Page, server: Server
) -> None:
    # issue 10: the header stays visible on long pages (spreadsheet habit).
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(server.url + "/movies?per_page=100")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows).to_have_count(100)
    header = page.locator("#movie-table > .table-scroll > table > thead")
    name_header = header.get_by_role("columnheader", name="Name")
    start = name_header.bounding_box()
    assert start and start["y"] > 100  # below the page head and the add form

    page.evaluate("window.scrollTo(0, 2500)")
    assert page.evaluate("window.scrollY") == 2500
    expect(rows.first).not_to_be_in_viewport()
    expect(name_header).to_be_in_viewport()
    box = name_header.bounding_box()
    assert box and abs(box["y"]) < 1, box
    # Nothing scrolled over it: the header itself is what is drawn there.
    assert name_header.evaluate(
        """th => {
          const r = th.getBoundingClientRect();
          return th.contains(document.elementFromPoint(r.x + 8, r.y + r.height / 2));
        }"""
    )


def test_phone_scrolls_sideways_with_the_name_column_fixed(
    phone: Page, server: Server
) -> None:
    # issue 10: on a phone the first column stays put while the table scrolls.
    page = phone
    page.goto(server.url + "/movies?per_page=100")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows).to_have_count(100)
    scroller = page.locator("#movie-table > .table-scroll")
    widths = scroller.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert widths[0] > widths[1], widths
    scroller.scroll_into_view_if_needed()
    name_header = scroller.get_by_role("columnheader", name="Name")
    name = rows.nth(2).locator('td[data-field="name"]')
    director = rows.nth(2).locator('td[data-field="director"]')
    toggle = rows.nth(2).locator("td.toggle")
    before = {
        "header": name_header.bounding_box(),
        "name": name.bounding_box(),
        "director": director.bounding_box(),
        "toggle": toggle.bounding_box(),
    }
    assert all(before.values())
    # The frozen column's edge shadow grows only once the table is scrolled.
    edge = "el => getComputedStyle(el, '::after').opacity"
    assert float(name.evaluate(edge)) < 0.5

    scroller.evaluate("el => { el.scrollLeft = 200; }")
    assert scroller.evaluate("el => el.scrollLeft") == 200
    after = {
        "header": name_header.bounding_box(),
        "name": name.bounding_box(),
        "director": director.bounding_box(),
        "toggle": toggle.bounding_box(),
    }
    for key in ("header", "name", "toggle"):
        assert abs(after[key]["x"] - before[key]["x"]) < 1, (key, before, after)
    assert after["director"]["x"] < before["director"]["x"] - 150
    # The name sits on top of the cells scrolled under it.
    assert name.evaluate(
        """td => {
          const r = td.getBoundingClientRect();
          return td.contains(document.elementFromPoint(r.x + 8, r.y + r.height / 2));
        }"""
    )
    page.wait_for_function(
        "el => getComputedStyle(el, '::after').opacity === '1'",
        arg=name.element_handle(),
    )

    # Down the table, the header sticks to the top of the scrolling box.
    top = scroller.bounding_box()["y"]
    scroller.evaluate("el => { el.scrollTop = 1500; }")
    assert scroller.evaluate("el => el.scrollTop") == 1500
    expect(name_header).to_be_in_viewport()
    assert abs(name_header.bounding_box()["y"] - top) < 2
    assert rows.first.bounding_box()["y"] < top


def test_copying_rows_copies_the_shown_cells_only(page: Page, server: Server) -> None:
    # issue 10: copied rows paste into a spreadsheet as the visible columns only.
    page.goto(server.url + "/movies?q=star&sort=name")
    rows = page.locator("#movie-rows > tr.data-row")
    expect(rows.first).to_be_visible()
    count = rows.count()
    assert count >= 5
    ids = [
        int(row_id.removeprefix("movie-"))
        for row_id in rows.evaluate_all("rows => rows.map(r => r.id)")
    ]
    stored = {
        row_id: (name, director or "—", "—" if rating is None else f"{rating:.1f}")
        for row_id, name, director, rating in server.query(
            "SELECT id, name, director, rating FROM movies"
        )
    }
    # The search includes movies with no rating, shown as "—" (read out "none").
    assert any(stored[i][2] == "—" for i in ids)

    text = page.evaluate(SELECT_ROWS, [0, count - 1])

    for hidden in ("Show ratings", "Delete", "none", "Edit"):
        assert hidden not in text
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == count
    for row_id, line in zip(ids, lines, strict=True):
        cells = line.split("\t")
        # name, director, rating, ratings summary: no toggle or actions column.
        assert len(cells) == 4, line
        assert tuple(cells[:3]) == stored[row_id]
