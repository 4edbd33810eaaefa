"""Sign in and sign out (Flask-Login sessions, rate-limited sign-in)."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from app.accounts import (
    accounts_enabled,
    authenticate,
    end_sessions,
    limiter,
    start_session,
)
from app.models import USER_NAME_MAX
from app.security import local_path

bp = Blueprint("auth", __name__)

TOO_MANY = "Too many sign-in attempts. Wait a minute and try again."


def safe_next(target: str | None) -> str:
    """Return target if it is a path on this site, else the movie table."""
    return local_path(target) or url_for("movies.index")


def _account_key() -> str:
    """Rate-limit key for the account being tried (case-insensitive name)."""
    name = request.form.get("name", "").strip().lower()[:USER_NAME_MAX]
    return "account:" + name


def _failed(response: Response) -> bool:
    """Only failed attempts count against the limits."""
    return response.status_code != 303


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
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    key_func=get_remote_address,
    deduct_when=_failed,
    error_message=TOO_MANY,
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_account_key,
    deduct_when=_failed,
    error_message=TOO_MANY,
)
def sign_in() -> Response | tuple[str, int]:
    """Check the name and password; on success start a fresh session."""
    name = request.form.get("name", "")
    target = request.form.get("next", "")
    user = authenticate(name, request.form.get("password", ""))
    if user is None:
        # The name is logged (trimmed) to spot attacks; the password never is.
        current_app.logger.warning("failed sign-in for %r", name[:USER_NAME_MAX])
        return render_template(
            "login.html",
            next=target,
            accounts_on=accounts_enabled(),
            name=name[:USER_NAME_MAX],
            error="Wrong name or password.",
        ), 401
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
    return redirect(url_for("movies.index"), 303)
