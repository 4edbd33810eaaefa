"""Helpers the views share: building services and rendering lists."""

from __future__ import annotations

from flask import current_app, render_template, request

from app.crud import CrudService, Page
from app.db import db
from app.htmx import is_partial
from app.resources import RESOURCES


def service(name: str) -> CrudService:
    """Return the CRUD service for a declared table, bound to this request's session."""
    return CrudService(
        RESOURCES[name],
        db.session,
        page_size=current_app.config["PAGE_SIZE"],
        max_page_size=current_app.config["MAX_PAGE_SIZE"],
    )


def list_page(name: str) -> Page:
    """Parse the query string and return the requested page (QueryError -> 400)."""
    svc = service(name)
    return svc.list(svc.parse_query(request.args))


def render_view(page_template: str, partial_template: str, **context: object) -> str:
    """Render the full page, or just its partial for an htmx request."""
    template = partial_template if is_partial(request) else page_template
    return render_template(template, **context)
