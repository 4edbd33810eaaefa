"""Accounts: users, password hashing, Flask-Login sessions, CLI.

Accounts are off until the first user is created with `flask --app app users
create NAME`; from then on anyone may read and only signed-in users may write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
import time
from functools import cache

import click
import sqlalchemy as sa
from flask import Flask, current_app, g
from flask.cli import AppGroup
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from werkzeug.security import check_password_hash, generate_password_hash

from app import signin_limits
from app.crud import FORBIDDEN_CHARS, WriteBusy
from app.crud.tx import side_write
from app.db import db
from app.models import USER_NAME_MAX, User, UserSession

PASSWORD_MIN = 8
# scrypt's cost grows with the input; nobody needs a longer passphrase than this.
PASSWORD_MAX = 1024

login_manager = LoginManager()


# A session's last use is written at most this often (seconds): enough to expire
# idle sessions by the day, without a write on every request.
TOUCH_EVERY = 300


class Account(UserMixin):
    """The signed-in user as Flask-Login sees it (a detached snapshot of a User)."""

    def __init__(self, user: User, session_id: str) -> None:
        self.id = user.id
        self.name = user.name
        self.session_id = session_id
        self._stamp = password_stamp(user.password_hash)

    def get_id(self) -> str:
        """Session id: the user, a stamp that changes with the password, the sign-in."""
        return f"{self.id}:{self._stamp}:{self.session_id}"


def idle_limit() -> int:
    """Seconds a session may go unused before it ends (SESSION_IDLE_DAYS)."""
    return int(float(current_app.config["SESSION_IDLE_DAYS"]) * 86400)


def start_session(user: User) -> Account:
    """Record a new sign-in on the server and return the account it signs in.

    Raises WriteBusy (a 503 with Retry-After) while an import writes.
    """
    now = int(time.time())
    session_id = secrets.token_urlsafe(32)
    with side_write(db.session()) as open_:
        if not open_:
            raise WriteBusy()
        # Sessions that went idle are swept here rather than by a scheduled job.
        db.session.execute(
            sa.delete(UserSession).where(UserSession.last_seen < now - idle_limit())
        )
        db.session.add(
            UserSession(id=session_id, user_id=user.id, created_at=now, last_seen=now)
        )
        db.session.commit()
    return Account(user, session_id)


def end_sessions(account: Account, everywhere: bool = False) -> None:
    """End this sign-in on the server, or every sign-in of the user (everywhere).

    Raises WriteBusy (a 503 with Retry-After) while an import writes.
    """
    stmt = sa.delete(UserSession).where(UserSession.user_id == account.id)
    if not everywhere:
        stmt = stmt.where(UserSession.id == account.session_id)
    with side_write(db.session()) as open_:
        if not open_:
            raise WriteBusy()
        db.session.execute(stmt)
        db.session.commit()


def _touch(sign_in: str, now: int, expired: bool) -> None:
    """Note a sign-in's use (or end an expired one), if the database lets us now.

    Best effort: every request of a signed-in person may come here, reads
    included, and a read must not wait for an import or fail because another
    writer got in first. A skipped touch is retried on the next request.
    """
    mine = UserSession.id == sign_in
    statement: sa.Executable = (
        sa.delete(UserSession).where(mine)
        if expired
        else sa.update(UserSession).where(mine).values(last_seen=now)
    )
    try:
        with side_write(db.session()) as open_:
            if open_:
                db.session.execute(statement)
                db.session.commit()
    except OperationalError:
        db.session.rollback()


def password_stamp(password_hash: str) -> str:
    """A short digest of the hash: changing the password signs out old sessions."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


# Asked on every write: run on the session's connection, as a Core statement.
# Through the ORM's execute it took 1.5-2x the CPU (190-220 against 100-150 us a
# call, measured in process on PostgreSQL), in every single-cell edit (W5 of
# `python -m bench`).
_ANY_USER = sa.select(User.__table__.c.id).limit(1)


def accounts_enabled() -> bool:
    """True once at least one user exists (cached for the request)."""
    if "accounts_enabled" not in g:
        found = db.session.connection().execute(_ANY_USER).first()
        g.accounts_enabled = found is not None
    return bool(g.accounts_enabled)


def clean_name(raw: str) -> str:
    """Validate a user name; raise ValueError with a message."""
    name = (raw or "").strip()
    if not name:
        raise ValueError("The name is required.")
    if len(name) > USER_NAME_MAX:
        raise ValueError(f"The name must be at most {USER_NAME_MAX} characters.")
    if FORBIDDEN_CHARS.search(name):
        raise ValueError("The name contains characters that are not allowed.")
    return name


def find_user(name: str) -> User | None:
    """Return the user with this name (case-insensitive), or None."""
    stmt = sa.select(User).where(sa.func.lower(User.name) == name.strip().lower())
    return db.session.execute(stmt).scalar_one_or_none()


def create_user(name: str, password: str) -> User:
    """Add a user; raise ValueError if the name is taken or the password is weak."""
    name = clean_name(name)
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValueError(
            f"The password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters."
        )
    if find_user(name) is not None:
        raise ValueError(f"There is already a user called {name!r}.")
    user = User(name=name, password_hash=generate_password_hash(password))
    db.session.add(user)
    db.session.commit()
    return user


@cache
def _dummy_hash() -> str:
    """A hash to check when the name is unknown, so a miss costs a hit's time."""
    return generate_password_hash("not a real password")


def authenticate(name: str, password: str) -> User | None:
    """Return the user if the name and password match, else None (constant-ish time)."""
    user = find_user(name) if name and len(name) <= USER_NAME_MAX else None
    if not password or len(password) > PASSWORD_MAX:
        return None
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


@login_manager.user_loader
def load_account(session_id: str) -> Account | None:
    """Load the signed-in account, if its sign-in is still open on the server.

    A copied cookie is worth nothing once its sign-in was ended (sign-out, "Sign
    out everywhere", a password change) or went unused for SESSION_IDLE_DAYS.
    """
    user_id, _, rest = session_id.partition(":")
    stamp, _, sign_in = rest.partition(":")
    if not user_id.isdigit() or len(user_id) > 18 or not sign_in:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not hmac.compare_digest(
        stamp, password_stamp(user.password_hash)
    ):
        return None
    entry = db.session.get(UserSession, sign_in)
    if entry is None or entry.user_id != user.id:
        return None
    now = int(time.time())
    account = Account(user, sign_in)
    if now - entry.last_seen > idle_limit():
        _touch(sign_in, now, expired=True)
        return None
    if now - entry.last_seen > TOUCH_EVERY:
        _touch(sign_in, now, expired=False)
    return account


# ---------------------------------------------------------------- CLI

users_cli = AppGroup("users", help="Manage accounts (the first one turns them on).")


@users_cli.command("create")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (for scripts) instead of asking.",
)
def create_command(name: str, password_stdin: bool) -> None:
    """Create a user; prompts for the password without echoing it."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(name, password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created user {user.name!r}. Only signed-in users can now write.")


@users_cli.command("list")
def list_command() -> None:
    """List the users."""
    names = db.session.execute(sa.select(User.name).order_by(User.id)).scalars()
    for name in names:
        click.echo(name)


@users_cli.command("delete")
@click.argument("name")
def delete_command(name: str) -> None:
    """Delete a user; deleting the last one turns accounts off (open editing)."""
    user = find_user(name)
    if user is None:
        raise click.ClickException(f"There is no user called {name!r}.")
    db.session.delete(user)
    db.session.commit()
    left = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    click.echo(f"Deleted user {user.name!r}.")
    if not left:
        click.echo("No users left: anyone can write again.")


def signed_in_name() -> str | None:
    """The signed-in person's name, or None (signed out, accounts off)."""
    try:
        if current_user.is_authenticated:
            return str(current_user.name)
    except SQLAlchemyError:
        pass  # an error page while the database is down: nobody
    return None


def init_app(app: Flask) -> None:
    """Wire Flask-Login, the sign-in limits and the CLI (the pages: app.views.auth)."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    signin_limits.init_app(app)
    app.cli.add_command(users_cli)
