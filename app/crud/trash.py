"""Deleted rows and their undo: a delete is logged in the change log (a change
per row, children included, old values and all), and its Undo offer is a token
(DeletedRow) naming that change set, its owner and its expiry.

The log holds the rows; the token stays because an Undo offer is a capability:
secret, for its owner only (a browser while accounts are off, where the log's
author is "anonymous"), used once, for UNDO_SECONDS (issue 12).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from app.crud.changes import ChangeLog, change_set, from_json, full_row
from app.crud.copies import fill_copies
from app.crud.errors import Conflict, NotFound, ValidationError
from app.crud.fields import table_of
from app.crud.part import Part
from app.models import DeletedRow

# How long a trashed row can be brought back (the UI offers it for seconds; a
# no-JavaScript visitor sees the offer on the next page).
UNDO_SECONDS = 3600


class Snapshots(Part[Any]):
    """Delete, log, offer back and put back a table's rows (run inside a write)."""

    def remove(self, row: Any) -> dict[str, Any]:
        """Delete a row (its children cascade), log it; return its snapshot."""
        snapshot = self.snapshot(row)
        log = change_set(self.session, self.backend)
        # Children first: an undo walks the set backwards, parents first.
        for name, rows in snapshot["children"].items():
            log.deleted(name, rows)
        log.deleted(snapshot["table"], [snapshot["row"]])
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
        children: dict[str, list[dict[str, Any]]] = {}
        for child in self.resource.children:
            fk = getattr(child.model, child.foreign_key)
            child_table = table_of(child.model)
            rows = self.session.execute(
                sa.select(child_table).where(fk == row.id).order_by(child_table.c.id)
            ).mappings()
            children[child.model.__tablename__] = [dict(r) for r in rows]
        return {
            "table": table_of(self.model).name,
            "row": full_row(row),
            "children": children,
        }

    def keep(self, snapshot: Mapping[str, Any], owner: str | None) -> str:
        """Offer the delete just logged for undo until it expires; return its token.

        The owner (e.g. "user:7") is stored with it: only that owner may undo it
        (issue 12).
        """
        now = int(time.time())
        token = secrets.token_urlsafe(24)
        log = change_set(self.session, self.backend)
        # Expired offers are swept here rather than by a scheduled job.
        self.session.execute(sa.delete(DeletedRow).where(DeletedRow.expires_at < now))
        self.session.add(
            DeletedRow(
                token=token,
                table_name=self.model.__tablename__,
                # The owner rides in the JSON payload: no column, no migration.
                payload=json.dumps(
                    {"set": log.id, "row": snapshot["row"]["id"], "owner": owner}
                ),
                expires_at=now + UNDO_SECONDS,
            )
        )
        return token

    def take(self, token: str, owner: str | None) -> tuple[int | dict[str, Any], int]:
        """Use up the offer under `token`: (change set id, row id) of its delete.

        An offer made before the change log (migration 0017) carries the
        snapshot itself: (snapshot, row id) then, for put_back().

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
        self.session.delete(entry)
        if isinstance(payload.get("row"), dict):
            return self._legacy(payload), payload["row"]["id"]
        return payload["set"], payload["row"]

    def _legacy(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A snapshot of an offer made before the change log, in column types."""
        children = {
            c.model.__tablename__: table_of(c.model) for c in self.resource.children
        }
        return {
            "table": data["table"],
            "row": from_json(table_of(self.model), data["row"]),
            "children": {
                name: [from_json(children[name], r) for r in rows]
                for name, rows in data.get("children", {}).items()
                if name in children
            },
        }

    def undo(self, set_id: int | dict[str, Any]) -> None:
        """Undo a logged delete: its rows come back with their ids (a new set)."""
        if isinstance(set_id, dict):
            self.put_back(set_id)  # an offer from before the change log
            return
        try:
            ChangeLog(self.session, self.backend, self.resource.family).undo(set_id)
        except NotFound:
            # Pruned from the log meanwhile.
            raise NotFound("This delete can no longer be undone.") from None

    def put_back(self, snapshot: Mapping[str, Any]) -> int:
        """Insert a snapshot's row and children, log them; return the row's id."""
        if snapshot.get("table") != self.model.__tablename__:
            raise ValidationError({"_": "This snapshot belongs to another table."})
        row_id: int = snapshot["row"]["id"]
        if self.session.get(self.model, row_id) is not None:
            raise Conflict(None, "This row has already been restored.")
        log = change_set(self.session, self.backend)
        # Copied fields come from their source as it is now (a movie renamed
        # while its rating was in the trash): children after their parent, who
        # may be their source.
        table = table_of(self.model)
        row = fill_copies(
            self.session, self.backend, self.resource, [snapshot["row"]], refresh=True
        )
        self.session.execute(sa.insert(table), row)
        log.created(table, [row_id])
        for child in self.resource.children:
            rows = snapshot["children"].get(child.model.__tablename__) or []
            if rows:
                rows = fill_copies(
                    self.session, self.backend, child.resource, rows, refresh=True
                )
                child_table = table_of(child.model)
                self.session.execute(sa.insert(child_table), rows)
                log.created(child_table, [r["id"] for r in rows])
        return row_id
