"""Helpers the views share."""

from __future__ import annotations

import threading

from flask import Flask, current_app

from app.crud import CountCache, CrudService
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


def init_app(app: Flask) -> None:
    """Give the app what the services of its requests share: counts, a write lock."""
    app.extensions["reeltable.counts"] = CountCache()
    app.extensions["reeltable.write_lock"] = threading.RLock()
