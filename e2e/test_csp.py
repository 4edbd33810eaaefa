"""Journey: use every feature under the Content-Security-Policy; nothing is blocked.

A listener installed before any page script records `securitypolicyviolation`
events, and the console is watched for the browser's CSP messages.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from e2e.conftest import Server
from e2e.live import accept_dialogs, cell, movie_id, show_movie

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"}` +
    ` at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


@pytest.fixture
def watched(page: Page) -> Iterator[tuple[Page, list[str]]]:
    """The page, with CSP violations and console errors collected; none allowed."""
    console: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            console.append(message.text)

    page.on("console", listen)
    page.add_init_script(RECORD_VIOLATIONS)
    yield page, console
    violations = page.evaluate("window.__cspViolations || []")
    assert violations == []
    assert [m for m in console if "Content Security Policy" in m] == []


def violations(page: Page) -> list[str]:
    """The violations recorded on the current document so far."""
    return page.evaluate("window.__cspViolations")


def test_every_feature_runs_under_the_policy(
    watched: tuple[Page, list[str]], server: Server
) -> None:
    page, console = watched
    accept_dialogs(page)
    page.goto(server.url + "/movies")
    policy = page.request.get(server.url + "/movies").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy

    # Search as you type, filter, sort (and shift-sort), page.
    page.get_by_role("searchbox", name="Search movies").press_sequentially("the")
    expect(page).to_have_url(server.url + "/movies?q=the")
    page.locator("#movie-sort-rating").click()
    expect(page.locator("#movie-sort-rating").locator("xpath=..")).to_have_attribute(
        "aria-sort", "ascending"
    )
    page.locator("#movie-sort-name").click(modifiers=["Shift"])
    expect(page).to_have_url(server.url + "/movies?q=the&sort=rating,name")
    page.goto(server.url + "/movies?per_page=10")
    page.locator("#movie-page-next").click()
    expect(page).to_have_url(server.url + "/movies?page=2&per_page=10")
    assert violations(page) == []

    # Edit a cell inline, expand ratings, add and edit a rating.
    row_id = movie_id(server, "Goodfellas")
    row = show_movie(page, server, "Goodfellas")
    cell(row, "director").click()
    box = row.get_by_role("textbox", name="Director")
    box.fill("Martin Scorsese.")
    box.press("Enter")
    expect(cell(row, "director")).to_have_text("Martin Scorsese.")
    row.get_by_role("button", name="Show ratings for Goodfellas").click()
    child = page.locator(f"#movie-{row_id}-ratings")
    expect(child).to_be_visible()
    child.get_by_role("textbox", name="Rating").fill("9")
    child.get_by_role("textbox", name="Author").fill("CSP Tester")
    child.get_by_role("button", name="Add rating").click()
    expect(child.locator("tbody tr.data-row").first).to_contain_text("CSP Tester")

    # An invalid edit (422 message), then delete a movie and undo it.
    cell(row, "rating").click()
    box = row.get_by_role("textbox", name="Rating")
    box.fill("eleven")
    box.press("Enter")
    expect(row.get_by_role("alert")).to_be_visible()
    box.press("Escape")
    row.get_by_role("button", name="Delete Goodfellas").click()
    expect(page.locator(f"#movie-{row_id}")).to_have_count(0)
    page.locator(".toast").get_by_role("button", name="Undo").click()
    expect(page.locator(f"#movie-{row_id}")).to_contain_text("Goodfellas")
    assert violations(page) == []

    # The other screens: all ratings, the import page, an error page.
    page.get_by_role("link", name="Ratings", exact=True).first.click()
    expect(page.get_by_role("table", name="Ratings")).to_be_visible()
    page.goto(server.url + "/import")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto(server.url + "/movies?sort=nonsense")
    expect(page.get_by_role("alert")).to_contain_text("Cannot sort by")
    assert [m for m in console if "Content Security Policy" in m] == []


def test_the_detector_sees_a_blocked_inline_script(page: Page, server: Server) -> None:
    # Guards the test above: an inline script must be blocked and recorded.
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(server.url + "/movies")
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__ran = true";
          document.body.append(s);
        }"""
    )
    expect(page.locator("body")).to_be_visible()
    page.wait_for_function("window.__cspViolations.length > 0")
    assert page.evaluate("window.__ran === undefined")
    assert "script-src" in violations(page)[0]
