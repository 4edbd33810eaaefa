"""CSV downloads of any table view, and the "Import CSV" page (upload, preview)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import time
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
from werkzeug.wrappers import Response as BaseResponse

from app import csvio
from app.crud import Conflict, CrudService, ListQuery, ValidationError
from app.htmx import is_htmx
from app.resources import RESOURCES
from app.security import body_limit
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
    filename = csvio.export_filename(stem, date.today())
    return Response(
        stream_with_context(csvio.primed(chunks)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get(f"/<any({', '.join(RESOURCES)}):name>.csv")
def export_csv(name: str) -> Response:
    """Download exactly the rows and order of /<name> with the same query string."""
    svc = service(name)
    return _csv_response(svc, svc.parse_query(request.args), name)


@bp.get("/movies/<int:movie_id>/ratings.csv")
def export_movie_ratings(movie_id: int) -> Response:
    """Download one movie's ratings (404 if there is no such movie)."""
    service("movies").get(movie_id)
    svc = service("ratings")
    args = MultiDict(request.args)
    args["movie_id"] = str(movie_id)
    return _csv_response(svc, svc.parse_query(args), f"movie-{movie_id}-ratings")


# ------------------------------------------------------------------ import


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


def _load_state(token: str) -> dict[str, Any]:
    """Read an import's saved state, or 404 if it is unknown, expired or not ours.

    Another owner's import gets the very answer an unknown one gets, so a token
    seen elsewhere (a log, a shared screen) reveals nothing (issue 12).
    """
    _, state_path = _paths(token)
    try:
        state: dict[str, Any] = json.loads(state_path.read_text("utf-8"))
    except FileNotFoundError:
        abort(404, GONE)
    if state.get("owner") != current_owner():
        abort(404, GONE)
    return state


def _save_state(token: str, state: dict[str, Any]) -> None:
    """Write an import's state atomically (another worker may read it)."""
    _, state_path = _paths(token)
    tmp = state_path.with_suffix(".tmp")
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
    """The claim on an import while it runs: an exclusive flock on <token>.lock.

    The kernel drops a flock when its process ends, however it ends (kill -9, a
    worker killed at gunicorn's timeout), so a crashed import never blocks a
    retry (issue 11: the old <token>.importing marker did, silently, for a day);
    while one runs, a second attempt finds the lock taken and says so.
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
        """Let the next attempt in (closing the file drops the flock)."""
        if self.file is not None:
            self.file.close()
            self.file = None


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
    """Render the import page, or just its result region for htmx."""
    context.setdefault("resources", RESOURCES)
    context.setdefault("max_bytes", current_app.config["IMPORT_MAX_BYTES"])
    context.setdefault("selected", "movies")
    if is_htmx(request):
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
    """Save the uploaded file, validate it whole and show what an import would do."""
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
    if not is_htmx(request):
        return redirect(url_for(".show", token=token), 303)
    result = _render_state(token, state)
    response = current_app.make_response(result)
    response.headers["HX-Push-Url"] = url_for(".show", token=token)
    return response


def _render_state(token: str, state: dict[str, Any], **extra: Any) -> Any:
    """Render a saved preview or a finished import."""
    template = (
        "partials/import_done.html"
        if state["status"] == "done"
        else "partials/import_preview.html"
    )
    return _render(
        template,
        token=token,
        state=state,
        resource=RESOURCES[state["resource"]],
        selected=state["resource"],
        **extra,
    )


@bp.get("/import/<token>")
def show(token: str) -> Any:
    """Show an import's preview, or its result once done."""
    return _render_state(token, _load_state(token))


@bp.post("/import/<token>")
def commit(token: str) -> Any:
    """Write every valid row of a previewed file in one transaction, or nothing."""
    state = _load_state(token)
    if state["status"] == "done":
        return _render_state(token, state)
    csv_path, _ = _paths(token)
    lock = _ImportLock(csv_path.with_suffix(".lock"))
    if not lock.acquire():
        since = f" (since {lock.since})" if lock.since else ""
        note = (
            f"This file is being imported right now{since}. Reload this page in"
            " a while to see the result; it will not be imported twice."
        )
        return _render_state(token, state, note=note, status=409)
    try:
        return _import_claimed(token, csv_path)
    finally:
        lock.release()


def _import_claimed(token: str, csv_path: Path) -> Any:
    """Run an import whose lock this request holds, and show what it did."""
    # The import that held the lock a moment ago may have finished it.
    state = _load_state(token)
    if state["status"] == "done":
        return _render_state(token, state)
    marker = csv_path.with_suffix(".importing")
    if not csv_path.exists() and marker.exists():
        # Left by a worker of the previous version killed during an import.
        os.replace(marker, csv_path)
    if not csv_path.exists():
        abort(404, GONE)
    name, owner = state["resource"], state["owner"]
    try:
        preview = csvio.import_file(service(name), csv_path, expected=state["counts"])
    except csvio.PreviewOutdated as exc:
        state = _state_from(name, state["filename"], exc.preview, "preview", owner)
        _keep_state(token, state)
        note = "The table changed since this preview: here is the new one. Check it."
        return _render_state(token, state, note=note)
    except (ValidationError, Conflict) as exc:
        reason = (
            "; ".join(exc.errors.values())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        note = f"Nothing was imported: {reason}"
        return _render_state(token, state, note=note, status=409)
    state = _state_from(name, state["filename"], preview, "done", owner)
    _keep_state(token, state)
    csv_path.unlink(missing_ok=True)
    if not is_htmx(request):
        return redirect(url_for(".show", token=token), 303)
    return _render_state(token, state)


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
