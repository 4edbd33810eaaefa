"""Bulk writes for loaders and imports: multi-row INSERTs, grouped UPDATEs, and
index rebuilds after big loads. They run inside one write transaction (the
service's transaction(), or load()'s own), so a whole import commits or rolls
back as one, and is logged as one change set (app/crud/changes.py), in bulk as
well.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.crud.changes import change_set
from app.crud.copies import Copy, copies_into, fill_copies, follow_copies
from app.crud.counts import Counter
from app.crud.dialect import Dialect
from app.crud.errors import Conflict
from app.crud.fields import Resource, table_of
from app.crud.part import Part

_T = TypeVar("_T")

# Rows an import-sized INSERT statement carries, and at most this many values:
# below SQLite's 32,766 parameters and PostgreSQL's 65,535.
_INSERT_ROWS = 5000
_INSERT_PARAMS = 30_000

# deferred_indexes: the fewest rows worth rebuilding indexes for, and the share of
# the table (1/8) from which a rebuild beats updating the indexes row by row
# (python -m bench.imports on 1,000,000 ratings: the break-even is near 1/9).
_REBUILD_MIN = 20_000
_REBUILD_SHARE = 8


class Bulk(Part[Any]):
    """Insert and update many prepared rows of one table in the current write."""

    def __init__(
        self,
        session: Session,
        resource: Resource[Any],
        backend: Dialect,
        counter: Counter,
        write: Callable[[], AbstractContextManager[Any]],
    ) -> None:
        super().__init__(session, resource, backend)
        self.counter = counter
        # Opens one single write of the service (CrudService.transaction), for load().
        self.write = write

    def load(self, rows: Iterable[Mapping[str, Any]], batch: int = 10_000) -> int:
        """Insert many prepared rows in a write transaction of their own; count them.

        For loaders (seed) whose rows are already validated: it skips the
        per-row ORM work that would make a million rows take minutes.
        """
        with self.write():
            return self.insert_many(rows, batch)

    def insert_many(
        self, rows: Iterable[Mapping[str, Any]], batch: int = 10_000
    ) -> int:
        """Insert validated rows (ids optional) in the current transaction; count them.

        Fields declared `copied_from` are filled from the referenced rows when a
        row does not carry them, as a single write's flush would (copies.py). The
        rows go in as multi-row INSERTs (see _insert_rows), and their creation
        is logged a batch at a time (ChangeSet.created, values made in SQL).
        """
        count = 0
        table = table_of(self.model)
        log = change_set(self.session, self.backend)
        for chunk in batches(rows, batch):
            count += len(chunk)
            # Rows with an id go first and move the id sequence past them, so no
            # row without one is given an id that the batch still has to insert.
            with_ids = [r for r in chunk if r.get("id") is not None]
            ids: list[int] = []
            if with_ids:
                ids += self._insert_rows(with_ids)
                self.backend.sync_id_sequence(self.session, table)
                chunk = [r for r in chunk if r.get("id") is None]
            ids += self._insert_rows(chunk)
            log.created(table, ids)
        return count

    def _insert_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """INSERT rows, up to _INSERT_ROWS in a statement, grouped by their keys.

        Returns the new rows' ids (RETURNING), for the change log.

        One statement a row (executemany) makes SQLite flush a full-text index
        once a row, as the trigger feeding it runs in the statement's own
        transaction: with the ratings index (0015) statements of 1,000 rows are
        several times cheaper a row. The values go to the driver as they are
        when no column converts them (SQLAlchemy's handling of each row cost
        about as much as the insert), and the statement itself copies the copied
        fields, as a subquery on the source row (cheaper than fill_copies' query
        and merge). Measured by `python -m bench.imports --only speed` (1,000,000
        new ratings).
        """
        groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        connection = self.session.connection()
        dialect = connection.dialect
        table = table_of(self.model)
        ids: list[int] = []
        for names, same in groups.items():
            copies = copies_into(self.resource, names)
            if _insert_sql(dialect, table, names, copies, 1) is None:
                done = connection.execute(
                    sa.insert(table).returning(table.c.id),
                    fill_copies(self.session, self.backend, self.resource, same),
                )
                ids += done.scalars().all()
                continue
            per = max(1, min(_INSERT_ROWS, _INSERT_PARAMS // len(names)))
            for start in range(0, len(same), per):
                part = same[start : start + per]
                sql = _insert_sql(dialect, table, names, copies, len(part))
                values = [row[name] for row in part for name in names]
                assert sql is not None  # not None for one row (checked above)
                cursor = connection.exec_driver_sql(sql, tuple(values)).cursor
                ids += [row[0] for row in cursor.fetchall()]
        return ids

    def update_many(
        self, changes: Iterable[tuple[int, Mapping[str, Any]]], batch: int = 1000
    ) -> int:
        """Apply validated {field: value} changes by id in the current transaction.

        Each row changes as in a single edit: its version goes up by one, its
        updated_at is set (the column's onupdate), and copies of the changed
        fields follow (a movie's new name in its ratings, as in a single edit:
        app/crud/copies.py). Core UPDATEs, one executemany per set of changed
        fields: the ORM's load-modify-flush is many times slower a row
        (`python -m bench.imports --only speed`, 100,000 changed). The change log
        gets each row's old and new values by INSERT ... SELECT and UPDATE, in
        SQL: the fields given are taken as changed. Raises Conflict if a row is
        gone.
        """
        table = table_of(self.model)
        connection = self.session.connection()
        log = change_set(self.session, self.backend)
        count = 0
        for chunk in batches(changes, batch):
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row_id, values in chunk:
                params = {f"new_{name}": value for name, value in values.items()}
                params["row_id"] = row_id
                groups.setdefault(tuple(values), []).append(params)
            for names, params_list in groups.items():
                ids = [p["row_id"] for p in params_list]
                log.before_update(table, names, ids)
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
                log.after_update(table, names, ids)
            follow_copies(self.session, self.backend, self.resource, chunk)
            count += len(chunk)
        return count

    def _raise_gone(self, ids: list[int]) -> None:
        """Raise Conflict naming the first of `ids` that no longer exists."""
        id_column = table_of(self.model).c.id
        stmt = sa.select(id_column).where(self.backend.among(id_column, ids))
        present = set(self.session.connection().execute(stmt).scalars())
        gone = next((i for i in ids if i not in present), ids[0])
        raise Conflict(None, f"Row {gone} was deleted meanwhile.")

    @contextmanager
    def deferred_indexes(self, rows: int) -> Iterator[bool]:
        """Inside transaction(), before writing about `rows` rows: maybe index later.

        SQLite updates every index of a table for each row written, each at its
        own place: with the five indexes of 1,000,000 ratings that costs far more
        a row once they outgrow the page cache than building each index afresh,
        which sorts the table once (`python -m bench.imports --only speed`,
        1,000,000 new ratings). So when `rows` is at least an eighth of the table
        (and _REBUILD_MIN or more), the table's plain indexes are dropped for the
        body and made again after it from their own CREATE statements, in this
        same transaction: readers see the old indexes until it commits, and if
        the body raises (or the transaction rolls back, or the process dies) they
        stay as they were. Unique indexes stay (they enforce), as does any index
        starting with the first match_on field (an import finds rows through
        it). Yields whether the indexes wait. PostgreSQL keeps its
        indexes: dropping one would lock readers out until the commit.
        """
        recreate: list[str] = []
        if self._rebuild_pays(rows):
            keep = set(self.resource.match_on[:1])
            recreate = self.backend.drop_plain_indexes(
                self.session.connection(), self.model.__tablename__, keep
            )
        yield bool(recreate)
        if recreate:
            self.backend.create_indexes(self.session.connection(), recreate)

    def _rebuild_pays(self, rows: int) -> bool:
        """True if writing `rows` rows costs more with the indexes than rebuilding."""
        if not self.backend.rebuilds_indexes or rows < _REBUILD_MIN:
            return False
        return rows * _REBUILD_SHARE >= self.counter.count()


@functools.lru_cache(maxsize=64)
def _insert_sql(
    dialect: sa.Dialect,
    table: sa.Table,
    names: tuple[str, ...],
    copies: tuple[Copy, ...],
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
    # The new ids, for the change log (SQLite 3.35+ and PostgreSQL).
    returning = f" RETURNING {quote('id')}"
    if not copies:
        return head + values + returning
    picked = [f"v.column{i}" for i in range(1, len(names) + 1)]
    for copy in copies:
        source = preparer.format_table(copy.table)
        ref = f"v.column{names.index(copy.ref) + 1}"
        picked.append(
            f"(SELECT {source}.{quote(copy.source)} FROM {source}"
            f" WHERE {source}.{quote('id')} = {ref})"
        )
    return head + f"SELECT {', '.join(picked)} FROM ({values}) AS v" + returning


def batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """Yield lists of up to `size` items (itertools.batched arrives in 3.12)."""
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
