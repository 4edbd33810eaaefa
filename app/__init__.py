"""reeltable: a live, inline-editable database of movies and their ratings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def _shipped(name: str) -> str:
    """Where templates/, static/ or migrations/ are: in the package, or the checkout.

    A wheel carries them inside the package (pyproject.toml); a checkout, and an
    editable install of it, keeps them at its top.
    """
    inside = Path(__file__).resolve().parent / name
    return str(inside if inside.is_dir() else ROOT / name)


def create_app(
    test_config: dict[str, Any] | None = None, instance_path: str | None = None
) -> Flask:
    """Build the Flask app: config, extensions, blueprints and CLI commands."""
    app = Flask(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=_shipped("templates"),
        static_folder=_shipped("static"),
    )

    from app import accounts, cli, compression, htmx, security, views
    from app.config import configure
    from app.db import db, migrate

    configure(app, test_config)
    # First: after-request hooks run in reverse, so compression sees the final body.
    compression.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=_shipped("migrations"))
    htmx.init_app(app)
    security.init_app(app)
    accounts.init_app(app)
    views.init_app(app)
    cli.init_app(app)
    return app
