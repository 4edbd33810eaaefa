"""A cut-off CSV download never looks complete: checked against a real gunicorn.

The export is sent with chunked transfer encoding. Only a stream that wrote its
last row ends with the terminating empty chunk; if anything fails after the first
byte, the response iterator raises and gunicorn drops the connection, so clients
report an incomplete transfer (curl exits with 18, browsers mark the download
failed, http.client raises IncompleteRead).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from app.crud.plan import Reader
from app.db import db
from app.models import Movie
from tests.conftest import make_app

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
N_MOVIES = 20_000


def broken_app() -> Flask:
    """The real app, except that every export fails after its first batch."""
    real = Reader.fetch_batches

    def failing(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        batches = real(self, *args, **kwargs)
        yield next(batches)
        raise sa.exc.OperationalError("FETCH", {}, Exception("disk I/O error"))

    Reader.fetch_batches = failing  # type: ignore[method-assign]
    return create_app()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with enough movies for several chunks."""
    tmp = tmp_path_factory.mktemp("completeness")
    url = "sqlite:///" + str(tmp / "db.sqlite3")
    app = make_app(url, tmp / "instance")
    with app.app_context():
        upgrade()
        db.session.execute(
            sa.insert(Movie),
            [
                {"name": f"Film {i}", "director": "Someone", "rating": 5.0}
                for i in range(N_MOVIES)
            ],
        )
        db.session.commit()
        db.engine.dispose()
    return url


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(app_spec: str, database_url: str, tmp: Path) -> Iterator[int]:
    """Run gunicorn with one worker on a free port; yield the port."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "test"}
    log = open(tmp / f"gunicorn-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--no-control-socket",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            app_spec,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(400):
            if proc.poll() is not None:
                raise RuntimeError((tmp / f"gunicorn-{port}.log").read_text())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/import"):
                    break
            except OSError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def get(port: int, path: str) -> http.client.HTTPResponse:
    """GET over HTTP/1.1 and return the response with its body unread."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    return conn.getresponse()


def test_complete_download_ends_cleanly(database: str, tmp_path: Path) -> None:
    with gunicorn("app:create_app()", database, tmp_path) as port:
        response = get(port, "/movies.csv")
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        data = response.read()
    lines = data.split(b"\r\n")
    assert lines[0] == b"id,name,director,rating"
    assert len(lines) == N_MOVIES + 2  # the header, the rows, and "" after the last


def test_failure_mid_stream_is_a_truncated_transfer(
    database: str, tmp_path: Path
) -> None:
    spec = "tests.test_csv_completeness:broken_app()"
    with gunicorn(spec, database, tmp_path) as port:
        response = get(port, "/movies.csv")
        assert response.status == 200  # sent before the failure
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
        assert caught.value.partial.startswith(b"id,name,director,rating\r\n")
        if shutil.which("curl"):
            curl = subprocess.run(
                [
                    "curl",
                    "-sS",
                    "-o",
                    os.devnull,
                    f"http://127.0.0.1:{port}/movies.csv",
                ],
                capture_output=True,
                text=True,
            )
            assert curl.returncode == 18, curl.stderr  # "partial file"
