"""Two app servers over one PostgreSQL database share every state a request needs.

Issue 15: no state on an app server's disk or in its memory that another server
needs. Two gunicorn servers on two ports, the same SECRET_KEY and DATABASE_URL,
separate instance folders, and one browser-like client (requests, keeping its
cookies) that moves between them as a proxy would send it: an upload is
previewed and imported across servers (its jobs on either), a sign-in made on
one writes on the other, a delete made on one is undone on the other, and
failed sign-ins count across both.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from app.accounts import create_user
from tests.conftest import TEST_DATABASE_URL, dispose, make_app

pytestmark = pytest.mark.skipif(
    "postgresql" not in TEST_DATABASE_URL,
    reason="several app servers share a PostgreSQL database; SQLite is one machine's",
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "two-servers-secret"
PASSWORD = "a long enough password"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
JOB_SECONDS = 120.0


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(tmp: Path, name: str, database_url: str) -> Iterator[str]:
    """Run one gunicorn server (1 worker) with an instance folder of its own."""
    instance = tmp / name
    instance.mkdir()
    # Every upload goes through the jobs: the most that one server could keep
    # to itself (a child process's progress, its claim).
    (instance / "config.py").write_text("IMPORT_INLINE_BYTES = 0\n")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET}
    log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--no-control-socket", "--workers", "1"]
        + ["--bind", f"127.0.0.1:{port}"]
        + [f"app:create_app(instance_path={str(instance)!r})"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            assert proc.poll() is None, f"gunicorn exited; see {name}.log"
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two servers on one database holding one movie and one account ("ana")."""
    app = make_app(database_url, tmp_path / "setup")
    with app.app_context():
        create_user("ana", PASSWORD)
        from app.db import db

        db.session.execute(
            sa.text(
                "INSERT INTO movies (name, director, rating)"
                " VALUES ('Alien', 'Ridley Scott', 8.5)"
            )
        )
        db.session.commit()
    dispose(app)
    with (
        serve(tmp_path, "one", database_url) as one,
        serve(tmp_path, "two", database_url) as two,
    ):
        yield one, two


def csrf(client: requests.Session, url: str) -> str:
    """The CSRF token of the client's session, from a page's meta tag."""
    page = client.get(url + "/login")
    found = CSRF_META.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def sign_in(client: requests.Session, url: str, password: str) -> requests.Response:
    """Sign in as ana through the form."""
    return client.post(
        url + "/login",
        data={"name": "ana", "password": password, "csrf_token": csrf(client, url)},
        allow_redirects=False,
    )


def query(database_url: str, sql: str) -> list[tuple]:
    """Rows of a query, on a connection of the test's own."""
    from app.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def until_settled(client: requests.Session, url: str) -> requests.Response:
    """Poll an import's page (as htmx does) until no job runs for it."""
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        page = client.get(url, headers={"HX-Request": "true"})
        if 'id="import-running"' not in page.text:
            return page
        time.sleep(0.2)
    raise AssertionError(f"the job of {url} did not finish")


def test_sign_in_on_one_server_and_write_on_the_other(
    servers: tuple[str, str], database_url: str
) -> None:
    one, two = servers
    client = requests.Session()
    assert sign_in(client, one, PASSWORD).status_code == 303
    created = client.post(
        two + "/movies",
        data={
            "name": "Heat",
            "director": "Michael Mann",
            "rating": "8.3",
            "csrf_token": csrf(client, two),
        },
        allow_redirects=False,
    )
    assert created.status_code == 303, created.text[:500]
    assert query(database_url, "SELECT name FROM movies WHERE name = 'Heat'") == [
        ("Heat",)
    ]
    # Signing out on the second ends the sign-in on the first too.
    client.post(two + "/logout", data={"csrf_token": csrf(client, two)})
    refused = client.post(
        one + "/movies",
        data={"name": "Ran", "director": "Kurosawa", "csrf_token": csrf(client, one)},
        allow_redirects=False,
    )
    assert refused.status_code == 403
    assert query(database_url, "SELECT count(*) FROM movies") == [(2,)]


def test_an_upload_previewed_on_one_server_is_imported_on_the_other(
    servers: tuple[str, str], database_url: str
) -> None:
    one, two = servers
    client = requests.Session()
    assert sign_in(client, two, PASSWORD).status_code == 303
    data = b"id,name,director,rating\r\n" + b"".join(
        b",Film %d,Director %d,%d\r\n" % (i, i, 1 + i % 10) for i in range(3000)
    )
    uploaded = client.post(
        one + "/import",
        data={"resource": "movies", "csrf_token": csrf(client, one)},
        files={"file": ("films.csv", data, "text/csv")},
        allow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text[:500]
    path = uploaded.headers["Location"]
    # Nothing on either server's disk: the upload and its state are rows.
    assert query(database_url, "SELECT count(*) FROM imports") == [(1,)]
    # Checked by a job on the first server; its progress and preview read on
    # the second.
    preview = until_settled(client, two + path)
    assert '<th scope="row">New</th><td>3,000</td>' in preview.text
    # Imported by a job on the second server; the result read on the first.
    started = client.post(
        two + path, data={"csrf_token": csrf(client, two)}, allow_redirects=False
    )
    assert started.status_code in (202, 303), started.text[:500]
    # Import pressed again on the first server while (or after) it runs:
    # never a second import.
    client.post(one + path, data={"csrf_token": csrf(client, one)})
    done = until_settled(client, one + path)
    assert "3,000 new and 0 changed" in done.text, done.text[:2000]
    assert query(database_url, "SELECT count(*) FROM movies") == [(3001,)]
    assert query(database_url, "SELECT count(*) FROM import_chunks") == [(0,)]
    # "Undo this import" on the other server than the one that imported.
    undone = client.post(one + path + "/undo", data={"csrf_token": csrf(client, one)})
    assert undone.status_code == 200, undone.text[:500]
    assert query(database_url, "SELECT count(*) FROM movies") == [(1,)]


def test_a_delete_on_one_server_is_undone_on_the_other(
    servers: tuple[str, str], database_url: str
) -> None:
    one, two = servers
    client = requests.Session()
    assert sign_in(client, one, PASSWORD).status_code == 303
    [(movie_id,)] = query(database_url, "SELECT id FROM movies")
    deleted = client.delete(
        f"{one}/movies/{movie_id}",
        headers={"HX-Request": "true", "X-CSRFToken": csrf(client, one)},
    )
    assert deleted.status_code == 200, deleted.text[:500]
    found = re.search(r'name="token" value="([^"]+)"', deleted.text)
    assert found, deleted.text[:1000]
    assert query(database_url, "SELECT count(*) FROM movies") == [(0,)]
    restored = client.post(
        two + "/movies/undo",
        data={"token": found.group(1), "csrf_token": csrf(client, two)},
        allow_redirects=False,
    )
    assert restored.status_code == 303, restored.text[:500]
    assert query(database_url, "SELECT id, name FROM movies") == [(movie_id, "Alien")]


def test_failed_sign_ins_count_across_servers(
    servers: tuple[str, str], database_url: str
) -> None:
    # 5 a minute for one account from one address (the default): 3 failures on
    # the first server and 2 on the second use them up on both.
    one, two = servers
    client = requests.Session()
    for url in (one, one, one, two, two):
        assert sign_in(client, url, "wrong password").status_code == 401
    assert query(database_url, "SELECT count(*) FROM sign_in_failures") == [(5,)]
    for url in (one, two):
        refused = sign_in(client, url, PASSWORD)
        assert refused.status_code == 429
        assert "Retry-After" in refused.headers
