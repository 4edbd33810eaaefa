"""Browser-test fixtures: a real gunicorn server on a free port, and Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from e2e.browser import LAUNCH_ARGS, executable_path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict:
    """Launch Debian's Chromium when Playwright has no browser of its own."""
    args = {**browser_type_launch_args, "args": LAUNCH_ARGS}
    path = executable_path()
    if path:
        args["executable_path"] = path
    return args


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running reeltable server and its database."""

    url: str
    database_url: str

    def query(self, sql: str, **params: Any) -> list[tuple]:
        """Run SQL against the server's database (to check what persisted)."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()


def flask(args: list[str], env: dict[str, str]) -> None:
    """Run a `flask --app app` command and fail loudly if it fails."""
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def serve(
    tmp: Path,
    env: dict[str, str],
    database_url: str,
    options: tuple[str, ...] = ("--workers", "2"),
    app: str = "app:create_app()",
) -> Iterator[Server]:
    """Run gunicorn (by default 2 workers) on a free port with this environment."""
    port = free_port()
    log = open(tmp / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--no-control-socket", *options]
        + ["--bind", f"127.0.0.1:{port}", app],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield Server(url, database_url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Serve the demo catalogue with gunicorn on a fresh SQLite file per module."""
    tmp = tmp_path_factory.mktemp("server")
    database_url = "sqlite:///" + str(tmp / "e2e.sqlite3")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "e2e-secret",
    }
    flask(["db", "upgrade"], env)
    flask(["seed"], env)
    with serve(tmp, env, database_url) as running:
        yield running


ACCOUNT = ("ana", "e2e password 1")


@pytest.fixture(scope="module")
def account_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Like `server`, but with one account (ACCOUNT): writes need a sign-in."""
    tmp = tmp_path_factory.mktemp("account-server")
    database_url = "sqlite:///" + str(tmp / "e2e.sqlite3")
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "e2e-secret"}
    flask(["db", "upgrade"], env)
    flask(["seed"], env)
    name, password = ACCOUNT
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", "users", "create", name]
        + ["--password-stdin"],
        cwd=ROOT,
        env=env,
        input=password + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    with serve(tmp, env, database_url) as running:
        yield running


def wait_until_up(url: str, proc: subprocess.Popen) -> None:
    """Poll the server until it answers (or its process dies)."""
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited before it served a request")
        try:
            with urllib.request.urlopen(url + "/movies", timeout=1):
                return
        except OSError:
            # Not listening yet: block briefly on the process rather than spin.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
    raise RuntimeError(f"server at {url} did not come up")


@pytest.fixture
def other(browser: Browser) -> Iterator[Page]:
    """A second person: a page in a browser context of its own."""
    context = browser.new_context()
    yield context.new_page()
    context.close()
