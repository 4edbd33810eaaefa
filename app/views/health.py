"""GET /healthz: does this server reach its database, at the schema it expects?

For load balancers and monitors, polled as often as every second: one small
query, no session, no template. The head revision is read from the migration
scripts once per process.
"""

from __future__ import annotations

from functools import cache

from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import db

bp = Blueprint("health", __name__)


@cache
def head_revisions(directory: str) -> frozenset[str]:
    """The head revision(s) of the migration scripts in `directory`."""
    return frozenset(ScriptDirectory(directory).get_heads())


def _revisions() -> set[str] | None:
    """The revisions the database is at, or None when it does not answer."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            try:
                rows = conn.execute(text("SELECT version_num FROM alembic_version"))
                return {row[0] for row in rows}
            except SQLAlchemyError:  # never migrated: no alembic_version table
                return set()
    except SQLAlchemyError:
        return None


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 {"database": "ok", "migrations": "current"}, or 503 saying what is wrong."""
    heads = head_revisions(current_app.extensions["migrate"].directory)
    found = _revisions()
    if found is None:
        current_app.logger.warning("healthz: the database did not answer")
        return jsonify(database="unreachable", migrations="unknown"), 503
    if found == heads:
        return jsonify(database="ok", migrations="current"), 200
    return jsonify(
        database="ok",
        migrations="not at head",
        revision=sorted(found),
        head=sorted(heads),
    ), 503
