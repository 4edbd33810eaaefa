"""The change log in the browser (issue 14): a row's history and the Changes page.

GET /<table>/<id>/history: the row's changes, newest first, each field's old and
new value as its cell shows it, with "Restore this value" (a PATCH through the
table's own update view, version-checked like any inline edit). htmx puts the
fragment in the page's history dialog (base.html); opened as a page (no
JavaScript, a copied link) it is a page of its own.

GET /changes: the whole log, filtered by table, row, person and time, paged, in
the URL; /changes.csv downloads the same view through the tables' streamed path.
Reading is app/crud/changelog.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from app import csvfile
from app.crud import NotFound, changelog
from app.crud.changelog import FieldChange, LogQuery
from app.db import db
from app.htmx import is_partial, push_url
from app.resources import RESOURCES, TABLES
from app.ui import Table
from app.views import forms
from app.views.common import service
from app.views.csv import csv_download
from app.views.rows import change_rows, format_cell

bp = Blueprint("changes", __name__)

OPS = {"create": "Created", "update": "Changed", "delete": "Deleted"}
CSV_COLUMNS = (
    "id",
    "set_id",
    "at",
    "who",
    "table",
    "row_id",
    "op",
    "old",
    "new",
    "version",
)


@dataclass(frozen=True)
class Entry:
    """One field of one change, ready to show: values as their cells show them."""

    change: Any  # app.models.Change
    field: str  # the field's label
    name: str  # the field's name
    old: str | None  # None: no value before (a create)
    new: str | None  # None: no value after (a delete)
    restore: str | None = None  # the value "Restore this value" puts back

    @property
    def when(self) -> datetime:
        """When the change was made (UTC)."""
        return when(self.change.at)

    @property
    def op(self) -> str:
        """ "Created", "Changed" or "Deleted"."""
        return OPS.get(self.change.op, self.change.op)


def when(at: int) -> datetime:
    """A change's Unix milliseconds as a UTC time."""
    return datetime.fromtimestamp(at / 1000, UTC)


def shown(value: Any, name: str, table: str) -> str:
    """A value as its cell shows it (fields the declaration lacks: as stored)."""
    resource = RESOURCES.get(table)
    if resource is None or value is None:
        return "" if value is None else str(value)
    try:
        field = resource.field(name)
    except KeyError:
        return str(value)
    return format_cell(value, field)


def entries(
    changes: Sequence[Any], row: Any = None, table: Table | None = None
) -> list[Entry]:
    """The changes as one entry per field, newest first.

    With the row as it is now (and its Table), an update's old value that
    differs from the current one offers "Restore this value".
    """
    out: list[Entry] = []
    for change in changes:
        resource = RESOURCES.get(change.table_name)
        labels = {f.name: f.label for f in resource.fields} if resource else {}
        for part in changelog.field_changes(change, resource):
            old = _text(part, change, "old")
            new = _text(part, change, "new")
            restore = None
            if (
                row is not None
                and table is not None
                and change.op == "update"
                and table.editable(part.name)
                and part.name in {f.name for f in forms.edit_fields(table)}
            ):
                current = shown(getattr(row, part.name), part.name, table.name)
                if (old or "") != current:
                    restore = old or ""
            out.append(
                Entry(
                    change,
                    labels.get(part.name, part.name),
                    part.name,
                    old,
                    new,
                    restore,
                )
            )
    return out


def _text(part: FieldChange, change: Any, side: str) -> str | None:
    """One side of a field change as shown; None where the change has no side."""
    if (side == "old" and change.op == "create") or (
        side == "new" and change.op == "delete"
    ):
        return None
    return shown(getattr(part, side), part.name, change.table_name)


# ---------------------------------------------------------------- a row's history


def history(name: str, row_id: int) -> Response:
    """A row's history: the dialog's fragment for htmx, else a page."""
    table = TABLES.get(name)
    if table is None:
        abort(404)
    nested = table.nesting is not None and request.args.get("nested") == "1"
    try:
        row = service(name).get(row_id)
    except NotFound:
        row = None  # deleted: its history still tells what it held
    before = _before()
    # An id no column holds names no row (and would fail in the driver).
    fits = row_id <= changelog.ROW_MAX
    changes, older = (
        changelog.row_history(db.session, name, row_id, changelog.HISTORY_LIMIT, before)
        if fits
        else ([], False)
    )
    if row is None and not changes and before is None:
        raise NotFound(f"No {table.singular} with id {row_id}.")
    title = table.title(row) if row is not None else f"{table.singular} {row_id}"
    context = {
        "table": table,
        "row": row,
        "row_id": row_id,
        "title": title,
        "entries": entries(changes, row, table),
        "older_url": url_for(
            "changes.history",
            name=name,
            row_id=row_id,
            nested=1 if nested else None,
            before=changes[-1].id,
        )
        if older
        else None,
        "older_page": before is not None,
        "nested": nested,
        "values": forms.values_of(table, row) if row is not None else {},
        "edit_fields": forms.edit_fields(table),
        "self_url": url_for(
            "changes.history", name=name, row_id=row_id, nested=1 if nested else None
        ),
        "log_url": url_for("changes.index", table=name, row=row_id),
    }
    partial = is_partial(request)
    template = "partials/history_panel.html" if partial else "history.html"
    if partial and before is not None:
        # "Show older" in the panel: the next page's entries, put in place of
        # the link (the panel and what it has listed stay).
        template = "partials/history_entries.html"
    return make_response(render_template(template, dialog=partial, **context))


def _before() -> int | None:
    """The `before` argument ("Show older"): a change id, or 400."""
    text = request.args.get("before")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        abort(400, description="before must be a change id (a whole number).")
    return int(text)


@bp.record_once
def _history_routes(state: BlueprintSetupState) -> None:
    """GET /<table>/<id>/history for each declared table, one rule each.

    A static table name, not a converter: the tables' /<table>/<id>/<child>
    rule would otherwise take the URL first and 404 it (werkzeug does not try
    another rule after a converter refuses a value).
    """
    for name in TABLES:
        state.add_url_rule(
            f"/{name}/<int:row_id>/history",
            "history",
            history,
            defaults={"name": name},
            methods=["GET"],
        )


# ---------------------------------------------------------------- the Changes page


def _parsed() -> changelog.Parsed:
    """The Changes page's query string, validated."""
    return changelog.parse(
        request.args,
        list(RESOURCES),
        page_size=current_app.config["PAGE_SIZE"],
        max_page_size=current_app.config["MAX_PAGE_SIZE"],
    )


@bp.get("/changes")
def index() -> Response:
    """The change log, newest first: the page, or its region for htmx.

    A value that cannot be applied is left out of the view and named next to
    its field, with a 400 (a page) or 422 (the region, which htmx swaps).
    """
    parsed = _parsed()
    query = parsed.query
    partial = is_partial(request)
    found, older = changelog.page(db.session, query)
    status = (422 if partial else 400) if parsed.errors else 200
    context = {
        "query": query,
        "errors": parsed.errors,
        "raw": request.args,
        "entries": entries(found),
        "older": url_for("changes.index", **query.args(page=query.page + 1))
        if older
        else None,
        "newer": url_for("changes.index", **query.args(page=query.page - 1))
        if query.page > 1
        else None,
        "csv_url": url_for("changes.export_csv", **query.args(page=None)),
        "table_names": list(RESOURCES),
        "filter_labels": changelog.LABELS,
        "change_rows": change_rows,
        "partial": partial,
    }
    template = "partials/changes_region.html" if partial else "changes.html"
    response = make_response(render_template(template, **context), status)
    if partial:
        # The canonical view, without the values left out (as the tables do).
        push_url(response, url_for("changes.index", **query.args()))
    return response


@bp.get("/changes.csv")
def export_csv() -> Response:
    """Download the log as /changes shows it (same query string), every page."""
    parsed = _parsed()
    if parsed.errors:
        raise BadRequest(" ".join(parsed.errors.values()))
    bom = request.args.get("bom") == "1"
    return csv_download(_csv_chunks(parsed.query, bom), "changes")


def _csv_chunks(query: LogQuery, bom: bool) -> Iterator[bytes]:
    """The log's CSV: a header, then one line a change, newest first."""
    head = ("\ufeff" if bom else "") + ",".join(CSV_COLUMNS) + "\r\n"
    yield head.encode()
    for batch in changelog.batches(db.session, query):
        lines = []
        for c in batch:
            cells = (
                str(c.id),
                str(c.set_id),
                when(c.at).isoformat(timespec="milliseconds"),
                csvfile.format_text(c.who),
                csvfile.format_text(c.table_name),
                str(c.row_id),
                c.op,
                csvfile.format_text(c.old or ""),
                csvfile.format_text(c.new or ""),
                "" if c.version is None else str(c.version),
            )
            lines.append(",".join(cells) + "\r\n")
        yield "".join(lines).encode()
