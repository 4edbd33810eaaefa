"""What table templates call besides Flask's own: filters, tests and globals."""

from __future__ import annotations

from flask import Flask

from app.crud import Field, Filter, Number
from app.resources import TABLES
from app.views.forms import format_input
from app.views.rows import (
    child_row,
    dom,
    editor_templates,
    empty_row,
    input_mode,
    is_numeric,
    summary_value,
    table_rows,
)


def step(field: Field | Filter) -> str:
    """The step of a number input for a field or filter."""
    if isinstance(field.kind, Number):
        return str(10**-field.kind.places)
    return "1"


def thousands(number: int) -> str:
    """1234 -> "1,234"."""
    return f"{number:,}"


def init_app(app: Flask) -> None:
    """Register the filters, tests and globals the table templates use."""
    app.add_template_filter(format_input, "input_value")
    app.add_template_filter(input_mode, "input_mode")
    app.add_template_filter(thousands, "thousands")
    app.add_template_filter(step, "step")
    app.add_template_test(is_numeric, "numeric")
    # Every <tr> and <td> of a grid's body is drawn by app/views/rows.py, and
    # the ids and classes app.js relies on come from `dom` (the DOM contract).
    app.jinja_env.globals["dom"] = dom
    app.add_template_global(table_rows, "table_rows")
    app.add_template_global(empty_row, "empty_row")
    app.add_template_global(child_row, "child_row")
    # The header's navigation: one link a declared table, in declaration order.
    app.jinja_env.globals["tables"] = list(TABLES.values())
    app.add_template_global(summary_value, "summary_value")
    app.add_template_global(editor_templates, "editor_templates")
