"""Helpers the views share."""

from __future__ import annotations

import threading

from flask import Flask, url_for
from flask_login import current_user

from app.crud import CountCache
from app.crud.changes import set_author
from app.resources import TABLES
from app.services import service as service  # the views import it from here


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
