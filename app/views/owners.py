"""Who owns the undo and import tokens a request makes or uses (issue 12)."""

from __future__ import annotations

import secrets

from flask import session
from flask_login import current_user

# The Flask session key of a browser's random owner id (used while signed out).
BROWSER_OWNER = "owner"


def current_owner() -> str:
    """Name the owner of this request's tokens: "user:<id>", else "browser:<id>".

    A signed-in user owns tokens as a user, not as one sign-in: the same person
    in a second tab or on a second device, or after signing in again, can still
    undo a delete and commit an import they started, and nobody else can. While
    signed out (accounts off), a random id kept in the browser's signed session
    cookie stands for the person; another browser cannot forge it.
    """
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    browser = session.setdefault(BROWSER_OWNER, secrets.token_urlsafe(16))
    return f"browser:{browser}"
