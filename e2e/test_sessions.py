"""Journey: saves survive a session changed in another tab; messages don't pile up."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, Route, expect

from e2e.conftest import ACCOUNT, Server
from e2e.live import (
    accept_dialogs,
    cell,
    movie,
    movie_id,
    saved,
    show_movie,
    slow_network,
)


def sign_in(page: Page, server: Server) -> None:
    """Sign in through the header link and the form."""
    page.goto(server.url + "/movies")
    page.locator("header").get_by_role("link", name="Sign in").click()
    page.get_by_label("Name").fill(ACCOUNT[0])
    page.get_by_label("Password").fill(ACCOUNT[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header")).to_contain_text(ACCOUNT[0])


def sign_out(page: Page, server: Server) -> None:
    """Sign out with the header button."""
    page.goto(server.url + "/movies")
    header = page.locator("header")
    header.get_by_role("button", name="Sign out", exact=True).click()
    expect(header.get_by_role("link", name="Sign in")).to_be_visible()


def edit(row: Locator, field: str, label: str, typed: str) -> None:
    """Open a cell's editor with a click, type and press Enter."""
    cell(row, field).click()
    box = row.get_by_role("textbox", name=label)
    box.fill(typed)
    box.press("Enter")


def focus_on_body(page: Page) -> bool:
    """True when the focus has been dropped (on <body> or nowhere)."""
    return page.evaluate(
        "() => !document.activeElement || document.activeElement === document.body"
    )


def test_stale_token_is_refreshed_and_the_save_goes_through(
    page: Page, account_server: Server
) -> None:
    # issue 10: signing out and in again in another tab changes the session and
    # its CSRF token; a save from the old page fetches the new token and retries.
    row_id = movie_id(account_server, "Amadeus")
    sign_in(page, account_server)
    slow_network(page)
    row = show_movie(page, account_server, "Amadeus")
    elsewhere = page.context.new_page()
    sign_out(elsewhere, account_server)
    sign_in(elsewhere, account_server)

    refreshed: list[str] = []
    page.on(
        "request",
        lambda request: (
            refreshed.append(request.url) if "/csrf-token" in request.url else None
        ),
    )
    edit(row, "director", "Director", "M. Forman")
    saved(page)
    expect(cell(row, "director")).to_have_text("M. Forman")
    expect(page.get_by_role("alert")).to_have_count(0)
    assert refreshed, "the page's token was stale: it should have fetched a new one"
    assert movie(account_server, row_id)[1] == "M. Forman"
    page.reload()
    expect(cell(page.locator(f"#movie-{row_id}"), "director")).to_have_text("M. Forman")


def sign_in_again_and_retry(
    page: Page, server: Server, name: str, was: str, typed: str
) -> Locator:
    """Sign out in another tab, save a director, sign in there, Retry; the row."""
    row_id = movie_id(server, name)
    sign_in(page, server)
    slow_network(page)
    row = show_movie(page, server, name)
    elsewhere = page.context.new_page()
    sign_out(elsewhere, server)

    edit(row, "director", "Director", typed)
    saved(page)
    box = row.get_by_role("textbox", name="Director")
    expect(box).to_have_value(typed)
    expect(box).to_be_focused()
    expect(cell(row, "director").get_by_role("alert")).to_contain_text("Not saved")
    toast = page.locator("#toasts > .toast-error")
    expect(toast).to_have_count(1)
    link = toast.get_by_role("link", name="Sign in")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("target", "_blank")
    retry = toast.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    assert movie(server, row_id)[1] == was

    sign_in(elsewhere, server)
    retry.click()
    saved(page)
    expect(cell(row, "director")).to_have_text(typed)
    return row


def test_signed_out_elsewhere_keeps_the_text_and_retries(
    page: Page, account_server: Server
) -> None:
    # issue 10: signed out in another tab, a save keeps the typed text in its
    # editor and offers to sign in (in a new tab) and retry.
    sign_in_again_and_retry(
        page, account_server, "Goodfellas", "Martin Scorsese", "M. Scorsese"
    )
    expect(page.get_by_role("alert")).to_have_count(0)
    row_id = movie_id(account_server, "Goodfellas")
    assert movie(account_server, row_id)[1] == "M. Scorsese"
    page.reload()
    expect(cell(page.locator(f"#movie-{row_id}"), "director")).to_have_text(
        "M. Scorsese"
    )


def test_focus_after_retry(page: Page, account_server: Server) -> None:
    # issue 10: focus is never dropped to <body>, also after a toast's Retry.
    row = sign_in_again_and_retry(
        page, account_server, "Amélie", "Jean-Pierre Jeunet", "J.-P. Jeunet"
    )
    assert not focus_on_body(page)
    expect(row.locator(":focus")).to_have_count(1)


def test_a_failing_save_twice_shows_one_message(
    page: Page, account_server: Server
) -> None:
    # issue 10: the same save failing again replaces its message, never adds one.
    row_id = movie_id(account_server, "Se7en")
    sign_in(page, account_server)
    slow_network(page)
    row = show_movie(page, account_server, "Se7en")
    page.route(
        f"**/movies/{row_id}*",
        lambda route: (
            route.fulfill(status=500, body="")
            if route.request.method == "PATCH"
            else route.continue_()
        ),
    )
    edit(row, "name", "Name", "Seven")
    saved(page)
    box = row.get_by_role("textbox", name="Name")
    expect(box).to_have_value("Seven")
    expect(box).to_be_focused()
    box.press("Enter")  # the same save again
    saved(page)
    expect(box).to_have_value("Seven")
    messages = cell(row, "name").get_by_role("alert")
    expect(messages).to_have_count(1)
    expect(messages).to_contain_text("Not saved")
    expect(page.locator("#toasts > .toast")).to_have_count(0)
    assert movie(account_server, row_id)[0] == "Se7en"


def test_error_toast_is_replaced_not_stacked(
    page: Page, account_server: Server
) -> None:
    # issue 10: a save failing while its cell is being edited again is said in a
    # toast; failing again replaces that toast. Escape dismisses a focused one.
    row_id = movie_id(account_server, "City of God")
    sign_in(page, account_server)
    slow_network(page)
    row = show_movie(page, account_server, "City of God")
    held: list[Route] = []
    page.route(
        f"**/movies/{row_id}*",
        lambda route: (
            held.append(route) if route.request.method == "PATCH" else route.continue_()
        ),
    )
    toasts = page.locator("#toasts > .toast")
    for n, typed in enumerate(["Cidade de Deus", "Cidade de Deus (2002)"], 1):
        with page.expect_request(lambda request: request.method == "PATCH"):
            edit(row, "name", "Name", typed)
        cell(row, "name").click()  # editing the cell again while it is saved
        expect(row.get_by_role("textbox", name="Name")).to_be_focused()
        assert len(held) == n
        held[-1].fulfill(status=500, body="")
        expect(toasts).to_have_count(1)
        expect(toasts).to_contain_text(f"You had typed: “{typed}”")
        expect(toasts).to_have_attribute("role", "alert")
    saved(page)
    assert movie(account_server, row_id)[0] == "City of God"

    toasts.get_by_role("button", name="Dismiss").focus()
    page.keyboard.press("Escape")
    expect(toasts).to_have_count(0)
    assert not focus_on_body(page)


def test_success_toast_goes_by_itself(page: Page, account_server: Server) -> None:
    # issue 10: a success message ("Deleted …" with Undo) dismisses itself.
    accept_dialogs(page)
    sign_in(page, account_server)
    slow_network(page)
    row = show_movie(page, account_server, "Spirited Away")
    row.get_by_role("button", name="Delete Spirited Away").click()
    toast = page.locator(".toast").filter(has_text="Deleted “Spirited Away”.")
    expect(toast).to_be_visible()
    page.mouse.move(0, 0)  # not pointing at it: it would stay
    expect(toast).to_have_count(0, timeout=15_000)
