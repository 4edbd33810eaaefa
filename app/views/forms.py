"""What the table forms send and show: the submitted row, its version, the add form.

A cell editor, the add form and the no-JavaScript edit form all post field
values by name, plus bookkeeping inputs (version, csrf_token, next, nested,
`original.<field>`, confirm_duplicate) that are never row data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import BadRequest

from app.crud import CrudService, Field
from app.ui import Table
from app.views.rows import format_cell

# Form keys `original.<field>`: the value an editor started from (field-level merge).
ORIGINAL = "original."

# Form key of the add form's "Add another": the match values it confirms (issue 13).
CONFIRM_DUPLICATE = "confirm_duplicate"


def version(raw: str | None) -> int:
    """Parse the row version a form or link carries (400 if missing or bad)."""
    if not raw:
        raise BadRequest("The row version is missing; reload the page.")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise BadRequest("The row version must be a whole number.")
    return int(raw)


def changes(form: Mapping[str, str]) -> dict[str, str]:
    """The submitted field values, without the bookkeeping inputs."""
    skip = {"version", "csrf_token", "next", "nested", CONFIRM_DUPLICATE}
    return {
        k: v for k, v in form.items() if k not in skip and not k.startswith(ORIGINAL)
    }


def originals(form: Mapping[str, str]) -> dict[str, str] | None:
    """The values the editor started from (`original.<field>`), if sent."""
    found = {
        k.removeprefix(ORIGINAL): v for k, v in form.items() if k.startswith(ORIGINAL)
    }
    return found or None


def format_input(value: Any, field: Field) -> str:
    """Put a stored value into an input as it would be typed."""
    return format_cell(value, field)


def edit_fields(table: Table) -> list[Field]:
    """The fields the no-JavaScript edit form shows (shown and editable)."""
    return [f for f in table.fields() if f.editable]


def values_of(table: Table, row: Any) -> dict[str, str]:
    """The row's editable values as the edit form shows them."""
    return {f.name: format_input(getattr(row, f.name), f) for f in edit_fields(table)}


def add_form(
    table: Table, form_id: str, action: str, nested: bool = False
) -> dict[str, Any]:
    """Describe an add form: its id, where it posts, the fields it has."""
    return {
        "id": form_id,
        "action": action,
        "fields": table.create_fields(nested),
        "label": f"Add {table.singular}",
        "defaults": table.form_defaults() if table.form_defaults else {},
    }


def duplicate(
    table: Table, svc: CrudService, data: Mapping[str, str], confirmed: str | None
) -> dict[str, str] | None:
    """The question to ask before adding an exact copy of a row, or None.

    Rows are matched on the declaration's match_on fields, as the CSV import
    matches rows without an id. A confirmation (`confirmed`, the token the
    question carried) names the values it confirms, so changing them to another
    existing row's asks again.
    """
    names = table.resource.match_on
    if not names:
        return None
    values = svc.validate(data, creating=True)
    key = tuple(values.get(name) for name in names)
    token = hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:16]
    if confirmed == token:
        return None
    if not svc.lookups.ids_matching(names, [key]):
        return None
    labels = " and ".join(table.resource.field(n).label.lower() for n in names)
    return {
        "message": f"A {table.singular} with this {labels} exists: add another?",
        "token": token,
    }
