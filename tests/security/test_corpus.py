"""A corpus of hostile and malformed requests against the real URL contract.

Each case says how it is sent (method, URL, body, CSRF token, headers, as whom)
and what must come back: the status, a message in the body, and a database that
is exactly as it was. Every response is also checked for markup that could run
script. A case whose endpoint does not exist is skipped, never passed.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.conftest import dispose
from tests.security.conftest import (
    Visitor,
    add_user,
    build_app,
    multipart,
    snapshot,
)
from tests.security.safe_html import assert_safe_html

MB = 1024 * 1024
XSS = '<script>alert("x")</script>'


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer it must get."""

    id: str
    method: str
    url: str  # {movie} and {rating} are replaced by ids of sample rows
    status: int
    message: str
    data: dict[str, str] | None = None
    token: str | None = "valid"
    htmx: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    # "open" (no accounts), "accounts" (a user exists, not signed in),
    # "signed_in", or "read_only" (READ_ONLY=1, signed in)
    who: str = "open"
    upload: tuple[str, bytes] | None = None  # (file name, content) for /import


# Every write endpoint of the contract, with a body that would be valid.
WRITES: list[tuple[str, str, str, dict[str, str]]] = [
    ("create-movie", "POST", "/movies", {"name": "Heat", "director": "Michael Mann"}),
    ("patch-movie", "PATCH", "/movies/{movie}", {"name": "Aliens", "version": "1"}),
    ("delete-movie", "DELETE", "/movies/{movie}", {}),
    (
        "save-movie-nojs",
        "POST",
        "/movies/{movie}",
        {"name": "Aliens", "director": "James Cameron", "rating": "8", "version": "1"},
    ),
    ("delete-movie-nojs", "POST", "/movies/{movie}/delete", {}),
    ("undo", "POST", "/movies/undo", {"token": "x" * 32}),
    ("add-rating", "POST", "/movies/{movie}/ratings", {"rating": "7", "author": "Q"}),
    ("patch-rating", "PATCH", "/ratings/{rating}", {"rating": "3", "version": "1"}),
    ("delete-rating", "DELETE", "/ratings/{rating}", {}),
    ("import", "POST", "/import", {"table": "movies"}),
]

REFUSALS: list[Case] = []
for name, method, url, body in WRITES:
    REFUSALS += [
        Case(
            f"csrf-missing-{name}",
            method,
            url,
            400,
            "The CSRF token is missing.",
            body,
            token=None,
        ),
        Case(
            f"csrf-forged-{name}",
            method,
            url,
            400,
            "The CSRF token is invalid.",
            body,
            token="ImZvcmdlZCI.forged.token",
        ),
        Case(
            f"cross-site-{name}",
            method,
            url,
            403,
            "Cross-site request refused",
            body,
            headers={"Origin": "https://evil.example"},
        ),
        Case(
            f"signed-out-{name}",
            method,
            url,
            403,
            "Sign in to make changes.",
            body,
            who="accounts",
        ),
        Case(
            f"read-only-{name}",
            method,
            url,
            403,
            "This catalogue is read-only",
            body,
            who="read_only",
        ),
    ]

# Hostile list parameters: validated against the declaration, 400 with the reason.
QUERIES = [
    ("sort-sql", "/movies?sort=name;drop table movies", "Cannot sort by 'name;drop"),
    ("sort-comment", "/movies?sort=name--", "Cannot sort by 'name--'"),
    ("sort-column-number", "/movies?sort=1", "Cannot sort by '1'"),
    ("sort-undeclared", "/movies?sort=version", "Cannot sort by 'version'"),
    ("sort-private", "/ratings?sort=movie_id", "Cannot sort by 'movie_id'"),
    ("sort-xss", "/movies?sort=" + XSS, "Cannot sort by '<script>"),
    ("sort-twice", "/movies?sort=name,-name", "'name' appears twice"),
    ("sort-unicode", "/movies?sort=nаme", "Cannot sort by 'nаme'"),
    ("sort-long", "/movies?sort=" + "n" * 5000, "Cannot sort by 'nnnn"),
    ("per-page-negative", "/movies?per_page=-1", "per_page must be a whole number"),
    ("per-page-zero", "/movies?per_page=0", "per_page must be a whole number"),
    ("per-page-huge", "/movies?per_page=100000", "from 1 to 500"),
    ("per-page-text", "/ratings?per_page=all", "per_page must be a whole number"),
    ("page-10-20", f"/movies?page={10**20}", "page must be a whole number"),
    ("page-zero", "/movies?page=0", "page must be a whole number"),
    ("page-float", "/movies?page=1.5", "page must be a whole number"),
    ("page-arabic-digits", "/movies?page=٣", "page must be a whole number"),
    ("q-long", "/movies?q=" + "a" * 201, "at most 200 characters"),
    ("q-nul", "/movies?q=a%00b", "characters not allowed"),
    ("min-rating-text", "/movies?min_rating=abc", "Minimum rating must be a number."),
    ("min-rating-nan", "/movies?min_rating=NaN", "Minimum rating must be a number."),
    ("min-rating-inf", "/movies?min_rating=inf", "Minimum rating must be a number."),
    # Issue 12: an exponent is not a number (it was 1e999, "between 0 and 10").
    ("min-rating-big", "/movies?min_rating=1e999", "Minimum rating must be a number."),
    ("ratings-movie-id-sql", "/ratings?movie_id=1 OR 1=1", "must be a whole number"),
    ("ratings-author-long", "/ratings?author=" + "a" * 81, "at most 80 characters"),
    ("csv-sort-sql", "/movies.csv?sort=id);drop table movies", "Cannot sort by"),
    ("csv-per-page", "/ratings.csv?page=-5", "page must be a whole number"),
]
for name, url, message in QUERIES:
    REFUSALS.append(Case(f"query-{name}", "GET", url, 400, message))
    REFUSALS.append(Case(f"query-{name}-page", "GET", url, 400, message, htmx=False))

# Bad values and wrong types in writes: 422 (or 400/404) with the field's message.
REFUSALS += [
    Case("create-empty-name", "POST", "/movies", 422, "Name is required.",
         {"name": "", "director": "D"}),
    Case("create-blank-name", "POST", "/movies", 422, "Name is required.",
         {"name": " \t ", "director": "D"}),
    Case("create-long-name", "POST", "/movies", 422,
         "Name must be at most 200 characters.", {"name": "é" * 201, "director": "D"}),
    Case("create-long-director-xss", "POST", "/movies", 422,
         "Director must be at most 120 characters.",
         {"name": "N", "director": XSS * 10}),
    Case("create-nul", "POST", "/movies", 422,
         "Name contains characters that are not allowed.",
         {"name": "a\x00b", "director": "D"}),
    Case("create-escape-seq", "POST", "/movies", 422,
         "Director contains characters that are not allowed.",
         {"name": "N", "director": "\x1b[31mred"}),
    Case("create-rating-11", "POST", "/movies", 422, "Rating must be between 0 and 10.",
         {"name": "N", "director": "D", "rating": "11"}),
    Case("create-rating-text", "POST", "/movies", 422, "Rating must be a number.",
         {"name": "N", "director": "D", "rating": "abc"}),
    Case("create-rating-nan", "POST", "/movies", 422, "Rating must be a number.",
         {"name": "N", "director": "D", "rating": "NaN"}),
    # Issue 12: an exponent is not a number (it was "between 0 and 10").
    Case("create-rating-overflow", "POST", "/movies", 422,
         "Rating must be a number.",
         {"name": "N", "director": "D", "rating": "1e309"}),
    Case("create-rating-places", "POST", "/movies", 422,
         "Rating can have at most 1 decimal place.",
         {"name": "N", "director": "D", "rating": "8.55"}),
    Case("create-rating-sql", "POST", "/movies", 422, "Rating must be a number.",
         {"name": "N", "director": "D", "rating": "1; DROP TABLE movies"}),
    Case("create-huge-body", "POST", "/movies", 413,
         "The request is too large: the limit is 1 MB.",
         {"name": "a" * MB, "director": "D"}),
    Case("create-huge-body-nojs", "POST", "/movies", 413,
         "The request is too large: the limit is 1 MB.",
         {"name": "a" * MB, "director": "D"}, htmx=False),
    Case("patch-no-version", "PATCH", "/movies/{movie}", 400,
         "The row version is missing; reload the page.", {"name": "X"}),
    Case("patch-version-text", "PATCH", "/movies/{movie}", 400,
         "The row version must be a whole number.", {"name": "X", "version": "one"}),
    Case("patch-version-negative", "PATCH", "/movies/{movie}", 400,
         "The row version must be a whole number.", {"name": "X", "version": "-1"}),
    Case("patch-version-huge", "PATCH", "/movies/{movie}", 400,
         "The row version must be a whole number.",
         {"name": "X", "version": str(10**20)}),
    Case("patch-stale-version", "PATCH", "/movies/{movie}", 409,
         "Someone else changed this name meanwhile.",
         {"name": XSS, "version": "7"}),
    Case("patch-unknown-row", "PATCH", "/movies/999999", 404,
         "This movie was deleted by someone else.", {"name": "X", "version": "1"}),
    Case("patch-id-not-a-number", "PATCH", "/movies/1;drop", 404, "Not Found",
         {"name": "X", "version": "1"}),
    Case("patch-undeclared-column", "PATCH", "/movies/{movie}", 422,
         "Nothing to change.", {"id": "99", "created_at": "x", "version": "1"}),
    Case("patch-long-director", "PATCH", "/movies/{movie}", 422,
         "Director must be at most 120 characters.",
         {"director": "d" * 5000, "version": "1"}),
    Case("patch-rating-word", "PATCH", "/movies/{movie}", 422,
         "Rating must be a number.", {"rating": "ten", "version": "1"}),
    Case("patch-rating-move-movie", "PATCH", "/ratings/{rating}", 422,
         "Movie id cannot be set here.", {"movie_id": "2", "version": "1"}),
    Case("patch-rating-movie-name", "PATCH", "/ratings/{rating}", 422,
         "Movie cannot be set here.", {"movie_name": XSS, "version": "1"}),
    Case("patch-rating-zero", "PATCH", "/ratings/{rating}", 422,
         "Rating must be between 1 and 10.", {"rating": "0", "version": "1"}),
    Case("patch-rating-fraction", "PATCH", "/ratings/{rating}", 422,
         "Rating must be a whole number.", {"rating": "7.5", "version": "1"}),
    Case("add-rating-long-author", "POST", "/movies/{movie}/ratings", 422,
         "Author must be at most 80 characters.", {"rating": "5", "author": "a" * 81}),
    Case("add-rating-11", "POST", "/movies/{movie}/ratings", 422,
         "Rating must be between 1 and 10.", {"rating": "11", "author": XSS}),
    Case("add-rating-unknown-movie", "POST", "/movies/999999/ratings", 404,
         "No movie with id 999999.", {"rating": "5", "author": "A"}),
    Case("delete-unknown-movie", "DELETE", "/movies/999999", 404,
         "This movie was deleted by someone else."),
    Case("undo-forged-token", "POST", "/movies/undo", 404,
         "This delete can no longer be undone.", {"token": "' OR 1=1 --"}),
    Case("method-put", "PUT", "/movies", 405, "Method Not Allowed",
         {"name": "N", "director": "D"}),
    Case("method-trace", "TRACE", "/movies", 405, "Method Not Allowed"),
]  # fmt: skip

# Hostile uploads: refused before anything is written (a preview writes nothing).
CSV_HEAD = b"id,name,director,rating\r\n"
REFUSALS += [
    Case("import-too-large", "POST", "/import", 413,
         "larger than the import limit of 4 MB",
         upload=("big.csv", CSV_HEAD + b",A,B,5\r\n" * 600_000)),
    Case("import-too-large-page", "POST", "/import", 413,
         "larger than the import limit of 4 MB", htmx=False,
         upload=("big.csv", CSV_HEAD + b",A,B,5\r\n" * 600_000)),
    Case("import-xss-file-name", "POST", "/import", 200,
         "Preview: <img src=x onerror=alert(1)>.csv",
         upload=("<img src=x onerror=alert(1)>.csv",
                 CSV_HEAD + b",Heat,Michael Mann,8.3\r\n")),
    Case("import-binary", "POST", "/import", 422, "it holds binary data",
         upload=("x.csv", bytes(range(256)) * 64)),
    Case("import-empty", "POST", "/import", 422, "The file is empty.",
         upload=("x.csv", b"")),
]  # fmt: skip

# Hostile but harmless reads: answered normally, nothing changes.
REFUSALS += [
    Case("read-q-sql", "GET", "/movies?q=' OR 1=1; DROP TABLE movies;--", 200,
         "0 of 3 movies"),
    Case("read-q-like-wildcards", "GET", "/movies?q=%25_%25", 200, "0 of 3 movies"),
    Case("read-q-xss-echoed", "GET", "/movies?q=" + XSS, 200, "0 of 3 movies",
         htmx=False),
    Case("read-q-unicode", "GET", "/movies?q=🎬 日本語 \u202e", 200, "0 of 3 movies"),
    Case("read-author-xss", "GET", "/ratings?author=" + XSS, 200, "0 of 4 ratings",
         htmx=False),
]  # fmt: skip


def route_exists(app: Flask, method: str, path: str) -> bool:
    """True when some endpoint answers this method and path."""
    adapter = app.url_map.bind("localhost")
    try:
        adapter.match(path.split("?", 1)[0], method=method)
    except (NotFound, MethodNotAllowed):
        return False
    return True


@pytest.fixture
def make(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Build apps on this test's database; dispose of them afterwards."""
    built: list[Flask] = []

    def build(**config: Any) -> Flask:
        app = build_app(database_url, tmp_path / f"instance{len(built)}", **config)
        built.append(app)
        return app

    yield build
    for app in built:
        dispose(app)


def seed(app: Flask) -> dict[str, int]:
    """Three movies and four ratings, through the ORM; return two ids."""
    from app.db import db
    from app.models import Movie, Rating

    with app.app_context():
        alien = Movie(name="Alien", director="Ridley Scott", rating=8.5)
        blade = Movie(name="Blade Runner", director="Ridley Scott", rating=8.1)
        cure = Movie(name="Cure", director="Kiyoshi Kurosawa")
        db.session.add_all([alien, blade, cure])
        db.session.flush()
        first = Rating(rating=9, author="Ana", movie_id=alien.id)
        db.session.add_all(
            [
                first,
                Rating(rating=7, author="Bo", movie_id=alien.id),
                Rating(rating=8, author="Cy", movie_id=blade.id),
                Rating(rating=6, author="Di", movie_id=cure.id),
            ]
        )
        db.session.commit()
        ids = {"movie": alien.id, "rating": first.id}
        db.session.remove()
        return ids


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.id)
def test_corpus(make: Any, case: Case) -> None:
    app = make(READ_ONLY=case.who == "read_only")
    ids = seed(app)
    url = case.url.format(**ids)
    if not route_exists(app, case.method, url) and case.status not in (404, 405):
        pytest.skip(f"endpoint not built yet: {case.method} {case.url}")
    visitor = Visitor(app.test_client())
    if case.who != "open":
        add_user(app)
    if case.who in ("signed_in", "read_only"):
        assert visitor.sign_in().status_code == 303
    before = snapshot(app)

    body_args: dict[str, Any] = {"data": case.data}
    if case.upload:
        body_args = multipart(case.upload[1], case.upload[0], resource="movies")
    response = visitor.send(
        case.method,
        url,
        token=case.token,
        htmx=case.htmx,
        headers=case.headers,
        **body_args,
    )

    body = response.get_data(as_text=True)
    assert response.status_code == case.status, body[:2000]
    assert case.message in html.unescape(body)
    if response.mimetype == "text/html":
        assert_safe_html(body)
        # htmx gets a fragment (to show as a message), a person a whole page.
        assert ("<html" in body) == (not case.htmx)
    assert snapshot(app) == before


def test_corpus_is_large_enough() -> None:
    assert len(REFUSALS) >= 60
