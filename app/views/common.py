"""Helpers the views share."""

from __future__ import annotations

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
    )


def init_app(app: Flask) -> None:
    """Give the app its count cache, shared by the services of its requests."""
    app.extensions["reeltable.counts"] = CountCache()
