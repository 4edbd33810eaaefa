"""The write gate, CSRF, limits, errors and headers apply to every route.

These use probe routes (tests/security/conftest.py) that write a movie when
reached, so a refusal is proven by the database staying empty.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.logging import default_handler
from flask.testing import FlaskClient

from tests.conftest import dispose
from tests.security.conftest import (
    Visitor,
    add_probes,
    build_app,
    multipart,
    snapshot,
)

UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "http://localhost:8081"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"},
    ],
    ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()),
)
def test_cross_site_writes_are_refused(
    app: Flask, visitor: Visitor, method: str, headers: dict[str, str]
) -> None:
    response = visitor.send(method, "/_probe", headers=headers)
    assert response.status_code == 403
    assert "Cross-site request refused" in response.get_data(as_text=True)
    assert snapshot(app)["movies"] == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://localhost"},
        {"Origin": "HTTP://LOCALHOST"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_same_site_writes_pass(
    app: Flask, visitor: Visitor, headers: dict[str, str]
) -> None:
    assert visitor.send("POST", "/_probe", headers=headers).status_code == 200
    assert len(snapshot(app)["movies"]) == 1


def test_trusted_origins_pass(database_url: str, tmp_path: Path) -> None:
    app = build_app(
        database_url, tmp_path / "i", TRUSTED_ORIGINS=["https://admin.example"]
    )
    add_probes(app)
    visitor = Visitor(app.test_client())
    headers = {"Origin": "https://admin.example"}
    assert visitor.send("POST", "/_probe", headers=headers).status_code == 200
    dispose(app)


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "The CSRF token is missing."),
        ("forged", "The CSRF token is invalid."),
        ("", "The CSRF token is missing."),
        (
            "IjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAi.aaaaaa.bbbbbb",
            "The CSRF token is invalid.",
        ),
    ],
)
def test_csrf_failures_are_refused(
    app: Flask, visitor: Visitor, method: str, token: str | None, message: str
) -> None:
    response = visitor.send(method, "/_probe", token=token)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert message in body
    assert "Reload the page and try again." in body
    assert snapshot(app)["movies"] == []


def test_a_token_from_another_session_is_refused(app: Flask, visitor: Visitor) -> None:
    other = Visitor(app.test_client())
    response = visitor.send("POST", "/_probe", token=other.token())
    assert response.status_code == 400
    assert "The CSRF tokens do not match." in response.get_data(as_text=True)
    assert snapshot(app)["movies"] == []


def test_csrf_token_in_a_form_field_works_without_javascript(
    app: Flask, visitor: Visitor
) -> None:
    response = visitor.send(
        "POST", "/_probe", token=None, data={"csrf_token": visitor.token()}
    )
    assert response.status_code == 200


def test_csrf_failure_is_a_fragment_for_htmx(visitor: Visitor) -> None:
    response = visitor.send("PATCH", "/_probe", token=None, htmx=True)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(
        '<div class="error-message" role="alert" data-reason="csrf">'
    )


# ---------------------------------------------------------------- size limits


def test_oversized_body_gets_413(app: Flask, visitor: Visitor) -> None:
    response = visitor.send("POST", "/_probe", data={"x": "a" * (1024 * 1024 + 1)})
    assert response.status_code == 413
    assert "The request is too large: the limit is 1 MB." in response.get_data(
        as_text=True
    )
    assert snapshot(app)["movies"] == []


def test_oversized_body_is_refused_before_the_csrf_check(visitor: Visitor) -> None:
    response = visitor.send(
        "POST", "/_probe", token=None, data={"x": "a" * (2 * 1024 * 1024)}
    )
    assert response.status_code == 413


def test_body_over_the_limit_without_content_length_gets_413(
    app: Flask, visitor: Visitor
) -> None:
    # Chunked upload: no Content-Length, so only the streaming limit can stop it
    # (gunicorn marks such input as terminated, and werkzeug then counts bytes).
    body = io.BytesIO(b"x=" + b"a" * (1024 * 1024 + 10))
    response = visitor.send(
        "POST",
        "/_probe",
        input_stream=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert snapshot(app)["movies"] == []


def test_oversized_body_413_is_a_fragment_for_htmx(visitor: Visitor) -> None:
    response = visitor.send(
        "POST", "/_probe", htmx=True, data={"x": "a" * (1024 * 1024 + 1)}
    )
    assert response.status_code == 413
    assert "<html" not in response.get_data(as_text=True)


def test_a_route_can_have_its_own_larger_limit(app: Flask, visitor: Visitor) -> None:
    response = visitor.send("POST", "/_probe/upload", **multipart(b"a" * 3_000_000))
    assert response.status_code == 200
    response = visitor.send("POST", "/_probe/upload", **multipart(b"a" * 5_000_000))
    assert response.status_code == 413
    assert "the limit is 4 MB" in response.get_data(as_text=True)


# ---------------------------------------------------------------- errors


def test_404_page_and_fragment(client: FlaskClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert "<html" in page.get_data(as_text=True)
    assert "Not Found" in page.get_data(as_text=True)
    fragment = client.get("/no/such/page", headers={"HX-Request": "true"})
    assert fragment.status_code == 404
    assert "<html" not in fragment.get_data(as_text=True)
    assert 'role="alert"' in fragment.get_data(as_text=True)


def test_405_page_keeps_the_allow_header(visitor: Visitor) -> None:
    response = visitor.send("PUT", "/ratings")
    assert response.status_code == 405
    assert "Method Not Allowed" in response.get_data(as_text=True)
    assert "GET" in response.headers["Allow"]


def test_500_shows_no_trace_or_secret(app: Flask, client: FlaskClient) -> None:
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get("/_probe/crash", headers=headers)
        assert response.status_code == 500
        body = response.get_data(as_text=True)
        rid = response.headers["X-Request-ID"]
        assert f"quote request id {rid}" in body
        assert "Something went wrong" in body
        for leak in ("Traceback", "RuntimeError", "boom", app.config["SECRET_KEY"]):
            assert leak not in body
        assert ("<html" in body) == (not headers)


def test_500_is_logged_with_the_request_id(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    response = client.get("/_probe/crash", headers={"X-Request-ID": "req-12345678"})
    assert response.headers["X-Request-ID"] == "req-12345678"
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert record.request_id == "req-12345678"
    assert "[req-12345678]" in default_handler.format(record)


# ---------------------------------------------------------------- request ids


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abcdef12-3456", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("short", False),
        ("bad id with spaces", False),
        ("abc;X-Evil:1", False),
        ("<script>alert(1)</script>", False),
    ],
)
def test_request_id_header(client: FlaskClient, incoming: str, kept: bool) -> None:
    response = client.get("/ratings", headers={"X-Request-ID": incoming})
    rid = response.headers["X-Request-ID"]
    if kept:
        assert rid == incoming
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", rid)


def test_log_lines_carry_the_request_id(app: Flask) -> None:
    with app.test_request_context(headers={"X-Request-ID": "trace-00000001"}):
        record = logging.LogRecord("app", logging.INFO, __file__, 1, "hi", (), None)
        assert default_handler.filter(record)
        assert default_handler.format(record).endswith(
            "[trace-00000001] in test_gate: hi"
        )


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "url",
    [
        "/movies",
        "/ratings",
        "/login",
        "/no/such/page",
        "/_probe/crash",
        "/static/js/app.js",
    ],
)
def test_security_headers_on_every_response(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    response.close()
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Request-ID"]


def test_hsts_only_over_https(client: FlaskClient) -> None:
    assert "Strict-Transport-Security" not in client.get("/ratings").headers
    response = client.get("/ratings", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
