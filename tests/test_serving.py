"""`make serve` answers everyone while other clients idle, trickle or never read."""

# Regression tests for issue 11, item 1: ten idle connections, two slowloris
# clients or two CSV downloads nobody read stopped the whole server (gthread, one
# thread a worker); every other request timed out. With more threads, clients that
# leave a closed connection open stalled gthread's main thread 2 s each.

from __future__ import annotations

import contextlib
import http.client
import io
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.gunicorn_conf import READ_GRACE, taking_turns
from app.security import SECURITY_HEADERS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
ANSWER_WITHIN = 5.0  # seconds; each normal request takes a few ms
CLOSE_AFTER = b"GET /movies HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def serve_command(port: int) -> list[str]:
    """The gunicorn command `make serve` runs, on this port, from `make -n`."""
    shown = subprocess.run(
        ["make", "-n", "serve", f"HOST={HOST}", f"PORT={port}", f"VENV={BIN.parent}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    line = next(x for x in shown.splitlines() if x.startswith(str(BIN / "gunicorn")))
    # The control socket is per-user state; a test server must not take it.
    return [*shlex.split(line), "--no-control-socket"]


def flask(args: list[str], env: dict[str, str]) -> None:
    """Run a `flask --app app` command and fail loudly if it fails."""
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def get(port: int, path: str, timeout: float = ANSWER_WITHIN) -> int:
    """GET a path on a fresh connection; return the status."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Serve the demo data exactly as `make serve` does, on a temporary SQLite file."""
    tmp = tmp_path_factory.mktemp("serving")
    env = {
        **os.environ,
        "DATABASE_URL": "sqlite:///" + str(tmp / "serving.sqlite3"),
        "SECRET_KEY": "serving-secret",
    }
    flask(["db", "upgrade"], env)
    flask(["seed"], env)
    chosen = free_port()
    with open(tmp / "gunicorn.log", "wb") as log:
        proc = subprocess.Popen(
            serve_command(chosen), cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            for _ in range(100):
                assert proc.poll() is None, "gunicorn exited; see gunicorn.log"
                with contextlib.suppress(OSError):
                    if get(chosen, "/movies", timeout=1) == 200:
                        break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.1)
            yield chosen
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_idle_slow_and_unread_connections_leave_the_server_to_others(
    port: int,
) -> None:
    """Idle, slowloris, slow-body, unread and lingering connections stop nobody."""
    with contextlib.ExitStack() as stack:

        def connect(receive_buffer: int = 0) -> socket.socket:
            sock = stack.enter_context(socket.socket())
            if receive_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.connect((HOST, port))
            return sock

        # 100 idle: more than a worker's threads, so none may wait on one.
        for _ in range(100):
            connect()  # says nothing
        for _ in range(3):
            connect().sendall(b"GET /movies HTTP/1.1\r\nHost: x\r\n")  # and no more
        for _ in range(4):  # bodies that stall: the app must not wait for them
            connect().sendall(
                b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\nname=a"
            )
        # Downloads of ~9 MB in all that are never read: the server's writes block.
        connect(receive_buffer=4096).sendall(
            b"GET /ratings.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 400
        )

        answered = []
        for n in range(20):
            for _ in range(2):  # answered and closed by the server, never by them
                connect().sendall(CLOSE_AFTER)
            started = time.monotonic()
            try:
                status = get(port, f"/movies?page={n % 5 + 1}")
            except TimeoutError:
                pytest.fail(
                    f"request {n + 1} of 20 got no answer in {ANSWER_WITHIN:g} s "
                    f"({len(answered)} answered before it)"
                )
            answered.append(time.monotonic() - started)
            assert status == 200
        assert max(answered) < ANSWER_WITHIN


def test_a_request_that_trickles_in_gets_408_and_is_closed(port: int) -> None:
    """A header line a second (slowloris) is cut off after READ_GRACE seconds."""
    with socket.create_connection((HOST, port)) as sock:
        sock.settimeout(1.0)
        sock.sendall(b"GET /movies HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        received = b""
        for n in range(int(READ_GRACE) + 5):
            with contextlib.suppress(OSError):  # closed by the server mid-send
                sock.sendall(b"X-Slow-%d: 1\r\n" % n)
            try:
                data = sock.recv(4096)  # waits up to a second: the client's pace
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
        waited = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408 "), received[:80]
    assert READ_GRACE - 1 < waited < READ_GRACE + 4
    assert_security_headers(parse_response(received)[1])


# Issue 12, item 10: requests gunicorn answers itself, before the app runs. Its
# answers carried none of the app's security headers.
GUNICORN_REFUSALS: list[tuple[str, bytes, int]] = [
    ("bad-request-line", b"NOT A REQUEST LINE\r\n\r\n", 400),
    ("bad-header", b"GET /movies HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon\r\n\r\n", 400),
    ("uri-10kb", b"GET /movies?q=" + b"a" * 10240 + b" HTTP/1.1\r\n\r\n", 414),
    ("200-headers",
     b"GET /movies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
     + b"".join(b"X-H-%d: %d\r\n" % (n, n) for n in range(200)) + b"\r\n", 431),
    ("header-10kb",
     b"GET /movies HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 10240
     + b"\r\n\r\n", 431),
]  # fmt: skip


def exchange(port: int, request: bytes, timeout: float = ANSWER_WITHIN) -> bytes:
    """Send raw bytes on a fresh connection; return all the server sent back."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:  # closed with our unread bytes pending
                break
            if not data:
                break
            received += data
    return received


def parse_response(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers as (lower-case name, value) pairs, body) of a raw response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return int(status_line.split()[1]), headers, body


def assert_security_headers(headers: list[tuple[str, str]]) -> None:
    """The app's security headers, each once, and no Server header naming gunicorn."""
    for name, value in SECURITY_HEADERS.items():
        assert [v for k, v in headers if k == name.lower()] == [value], name
    servers = [v for k, v in headers if k == "server"]
    assert not any("gunicorn" in v.lower() for v in servers), servers


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [case[1:] for case in GUNICORN_REFUSALS],
    ids=[case[0] for case in GUNICORN_REFUSALS],
)
def test_gunicorns_own_refusals_carry_the_security_headers(
    port: int, request_bytes: bytes, status: int
) -> None:
    # Issue 12, item 10: these came with no CSP or other app header.
    got, headers, body = parse_response(exchange(port, request_bytes))
    assert got == status
    assert_security_headers(headers)
    assert ("content-length", str(len(body))) in headers


def test_app_responses_do_not_name_the_server(port: int) -> None:
    # Issue 12, item 10: every response said "Server: gunicorn".
    status, headers, body = parse_response(exchange(port, CLOSE_AFTER))
    assert status == 200
    assert b"<html" in body
    assert_security_headers(headers)
    assert [k for k, _ in headers].count("content-security-policy") == 1


def wsgi_environ(path: str, body: bytes = b"", **extra: str) -> dict[str, Any]:
    """A minimal WSGI environ for calling a wrapped app directly."""
    return {"PATH_INFO": path, "wsgi.input": io.BytesIO(body), **extra}


def start_response(status: str, headers: list, exc_info: Any = None) -> None:
    """Accept any response (the tests look at what the app saw)."""


def test_one_request_at_a_time_runs_the_app_unless_it_steps_out_to_wait() -> None:
    """The turn keeps the app serial; `reeltable.outside_turn` lets others in."""
    inside, finish, ran = threading.Event(), threading.Event(), []

    def app(environ: dict[str, Any], respond: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/hold":
            inside.set()
            finish.wait(5)
        elif environ["PATH_INFO"] == "/wait":
            with environ["reeltable.outside_turn"]():
                inside.set()
                finish.wait(5)
        ran.append(environ["PATH_INFO"])
        respond("200 OK", [])
        return [b"ok"]

    serve = taking_turns(app, 1)
    for first, second_runs_meanwhile in (("/hold", False), ("/wait", True)):
        inside.clear()
        finish.clear()
        ran.clear()
        holder = threading.Thread(
            target=lambda p=first: list(serve(wsgi_environ(p), start_response))
        )
        holder.start()
        assert inside.wait(5)
        other = threading.Thread(
            target=lambda: list(serve(wsgi_environ("/other"), start_response))
        )
        other.start()
        other.join(timeout=0.5)  # a turn taken by a request that computes
        assert (not other.is_alive()) is second_runs_meanwhile
        finish.set()
        holder.join(5)
        other.join(5)
        assert sorted(ran) == sorted([first, "/other"])


@pytest.mark.parametrize(
    "extra",
    [{"CONTENT_LENGTH": "14"}, {"HTTP_TRANSFER_ENCODING": "chunked"}],
    ids=["length", "chunked"],
)
def test_the_body_is_read_before_the_app_runs(extra: dict[str, str]) -> None:
    """The app gets the whole body, read ahead, and its length (chunked too)."""
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], respond: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen.update(
            length=environ["CONTENT_LENGTH"],
            chunked="HTTP_TRANSFER_ENCODING" in environ,
            read_ahead=not isinstance(stream, io.BytesIO),
            body=stream.read(),
        )
        respond("200 OK", [])
        return [b"ok"]

    environ = wsgi_environ("/", b"name=reeltable", **extra)
    body = taking_turns(app, 1)(environ, start_response)
    assert list(body) == [b"ok"]
    body.close()
    assert seen == {
        "length": "14",
        "chunked": False,
        "read_ahead": True,
        "body": b"name=reeltable",
    }


def test_a_body_refused_before_the_app_carries_the_security_headers() -> None:
    # Issue 12, item 10: answers made before the app runs carry its headers too.
    sent: list[tuple[str, list[tuple[str, str]]]] = []

    def app(environ: dict[str, Any], respond: Any) -> list[bytes]:
        raise AssertionError("the app must not run for a body that never came")

    def respond(status: str, headers: list, exc_info: Any = None) -> None:
        sent.append((status, headers))

    environ = wsgi_environ("/movies", b"name=", CONTENT_LENGTH="14")
    assert list(taking_turns(app, 1)(environ, respond)) == [b"400 Bad Request\n"]
    [(status, headers)] = sent
    assert status == "400 Bad Request"
    assert set(SECURITY_HEADERS.items()) <= set(headers)
