"""reeltable: a live, inline-editable database of movies and their ratings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(
    test_config: dict[str, Any] | None = None, instance_path: str | None = None
) -> Flask:
    """Build the Flask app: config, extensions, blueprints and CLI commands."""
    app = Flask(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )

    from app import accounts, cli, compression, htmx, security, views
    from app.config import configure
    from app.db import db, migrate

    configure(app, test_config)
    # First: after-request hooks run in reverse, so compression sees the final body.
    compression.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    htmx.init_app(app)
    security.init_app(app)
    accounts.init_app(app)
    views.init_app(app)
    cli.init_app(app)
    return app
