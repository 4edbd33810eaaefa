"""The "Import CSV" page: upload, check (here or by a job), preview, write, undo."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from flask import abort, current_app, redirect, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from app import csvfile
from app.crud import Conflict, ValidationError, WriteBusy
from app.db import StorageFull, db
from app.htmx import is_htmx, is_partial, push_url
from app.imports.job import import_upload, start_job
from app.imports.store import (
    GONE,
    POLL_SECONDS,
    RUNNING,
    import_row,
    job_alive,
    keep_state,
    lease_ms,
    now_ms,
    save_state,
    state_from,
    state_of,
    store_upload,
    sweep,
)
from app.models import Import
from app.resources import RESOURCES, TABLES
from app.security import body_limit
from app.views.common import service
from app.views.csv import bp
from app.views.owners import current_owner

STOPPED = (
    "The import stopped before it finished (the server was restarted or the job"
    " was ended), so nothing was written. You can import the file again."
)


def _load_row(token: str) -> Import:
    """An import's row, or 404 if it is unknown, expired or not ours.

    Another owner's import gets the very answer an unknown one gets, so a token
    seen elsewhere (a log, a shared screen) reveals nothing (issue 12).
    """
    row = import_row(token)
    if row is None or row.owner != current_owner():
        abort(404, GONE)
    return row


def _load_state(token: str) -> dict[str, Any]:
    """Read an import's state, or 404 if it is unknown, expired or not ours."""
    return state_of(_load_row(token))


def _not_stored(exc: Exception) -> Any:
    """Answer 507 for an upload that could not be stored (nothing was, issue 11)."""
    db.session.rollback()
    current_app.logger.error("import upload not stored: %s", exc)
    full = isinstance(exc, StorageFull) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    )
    if full:
        reason = "The server has no room to store the upload right now"
    elif isinstance(exc, OSError):
        reason = f"The server could not store the upload ({exc.strerror or exc})"
    else:
        reason = "The server could not store the upload"
    return _file_error(
        f"{reason}. Nothing was saved. Try again later; if it keeps happening,"
        " tell whoever runs this server.",
        status=507,
        heading="The upload could not be stored.",
    )


def _busy(token: str | None, state: dict[str, Any] | None, note: str) -> Any:
    """503 with Retry-After: an import holds the database (SQLite)."""
    if state is None or token is None:
        response = current_app.make_response(
            _file_error(note, status=503, heading="Nothing was saved.")
        )
    else:
        response = current_app.make_response(
            _render_state(token, state, note=note, status=503)
        )
    response.headers["Retry-After"] = str(WriteBusy.retry_after)
    return response


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


def _size_of(stream: IO[bytes]) -> int:
    """How many bytes an uploaded file holds (Werkzeug spooled it: seekable)."""
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


@bp.post("/import")
@body_limit("IMPORT_MAX_BYTES")
def upload() -> Any:
    """Store the uploaded file, then check it (here, or in a job if it is big)."""
    name = request.form.get("resource", "")
    file = request.files.get("file")
    if name not in RESOURCES:
        return _file_error("Choose the table to import into.")
    if file is None or not file.filename:
        return _file_error("Choose a CSV file to upload.", selected=name)
    sweep()
    token = secrets.token_urlsafe(18)
    filename = Path(file.filename).name
    owner = current_owner()
    try:
        big = _size_of(file.stream) > current_app.config["IMPORT_INLINE_BYTES"]
    except OSError as exc:
        return _not_stored(exc)
    if big:
        return _check_in_a_job(token, name, filename, file.stream)
    try:
        preview = csvfile.preview_file(service(name), _spooled(file.stream))
    except csvfile.CsvFileError as exc:
        return _file_error(exc.message, selected=name, filename=filename)
    state = state_from(name, filename, preview, "preview", owner)
    try:
        file.stream.seek(0)
        store_upload(token, state, file.stream)
    except WriteBusy:
        db.session.rollback()
        return _busy(None, None, f"The file was not stored: {WriteBusy.message}")
    except (OSError, SQLAlchemyError) as exc:
        return _not_stored(exc)
    return _shown_at(token, state)


def _spooled(stream: IO[bytes]) -> csvfile.Source:
    """An uploaded file as app.csvfile reads it, from the start."""

    @contextmanager
    def opened() -> Iterator[BinaryIO]:
        stream.seek(0)
        yield stream  # type: ignore[misc]

    return opened


def _shown_at(token: str, state: dict[str, Any], status: int = 200) -> Any:
    """Answer with an import's page, at its own URL: /import/<token>."""
    if not is_htmx(request):
        return redirect(url_for(".show", token=token), 303)
    response = current_app.make_response(_render_state(token, state, status=status))
    return push_url(response, url_for(".show", token=token))


def _check_in_a_job(token: str, name: str, filename: str, stream: IO[bytes]) -> Any:
    """Store a big upload, start the job that checks it, and show its progress."""
    state = {
        "owner": current_owner(),
        "resource": name,
        "filename": filename,
        "status": "checking",
        "progress": {"phase": "starting", "done": 0, "total": 0},
    }
    claim = secrets.token_hex(8)
    try:
        store_upload(
            token, state, stream, claim=claim, lease_until=now_ms() + lease_ms()
        )
    except WriteBusy:
        db.session.rollback()
        return _busy(None, None, f"The file was not stored: {WriteBusy.message}")
    except (OSError, SQLAlchemyError) as exc:
        return _not_stored(exc)
    try:
        start_job(token, claim)
    except OSError as exc:
        current_app.logger.error("import %s: job not started: %s", token, exc)
        failed = {
            **state,
            "status": "failed",
            "message": "The server could not start checking this file; upload it"
            " again later.",
        }
        keep_state(token, failed, Import.claim == claim, claim=None)
        return _render_state(token, failed)
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
    row = _load_row(token)
    state = state_of(row)
    if row.status not in RUNNING or job_alive(row, state):
        return state
    # The job is gone (its lease ran out): make the row claimable again, unless
    # another server did just that, or the job finished meanwhile.
    if row.status == "checking":
        state = {
            **state,
            "status": "failed",
            "message": "The check of this file stopped before it finished (the"
            " server was restarted or the job was ended). Upload the file again.",
        }
    else:
        current_app.logger.warning("import %s: its job ended without a result", token)
        state = {**state, "status": "preview", "note": STOPPED}
    state.pop("progress", None)
    try:
        save_state(
            token,
            state,
            Import.status == row.status,
            Import.claim == row.claim,
            claim=None,
            lease_until=None,
        )
    except (WriteBusy, SQLAlchemyError) as exc:
        db.session.rollback()
        current_app.logger.info("import %s: not marked stopped: %s", token, exc)
    return _load_state(token)


@bp.get("/import/<token>")
def show(token: str) -> Any:
    """Show an import's preview, its progress, or its result once done."""
    return _render_state(token, _current_state(token))


def _being_imported(token: str, state: dict[str, Any]) -> Any:
    """409: someone is importing this very upload now."""
    since = state.get("started")
    since = f" (since {since})" if since else ""
    note = (
        f"This file is being imported right now{since}. Reload this page in"
        " a while to see the result; it will not be imported twice."
    )
    return _render_state(token, state, note=note, status=409)


@bp.post("/import/<token>")
def commit(token: str) -> Any:
    """Write every valid row of a previewed file in one transaction, or nothing."""
    row = _load_row(token)
    state = _current_state(token)
    if state["status"] != "preview":
        # Done, failed, or under way (a second click, Back then Import again, a
        # resent form): show how it stands; it is never imported twice.
        if state["status"] == "importing" and not _by_a_job(row):
            return _being_imported(token, state)
        return _render_state(token, state)
    started = {
        **state,
        "status": "importing",
        "note": None,
        "started": datetime.now(UTC).strftime("%H:%M:%S UTC"),
        "progress": {"phase": "starting", "done": 0, "total": 0},
    }
    claim = secrets.token_hex(8)
    try:
        # The claim: of two servers (or clicks) only one turns preview into
        # importing; the other finds the row taken and says so.
        claimed = save_state(
            token,
            started,
            Import.status == "preview",
            claim=claim,
            lease_until=now_ms() + lease_ms(),
        )
    except WriteBusy:
        db.session.rollback()
        return _busy(token, state, f"Nothing was imported: {WriteBusy.message}")
    if not claimed:
        return commit_taken(token)
    if _by_a_job(row):
        return _import_in_a_job(token, state, started, claim)
    return _import_here(token, state, claim)


def _import_in_a_job(
    token: str, state: dict[str, Any], started: dict[str, Any], claim: str
) -> Any:
    """Start the job that imports a claimed upload, and show its progress."""
    try:
        start_job(token, claim)
    except OSError as exc:
        current_app.logger.error("import %s: job not started: %s", token, exc)
        note = "The server could not start the import; nothing was written."
        keep_state(token, state, Import.claim == claim, claim=None)
        return _render_state(token, state, note=note, status=503)
    return _shown_at(token, started, status=202)


def _import_here(token: str, state: dict[str, Any], claim: str) -> Any:
    """Import a claimed upload within this request, and show the result."""
    try:
        state = import_upload(token, state, claim)
    except WriteBusy:
        db.session.rollback()
        keep_state(token, state, Import.claim == claim, claim=None, lease_until=None)
        return _busy(token, state, f"Nothing was imported: {WriteBusy.message}")
    if state["status"] == "done":
        return _shown_at(token, state)
    return _render_state(token, state, status=state.pop("answer", 200))


def _by_a_job(row: Import) -> bool:
    """True if the upload is big enough to be imported by a job, with progress."""
    return bool(row.size > current_app.config["IMPORT_INLINE_BYTES"])


def commit_taken(token: str) -> Any:
    """Answer a commit whose claim lost: another request or server has the row."""
    row = _load_row(token)
    state = state_of(row)
    if state["status"] == "importing" and not _by_a_job(row):
        return _being_imported(token, state)
    return _render_state(token, state)


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
    keep_state(token, state)
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
