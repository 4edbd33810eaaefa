"""How a page is read: sort-index walks, ids-first deep pages, per-row summaries,
and the export's streaming cursor.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.crud.fields import Summary, table_of
from app.crud.query import ListQuery, sort_keys
from app.crud.select import Statements
from app.db import StepsSpent, step_budget

# {summary name: {parent id: (count, average)}}, as Reader.summaries gives them.
Summaries = dict[str, dict[int, tuple[int, float | None]]]

# Rows a search walk passes for the cost of fetching one match to sort it: in an
# index that carries the searched columns the walk tests rows there (migration
# 0007), about a fifth of a fetch each; in one that does not it reads each row from
# the table, about two fetches each (ratios measured on 1,000,000 ratings; W2 of
# `python -m bench` times the choice they drive).
WALK_ROWS_PER_FETCH_COVERED = 5.0
WALK_ROWS_PER_FETCH = 0.5
# SQLite VM steps a walk takes per row it passes (8-16 measured), and the least
# budget a walk gets (see Reader.items).
WALK_ROW_STEPS = 20
WALK_MIN_STEPS = 100_000
# A walk tests a row with other letters than ASCII on its folded values (see
# Statements.walk): folding them costs about 0.9 µs a row passed; the list of
# every match costs about 0.15 µs a match to build, then 0.3 µs a row passed. So
# folding is cheaper while the walk passes fewer rows than a quarter of the
# matches ("star" by rating on the bench data: the first page 0.9 against 8.1 ms
# at 1,000,000 movies, 1.1 against 1.1 ms at 100,000; the 20th page at 1,000,000
# 18.4 against 16.8 ms).
FOLD_WHILE_PASSED_PER_MATCH = 0.25


class Reader:
    """Reads the rows of a page, choosing how from the counts the caller has."""

    def __init__(self, session: Session, statements: Statements) -> None:
        self.session = session
        self.statements = statements
        self.resource = statements.resource
        self.model = statements.model
        # Summaries a write read for its answer (keep_summaries), taken once.
        self._kept: tuple[tuple[int, ...], Summaries] | None = None

    def items(
        self,
        query: ListQuery,
        matching: int | None = None,
        table_rows: int | None = None,
    ) -> list[Any]:
        """Return the rows of one page without counting (for embedded lists).

        With the counts (as list() has them), a search matching many rows is read
        in sort order instead of sorting every match (see walk_budget).
        """
        rows = self.walk_budget(query, matching, table_rows)
        if rows is not None and matching and table_rows:
            passed = _passed(query, matching, table_rows)
            fold = passed < FOLD_WHILE_PASSED_PER_MATCH * matching
            try:
                with step_budget(max(WALK_MIN_STEPS, WALK_ROW_STEPS * rows)):
                    return self._page_items(query, walk=True, fold=fold)
            except StepsSpent:
                pass  # a SELECT stopped: the transaction goes on as it was
        return self._page_items(query, walk=False)

    def _page_items(
        self, query: ListQuery, walk: bool, fold: bool = False
    ) -> list[Any]:
        """Read the rows of one page, walking the sort index or not (see items).

        fold: a walk folds each row with other letters than ASCII rather than
        look it up in a list of every match (Statements.walk).
        """

        def select(*columns: Any) -> sa.Select[Any]:
            return self.statements.select(
                query, *columns, walk_sort_index=walk, fold_each_row=fold
            )

        offset = (query.page - 1) * query.per_page
        if not offset:
            stmt = select().limit(query.per_page)
            return list(self.session.scalars(stmt))
        # A later page finds its ids first, from the sort index alone, then reads
        # those rows. PostgreSQL otherwise reads every row it skips from the table
        # (much faster for deep pages: W3 of `python -m bench`); SQLite skips in the
        # index either way, and the wide rating index serves the ids alone (faster
        # too: W3).
        id_column = self.statements.column("id")
        ids = select(id_column).limit(query.per_page).offset(offset)
        stmt = (
            sa.select(self.model)
            .where(id_column.in_(ids))
            .order_by(*self.statements.order_by(query))
        )
        return list(self.session.scalars(stmt))

    def walk_budget(
        self, query: ListQuery, matching: int | None, table_rows: int | None
    ) -> int | None:
        """How many rows a search may pass walking the sort index; None: sort instead.

        A full-text search walks the sort index rather than sort its matches when
        this is not None. Sorting the matches costs about one row fetch per match;
        a walk of the first sort key's index passes (rows before the page end) *
        table_rows / matching rows, at WALK_ROWS_PER_FETCH(_COVERED) rows a fetch.
        So walk when matches are many (a common word), sort when they are few (a
        rare one).

        That count expects matches spread evenly along the sort order, but a search
        for part of the sorted column gathers them in one stretch ("ms" by movie
        name descending, every "Dreams" early in the alphabet: 5.5 million steps
        at 1,000,000 ratings, seconds of work). So the walk may pass twice the rows
        expected, or as many as sorting would cost, whichever is more: past that its
        matches are sorted (items), for at most about twice the cost of sorting at
        once.
        """
        if not query.q or matching is None or not table_rows or not matching:
            return None
        if self.statements.search_match(query.q) is None:
            return None
        keys = sort_keys(query, self.resource)
        exchange = self._walk_rows_per_fetch(keys[0].field) if keys else 0.0
        passed = _passed(query, matching, table_rows)
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
        for index in table_of(self.model).indexes:
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

    def keep_summaries(self, ids: Sequence[int], summaries: Summaries) -> None:
        """Have the next summaries(ids) return these, read by a write that ended.

        A write's answer draws its row with its summaries: read inside the write,
        they need no transaction of their own after it (on PostgreSQL two round
        trips of ten in a single-cell edit: W5 of `python -m bench`).
        """
        self._kept = (tuple(ids), summaries)

    def summaries(self, ids: Sequence[int]) -> Summaries:
        """Return {summary: {id: (count, average)}} for the given parent ids."""
        kept, self._kept = self._kept, None
        if kept is not None and kept[0] == tuple(ids):
            return kept[1]
        out: Summaries = {}
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

    def fetch_batches(
        self, query: ListQuery, *columns: Any, batch: int = 4096, csv: bool = False
    ) -> Iterator[list[Any]]:
        """Yield lists of raw DBAPI rows of `columns` for every matching row.

        The statement is compiled for this dialect and run on the driver's own
        cursor (a server-side one on PostgreSQL), skipping SQLAlchemy's per-row
        result processing, which costs more than the query itself in an export.
        With `csv` (only where the backend copies_csv) each item is instead the
        database's CSV line of the columns, bytes ending in LF (Dialect.copy_csv).
        """
        stmt = self.statements.select(query, *columns)
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
            driver = conn.connection.driver_connection
            if csv:
                backend = self.statements.backend
                yield from backend.copy_csv(driver, str(compiled), params, batch)
                return
            # On PostgreSQL a named (server-side) cursor (see the Dialect).
            cursor = self.statements.backend.cursor(driver)
            try:
                cursor.execute(str(compiled), params)
                while rows := cursor.fetchmany(batch):
                    yield rows
            finally:
                cursor.close()


def _passed(query: ListQuery, matching: int, table_rows: int) -> int:
    """Rows a walk is expected to pass by the end of the page, matches spread evenly."""
    return query.page * query.per_page * table_rows // matching


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
    ids: sa.BindParameter[Any] = sa.bindparam(
        "ids", expanding=True, literal_execute=True
    )
    return (
        sa.select(fk, sa.func.count(), sa.func.avg(value))
        .where(fk.in_(ids))
        .group_by(fk)
    )


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
