"""Issue 12's cases replayed over real HTTP, to gunicorn started as `make serve` does.

The other modules here send their requests through Flask's test client. This one
starts gunicorn from `make -n serve` (app/gunicorn_conf.py, its worker and its two
workers) on a database migrated with `flask db upgrade` (SQLite, or a private
PostgreSQL schema when TEST_DATABASE_URL is set), with an account made by `flask users
create`, then sends each case as bytes on a socket: the whole corpus of
test_corpus.py, the issue-12 cases (a copied cookie after sign-out, a rebound Host,
hostile `next` values, a forged log line, sign-in limits from two addresses, tokens
used by someone else, numbers and formulas, READ_ONLY pages) and the requests
gunicorn answers itself. Every response is checked for a 5xx, for the security
headers and for a Server header naming gunicorn. The last test prints and asserts
`replayed N requests (dialect): 0 5xx, K writes refused, database unchanged`.

A refused write is an unsafe request (POST, PUT, PATCH, DELETE) answered 4xx; the
tables (movies, ratings, users) are compared before and after each one. Writes that
succeed (scratch rows for the `next` and token cases) are undone, so the tables end
as they began.
"""

from __future__ import annotations

import contextlib
import csv
import html
import http.client
import io
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from gunicorn.config import Config
from werkzeug.urls import iri_to_uri

from app.accounts import create_user
from app.config import normalise_database_url
from app.db import db
from app.models import Movie
from tests import test_serving as serving
from tests.conftest import (
    TEST_DATABASE_URL,
    dispose,
    make_app,
    postgres_schema_url,
    shared_extension,
)
from tests.live_html import parse
from tests.security.conftest import (
    CSRF_META,
    PASSWORD,
    multipart,
    request_headers,
    snapshot,
)
from tests.security.safe_html import assert_safe_html
from tests.security.test_corpus import MB, REFUSALS, Case, seed
from tests.security.test_hosts_and_logs import REBOUND
from tests.security.test_input_normalisation import (
    ARABIC_12345,
    FULL_WIDTH,
    FULL_WIDTH_10,
    HIDDEN_FORMULAS,
    NOT_NUMBERS,
    NOT_WHOLE_NUMBERS,
    ZERO_WIDTH,
)
from tests.security.test_next import HOSTILE
from tests.security.test_token_owners import CSV, FILENAME, UNDO_TOKEN

HOST = serving.HOST
# Two more loopback addresses to connect from: two other people, as the server sees it.
ATTACKER, OWNER = "127.0.0.2", "127.0.0.3"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# gunicorn answers 414 itself to a longer request line; the app never sees it.
REQUEST_LINE_LIMIT = Config().limit_request_line
FORGED = "[2026-11-30 13:00:00,000] INFO [deadbeef] in auth: signed in 'admin'"
INVALID_COUNT = re.compile(r"Invalid</th><td>([0-9,]+)</td>")
NEW_COUNT = re.compile(r"New</th><td>([0-9,]+)</td>")


@dataclass
class Reply:
    """One response: status, headers (lower-case names, in order) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        return next((v for k, v in self.headers if k == name.lower()), None)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Tally:
    """What was replayed, and what went wrong, for the closing summary."""

    requests: int = 0
    refused: int = 0
    server_errors: list[str] = field(default_factory=list)
    named_server: list[str] = field(default_factory=list)
    changed_by_refusal: list[str] = field(default_factory=list)

    def note(self, what: str, reply: Reply) -> None:
        """Count a response; fail on a 5xx, a missing security header or a Server."""
        self.requests += 1
        if reply.status >= 500:
            self.server_errors.append(f"{what} -> {reply.status}")
        if any("gunicorn" in v.lower() for k, v in reply.headers if k == "server"):
            self.named_server.append(what)
        assert reply.status < 500, (what, reply.status, reply.text[:500])
        serving.assert_security_headers(reply.headers)


@dataclass
class Site:
    """The two servers (read-write and READ_ONLY) on one database, and the tally."""

    port: int
    read_only_port: int
    app: Flask  # in this process, on the same database: seeding and snapshots
    dialect: str
    ids: dict[str, int]
    log: Path
    start: dict[str, list[tuple]]
    tally: Tally = field(default_factory=Tally)
    browsers: dict[str, Browser] = field(default_factory=dict)

    def movie_id(self, name: str) -> int:
        """The id of the newest movie with this name."""
        with self.app.app_context():
            found = db.session.scalar(
                sa.select(sa.func.max(Movie.id)).where(Movie.name == name)
            )
            db.session.remove()
        assert found is not None, f"no movie called {name!r}"
        return int(found)

    def movie_names(self) -> list[str]:
        """Every movie's name, in id order."""
        with self.app.app_context():
            names = list(db.session.scalars(sa.select(Movie.name).order_by(Movie.id)))
            db.session.remove()
        return names

    def signed_in(self, name: str, port: int | None = None) -> Browser:
        """A browser signed in as `name` (one per name and server, made once)."""
        key = f"{name}@{port or self.port}"
        if key not in self.browsers:
            browser = Browser(self, port)
            assert browser.sign_in(name).status == 303
            self.browsers[key] = browser
        return self.browsers[key]

    def stranger(self) -> Browser:
        """A signed-out visitor who has a session and a CSRF token."""
        if "stranger" not in self.browsers:
            self.browsers["stranger"] = Browser(self)
        return self.browsers["stranger"]


class Browser:
    """An HTTP client that keeps its cookies and CSRF token, from a given address."""

    def __init__(self, site: Site, port: int | None = None, source: str = HOST) -> None:
        self.site = site
        self.port = port or site.port
        self.source = source
        self.cookies: dict[str, str] = {}
        self._token: str | None = None

    def fetch(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request on a fresh connection; note it in the tally."""
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        before = snapshot(self.site.app) if method in UNSAFE else None
        conn = http.client.HTTPConnection(
            HOST, self.port, timeout=30, source_address=(self.source, 0)
        )
        try:
            conn.request(method, iri_to_uri(url), body=body, headers=sent)
            response = conn.getresponse()
            reply = Reply(
                response.status,
                [(k.lower(), v) for k, v in response.getheaders()],
                response.read(),
            )
        finally:
            conn.close()
        self._keep_cookies(reply)
        what = f"{method} {url[:120]}"
        self.site.tally.note(what, reply)
        if before is not None and 400 <= reply.status < 500:
            self.site.tally.refused += 1
            if snapshot(self.site.app) != before:
                self.site.tally.changed_by_refusal.append(what)
                pytest.fail(f"{what} was refused ({reply.status}) but wrote")
        return reply

    def _keep_cookies(self, reply: Reply) -> None:
        """Store or drop the cookies a response sets (only name=value matters)."""
        for key, value in reply.headers:
            if key != "set-cookie":
                continue
            pair, _, attributes = value.partition(";")
            name, _, content = pair.strip().partition("=")
            if not content or "1970" in attributes or "max-age=0" in attributes.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = content

    def get(self, url: str) -> Reply:
        """GET a URL."""
        return self.fetch("GET", url)

    def token(self) -> str:
        """This browser's CSRF token, read from the sign-in page's meta tag."""
        if self._token is None:
            match = CSRF_META.search(self.get("/login").text)
            assert match, "no csrf-token meta tag on the page"
            self._token = match.group(1)
        return self._token

    def send(
        self,
        method: str,
        url: str,
        *,
        data: dict[str, str] | None = None,
        upload: tuple[str, bytes] | None = None,
        token: str | None = "valid",
        htmx: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send a form or an upload; token is "valid", None (missing) or a value."""
        # The session holds a token, as after any page view.
        sent = request_headers(self.token(), token, htmx, headers)
        body = None
        if upload is not None:
            encoded = multipart(upload[1], upload[0], resource="movies")
            body, sent["Content-Type"] = encoded["data"], encoded["content_type"]
        elif data is not None:
            body = urlencode(data).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        return self.fetch(method, url, body, sent)

    def sign_in(
        self,
        name: str = "ana",
        password: str = PASSWORD,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Sign in through the form (the session and its token are renewed)."""
        form = {"name": name, "password": password, "csrf_token": self.token()}
        reply = self.send("POST", "/login", data=form, token=None, headers=headers)
        self._token = None
        return reply


# ---------------------------------------------------------------- the servers


def flask_cli(spec: str, args: list[str], env: dict[str, str], stdin: str = "") -> None:
    """Run `flask --app SPEC ...` as an operator would; fail loudly if it fails."""
    done = subprocess.run(
        [str(serving.BIN / "flask"), "--app", spec, *args],
        cwd=serving.ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def database(tmp: Path) -> Iterator[str]:
    """A database URL for the servers: a SQLite file, or a PostgreSQL schema."""
    if not TEST_DATABASE_URL:
        yield "sqlite:///" + str(tmp / "replay.sqlite3")
        return
    # A schema of this run's own, as tests/conftest.py does, dropped at the end.
    schema = f"reeltable_replay_{os.getpid()}"
    admin = sa.create_engine(normalise_database_url(TEST_DATABASE_URL))
    try:
        with admin.begin() as conn:
            shared_extension(conn, "pg_trgm")
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        yield postgres_schema_url(TEST_DATABASE_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def start_server(
    spec: str, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `make serve`'s gunicorn command for this app, on a free port."""
    port = serving.free_port()
    command = serving.serve_command(port)
    assert command.count("app:create_app()") == 1, command
    command[command.index("app:create_app()")] = spec
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=serving.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return proc, port


def wait_until_up(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Wait (up to ~20 s) until the server answers its first page."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"gunicorn exited:\n{log.read_text()[-2000:]}"
        with contextlib.suppress(OSError):
            if serving.get(port, "/movies", timeout=1) == 200:
                return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.1)
    pytest.fail(f"gunicorn did not answer on port {port}")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop the servers at once (SIGINT: gunicorn's quick shutdown; all is read)."""
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    for proc in procs:
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A read-write and a READ_ONLY server on one migrated database, two accounts."""
    tmp = tmp_path_factory.mktemp("replay")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(database(tmp))
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "replay-secret"}
        for setting in ("READ_ONLY", "TRUST_PROXY", "TRUSTED_HOSTS", "HOST"):
            env.pop(setting, None)
        specs = {}
        for name in ("served", "read-only"):
            instance = tmp / name
            instance.mkdir()
            # The corpus's import limit, set as an operator would (instance config).
            (instance / "config.py").write_text(f"IMPORT_MAX_BYTES = {4 * MB}\n")
            specs[name] = f"app:create_app(instance_path={str(instance)!r})"
        flask_cli(specs["served"], ["db", "upgrade"], env)
        servers = []
        for name, extra in (("served", {}), ("read-only", {"READ_ONLY": "1"})):
            log = tmp / f"{name}.log"
            servers.append((*start_server(specs[name], {**env, **extra}, log), log))
        stack.callback(stop, [proc for proc, _, _ in servers])
        # While the servers start: an account made as an operator makes one...
        flask_cli(
            specs["served"],
            ["users", "create", "ana", "--password-stdin"],
            env,
            stdin=PASSWORD + "\n",
        )
        app = make_app(url, tmp / "local")
        stack.callback(dispose, app)
        with app.app_context():
            create_user("ben", PASSWORD)  # ... another by the command's own function
            db.session.remove()
        ids = seed(app)  # ... and the corpus's rows (its messages count them)
        for proc, port, log in servers:
            wait_until_up(proc, port, log)
        yield Site(
            port=servers[0][1],
            read_only_port=servers[1][1],
            app=app,
            dialect=sa.engine.make_url(url).get_backend_name(),
            ids=ids,
            log=servers[0][2],
            start=snapshot(app),
        )


# ---------------------------------------------------------------- the corpus


def browser_for(site: Site, who: str) -> Browser:
    """The visitor a corpus case is sent as.

    This server has accounts, so the corpus's "open" cases (no accounts) are sent
    signed in: a signed-in user meets exactly the rules everyone meets in open mode.
    """
    if who == "accounts":
        return site.stranger()
    if who == "read_only":
        return site.signed_in("ana", site.read_only_port)
    return site.signed_in("ana")


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.id)
def test_the_corpus_over_http(site: Site, case: Case) -> None:
    url = case.url.format(**site.ids)
    browser = browser_for(site, case.who)
    before = snapshot(site.app)
    reply = browser.send(
        case.method,
        url,
        data=case.data,
        upload=case.upload,
        token=case.token,
        htmx=case.htmx,
        headers=case.headers,
    )
    if len(f"{case.method} {iri_to_uri(url)} HTTP/1.1") > REQUEST_LINE_LIMIT:
        # Over real HTTP, gunicorn refuses the URL before the app could.
        assert reply.status == 414
        assert "URI Too Long" in reply.text
    else:
        assert reply.status == case.status, reply.text[:2000]
        assert case.message in html.unescape(reply.text)
        if (reply.header("content-type") or "").startswith("text/html"):
            assert_safe_html(reply.text)
            assert ("<html" in reply.text) == (not case.htmx)
    assert snapshot(site.app) == before


# ---------------------------------------------------------------- gunicorn's own


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [case[1:] for case in serving.GUNICORN_REFUSALS],
    ids=[case[0] for case in serving.GUNICORN_REFUSALS],
)
def test_gunicorns_own_refusals(site: Site, request_bytes: bytes, status: int) -> None:
    # Issue 12, item 10: no security headers, and "Server: gunicorn".
    got, headers, body = serving.parse_response(
        serving.exchange(site.port, request_bytes)
    )
    site.tally.note(request_bytes[:40].decode("latin-1"), Reply(got, headers, body))
    assert got == status


# ---------------------------------------------------------------- sessions


def signed_in_as(browser: Browser, name: str) -> bool:
    """True when the pages greet this browser as `name`."""
    page = browser.get("/login").text
    return f"You are signed in as <strong>{name}</strong>" in page


def copy_of(browser: Browser) -> Browser:
    """Another browser holding a copy of this one's cookies."""
    thief = Browser(browser.site, browser.port)
    thief.cookies = dict(browser.cookies)
    return thief


@pytest.mark.parametrize("everywhere", [False, True], ids=["sign-out", "everywhere"])
def test_a_copied_cookie_is_refused_after_sign_out(
    site: Site, everywhere: bool
) -> None:
    # Issue 12, item 1: the copy still showed the user and wrote (200).
    owner = Browser(site)
    assert owner.sign_in("ben").status == 303
    other_sign_in = Browser(site)
    assert other_sign_in.sign_in("ben").status == 303
    thief = copy_of(owner)
    assert signed_in_as(thief, "ben")
    thief.token()  # read while the session was good
    form = {"everywhere": "1"} if everywhere else {}
    assert owner.send("POST", "/logout", data=form).status == 303
    assert not signed_in_as(thief, "ben")
    refused = thief.send(
        "POST", "/movies", htmx=True, data={"name": "Stolen", "director": "Copy"}
    )
    assert refused.status == 403
    assert "Sign in to make changes." in refused.text
    assert signed_in_as(other_sign_in, "ben") is not everywhere


# ---------------------------------------------------------------- hosts and logs


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/movies"), ("GET", "/movies.csv"), ("GET", "/login"),
     ("DELETE", "/movies/{movie}"), ("PATCH", "/movies/{movie}"),
     ("POST", "/movies")],
)  # fmt: skip
def test_a_rebound_host_gets_400(site: Site, method: str, url: str) -> None:
    # Issue 12, item 2: Host attacker.example with a matching Origin wrote (200).
    reply = site.signed_in("ana").send(
        method,
        url.format(**site.ids),
        headers={"Host": REBOUND, "Origin": f"http://{REBOUND}"},
        data={"name": "Rebound", "version": "1"} if method in UNSAFE else None,
    )
    assert reply.status == 400
    assert "does not answer to that host name" in reply.text


def test_a_refused_path_cannot_forge_a_line_in_the_servers_log(site: Site) -> None:
    # Issue 12, item 5: the decoded path of a refused request was logged as it came.
    url = "/import/x%0D%0A" + quote(FORGED)
    reply = Browser(site).send(
        "POST", url, token=None, headers={"Origin": "http://evil.example"}
    )
    assert reply.status == 403
    deadline = time.monotonic() + 10
    while "refused POST /import/x" not in site.log.read_text():
        assert time.monotonic() < deadline, "the refusal was not logged"
        time.sleep(0.05)  # logged before the answer; this covers a late flush
    lines = site.log.read_text().splitlines()
    assert not any(line.startswith(FORGED[:26]) for line in lines)
    [refused] = [line for line in lines if "refused POST /import/x" in line]
    assert "refused POST /import/x\\r\\n[2026-11-30 13:00:00,000] INFO" in refused


# ---------------------------------------------------------------- next


def assert_home(reply: Reply) -> None:
    """A redirect to the list page (never off-site), or no redirect at all."""
    location = reply.header("location")
    if location is None:
        assert reply.status == 404
        return
    assert reply.status == 303
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc and not location.startswith("//")
    assert location == "/movies"


@pytest.mark.parametrize("target", HOSTILE)
def test_next_never_leaves_the_site(site: Site, target: str) -> None:
    # Issue 12, items 3 and 4: "/\t/evil.example" redirected off-site; a CR or LF
    # gave a 500 after the write had committed.
    ana = site.signed_in("ana")
    name = f"Next {HOSTILE.index(target)}"
    form = {"csrf_token": ana.token(), "next": target}
    created = ana.send(
        "POST", "/movies", token=None, data={**form, "name": name, "director": "D"}
    )
    assert_home(created)
    movie = site.movie_id(name)
    page = ana.get(f"/movies/{movie}/edit?next={quote(target, safe='')}")
    assert page.status == 200
    assert '<a href="/movies">Cancel</a>' in page.text
    assert "evil.example" not in page.text
    saved = ana.send(
        "POST",
        f"/movies/{movie}",
        token=None,
        data={**form, "version": "1", "name": name, "director": "E", "rating": "5"},
    )
    assert_home(saved)
    assert_home(ana.send("POST", f"/movies/{movie}/delete", token=None, data=form))
    assert name not in site.movie_names()
    undo = ana.send("POST", "/movies/undo", token=None, data={**form, "token": "x"})
    assert_home(undo)
    visitor = Browser(site)
    signed_in = visitor.send(
        "POST",
        "/login",
        token=None,
        data={
            "name": "ana",
            "password": PASSWORD,
            "csrf_token": visitor.token(),
            "next": target,
        },
    )
    assert_home(signed_in)


# ---------------------------------------------------------------- sign-in limits


def test_failures_lock_one_account_and_address_pair_only(site: Site) -> None:
    # Issue 12, item 6: failures from anywhere locked the account for everyone.
    attacker = Browser(site, source=ATTACKER)
    statuses = [attacker.sign_in("ana", "wrong password").status for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    refused = attacker.sign_in("ana")
    assert refused.status == 429
    assert refused.header("retry-after") is not None
    # Without TRUST_PROXY a forwarded address is not believed.
    forwarded = {"X-Forwarded-For": "198.51.100.7"}
    assert attacker.sign_in("ana", headers=forwarded).status == 429
    assert Browser(site, source=OWNER).sign_in("ana").status == 303
    assert Browser(site, source=ATTACKER).sign_in("ben").status == 303


# ---------------------------------------------------------------- token owners


def test_an_undo_token_works_for_its_owner_only(site: Site) -> None:
    # Issue 12, item 7: another signed-in user could undo someone's delete.
    ana, ben = site.signed_in("ana"), site.signed_in("ben")
    made = ana.send(
        "POST", "/movies", htmx=True, data={"name": "Owned", "director": "A"}
    )
    assert made.status == 200
    movie = site.movie_id("Owned")
    deleted = ana.send("DELETE", f"/movies/{movie}", htmx=True)
    assert deleted.status == 200
    match = UNDO_TOKEN.search(deleted.text)
    assert match, "no Undo offer in the toast"
    token = match.group(1)
    by_ben = ben.send("POST", "/movies/undo", htmx=True, data={"token": token})
    assert by_ben.status == 404
    assert "This delete can no longer be undone." in by_ben.text
    by_stranger = site.stranger().send(
        "POST", "/movies/undo", htmx=True, data={"token": token}
    )
    assert by_stranger.status == 403
    assert "Owned" not in site.movie_names()
    assert (
        ana.send("POST", "/movies/undo", htmx=True, data={"token": token}).status == 200
    )
    assert "Owned" in site.movie_names()
    assert ana.send("DELETE", f"/movies/{movie}", htmx=True).status == 200


def test_an_import_is_seen_and_committed_by_its_owner_only(site: Site) -> None:
    # Issue 12, item 7: anyone with the URL could read a preview or commit it.
    ana, ben = site.signed_in("ana"), site.signed_in("ben")
    uploaded = ana.send("POST", "/import", upload=(FILENAME, CSV))
    assert uploaded.status == 303
    location = uploaded.header("location")
    assert location
    for other in (ben, Browser(site)):
        for htmx in (False, True):
            hidden = other.send("GET", location, htmx=htmx)
            assert hidden.status == 404
            assert FILENAME not in hidden.text and "=bad" not in hidden.text
    assert ben.send("POST", location).status == 404
    assert site.stranger().send("POST", location).status == 403
    assert "Heat" not in site.movie_names()
    preview = ana.get(location)
    assert preview.status == 200
    assert FILENAME in preview.text


# ---------------------------------------------------------------- numbers, formulas


@pytest.mark.parametrize("raw", NOT_NUMBERS)
def test_a_rating_is_ascii_digits_and_one_point(site: Site, raw: str) -> None:
    # Issue 12, item 8: "1_0" was 10, "١٢٣٤٥" 12345.
    reply = site.signed_in("ana").send(
        "POST", "/movies", htmx=True, data={"name": "N", "director": "D", "rating": raw}
    )
    assert reply.status == 422
    assert "Rating must be a number." in reply.text


@pytest.mark.parametrize("raw", NOT_WHOLE_NUMBERS)
def test_a_whole_number_is_ascii_digits(site: Site, raw: str) -> None:
    reply = site.signed_in("ana").send(
        "POST",
        "/movies/{movie}/ratings".format(**site.ids),
        htmx=True,
        data={"rating": raw, "author": "A"},
    )
    assert reply.status == 422
    assert "Rating must be a whole number." in reply.text


def csv_bytes(rows: list[list[str]]) -> bytes:
    """Rows (the header first) as a spreadsheet would write them."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def test_an_import_refuses_hidden_formulas_and_foreign_digits(site: Site) -> None:
    # Issue 12, item 8: " =1+1" was stored as "=1+1", "١٢٣٤٥" as the id 12345.
    ana = site.signed_in("ana")
    rows = [["id", "name", "director", "rating"]]
    rows += [["", cell, "Someone", "1"] for cell in HIDDEN_FORMULAS]
    rows += [
        [ARABIC_12345, "Heat", "Michael Mann", "8.3"],
        ["", "Heat", "Michael Mann", "1_0"],
        ["", "Ran", "Akira Kurosawa", FULL_WIDTH_10],
        ["", "Imported", "Someone", "7"],
    ]
    names = site.movie_names()
    uploaded = ana.send("POST", "/import", upload=("hidden.csv", csv_bytes(rows)))
    assert uploaded.status == 303
    location = uploaded.header("location") or ""
    preview = ana.get(location).text
    assert INVALID_COUNT.findall(preview) == [str(len(HIDDEN_FORMULAS) + 3)]
    assert NEW_COUNT.findall(preview) == ["1"]
    reasons = html.unescape(preview)
    assert reasons.count("a spreadsheet would run it as a formula") == len(
        HIDDEN_FORMULAS
    )
    assert "id must be a whole number." in reasons
    assert reasons.count("Rating must be a number.") == 2
    assert ana.send("POST", location).status == 303
    assert site.movie_names() == [*names, "Imported"]
    deleted = ana.send("DELETE", f"/movies/{site.movie_id('Imported')}", htmx=True)
    assert deleted.status == 200


def test_the_export_protects_full_width_and_hidden_formulas(site: Site) -> None:
    # Issue 12, item 8: "＝1+1" and a formula behind a zero-width space went out bare.
    ana = site.signed_in("ana")
    values = [FULL_WIDTH[0] + "1+1", ZERO_WIDTH[0] + "=1+1"]
    for value in values:
        made = ana.send(
            "POST", "/movies", htmx=True, data={"name": value, "director": "Exported"}
        )
        assert made.status == 200
    exported = ana.get("/movies.csv?q=Exported")
    assert exported.status == 200
    rows = list(csv.reader(io.StringIO(exported.text, newline="")))
    assert sorted(row[1] for row in rows[1:] if row[2] == "Exported") == sorted(
        "'" + value for value in values
    )
    for value in values:
        gone = ana.send("DELETE", f"/movies/{site.movie_id(value)}", htmx=True)
        assert gone.status == 200


def test_ids_in_paths_are_ascii_digits(site: Site) -> None:
    # Issue 12, item 8: Werkzeug's <int:> took "١" as 1.
    browser = site.signed_in("ana")
    for path in ("/movies/\u0661/row", "/movies/\uff11/row"):
        assert browser.get(path).status == 404


# ---------------------------------------------------------------- READ_ONLY


@pytest.mark.parametrize("url", ["/movies", "/ratings", "/import"])
def test_read_only_pages_say_so_and_invite_no_sign_in(site: Site, url: str) -> None:
    # Issue 12, item 9: a read-only server told people to sign in.
    page = Browser(site, site.read_only_port).get(url)
    assert page.status == 200
    tree = parse(page.text)
    assert tree.find("p", class_="read-only-badge").text == "Read-only"
    assert "read-only" in tree.find("p", class_="read-only-banner").text
    assert "Sign in" not in page.text and "sign in" not in page.text
    if url == "/import":
        closed = tree.find("p", class_="import-closed")
        assert "this server is read-only for everyone" in closed.text


# ---------------------------------------------------------------- summary


def test_replay_summary(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    """Print what was replayed; no 5xx, no Server header, no refused write wrote."""
    tally = site.tally
    wrote = len(tally.changed_by_refusal)
    line = (
        f"replayed {tally.requests} requests ({site.dialect}):"
        f" {len(tally.server_errors)} 5xx, {tally.refused} writes refused,"
        f" database {f'CHANGED by {wrote} of them' if wrote else 'unchanged'}"
    )
    with capsys.disabled():
        print(f"\n{line}")
    assert tally.server_errors == []
    assert tally.named_server == []
    assert tally.changed_by_refusal == []
    # And the writes that were let through (scratch rows) were all undone.
    assert snapshot(site.app) == site.start
