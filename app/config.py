"""Configuration: safe defaults, then instance/config.py, then environment variables."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def defaults(instance_path: str) -> dict[str, Any]:
    """Return the built-in defaults; every value is safe for a personal machine."""
    return {
        "SQLALCHEMY_DATABASE_URI": "sqlite:///"
        + str(Path(instance_path) / "reeltable.sqlite3"),
        "PAGE_SIZE": DEFAULT_PAGE_SIZE,
        "MAX_PAGE_SIZE": MAX_PAGE_SIZE,
        # Bigger than any form we take; the CSV import raises it for its own route.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # The CSV import's upload limit (its route alone; the file is streamed to
        # disk and parsed line by line, so this bounds disk use, not memory).
        "IMPORT_MAX_BYTES": 64 * 1024 * 1024,
        # An upload up to this size is checked and imported within its request
        # (a fraction of a second); a bigger one by a job in a child process,
        # while the page shows its progress (app/imports/job.py, issue 11).
        "IMPORT_INLINE_BYTES": 256 * 1024,
        # How long a check or import job's claim on an upload lasts without being
        # renewed (seconds): past it, a job presumed dead (kill -9, a lost server)
        # lets another server import the file (app/imports/store.py, issue 15).
        "IMPORT_LEASE_SECONDS": 15,
        # How long the database reads of a page or fragment (a GET) may take in
        # all, in ms; past it the view answers 503 (app/db.py). 0 turns the limit
        # off. Writes, CSV downloads and imports are not bounded.
        "READ_TIMEOUT_MS": 5000,
        # Hardening (app/security.py, app/accounts.py, app/signin_limits.py).
        "READ_ONLY": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # False still marks the cookie Secure on any request served over HTTPS.
        "SESSION_COOKIE_SECURE": False,
        # Number of reverse proxies whose X-Forwarded-* headers to trust (ProxyFix).
        "TRUST_PROXY": 0,
        # The host names this server answers to (Flask 3.1); any other Host gets a
        # 400, so a DNS-rebinding page cannot pass for this site. HOST (where
        # `make run` listens) is added in configure().
        "TRUSTED_HOSTS": ["127.0.0.1", "localhost"],
        "HOST": "127.0.0.1",
        # Sign-in limits (app/signin_limits.py), counting failed attempts only, in
        # the database, so every worker and server shares the counts. Over a
        # limit, that account and address pair (or that address) gets 429.
        "LOGIN_LIMIT_PER_ACCOUNT_ADDRESS": "5 per minute;50 per day",
        "LOGIN_LIMIT_PER_ADDRESS": "20 per minute;200 per day",
        # An account's failures from every address never lock it: past this many,
        # each sign-in to it waits first (1/4 s, doubling with every further
        # failure, at most LOGIN_SLOWDOWN_MAX seconds), its owner's included.
        "LOGIN_SLOWDOWN_AFTER": "10 per 10 minutes",
        "LOGIN_SLOWDOWN_MAX": 3.0,
        # A sign-in unused this long ends (on the server, and its cookie lapses).
        "SESSION_IDLE_DAYS": 14,
        # How long the change log keeps a change (issue 14): `flask changes
        # prune` without --older-than deletes older ones. 0 keeps them all.
        "CHANGES_KEEP_DAYS": 90,
    }


def normalise_database_url(url: str) -> str:
    """Point plain postgres:// URLs (as Heroku-style hosts give them) at psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def env_overrides(environ: os._Environ[str] | dict[str, str]) -> dict[str, Any]:
    """Read the environment variables we honour into config keys."""
    found: dict[str, Any] = {}
    if environ.get("DATABASE_URL"):
        found["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
            environ["DATABASE_URL"]
        )
    if environ.get("SECRET_KEY"):
        found["SECRET_KEY"] = environ["SECRET_KEY"]
    if environ.get("PAGE_SIZE"):
        found["PAGE_SIZE"] = int(environ["PAGE_SIZE"])
    if environ.get("READ_TIMEOUT_MS"):
        found["READ_TIMEOUT_MS"] = int(environ["READ_TIMEOUT_MS"])
    for flag in ("READ_ONLY", "SESSION_COOKIE_SECURE"):
        if environ.get(flag):
            found[flag] = environ[flag].strip().lower() in TRUE_WORDS
    if environ.get("TRUST_PROXY"):
        found["TRUST_PROXY"] = int(environ["TRUST_PROXY"])
    if environ.get("SESSION_IDLE_DAYS"):
        found["SESSION_IDLE_DAYS"] = float(environ["SESSION_IDLE_DAYS"])
    if environ.get("CHANGES_KEEP_DAYS"):
        found["CHANGES_KEEP_DAYS"] = float(environ["CHANGES_KEEP_DAYS"])
    if environ.get("TRUSTED_HOSTS"):
        found["TRUSTED_HOSTS"] = [
            name.strip() for name in environ["TRUSTED_HOSTS"].split(",") if name.strip()
        ]
    if environ.get("HOST"):
        found["HOST"] = environ["HOST"].strip()
    return found


def instance_secret_key(instance_path: str) -> str:
    """Return the instance's secret key, generating and storing it on first use."""
    path = Path(instance_path) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        # O_EXCL so two workers starting together agree on one key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


def configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Apply defaults, instance config, environment, then test config, in that order."""
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(defaults(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_mapping(env_overrides(os.environ))
    if test_config:
        app.config.from_mapping(test_config)
    if app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
            app.config["SQLALCHEMY_DATABASE_URI"]
        )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(
        days=float(app.config["SESSION_IDLE_DAYS"])
    )
    trusted = app.config.get("TRUSTED_HOSTS")
    host = app.config.get("HOST")
    # Listening on every address means being reached by any name: the names
    # must then be listed in TRUSTED_HOSTS (0.0.0.0 is no Host a browser sends).
    listening_everywhere = host in ("0.0.0.0", "::")
    if (
        trusted is not None
        and host
        and not listening_everywhere
        and host not in trusted
    ):
        app.config["TRUSTED_HOSTS"] = [*trusted, host]
