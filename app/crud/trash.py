"""Deleted rows kept for undo: a snapshot of the row and its children, stored in
the database (DeletedRow) and put back with their original ids.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.crud.copies import fill_copies
from app.crud.dialect import Dialect
from app.crud.errors import Conflict, NotFound, ValidationError
from app.crud.fields import Resource, table_of
from app.models import DeletedRow

# How long a trashed row can be brought back (the UI offers it for seconds; a
# no-JavaScript visitor sees the offer on the next page).
UNDO_SECONDS = 3600


class Snapshots:
    """Take, store and put back snapshots of a table's rows (run inside a write)."""

    def __init__(
        self, session: Session, resource: Resource[Any], backend: Dialect
    ) -> None:
        self.session = session
        self.resource = resource
        self.model = resource.model
        self.backend = backend

    def remove(self, row: Any) -> dict[str, Any]:
        """Delete a row (its children cascade); return its snapshot."""
        snapshot = self.snapshot(row)
        # Core DELETE: the database's ON DELETE CASCADE removes the children
        # without loading them as objects.
        self.session.execute(
            sa.delete(self.model)
            .where(table_of(self.model).c.id == row.id)
            .execution_options(synchronize_session=False)
        )
        self.session.expunge(row)
        return snapshot

    def snapshot(self, row: Any) -> dict[str, Any]:
        """Capture a row and its children as plain column dicts."""
        table = table_of(self.model)
        parent = {c.name: getattr(row, c.key) for c in self.model.__mapper__.columns}
        children: dict[str, list[dict[str, Any]]] = {}
        for child in self.resource.children:
            fk = getattr(child.model, child.foreign_key)
            rows = self.session.execute(
                sa.select(table_of(child.model)).where(fk == row.id)
            ).mappings()
            children[child.model.__tablename__] = [dict(r) for r in rows]
        return {"table": table.name, "row": parent, "children": children}

    def keep(self, snapshot: Mapping[str, Any], owner: str | None) -> str:
        """Store a snapshot for undo until it expires; return its token.

        The owner (e.g. "user:7") is stored with it: only that owner may undo it
        (issue 12).
        """
        now = int(time.time())
        token = secrets.token_urlsafe(24)
        # Expired snapshots are swept here rather than by a scheduled job.
        self.session.execute(sa.delete(DeletedRow).where(DeletedRow.expires_at < now))
        self.session.add(
            DeletedRow(
                token=token,
                table_name=self.model.__tablename__,
                # The owner rides in the JSON payload: no column, no migration.
                payload=json.dumps({**snapshot, "owner": owner}, default=_json_default),
                expires_at=now + UNDO_SECONDS,
            )
        )
        return token

    def take(self, token: str, owner: str | None) -> dict[str, Any]:
        """Remove and return the snapshot stored under `token`.

        Raises NotFound if the token is unknown, used, expired or of another table,
        or, when `owner` is given, was trashed by someone else: the same answer, so
        a token of another owner is not even confirmed to exist (issue 12).
        """
        entry = self.session.get(DeletedRow, token) if token else None
        payload = json.loads(entry.payload) if entry is not None else {}
        if (
            entry is None
            or entry.table_name != self.model.__tablename__
            or entry.expires_at < time.time()
            or (owner is not None and payload.get("owner") != owner)
        ):
            raise NotFound("This delete can no longer be undone.")
        snapshot = self._decode(payload)
        self.session.delete(entry)
        return snapshot

    def put_back(self, snapshot: Mapping[str, Any]) -> int:
        """Insert a snapshot's row and children; return the row's id."""
        if snapshot.get("table") != self.model.__tablename__:
            raise ValidationError({"_": "This snapshot belongs to another table."})
        row_id: int = snapshot["row"]["id"]
        if self.session.get(self.model, row_id) is not None:
            raise Conflict(None, "This row has already been restored.")
        # Copied fields come from their source as it is now (a movie renamed
        # while its rating was in the trash): children after their parent, who
        # may be their source.
        row = fill_copies(
            self.session, self.backend, self.resource, [snapshot["row"]], refresh=True
        )
        self.session.execute(sa.insert(table_of(self.model)), row)
        for child in self.resource.children:
            rows = snapshot["children"].get(child.model.__tablename__) or []
            if rows:
                rows = fill_copies(
                    self.session, self.backend, child.resource, rows, refresh=True
                )
                self.session.execute(sa.insert(table_of(child.model)), rows)
        return row_id

    def _decode(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Turn a snapshot read back from JSON into column values again."""
        children = {
            c.model.__tablename__: table_of(c.model) for c in self.resource.children
        }
        return {
            "table": data["table"],
            "row": _from_json(table_of(self.model), data["row"]),
            "children": {
                name: [_from_json(children[name], r) for r in rows]
                for name, rows in data["children"].items()
                if name in children
            },
        }


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
