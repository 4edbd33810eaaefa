"""Blueprints: thin views that parse the request, call the service and render."""

from __future__ import annotations

from flask import Flask, redirect, url_for
from werkzeug.wrappers import Response

from app.views import common, csv_io, errors, tables


def init_app(app: Flask) -> None:
    """Register every table's blueprint, the error handlers and the home redirect."""
    common.init_app(app)
    tables.init_app(app)
    app.register_blueprint(csv_io.bp)
    errors.init_app(app)

    @app.get("/")
    def home() -> Response:
        """Send visitors to the movie table."""
        return redirect(url_for("movies.index"))
