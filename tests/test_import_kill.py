"""kill -9 during a web import, served as `make serve` serves: nothing half-written.

Regression tests for issue 11, item 2: a kill -9 during an import left
`<token>.importing` behind, and Import then silently did nothing until a daily
sweep. Here a real gunicorn (app/gunicorn_conf.py) runs the import's job as a
child process; the job alone, or the whole server, is killed with SIGKILL while
the rows are being written. The table must be as before, the page must say the
import stopped, and Import must then write the file, once.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.config import normalise_database_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
# Enough that writing them takes several progress reports (PostgreSQL writes
# fewer rows a second: each goes into two trigram indexes).
ROWS = 50_000 if "postgresql" in os.environ.get("TEST_DATABASE_URL", "") else 300_000
STATUS = re.compile(r'id="import-job-status" role="status">([^<]*)<')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
STOPPED = "The import stopped before it finished"
DEADLINE = 600.0  # seconds for any one wait below; each takes a few


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """gunicorn serving the app from its config file, in a process group of its own."""

    env: dict[str, str]
    instance: Path
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the server as `make serve` runs it and wait until it answers."""
        app = f"app:create_app(instance_path={str(self.instance)!r})"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "gunicorn"), "--config", "app/gunicorn_conf.py"]
                + ["--no-control-socket", "--bind", f"{HOST}:{self.port}", app],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so kill -9 reaches every process of it
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"gunicorn exited; see {self.log}"
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/import")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.1)
        raise AssertionError(f"gunicorn did not answer; see {self.log}")

    def jobs(self) -> list[int]:
        """The import jobs running under this server (children of its workers)."""
        assert self.proc is not None
        workers = set(children(self.proc.pid))
        return [
            pid
            for worker in workers
            for pid in children(worker)
            if b"job_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]

    def until_no_jobs(self) -> None:
        """Wait for the jobs to end (one that has reported may still be exiting)."""
        deadline = time.monotonic() + DEADLINE
        while self.jobs():
            assert time.monotonic() < deadline, f"jobs still running: {self.jobs()}"
            time.sleep(0.01)

    def kill9(self) -> None:
        """SIGKILL the master, its workers and their jobs at once, as a crash would."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop gracefully, if still running, then end any job it left running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # jobs outlive a stop


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid ...: comm may hold spaces, so split after ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Person:
    """Someone using the Import page through htmx: a session and its CSRF token."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.cookie = ""
        page = self.send("GET", "/import", htmx=False)  # the page, with its token
        self.token = CSRF.search(page).group(1)  # type: ignore[union-attr]

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        kind: str = "",
        htmx: bool = True,
    ) -> str:
        """Send as htmx does; return the text (and keep the session cookie)."""
        conn = http.client.HTTPConnection(HOST, self.served.port, timeout=60)
        headers = {"Origin": f"http://{HOST}:{self.served.port}"}
        if htmx:
            headers["HX-Request"] = "true"
        if self.cookie:
            headers["Cookie"] = self.cookie
        if method != "GET":
            headers["X-CSRFToken"] = self.token
        if kind:
            headers["Content-Type"] = kind
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
            cookie = response.getheader("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";", 1)[0]
            self.status = response.status
            self.push = response.getheader("HX-Push-Url") or ""
        finally:
            conn.close()
        return text

    def upload(self, data: bytes) -> str:
        """Upload a ratings file; return the import's location."""
        boundary = "reeltable-kill-test"
        disposition = "\r\nContent-Disposition: form-data; name="
        body = (
            (
                f'--{boundary}{disposition}"resource"\r\n\r\nratings\r\n'
                f'--{boundary}{disposition}"file"; filename="big.csv"\r\n\r\n'
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        self.send("POST", "/import", body, f"multipart/form-data; boundary={boundary}")
        assert self.status == 202, self.status
        return self.push

    def status_line(self, location: str) -> tuple[str, str]:
        """The page of an import and its progress line ("" once the job is done)."""
        page = self.send("GET", location)
        found = STATUS.search(page)
        return page, found.group(1) if found else ""

    def until(self, location: str, wanted: str = "") -> tuple[str, str]:
        """Ask every 10 ms until the progress line starts with `wanted` (or ends)."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            page, line = self.status_line(location)
            if not line or (wanted and line.startswith(wanted)):
                return page, line
            time.sleep(0.01)
        raise AssertionError(f"{location}: still {line!r}")


def written(line: str) -> int:
    """The rows a "Written n of N rows" line says are written."""
    return int(line.split()[1].replace(",", ""))


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[Served]:
    """The demo catalogue served by gunicorn from app/gunicorn_conf.py."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "kill-test-secret",
    }
    instance = tmp_path / "instance"
    subprocess.run(
        [
            str(BIN / "flask"),
            "--app",
            f"app:create_app(instance_path={str(instance)!r})",
        ]
        + ["seed"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    server = Served(env, instance, tmp_path / "gunicorn.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def table_state(database_url: str) -> tuple[int, int]:
    """(count, largest id) of the ratings, read straight from the database."""
    engine = sa.create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT count(*), max(id) FROM ratings"))
            count, largest = found.one()
    finally:
        engine.dispose()
    return int(count), int(largest)


def ratings_file(database_url: str) -> bytes:
    """ROWS new ratings spread over the stored movies."""
    engine = sa.create_engine(normalise_database_url(database_url))
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM movies ORDER BY id")).scalars().all()
    engine.dispose()
    lines = (
        b"%d,Killer %d,%d\r\n" % (1 + n % 10, n, ids[n % len(ids)]) for n in range(ROWS)
    )
    return b"rating,author,movie_id\r\n" + b"".join(lines)


def test_kill_9_during_an_import_writes_nothing_and_the_upload_stays_importable(
    served: Served, database_url: str
) -> None:
    before = table_state(database_url)
    person = Person(served)
    location = person.upload(ratings_file(database_url))
    page, _ = person.until(location)
    assert f'<th scope="row">New</th><td>{ROWS:,}</td>' in page
    served.until_no_jobs()  # the check's job, done, may still be exiting

    # 1. The job alone is killed while it writes: the page notices at once.
    person.send("POST", location)
    assert person.status == 202
    _, line = person.until(location, "Written")
    jobs = served.jobs()
    assert len(jobs) == 1 and written(line) < ROWS, (jobs, line)
    os.kill(jobs[0], signal.SIGKILL)
    page, line = person.until(location)
    assert STOPPED in page
    assert f">Import {ROWS:,} rows</button>" in page
    assert table_state(database_url) == before

    # 2. The whole server is killed while the import writes again.
    person.send("POST", location)
    _, line = person.until(location, "Written")
    assert written(line) < ROWS, line
    served.kill9()
    assert table_state(database_url) == before
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(
            sqlite3.connect(database_url.removeprefix("sqlite:///"))
        ) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    served.start()  # restarted on the same database and instance folder
    page, line = person.until(location)
    assert STOPPED in page
    assert not served.jobs()

    # 3. Import again: written once, whole.
    person.send("POST", location)
    page, _ = person.until(location)
    assert f"{ROWS:,} new and 0 changed" in page
    count, _ = table_state(database_url)
    assert count == before[0] + ROWS


def test_kill_9_during_the_check_says_to_upload_again(
    served: Served, database_url: str
) -> None:
    person = Person(served)
    location = person.upload(ratings_file(database_url))
    _, line = person.until(location, "Checked")
    jobs = served.jobs()
    assert len(jobs) == 1 and line, line
    os.kill(jobs[0], signal.SIGKILL)
    page, line = person.until(location)
    assert person.status == 422
    assert "The check of this file stopped before it finished" in page
    assert "Upload the file again." in page
