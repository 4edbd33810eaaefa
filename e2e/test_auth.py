"""Journey: with an account, sign in to edit, sign out, and see a write refused."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import Page, expect

from e2e.conftest import ACCOUNT, Server

# A write sent the way htmx sends it (CSRF token from the meta tag), from the page.
PATCH_FROM_PAGE = """async ([url, body]) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch(url, {
    method: "PATCH",
    headers: {"X-CSRFToken": token, "HX-Request": "true",
              "Content-Type": "application/x-www-form-urlencoded"},
    body,
  });
  return [response.status, await response.text()];
}"""


def sign_in(page: Page, server: Server, password: str = ACCOUNT[1]) -> None:
    """Sign in through the header link and the form."""
    page.goto(server.url + "/movies")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Name").fill(ACCOUNT[0])
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_and_out(page: Page, account_server: Server) -> None:
    page.goto(account_server.url + "/movies")
    header = page.locator("header")
    expect(header.get_by_role("link", name="Sign in")).to_be_visible()
    # Signed out: reading works, no edit controls at all.
    expect(page.get_by_role("table", name="Movies")).to_be_visible()
    expect(page.get_by_role("button", name="Add movie")).to_have_count(0)
    expect(page.locator("td.editable")).to_have_count(0)

    sign_in(page, account_server)
    expect(page).to_have_url(account_server.url + "/movies")
    expect(header).to_contain_text(ACCOUNT[0])
    expect(header.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Add movie")).to_be_visible()
    expect(page.locator("td.editable").first).to_be_visible()

    header.get_by_role("button", name="Sign out", exact=True).click()
    expect(header.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Add movie")).to_have_count(0)


def test_wrong_password_is_refused(page: Page, account_server: Server) -> None:
    sign_in(page, account_server, password="not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    expect(page.locator("header").get_by_role("link", name="Sign in")).to_be_visible()


def test_write_refused_when_signed_out(page: Page, account_server: Server) -> None:
    ((movie_id, name, version),) = account_server.query(
        "SELECT id, name, version FROM movies ORDER BY id LIMIT 1"
    )
    page.goto(account_server.url + "/movies")
    status, body = page.evaluate(
        PATCH_FROM_PAGE,
        [f"/movies/{movie_id}", urlencode({"name": "Hacked", "version": version})],
    )
    assert status == 403
    assert "Sign in to make changes." in body
    assert account_server.query(
        "SELECT name, version FROM movies WHERE id = :id", id=movie_id
    ) == [(name, version)]

    # The same request from a signed-in page goes through.
    sign_in(page, account_server)
    expect(page.locator("header")).to_contain_text(ACCOUNT[0])
    status, _ = page.evaluate(
        PATCH_FROM_PAGE,
        [f"/movies/{movie_id}", urlencode({"name": name + "!", "version": version})],
    )
    assert status == 200
    assert account_server.query(
        "SELECT name FROM movies WHERE id = :id", id=movie_id
    ) == [(name + "!",)]
