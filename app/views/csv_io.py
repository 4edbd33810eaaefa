"""CSV downloads of any table view, and the "Import CSV" page (upload, check, write)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError as NoRoute
from werkzeug.wrappers import Response as BaseResponse

from app import ROOT, create_app, csvio
from app.crud import Conflict, CrudService, ListQuery, ValidationError, WriteBusy
from app.htmx import is_htmx, is_partial, push_url
from app.resources import RESOURCES, TABLES
from app.security import body_limit
from app.ui import Table
from app.views.common import service
from app.views.owners import current_owner

bp = Blueprint("csv_io", __name__)

TOKEN_LENGTH = 24  # characters of secrets.token_urlsafe(18)
IMPORT_TTL_SECONDS = 24 * 3600
GONE = "This import has expired or does not exist; upload the file again."


# ------------------------------------------------------------------ export


def _csv_response(svc: CrudService, query: ListQuery, stem: str) -> Response:
    """Stream the CSV of a query as a download named after `stem` and today."""
    chunks = csvio.export_chunks(svc, query, bom=request.args.get("bom") == "1")
    return csv_download(chunks, stem)


def csv_download(chunks: Iterator[bytes], stem: str) -> Response:
    """Stream CSV chunks (primed: early failures are plain errors) as a download."""
    filename = csvio.export_filename(stem, date.today())
    return Response(
        stream_with_context(csvio.primed(chunks)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class TableName(BaseConverter):
    """A declared table's name (`/movies.csv`), looked up when a URL is matched.

    So a table declared after this module is imported (app.resources.register)
    has its download too; any other name matches no route.
    """

    regex = "[a-z_]+"

    def to_python(self, value: str) -> str:
        """The name, if a table of that name is declared."""
        if value not in RESOURCES:
            raise NoRoute()
        return value


@bp.get("/<table_name:name>.csv")
def export_csv(name: str) -> Response:
    """Download exactly the rows and order of /<name> with the same query string."""
    svc = service(name)
    return _csv_response(svc, svc.parse_query(request.args), name)


@bp.get("/<table_name:name>/<int:row_id>/<child:child>.csv")
def export_children(name: str, row_id: int, child: Table) -> Response:
    """Download one row's children, e.g. a movie's ratings (404 if no such row)."""
    table = TABLES[name]
    if child.name not in table.children or child.nesting is None:
        abort(404)
    service(name).get(row_id)
    svc = service(child.name)
    args = MultiDict(request.args)
    args[child.nesting.foreign_key] = str(row_id)  # the path wins over the query
    stem = f"{table.singular}-{row_id}-{child.name}"
    return _csv_response(svc, svc.parse_query(args), stem)


# ------------------------------------------------------------------ import
#
# An upload is saved as <token>.csv beside its state, <token>.json (status, counts,
# invalid rows, progress), in instance/imports/. A small file is checked, and later
# imported, within its request. A bigger one would hold one of the server's two
# workers for a minute or more while nearly every other request timed out (issue
# 11; an import during edits: `python -m bench.stress --import FILE`), so it is
# checked and imported by a job: a child process (`job_main`) that saves its
# progress in the state file, which the page polls. A child process, not a thread
# in the worker, because a thread would share the worker's one interpreter lock
# with the requests it serves (figures in README.md, "CSV import"). Whoever checks
# or imports an upload holds <token>.lock (see _ImportLock); a job inherits it from
# the request that starts it, so a file is never imported twice, and a job that
# dies (kill -9, a restart) lets go of it: the page then says so and the upload can
# be imported again.

# States a job is working in; "preview", "done" and "failed" are final.
RUNNING = ("checking", "importing")
POLL_SECONDS = 1  # how often the page asks how a job is doing
REPORT_SECONDS = 0.25  # how often a job saves its progress, at most
BUSY_WAIT_SECONDS = 600  # how long an import waits for another one to finish
JOB_ENTRY = "from app.views.csv_io import job_main; job_main()"
# The job's CPU priority below the workers': an import takes about as long at 10
# as at 0 while GET /movies answers faster meanwhile (`python -m bench.stress
# --import FILE` prints both).
JOB_NICENESS = 10
STOPPED = (
    "The import stopped before it finished (the server was restarted or the job"
    " was ended), so nothing was written. You can import the file again."
)


def _imports_dir() -> Path:
    """The folder holding uploads between preview and import (shared by workers).

    Only the server's own user may list it: the file names are import tokens.
    """
    folder = Path(current_app.instance_path) / "imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)  # made by an earlier version, open to everyone
    return folder


def _make_private(path: Path) -> None:
    """Create `path` empty, readable by the server's own user only (0600).

    Uploads hold people's data, like the secret key: not for every account on
    the server (issue 12). Whatever then writes the file opens it truncated, which
    keeps the mode, so no reader ever finds it open to all.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode above applies only to a new file
    finally:
        os.close(fd)


def _paths(token: str) -> tuple[Path, Path]:
    """Return the (csv, state) paths of an import, or 404 for a malformed token."""
    if (
        len(token) != TOKEN_LENGTH
        or not token.replace("-", "").replace("_", "").isalnum()
    ):
        abort(404)
    folder = _imports_dir()
    return folder / f"{token}.csv", folder / f"{token}.json"


def _read_state(token: str) -> dict[str, Any]:
    """Read an import's saved state, whoever owns it, or 404 if it is unknown."""
    _, state_path = _paths(token)
    try:
        state: dict[str, Any] = json.loads(state_path.read_text("utf-8"))
    except FileNotFoundError:
        abort(404, GONE)
    return state


def _load_state(token: str) -> dict[str, Any]:
    """Read an import's saved state, or 404 if it is unknown, expired or not ours.

    Another owner's import gets the very answer an unknown one gets, so a token
    seen elsewhere (a log, a shared screen) reveals nothing (issue 12).
    """
    state = _read_state(token)
    if state.get("owner") != current_owner():
        abort(404, GONE)
    return state


def _save_state(token: str, state: dict[str, Any]) -> None:
    """Write an import's state atomically (another worker may read it)."""
    _, state_path = _paths(token)
    # Each writer its own temporary file: a job saving progress and a page
    # noticing that a job died could otherwise write the same one.
    tmp = state_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        _make_private(tmp)
        tmp.write_text(json.dumps(state), "utf-8")
        os.replace(tmp, state_path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _keep_state(token: str, state: dict[str, Any]) -> None:
    """Save an import's state after the fact; a failure is logged, not shown.

    The page is drawn from `state` itself, so the person still sees the result.
    """
    try:
        _save_state(token, state)
    except OSError as exc:
        current_app.logger.error("import %s: state not saved: %s", token, exc)


def _not_stored(exc: OSError, *leftovers: Path) -> Any:
    """Remove what a failed write left behind and answer 507 (issue 11).

    A partial upload left in the folder kept a full disk full, so every later
    upload failed too until the daily sweep.
    """
    for path in leftovers:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            current_app.logger.exception("import: cannot remove %s", path)
    current_app.logger.error("import upload not stored: %s", exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "The server has no room to store the upload right now"
    else:
        reason = f"The server could not store the upload ({exc.strerror or exc})"
    return _file_error(
        f"{reason}. Nothing was saved. Try again later; if it keeps happening,"
        " tell whoever runs this server.",
        status=507,
        heading="The upload could not be stored.",
    )


class _ImportLock:
    """The claim on an upload while it is checked or imported: a flock on <token>.lock.

    The kernel drops a flock when its process ends, however it ends (kill -9, a
    worker killed at gunicorn's timeout), so a crashed import never blocks a
    retry (issue 11: the old <token>.importing marker did, silently, for a day);
    while one runs, a second attempt finds the lock taken and says so. A job
    started for the upload inherits the locked file (the same open file, so the
    same lock) and holds it until it ends.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[str] | None = None
        self.since = ""  # when the holder started, if another holds it

    def acquire(self) -> bool:
        """Take the lock if it is free; otherwise read when its holder started."""
        handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.since = handle.read().strip()
            handle.close()
            return False
        try:
            handle.truncate(0)
            handle.write(datetime.now(UTC).strftime("%H:%M:%S UTC"))
            handle.flush()
        except OSError:
            pass  # only the "since when" note is lost
        self.file = handle
        return True

    def release(self) -> None:
        """Let the next attempt in (closing the file drops the flock).

        A job started meanwhile keeps holding it through its own copy.
        """
        if self.file is not None:
            self.file.close()
            self.file = None

    def held(self) -> bool:
        """True if someone (a request or a job) holds the lock now."""
        if not self.acquire():
            return True
        self.release()
        return False


def _lock_of(token: str) -> _ImportLock:
    """The lock of an upload."""
    csv_path, _ = _paths(token)
    return _ImportLock(csv_path.with_suffix(".lock"))


def _sweep() -> None:
    """Delete imports older than a day, so abandoned uploads do not pile up."""
    limit = time.time() - IMPORT_TTL_SECONDS
    for path in _imports_dir().iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except FileNotFoundError:
            pass  # another worker swept it first


def _state_from(
    name: str, filename: str, preview: csvio.Preview, status: str, owner: str
) -> dict[str, Any]:
    """The JSON-able record of a preview or a finished import, and whose it is."""
    return {
        "owner": owner,
        "resource": name,
        "filename": filename,
        "status": status,
        "counts": preview.counts,
        "errors": [[e.line, e.column, e.reason] for e in preview.errors],
        "keeps_ids": preview.keeps_ids,
    }


def _render(
    template: str, status: int = 200, **context: Any
) -> tuple[str, int] | BaseResponse:
    """Render the import page, or just its result region for htmx.

    A history restore (Back or Forward with htmx's cache empty) gets the page.
    """
    context.setdefault("resources", RESOURCES)
    context.setdefault("max_bytes", current_app.config["IMPORT_MAX_BYTES"])
    context.setdefault("selected", next(iter(TABLES)))  # the first in the nav
    context["htmx"] = is_htmx(request)
    if is_partial(request):
        return render_template(template, **context), status
    return render_template("import.html", result_template=template, **context), status


def _file_error(message: str, status: int = 422, **context: Any) -> Any:
    """Answer a file that cannot be imported at all."""
    return _render("partials/import_error.html", status, message=message, **context)


@bp.get("/import")
def index() -> Any:
    """Show the "Import CSV" page: choose a table and a file."""
    return _render("partials/import_intro.html")


@bp.post("/import")
@body_limit("IMPORT_MAX_BYTES")
def upload() -> Any:
    """Save the uploaded file, then check it (here, or in a job if it is big)."""
    name = request.form.get("resource", "")
    file = request.files.get("file")
    if name not in RESOURCES:
        return _file_error("Choose the table to import into.")
    if file is None or not file.filename:
        return _file_error("Choose a CSV file to upload.", selected=name)
    _sweep()
    token = secrets.token_urlsafe(18)
    csv_path, state_path = _paths(token)
    try:
        _make_private(csv_path)
        file.save(csv_path)  # copied to disk in chunks, never read whole
    except OSError as exc:
        return _not_stored(exc, csv_path)
    filename = Path(file.filename).name
    if csv_path.stat().st_size > current_app.config["IMPORT_INLINE_BYTES"]:
        return _check_in_a_job(token, name, filename)
    try:
        preview = csvio.preview_file(service(name), csv_path)
    except csvio.CsvFileError as exc:
        csv_path.unlink(missing_ok=True)
        return _file_error(exc.message, selected=name, filename=filename)
    try:
        state = _state_from(name, filename, preview, "preview", current_owner())
        _save_state(token, state)
    except OSError as exc:
        return _not_stored(exc, csv_path, state_path)
    return _shown_at(token, state)


def _shown_at(token: str, state: dict[str, Any], status: int = 200) -> Any:
    """Answer with an import's page, at its own URL: /import/<token>."""
    if not is_htmx(request):
        return redirect(url_for(".show", token=token), 303)
    response = current_app.make_response(_render_state(token, state, status=status))
    return push_url(response, url_for(".show", token=token))


def _check_in_a_job(token: str, name: str, filename: str) -> Any:
    """Start the job that checks a big upload, and show its progress."""
    csv_path, state_path = _paths(token)
    state = {
        "owner": current_owner(),
        "resource": name,
        "filename": filename,
        "status": "checking",
        "progress": {"phase": "starting", "done": 0, "total": 0},
    }
    lock = _lock_of(token)
    lock.acquire()  # a new token: nobody else knows it yet
    try:
        _save_state(token, state)
        _start_job(token, lock)
    except OSError as exc:
        return _not_stored(exc, csv_path, state_path, lock.path)
    finally:
        lock.release()  # the job holds it now
    return _shown_at(token, state, status=202)


def _render_state(token: str, state: dict[str, Any], **extra: Any) -> Any:
    """Render a saved preview, a job's progress, a failed check or a finished import."""
    status = state["status"]
    if status == "failed":
        return _file_error(
            state["message"],
            selected=state["resource"],
            filename=state["filename"],
        )
    if status in RUNNING:
        template = "partials/import_progress.html"
    elif status == "done":
        template = "partials/import_done.html"
    else:
        template = "partials/import_preview.html"
    extra.setdefault("note", state.get("note"))
    return _render(
        template,
        token=token,
        state=state,
        resource=RESOURCES[state["resource"]],
        selected=state["resource"],
        poll_seconds=POLL_SECONDS,
        **extra,
    )


def _current_state(token: str) -> dict[str, Any]:
    """An import's state, with a job that died since it saved it noticed."""
    state = _load_state(token)
    if state["status"] not in RUNNING or _lock_of(token).held():
        return state
    # The job is gone: it may have ended just now, after saving its result.
    state = _load_state(token)
    if state["status"] == "checking":
        state = {
            **state,
            "status": "failed",
            "message": "The check of this file stopped before it finished (the"
            " server was restarted or the job was ended). Upload the file again.",
        }
        _paths(token)[0].unlink(missing_ok=True)
    elif state["status"] == "importing":
        current_app.logger.warning("import %s: its job ended without a result", token)
        state = {**state, "status": "preview", "note": STOPPED}
        state.pop("progress", None)
    _keep_state(token, state)
    return state


@bp.get("/import/<token>")
def show(token: str) -> Any:
    """Show an import's preview, its progress, or its result once done."""
    return _render_state(token, _current_state(token))


@bp.post("/import/<token>")
def commit(token: str) -> Any:
    """Write every valid row of a previewed file in one transaction, or nothing."""
    state = _current_state(token)
    if state["status"] != "preview":
        # Done, failed, or under way (a second click, Back then Import again, a
        # resent form): show how it stands; it is never imported twice.
        return _render_state(token, state)
    lock = _lock_of(token)
    if not lock.acquire():
        since = f" (since {lock.since})" if lock.since else ""
        note = (
            f"This file is being imported right now{since}. Reload this page in"
            " a while to see the result; it will not be imported twice."
        )
        return _render_state(token, state, note=note, status=409)
    try:
        return _import_claimed(token, lock)
    finally:
        lock.release()


def _import_claimed(token: str, lock: _ImportLock) -> Any:
    """Run (or start the job of) an import whose lock this request holds."""
    # The import that held the lock a moment ago may have finished it.
    state = _load_state(token)
    if state["status"] != "preview":
        return _render_state(token, state)
    csv_path, _ = _paths(token)
    marker = csv_path.with_suffix(".importing")
    if not csv_path.exists() and marker.exists():
        # Left by a worker of the previous version killed during an import.
        os.replace(marker, csv_path)
    if not csv_path.exists():
        abort(404, GONE)
    if csv_path.stat().st_size > current_app.config["IMPORT_INLINE_BYTES"]:
        started = {
            **state,
            "status": "importing",
            "note": None,
            "progress": {"phase": "starting", "done": 0, "total": 0},
        }
        try:
            _save_state(token, started)
            _start_job(token, lock)
        except OSError as exc:
            _keep_state(token, state)
            current_app.logger.error("import %s: job not started: %s", token, exc)
            note = "The server could not start the import; nothing was written."
            return _render_state(token, state, note=note, status=503)
        return _shown_at(token, started, status=202)
    try:
        state = _import_file(token, state)
    except WriteBusy:
        note = f"Nothing was imported: {WriteBusy.message}"
        headers = {"Retry-After": str(WriteBusy.retry_after)}
        response = current_app.make_response(
            _render_state(token, state, note=note, status=503)
        )
        response.headers.update(headers)
        return response
    if state["status"] == "done":
        csv_path.unlink(missing_ok=True)
        return _shown_at(token, state)
    return _render_state(token, state, status=state.pop("answer", 200))


def _import_file(
    token: str, state: dict[str, Any], progress: csvio.Progress | None = None
) -> dict[str, Any]:
    """Import a previewed upload and save what came of it (raises WriteBusy).

    The new state says it: "done", or "preview" with a note (the table changed
    since the preview, or the database refused the rows) and the status code
    to answer in "answer".
    """
    csv_path, _ = _paths(token)
    name, owner, filename = state["resource"], state["owner"], state["filename"]
    svc = service(name)
    try:
        preview = csvio.import_file(
            svc, csv_path, expected=state["counts"], progress=progress
        )
    except csvio.PreviewOutdated as exc:
        state = _state_from(name, filename, exc.preview, "preview", owner)
        state["note"] = (
            "The table changed since this preview: here is the new one. Check it."
        )
    except (ValidationError, Conflict) as exc:
        reason = (
            "; ".join(exc.errors.values())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        state = {
            **state,
            "status": "preview",
            "note": f"Nothing was imported: {reason}",
        }
        state.pop("progress", None)
        _keep_state(token, state)
        return {**state, "answer": 409}
    else:
        state = _state_from(name, filename, preview, "done", owner)
        # Its change set, so the result page can offer to undo it (issue 14).
        state["set_id"] = svc.last_set
    _keep_state(token, state)
    return state


@bp.post("/import/<token>/undo")
def undo_import(token: str) -> Any:
    """Undo a finished import as one change set (its owner only), once."""
    state = _current_state(token)
    if state["status"] != "done" or not state.get("set_id") or state.get("undone"):
        return _render_state(token, state)
    try:
        service(state["resource"]).undo_set(state["set_id"])
    except (Conflict, ValidationError) as exc:
        reason = (
            "Not undone: " + " ".join(exc.errors.values())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        return _render_state(token, state, undo_note=reason, status=409)
    state = {**state, "undone": True}
    _keep_state(token, state)
    return _render_state(token, state)


# ------------------------------------------------------------------ the jobs


def _start_job(token: str, lock: _ImportLock) -> None:
    """Start the child process that checks or imports an upload, as its state says.

    The child is handed the locked <token>.lock, so the lock is held until the
    child ends, and this app's configuration (on stdin: it holds the secret key),
    so it works on the same database and folder. Raises OSError if it cannot start.
    """
    assert lock.file is not None
    config: dict[str, Any] = {}
    for key, value in current_app.config.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue  # a Flask default (a timedelta, say): the child has it too
        config[key] = value
    job = {
        "token": token,
        "lock": lock.file.fileno(),
        "instance_path": current_app.instance_path,
        "config": config,
    }
    child = subprocess.Popen(
        [sys.executable, "-c", JOB_ENTRY],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        pass_fds=(lock.file.fileno(),),
    )
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps(job).encode())
        child.stdin.close()
    except OSError:
        child.kill()
        child.wait()
        raise
    # Collect its exit status when it ends, so it never lingers as a zombie.
    threading.Thread(target=child.wait, name=f"import-{token[:6]}", daemon=True).start()


def job_main() -> None:
    """Run the job described on stdin: check or import one upload (see _start_job)."""
    job = json.load(sys.stdin)
    # Below the workers: requests go first, the job takes what CPU is left.
    os.nice(JOB_NICENESS)
    app = create_app(job["config"], instance_path=job["instance_path"])
    with app.app_context():
        token = job["token"]
        try:
            _run_job(token)
        except Exception:
            app.logger.exception("import %s: the job failed", token)
            raise
        finally:
            # The result is saved: let a next step (Import) in now, not once this
            # process has wound down.
            os.close(job["lock"])


class _Reporter:
    """Saves a job's progress in its state, a few times a second at most."""

    def __init__(self, token: str, state: dict[str, Any], totals: dict[str, int]):
        self.token = token
        self.state = state
        self.totals = totals  # by phase, when the job knows better than its caller
        self.phase = ""
        self.due = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        """Record that `done` of `total` rows are checked or written."""
        now = time.monotonic()
        if phase == self.phase and now < self.due:
            return
        self.phase, self.due = phase, now + REPORT_SECONDS
        total = total or self.totals.get(phase, 0)
        self.state["progress"] = {"phase": phase, "done": done, "total": total}
        _keep_state(self.token, self.state)


def _lines_in(path: Path) -> int:
    """Count a file's lines quickly (its rows, give or take blank or quoted lines)."""
    count, last = 0, b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _run_job(token: str) -> None:
    """Check or import an upload, as its state asks, saving progress and result."""
    state = _read_state(token)
    csv_path, _ = _paths(token)
    if state["status"] == "checking":
        _check_job(token, state, csv_path)
    elif state["status"] == "importing":
        _import_job(token, state, csv_path)


def _check_job(token: str, state: dict[str, Any], csv_path: Path) -> None:
    """Check an upload as a preview does, saving progress, then the preview."""
    name, filename, owner = state["resource"], state["filename"], state["owner"]
    report = _Reporter(token, state, {"checking": max(_lines_in(csv_path) - 1, 0)})
    report("checking", 0, 0)
    try:
        preview = csvio.preview_file(service(name), csv_path, progress=report)
    except csvio.CsvFileError as exc:
        csv_path.unlink(missing_ok=True)
        _keep_state(token, {**state, "status": "failed", "message": exc.message})
        return
    except Exception:
        message = (
            "The server could not check this file (the error is logged). Upload it"
            " again; if it keeps happening, tell whoever runs this server."
        )
        _keep_state(token, {**state, "status": "failed", "message": message})
        raise
    _keep_state(token, _state_from(name, filename, preview, "preview", owner))


def _import_job(token: str, state: dict[str, Any], csv_path: Path) -> None:
    """Import an upload, waiting its turn behind another import, saving progress."""
    counts = state["counts"]
    report = _Reporter(token, state, {"checking": sum(counts.values())})
    waited_until = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        try:
            result = _import_file(token, state, progress=report)
            break
        except WriteBusy:
            # Another import holds the database: wait for it, saying so.
            if time.monotonic() > waited_until:
                note = "Nothing was imported: another import kept the database busy."
                _keep_state(token, {**state, "status": "preview", "note": note})
                return
            report("waiting", 0, 0)
            time.sleep(POLL_SECONDS)
        except Exception:
            note = (
                "The import failed, so nothing was written (the error is logged)."
                " Try again; if it keeps happening, tell whoever runs this server."
            )
            failed = {**state, "status": "preview", "note": note}
            failed.pop("progress", None)
            _keep_state(token, failed)
            raise
    if result["status"] == "done":
        csv_path.unlink(missing_ok=True)


@bp.errorhandler(OSError)
def not_stored(exc: OSError) -> Any:
    """An upload Werkzeug could not spool to disk while reading the form: 507."""
    if request.endpoint != "csv_io.upload":
        raise exc
    return _not_stored(exc)


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> Any:
    """An upload over IMPORT_MAX_BYTES: 413 with the limit."""
    limit = current_app.config["IMPORT_MAX_BYTES"]
    shown = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit:,} bytes"
    return _file_error(
        f"The file is larger than the import limit of {shown}. Split it into"
        " smaller files, or run `flask --app app import` on the server.",
        status=413,
    )
