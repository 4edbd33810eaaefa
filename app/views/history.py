"""Undo and redo of a person's change sets from the page (issue 14).

Every write answered to htmx names its change set in `X-Change-Set`: a token
`<table>.<set id>.<signature>`, the signature an HMAC of the purpose, the table,
the set and the owner (app/views/owners.py) under the app's SECRET_KEY; and
says what it did in `X-Change-Label` ("rating of Jaws 8.0 → 8.1",
percent-encoded UTF-8). app.js keeps those of its tab in a stack and sends one
back to POST /history/undo, whose answer carries the redo token, and so on.
A token that is forged, of another purpose or of another owner is a 404, as a
set that is not there: nobody learns whose sets exist. The log's own undo and
its refusal (who changed what since) are app/crud/changes.py's.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
)
from flask.wrappers import Response as FlaskResponse
from werkzeug.wrappers import Response

from app.crud import Conflict, ValidationError
from app.crud.changes import CREATE, DELETE, UPDATE, Logged, last_logged, loads
from app.crud.fields import table_of
from app.crud.service import LAST_SET
from app.db import db
from app.htmx import current_url, is_htmx
from app.models import Change
from app.resources import TABLES
from app.security import local_path
from app.ui import Table
from app.views.common import home_url, service
from app.views.nested import figures
from app.views.owners import current_owner
from app.views.rows import Dom, format_cell

bp = Blueprint("history", __name__)

UNDO, REDO = "undo", "redo"
TOKEN_HEADER = "X-Change-Set"
LABEL_HEADER = "X-Change-Label"
# Rows of a set the answer to an undo lists for the page to draw again; past
# this the page draws its whole table again instead.
ROWS_LISTED = 200
# Changes read to describe a set: enough for "deleting Jaws and its 99 ratings".
_DESCRIBED = 100
_SIGNATURE_CHARS = 32  # 128 bits of HMAC-SHA256


# ---------------------------------------------------------------- tokens


def _signature(purpose: str, table: str, set_id: int, owner: str) -> str:
    """The HMAC of a set's token for this purpose and owner."""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    message = f"change-set|{purpose}|{table}|{set_id}|{owner}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:_SIGNATURE_CHARS]


def sign(table: str, set_id: int, purpose: str = UNDO) -> str:
    """A token that lets this request's owner undo (or redo) a change set."""
    signature = _signature(purpose, table, set_id, current_owner())
    return f"{table}.{set_id}.{signature}"


def verified(token: str, purpose: str) -> tuple[Table, int]:
    """The table and set of a token of this owner's for `purpose`; else 404."""
    table_name, _, rest = token.partition(".")
    number, _, signature = rest.partition(".")
    table = TABLES.get(table_name)
    if table is None or not number.isdigit() or len(number) > 18:
        abort(404)
    set_id = int(number)
    expected = _signature(purpose, table_name, set_id, current_owner())
    if not hmac.compare_digest(expected, signature):
        abort(404)
    return table, set_id


# ---------------------------------------------------------------- describing


def describe(table: Table, set_id: int) -> str:
    """Say what a change set did, e.g. "rating of Jaws 8.0 → 8.1".

    From the values the write logged, which its ChangeSet keeps in memory
    (app/crud/changes.py last_logged): no read of the log back. A set this
    request did not write (none in memory) is read from the log.
    """
    logged = last_logged(db.session, set_id)
    if logged is not None:
        changes, total = logged.kept, logged.count
    else:
        changes = _read_back(set_id)
        total = len(changes)
    own = [c for c in changes if c.table == table.name]
    many = total > _DESCRIBED
    if len(own) != 1 or many:
        count = f"over {_DESCRIBED:,}" if many else f"{total:,}"
        return f"{count} changes to {table.name}"
    change = own[0]
    if change.op == UPDATE and change.new is None:
        # A bulk update logs its values in SQL: read which fields it changed.
        change = _read_back(set_id, change)[0]
    old, new = dict(change.old or {}), dict(change.new or {})
    if change.op == CREATE:
        # Its values are the row's (logged in SQL): the session holds it.
        return f"adding {_title(table, {**_values(table, change.row_id), **new})}"
    if change.op == DELETE:
        children = total - 1
        kids = f" and {children:,} rows under it" if children else ""
        return f"deleting {_title(table, old)}{kids}"
    before = {**_values(table, change.row_id), **old}
    names = [n for n in new if n in {f.name for f in table.resource.fields}]
    if len(names) != 1:
        shown = ", ".join(table.resource.field(n).label.lower() for n in names)
        return f"{shown or 'a change'} of {_title(table, before)}"
    field = table.resource.field(names[0])
    was = format_cell(old.get(field.name), field) or "(empty)"
    now = format_cell(new.get(field.name), field) or "(empty)"
    return f"{field.label.lower()} of {_title(table, before)} {was} → {now}"


def _read_back(set_id: int, only: Logged | None = None) -> list[Logged]:
    """A set's changes read from the log (the first _DESCRIBED + 1, or one)."""
    stmt = sa.select(Change).where(Change.set_id == set_id).order_by(Change.id)
    if only is not None:
        stmt = stmt.where(Change.table_name == only.table, Change.row_id == only.row_id)
    out: list[Logged] = []
    for change in db.session.scalars(stmt.limit(_DESCRIBED + 1)):
        columns = table_of(TABLES[change.table_name].resource.model)
        out.append(
            Logged(
                change.table_name,
                change.row_id,
                change.op,
                loads(columns, change.old),
                loads(columns, change.new),
            )
        )
    return out


def _values(table: Table, row_id: int) -> dict[str, Any]:
    """A row's loaded column values, from the session's identity map if it is
    there (the row the write just saved: no query), else read; none if gone.
    """
    row = db.session.get(table.resource.model, row_id)
    if row is None:
        return {}
    # Only what is loaded: an expired attribute would cost a query to refresh.
    loaded = sa.inspect(row).dict
    return {c.key: loaded[c.key] for c in row.__mapper__.columns if c.key in loaded}


def _title(table: Table, values: dict[str, Any]) -> str:
    """A row's title from its values, or its table's singular if they fall short."""
    try:
        return table.title(SimpleNamespace(**values))
    except (AttributeError, TypeError, ValueError):
        return f"a {table.singular}"


@bp.after_app_request
def name_the_change_set(response: Response) -> Response:
    """Tell the page which change set its write made, and what it did."""
    if TOKEN_HEADER in response.headers or not 200 <= response.status_code < 300:
        return response
    if not db.session.registry.has() or not is_htmx(request):
        return response
    last = db.session.info.get(LAST_SET)
    if last is None:
        return response
    table_name, set_id = last
    table = TABLES.get(table_name)
    if table is None:
        return response
    response.headers[TOKEN_HEADER] = sign(table_name, set_id)
    response.headers[LABEL_HEADER] = quote(describe(table, set_id))
    return response


# ---------------------------------------------------------------- undo, redo


@bp.post("/history/undo")
def undo() -> Response:
    """Undo one of this person's change sets; answer with its redo token."""
    return _apply(UNDO)


@bp.post("/history/redo")
def redo() -> Response:
    """Do again a change set this person undid; answer with the new set's token."""
    return _apply(REDO)


def _apply(purpose: str) -> Response:
    """Undo or redo the set the form's token names, and say what changed on the page."""
    table, set_id = verified(request.form.get("token", ""), purpose)
    svc = service(table.name)
    try:
        done = svc.undo_set(set_id) if purpose == UNDO else svc.redo_set(set_id)
    except (Conflict, ValidationError) as exc:
        text = str(exc)
        if isinstance(exc, ValidationError):
            text = "Not done: " + " ".join(exc.errors.values())
        return _answer(table, [], text, 409)
    changes = _changes_of(done)
    response = _answer(table, changes, None, 200)
    if purpose == UNDO:
        response.headers[TOKEN_HEADER] = sign(table.name, set_id, REDO)
    else:
        response.headers[TOKEN_HEADER] = sign(table.name, done, UNDO)
    rows = {op: _dom_ids(c for c in changes if c[2] == op) for op in (UPDATE, DELETE)}
    created = _dom_ids(c for c in changes if c[2] == CREATE)
    if len(changes) > ROWS_LISTED:
        created = "*"  # too many to draw one by one: the page draws its table
    response.headers["X-Changed-Rows"] = rows[UPDATE]
    response.headers["X-Removed-Rows"] = rows[DELETE]
    response.headers["X-Created-Rows"] = created
    return response


def _changes_of(set_id: int) -> list[tuple[str, int, str]]:
    """(table, row id, operation) of a set's changes, oldest first (a few hundred)."""
    stmt = (
        sa.select(Change.table_name, Change.row_id, Change.op)
        .where(Change.set_id == set_id)
        .order_by(Change.id)
        .limit(ROWS_LISTED + 1)
    )
    return [(t, int(r), op) for t, r, op in db.session.execute(stmt)]


def _dom_ids(changes: Iterable[tuple[str, int, str]]) -> str:
    """The ids of the changed rows' <tr>s, space-separated."""
    return " ".join(Dom.row_id(TABLES[name], row_id) for name, row_id, _ in changes)


def _answer(
    table: Table,
    changes: Sequence[tuple[str, int, str]],
    refused: str | None,
    status: int,
) -> Response:
    """The figures the page shows that the set changed; a refusal as a toast."""
    if not is_htmx(request):
        flash({"id": "change-set", "text": refused or "Done."})  # type: ignore[arg-type]
        return redirect(local_path(request.form.get("next")) or home_url(), 303)
    toast = None
    if refused:
        toast = {"id": f"refused-{abs(hash(refused)) % 10**8}", "text": refused}
    body = render_template(
        "partials/table_undone.html",
        table=table,
        toast=toast,
        error=True,
        shown=_figures_shown(changes),
    )
    response: FlaskResponse = make_response(body, status)
    return response


def _figures_shown(changes: Sequence[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """The figures of the page the request came from that the changes feed.

    Its table's row count if the set touched that table, and the summary of
    each of its rows whose children the set touched (a movie's ratings).
    """
    path, _ = current_url(request)
    page = next((t for t in TABLES.values() if path == f"/{t.name}"), None)
    if page is None or not changes:
        return []
    touched = {name for name, _, _ in changes}
    shown: list[dict[str, Any]] = []
    if page.name in touched:
        shown.append(figures(page, False, None))
    for name in sorted(touched):
        child = TABLES[name]
        nesting = child.nesting
        if nesting is None or nesting.parent != page.name:
            continue
        parents = _parents(child, [r for t, r, _ in changes if t == name])
        for parent in sorted(parents)[:ROWS_LISTED]:
            if db.session.get(page.resource.model, parent) is not None:
                shown.append(figures(child, True, parent))
    return shown


def _parents(child: Table, ids: list[int]) -> set[int]:
    """The parent ids of these child rows, as they stand or as the log had them."""
    assert child.nesting is not None
    key = child.nesting.foreign_key
    columns = table_of(child.resource.model)
    stmt = sa.select(columns.c.id, columns.c[key]).where(columns.c.id.in_(ids))
    found = {r[0]: r[1] for r in db.session.execute(stmt)}
    parents = {p for p in found.values() if p is not None}
    missing = [r for r in ids if r not in found]
    if missing:
        # Rows the set deleted: their parent is in the log's old values.
        gone = sa.select(Change.old).where(
            Change.table_name == child.name,
            Change.row_id.in_(missing),
            Change.op == DELETE,
        )
        for old in db.session.scalars(gone):
            value = loads(columns, old).get(key)
            if value is not None:
                parents.add(value)
    return parents
