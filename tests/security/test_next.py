"""Redirects stay home: one rule for every `next` (issue 12, items 3 and 4)."""

from __future__ import annotations

import pytest
from flask import Flask

from app.security import local_path
from tests.security.conftest import Visitor, add_user, snapshot

# Each was followed off-site (a tab or newline is dropped by the browser: "/\t/x"
# becomes //x), or answered 500 after the write had committed (CR/LF in Location).
HOSTILE = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\nX: y",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    " /movies",
    "/movies\x00",
    "/\u2028/evil.example",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_local_path_refuses(target: str) -> None:
    assert local_path(target) is None


@pytest.mark.parametrize("target", ["/movies", "/movies?q=star+wars&sort=-rating"])
def test_local_path_keeps_a_path_of_ours(target: str) -> None:
    assert local_path(target) == target


@pytest.mark.parametrize("target", HOSTILE)
def test_no_js_writes_fall_back_to_the_list(
    app: Flask, visitor: Visitor, sample: dict, target: str
) -> None:
    # Issue 12: delete, save, create and undo of the no-JS forms.
    movie = sample["alien"]
    token = visitor.token()
    delete = visitor.client.post(
        f"/movies/{movie}/delete", data={"csrf_token": token, "next": target}
    )
    assert delete.status_code == 303
    assert delete.headers["Location"] == "/movies"
    created = visitor.client.post(
        "/movies",
        data={"csrf_token": token, "next": target, "name": "N", "director": "D"},
    )
    assert created.status_code == 303
    assert created.headers["Location"] == "/movies"
    saved = visitor.client.post(
        f"/movies/{sample['blade']}",
        data={
            "csrf_token": token,
            "next": target,
            "version": "1",
            "name": "Blade Runner",
            "director": "R. Scott",
            "rating": "8.0",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["Location"] == "/movies"
    undo = visitor.client.post(
        "/movies/undo", data={"csrf_token": token, "next": target, "token": "x"}
    )
    assert undo.status_code in (303, 404)
    assert undo.headers.get("Location", "/movies") == "/movies"


@pytest.mark.parametrize("target", HOSTILE)
def test_edit_page_cancel_stays_home(
    visitor: Visitor, sample: dict, target: str
) -> None:
    page = visitor.client.get(
        f"/movies/{sample['alien']}/edit", query_string={"next": target}
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<a href="/movies">Cancel</a>' in html
    assert "evil.example" not in html


@pytest.mark.parametrize("target", HOSTILE)
def test_sign_in_falls_back_to_the_list(
    app: Flask, visitor: Visitor, target: str
) -> None:
    add_user(app)
    before = snapshot(app)
    response = visitor.client.post(
        "/login",
        data={
            "name": "ana",
            "password": "correct horse battery",
            "csrf_token": visitor.token(),
            "next": target,
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/movies"
    assert snapshot(app)["movies"] == before["movies"]
