"""Counting rows: from the counter rows (SQLite) or slots (PostgreSQL) where kept,
cached by table version, else count(*), or the matches in the full-text index for
a bare search.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.crud.query import ListQuery
from app.crud.select import Statements
from app.db import WRITE_INTENT


class CountCache:
    """Counts of filtered views by (table, table version, filter), least recent out.

    Only for tables whose version triggers bump on every write and whose dialect
    offers it (Dialect.counter_version: SQLite's counter row, 0008; PostgreSQL's
    slots' sum(version), 0018): a count stored under a version is the count for as
    long as the version stands. One per app, shared by its requests; thread-safe.
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


class Counter:
    """Counts of a table's rows, or of those a query matches."""

    def __init__(
        self, session: Session, statements: Statements, cache: CountCache | None
    ) -> None:
        self.session = session
        self.statements = statements
        self.resource = statements.resource
        self.model = statements.model
        self.cache = cache

    def count(self, query: ListQuery | None = None) -> int:
        """Return the number of rows in the table, or of those matching `query`."""
        return self.counted(query, self.table_state())

    def totals(self, query: ListQuery) -> tuple[int, int]:
        """(rows matching `query`, rows in the table), the counter read once."""
        state = self.table_state()
        grand_total = self.counted(None, state)
        if not (query.q or query.filters):
            return grand_total, grand_total
        return self.counted(query, state), grand_total

    def counted(self, query: ListQuery | None, state: tuple[int, int] | None) -> int:
        """count(), given the table's (row count, version) if it has a counter."""
        if query is None or not (query.q or query.filters):
            if state is not None:
                return state[0]
            return self._count(None)
        version = self._version()
        if state is None or version is None or self.cache is None or self._writing():
            return self._count(query)
        # Paging or re-sorting a filtered view asks for the same count again; the
        # table's version changes with every write, so a cached count is exact.
        key = (self.model.__tablename__, query.q, tuple(sorted(query.filters.items())))
        total = self.cache.get((*key, state[1]))
        if total is None:
            # Stored under the version its own statement saw: on PostgreSQL each
            # statement reads a newer snapshot, and a write may have committed
            # since `state` was read.
            stmt = self._statement(query).add_columns(version)
            total, seen = self.session.execute(stmt).one()
            total = int(total or 0)
            self.cache.put((*key, seen), total)
        return total

    def _count(self, query: ListQuery | None) -> int:
        """Count the table's rows, or those matching `query`, in the database."""
        return self.session.scalar(self._statement(query)) or 0

    def _statement(self, query: ListQuery | None) -> sa.Select[Any]:
        """SELECT count(*) of the table's rows, or of those matching `query`."""
        if query is not None and query.q and not query.filters:
            rowids = self.statements.search_match(query.q)
            if rowids is not None:
                # The index holds exactly the table's rows (triggers keep it so):
                # count the matches there, without fetching a row of the table.
                return sa.select(sa.func.count()).select_from(rowids.subquery())
        stmt = sa.select(sa.func.count()).select_from(self.model)
        if query is not None:
            stmt = stmt.where(*self.statements.where(query))
        return stmt

    def _version(self) -> sa.ScalarSelect[Any] | None:
        """The table's version as a subquery, or None if no counter keeps one."""
        counts = self.resource.row_count_table
        if counts is None:
            return None
        backend = self.statements.backend
        return backend.counter_version(counts, self.model.__tablename__)

    def table_state(self) -> tuple[int, int] | None:
        """(row count, version) from the table's counter, or None if none.

        SQLite keeps a counter row (migrations 0006, 0008), PostgreSQL counter
        slots (0018): no count(*) of the table. Elsewhere no query is made.
        """
        counts = self.resource.row_count_table
        if counts is None:
            return None
        backend = self.statements.backend
        return backend.counter_row(self.session, counts, self.model.__tablename__)

    def _writing(self) -> bool:
        """True inside a write transaction, whose changes may yet roll back.

        A count seen there must not be cached: after a rollback, another write
        could bring the table to the same version with different rows.
        """
        options = self.session.connection().get_execution_options()
        return bool(options.get(WRITE_INTENT))
