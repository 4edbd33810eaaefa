"""Lookups an import makes per batch: stored values, rows by key, references."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from app.crud.fields import Reference, fits_id, table_of
from app.crud.part import Part


class Lookups(Part[Any]):
    """Find rows of one table by id or key, one query for many rows."""

    def stored_values(
        self, ids: Iterable[int], names: Sequence[str]
    ) -> dict[int, tuple[Any, ...]]:
        """Return {id: values of the named columns} for those of `ids` that exist."""
        wanted = [i for i in ids if fits_id(self.model, i)]
        if not wanted:
            return {}
        table = table_of(self.model)
        stmt = sa.select(table.c.id, *(table.c[n] for n in names)).where(
            self.backend.among(table.c.id, wanted)
        )
        return {row[0]: tuple(row[1:]) for row in self._plain_rows(stmt)}

    def ids_matching(
        self, names: Sequence[str], keys: Iterable[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], list[int]]:
        """Return {key: ids of the rows whose `names` columns equal key}.

        The rows are found through an index starting with the first of `names`
        (issue 11: `(a, b) IN (list)` compared every row with every key, seconds
        a batch on PostgreSQL; `python -m bench.imports --only memory --postgres
        URL` matches a file of movies on name and director); Python keeps those
        equal to a whole key.
        """
        wanted = set(keys)
        if not wanted:
            return {}
        table = table_of(self.model)
        columns = [table.c[n] for n in names]
        stmt = sa.select(table.c.id, *columns).where(
            self.backend.among(columns[0], {key[0] for key in wanted})
        )
        found: dict[tuple[Any, ...], list[int]] = {}
        for row in self._plain_rows(stmt):
            key = tuple(row[1:])
            if key in wanted:
                found.setdefault(key, []).append(row[0])
        return found

    def has_rows(self) -> bool:
        """True if the table holds at least one row (one index probe, no count)."""
        stmt = sa.select(sa.exists(sa.select(table_of(self.model).c.id)))
        return bool(self.session.connection().execute(stmt).scalar())

    def newest_id(self) -> int | None:
        """The table's largest id, or None if it is empty (one index probe)."""
        stmt = sa.select(sa.func.max(table_of(self.model).c.id))
        return self.session.connection().execute(stmt).scalar()

    def existing_references(self, field_name: str, ids: Iterable[int]) -> set[int]:
        """Return which of `ids` exist in the table a Reference field points at."""
        kind = self.resource.field(field_name).kind
        assert isinstance(kind, Reference)
        wanted = {i for i in ids if fits_id(kind.model, i)}
        if not wanted:
            return set()
        target_id = table_of(kind.model).c.id
        stmt = sa.select(target_id).where(self.backend.among(target_id, wanted))
        return {row[0] for row in self._plain_rows(stmt)}

    def _plain_rows(self, stmt: sa.Select[Any]) -> Sequence[Sequence[Any]]:
        """Run a SELECT in the session's transaction; return its rows as tuples.

        Core on the session's connection: a third of the cost of an ORM execute.
        On SQLite, when no selected column converts values, the rows are the
        driver's own (Dialect.plain_rows).
        """
        result = self.session.connection().execute(stmt)
        return self.backend.plain_rows(result, stmt)
