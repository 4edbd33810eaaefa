"""Copied fields in bulk writes: a rating's movie_name is its movie's name.

A field declared `copied_from=(reference, column)` is never typed in: it is
copied from the row the reference points at. The model's flush hook keeps it
for single ORM writes (app/models.py); these helpers do it for Core writes:
filling rows before an INSERT, and following a changed source after an UPDATE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.crud.dialect import Dialect
from app.crud.fields import Reference, Resource, table_of


@dataclass(frozen=True)
class Copy:
    """A copied field an INSERT fills: from `source` of the `ref` row in `table`."""

    name: str
    ref: str
    table: sa.Table
    source: str


def copies_into(resource: Resource[Any], names: tuple[str, ...]) -> tuple[Copy, ...]:
    """The copied fields that rows with these keys lack but can be given."""
    copies = []
    for f in resource.fields:
        if f.copied_from is None or f.name in names:
            continue
        ref_name, source = f.copied_from
        kind = resource.field(ref_name).kind
        if ref_name in names and isinstance(kind, Reference):
            copies.append(Copy(f.name, ref_name, table_of(kind.model), source))
    return tuple(copies)


def fill_copies(
    session: Session,
    backend: Dialect,
    resource: Resource[Any],
    rows: list[Mapping[str, Any]],
    refresh: bool = False,
) -> list[Mapping[str, Any]]:
    """Return rows with their `copied_from` fields filled from the source rows.

    refresh: also replace the copies rows carry (a snapshot's may be stale),
    wherever the source row exists.
    """
    for f in resource.fields:
        if f.copied_from is None:
            continue
        ref_name, source = f.copied_from
        kind = resource.field(ref_name).kind
        assert isinstance(kind, Reference)
        wanted = {r[ref_name] for r in rows if refresh or f.name not in r}
        if not wanted:
            continue
        target = table_of(kind.model)
        stmt = sa.select(target.c.id, target.c[source]).where(
            backend.among(target.c.id, wanted)
        )
        found: dict[Any, Any] = dict(session.connection().execute(stmt).all())
        rows = [
            {**r, f.name: found.get(r[ref_name], r.get(f.name))}
            if refresh or f.name not in r
            else r
            for r in rows
        ]
    return rows


def follow_copies(
    session: Session,
    backend: Dialect,
    resource: Resource[Any],
    changes: Sequence[tuple[int, Mapping[str, Any]]],
) -> None:
    """Bring copied fields up to date after update_many changed these rows.

    A copy in this table whose reference changed takes the new source's
    value; a copy in a child table of a field that changed here takes the
    new value. One UPDATE per copy; versions stay (the flush hook's rule).
    """
    table = table_of(resource.model)
    connection = session.connection()
    for f in resource.fields:
        if f.copied_from is None:
            continue
        ref_name, source = f.copied_from
        moved = [i for i, values in changes if ref_name in values]
        kind = resource.field(ref_name).kind
        if not moved or not isinstance(kind, Reference):
            continue
        target = table_of(kind.model)
        value = (
            sa.select(target.c[source])
            .where(target.c.id == table.c[ref_name])
            .scalar_subquery()
        )
        connection.execute(
            sa.update(table)
            .where(backend.among(table.c.id, moved))
            .values({f.name: value})
        )
    for child in resource.children:
        child_table = table_of(child.model)
        for f in child.resource.fields:
            if f.copied_from is None:
                continue
            ref_name, source = f.copied_from
            kind = child.resource.field(ref_name).kind
            if not isinstance(kind, Reference) or kind.model is not resource.model:
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
                .where(backend.among(child_table.c[ref_name], changed))
                .values({f.name: value})
            )
