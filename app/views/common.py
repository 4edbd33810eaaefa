"""Helpers the views share."""

from __future__ import annotations

import threading

from flask import Flask, current_app, url_for
from flask_login import current_user

from app.crud import CountCache, CrudService
from app.crud.changes import set_author
from app.db import db
from app.resources import RESOURCES, TABLES


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
    # The change log names who wrote (issue 14): asked only when a write logs.
    app.before_request(lambda: set_author(_signed_in_name))
    app.teardown_request(lambda _exc: set_author(None))


def _signed_in_name() -> str | None:
    """The signed-in user's name, for the change log; None while signed out."""
    return current_user.name if current_user.is_authenticated else None


def home_url() -> str:
    """The first declared table's page: where "/" and signing out lead."""
    return url_for(f"{next(iter(TABLES))}.index")
