"""Reading the change log (issue 14): a row's history and the filtered log.

Read-only: writes to `changes` come only from app/crud/changes.py. The log is
not a declared Resource, so imports, the CLI and the tables' CSV routes never
offer it as a table to write into. Knows nothing of Flask.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from app.crud.changes import DELETE, loads
from app.crud.fields import ASCII_BLANKS, FORBIDDEN_CHARS, Resource, table_of
from app.models import USER_NAME_MAX, Change

# Bounds of a BigInteger row id on every dialect (app/crud/fields.py _INTEGER_MAX).
ROW_MAX = 2**63 - 1
MAX_PAGE = 1_000_000
# Entries a row's history lists: enough for any row people edit by hand.
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
    session: Reader, table: str, row_id: int, limit: int = HISTORY_LIMIT
) -> list[Change]:
    """A row's changes, newest first (ix_changes_table_name serves it)."""
    stmt = (
        sa.select(Change)
        .where(Change.table_name == table, Change.row_id == row_id)
        .order_by(Change.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


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
