"""Hostile text typed into every field comes back inert in every page and fragment.

Payloads go in through the real forms (so the create responses are checked too),
then every view that shows them is fetched: the markup must contain no script,
no event handler, no injected element, and the payload must show as plain text
or an attribute value. Formula strings must come out of the CSV as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from flask import Flask

from tests.security.conftest import Visitor, snapshot
from tests.security.safe_html import assert_safe_html, shown

PAYLOADS = [
    '<script>alert("name")</script>',
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)' x='",
    "</td></tr><svg onload=alert(1)>",
    '{{ 7*7 }} {% print "ssti" %}',
    "javascript:alert(document.cookie)",
    '"}; alert(1); var x={"',
    "</textarea><iframe src=//evil.example>",
    "&lt;b&gt; &amp; &#39; &quot;",
]
FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0",
            "-2+3", "@SUM(A1:A9)", "\t=1"]  # fmt: skip


@dataclass
class Stored:
    """Ids of the hostile movie and rating."""

    movie: int
    rating: int
    payload: str


def store(app: Flask, visitor: Visitor, payload: str) -> Stored:
    """Create a movie and a rating holding the payload through the real endpoints."""
    create = visitor.send(
        "POST",
        "/movies",
        htmx=True,
        data={"name": payload, "director": payload[:120], "rating": "7"},
    )
    assert create.status_code == 200, create.get_data(as_text=True)
    assert_safe_html(create.get_data(as_text=True))
    assert shown(create.get_data(as_text=True), payload.strip())
    movie = snapshot(app)["movies"][-1][0]
    rate = visitor.send(
        "POST",
        f"/movies/{movie}/ratings",
        htmx=True,
        data={"rating": "5", "author": payload[:80]},
    )
    assert rate.status_code == 200, rate.get_data(as_text=True)
    assert_safe_html(rate.get_data(as_text=True))
    rating = snapshot(app)["ratings"][-1][0]
    return Stored(movie, rating, payload)


VIEWS = [
    ("movies-page", "GET", "/movies", False, None),
    ("movies-fragment", "GET", "/movies", True, None),
    ("movies-search-echo", "GET", "/movies?q={q}", False, None),
    ("movies-search-fragment", "GET", "/movies?q={q}", True, None),
    ("ratings-page", "GET", "/ratings", False, None),
    ("ratings-filter-echo", "GET", "/ratings?author={q80}", False, None),
    ("ratings-movie-filter", "GET", "/ratings?movie={q}", True, None),
    ("movie-row", "GET", "/movies/{movie}/row", True, None),
    ("movie-ratings-row", "GET", "/movies/{movie}/ratings", True, None),
    ("no-js-edit-page", "GET", "/movies/{movie}/edit?next=/movies", False, None),
    ("invalid-edit-422", "PATCH", "/movies/{movie}", True, "too-long"),
    ("conflict-409", "PATCH", "/movies/{movie}", True, "stale"),
    ("invalid-add-422", "POST", "/movies", True, "bad-rating"),
    ("sort-error-400", "GET", "/movies?sort={q}", True, None),
]


@pytest.fixture(params=PAYLOADS, ids=range(len(PAYLOADS)))
def stored(request: pytest.FixtureRequest, app: Flask) -> Iterator[Stored]:
    """A movie and a rating holding one payload."""
    yield store(app, Visitor(app.test_client()), request.param)


@pytest.mark.parametrize(
    ("view", "method", "url", "htmx", "body"), VIEWS, ids=[v[0] for v in VIEWS]
)
def test_payload_is_inert_everywhere(
    app: Flask,
    stored: Stored,
    view: str,
    method: str,
    url: str,
    htmx: bool,
    body: str | None,
) -> None:
    payload = stored.payload
    visitor = Visitor(app.test_client())
    target = url.format(
        movie=stored.movie,
        rating=stored.rating,
        q=_quote(payload),
        q80=_quote(payload[:80]),
    )
    data = {
        None: None,
        "too-long": {"director": payload * 20, "version": "1"},
        "stale": {"name": payload + "!", "version": "99"},
        "bad-rating": {"name": payload, "director": "D", "rating": payload},
    }[body]
    response = visitor.send(method, target, htmx=htmx, data=data)
    text = response.get_data(as_text=True)
    assert response.status_code in (200, 400, 409, 422), text[:500]
    assert_safe_html(text)
    assert shown(text, payload[:80]), f"{view}: payload not shown as text"


def _quote(text: str) -> str:
    """Percent-encode text for a query string."""
    return quote(text, safe="")


@pytest.mark.parametrize("formula", FORMULAS)
def test_formulas_export_as_text(app: Flask, formula: str) -> None:
    visitor = Visitor(app.test_client())
    stored = store(app, visitor, formula)
    response = visitor.client.get("/movies.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    by_id = {row[0]: row for row in rows[1:] if row}
    name = by_id[str(stored.movie)][1]
    # Text is trimmed on input; what is stored is written with a leading '.
    assert name == "'" + formula.strip()
    response = visitor.client.get("/ratings.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    authors = [row[2] for row in rows[1:] if row and row[0] == str(stored.rating)]
    assert authors and authors[0].startswith("'"), authors
