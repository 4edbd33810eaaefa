"""Blueprints: thin views that parse the request, call the service and render."""

from __future__ import annotations

from flask import Flask, redirect
from werkzeug.wrappers import Response

from app.views import (
    auth,
    changes,
    common,
    csv,
    errors,
    health,
    history,
    imports,
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
    app.url_map.converters["table_name"] = csv.TableName
    # One blueprint, "csv_io": the downloads' routes and the import pages'.
    assert imports.bp is csv.bp
    app.register_blueprint(csv.bp)
    app.register_blueprint(changes.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(history.bp)
    live.init_app(app)
    errors.init_app(app)

    @app.get("/")
    def home() -> Response:
        """Send visitors to the first declared table (the movies)."""
        return redirect(home_url())
