"""The change log (issue 14): every write's changed rows, written in the write's
own transaction, and undo and redo of a change set.

A change set is one write: a save, a create, a delete with the children its
cascade removes, an import, an undo or a redo. Each changed row is one `changes`
row (app.models.Change) holding the changed fields' old and new values as
compact JSON. Who made it comes from a context variable the views layer sets
(set_author): this module knows nothing of Flask.

Not logged: copied fields a rename rewrites in other rows (a rating's movie_name
follows its movie's name, app/crud/copies.py). The copy is a function of the
movie's row, whose change is logged; undoing the rename puts the copies back by
the same rule. Logging them would add a row per rating to a rename.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.crud.copies import fill_copies, follow_copies
from app.crud.dialect import Dialect
from app.crud.errors import Conflict, NotFound, StaleWrite, ValidationError
from app.crud.fields import Resource, table_of
from app.models import Change

ANONYMOUS = "anonymous"
CREATE, UPDATE, DELETE = "create", "update", "delete"
# Columns every row carries (app.models.Timestamped) and the id: not data. A
# delete logs them too, so an undo puts the row back exactly.
_BOOKKEEPING = frozenset({"id", "version", "created_at", "updated_at"})
# Change rows a statement carries, and ids an IN list (one JSON parameter) holds.
_BATCH = 5000
_SESSION_KEY = "reeltable.change_set"
_WHO_MAX = 80  # Change.who's length (a user's name fits: USER_NAME_MAX)

Author = str | Callable[[], str | None] | None
_author: ContextVar[Author] = ContextVar("reeltable_change_author", default=None)


def set_author(author: Author) -> None:
    """Name who this context's writes are by: a name, or a callable asked lazily.

    The views layer sets a callable reading the signed-in user, so a request
    that writes nothing never loads the user for this.
    """
    _author.set(author)


def current_author() -> str:
    """Who this context's writes are by: a name, else "anonymous"."""
    author = _author.get()
    if callable(author):
        author = author()
    return author or ANONYMOUS


@contextmanager
def acting_as(author: Author) -> Iterator[None]:
    """Run the body's writes as `author` (commands, tests)."""
    token = _author.set(author)
    try:
        yield
    finally:
        _author.reset(token)


# ---------------------------------------------------------------- values


def dumps(values: Mapping[str, Any]) -> str:
    """Compact JSON of column values (dates as ISO 8601)."""
    return _ENCODER.encode(values)


def _json_default(value: Any) -> Any:
    """Encode the column values json cannot: dates and times as ISO 8601."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in the change log")


# One encoder for every change: json.dumps() with options builds one a call.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=_json_default
)


def loads(table: sa.Table, text: str | None) -> dict[str, Any]:
    """Column values read back from a change's JSON, in their Python types."""
    return from_json(table, json.loads(text)) if text else {}


def from_json(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a JSON-decoded row back to the Python types of its table's columns."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        column_type = table.c[name].type
        if value is not None and isinstance(column_type, sa.DateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(column_type, sa.Date):
            value = date.fromisoformat(value)
        elif (
            value is not None
            and isinstance(column_type, sa.Numeric)
            and not isinstance(column_type, sa.Float)
        ):
            value = Decimal(value)
        out[name] = value
    return out


def data_columns(table: sa.Table) -> list[str]:
    """The columns a create logs: all but the id, version and timestamps."""
    return [c.name for c in table.columns if c.name not in _BOOKKEEPING]


def compared_columns(resource: Resource[Any]) -> list[str]:
    """The columns an undo checks: the data, without the copied fields.

    A copy changes with its source (a movie renamed), not by an edit of the row.
    """
    copied = {f.name for f in resource.fields if f.copied_from is not None}
    return [c for c in data_columns(table_of(resource.model)) if c not in copied]


def full_row(row: Any) -> dict[str, Any]:
    """All column values of an ORM row, by column name."""
    return {c.name: getattr(row, c.key) for c in row.__mapper__.columns}


# ---------------------------------------------------------------- writing

# Changes of a set kept in memory to say what it did (the Undo button's label):
# enough for "deleting Jaws and its 99 ratings" without reading the log back.
KEPT = 101
_LAST_KEY = "reeltable.last_logged"


@dataclass(frozen=True)
class Logged:
    """One change a set logged, as the write knew it (Python values).

    `new` is None for rows whose values were logged in SQL (a create or a bulk
    update): the row itself holds them.
    """

    table: str
    row_id: int
    op: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None


class ChangeSet:
    """The change rows of one write transaction, inserted as the write makes them.

    Its id comes from the change ids' own sequence (Dialect.next_id), so it is
    never reused and no later than its first change's id (on SQLite, equal). It
    is taken when the first row is logged: a write that changes nothing leaves
    no trace.
    """

    def __init__(self, session: Session, backend: Dialect) -> None:
        self.session = session
        self.backend = backend
        self.id: int | None = None
        self.at = int(time.time() * 1000)
        self.who: str | None = None
        self._update_floor: int | None = None
        self.table = table_of(Change)
        self.count = 0  # change rows logged
        self.kept: list[Logged] = []  # the first KEPT of them

    def _note(
        self,
        table: str,
        row_id: int,
        op: str,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
    ) -> None:
        """Keep a change in memory (the first KEPT) to describe the set later."""
        if len(self.kept) < KEPT:
            self.kept.append(Logged(table, row_id, op, old, new))

    def _named(self) -> None:
        """The set has its id: it is the session's last logged set from now on."""
        self.session.info[_LAST_KEY] = self

    def _start(self) -> int:
        """Take the set's id and its author, before its first row."""
        if self.id is None:
            self.id = self.backend.next_id(self.session, self.table)
            self.who = current_author()[:_WHO_MAX]
            self._named()
        return self.id

    def add(
        self,
        table: str,
        rows: Iterable[tuple[int, str, str | None, str | None, int | None]],
    ) -> None:
        """Log (row id, operation, old JSON, new JSON, version) rows of a table."""
        items = list(rows)
        if not items:
            return
        self.count += len(items)
        connection = self.session.connection()
        if self.id is None:
            # The set's first row takes the set's id in its own INSERT: an edit
            # logs in one statement.
            self.who = current_author()[:_WHO_MAX]
            sql = _first_sql(
                connection.dialect,
                self.table,
                self.backend.next_id_sql(self.table.name),
            )
            first = connection.exec_driver_sql(
                sql, (self.at, self.who, table, *items[0])
            )
            self.id = int(first.scalar_one())
            self._named()
            items = items[1:]
        head = (self._start(), self.at, self.who, table)
        # Multi-row INSERTs, the values straight to the driver: SQLAlchemy's
        # handling of each row's parameters cost more than the INSERT (bulk.py).
        for start in range(0, len(items), _ROWS):
            part = items[start : start + _ROWS]
            sql = _insert_sql(connection.dialect, self.table, len(part))
            values = [v for item in part for v in (*head, *item)]
            connection.exec_driver_sql(sql, tuple(values))

    def created(self, table: sa.Table, ids: Sequence[int]) -> None:
        """Log the creation of these rows, their values read in SQL (bulk loads).

        One INSERT ... SELECT a batch builds each row's JSON in the database:
        no value crosses into Python again (an import of 1,000,000 ratings).
        """
        self._copy(table, ids, CREATE, data_columns(table), table.c.version)

    def before_update(
        self, table: sa.Table, names: Sequence[str], ids: Sequence[int]
    ) -> None:
        """Log an update of these rows' `names` (bulk): their old values, in SQL.

        after_update() then fills in the new values. The fields are taken as
        changed (update_many's contract), which spares reading them into Python.
        """
        self._update_floor = self.session.scalar(
            sa.select(sa.func.max(self.table.c.id))
        )
        self._copy(table, ids, UPDATE, names, table.c.version + 1, column="old")

    def after_update(
        self, table: sa.Table, names: Sequence[str], ids: Sequence[int]
    ) -> None:
        """Fill in the new values of the changes before_update() logged."""
        log = self.table
        value = (
            sa.select(self.backend.json_object(*_pairs(table, names)))
            .where(table.c.id == log.c.row_id)
            .scalar_subquery()
        )
        connection = self.session.connection()
        for start in range(0, len(ids), _BATCH):
            part = ids[start : start + _BATCH]
            connection.execute(
                sa.update(log)
                .where(
                    # The rows before_update() has just added: a range of
                    # the primary key, never a walk through the whole set.
                    log.c.id > (self._update_floor or 0),
                    log.c.table_name == table.name,
                    self.backend.among(log.c.row_id, part),
                    log.c.set_id == self._start(),
                    log.c.new.is_(None),
                )
                .values(new=value)
            )

    def _copy(
        self,
        table: sa.Table,
        ids: Sequence[int],
        op: str,
        names: Sequence[str],
        version: sa.ColumnElement[Any],
        column: str = "new",
    ) -> None:
        """INSERT ... SELECT change rows of `ids`, `names` as JSON in `column`."""
        if not ids:
            return
        set_id = self._start()
        self.count += len(ids)
        for row_id in ids[: max(0, KEPT - len(self.kept))]:
            self._note(table.name, row_id, op, None, None)
        connection = self.session.connection()
        log = self.table
        logged = ["set_id", "at", "who", "table_name", "row_id", "op", column]
        columns = [log.c[n] for n in (*logged, "version")]
        for start in range(0, len(ids), _BATCH):
            part = ids[start : start + _BATCH]
            rows = sa.select(
                sa.literal(set_id, sa.BigInteger),
                sa.literal(self.at, sa.BigInteger),
                sa.literal(self.who, sa.String),
                sa.literal(table.name, sa.String),
                table.c.id,
                sa.literal(op, sa.String),
                self.backend.json_object(*_pairs(table, names)),
                version,
            ).where(self.backend.among(table.c.id, part))
            connection.execute(sa.insert(log).from_select(columns, rows))

    def deleted(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Log the deletion of these rows (full column values, id included)."""
        items = []
        for row in rows:
            old = {k: v for k, v in row.items() if k != "id"}
            self._note(table, row["id"], DELETE, old, None)
            items.append((row["id"], DELETE, dumps(old), None, row.get("version")))
        self.add(table, items)

    def updated(
        self,
        table: str,
        row_id: int,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        version: int | None,
    ) -> None:
        """Log an update of the fields whose value changed (none: nothing)."""
        changed = [k for k in new if old.get(k) != new[k]]
        if changed:
            before = {k: old.get(k) for k in changed}
            after = {k: new[k] for k in changed}
            self._note(table, row_id, UPDATE, before, after)
            self.add(table, [(row_id, UPDATE, dumps(before), dumps(after), version)])


def _pairs(table: sa.Table, names: Sequence[str]) -> list[Any]:
    """("name", column, ...) for a JSON object of these columns, made in SQL."""
    pairs: list[Any] = []
    for name in names:
        pairs += [sa.literal(name), table.c[name]]
    return pairs


# The columns add() writes, in order, and the rows a statement carries (9 values
# a row, below SQLite's 32,766 parameters).
_COLUMNS = (
    "set_id",
    "at",
    "who",
    "table_name",
    "row_id",
    "op",
    "old",
    "new",
    "version",
)
_ROWS = 3000


@functools.lru_cache(maxsize=16)
def _insert_sql(dialect: sa.Dialect, table: sa.Table, rows: int) -> str:
    """INSERT INTO changes (...) VALUES (...), ... for `rows` rows."""
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in _COLUMNS)
    row = "(" + ", ".join([marker] * len(_COLUMNS)) + ")"
    return f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES " + ", ".join(
        [row] * rows
    )


@functools.lru_cache(maxsize=16)
def _first_sql(dialect: sa.Dialect, table: sa.Table, next_id: str) -> str:
    """INSERT of a set's first row, its set_id the expression next_id; RETURNING it."""
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in _COLUMNS)
    values = ", ".join([next_id] + [marker] * (len(_COLUMNS) - 1))
    returning = f" RETURNING {preparer.quote('set_id')}"
    if dialect.name == "postgresql":
        # From a subquery's row (OFFSET 0 keeps it one), so the set id is taken
        # before the row's own id (its column default): a set's id is then no
        # later than its first change's, as the class says. In VALUES the
        # row's id comes first. The transaction's id (the column xid's
        # default, which live polling reads) is taken in the same subquery.
        return (
            f"INSERT INTO {preparer.format_table(table)} ({names}) SELECT {values}"
            " FROM (SELECT pg_current_xact_id() OFFSET 0) AS xact" + returning
        )
    return (
        f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({values})"
        + returning
    )


def change_set(session: Session, backend: Dialect) -> ChangeSet:
    """The change set of the session's write transaction (made on first use)."""
    found = session.info.get(_SESSION_KEY)
    if not isinstance(found, ChangeSet):
        found = session.info[_SESSION_KEY] = ChangeSet(session, backend)
    return found


def last_logged(session: Session | Any, set_id: int) -> ChangeSet | None:
    """The set `set_id` as the session's write kept it in memory, if it did."""
    found = session.info.get(_LAST_KEY)
    return found if isinstance(found, ChangeSet) and found.id == set_id else None


def begin_set(session: Session, backend: Dialect) -> ChangeSet:
    """Start a new change set for a write transaction that begins."""
    session.info[_SESSION_KEY] = ChangeSet(session, backend)
    return session.info[_SESSION_KEY]


def end_set(session: Session) -> None:
    """Forget the change set of a write transaction that ended."""
    session.info.pop(_SESSION_KEY, None)


# ---------------------------------------------------------------- undo, redo


@dataclass(frozen=True)
class Since:
    """A later change that stands in an undo's way: who changed what, when."""

    who: str
    table: str
    row_id: int
    field: str  # "" when the row itself was deleted or created
    at: int  # Unix milliseconds, or 0 if the log holds no such change

    def describe(self) -> str:
        """E.g. "ben changed rating of ratings 12"."""
        if not self.field:
            return f"{self.who} changed row {self.row_id} of {self.table}"
        return f"{self.who} changed {self.field} of {self.table} {self.row_id}"


class UndoRefused(Conflict):
    """An undo or redo would overwrite a value someone changed after it."""

    def __init__(self, since: Sequence[Since]) -> None:
        shown = "; ".join(s.describe() for s in since[:3])
        more = f" (and {len(since) - 3} more)" if len(since) > 3 else ""
        super().__init__(None, f"Not done: since then, {shown}{more}.")
        self.since = list(since)


@dataclass
class _Step:
    """One row's part of an undo or redo: what to do, from what, to what."""

    table: str
    row_id: int
    action: str  # CREATE, UPDATE or DELETE
    expect: dict[str, Any]  # the values the row must hold now (update, delete)
    values: dict[str, Any]  # the values to write (create, update)


class ChangeLog:
    """Undo and redo of change sets over a table and its children (in a write)."""

    def __init__(
        self, session: Session, backend: Dialect, resources: Sequence[Resource[Any]]
    ) -> None:
        self.session = session
        self.backend = backend
        self.resources = {r.model.__tablename__: r for r in resources}

    def changes(self, set_id: int) -> list[Change]:
        """The changes of a set, oldest first; NotFound if there are none."""
        stmt = sa.select(Change).where(Change.set_id == set_id).order_by(Change.id)
        found = list(self.session.scalars(stmt))
        if not found:
            raise NotFound(f"No change set {set_id} in the log.")
        return found

    def undo(self, set_id: int) -> int:
        """Undo a change set as a new change set; return the new set's id.

        Raises UndoRefused (naming who changed what since) if a value it would
        restore is no longer the one the set wrote.
        """
        return self._apply(self.changes(set_id), undo=True)

    def redo(self, set_id: int) -> int:
        """Do an undone change set again, as a new change set; return its id."""
        return self._apply(self.changes(set_id), undo=False)

    def _apply(self, changes: list[Change], undo: bool) -> int:
        """Check every step against the rows as they are, then write them all."""
        steps = [self._step(c, undo) for c in (reversed(changes) if undo else changes)]
        current = self._current(steps)
        blocked: list[tuple[str, int, str]] = []
        for step in steps:
            now = current.get((step.table, step.row_id))
            if step.action == CREATE:
                if now is not None:
                    blocked.append((step.table, step.row_id, ""))
                continue
            if now is None:
                blocked.append((step.table, step.row_id, ""))
                continue
            for name, value in step.expect.items():
                if now.get(name) != value:
                    blocked.append((step.table, step.row_id, name))
        if blocked:
            raise UndoRefused(self._since(blocked, changes[0].id))
        log = change_set(self.session, self.backend)
        for table, action, group in _runs(steps):
            resource = self.resources[table]
            if action == CREATE:
                self._create(resource, group, log)
            elif action == DELETE:
                self._delete(resource, [s.row_id for s in group], log)
            else:
                self._update(resource, group, current, log)
        if log.id is None:  # pragma: no cover - a set always has rows
            raise NotFound("Nothing to change.")
        return log.id

    def _step(self, change: Change, undo: bool) -> _Step:
        """The step that undoes (or redoes) one change."""
        resource = self.resources.get(change.table_name)
        if resource is None:
            raise ValidationError({"_": "This change belongs to another table."})
        table = table_of(resource.model)
        old, new = loads(table, change.old), loads(table, change.new)
        compared = set(compared_columns(resource))
        if change.op == UPDATE:
            before, after = (new, old) if undo else (old, new)
            return _Step(change.table_name, change.row_id, UPDATE, before, after)
        made = new if change.op == CREATE else old
        if (change.op == CREATE) == undo:  # undo a create, redo a delete
            expect = {k: v for k, v in made.items() if k in compared}
            return _Step(change.table_name, change.row_id, DELETE, expect, {})
        values = dict(made)
        values.setdefault("version", change.version or 1)
        return _Step(change.table_name, change.row_id, CREATE, {}, values)

    def _current(self, steps: list[_Step]) -> dict[tuple[str, int], dict[str, Any]]:
        """The rows the steps touch as they are now, locked until the commit."""
        ids: dict[str, set[int]] = {}
        for step in steps:
            ids.setdefault(step.table, set()).add(step.row_id)
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for name, wanted in ids.items():
            table = table_of(self.resources[name].model)
            listed = sorted(wanted)
            for start in range(0, len(listed), _BATCH):
                part = listed[start : start + _BATCH]
                # FOR UPDATE on PostgreSQL: nobody writes them between this
                # check and our writes. SQLite has one writer already.
                stmt = (
                    sa.select(table)
                    .where(self.backend.among(table.c.id, part))
                    .with_for_update()
                )
                for row in self.session.execute(stmt).mappings():
                    found[(name, row["id"])] = dict(row)
        return found

    def _since(self, blocked: list[tuple[str, int, str]], after: int) -> list[Since]:
        """Who last changed each blocked field after change `after`."""
        out: list[Since] = []
        for table, row_id, field in blocked:
            stmt = (
                sa.select(Change)
                .where(
                    Change.table_name == table,
                    Change.row_id == row_id,
                    Change.id >= after,
                )
                .order_by(Change.id.desc())
            )
            hit = None
            for change in self.session.scalars(stmt):
                touched = json.loads(change.new or change.old or "{}")
                if not field or change.op != UPDATE or field in touched:
                    hit = change
                    break
            who = hit.who if hit is not None else "someone"
            out.append(Since(who, table, row_id, field, hit.at if hit else 0))
        return out

    def _create(
        self, resource: Resource[Any], steps: list[_Step], log: ChangeSet
    ) -> None:
        """Insert rows again with their ids; copies from their sources as now."""
        table = table_of(resource.model)
        rows: list[Mapping[str, Any]] = [{"id": s.row_id, **s.values} for s in steps]
        rows = fill_copies(self.session, self.backend, resource, rows, refresh=True)
        connection = self.session.connection()
        for start in range(0, len(rows), _BATCH):
            connection.execute(sa.insert(table), rows[start : start + _BATCH])
        log.created(table, [s.row_id for s in steps])

    def _delete(self, resource: Resource[Any], ids: list[int], log: ChangeSet) -> None:
        """Delete rows and, by the cascade, their children; log them all."""
        delete_logged(self.session, self.backend, resource, ids, log)

    def _update(
        self,
        resource: Resource[Any],
        steps: list[_Step],
        current: Mapping[tuple[str, int], Mapping[str, Any]],
        log: ChangeSet,
    ) -> None:
        """Write the steps' values at the versions checked; log them."""
        table = table_of(resource.model)
        connection = self.session.connection()
        for step in steps:
            now = current[(step.table, step.row_id)]
            values: dict[str, Any] = dict(step.values)
            stmt = (
                sa.update(table)
                .where(table.c.id == step.row_id, table.c.version == now["version"])
                .values({**values, "version": table.c.version + 1})
            )
            if connection.execute(stmt).rowcount != 1:
                raise StaleWrite(None)
            log.updated(step.table, step.row_id, now, values, now["version"] + 1)
        follow_copies(
            self.session,
            self.backend,
            resource,
            [(s.row_id, s.values) for s in steps],
        )


def delete_logged(
    session: Session,
    backend: Dialect,
    resource: Resource[Any],
    ids: Sequence[int],
    log: ChangeSet,
) -> None:
    """Delete rows by id, their children by the cascade; log children, then rows.

    Children first: an undo walks the set backwards and must put a parent back
    before its children.
    """
    table = table_of(resource.model)
    connection = session.connection()
    for start in range(0, len(ids), _BATCH):
        part = list(ids[start : start + _BATCH])
        for child in resource.children:
            child_table = table_of(child.model)
            fk = child_table.c[child.foreign_key]
            kids = connection.execute(
                sa.select(child_table).where(backend.among(fk, part))
            ).mappings()
            log.deleted(child_table.name, [dict(r) for r in kids])
        rows = connection.execute(
            sa.select(table).where(backend.among(table.c.id, part))
        ).mappings()
        log.deleted(table.name, [dict(r) for r in rows])
        connection.execute(sa.delete(table).where(backend.among(table.c.id, part)))


def _runs(steps: list[_Step]) -> Iterator[tuple[str, str, list[_Step]]]:
    """Consecutive steps of one table and action, in order: written together."""
    run: list[_Step] = []
    for step in steps:
        if run and (run[0].table, run[0].action) != (step.table, step.action):
            yield run[0].table, run[0].action, run
            run = []
        run.append(step)
    if run:
        yield run[0].table, run[0].action, run


def prune(session: Session, older_than_seconds: float) -> int:
    """Delete the changes made more than `older_than_seconds` ago; count them."""
    cutoff = int((time.time() - older_than_seconds) * 1000)
    done = session.execute(sa.delete(Change).where(Change.at < cutoff))
    return int(getattr(done, "rowcount", 0) or 0)
