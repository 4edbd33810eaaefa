"""The CRUD service of a declared table, as this app configures it.

Views and import jobs (app/imports/job.py) both use it; it needs an app
context, not a request.
"""

from __future__ import annotations

from flask import current_app

from app.crud import CrudService
from app.db import db
from app.resources import RESOURCES


def service(name: str) -> CrudService:
    """Return the CRUD service for a declared table, bound to this request's session."""
    return CrudService(
        RESOURCES[name],
        db.session,
        page_size=current_app.config["PAGE_SIZE"],
        max_page_size=current_app.config["MAX_PAGE_SIZE"],
        counts=current_app.extensions["reeltable.counts"],
        write_lock=current_app.extensions["reeltable.write_lock"],
    )
