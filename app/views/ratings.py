"""The table of all ratings."""

from __future__ import annotations

from flask import Blueprint

from app.resources import RATINGS
from app.views.common import list_page, render_view

bp = Blueprint("ratings", __name__, url_prefix="/ratings")


@bp.get("")
def index() -> str:
    """Show every rating (full page, or the table fragment for htmx)."""
    return render_view(
        "ratings.html",
        "partials/rating_table.html",
        resource=RATINGS,
        page=list_page("ratings"),
    )
