"""What table templates call besides Flask's own: filters, tests and globals."""

from __future__ import annotations

from flask import Flask

from app.crud import Field, Filter, Number
from app.views.forms import format_input
from app.views.rows import (
    editor_cell,
    editor_templates,
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
    app.add_template_global(table_rows, "table_rows")
    app.add_template_global(summary_value, "summary_value")
    app.add_template_global(editor_cell, "editor_cell")
    app.add_template_global(editor_templates, "editor_templates")
