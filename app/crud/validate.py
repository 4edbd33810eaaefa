"""Input against a declaration: validate() for writes, holds() for merged edits,
and MERGE_ATTEMPTS, how many tries update() gives a merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.crud.errors import ValidationError
from app.crud.fields import FieldKind, Number, Reference, Resource

# Tries at a merged update() before it gives up with Conflict. A retry is needed
# only after a write commits between our read and our UPDATE (PostgreSQL; SQLite's
# writers take turns), so two editors of one row need two tries; three leave room
# for a third without letting a busy row keep a request looping.
MERGE_ATTEMPTS = 3


def validate(
    resource: Resource[Any],
    session: Session,
    data: Mapping[str, Any],
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
    for f in resource.fields:
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
            and session.get(f.kind.model, target) is None
        ):
            errors[f.name] = f"There is no {f.kind.label_of_target} with id {target}."
    if errors:
        raise ValidationError(errors)
    if not values and not creating:
        raise ValidationError({"_": "Nothing to change."})
    return values


def holds(
    resource: Resource[Any],
    row: Any,
    data: Mapping[str, Any],
    original: Mapping[str, Any] | None,
) -> bool:
    """True when every declared field in `data` still holds its `original` value."""
    if original is None:
        return False
    for f in resource.fields:
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
