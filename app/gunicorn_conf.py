"""How `make serve` runs gunicorn: idle or slow clients never hold the app (issue 11).

Loaded with `gunicorn --config app/gunicorn_conf.py` by `make serve`, the bench (W2-W5)
and tests/test_serving.py; deliberately not ./gunicorn.conf.py, which gunicorn would
load for every server started in the top folder (the e2e and the peers' too).

With gthread and one thread a worker, a connection that had sent part of a request
held the worker's only thread while it waited for the rest: ten idle connections, two
slowloris clients or two downloads nobody read stopped the server. The worker below
keeps the one-request-at-a-time app (the work is CPU and SQLite's one writer: W5 of
`python -m bench` makes no more updates a second with 4 app threads than with one)
and gives the network threads of its own:

- `threads` threads a worker read requests and write responses; a connection holds one
  only while a request or its answer is under way, never while idle (a new connection
  with nothing to read goes to the poller at once, not after gthread's 5 s);
- a request must arrive within READ_GRACE seconds plus one per MIN_RATE bytes, or it
  gets 408 (gunicorn has no header-read timeout); its body is read before the app
  sees it, as a buffering proxy would; a write that makes no progress for
  WRITE_TIMEOUT seconds ends the connection;
- APP_THREADS threads a worker run the app at once: one, as before. A view that must
  wait (not compute) can step out with `environ["reeltable.outside_turn"]`;
- what gunicorn answers itself, before the app runs (400 for a malformed request, 414
  for a long URI, 431 for too many or too large headers, the 408 above), carries the
  app's security headers (app.security.SECURITY_HEADERS), and no response names the
  server: gunicorn's "Server: gunicorn" is left out (issue 12).

Measured on the demo data by `python -m bench.stress --db sqlite --slow-only` (8 clients
reading and editing beside 200 idle, 20 slowloris and 4 never-reading connections):
before, no request was answered; now every one is, none fails, and the slow clients
add little to their p95 (8 clients queue for 2 workers on a 2-core machine). W2 and W5
(`python -m bench --ours-only --only W2,W5 --no-growth --no-postgres`) got faster and
serve more requests a second than before (likely because the app no longer idles
while its thread reads the next request or writes the last answer).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from gunicorn import util
from gunicorn.http.errors import NoMoreData
from gunicorn.http.unreader import SocketUnreader
from gunicorn.http.wsgi import Response

# _DEFER is gthread's "no data yet: park the connection in the poller" answer.
from gunicorn.workers.gthread import _DEFER, TConn, ThreadWorker

from app.security import SECURITY_HEADERS

workers = 2
threads = 32  # a worker's threads for reading requests and writing responses
APP_THREADS = 1  # a worker's threads inside the app at once

READ_GRACE = 10.0  # seconds for the request line, headers and the body to start
MIN_RATE = 1024.0  # bytes a second a request must keep up after that
WRITE_TIMEOUT = 30.0  # seconds one write of a response (<= ~256 KB) may take
SPOOL_MAX = 64 * 1024 * 1024  # the largest body read ahead (the app's import limit)
SPOOL_IN_MEMORY = 1024 * 1024  # bodies above this wait in a temporary file

# The app's security headers as header lines, for the answers written here.
HEADER_LINES = "".join(f"{k}: {v}\r\n" for k, v in SECURITY_HEADERS.items()).encode()
TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n"
    + HEADER_LINES
    + b"\r\n"
)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _DeadlineUnreader(SocketUnreader):
    """Read a connection's requests against its deadline (see _Conn)."""

    def __init__(self, old: SocketUnreader, conn: _Conn) -> None:
        super().__init__(old.sock, old.mxchunk)
        self.buf = old.buf  # anything already read ahead stays first
        self.conn = conn

    def chunk(self, size_hint: int | None = None) -> bytes:
        """recv() what has arrived, waiting no later than the deadline."""
        remaining = self.conn.read_deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            data = super().chunk(size_hint)
        except TimeoutError:
            self.conn.timed_out()
            raise NoMoreData(b"") from None  # gunicorn closes the connection quietly
        finally:
            self.sock.settimeout(WRITE_TIMEOUT)  # what the response's writes get
        self.conn.read_deadline += len(data) / MIN_RATE
        return data


class _Conn(TConn):
    """A gthread connection whose requests must arrive by a deadline."""

    read_deadline = 0.0
    headers_read = False
    cut_off = False  # too slow to send or to read: close without lingering

    def init(self) -> None:
        """Set up the parser as gthread does, reading through a _DeadlineUnreader."""
        fresh = not self.initialized
        super().init()
        unreader = getattr(self.parser, "unreader", None)
        if fresh and type(unreader) is SocketUnreader:  # HTTP/1 (not HTTP/2, uwsgi)
            self.parser.unreader = _DeadlineUnreader(unreader, self)

    def start_request(self) -> None:
        """A request may begin now: restart the clock."""
        self.read_deadline = time.monotonic() + READ_GRACE
        self.headers_read = False

    def timed_out(self) -> None:
        """Answer 408 if no response has started (the body's reader answers its own)."""
        self.cut_off = True
        if self.headers_read:
            return
        try:
            self.sock.settimeout(1.0)
            self.sock.sendall(TIMED_OUT)
        except OSError:
            pass


def _spool(environ: dict[str, Any]) -> str | None:
    """Read the request body now; return a status line if it cannot be read."""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # the app answers 400
    if not chunked and not 0 < length <= SPOOL_MAX:
        return None  # nothing to read, or more than any view accepts: the app says 413
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    stream = environ["wsgi.input"]
    wanted = length if not chunked else SPOOL_MAX + 1
    try:
        while wanted > 0:
            data = stream.read(min(wanted, 256 * 1024))
            if not data:
                break
            body.write(data)
            wanted -= len(data)
    except OSError:  # too slow (NoMoreData from the deadline) or gone
        body.close()
        return "408 Request Timeout"
    if chunked and body.tell() > SPOOL_MAX:
        body.close()
        return "413 Content Too Large"
    if not chunked and wanted > 0:
        body.close()
        return "400 Bad Request"  # the client closed before sending it all
    environ["CONTENT_LENGTH"] = str(body.tell())  # a chunked body now has one
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    body.seek(0)
    environ["wsgi.input"] = body
    return None


class _TakingTurns:
    """Iterate a response body holding the app's turn only while a chunk is made."""

    def __init__(
        self, body: Iterable[bytes], turn: threading.Semaphore, spool: IO[bytes] | None
    ) -> None:
        self.body = body
        self.chunks: Iterator[bytes] | None = None
        self.turn = turn
        self.spool = spool

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        with self.turn:
            if self.chunks is None:
                self.chunks = iter(self.body)
            return next(self.chunks)

    def close(self) -> None:
        """Close the app's body (a CSV stream ends its transaction) in turn."""
        close = getattr(self.body, "close", None)
        try:
            if close is not None:
                with self.turn:
                    close()
        finally:
            if self.spool is not None:
                self.spool.close()  # the request body, read ahead


@contextlib.contextmanager
def _outside(turn: threading.Semaphore) -> Iterator[None]:
    """Give the app's turn to another request for a while (a wait, not work)."""
    turn.release()
    try:
        yield
    finally:
        turn.acquire()


def taking_turns(app: WSGIApp, turns: int) -> WSGIApp:
    """Wrap a WSGI app: the body is read first, then `turns` threads run it at once.

    Sending the response happens outside the turn, so a client that does not read
    holds its own thread only. The app may call `environ["reeltable.outside_turn"]()`
    as a context manager around a sleep (the sign-in slow-down) to let others in.
    """
    turn = threading.BoundedSemaphore(turns)

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Any:
        environ["reeltable.outside_turn"] = lambda: _outside(turn)
        refused = _spool(environ)
        if refused:
            start_response(
                refused,
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    *SECURITY_HEADERS.items(),
                ],
            )
            return [refused.encode() + b"\n"]
        spool = environ["wsgi.input"]
        if not isinstance(spool, tempfile.SpooledTemporaryFile):
            spool = None
        try:
            with turn:
                body = app(environ, start_response)
        except BaseException:
            if spool is not None:
                spool.close()
            raise
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None and isinstance(body, wrapper):
            return body  # a static file (GET, no spool): sendfile() needs it as it is
        return _TakingTurns(body, turn, spool)

    return serve


class _Unnamed(Response):
    """gunicorn's HTTP/1 response, without the Server header it always writes."""

    def default_headers(self) -> list[str]:
        """Status line, Date, Connection (and Transfer-Encoding), as gunicorn's."""
        return [h for h in super().default_headers() if not h.startswith("Server:")]


def unnamed(app: WSGIApp) -> WSGIApp:
    """Wrap a WSGI app so that its responses do not say "Server: gunicorn".

    gunicorn writes the header itself (Response.default_headers) and makes its
    Response where no setting or hook reaches; start_response is that Response's
    bound method, so the response is switched to the subclass above here.
    """

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Any:
        response = getattr(start_response, "__self__", None)
        if type(response) is Response:  # not HTTP/2's, which frames its own headers
            response.__class__ = _Unnamed
        return app(environ, start_response)

    return serve


class _ErrorPage:
    """Stands in for the client socket while gunicorn writes an error page."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.written = bytearray()

    def sendall(self, data: bytes) -> None:
        """Keep what gunicorn would send, to send it with the headers added."""
        self.written += data

    def gettimeout(self) -> float | None:
        """Blocking, as far as gunicorn's write_nonblock asks."""
        return None

    def setblocking(self, flag: bool) -> None:
        """Nothing to do: nothing is sent from here."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)  # what the access log may ask of the socket


def with_security_headers(page: bytes) -> bytes:
    """gunicorn's error page (status line, headers, body) with the app's headers."""
    status_line, sep, rest = page.partition(b"\r\n")
    if not sep:
        return page
    return status_line + b"\r\n" + HEADER_LINES + rest


class GuardedThreadWorker(ThreadWorker):
    """gthread whose threads wait on the network, while the app takes turns."""

    wsgi: Any  # the app gunicorn loaded (gunicorn ships no types)

    def load_wsgi(self) -> None:
        """Load the app, wrapped so APP_THREADS threads run it at once."""
        super().load_wsgi()
        self.wsgi = unnamed(taking_turns(self.wsgi, APP_THREADS))

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        """Answer as gunicorn does (status, message, access log), with our headers.

        gunicorn picks the status for each parse error and writes its page straight
        to the socket; it is written to an _ErrorPage first and sent from here.
        """
        page = _ErrorPage(client)
        super().handle_error(req, page, addr, exc)
        if not page.written:
            return
        try:
            util.write_nonblock(client, with_security_headers(bytes(page.written)))
        except Exception:  # as gunicorn: the client may be gone
            self.log.debug("Failed to send error message.")

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection as gthread does, as a _Conn."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client_sock.setblocking(True)
        self.enqueue_req(
            _Conn(self.cfg, client_sock, client_addr, listener.getsockname())
        )

    def handle(self, conn: TConn) -> Any:
        """Serve a request once bytes have arrived; park a silent connection at once."""
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(0):
            return _DEFER  # the poller wakes us when it speaks (or closes it later)
        if isinstance(conn, _Conn):
            conn.start_request()
        keep = super().handle(conn)
        if keep is False:
            # Close here: gthread would close on its one main thread, lingering up
            # to 2 s for the client's FIN; a client that never sends it would hold up
            # every connection of the worker meanwhile.
            if getattr(conn, "cut_off", False):
                util.close(conn.sock)
            else:
                util.close_graceful(conn.sock)
        return keep

    def handle_request(self, req: Any, conn: TConn) -> Any:
        """Serve a parsed request (from here on, timeouts are the body's business)."""
        if isinstance(conn, _Conn):
            conn.headers_read = True
            # Set here too: pipelined requests are parsed from what was read ahead.
            conn.sock.settimeout(WRITE_TIMEOUT)
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            self.log.warning(
                "Closed %s: the client read nothing for %g s",
                conn.client,
                WRITE_TIMEOUT,
            )
            if isinstance(conn, _Conn):
                conn.cut_off = True
            return False


worker_class = GuardedThreadWorker
