"""Reading the change log (issue 14): a row's history and the filtered log.

Read-only: writes to `changes` come only from app/crud/changes.py. The log is
not a declared Resource, so imports, the CLI and the tables' CSV routes never
offer it as a table to write into. Knows nothing of Flask.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from app.crud.changes import CREATE, DELETE, loads
from app.crud.fields import ASCII_BLANKS, FORBIDDEN_CHARS, Resource, table_of
from app.models import USER_NAME_MAX, Change

# Bounds of a BigInteger row id on every dialect (app/crud/fields.py _INTEGER_MAX).
ROW_MAX = 2**63 - 1
MAX_PAGE = 1_000_000
# Entries a page of a row's history lists ("Show older" gives the next).
HISTORY_LIMIT = 200
FILTERS = ("table", "row", "who", "since", "until")
LABELS = {
    "table": "Table",
    "row": "Row",
    "who": "Person",
    "since": "Since",
    "until": "Until",
}
# A session, or Flask-SQLAlchemy's scoped one (db.session).
Reader = Session | scoped_session[Any]
# Columns a change carries that are no field people edit.
_BOOKKEEPING = frozenset({"id", "version", "created_at", "updated_at"})


@dataclass(frozen=True)
class LogQuery:
    """A validated view of the log: filters, page and page size."""

    table: str | None = None
    row: int | None = None
    who: str | None = None
    since: date | datetime | None = None
    until: date | datetime | None = None
    page: int = 1
    per_page: int = 50

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query-string arguments of this view (defaults left out)."""
        out: dict[str, Any] = {
            "table": self.table,
            "row": self.row,
            "who": self.who,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "page": self.page if self.page != 1 else None,
            "per_page": self.per_page,
        }
        out.update(changes)
        return {k: v for k, v in out.items() if v not in (None, "")}


@dataclass
class Parsed:
    """A query of the values that could be applied, and why the others could not."""

    query: LogQuery
    errors: dict[str, str] = field(default_factory=dict)


def _when(raw: str, label: str) -> date | datetime:
    """Parse "2026-05-01" or "2026-05-01T10:30[:00]" (UTC) or raise ValueError."""
    text = raw.strip(ASCII_BLANKS)
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        if 16 <= len(text) <= 19 and text[10] == "T":
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"{label} must be a date like 2026-05-01 (or 2026-05-01T14:30).")


def ms(value: date | datetime, end: bool = False) -> int:
    """Unix milliseconds of a UTC date or time; `end`: the first ms after a date."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
        if end:
            value += timedelta(days=1)
    elif end:
        # A time as typed names its minute (or second): include all of it.
        value += timedelta(seconds=1 if value.second else 60)
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def parse(
    args: Mapping[str, str],
    tables: Collection[str],
    page_size: int = 50,
    max_page_size: int = 500,
) -> Parsed:
    """Validate the log's query string; invalid values are left out and named."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}

    def raw(name: str) -> str:
        return (args.get(name) or "").strip(ASCII_BLANKS)

    if raw("table"):
        if raw("table") in tables:
            values["table"] = raw("table")
        else:
            errors["table"] = "Table must be one of: " + ", ".join(tables) + "."
    if raw("row"):
        text = raw("row")
        whole = text.isascii() and text.isdigit() and len(text) < 20
        if whole and 1 <= int(text) <= ROW_MAX:
            values["row"] = int(text)
        else:
            errors["row"] = "Row must be a row's id: a whole number from 1."
    if raw("who"):
        text = raw("who")
        if len(text) > USER_NAME_MAX:
            errors["who"] = f"Person must be at most {USER_NAME_MAX} characters."
        elif FORBIDDEN_CHARS.search(text):
            errors["who"] = "Person contains characters that are not allowed."
        else:
            values["who"] = text
    for name in ("since", "until"):
        if raw(name):
            try:
                values[name] = _when(raw(name), LABELS[name])
            except ValueError as exc:
                errors[name] = str(exc)
    since, until = values.get("since"), values.get("until")
    if since is not None and until is not None and ms(since) >= ms(until, end=True):
        errors["until"] = "Until must not be before since."
        del values["until"]
    values["page"] = _number(args, "page", 1, MAX_PAGE, errors)
    values["per_page"] = _number(args, "per_page", page_size, max_page_size, errors)
    return Parsed(LogQuery(**values), errors)


def _number(
    args: Mapping[str, str], name: str, default: int, high: int, errors: dict[str, str]
) -> int:
    """A bounded positive whole number parameter, or its default and a message."""
    text = (args.get(name) or "").strip(ASCII_BLANKS)
    if not text:
        return default
    if text.isascii() and text.isdigit() and len(text) <= 9 and 1 <= int(text) <= high:
        return int(text)
    errors[name] = f"{name} must be a whole number from 1 to {high}."
    return default


def _where(query: LogQuery) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of a view (each served by an index on changes)."""
    c = table_of(Change).c
    clauses: list[sa.ColumnElement[bool]] = []
    if query.table is not None:
        clauses.append(c.table_name == query.table)
    if query.row is not None:
        clauses.append(c.row_id == query.row)
    if query.who is not None:
        clauses.append(c.who == query.who)
    if query.since is not None:
        clauses.append(c.at >= ms(query.since))
    if query.until is not None:
        clauses.append(c.at < ms(query.until, end=True))
    return clauses


def page(session: Reader, query: LogQuery) -> tuple[list[Change], bool]:
    """One page of the log, newest first, and whether an older page exists.

    No total is counted: a count of a large log costs a scan, and the pager
    needs only to know whether there is more (one extra row).
    """
    stmt = (
        sa.select(Change)
        .where(*_where(query))
        .order_by(Change.id.desc())
        .offset((query.page - 1) * query.per_page)
        .limit(query.per_page + 1)
    )
    found = list(session.scalars(stmt))
    return found[: query.per_page], len(found) > query.per_page


def batches(
    session: Reader, query: LogQuery, size: int = 4096
) -> Iterator[list[Change]]:
    """Every change the view matches, newest first, in batches (for a download).

    Keyset paging on the id: each batch is one indexed range, however deep.
    """
    last: int | None = None
    while True:
        clauses = _where(query)
        if last is not None:
            clauses.append(Change.id < last)
        stmt = sa.select(Change).where(*clauses).order_by(Change.id.desc()).limit(size)
        found = list(session.scalars(stmt))
        if not found:
            return
        yield found
        session.expunge_all()  # a download must not hold every change it sent
        last = found[-1].id


def row_history(
    session: Reader,
    table: str,
    row_id: int,
    limit: int = HISTORY_LIMIT,
    before: int | None = None,
) -> tuple[list[Change], bool]:
    """A page of a row's changes, newest first, older than change `before` if
    given; and whether older ones exist (one more row read, no count).

    Keyset paging: each page is one range of ix_changes_table_name, however
    long the row's history.
    """
    clauses = [Change.table_name == table, Change.row_id == row_id]
    if before is not None:
        clauses.append(Change.id < before)
    stmt = sa.select(Change).where(*clauses).order_by(Change.id.desc()).limit(limit + 1)
    found = list(session.scalars(stmt))
    return found[:limit], len(found) > limit


@dataclass(frozen=True)
class FieldChange:
    """One field of one change: its values before and after, in Python types."""

    name: str
    old: Any
    new: Any


def field_changes(change: Change, resource: Resource[Any] | None) -> list[FieldChange]:
    """The declared fields a change touched, in declaration order.

    A create lists its values (old None), a delete the values it removed (new
    None). Without a declaration (a table no longer declared) every logged
    column is listed, as stored.
    """
    if resource is None:
        old = _raw(change.old)
        new = _raw(change.new)
        names = [n for n in {**old, **new} if n not in _BOOKKEEPING]
        return [FieldChange(n, old.get(n), new.get(n)) for n in names]
    columns = table_of(resource.model)
    old = loads(columns, change.old)
    new = loads(columns, change.new)
    out: list[FieldChange] = []
    for f in resource.fields:
        if f.name not in old and f.name not in new:
            continue
        if f.copied_from is not None and change.op != DELETE:
            continue  # follows its source; never an edit of this row
        out.append(FieldChange(f.name, old.get(f.name), new.get(f.name)))
    return out


def _raw(text: str | None) -> dict[str, Any]:
    """A change's JSON as stored, for a table no declaration describes."""
    return dict(json.loads(text)) if text else {}


# ---------------------------------------------------------------- live polling
#
# An open table asks what changed since its cursor (live.js, by way of
# app/views/live.py). The cursor is the newest change id the page has seen,
# `after`, and on PostgreSQL the snapshot that id was read in
# (pg_current_snapshot(), as text "xmin:xmax:xip,...").
#
# Why the snapshot: on PostgreSQL a change's id comes from a sequence during
# its transaction, so a change with a smaller id can commit after one with a
# larger id; a cursor that is only an id moves past it and misses it forever.
# Each change stores its transaction's id (changes.xid, default
# pg_current_xact_id(), migration 0021). The changes a snapshot did not see are
# exactly those of the transactions it lists as running (xip) and of those
# from its xmax on (xmax is one past the newest transaction to have ended, so
# a transaction that began earlier can be beyond it too, running yet not in
# the list): a poll reads those two through ix_changes_xid (one probe a
# listed xid, one range from xmax) and keeps what its own snapshot sees; the
# rest its own cursor does not see, so the next poll reads it. Each change is
# reported once and none is missed, the page's first cursor included, however
# the writers' ids and commits interleave.
#
# An idle tab costs one statement: the current snapshot and max(xid) (the
# last entry of ix_changes_xid). No change from the cursor's xmax on and no
# transaction of its list ended since (compared in Python, the snapshot in
# hand): a 204. A client without a snapshot is answered by id (max(id)).
# SQLite lets one writer in at a time: ids commit in order, the cursor is the
# id alone.

# Changes one answer reads at most (any table), and rows of the asked table it
# lists at most; past either the page draws its region again (one list query)
# rather than fetching rows one by one.
SCAN_MAX = 1000
ROWS_MAX = 200
# In-flight transactions a cursor names at most, and a snapshot's text at most:
# the cursor travels in a GET's query string (gunicorn takes 4094 bytes a
# request line; an xid is about 13 URL-encoded characters). A snapshot with
# more is cut (Snapshot.cut), which stays exact.
XIP_MAX = 200
SNAPSHOT_MAX = 3000
_XID_MAX = 2**63 - 1  # xid8 is 64-bit unsigned; no running server nears this


@dataclass(frozen=True)
class Snapshot:
    """A PostgreSQL snapshot: xmin, the oldest transaction running; xmax, the
    first not yet begun; xip, those in between still running (ascending).
    """

    xmin: int
    xmax: int
    xip: tuple[int, ...] = ()

    def text(self) -> str:
        """The snapshot as pg_snapshot's text ("xmin:xmax:xip,...")."""
        return f"{self.xmin}:{self.xmax}:" + ",".join(map(str, self.xip))

    def finished(self, xid: int) -> bool:
        """Whether a transaction had ended in this snapshot (pg_visible_in_snapshot)."""
        if xid < self.xmin:
            return True
        return xid < self.xmax and xid not in self.xip

    def cut(self) -> Snapshot:
        """At most XIP_MAX running transactions: xmax lowered to the first left out.

        Treats transactions from there on as running, which they may not be:
        a poll then reads their changes (xid >= xmax) and misses none.
        """
        if len(self.xip) <= XIP_MAX:
            return self
        return Snapshot(self.xmin, self.xip[XIP_MAX], self.xip[:XIP_MAX])


def _xid(text: str) -> int:
    """One transaction id of a snapshot's text, or ValueError."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise ValueError(text)
    value = int(text)
    if not 1 <= value <= _XID_MAX:
        raise ValueError(text)
    return value


def parse_snapshot(text: str, bounded: bool = True) -> Snapshot:
    """A snapshot from its text, checked as PostgreSQL would; else ValueError.

    From a request (`bounded`), sizes are checked before anything is
    converted; the database's own (pg_current_snapshot()) may list more
    running transactions than a cursor carries (Snapshot.cut).
    """
    if bounded and len(text) > SNAPSHOT_MAX:
        raise ValueError("snapshot too long")
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError("snapshot must be xmin:xmax:xip,...")
    xmin, xmax = _xid(parts[0]), _xid(parts[1])
    listed = parts[2].split(",") if parts[2] else []
    if xmax < xmin or (bounded and len(listed) > XIP_MAX):
        raise ValueError("snapshot out of bounds")
    xip = tuple(_xid(x) for x in listed)
    if any(not xmin <= x < xmax for x in xip) or list(xip) != sorted(set(xip)):
        raise ValueError("snapshot's running transactions out of order")
    return Snapshot(xmin, xmax, xip)


@dataclass(frozen=True)
class Cursor:
    """Where a page is in the log: the newest change id it has seen and, on
    PostgreSQL, the snapshot that id was read in (None: every id below it had
    committed, as on SQLite).
    """

    after: int
    snapshot: Snapshot | None = None

    def args(self) -> dict[str, Any]:
        """The cursor as a poll's answer carries it (live.js sends it back)."""
        out: dict[str, Any] = {"last": self.after}
        if self.snapshot is not None:
            out["snapshot"] = self.snapshot.text()
        return out


def _is_postgresql(session: Reader) -> bool:
    """Whether the session's database is PostgreSQL (snapshots to read)."""
    return session.get_bind().dialect.name == "postgresql"


_NOW_SQL = sa.text(
    "SELECT (SELECT max(id) FROM changes), CAST(pg_current_snapshot() AS text)"
)
# Whether a change the cursor's snapshot did not see may have committed since,
# besides those of its running list (compared in Python): one of a transaction
# from its xmax on (the last entry of ix_changes_xid). The snapshot with it.
_LATE_SQL = sa.text(
    "SELECT CAST(pg_current_snapshot() AS text),"
    " (SELECT max(xid) FROM changes) >= CAST(:xmax AS xid8)"
)


def now(session: Reader) -> Cursor:
    """A cursor at this instant: the newest change id, and (PostgreSQL) the
    snapshot it is true in, from one statement (so one snapshot)."""
    if not _is_postgresql(session):
        return Cursor(newest_change(session))
    newest, snapshot = session.execute(_NOW_SQL).one()
    return Cursor(int(newest or 0), parse_snapshot(snapshot, bounded=False).cut())


def newest_change(session: Reader) -> int:
    """The newest change id (0 for an empty log): one lookup on the primary key."""
    return int(session.scalar(sa.select(sa.func.max(table_of(Change).c.id))) or 0)


_COLUMNS = "id, set_id, table_name, row_id, op"


def _unseen_sql(running: bool) -> sa.TextClause:
    """The changes a snapshot did not see that another does: those of the
    transactions it lists as running, and of those from its xmax on. Each
    branch one range of ix_changes_xid, stopped at :n rows (more: the page
    draws its region again), none sorted before the union."""
    visible = "pg_visible_in_snapshot(xid, CAST(:snap AS pg_snapshot))"
    branches = [
        f"(SELECT {_COLUMNS} FROM changes"
        f" WHERE xid >= CAST(:xmax AS xid8) AND {visible} LIMIT :n)"
    ]
    if running:
        branches.append(
            f"(SELECT {_COLUMNS} FROM changes"
            f" WHERE xid = ANY(CAST(:xip AS xid8[])) AND {visible} LIMIT :n)"
        )
    union = " UNION ".join(branches)
    return sa.text(f"SELECT * FROM ({union}) AS unseen ORDER BY id LIMIT :n")


def _read(session: Reader, old: Cursor, new: Cursor, limit: int) -> list[Any]:
    """Up to `limit` changes `new` sees that `old` did not, oldest id first."""
    if old.snapshot is None or new.snapshot is None:
        # An id alone (SQLite; a client that sends no snapshot).
        c = table_of(Change).c
        query = (
            sa.select(c.id, c.set_id, c.table_name, c.row_id, c.op)
            .where(c.id > old.after, c.id <= new.after)
            .order_by(c.id)
            .limit(limit)
        )
        return list(session.execute(query).all())
    was = old.snapshot
    params = {
        "snap": new.snapshot.text(),
        "xip": "{" + ",".join(map(str, was.xip)) + "}",
        "xmax": str(was.xmax),
        "n": limit,
    }
    return list(session.execute(_unseen_sql(bool(was.xip)), params).all())


def advanced(session: Reader, cursor: Cursor) -> Cursor | None:
    """The cursor now, if the log may hold changes `cursor` has not seen; else
    None (the idle tab: one statement, one lookup of an index's last entry).

    Against a snapshot, the changes it did not see are those of the
    transactions it lists as running and of those from its xmax on (newer
    change ids among them): nothing new when none of the first has ended and
    no change of the second is there.
    """
    was = cursor.snapshot
    if was is None or not _is_postgresql(session):
        newest = newest_change(session)
        if newest <= cursor.after:
            return None
        return now(session) if _is_postgresql(session) else Cursor(newest)
    text, late = session.execute(_LATE_SQL, {"xmax": str(was.xmax)}).one()
    # Uncut: a listed xid past a cut xmax may have ended.
    whole = parse_snapshot(text, bounded=False)
    if not late and not any(whole.finished(x) for x in was.xip):
        return None
    # The answer's `last` is the newest id it reports (or the old one).
    return Cursor(cursor.after, whole.cut())


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


@dataclass(frozen=True)
class Child:
    """A table whose rows a page shows under its own (a movie's ratings)."""

    name: str
    singular: str
    model: type[Any]
    foreign_key: str  # the column naming the parent row


def parents_of(
    session: Reader, child: Child, changes: Sequence[Any]
) -> dict[int, int | None]:
    """The parent of each child row the changes touched: as it stands, else (a
    row deleted since) as the log's delete of it had it. Two indexed reads.
    """
    columns = table_of(child.model)
    ids = sorted({c.row_id for c in changes})
    stmt = sa.select(columns.c.id, columns.c[child.foreign_key]).where(
        columns.c.id.in_(ids)
    )
    found: dict[int, int | None] = {r[0]: r[1] for r in session.execute(stmt)}
    gone = [c.id for c in changes if c.op == DELETE and c.row_id not in found]
    if gone:
        log = table_of(Change).c
        for row_id, old in session.execute(
            sa.select(log.row_id, log.old).where(log.id.in_(gone))
        ):
            found[row_id] = loads(columns, old).get(child.foreign_key)
    return found


def _children_answer(
    session: Reader, child: Child, changes: Sequence[Any]
) -> dict[str, Any]:
    """A child table's rows as grouped(), each with its parent's id third."""
    groups: dict[str, Any] = grouped(changes)
    parents = parents_of(session, child, changes) if changes else {}
    for rows in groups.values():
        for entry in rows:
            entry.append(parents.get(entry[0]))
    return {"singular": child.singular, **groups}


def since(
    session: Reader,
    table: str,
    cursor: Cursor,
    children: Sequence[Child] = (),
) -> dict[str, Any] | None:
    """What changed in `table` for a page at `cursor`; None when nothing can have.

    The answer carries the page's next cursor ("last", and on PostgreSQL
    "snapshot") and the asked table's rows by what happened to them
    (grouped()), or "refresh" when there are too many to follow row by row.
    Rows of `children` (shown under the table's rows) that changed are under
    "children", by table: [row id, [set ids], parent id] (the parent's
    summary and open list follow them).
    """
    current = advanced(session, cursor)
    if current is None:
        return None
    window = _read(session, cursor, current, SCAN_MAX + 1)
    if window and current.snapshot is not None:
        # Every change the new snapshot sees above the old id is in the window.
        current = Cursor(max(current.after, window[-1].id), current.snapshot)
    body: dict[str, Any] = current.args()
    mine = [c for c in window if c.table_name == table]
    kids = {k.name: [c for c in window if c.table_name == k.name] for k in children}
    listed = len(mine) + sum(len(rows) for rows in kids.values())
    if len(window) > SCAN_MAX or listed > ROWS_MAX:
        # The page draws its region again, from a fresh cursor of its own.
        return {**body, "refresh": True}
    body.update(grouped(mine))
    if any(kids.values()):
        body["children"] = {
            k.name: _children_answer(session, k, kids[k.name])
            for k in children
            if kids[k.name]
        }
    return body
