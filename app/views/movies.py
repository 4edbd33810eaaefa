"""The movie table."""

from __future__ import annotations

from flask import Blueprint

from app.resources import MOVIES
from app.views.common import list_page, render_view

bp = Blueprint("movies", __name__, url_prefix="/movies")


@bp.get("")
def index() -> str:
    """Show the movie table (full page, or the table fragment for htmx)."""
    return render_view(
        "movies.html",
        "partials/movie_table.html",
        resource=MOVIES,
        page=list_page("movies"),
    )
