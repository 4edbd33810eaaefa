"""READ_ONLY with accounts says read-only, not "sign in" (issue 12, item 9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import dispose
from tests.live_html import parse
from tests.security.conftest import add_user, build_app


@pytest.fixture
def read_only(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """A read-only server that has accounts."""
    app = build_app(database_url, tmp_path / "ro", READ_ONLY=True)
    add_user(app)
    yield app
    dispose(app)


@pytest.mark.parametrize("url", ["/movies", "/ratings", "/import"])
def test_every_page_says_read_only_and_invites_no_sign_in(
    read_only: Flask, url: str
) -> None:
    # Issue 12: signing in changes nothing on a read-only server.
    html = read_only.test_client().get(url).get_data(as_text=True)
    tree = parse(html)
    assert tree.find("p", class_="read-only-badge").text == "Read-only"
    banner = tree.find("p", class_="read-only-banner")
    assert "read-only" in banner.text
    assert "Sign in" not in html and "sign in" not in html


def test_the_import_page_is_read_only_for_everyone(read_only: Flask) -> None:
    html = read_only.test_client().get("/import").get_data(as_text=True)
    closed = parse(html).find("p", class_="import-closed")
    assert "this server is read-only for everyone" in closed.text
    assert parse(html).find("form", id="import-form") is None


def test_a_writable_server_has_no_banner(app: Flask) -> None:
    add_user(app)
    html = app.test_client().get("/movies").get_data(as_text=True)
    assert "read-only-banner" not in html
    assert "Sign in" in html
