"""The generic CRUD service: one class serves every declared table.

It knows SQLAlchemy and the declarations in app.resources, and nothing of Flask
requests or HTML. It is the only place that builds filter and sort SQL and the only
path for writes. Errors are typed so views can map them to 400/404/409/422.
"""

from __future__ import annotations

import functools
import json
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.exc import StaleDataError

from app.db import WRITE_INTENT, StepsSpent, step_budget
from app.models import DeletedRow
from app.write_gate import gate_for

_T = TypeVar("_T")

# ---------------------------------------------------------------- errors


class ServiceError(Exception):
    """Base class for the errors the service raises on purpose."""


class ValidationError(ServiceError):
    """Input failed validation; carries one message per offending field."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class NotFound(ServiceError):
    """The row does not exist (or no longer does)."""


class Conflict(ServiceError):
    """The row changed since the client read it; nothing was written."""

    def __init__(self, current: Any, message: str = "") -> None:
        super().__init__(message or "This row was changed by someone else.")
        self.current = current


class _StaleWrite(Conflict):
    """The UPDATE matched no row at the version read: someone wrote in between."""


class WriteBusy(ServiceError):
    """An import is writing the table: nothing was written, try again shortly (503).

    Raised at once while an import holds the database (app/write_gate.py), or when
    a write waited for a lock longer than it may (SQLite's busy_timeout, the
    PostgreSQL lock_timeout of ordinary writes) instead of a 500 (issue 11).
    """

    message = "An import is being written; try again in a few seconds."
    retry_after = 5  # seconds, for the Retry-After header

    def __init__(self) -> None:
        super().__init__(self.message)


class QueryError(ServiceError):
    """A list query parameter is not acceptable (unknown sort key, bad number...)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


# ---------------------------------------------------------------- field kinds

# NUL and the other C0 controls break PostgreSQL text or terminals; tab and line
# breaks are legitimate in free text (and must survive a CSV round trip).
FORBIDDEN_CHARS = _FORBIDDEN_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Numbers are written in ASCII: int() and Decimal() would also take "1_0", "1e3",
# Arabic-Indic or full-width digits and strip Unicode spaces (issue 12). Only ASCII
# blanks around a number are dropped, as a form field's stray space always was.
_ASCII_BLANKS = " \t\r\n\f\v"
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


@dataclass(frozen=True)
class Text:
    """Free text, trimmed; required unless said otherwise."""

    max_length: int
    required: bool = True

    def parse(self, label: str, raw: Any) -> str | None:
        """Return the cleaned value or raise ValueError with a message."""
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            raise ValueError(f"{label} must be text.")
        value = raw.strip()
        if not value:
            if self.required:
                raise ValueError(f"{label} is required.")
            return None
        if len(value) > self.max_length:
            raise ValueError(f"{label} must be at most {self.max_length} characters.")
        if _FORBIDDEN_CHARS.search(value):
            raise ValueError(f"{label} contains characters that are not allowed.")
        return value


@dataclass(frozen=True)
class Integer:
    """A whole number within [minimum, maximum]."""

    minimum: int
    maximum: int
    required: bool = True

    def parse(self, label: str, raw: Any) -> int | None:
        """Return the number or raise ValueError with a message."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise ValueError(f"{label} is required.")
            return None
        if isinstance(raw, bool):
            raise ValueError(f"{label} must be a whole number.")
        value: int | None
        if isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip(_ASCII_BLANKS)
            if not _WHOLE_NUMBER.fullmatch(text):
                raise ValueError(f"{label} must be a whole number.")
            # So many digits are out of any range: no need to build the number.
            value = int(text) if len(text) <= 40 else None
        if value is None or not self.minimum <= value <= self.maximum:
            raise ValueError(
                f"{label} must be between {self.minimum} and {self.maximum}."
            )
        return value


@dataclass(frozen=True)
class Number:
    """A decimal number within [minimum, maximum] with at most `places` decimals."""

    minimum: float
    maximum: float
    places: int = 1
    required: bool = True

    def parse(self, label: str, raw: Any) -> float | None:
        """Return the number (as float) or raise ValueError with a message."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise ValueError(f"{label} is required.")
            return None
        if isinstance(raw, bool):
            raise ValueError(f"{label} must be a number.")
        if isinstance(raw, int | float | Decimal):
            value = Decimal(str(raw))  # a number already: no spelling to check
        else:
            text = str(raw).strip(_ASCII_BLANKS)
            if len(text) > 32 or not _DECIMAL_NUMBER.fullmatch(text):
                raise ValueError(f"{label} must be a number.")
            value = Decimal(text)
        if not value.is_finite():
            raise ValueError(f"{label} must be a number.")
        if not self.minimum <= value <= self.maximum:
            raise ValueError(
                f"{label} must be between {self.minimum:g} and {self.maximum:g}."
            )
        if value != round(value, self.places):
            raise ValueError(f"{label} can have at most {self.places} decimal place.")
        # + 0.0 makes "-0" 0.0: SQLite would export a stored -0.0 as "-0.0".
        result = float(round(value, self.places)) + 0.0
        return result if math.isfinite(result) else None


# The largest value of each integer column type that every dialect we run on can
# hold. SQLite stores any INTEGER in 64 bits, PostgreSQL's integer has 32: one
# bound for both keeps a URL, a filter or an imported id valid on either, and a
# SQLite database movable to PostgreSQL. Subtypes before Integer itself.
_INTEGER_MAX: tuple[tuple[type[sa.Integer], int], ...] = (
    (sa.SmallInteger, 2**15 - 1),
    (sa.BigInteger, 2**63 - 1),
    (sa.Integer, 2**31 - 1),
)


@functools.cache
def largest_id(model: type) -> int:
    """Return the largest id the model's id column holds on every dialect."""
    column_type = model.__table__.c.id.type
    for kind, largest in _INTEGER_MAX:
        if isinstance(column_type, kind):
            return largest
    raise TypeError(f"{model.__name__}.id is not an integer column")


@dataclass(frozen=True)
class Reference:
    """The id of a row in another table, which must exist."""

    model: type
    label_of_target: str = "row"

    required: bool = True

    def parse(self, label: str, raw: Any) -> int | None:
        """Return the id; existence is checked by the service, which has a session."""
        return Integer(1, largest_id(self.model), self.required).parse(label, raw)


FieldKind = Text | Integer | Number | Reference


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Field:
    """One column of a declared table and what the UI and service may do with it."""

    name: str
    label: str
    kind: FieldKind
    editable: bool = True  # may an update change it
    creatable: bool = True  # may a create set it
    sortable: bool = False
    searchable: bool = False  # part of the free-text search `q`
    exported: bool = True
    # Never typed in: copied from the row a Reference field points at, as
    # (reference field, column there); e.g. a rating's movie_name is its movie's name.
    copied_from: tuple[str, str] | None = None


@dataclass(frozen=True)
class Filter:
    """A named query parameter that narrows a list, e.g. min_rating=7."""

    param: str
    field: str
    op: str  # "eq", "ge", "le" or "contains"
    label: str
    kind: FieldKind


@dataclass(frozen=True)
class Summary:
    """A per-row count and average over a child table (e.g. a movie's ratings)."""

    name: str
    child: type
    foreign_key: str
    value: str


@dataclass(frozen=True)
class Child:
    """A child table whose rows are deleted with the parent (ON DELETE CASCADE)."""

    resource: Resource  # the child table's own declaration
    foreign_key: str

    @property
    def model(self) -> type:
        """The child table's model."""
        return self.resource.model


@dataclass(frozen=True)
class Resource:
    """Everything the service and the views need to know about one table."""

    name: str  # URL segment and table name, e.g. "movies"
    model: type
    fields: tuple[Field, ...]
    singular: str
    default_sort: tuple[str, ...] = ("id",)
    filters: tuple[Filter, ...] = ()
    summaries: tuple[Summary, ...] = ()
    children: tuple[Child, ...] = ()
    # SQLite FTS5 trigram table over exactly the searchable fields, kept in step by
    # triggers, each value with an end mark, and its term list <index>_terms
    # (migration 0015); None means search scans with LIKE.
    search_index: str | None = None
    # A (table_name, n) table whose row for this table holds its row count, kept
    # by triggers (see migrations); None means the total is counted with count(*).
    row_count_table: str | None = None
    # Fields that identify an existing row when imported data has no id.
    match_on: tuple[str, ...] = ()

    def field(self, name: str) -> Field:
        """Return the declared field called `name` (KeyError if none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def sortable(self) -> tuple[str, ...]:
        """Names of the fields a list may be sorted by."""
        return tuple(f.name for f in self.fields if f.sortable)

    @property
    def exported(self) -> tuple[str, ...]:
        """Column names written by an export, id first."""
        return ("id", *(f.name for f in self.fields if f.exported))


# ---------------------------------------------------------------- list queries

MAX_QUERY_LENGTH = 200
MAX_PAGE = 1_000_000
MAX_SORT_KEYS = 4
# Rows a search walk passes for the cost of fetching one match to sort it: in an
# index that carries the searched columns the walk tests rows there (migration
# 0007), about a fifth of a fetch each; in one that does not it reads each row from
# the table, about two fetches each (1,000,000 ratings: 11 µs a row walked, 4.7 µs
# a match sorted).
WALK_ROWS_PER_FETCH_COVERED = 5.0
WALK_ROWS_PER_FETCH = 0.5
# SQLite VM steps a walk takes per row it passes (8-16 measured), and the least
# budget a walk gets (see CrudService.items).
WALK_ROW_STEPS = 20
WALK_MIN_STEPS = 100_000


@dataclass(frozen=True)
class SortKey:
    """One sort key: a declared field and its direction."""

    field: str
    descending: bool = False

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field


@dataclass(frozen=True)
class ListQuery:
    """A validated view of a table: search, filters, sort and page."""

    q: str = ""
    filters: Mapping[str, Any] = field(default_factory=dict)
    sort: tuple[SortKey, ...] = ()
    page: int = 1
    per_page: int = 50

    def args(self, **changes: Any) -> dict[str, Any]:
        """Return the query-string arguments for this view, with changes applied.

        Defaults are left out so URLs stay short and canonical.
        """
        out: dict[str, Any] = {}
        if self.q:
            out["q"] = self.q
        for key, value in self.filters.items():
            if value is not None:
                out[key] = format_value(value)
        if self.sort:
            out["sort"] = ",".join(str(k) for k in self.sort)
        if self.page != 1:
            out["page"] = self.page
        out["per_page"] = self.per_page
        out.update(changes)
        return {k: v for k, v in out.items() if v not in (None, "")}

    def sort_direction(self, name: str) -> tuple[int, bool] | None:
        """Return (position, descending) of a field in the sort, or None."""
        for position, key in enumerate(self.sort):
            if key.field == name:
                return position, key.descending
        return None


def format_value(value: Any) -> str:
    """Format a parsed filter or field value back into its query-string form."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass
class Page:
    """One page of a list: the rows, counts and per-row summaries."""

    items: list[Any]
    total: int  # rows matching the query
    grand_total: int  # rows in the table
    query: ListQuery
    summaries: dict[str, dict[int, tuple[int, float | None]]]

    @property
    def pages(self) -> int:
        """Number of pages (at least 1, so an empty result still has page 1)."""
        return max(1, math.ceil(self.total / self.query.per_page))

    @property
    def has_prev(self) -> bool:
        """True when there is a page before this one."""
        return self.query.page > 1

    @property
    def has_next(self) -> bool:
        """True when there is a page after this one."""
        return self.query.page < self.pages

    @property
    def first_index(self) -> int:
        """1-based position of the first row on this page (0 when empty)."""
        if not self.items:
            return 0
        return (self.query.page - 1) * self.query.per_page + 1


# ---------------------------------------------------------------- the service


@functools.cache
def _summary_statement(summary: Summary) -> sa.Select[Any]:
    """SELECT parent id, count, average of a summary's children, for :ids.

    Built once per summary: a page asks for its rows' summaries on every request,
    and building the statement cost more than running it. The ids are rendered
    into the SQL (they are integers read from the database) rather than bound
    one parameter each.
    """
    fk = getattr(summary.child, summary.foreign_key)
    value = getattr(summary.child, summary.value)
    ids = sa.bindparam("ids", expanding=True, literal_execute=True)
    return (
        sa.select(fk, sa.func.count(), sa.func.avg(value))
        .where(fk.in_(ids))
        .group_by(fk)
    )


class CountCache:
    """Counts of filtered views by (table, table version, filter), least recent out.

    Only for tables whose version triggers bump on every write (SQLite, migration
    0008): a count stored under a version is the count for as long as the version
    stands. One per app, shared by its requests; thread-safe.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._counts: OrderedDict[Hashable, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> int | None:
        """The count stored under key, or None."""
        with self._lock:
            total = self._counts.get(key)
            if total is not None:
                self._counts.move_to_end(key)
            return total

    def put(self, key: Hashable, total: int) -> None:
        """Store a count, dropping the least recently used beyond `size`."""
        with self._lock:
            self._counts[key] = total
            self._counts.move_to_end(key)
            while len(self._counts) > self.size:
                self._counts.popitem(last=False)


class CrudService:
    """List, get, create, update, delete and export rows of one declared table."""

    def __init__(
        self,
        resource: Resource,
        session: Session | scoped_session[Session],
        page_size: int = 50,
        max_page_size: int = 500,
        counts: CountCache | None = None,
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.resource = resource
        # Resolve a scoped session to the current one: the service lives for one
        # request or command, and needs the real Session's transaction methods.
        self.session: Session = (
            session() if isinstance(session, scoped_session) else session
        )
        self.model = resource.model
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.counts = counts
        self.write_lock = write_lock

    @property
    def dialect(self) -> str:
        """The database's dialect name: "sqlite" or "postgresql"."""
        return self.session.get_bind().dialect.name

    # ------------------------------------------------------------ reading

    def parse_query(self, args: Mapping[str, str]) -> ListQuery:
        """Validate query-string arguments into a ListQuery or raise QueryError."""
        q = (args.get("q") or "").strip()
        if len(q) > MAX_QUERY_LENGTH:
            raise QueryError(
                "q", f"The search text must be at most {MAX_QUERY_LENGTH} characters."
            )
        if _FORBIDDEN_CHARS.search(q):
            raise QueryError("q", "The search text contains characters not allowed.")
        filters: dict[str, Any] = {}
        for flt in self.resource.filters:
            raw = args.get(flt.param)
            if raw is None or not str(raw).strip():
                continue
            try:
                filters[flt.param] = flt.kind.parse(flt.label, raw)
            except ValueError as exc:
                raise QueryError(flt.param, str(exc)) from None
        sort = self._parse_sort(args.get("sort"))
        page = self._parse_int(args, "page", 1, 1, MAX_PAGE)
        per_page = self._parse_int(
            args, "per_page", self.page_size, 1, self.max_page_size
        )
        return ListQuery(q=q, filters=filters, sort=sort, page=page, per_page=per_page)

    def _parse_sort(self, raw: str | None) -> tuple[SortKey, ...]:
        """Parse "-rating,name" into sort keys, accepting only sortable fields."""
        if raw is None or not raw.strip():
            return ()
        keys: list[SortKey] = []
        allowed = self.resource.sortable
        for part in raw.split(","):
            part = part.strip()
            name = part.removeprefix("-")
            if name not in allowed:
                shown = part if len(part) <= 40 else part[:40] + "…"
                raise QueryError(
                    "sort",
                    f"Cannot sort by {shown!r}; choose from {', '.join(allowed)}.",
                )
            if any(k.field == name for k in keys):
                raise QueryError("sort", f"{name!r} appears twice in the sort.")
            keys.append(SortKey(name, part.startswith("-")))
        if len(keys) > MAX_SORT_KEYS:
            raise QueryError("sort", f"Sort by at most {MAX_SORT_KEYS} columns.")
        return tuple(keys)

    @staticmethod
    def _parse_int(
        args: Mapping[str, str], name: str, default: int, low: int, high: int
    ) -> int:
        """Parse a bounded positive integer parameter or raise QueryError."""
        raw = args.get(name)
        if raw is None or not str(raw).strip():
            return default
        text = str(raw).strip(_ASCII_BLANKS)
        if not text.isascii() or not text.isdigit() or len(text) > 9:
            raise QueryError(
                name, f"{name} must be a whole number from {low} to {high}."
            )
        value = int(text)
        if not low <= value <= high:
            raise QueryError(
                name, f"{name} must be a whole number from {low} to {high}."
            )
        return value

    def _column(self, name: str) -> sa.ColumnElement[Any]:
        """Return the mapped column for a declared field or id."""
        return getattr(self.model, name)

    def _where(
        self, query: ListQuery, walk_sort_index: bool = False
    ) -> list[sa.ColumnElement[bool]]:
        """Build the WHERE clauses for a query from declared fields only.

        walk_sort_index: see _walk_sort_index; it changes the plan, not the rows.
        """
        clauses: list[sa.ColumnElement[bool]] = []
        if query.q:
            clauses.append(self._search(query.q, walk_sort_index))
        for flt in self.resource.filters:
            if flt.param not in query.filters:
                continue
            value = query.filters[flt.param]
            column = self._column(flt.field)
            if flt.op == "eq":
                clauses.append(column == value)
            elif flt.op == "ge":
                clauses.append(column >= value)
            elif flt.op == "le":
                clauses.append(column <= value)
            elif flt.op == "contains":
                clauses.append(self._contains(column, str(value)))
            else:  # pragma: no cover - a declaration error, caught by tests
                raise ValueError(f"unknown filter op {flt.op!r}")
        return clauses

    def _search_index_match(self, text: str) -> sa.Select[Any] | None:
        """SELECT rowid FROM the FTS5 index WHERE it MATCHes text, if one serves it."""
        index = self.resource.search_index
        if not (index and self.dialect == "sqlite"):
            return None
        if len(text) >= 3:
            phrase = '"' + text.replace('"', '""') + '"'
            match = sa.text(f"{index} MATCH :phrase").bindparams(phrase=phrase)
        elif len(text) == 2 and text.isascii():
            # No trigram is two characters long, but every value is indexed with
            # an end mark after it (migration 0015), so wherever the two occur a
            # trigram starts with them: match any such in the index's term list
            # (`/ratings?q=xq`, 1,000,000 rows: 3.3 s scan -> ms). ASCII only:
            # the list holds folded trigrams, and lower() folds ASCII as FTS5 does.
            low = text.lower()
            terms = (
                "SELECT coalesce(group_concat("
                """'"' || replace(term, '"', '""') || '"', ' OR '), '""')"""
                f" FROM {index}_terms WHERE term >= :low AND term <= :high"
            )
            match = sa.text(f"{index} MATCH ({terms})").bindparams(
                low=low, high=low + "\U0010ffff"
            )
        else:
            return None  # one character: a scan (most rows hold it anyway)
        return sa.select(sa.column("rowid")).select_from(sa.table(index)).where(match)

    def _search(
        self, text: str, walk_sort_index: bool = False
    ) -> sa.ColumnElement[bool]:
        """Match rows whose searchable fields contain `text`, ignoring case.

        walk_sort_index (SQLite, a common word): rows are read in sort-index order
        and tested one by one until the page is full. For ASCII text the test is
        LIKE on the row itself, which costs the same however many rows match;
        otherwise it is membership in the index's match list (built once per
        query), as LIKE folds only ASCII case where the trigram index folds all.
        """
        rowids = self._search_index_match(text)
        if rowids is not None and not (walk_sort_index and text.isascii()):
            id_column: sa.ColumnElement[Any] = self._column("id")
            if walk_sort_index:
                # "id + 0" cannot use the primary key, so SQLite reads rows in
                # sort-index order and keeps those in the match list instead of
                # fetching and sorting every match.
                id_column = id_column + 0
            return id_column.in_(rowids)
        searchable = [f.name for f in self.resource.fields if f.searchable]
        return sa.or_(*(self._contains(self._column(n), text) for n in searchable))

    def _contains(
        self, column: sa.ColumnElement[Any], text: str
    ) -> sa.ColumnElement[bool]:
        """column contains text, ignoring case.

        ILIKE, which the pg_trgm indexes serve on PostgreSQL. SQLAlchemy writes
        ILIKE for SQLite as lower(column) LIKE lower(pattern): two function calls
        a row, for nothing, as SQLite's LIKE already ignores case exactly as far
        as its lower() does (ASCII). Plain LIKE there makes a walk ~40% cheaper.
        """
        pattern = "%" + _escape_like(text) + "%"
        if self.dialect == "sqlite":
            return column.like(pattern, escape="\\")
        return column.ilike(pattern, escape="\\")

    def _order_by(self, query: ListQuery) -> list[sa.ColumnElement[Any]]:
        """ORDER BY the requested keys (or the default), then id for stability."""
        keys = query.sort or tuple(
            SortKey(k.removeprefix("-"), k.startswith("-"))
            for k in self.resource.default_sort
        )
        order: list[sa.ColumnElement[Any]] = []
        for key in keys:
            if key.field == "id":
                continue
            kind = self.resource.field(key.field).kind
            column: sa.ColumnElement[Any] = self._column(key.field)
            # Case-insensitive order for text, matching the lower(...) indexes.
            expr = sa.func.lower(column) if isinstance(kind, Text) else column
            ordered = expr.desc() if key.descending else expr.asc()
            if not kind.required:
                ordered = ordered.nulls_last()
            order.append(ordered)
        # Ties go by id in the direction of the last key, so a descending sort is
        # the exact reverse of the ascending one and both read straight off the
        # (key, id) index: an id running the other way would force SQLite to sort
        # every row before it could skip to a deep page.
        id_desc = bool(keys) and keys[-1].descending
        id_column = self._column("id")
        order.append(id_column.desc() if id_desc else id_column.asc())
        return order

    def select(
        self, query: ListQuery, *columns: Any, walk_sort_index: bool = False
    ) -> sa.Select[Any]:
        """Return the filtered, sorted SELECT (unpaged) for a query."""
        stmt = sa.select(*columns) if columns else sa.select(self.model)
        where = self._where(query, walk_sort_index)
        return stmt.where(*where).order_by(*self._order_by(query))

    def list(self, query: ListQuery) -> Page:
        """Return one page of rows matching the query, with counts and summaries."""
        # Counts first: how many rows match decides how the page is best read.
        state = self._table_state()
        grand_total = self._counted(None, state)
        total = self._counted(query, state) if query.q or query.filters else grand_total
        items = self.items(query, matching=total, table_rows=grand_total)
        summaries = self.summaries([row.id for row in items])
        return Page(items, total, grand_total, query, summaries)

    def items(
        self,
        query: ListQuery,
        matching: int | None = None,
        table_rows: int | None = None,
    ) -> list[Any]:
        """Return the rows of one page without counting (for embedded lists).

        With the counts (as list() has them), a search matching many rows is read
        in sort order instead of sorting every match (see _walk_sort_index).
        """
        rows = self._walk_budget(query, matching, table_rows)
        if rows is not None:
            try:
                with step_budget(max(WALK_MIN_STEPS, WALK_ROW_STEPS * rows)):
                    return self._page_items(query, walk=True)
            except StepsSpent:
                pass  # a SELECT stopped: the transaction goes on as it was
        return self._page_items(query, walk=False)

    def _page_items(self, query: ListQuery, walk: bool) -> list[Any]:
        """Read the rows of one page, walking the sort index or not (see items)."""
        offset = (query.page - 1) * query.per_page
        if not offset:
            stmt = self.select(query, walk_sort_index=walk).limit(query.per_page)
            return list(self.session.scalars(stmt))
        # A later page finds its ids first, from the sort index alone, then reads
        # those rows. PostgreSQL otherwise reads every row it skips from the table
        # (rows 50,001-50,050 by name: 40 ms -> 6 ms); SQLite skips in the index
        # either way, and the wide rating index serves the ids alone (1.6 -> 0.5 ms).
        id_column = self._column("id")
        ids = (
            self.select(query, id_column, walk_sort_index=walk)
            .limit(query.per_page)
            .offset(offset)
        )
        stmt = (
            sa.select(self.model)
            .where(id_column.in_(ids))
            .order_by(*self._order_by(query))
        )
        return list(self.session.scalars(stmt))

    def _walk_sort_index(
        self, query: ListQuery, matching: int | None, table_rows: int | None
    ) -> bool:
        """Should a full-text search walk the sort index rather than sort its matches?

        See _walk_budget.
        """
        return self._walk_budget(query, matching, table_rows) is not None

    def _walk_budget(
        self, query: ListQuery, matching: int | None, table_rows: int | None
    ) -> int | None:
        """How many rows a search may pass walking the sort index; None: sort instead.

        Sorting the matches costs about one row fetch per match; a walk of the
        first sort key's index passes (rows before the page end) * table_rows /
        matching rows, at WALK_ROWS_PER_FETCH(_COVERED) rows a fetch. So walk when
        matches are many (a common word), sort when they are few (a rare one).

        That count expects matches spread evenly along the sort order, but a search
        for part of the sorted column gathers them in one stretch ("ms" by movie
        name descending, every "Dreams" early in the alphabet: 5.5 million steps,
        3.9 s at 1,000,000 ratings). So the walk may pass twice the rows expected,
        or as many as sorting would cost, whichever is more: past that its matches
        are sorted (items), for at most about twice the cost of sorting at once.
        """
        if not query.q or matching is None or not table_rows or not matching:
            return None
        if self._search_index_match(query.q) is None:
            return None
        keys = query.sort or tuple(
            SortKey(k.removeprefix("-"), k.startswith("-"))
            for k in self.resource.default_sort
        )
        exchange = self._walk_rows_per_fetch(keys[0].field) if keys else 0.0
        passed = query.page * query.per_page * table_rows // matching
        sorting = int(matching * exchange)  # sorting's cost, in rows walked
        if passed >= sorting:
            return None
        return max(2 * passed, sorting)

    def _walk_rows_per_fetch(self, name: str) -> float:
        """Rows a walk of the field's sort index passes per fetch (0: no index)."""
        if name == "id":
            return WALK_ROWS_PER_FETCH_COVERED  # the table itself, in id order
        searched = {f.name for f in self.resource.fields if f.searchable}
        found = 0.0
        for index in self.model.__table__.indexes:
            expressions = list(index.expressions)
            if not expressions or _indexed_column(expressions[0]) != name:
                continue
            held = {e.name for e in expressions if isinstance(e, sa.Column)}
            covered = searched <= held
            found = max(
                found,
                WALK_ROWS_PER_FETCH_COVERED if covered else WALK_ROWS_PER_FETCH,
            )
        return found

    def summaries(
        self, ids: Sequence[int]
    ) -> dict[str, dict[int, tuple[int, float | None]]]:
        """Return {summary: {id: (count, average)}} for the given parent ids."""
        out: dict[str, dict[int, tuple[int, float | None]]] = {}
        for summary in self.resource.summaries:
            values: dict[int, tuple[int, float | None]] = {i: (0, None) for i in ids}
            if ids:
                rows = self.session.connection().execute(
                    _summary_statement(summary), {"ids": list(ids)}
                )
                for parent_id, n, avg in rows:
                    values[parent_id] = (n, None if avg is None else float(avg))
            out[summary.name] = values
        return out

    def get(self, row_id: int, fresh: bool = False) -> Any:
        """Return the row with this id or raise NotFound; `fresh` reads past caches."""
        # Every id in a URL comes here first. One the column cannot hold names no
        # row, and asking the database would fail instead (PostgreSQL: "integer
        # out of range"; SQLite's driver: OverflowError).
        row = None
        if self._may_exist(row_id):
            # A write must compare against the stored row: one this session cached
            # earlier may be older than what the UPDATE will meet.
            row = self.session.get(self.model, row_id, populate_existing=fresh)
        if row is None:
            raise NotFound(f"No {self.resource.singular} with id {row_id}.")
        return row

    def _may_exist(self, row_id: int) -> bool:
        """True if the id column can hold row_id (else no row has it)."""
        largest = largest_id(self.model)
        return -largest - 1 <= row_id <= largest

    def iter_rows(
        self, query: ListQuery, columns: Sequence[str] | None = None, batch: int = 5000
    ) -> Iterator[Sequence[Any]]:
        """Yield plain tuples of the exported columns for every matching row.

        Rows are fetched in batches from a streaming cursor, so memory stays flat
        however large the table is.
        """
        names = columns or self.resource.exported
        stmt = self.select(query, *(self._column(n) for n in names))
        result = self.session.execute(
            stmt, execution_options={"stream_results": True, "yield_per": batch}
        )
        try:
            for partition in result.partitions():
                yield from partition
        finally:
            result.close()

    def fetch_batches(
        self, query: ListQuery, *columns: Any, batch: int = 4096
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Yield lists of raw DBAPI rows of `columns` for every matching row.

        The statement is compiled for this dialect and run on the driver's own
        cursor (a server-side one on PostgreSQL), skipping SQLAlchemy's per-row
        result processing, which costs more than the query itself in an export.
        """
        stmt = self.select(query, *columns)
        engine = self.session.get_bind().engine
        compiled = stmt.compile(
            dialect=engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        params: Any = compiled.params
        if compiled.positional:
            params = tuple(params[name] for name in compiled.positiontup or ())
        # A connection of its own, held until the last row and then returned: a
        # streamed response outlives the request's session, which Flask closes
        # before the body is sent.
        with engine.connect() as conn, conn.begin():
            driver: Any = conn.connection.driver_connection
            if engine.dialect.name == "postgresql":
                # A named (server-side) cursor fetches `batch` rows per round
                # trip instead of loading the whole result into the client.
                cursor = driver.cursor(name="reeltable_" + secrets.token_hex(4))
            else:
                cursor = driver.cursor()
            try:
                cursor.execute(str(compiled), params)
                while rows := cursor.fetchmany(batch):
                    yield rows
            finally:
                cursor.close()

    # ------------------------------------------------------------ writing

    @contextmanager
    def _write(self, bulk: bool = False) -> Iterator[None]:
        """Run the body as one write transaction: commit on success, else roll back.

        Raises WriteBusy, writing nothing, while an import holds the database; a
        `bulk` write (an import) holds it, and gets WriteBusy if another one does.
        """
        session = self.session
        if session.in_transaction():
            # End any read transaction first, so the write can start IMMEDIATE
            # (SQLite cannot upgrade a reader to a writer while others write).
            session.commit()
        with self._import_gate(bulk) as open_, self._writer_turn():
            if not open_:
                raise WriteBusy()
            try:
                connection = session.connection(execution_options={WRITE_INTENT: True})
                if not bulk and self.dialect == "postgresql":
                    # A row an import (or anyone) holds makes a write wait for the
                    # lock_timeout, then answer 503, never hang (issue 11).
                    connection.exec_driver_sql(
                        f"SET LOCAL lock_timeout = {WRITE_LOCK_TIMEOUT_MS}"
                    )
                yield
                session.commit()
            except OperationalError as exc:
                session.rollback()
                if _lock_timed_out(exc):
                    raise WriteBusy() from exc
                raise
            except StaleDataError:
                session.rollback()
                # A Conflict to every caller; update() alone may retry on it.
                raise _StaleWrite(None) from None
            except (IntegrityError, DataError) as exc:
                session.rollback()
                raise ValidationError(
                    {"_": "The database refused this change (a constraint failed)."}
                ) from exc
            except BaseException:
                session.rollback()
                raise

    def _import_gate(self, bulk: bool) -> AbstractContextManager[bool]:
        """Hold the SQLite database's import gate (app/write_gate.py): True if open."""
        if self.dialect != "sqlite":
            return nullcontext(True)
        gate = gate_for(self.session.get_bind().url.database)
        if gate is None:
            return nullcontext(True)
        return gate.exclusive() if bulk else gate.ordinary()

    def _writer_turn(self) -> AbstractContextManager[Any]:
        """Queue this thread behind the process's other SQLite writers.

        SQLite lets one writer in at a time; a thread that finds the lock taken
        sleeps in SQLite's busy handler (1, 2, 5, 10 ms...) and wakes late. Threads
        of one process queue on a lock instead and go as soon as it is free, so
        only the processes contend in SQLite. PostgreSQL locks rows, not the file.
        """
        if self.write_lock is None or self.dialect != "sqlite":
            return nullcontext()
        return self.write_lock

    def validate(
        self,
        data: Mapping[str, Any],
        *,
        creating: bool,
        check_references: bool = True,
    ) -> dict[str, Any]:
        """Validate input against the declaration; raise ValidationError on failure.

        On create every creatable field is read (missing means empty); on update
        only the fields present in `data` are, and each must be editable. Bulk
        callers pass check_references=False and use existing_references() per batch.
        """
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in self.resource.fields:
            allowed = f.creatable if creating else f.editable
            if not creating and f.name not in data:
                continue
            if not allowed:
                if f.name in data:
                    errors[f.name] = f"{f.label} cannot be set here."
                continue
            try:
                values[f.name] = f.kind.parse(f.label, data.get(f.name))
            except ValueError as exc:
                errors[f.name] = str(exc)
                continue
            target = values[f.name]
            if (
                check_references
                and isinstance(f.kind, Reference)
                and target is not None
                and self.session.get(f.kind.model, target) is None
            ):
                errors[f.name] = (
                    f"There is no {f.kind.label_of_target} with id {target}."
                )
        if errors:
            raise ValidationError(errors)
        if not values and not creating:
            raise ValidationError({"_": "Nothing to change."})
        return values

    def create(self, data: Mapping[str, Any]) -> Any:
        """Validate and insert a new row; return it."""
        with self._write():
            values = self.validate(data, creating=True)
            row = self.model(**values)
            self.session.add(row)
            self.session.flush()
        return row

    def update(
        self,
        row_id: int,
        data: Mapping[str, Any],
        version: int,
        original: Mapping[str, Any] | None = None,
    ) -> Any:
        """Save data if the row is at `version` or its fields still hold `original`."""
        # Without `original` a stale version is a conflict at once; with it, a write
        # that lands between our read and our UPDATE (the version in the UPDATE's
        # WHERE catches it) is worth another look, as it may have touched other
        # fields only.
        attempts = 1 if original is None else MERGE_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                with self._write():
                    row = self.get(row_id, fresh=True)
                    if row.version != version and not self._holds(row, data, original):
                        raise Conflict(row)
                    values = self.validate(data, creating=False)
                    for name, value in values.items():
                        setattr(row, name, value)
                    self.session.flush()
                return row
            except _StaleWrite:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _holds(
        self, row: Any, data: Mapping[str, Any], original: Mapping[str, Any] | None
    ) -> bool:
        """True when every declared field in `data` still holds its `original` value."""
        if original is None:
            return False
        for f in self.resource.fields:
            if f.name not in data:
                continue  # undeclared keys are ignored by validate() too
            if f.name not in original:
                return False
            try:
                # Parsed as the editor's input would be, so "8.0", " Ana " and ""
                # compare as the 8.0, "Ana" and NULL they were drawn from.
                started = f.kind.parse(f.label, original[f.name])
            except ValueError:
                return False  # not a value the field could hold, so not its value
            if not _same_value(f.kind, getattr(row, f.name), started):
                return False
        return True

    def delete(self, row_id: int, version: int | None = None) -> dict[str, Any]:
        """Delete a row (its children cascade) and return a snapshot for restore."""
        with self._write():
            snapshot = self._delete(row_id, version)
        return snapshot

    def trash(
        self, row_id: int, version: int | None = None, owner: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Delete a row but keep its snapshot for undo(); return (token, snapshot).

        The snapshot is stored in the database, in the delete's own transaction, so
        any server process can undo it until it expires. `owner` (e.g. "user:7")
        is stored with it: only that owner may undo it (issue 12).
        """
        now = int(time.time())
        token = secrets.token_urlsafe(24)
        with self._write():
            snapshot = self._delete(row_id, version)
            # Expired snapshots are swept here rather than by a scheduled job.
            self.session.execute(
                sa.delete(DeletedRow).where(DeletedRow.expires_at < now)
            )
            self.session.add(
                DeletedRow(
                    token=token,
                    table_name=self.model.__tablename__,
                    # The owner rides in the JSON payload: no column, no migration.
                    payload=json.dumps(
                        {**snapshot, "owner": owner}, default=_json_default
                    ),
                    expires_at=now + UNDO_SECONDS,
                )
            )
        return token, snapshot

    def undo(self, token: str, owner: str | None = None) -> Any:
        """Restore the row trashed under `token` (once) and return it.

        Raises NotFound if the token is unknown, used, expired or of another table,
        or, when `owner` is given, was trashed by someone else: the same answer, so
        a token of another owner is not even confirmed to exist (issue 12).
        """
        with self._write():
            entry = self.session.get(DeletedRow, token) if token else None
            payload = json.loads(entry.payload) if entry is not None else {}
            if (
                entry is None
                or entry.table_name != self.model.__tablename__
                or entry.expires_at < time.time()
                or (owner is not None and payload.get("owner") != owner)
            ):
                raise NotFound("This delete can no longer be undone.")
            snapshot = self._decode_snapshot(payload)
            self.session.delete(entry)
            row_id = self._insert_snapshot(snapshot)
        return self.get(row_id)

    def _delete(self, row_id: int, version: int | None) -> dict[str, Any]:
        """Delete a row inside the current write; return its snapshot."""
        row = self.get(row_id)
        if version is not None and row.version != version:
            raise Conflict(row)
        snapshot = self._snapshot(row)
        # Core DELETE: the database's ON DELETE CASCADE removes the children
        # without loading them as objects.
        self.session.execute(
            sa.delete(self.model)
            .where(self._column("id") == row_id)
            .execution_options(synchronize_session=False)
        )
        self.session.expunge(row)
        return snapshot

    def bulk_insert(
        self, rows: Iterable[Mapping[str, Any]], batch: int = 10_000
    ) -> int:
        """Insert many prepared rows in one transaction (Core executemany); count them.

        For loaders (seed, import) whose rows are already validated: it skips the
        per-row ORM work that would make a million rows take minutes.
        """
        with self._write():
            return self.insert_many(rows, batch)

    # ------------------------------------------------------------ bulk work
    # These run inside transaction(), so a whole import is one transaction.

    def transaction(self) -> AbstractContextManager[None]:
        """Open one write transaction: commit if the body succeeds, else roll back.

        It is a bulk write: other writers get WriteBusy until it ends, and it gets
        WriteBusy if another bulk write is under way (app/write_gate.py).
        """
        return self._write(bulk=True)

    def insert_many(
        self, rows: Iterable[Mapping[str, Any]], batch: int = 10_000
    ) -> int:
        """Insert validated rows (ids optional) in the current transaction; count them.

        Fields declared `copied_from` are filled from the referenced rows when a
        row does not carry them, as the model's flush hook would have done. The
        rows go in as multi-row INSERTs (see _insert_rows).
        """
        count = 0
        for chunk in _batches(rows, batch):
            count += len(chunk)
            # Rows with an id go first and move the id sequence past them, so no
            # row without one is given an id that the batch still has to insert.
            with_ids = [r for r in chunk if r.get("id") is not None]
            if with_ids:
                self._insert_rows(with_ids)
                self._sync_id_sequence()
                chunk = [r for r in chunk if r.get("id") is None]
            self._insert_rows(chunk)
        return count

    def _insert_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT rows, up to _INSERT_ROWS in a statement, grouped by their keys.

        One statement a row (executemany) makes SQLite flush a full-text index
        once a row, as the trigger feeding it runs in the statement's own
        transaction: 200 µs a rating with the ratings index (0015), 29 µs in
        statements of 1,000 rows. The values go to the driver as they are when
        no column converts them (SQLAlchemy's handling of each row cost ~9 µs),
        and the statement itself copies the copied fields, as a subquery on the
        source row (_fill_copies' query and merge cost another ~8 µs a row).
        """
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        connection = self.session.connection()
        dialect = connection.dialect
        table = self.model.__table__
        for names, same in groups.items():
            copies = self._copies_into(names)
            if _insert_sql(dialect, table, names, copies, 1) is None:
                connection.execute(sa.insert(table), self._fill_copies(same))
                continue
            per = max(1, min(_INSERT_ROWS, _INSERT_PARAMS // len(names)))
            for start in range(0, len(same), per):
                part = same[start : start + per]
                sql = _insert_sql(dialect, table, names, copies, len(part))
                values = [row[name] for row in part for name in names]
                connection.exec_driver_sql(sql, tuple(values))

    def _copies_into(self, names: tuple[str, ...]) -> tuple[_Copy, ...]:
        """The copied fields that rows with these keys lack but can be given."""
        copies = []
        for f in self.resource.fields:
            if f.copied_from is None or f.name in names:
                continue
            ref_name, source = f.copied_from
            kind = self.resource.field(ref_name).kind
            if ref_name in names and isinstance(kind, Reference):
                copies.append(_Copy(f.name, ref_name, kind.model.__table__, source))
        return tuple(copies)

    def _fill_copies(
        self,
        rows: list[Mapping[str, Any]],
        resource: Resource | None = None,
        refresh: bool = False,
    ) -> list[Mapping[str, Any]]:
        """Return rows with their `copied_from` fields filled from the source rows.

        refresh: also replace the copies rows carry (a snapshot's may be stale),
        wherever the source row exists.
        """
        resource = resource or self.resource
        for f in resource.fields:
            if f.copied_from is None:
                continue
            ref_name, source = f.copied_from
            kind = resource.field(ref_name).kind
            assert isinstance(kind, Reference)
            wanted = {r[ref_name] for r in rows if refresh or f.name not in r}
            if not wanted:
                continue
            target = kind.model.__table__
            stmt = sa.select(target.c.id, target.c[source]).where(
                self._among(target.c.id, wanted)
            )
            found: dict[Any, Any] = dict(self.session.connection().execute(stmt).all())
            rows = [
                {**r, f.name: found.get(r[ref_name], r.get(f.name))}
                if refresh or f.name not in r
                else r
                for r in rows
            ]
        return rows

    def _among(
        self, column: sa.ColumnElement[Any], values: Iterable[Any]
    ) -> sa.ColumnElement[bool]:
        """`column IN values`, the values sent as one parameter however many.

        IN with a parameter a value cost SQLAlchemy ~2 µs a value at every
        execution, and the database a new statement to parse for each count; a
        JSON array (SQLite's json_each) or an array (PostgreSQL's = ANY) is one
        parameter of a statement compiled and prepared once. The database still
        looks each value up in the column's index.
        """
        listed = list(values)
        if self.dialect == "sqlite":
            items = sa.func.json_each(
                sa.bindparam(None, json.dumps(listed), type_=sa.String)
            ).table_valued("value")
            return column.in_(sa.select(items.c.value))
        if self.dialect == "postgresql":
            array = sa.ARRAY(column.type)
            return column == sa.any_(sa.bindparam(None, listed, type_=array))
        return column.in_(listed)

    def _sync_id_sequence(self) -> None:
        """Move PostgreSQL's id sequence past ids that were inserted explicitly."""
        if self.dialect != "postgresql":
            return  # AUTOINCREMENT keeps SQLite's past every id inserted (0011)
        table = self.model.__table__
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        # Forward only: ids between max(id) and the sequence may be rows in the
        # trash, whose Undo needs them. nextval() spends one id, but reads the
        # sequence's position in a way no concurrent insert can undercut.
        handed_out = self.session.scalar(sa.select(sa.func.nextval(sequence)))
        top = self.session.scalar(sa.select(sa.func.max(table.c.id)))
        if top is not None and handed_out is not None and top >= handed_out:
            self.session.execute(sa.select(sa.func.setval(sequence, top)))

    def update_many(
        self, changes: Iterable[tuple[int, Mapping[str, Any]]], batch: int = 1000
    ) -> int:
        """Apply validated {field: value} changes by id in the current transaction.

        Each row changes as in a single edit: its version goes up by one, its
        updated_at is set (the column's onupdate), and copies of the changed
        fields follow (a movie's new name in its ratings, as the flush hook in
        app/models.py does). Core UPDATEs, one executemany per set of changed
        fields: the ORM's load-modify-flush cost ~150 µs a row. Raises Conflict
        if a row is gone.
        """
        table = self.model.__table__
        connection = self.session.connection()
        count = 0
        for chunk in _batches(changes, batch):
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row_id, values in chunk:
                params = {f"new_{name}": value for name, value in values.items()}
                params["row_id"] = row_id
                groups.setdefault(tuple(values), []).append(params)
            for names, params_list in groups.items():
                new_values: dict[str, Any] = {
                    name: sa.bindparam(f"new_{name}") for name in names
                }
                new_values["version"] = table.c.version + 1
                stmt = (
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("row_id"))
                    .values(new_values)
                )
                done = connection.execute(stmt, params_list).rowcount
                if done != len(params_list):
                    self._raise_gone([p["row_id"] for p in params_list])
            self._follow_copies(chunk)
            count += len(chunk)
        return count

    def _raise_gone(self, ids: list[int]) -> None:
        """Raise Conflict naming the first of `ids` that no longer exists."""
        id_column = self.model.__table__.c.id
        stmt = sa.select(id_column).where(self._among(id_column, ids))
        present = set(self.session.connection().execute(stmt).scalars())
        gone = next((i for i in ids if i not in present), ids[0])
        raise Conflict(None, f"Row {gone} was deleted meanwhile.")

    def _follow_copies(self, changes: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """Bring copied fields up to date after update_many changed these rows.

        A copy in this table whose reference changed takes the new source's
        value; a copy in a child table of a field that changed here takes the
        new value. One UPDATE per copy; versions stay (the flush hook's rule).
        """
        table = self.model.__table__
        connection = self.session.connection()
        for f in self.resource.fields:
            if f.copied_from is None:
                continue
            ref_name, source = f.copied_from
            moved = [i for i, values in changes if ref_name in values]
            kind = self.resource.field(ref_name).kind
            if not moved or not isinstance(kind, Reference):
                continue
            target = kind.model.__table__
            value = (
                sa.select(target.c[source])
                .where(target.c.id == table.c[ref_name])
                .scalar_subquery()
            )
            connection.execute(
                sa.update(table)
                .where(self._among(table.c.id, moved))
                .values({f.name: value})
            )
        for child in self.resource.children:
            child_table = child.model.__table__
            for f in child.resource.fields:
                if f.copied_from is None:
                    continue
                ref_name, source = f.copied_from
                kind = child.resource.field(ref_name).kind
                if not isinstance(kind, Reference) or kind.model is not self.model:
                    continue
                changed = [i for i, values in changes if source in values]
                if not changed:
                    continue
                value = (
                    sa.select(table.c[source])
                    .where(table.c.id == child_table.c[ref_name])
                    .scalar_subquery()
                )
                connection.execute(
                    sa.update(child_table)
                    .where(self._among(child_table.c[ref_name], changed))
                    .values({f.name: value})
                )

    @contextmanager
    def deferred_indexes(self, rows: int) -> Iterator[bool]:
        """Inside transaction(), before writing about `rows` rows: maybe index later.

        SQLite updates every index of a table for each row written, each at its
        own place: with the five indexes of 1,000,000 ratings that cost ~70 µs a
        row once they outgrew the page cache, while building an index afresh sorts
        the table once (~1.7 µs a row an index). So when `rows` is at least an
        eighth of the table (and _REBUILD_MIN or more), the table's plain indexes
        are dropped for the body and made again after it from their own CREATE
        statements, in this same transaction: readers see the old indexes until
        it commits, and if the body raises (or the transaction rolls back, or the
        process dies) they stay as they were. Unique indexes stay (they enforce),
        as does any index starting with the first match_on field (an import finds
        rows through it). Yields whether the indexes wait. PostgreSQL keeps its
        indexes: dropping one would lock readers out until the commit.
        """
        recreate = self._drop_indexes() if self._rebuild_pays(rows) else []
        yield bool(recreate)
        if not recreate:
            return
        connection = self.session.connection()
        # CREATE INDEX sorts in memory up to the page cache's size, then merges
        # runs from temporary files: with 2 MB it took 17 % less CPU than with
        # the connection's 16 MB (1,000,000 ratings), and less memory.
        cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        connection.exec_driver_sql(f"PRAGMA cache_size = {_REBUILD_CACHE}")
        try:
            for statement in recreate:
                connection.exec_driver_sql(statement)
        finally:
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")

    def _rebuild_pays(self, rows: int) -> bool:
        """True if writing `rows` rows costs more with the indexes than rebuilding."""
        if self.dialect != "sqlite" or rows < _REBUILD_MIN:
            return False
        return rows * _REBUILD_SHARE >= self.count()

    def _drop_indexes(self) -> list[str]:
        """Drop the table's plain SQLite indexes (see deferred_indexes); their SQL."""
        connection = self.session.connection()
        quote = connection.dialect.identifier_preparer.quote
        table = self.model.__tablename__
        keep = set(self.resource.match_on[:1])
        statements = []
        listed = connection.exec_driver_sql(f"PRAGMA index_list({quote(table)})")
        for _seq, name, unique, origin, *_rest in listed.all():
            if unique or origin != "c":
                continue
            info = connection.exec_driver_sql(f"PRAGMA index_info({quote(name)})")
            first = info.first()
            if first is not None and first[2] in keep:
                continue
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                (name,),
            ).scalar()
            if not sql:
                continue
            connection.exec_driver_sql(f"DROP INDEX {quote(name)}")
            statements.append(sql)
        return statements

    def stored_values(
        self, ids: Iterable[int], names: Sequence[str]
    ) -> dict[int, tuple[Any, ...]]:
        """Return {id: values of the named columns} for those of `ids` that exist."""
        largest = largest_id(self.model)
        wanted = [i for i in ids if -largest - 1 <= i <= largest]
        if not wanted:
            return {}
        table = self.model.__table__
        stmt = sa.select(table.c.id, *(table.c[n] for n in names)).where(
            self._among(table.c.id, wanted)
        )
        return {row[0]: tuple(row[1:]) for row in self._plain_rows(stmt)}

    def ids_matching(
        self, names: Sequence[str], keys: Iterable[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], list[int]]:
        """Return {key: ids of the rows whose `names` columns equal key}.

        The rows are found through an index starting with the first of `names`
        (issue 11: `(a, b) IN (list)` compared every row with every key, 21.6 s
        for 2,000 keys at 300,000 movies on PostgreSQL); Python keeps those equal
        to a whole key.
        """
        wanted = set(keys)
        if not wanted:
            return {}
        table = self.model.__table__
        columns = [table.c[n] for n in names]
        stmt = sa.select(table.c.id, *columns).where(
            self._among(columns[0], {key[0] for key in wanted})
        )
        found: dict[tuple[Any, ...], list[int]] = {}
        for row in self._plain_rows(stmt):
            key = tuple(row[1:])
            if key in wanted:
                found.setdefault(key, []).append(row[0])
        return found

    def has_rows(self) -> bool:
        """True if the table holds at least one row (one index probe, no count)."""
        stmt = sa.select(sa.exists(sa.select(self._column("id"))))
        return bool(self.session.connection().execute(stmt).scalar())

    def newest_id(self) -> int | None:
        """The table's largest id, or None if it is empty (one index probe)."""
        stmt = sa.select(sa.func.max(self.model.__table__.c.id))
        return self.session.connection().execute(stmt).scalar()

    def existing_references(self, field_name: str, ids: Iterable[int]) -> set[int]:
        """Return which of `ids` exist in the table a Reference field points at."""
        kind = self.resource.field(field_name).kind
        assert isinstance(kind, Reference)
        largest = largest_id(kind.model)
        wanted = {i for i in ids if -largest - 1 <= i <= largest}
        if not wanted:
            return set()
        target_id = kind.model.__table__.c.id
        stmt = sa.select(target_id).where(self._among(target_id, wanted))
        return {row[0] for row in self._plain_rows(stmt)}

    def _plain_rows(self, stmt: sa.Select[Any]) -> Sequence[Sequence[Any]]:
        """Run a SELECT in the session's transaction; return its rows as tuples.

        Core on the session's connection: a third of the cost of an ORM execute.
        On SQLite, when no selected column converts values, the rows are the
        driver's own: making SQLAlchemy Rows of them cost ~2.5 µs a row, as
        much as reading them (an import by id reads each row once).
        """
        result = self.session.connection().execute(stmt)
        dialect = result.dialect
        if dialect.name == "sqlite" and not any(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in stmt.selected_columns
        ):
            try:
                return result.cursor.fetchall()
            finally:
                result.close()
        return result.all()

    def count(self, query: ListQuery | None = None) -> int:
        """Return the number of rows in the table, or of those matching `query`."""
        return self._counted(query, self._table_state())

    def _counted(self, query: ListQuery | None, state: tuple[int, int] | None) -> int:
        """count(), given the table's (row count, version) if it has a counter."""
        if query is None or not (query.q or query.filters):
            if state is not None:
                return state[0]
            return self._count(None)
        if state is None or self.counts is None or self._writing():
            return self._count(query)
        # Paging or re-sorting a filtered view asks for the same count again; the
        # table's version changes with every write, so a cached count is exact.
        key = (
            self.model.__tablename__,
            state[1],
            query.q,
            tuple(sorted(query.filters.items())),
        )
        total = self.counts.get(key)
        if total is None:
            total = self._count(query)
            self.counts.put(key, total)
        return total

    def _count(self, query: ListQuery | None) -> int:
        """Count the table's rows, or those matching `query`, in the database."""
        if query is not None and query.q and not query.filters:
            rowids = self._search_index_match(query.q)
            if rowids is not None:
                # The index holds exactly the table's rows (triggers keep it so):
                # count the matches there, without fetching a row of the table.
                counted = sa.select(sa.func.count()).select_from(rowids.subquery())
                return self.session.scalar(counted) or 0
        stmt = sa.select(sa.func.count()).select_from(self.model)
        if query is not None:
            stmt = stmt.where(*self._where(query))
        return self.session.scalar(stmt) or 0

    def _table_state(self) -> tuple[int, int] | None:
        """(row count, version) from the table's counter row, or None if none.

        Only SQLite keeps the counter rows (migration 0006): elsewhere there is
        nothing to read, and no query is made.
        """
        counts = self.resource.row_count_table
        if counts is None or self.dialect != "sqlite":
            return None
        stmt = sa.text(f"SELECT n, version FROM {counts} WHERE table_name = :name")
        row = self.session.execute(
            stmt.bindparams(name=self.model.__tablename__)
        ).first()
        return (row[0], row[1]) if row is not None else None

    def _writing(self) -> bool:
        """True inside a write transaction, whose changes may yet roll back.

        A count seen there must not be cached: after a rollback, another write
        could bring the table to the same version with different rows.
        """
        options = self.session.connection().get_execution_options()
        return bool(options.get(WRITE_INTENT))

    def _snapshot(self, row: Any) -> dict[str, Any]:
        """Capture a row and its children as plain column dicts."""
        table = self.model.__table__
        parent = {c.name: getattr(row, c.key) for c in self.model.__mapper__.columns}
        children: dict[str, list[dict[str, Any]]] = {}
        for child in self.resource.children:
            fk = getattr(child.model, child.foreign_key)
            rows = self.session.execute(
                sa.select(child.model.__table__).where(fk == row.id)
            ).mappings()
            children[child.model.__tablename__] = [dict(r) for r in rows]
        return {"table": table.name, "row": parent, "children": children}

    def restore(self, snapshot: Mapping[str, Any]) -> Any:
        """Re-insert a deleted row and its children with their original ids."""
        with self._write():
            row_id = self._insert_snapshot(snapshot)
        return self.get(row_id)

    def _insert_snapshot(self, snapshot: Mapping[str, Any]) -> int:
        """Insert a snapshot's row and children inside the current write."""
        if snapshot.get("table") != self.model.__tablename__:
            raise ValidationError({"_": "This snapshot belongs to another table."})
        row_id = snapshot["row"]["id"]
        if self.session.get(self.model, row_id) is not None:
            raise Conflict(None, "This row has already been restored.")
        # Copied fields come from their source as it is now (a movie renamed
        # while its rating was in the trash): children after their parent, who
        # may be their source.
        row = self._fill_copies([snapshot["row"]], refresh=True)
        self.session.execute(sa.insert(self.model.__table__), row)
        for child in self.resource.children:
            rows = snapshot["children"].get(child.model.__tablename__) or []
            if rows:
                rows = self._fill_copies(rows, child.resource, refresh=True)
                self.session.execute(sa.insert(child.model.__table__), rows)
        return row_id

    def _decode_snapshot(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Turn a snapshot read back from JSON into column values again."""
        children = {
            c.model.__tablename__: c.model.__table__ for c in self.resource.children
        }
        return {
            "table": data["table"],
            "row": _from_json(self.model.__table__, data["row"]),
            "children": {
                name: [_from_json(children[name], r) for r in rows]
                for name, rows in data["children"].items()
                if name in children
            },
        }


# Tries at a merged update() before it gives up with Conflict. A retry is needed
# only after a write commits between our read and our UPDATE (PostgreSQL; SQLite's
# writers take turns), so two editors of one row need two tries; three leave room
# for a third without letting a busy row keep a request looping.
MERGE_ATTEMPTS = 3


# How long an ordinary PostgreSQL write may wait for a row lock (then WriteBusy).
WRITE_LOCK_TIMEOUT_MS = 3000
# SQLite's "database is locked" (SQLITE_BUSY, SQLITE_LOCKED) and PostgreSQL's
# lock_not_available: a write that waited for a lock as long as it may.
_SQLITE_LOCK_CODES = (5, 6)
_PG_LOCK_NOT_AVAILABLE = "55P03"


def _lock_timed_out(exc: OperationalError) -> bool:
    """True if the database refused a write because a lock stayed taken."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_LOCK_CODES
    return getattr(exc.orig, "sqlstate", None) == _PG_LOCK_NOT_AVAILABLE


def _same_value(kind: FieldKind, stored: Any, started: Any) -> bool:
    """True when a stored value equals a parsed one, as far as the field can tell."""
    if isinstance(stored, str):
        stored = stored.strip() or None  # what Text.parse would have made of it
    if stored is None or started is None:
        return stored is None and started is None
    if isinstance(kind, Number):
        # A Float column gives back a binary double; at the field's own precision
        # 8.0 and 8, or 8.1 and 8.1000000000000001, are one value.
        return round(Decimal(str(stored)), kind.places) == round(
            Decimal(str(started)), kind.places
        )
    return bool(stored == started)


# How long a trashed row can be brought back (the UI offers it for seconds; a
# no-JavaScript visitor sees the offer on the next page).
UNDO_SECONDS = 3600


# Rows an import-sized INSERT statement carries, and at most this many values:
# below SQLite's 32,766 parameters and PostgreSQL's 65,535.
_INSERT_ROWS = 5000
_INSERT_PARAMS = 30_000

# deferred_indexes: the fewest rows worth rebuilding indexes for, and the share of
# the table (1/8) from which a rebuild beats updating the indexes row by row
# (measured on 1,000,000 ratings; the break-even is near 1/9).
_REBUILD_MIN = 20_000
_REBUILD_SHARE = 8
_REBUILD_CACHE = -2048  # KiB of page cache while indexes are built (see there)


@dataclass(frozen=True)
class _Copy:
    """A copied field an INSERT fills: from `source` of the `ref` row in `table`."""

    name: str
    ref: str
    table: sa.Table
    source: str


@functools.lru_cache(maxsize=64)
def _insert_sql(
    dialect: sa.Dialect,
    table: sa.Table,
    names: tuple[str, ...],
    copies: tuple[_Copy, ...],
    rows: int,
) -> str | None:
    """The text of an INSERT of `rows` rows of the named columns, or None.

    With `copies`, the rows are a VALUES list the INSERT selects from, adding
    each copy as a subquery on its source row (its columns are column1...
    on SQLite and PostgreSQL alike). None when a column converts its values for
    this driver (a date on SQLite, say) or the driver takes named parameters
    only: Core does those rows.
    """
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    columns = [table.c[name] for name in names]
    if marker is None or any(
        c.type.dialect_impl(dialect).bind_processor(dialect) is not None
        for c in columns
    ):
        return None
    preparer = dialect.identifier_preparer
    quote = preparer.quote
    into = ", ".join(quote(name) for name in (*names, *(c.name for c in copies)))
    row = "(" + ", ".join([marker] * len(names)) + ")"
    values = "VALUES " + ", ".join([row] * rows)
    head = f"INSERT INTO {preparer.format_table(table)} ({into}) "
    if not copies:
        return head + values
    picked = [f"v.column{i}" for i in range(1, len(names) + 1)]
    for copy in copies:
        source = preparer.format_table(copy.table)
        ref = f"v.column{names.index(copy.ref) + 1}"
        picked.append(
            f"(SELECT {source}.{quote(copy.source)} FROM {source}"
            f" WHERE {source}.{quote('id')} = {ref})"
        )
    return head + f"SELECT {', '.join(picked)} FROM ({values}) AS v"


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """Yield lists of up to `size` items (itertools.batched arrives in 3.12)."""
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _json_default(value: Any) -> Any:
    """Encode the column values json cannot: dates and times as ISO 8601."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a snapshot")


def _from_json(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
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
            and not (isinstance(column_type, sa.Float))
        ):
            value = Decimal(value)
        out[name] = value
    return out


def _indexed_column(expression: Any) -> str | None:
    """The column an index expression orders by: `name` or `lower(name)`."""
    if isinstance(expression, sa.Column):
        return expression.name
    if isinstance(expression, sa.sql.functions.Function) and expression.name == "lower":
        arguments = list(expression.clauses)
        if len(arguments) == 1:
            argument = arguments[0]
            if isinstance(argument, sa.Column):
                return argument.name
            if isinstance(argument, sa.TextClause):
                return argument.text.strip()
    return None


def _escape_like(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
