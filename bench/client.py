"""A small HTTP/1.1 client on http.client, and the loops that time requests.

The stdlib client keeps the measuring side light (it shares two cores with the
servers) and hands back bodies exactly as sent, so compressed sizes are real.
"""

from __future__ import annotations

import gzip
import http.client
import multiprocessing
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

HOST = "127.0.0.1"
T = TypeVar("T")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
# gunicorn closes a keep-alive connection idle for 2 s (its `keepalive` default);
# a write does not start on one idle for longer than this.
KEEPALIVE_MARGIN = 1.0


@dataclass(frozen=True)
class Req:
    """One request to send: method, path, headers and an optional body."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


@dataclass
class Resp:
    """What came back: status, headers, body and timings in seconds."""

    status: int
    headers: dict[str, str]
    body: bytes
    ttfb: float
    elapsed: float
    header_bytes: int = 0
    size: int = 0  # body bytes as sent (compressed, if the server compressed)
    lines: int = 0  # newlines in the body, counted while streaming

    def header(self, name: str) -> str:
        """Return a response header (case-insensitive) or ""."""
        return self.headers.get(name.lower(), "")

    def decoded(self) -> bytes:
        """The body with its Content-Encoding undone (gzip, deflate, br, zstd)."""
        encoding = self.header("content-encoding")
        if encoding in ("", "identity"):
            return self.body
        if encoding == "gzip":
            return gzip.decompress(self.body)
        if encoding == "deflate":
            return zlib.decompress(self.body)
        if encoding == "br":
            import brotli

            return brotli.decompress(self.body)
        if encoding == "zstd":
            from backports import zstd

            return zstd.decompress(self.body)
        raise ValueError(f"unknown Content-Encoding {encoding!r}")


@dataclass
class Client:
    """A keep-alive connection to one local server that reopens when closed."""

    port: int
    timeout: float = 300.0
    conn: http.client.HTTPConnection | None = field(default=None, repr=False)
    last_used: float = field(default=0.0, repr=False)

    def idle(self) -> float:
        """Seconds since the open connection last finished a response (0 if none)."""
        if self.conn is None or self.conn.sock is None:
            return 0.0
        return time.monotonic() - self.last_used

    def _connection(self) -> http.client.HTTPConnection:
        """Return the open connection, creating it if needed."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                HOST, self.port, timeout=self.timeout
            )
        return self.conn

    def close(self) -> None:
        """Close the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(
        self,
        req: Req,
        *,
        keep_body: bool = True,
        on_chunk: Callable[[bytes], None] | None = None,
        max_bytes: int | None = None,
    ) -> Resp:
        """Send a request and read the whole response (or up to max_bytes).

        A GET on a reused keep-alive connection the server has since closed is
        retried once on a fresh one. A write is never retried: the server may have
        applied it before the connection dropped (a retried PATCH then ran twice,
        and showed as a 409). Writes avoid that race instead by not reusing a
        connection idle for longer than gunicorn keeps it open.
        """
        if req.method not in IDEMPOTENT and self.idle() > KEEPALIVE_MARGIN:
            self.close()
        for attempt in (1, 2):
            conn = self._connection()
            reused = conn.sock is not None
            start = time.perf_counter()
            try:
                conn.request(
                    req.method, req.path, body=req.body, headers=dict(req.headers)
                )
                resp = conn.getresponse()
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
            ):
                self.close()
                if reused and attempt == 1 and req.method in IDEMPOTENT:
                    continue
                raise
            ttfb = time.perf_counter() - start
            headers = {k.lower(): v for k, v in resp.getheaders()}
            header_bytes = len(f"HTTP/1.1 {resp.status} {resp.reason}\r\n") + sum(
                len(k) + len(v) + 4 for k, v in resp.getheaders()
            )
            chunks: list[bytes] = []
            lines = 0
            size = 0
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                lines += chunk.count(b"\n")
                if on_chunk is not None:
                    on_chunk(chunk)
                if keep_body:
                    chunks.append(chunk)
                if max_bytes is not None and size >= max_bytes:
                    self.close()  # abandon the rest of the stream
                    break
            elapsed = time.perf_counter() - start
            self.last_used = time.monotonic()
            if resp.will_close:
                self.close()
            body = b"".join(chunks) if keep_body else b""
            return Resp(
                resp.status, headers, body, ttfb, elapsed, header_bytes, size, lines
            )
        raise AssertionError("unreachable")


def sequential(
    port: int, reqs: Sequence[Req], n: int
) -> tuple[list[float], dict[int, int]]:
    """Send n requests one after another (cycling reqs); return latencies, statuses."""
    client = Client(port)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    try:
        for i in range(n):
            resp = client.send(reqs[i % len(reqs)])
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append(resp.elapsed)
    finally:
        client.close()
    return latencies, statuses


def _load_worker(args: tuple[int, Sequence[Req], int, float, float]) -> dict:
    """One concurrent client: send requests until the deadline; report counts."""
    port, reqs, offset, start_at, duration = args
    client = Client(port)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + duration
    i = offset
    last_end = time.time()
    while time.time() < deadline:
        try:
            resp = client.send(reqs[i % len(reqs)])
        except OSError:
            errors += 1
            client.close()
            continue
        finally:
            i += 1
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        latencies.append(resp.elapsed)
        last_end = time.time()
    client.close()
    return {
        "latencies": latencies,
        "statuses": statuses,
        "errors": errors,
        "end": last_end,
    }


def run_in_processes(fn: Callable[[Any], T], jobs: Sequence[Any]) -> list[T]:
    """Run fn over jobs, one process each, and wait until every process has exited.

    Pool's context manager terminates its workers; one killed while it holds the
    task queue's lock leaves another blocked on that lock for ever (a full run hung
    so for 19 minutes). close() and join() let each worker finish and exit.
    """
    pool = multiprocessing.get_context("fork").Pool(len(jobs))
    try:
        return pool.map(fn, jobs)
    finally:
        pool.close()
        pool.join()


def concurrent(
    port: int, reqs: Sequence[Req], clients: int, duration: float
) -> dict[str, object]:
    """Run `clients` processes hammering the server for `duration` seconds.

    Returns requests/s of successful (2xx/3xx) responses over the real span, the
    status counts and all latencies. Processes, not threads: the GIL would make
    the client the bottleneck.
    """
    start_at = time.time() + 0.5
    jobs = [(port, reqs, k, start_at, duration) for k in range(clients)]
    parts = run_in_processes(_load_worker, jobs)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    for part in parts:
        latencies.extend(part["latencies"])
        for status, count in part["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    ok = sum(c for s, c in statuses.items() if 200 <= s < 400)
    span = max(p["end"] for p in parts) - start_at
    return {
        "rps": ok / span if span > 0 else 0.0,
        "ok": ok,
        "statuses": statuses,
        "errors": sum(p["errors"] for p in parts),
        "latencies": latencies,
    }
