"""Hosts we serve (DNS rebinding) and log lines that cannot be forged (issue 12)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.logging import default_handler

from app.security import escape_controls
from tests.conftest import dispose
from tests.security.conftest import Visitor, build_app, snapshot

REBOUND = "attacker.example:5413"


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/movies"), ("GET", "/movies.csv"), ("GET", "/login"),
     ("DELETE", "/movies/1"), ("PATCH", "/movies/1"), ("POST", "/movies")],
)  # fmt: skip
def test_a_host_we_do_not_serve_gets_400(
    app: Flask, visitor: Visitor, sample: dict, method: str, url: str
) -> None:
    # Issue 12: a rebinding page on attacker.example was same-origin with us (its
    # Origin matched its Host) and could read the CSRF token and write.
    before = snapshot(app)
    response = visitor.send(
        method,
        url,
        headers={"Host": REBOUND, "Origin": f"http://{REBOUND}"},
        data={"name": "Rebound", "version": "1"},
    )
    assert response.status_code == 400
    assert "does not answer to that host name" in response.get_data(as_text=True)
    assert "csrf" not in response.get_data(as_text=True).lower()
    assert snapshot(app) == before


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:5000", "localhost:8080"])
def test_the_default_hosts_are_served(visitor: Visitor, host: str) -> None:
    assert visitor.send("GET", "/movies", headers={"Host": host}).status_code == 200


@pytest.fixture
def named_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app configured for its public name, as behind a proxy."""
    app = build_app(
        database_url, tmp_path / "named", TRUSTED_HOSTS=["movies.example.org"]
    )
    yield app
    dispose(app)


def test_trusted_hosts_is_a_setting(named_app: Flask) -> None:
    client = named_app.test_client()
    assert (
        client.get("/movies", headers={"Host": "movies.example.org"}).status_code == 200
    )
    assert client.get("/movies", headers={"Host": "localhost"}).status_code == 400


def test_host_setting_is_trusted_too(database_url: str, tmp_path: Path) -> None:
    app = build_app(database_url, tmp_path / "lan", HOST="192.168.1.20")
    try:
        client = app.test_client()
        assert (
            client.get("/movies", headers={"Host": "192.168.1.20:5000"}).status_code
            == 200
        )
        assert client.get("/movies", headers={"Host": REBOUND}).status_code == 400
    finally:
        dispose(app)


# ---------------------------------------------------------------- log lines


@pytest.fixture
def log_lines(app: Flask) -> Iterator[io.StringIO]:
    """What the app logs, formatted as its own handler formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(default_handler.formatter)
    app.logger.addHandler(handler)
    yield stream
    app.logger.removeHandler(handler)


def test_a_refused_path_cannot_forge_a_log_line(
    app: Flask, visitor: Visitor, log_lines: io.StringIO
) -> None:
    # Issue 12: the decoded path of a refused request was logged as it came.
    forged = "[2026-11-30 13:00:00,000] INFO [deadbeef] in auth: signed in 'admin'"
    url = "/import/x%0D%0A" + forged.replace(" ", "%20")
    response = visitor.send(
        "POST", url, headers={"Origin": "http://evil.example"}, token=None
    )
    assert response.status_code == 403
    logged = log_lines.getvalue()
    assert "refused POST /import/x\\r\\n[2026-11-30" in logged
    assert logged.count("\n") == 1  # one record, one line
    assert not any(line.startswith("[2026-11-30 13:00") for line in logged.splitlines())


def test_escape_controls_shows_every_control_character() -> None:
    assert escape_controls("a\r\nb\tc\x1b[31md\x7f\u2028é ü") == (
        "a\\r\\nb\\tc\\x1b[31md\\x7f\\u2028é ü"
    )
