"""Journey: axe-core finds no serious or critical problem on the tables' screens.

axe-core is vendored in e2e/vendor (MPL-2.0, see axe-LICENSE.txt). Our CSP forbids
inline scripts, which is how Playwright injects one, so these pages run in a
context that bypasses the CSP; the app's pages are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from e2e.conftest import Server
from e2e.live import cell, movie_id

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"


@pytest.fixture
def audited(browser: Browser) -> Iterator[Page]:
    """A page that may have axe-core injected."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()


def serious_violations(page: Page) -> list[str]:
    """Run axe on the page; describe each serious or critical violation."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    found = []
    for violation in result["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [n["target"] for n in violation["nodes"][:3]]
            found.append(f"{violation['id']} ({violation['impact']}): {targets}")
    return found


def test_movies_page(audited: Page, server: Server) -> None:
    audited.goto(server.url + "/movies")
    expect(audited.locator("#movie-rows > tr.data-row")).to_have_count(50)
    assert serious_violations(audited) == []


def test_expanded_ratings_row_editor_and_errors(audited: Page, server: Server) -> None:
    row_id = movie_id(server, "Amadeus")
    audited.goto(server.url + "/movies?q=amadeus")
    row = audited.locator(f"#movie-{row_id}")
    row.get_by_role("button", name="Show ratings for Amadeus").click()
    child = audited.locator(f"#movie-{row_id}-ratings")
    expect(child).to_be_visible()
    # With an add form showing its errors and a cell editor open, too.
    child.get_by_role("button", name="Add rating").click()
    expect(child.get_by_role("alert").first).to_be_visible()
    cell(row, "director").click()
    expect(row.get_by_role("textbox", name="Director")).to_be_focused()
    assert serious_violations(audited) == []


def test_ratings_page(audited: Page, server: Server) -> None:
    audited.goto(server.url + "/ratings?sort=-rating")
    expect(audited.locator("#rating-rows > tr.data-row").first).to_be_visible()
    assert serious_violations(audited) == []


def test_no_js_edit_page(audited: Page, server: Server) -> None:
    audited.goto(server.url + f"/movies/{movie_id(server, 'Heat')}/edit")
    expect(audited.get_by_role("button", name="Save")).to_be_visible()
    assert serious_violations(audited) == []


def test_grid_keys_messages_and_refused_saves(audited: Page, server: Server) -> None:
    # Issue 10: the keys panel, a refused save's editor and a message, at once.
    row_id = movie_id(server, "Ran")
    audited.goto(server.url + "/movies?q=ran")
    row = audited.locator(f"#movie-{row_id}")
    cell(row, "name").focus()
    audited.keyboard.press("Delete")  # a required field: its message instead
    expect(row.get_by_role("alert")).to_have_text("Name is required.")
    audited.route("**/movies/*", lambda route: route.fulfill(status=503, body=""))
    cell(row, "director").click()
    row.get_by_role("textbox", name="Director").fill("Someone")
    row.get_by_role("textbox", name="Director").press("Enter")
    expect(cell(row, "director").get_by_role("alert")).to_contain_text("Not saved")
    audited.locator("details.grid-keys summary").click()
    expect(audited.locator("details.grid-keys")).to_have_attribute("open", "")
    assert serious_violations(audited) == []


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A touch-screen phone that may have axe-core injected."""
    context = browser.new_context(
        bypass_csp=True,
        viewport={"width": 375, "height": 740},
        has_touch=True,
        is_mobile=True,
    )
    yield context.new_page()
    context.close()


def test_phone_with_an_editor_open(phone: Page, server: Server) -> None:
    # Issue 10: the sticky column and the touch Save/Cancel buttons.
    row_id = movie_id(server, "Heat")
    phone.goto(server.url + "/movies?q=heat")
    row = phone.locator(f"#movie-{row_id}")
    cell(row, "rating").tap()
    expect(row.get_by_role("button", name="Save")).to_be_visible()
    assert serious_violations(phone) == []
