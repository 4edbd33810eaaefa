"""The scripts clone what the server drew (issue 13): the import's size check."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.conftest import Server

FILE = b"id,name,director,rating\r\n,A film,Someone,5.0\r\n"


def test_a_file_over_the_limit_gets_the_servers_message_markup(
    page: Page, server: Server
) -> None:
    page.goto(server.url + "/import")
    # The limit is 64 MB; lower the one the page states, which is what the check reads.
    page.locator("#import-form").evaluate("form => { form.dataset.maxBytes = '10'; }")
    page.get_by_label("Movies").check()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "films.csv", "mimeType": "text/csv", "buffer": FILE}]
    )
    page.get_by_role("button", name="Upload and preview").click()

    message = page.locator("#import-result > .error-message")
    expect(message).to_have_attribute("role", "alert")
    expect(message.locator("strong")).to_have_text("This file cannot be imported.")
    expect(message.locator(".error-detail")).to_have_text(
        "This file is 0.0 MB; the import limit is 0 MB."
    )
    expect(page.locator("#import-preview")).to_have_count(0)  # nothing was sent
