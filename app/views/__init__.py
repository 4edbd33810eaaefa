"""Blueprints: thin views that parse the request, call the service and render."""

from __future__ import annotations

from flask import Flask, redirect
from werkzeug.wrappers import Response

from app.views import (
    auth,
    changes,
    common,
    csv_io,
    errors,
    health,
    history,
    jinja,
    live,
    tables,
)
from app.views.common import home_url


def init_app(app: Flask) -> None:
    """Register the sign-in pages, every table's routes, the CSV pages and errors."""
    common.init_app(app)
    jinja.init_app(app)
    app.register_blueprint(auth.bp)
    tables.init_app(app)
    app.url_map.converters["table_name"] = csv_io.TableName
    app.register_blueprint(csv_io.bp)
    app.register_blueprint(changes.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(history.bp)
    live.init_app(app)
    errors.init_app(app)

    @app.get("/")
    def home() -> Response:
        """Send visitors to the first declared table (the movies)."""
        return redirect(home_url())
