"""Other people's edits, live (issue 14): what changed in a table since a change id.

An open table page polls GET /changes/since?after=<id>&table=<name> every ~2 s
(static/js/live.js) with the newest change id it knows: the one its region was
drawn at (`live_after`, rendered as data-live-after), then the one the last
answer gave. The state is the change log in the database, so any worker of any
app server answers, and no worker is held per open tab.

- Nothing new: 204, no body, after one lookup on the primary key (max(id)).
- Else 200, JSON: {"last": <newest id>, "updated": [[row id, [set ids]], ...],
  "deleted": [...], "created": [...]} for the asked table, each row once under
  what the window did to it, with the change sets that touched it (so a tab can
  leave out its own). Too many changes for one answer: {"last": N,
  "refresh": true}, and the page draws its region again instead.

Read-only and cookie-free: the view touches no session, so an answer carries no
Set-Cookie. The queries live here, not in app/crud, until the change-log reader
(app/crud/changelog.py) is settled; they read only `changes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, abort, g, jsonify, request, url_for
from werkzeug.wrappers import Response

from app.crud.changes import CREATE, DELETE
from app.db import db, limit_reads
from app.models import Change
from app.resources import TABLES

bp = Blueprint("live", __name__)

LAST_HEADER = "X-Last-Change"
# Changes one answer reads at most (any table), and rows of the asked table it
# lists at most; past either the page draws its region again (one list query)
# rather than fetching rows one by one.
SCAN_MAX = 1000
ROWS_MAX = 200
_BIGINT_MAX = 2**63 - 1
_GROUPS = {CREATE: "created", DELETE: "deleted"}


# ---------------------------------------------------------------- reading the log


def newest_change() -> int:
    """The newest change id (0 for an empty log): one lookup on the primary key."""
    return int(db.session.scalar(sa.select(sa.func.max(Change.id))) or 0)


def changes_after(after: int, limit: int) -> Sequence[Any]:
    """Up to `limit` changes after id `after`, oldest first: a primary key range."""
    query = (
        sa.select(Change.id, Change.set_id, Change.table_name, Change.row_id, Change.op)
        .where(Change.id > after)
        .order_by(Change.id)
        .limit(limit)
    )
    return db.session.execute(query).all()


def grouped(changes: Iterable[Any]) -> dict[str, list[list[Any]]]:
    """Each row once, under what the changes (oldest first) did to it overall.

    Deleted at the end: "deleted"; else created in the window: "created"
    (an update after it changes nothing for a page that never showed the row);
    else "updated" (a delete then an undo that brings the row back included).
    """
    first: dict[int, str] = {}
    last: dict[int, str] = {}
    sets: dict[int, list[int]] = {}
    for change in changes:
        first.setdefault(change.row_id, change.op)
        last[change.row_id] = change.op
        touched = sets.setdefault(change.row_id, [])
        if change.set_id not in touched:
            touched.append(change.set_id)
    found: dict[str, list[list[Any]]] = {"updated": [], "deleted": [], "created": []}
    for row_id, op in last.items():
        if op == DELETE:
            group = "deleted"
        elif first[row_id] == CREATE:
            group = "created"
        else:
            group = "updated"
        found[group].append([row_id, sets[row_id]])
    return found


# ---------------------------------------------------------------- the view


def _after() -> int:
    """The `after` argument: a change id (ASCII digits, a BIGINT); else 400."""
    text = request.args.get("after", "")
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        abort(400, description="after must be a change id (a whole number).")
    value = int(text)
    if value > _BIGINT_MAX:
        abort(400, description="after must be a change id (a whole number).")
    return value


@bp.get("/changes/since")
def since() -> Response:
    """Say what changed in a table after a change id: 204 when nothing did."""
    after = _after()
    name = request.args.get("table", "")
    if name not in TABLES:
        abort(400, description="table must name a table.")
    # One primary-key lookup, and a scan capped at SCAN_MAX rows: no read timer
    # needed, and none armed saves PostgreSQL a SET round trip per poll.
    limit_reads(None)
    newest = newest_change()
    if newest <= after:
        return Response(status=204)
    window = changes_after(after, SCAN_MAX + 1)
    mine = [c for c in window if c.table_name == name]
    if len(window) > SCAN_MAX or len(mine) > ROWS_MAX:
        body: dict[str, Any] = {"last": max(newest, window[-1].id), "refresh": True}
    else:
        last = max(newest, window[-1].id) if window else newest
        body = {"last": last, **grouped(mine)}
    response = jsonify(body)
    response.headers[LAST_HEADER] = str(body["last"])
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- the page's start


def live_after() -> int:
    """The change id a table page is drawn at: read once per request, before its rows.

    Read before the listing's query where possible (`_note_start`), so a change
    committed in between is reported again rather than missed.
    """
    if "live_after" not in g:
        g.live_after = newest_change()
    return int(g.live_after)


def _note_start() -> None:
    """Read the start id before a table page's query runs."""
    endpoint = request.endpoint or ""
    table, _, view = endpoint.partition(".")
    if request.method == "GET" and view == "index" and table in TABLES:
        live_after()


def _template_globals() -> dict[str, Any]:
    """What the table region needs to start polling."""
    return {"live_after": live_after, "live_url": lambda: url_for("live.since")}


def init_app(app: Flask) -> None:
    """Register the route, the start-id hook and the template globals."""
    app.register_blueprint(bp)
    app.before_request(_note_start)
    app.context_processor(_template_globals)
