"""CSV downloads of any table view, and the "Import CSV" page (upload, preview)."""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import date
from pathlib import Path
from typing import Any

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

bp = Blueprint("csv_io", __name__)

TOKEN_LENGTH = 24  # characters of secrets.token_urlsafe(18)
IMPORT_TTL_SECONDS = 24 * 3600


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
    """The folder holding uploads between preview and import (shared by workers)."""
    folder = Path(current_app.instance_path) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
    """Read an import's saved state, or 404 if it is unknown or expired."""
    _, state_path = _paths(token)
    try:
        return json.loads(state_path.read_text("utf-8"))
    except FileNotFoundError:
        abort(404, "This import has expired or does not exist; upload the file again.")


def _save_state(token: str, state: dict[str, Any]) -> None:
    """Write an import's state atomically (another worker may read it)."""
    _, state_path = _paths(token)
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), "utf-8")
    os.replace(tmp, state_path)


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
    name: str, filename: str, preview: csvio.Preview, status: str
) -> dict[str, Any]:
    """The JSON-able record of a preview or a finished import."""
    return {
        "resource": name,
        "filename": filename,
        "status": status,
        "counts": preview.counts,
        "errors": [[e.line, e.column, e.reason] for e in preview.errors],
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
    csv_path, _ = _paths(token)
    file.save(csv_path)  # copied to disk in chunks, never read whole
    filename = Path(file.filename).name
    try:
        preview = csvio.preview_file(service(name), csv_path)
    except csvio.CsvFileError as exc:
        csv_path.unlink(missing_ok=True)
        return _file_error(exc.message, selected=name, filename=filename)
    _save_state(token, _state_from(name, filename, preview, "preview"))
    if not is_htmx(request):
        return redirect(url_for(".show", token=token), 303)
    result = _render_state(token, _load_state(token))
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
    csv_path, _ = _paths(token)
    claimed = csv_path.with_suffix(".importing")
    try:
        # Renaming is atomic: of two clicks (or two workers) only one gets the file.
        os.replace(csv_path, claimed)
    except FileNotFoundError:
        return _render_state(token, _load_state(token))
    name = state["resource"]
    done = False
    try:
        preview = csvio.import_file(service(name), claimed, expected=state["counts"])
        done = True
    except csvio.PreviewOutdated as exc:
        state = _state_from(name, state["filename"], exc.preview, "preview")
        _save_state(token, state)
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
    finally:
        if done:
            claimed.unlink(missing_ok=True)
        else:
            os.replace(claimed, csv_path)
    _save_state(token, _state_from(name, state["filename"], preview, "done"))
    if not is_htmx(request):
        return redirect(url_for(".show", token=token), 303)
    return _render_state(token, _load_state(token))


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
