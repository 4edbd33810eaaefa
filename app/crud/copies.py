"""Copied fields: a rating's movie_name is its movie's name, in every write.

A field declared `copied_from=(reference, column)` is never typed in: it is
copied from the row the reference points at, and follows that column when it
changes there. The rule is read from the declarations (`copies_of`) as `Copy`
objects, and `declare` (called by app.resources.register) makes every write
path apply them, whatever the table:

    ORM writes (CrudService.create and update, or any session.add): the flush
        hook `_copy_on_flush` fills the copies of new rows and of rows whose
        reference moved, and writes a changed source into the rows copying it;
    Core inserts (imports, loaders, undo): `copies_into` lets an INSERT copy
        by a subquery, `fill_copies` fills (or refreshes) the rows first;
    Core updates (imports): `follow_copies`, after the rows changed.

A copy follows its source without bumping the copying row's version: it is not
user-editable, so an editor open on that row stays valid across a rename.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.crud.dialect import Dialect
from app.crud.fields import Reference, Resource, table_of


@dataclass(frozen=True)
class Copy:
    """A copied field: `name` of `model`'s rows is `source` of the row `ref` names."""

    model: type[Any]  # the copying table's model, e.g. Rating
    name: str  # the copied field, e.g. "movie_name"
    ref: str  # the Reference field it is copied through, e.g. "movie_id"
    source_model: type[Any]  # the referenced table's model, e.g. Movie
    source: str  # the column copied from there, e.g. "name"

    @property
    def table(self) -> sa.Table:
        """The table copied from."""
        return table_of(self.source_model)


# The declared copies, by the model of the rows that carry them (see declare).
_DECLARED: dict[type[Any], tuple[Copy, ...]] = {}


def copies_of(resource: Resource[Any]) -> tuple[Copy, ...]:
    """The copied fields a declaration names; ValueError if one has no Reference."""
    copies = []
    for f in resource.fields:
        if f.copied_from is None:
            continue
        ref, source = f.copied_from
        kind = resource.field(ref).kind
        if not isinstance(kind, Reference):
            raise ValueError(
                f"{resource.name}.{f.name} is copied through {ref}, not a Reference"
            )
        copies.append(Copy(resource.model, f.name, ref, kind.model, source))
    return tuple(copies)


def declare(resource: Resource[Any]) -> None:
    """Keep a declared table's copied fields in every write, ORM flushes included."""
    _DECLARED[resource.model] = copies_of(resource)


def copies_from(model: type[Any]) -> list[Copy]:
    """The declared copies whose source is a column of `model`'s rows."""
    return [c for kept in _DECLARED.values() for c in kept if c.source_model is model]


def copies_into(resource: Resource[Any], names: tuple[str, ...]) -> tuple[Copy, ...]:
    """The copied fields that rows with these keys lack but can be given."""
    return tuple(
        c for c in copies_of(resource) if c.name not in names and c.ref in names
    )


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
    for copy in copies_of(resource):
        wanted = {r[copy.ref] for r in rows if refresh or copy.name not in r}
        if not wanted:
            continue
        source = copy.table
        stmt = sa.select(source.c.id, source.c[copy.source]).where(
            backend.among(source.c.id, wanted)
        )
        found: dict[Any, Any] = dict(session.connection().execute(stmt).all())
        rows = [
            {**r, copy.name: found.get(r[copy.ref], r.get(copy.name))}
            if refresh or copy.name not in r
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

    A copy in this table whose reference changed takes the new source's value;
    a copy anywhere of a column that changed here takes the new value. One
    UPDATE per copy, which leaves versions as they are.
    """
    connection = session.connection()
    table = table_of(resource.model)
    for copy in copies_of(resource):
        moved = [i for i, values in changes if copy.ref in values]
        if moved:
            connection.execute(_recopy(copy, backend.among(table.c.id, moved)))
    for copy in copies_from(resource.model):
        changed = [i for i, values in changes if copy.source in values]
        if changed:
            ref = table_of(copy.model).c[copy.ref]
            connection.execute(_recopy(copy, backend.among(ref, changed)))


def _recopy(copy: Copy, where: sa.ColumnElement[bool]) -> sa.Update:
    """UPDATE the copying rows `where` picks to hold their source's value now."""
    copying = table_of(copy.model)
    source = copy.table
    value = (
        sa.select(source.c[copy.source])
        .where(source.c.id == copying.c[copy.ref])
        .scalar_subquery()
    )
    return sa.update(copying).where(where).values({copy.name: value})


@event.listens_for(Session, "before_flush")
def _copy_on_flush(session: Session, _context: object, _instances: object) -> None:
    """Apply the declared copies to the ORM rows this flush writes.

    In the flush, so in the write's own transaction. The source is read through
    the session, so a source changed in this same flush is copied as it will be.
    """
    if not _DECLARED:
        return
    with session.no_autoflush:
        for obj in session.new | session.dirty:
            for copy in _DECLARED.get(type(obj), ()):
                ref = getattr(obj, copy.ref)
                if ref is None:
                    continue
                moved = sa.inspect(obj).attrs[copy.ref].history.has_changes()
                if obj in session.new or moved:
                    source = session.get(copy.source_model, ref)
                    if source is not None:
                        setattr(obj, copy.name, getattr(source, copy.source))
        for obj in session.dirty:
            for copy in copies_from(type(obj)):
                if not sa.inspect(obj).attrs[copy.source].history.added:
                    continue
                # An UPDATE by WHERE, not the rows' own: versions stay (see top).
                ref = getattr(copy.model, copy.ref)
                session.execute(
                    sa.update(copy.model)
                    .where(ref == obj.id)
                    .values({copy.name: getattr(obj, copy.source)})
                    .execution_options(synchronize_session="fetch")
                )
