"""Other people's edits, live (issue 14): what changed in a table since a change id.

An open table page polls GET /changes/since?after=<id>&table=<name> every ~2 s
(static/js/live.js) with the newest change id it knows: the one its region was
drawn at (`live_after`, rendered as data-live-after), then the one the last
answer gave. The state is the change log in the database, so any worker of any
app server answers, and no worker is held per open tab.

Arguments: `after` (required), `table` (required) and, on PostgreSQL,
`snapshot`: the rest of the cursor, sent back as the page or the last answer
gave it (data-live-snapshot; "xmin:xmax:xip,...", checked strictly: 400
otherwise). Why the cursor holds a snapshot is in app/crud/changelog.py ("live
polling"): on PostgreSQL a change may commit after one with a larger id; the
snapshot names the transactions that may still do so, and the next poll reports
their changes once they commit. Each change is reported once.

- Nothing new: 204, no body, after one statement: one lookup of an index's
  last entry (max(xid) with the current snapshot on PostgreSQL; max(id) on
  SQLite or without a snapshot).
- Else 200, JSON: {"last": <newest id>, ["snapshot": "<xmin:xmax:xip>",]
  "updated": [[row id, [set ids]], ...], "deleted": [...], "created": [...]}
  for the asked table, each row once under what the changes did to it, with the
  change sets that touched it (so a tab can leave out its own); and, if rows of
  a table shown under the asked one's changed (a movie's ratings),
  "children": {"ratings": {"singular": "rating", "updated": [[row id, [set
  ids], parent id], ...], "deleted": [...], "created": [...]}}. Too many
  changes for one answer: {"last": N, ["snapshot": ...,] "refresh": true}, and
  the page draws its region again instead. The lists may be empty (a
  transaction the cursor named ended without a change of this table): the
  answer then only moves the cursor. A client that sends only `after` gets the
  changes above it (and may miss one that commits late).

Read-only and cookie-free: the view touches no session, so an answer carries no
Set-Cookie. The queries are app/crud/changelog.py's; they read only `changes`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, g, jsonify, request, url_for
from werkzeug.wrappers import Response

from app.crud import changelog
from app.db import db, limit_reads
from app.resources import TABLES

bp = Blueprint("live", __name__)

LAST_HEADER = "X-Last-Change"
_BIGINT_MAX = 2**63 - 1


def _id(name: str, required: bool = False) -> int | None:
    """A change id argument (ASCII digits, a BIGINT), None if absent; else 400."""
    text = request.args.get(name)
    if text is None and not required:
        return None
    text = text or ""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        abort(400, description=f"{name} must be a change id (a whole number).")
    value = int(text)
    if value > _BIGINT_MAX:
        abort(400, description=f"{name} must be a change id (a whole number).")
    return value


def _children(name: str) -> list[changelog.Child]:
    """The tables shown under a table's rows (a movie's ratings)."""
    return [
        changelog.Child(t.name, t.singular, t.resource.model, t.nesting.foreign_key)
        for t in TABLES.values()
        if t.nesting is not None and t.nesting.parent == name
    ]


@bp.get("/changes/since")
def since() -> Response:
    """Say what changed in a table after a cursor: 204 when nothing did."""
    after = _id("after", required=True) or 0
    name = request.args.get("table", "")
    if name not in TABLES:
        abort(400, description="table must name a table.")
    snapshot = None
    text = request.args.get("snapshot")
    if text:
        try:
            snapshot = changelog.parse_snapshot(text)
        except ValueError:
            abort(400, description="snapshot must be a cursor this server gave.")
    # One index lookup, and reads capped at SCAN_MAX rows: no read timer
    # needed, and none armed saves PostgreSQL a SET round trip per poll.
    limit_reads(None)
    body = changelog.since(
        db.session, name, changelog.Cursor(after, snapshot), _children(name)
    )
    if body is None:
        return Response(status=204)
    response = jsonify(body)
    response.headers[LAST_HEADER] = str(body["last"])
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- the page's start


def _cursor() -> changelog.Cursor:
    """The cursor a table page is drawn at: read once per request, before its rows.

    Read before the listing's query where possible (`_note_start`): a change
    committed in between is then reported again rather than missed, and one
    still in flight is in the cursor's snapshot.
    """
    if "live_cursor" not in g:
        g.live_cursor = changelog.now(db.session)
    cursor: changelog.Cursor = g.live_cursor
    return cursor


def live_after() -> int:
    """The newest change id a table page is drawn at (data-live-after)."""
    return _cursor().after


def live_snapshot() -> str:
    """The snapshot that id was read in, on PostgreSQL ("" on SQLite)."""
    snapshot = _cursor().snapshot
    return snapshot.text() if snapshot is not None else ""


def _note_start() -> None:
    """Read the start id before a table page's query runs."""
    endpoint = request.endpoint or ""
    table, _, view = endpoint.partition(".")
    if request.method == "GET" and view == "index" and table in TABLES:
        _cursor()


def _template_globals() -> dict[str, Any]:
    """What the table region needs to start polling."""
    return {
        "live_after": live_after,
        "live_snapshot": live_snapshot,
        "live_url": lambda: url_for("live.since"),
    }


def init_app(app: Flask) -> None:
    """Register the route, the start-id hook and the template globals."""
    app.register_blueprint(bp)
    app.before_request(_note_start)
    app.context_processor(_template_globals)
