"""Sign in and sign out (Flask-Login sessions; failed sign-ins limited)."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    session,
)
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from app import signin_limits
from app.accounts import accounts_enabled, authenticate, end_sessions, start_session
from app.models import USER_NAME_MAX
from app.security import local_path
from app.views.common import home_url

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str:
    """Return target if it is a path on this site, else the movie table."""
    return local_path(target) or home_url()


def too_many(wait: int) -> str:
    """The refusal, with the wait in words a person can act on."""
    if wait < 90:
        when = f"{wait} second{'' if wait == 1 else 's'}"
    elif wait < 90 * 60:
        when = f"{round(wait / 60)} minutes"
    else:
        when = f"{round(wait / 3600)} hours"
    return f"Too many sign-in attempts. Try again in {when}."


def _form(target: str, name: str, error: str) -> str:
    """The sign-in form again, with the name kept and what went wrong."""
    return render_template(
        "login.html",
        next=target,
        accounts_on=accounts_enabled(),
        name=name[:USER_NAME_MAX],
        error=error,
    )


@bp.get("/csrf-token")
def csrf_token() -> Response:
    """A fresh CSRF token, for a page whose session changed in another tab."""
    response = make_response(generate_csrf())
    response.mimetype = "text/plain"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/login")
def login() -> str:
    """Show the sign-in form."""
    return render_template(
        "login.html",
        next=request.args.get("next", ""),
        accounts_on=accounts_enabled(),
        name="",
        error=None,
    )


@bp.post("/login")
def sign_in() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Check the name and password; on success start a fresh session.

    Failures are counted (app/signin_limits.py): too many for this name from this
    address, or from this address at all, get 429; many for the name from anywhere
    only make the answer wait, so nobody can lock the owner out.
    """
    name = request.form.get("name", "")
    target = request.form.get("next", "")
    attempt = signin_limits.attempt(name, request.remote_addr)
    wait = signin_limits.retry_after(attempt)
    if wait:
        current_app.logger.warning(
            "sign-in refused for %r from %s: too many failures",
            name[:USER_NAME_MAX],
            attempt.address,
        )
        return _form(target, name, too_many(wait)), 429, {"Retry-After": str(wait)}
    # Before the password is checked: an attacker who hangs up early learns nothing.
    signin_limits.slow_down(attempt)
    user = authenticate(name, request.form.get("password", ""))
    if user is None:
        signin_limits.record_failure(attempt)
        # The name is logged (trimmed) to spot attacks; the password never is.
        current_app.logger.warning("failed sign-in for %r", name[:USER_NAME_MAX])
        return _form(target, name, "Wrong name or password."), 401
    signin_limits.forget_failures(attempt)
    # Session fixation: nothing from before the sign-in (including the CSRF
    # token) survives into the signed-in session.
    session.clear()
    # A permanent cookie, refreshed on every request: it lapses after as many idle
    # days as the server-side session does.
    session.permanent = True
    login_user(start_session(user))
    current_app.logger.info("signed in %r", user.name)
    return redirect(safe_next(target), 303)


@bp.post("/logout")
def logout() -> Response:
    """End the session (on the server too; "everywhere": all of the user's)."""
    if current_user.is_authenticated:
        everywhere = request.form.get("everywhere") == "1"
        end_sessions(current_user, everywhere)
        where = " everywhere" if everywhere else ""
        current_app.logger.info("signed out %r%s", current_user.name, where)
    logout_user()
    session.clear()
    return redirect(home_url(), 303)
