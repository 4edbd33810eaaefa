"""Accounts: the users CLI, sign in and out, rate limits, fixation, cookie flags."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.config import env_overrides
from app.db import db
from app.models import User
from app.security import can_write
from tests.conftest import dispose
from tests.security.conftest import (
    PASSWORD,
    Visitor,
    add_probes,
    add_user,
    build_app,
    snapshot,
)


def users(app: Flask) -> list[User]:
    """Every stored user."""
    with app.app_context():
        found = list(db.session.execute(db.select(User).order_by(User.id)).scalars())
        db.session.remove()
        return found


# ---------------------------------------------------------------- CLI


def test_users_create_prompts_hidden_and_confirms(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "Ana"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "Created user 'Ana'" in result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    (user,) = users(app)
    assert user.name == "Ana"
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash


def test_users_create_asks_again_when_confirmation_differs(app: Flask) -> None:
    runner = app.test_cli_runner()
    typed = f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n"
    result = runner.invoke(args=["users", "create", "ana"], input=typed)
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert len(users(app)) == 1


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("ana", "short", "The password must be 8 to 1024 characters."),
        ("ana", "x" * 1025, "The password must be 8 to 1024 characters."),
        ("   ", PASSWORD, "The name is required."),
        ("a" * 81, PASSWORD, "The name must be at most 80 characters."),
        ("bad\x07name", PASSWORD, "The name contains characters that are not allowed."),
    ],
)
def test_users_create_refuses_bad_input(
    app: Flask, name: str, password: str, message: str
) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", name, "--password-stdin"], input=password + "\n"
    )
    assert result.exit_code == 1
    assert message in result.output
    assert users(app) == []


def test_users_create_refuses_a_taken_name_in_any_case(app: Flask) -> None:
    add_user(app, "Ana")
    result = app.test_cli_runner().invoke(
        args=["users", "create", "ANA", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 1
    assert "There is already a user called 'ANA'." in result.output
    assert len(users(app)) == 1


def test_users_list_and_delete_turn_accounts_off(app: Flask) -> None:
    add_user(app, "ana")
    add_user(app, "bo")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "list"]).output == "ana\nbo\n"
    result = runner.invoke(args=["users", "delete", "ANA"])
    assert result.output == "Deleted user 'ana'.\n"
    result = runner.invoke(args=["users", "delete", "bo"])
    assert "No users left: anyone can write again." in result.output
    result = runner.invoke(args=["users", "delete", "cy"])
    assert result.exit_code == 1
    assert "There is no user called 'cy'." in result.output


# ---------------------------------------------------------------- sign in / out


def header(client: FlaskClient, url: str = "/ratings") -> str:
    """The page header's HTML."""
    page = client.get(url).get_data(as_text=True)
    return page.split("<header", 1)[1].split("</header>", 1)[0]


def test_header_shows_sign_in_only_when_accounts_exist(
    app: Flask, client: FlaskClient
) -> None:
    assert "Sign in" not in header(client)
    add_user(app)
    assert '<a href="/login?next=/ratings?">Sign in</a>' in header(client)


def test_sign_in_and_out(app: Flask, visitor: Visitor) -> None:
    add_user(app, "Ana")
    response = visitor.sign_in("ana")  # names match case-insensitively
    assert response.status_code == 303
    assert response.headers["Location"] == "/movies"
    page = visitor.client.get("/login").get_data(as_text=True)
    assert "You are signed in as <strong>Ana</strong>" in page
    assert ">Sign out</button>" in page
    response = visitor.send("POST", "/logout")
    assert response.status_code == 303
    page = visitor.client.get("/login").get_data(as_text=True)
    assert ">Sign in</a>" in page
    assert "Sign out" not in page


@pytest.mark.parametrize(
    ("name", "password"),
    [("ana", "wrong password"), ("nobody", PASSWORD), ("", ""), ("ana", "")],
)
def test_wrong_credentials_are_refused(
    app: Flask, visitor: Visitor, name: str, password: str
) -> None:
    add_user(app)
    response = visitor.sign_in(name, password)
    assert response.status_code == 401
    assert "Wrong name or password." in response.get_data(as_text=True)
    with visitor.client.session_transaction() as session:
        assert "_user_id" not in session


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ratings?sort=-rating", "/ratings?sort=-rating"),
        ("//evil.example/x", "/movies"),
        ("https://evil.example/", "/movies"),
        ("/\\evil.example", "/movies"),
        ("javascript:alert(1)", "/movies"),
        ("", "/movies"),
    ],
)
def test_sign_in_redirects_only_within_the_site(
    app: Flask, visitor: Visitor, target: str, expected: str
) -> None:
    add_user(app)
    response = visitor.client.post(
        "/login",
        data={
            "name": "ana",
            "password": PASSWORD,
            "next": target,
            "csrf_token": visitor.token(),
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == expected


def test_sign_in_needs_a_csrf_token(app: Flask, client: FlaskClient) -> None:
    add_user(app)
    response = client.post("/login", data={"name": "ana", "password": PASSWORD})
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_sign_out_needs_a_csrf_token(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    visitor.sign_in()
    assert visitor.send("POST", "/logout", token=None).status_code == 400
    with visitor.client.session_transaction() as session:
        assert session["_user_id"].startswith("1:")


def test_session_fixation_new_session_on_sign_in(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    old_token = visitor.token()
    with visitor.client.session_transaction() as session:
        session["planted"] = "by an attacker"
    old_cookie = visitor.client.get_cookie("session")
    assert old_cookie is not None
    assert visitor.sign_in().status_code == 303
    new_cookie = visitor.client.get_cookie("session")
    assert new_cookie is not None and new_cookie.value != old_cookie.value
    with visitor.client.session_transaction() as session:
        assert "planted" not in session
        assert "csrf_token" not in session
    # The token from before the sign-in no longer works.
    response = visitor.send("POST", "/logout", token=old_token)
    assert response.status_code == 400
    assert visitor.token() != old_token


def test_changing_the_password_ends_other_sessions(
    app: Flask, visitor: Visitor
) -> None:
    add_user(app)
    visitor.sign_in()
    with app.app_context():
        user = db.session.get(User, 1)
        user.password_hash = "scrypt:1024:8:1$changed$00"
        db.session.commit()
    assert visitor.send("POST", "/_probe").status_code == 403


def test_password_is_never_logged(
    app: Flask, visitor: Visitor, caplog: pytest.LogCaptureFixture
) -> None:
    add_user(app)
    caplog.set_level(logging.DEBUG)
    visitor.sign_in("ana", "wrong-but-secret")
    visitor.sign_in("ana", PASSWORD)
    assert "failed sign-in for 'ana'" in caplog.text
    assert "signed in 'ana'" in caplog.text
    assert "wrong-but-secret" not in caplog.text
    assert PASSWORD not in caplog.text


# ---------------------------------------------------------------- rate limits


def test_sign_in_limited_per_account_and_address(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    add_user(app, "bo")
    for _ in range(5):
        assert visitor.sign_in("ana", "wrong password").status_code == 401
    # The right password does not help now: this address is cooling down for this
    # account (other addresses are not: tests/security/test_lockout.py).
    response = visitor.sign_in("ANA", PASSWORD)
    assert response.status_code == 429
    assert "Too many sign-in attempts." in response.get_data(as_text=True)
    # Another account from the same address is still open.
    assert visitor.sign_in("bo", PASSWORD).status_code == 303


def test_sign_in_limited_per_address(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    for i in range(20):
        assert visitor.sign_in(f"guess{i}", "wrong password").status_code == 401
    assert visitor.sign_in("ana", PASSWORD).status_code == 429
    # A different address is not affected.
    other = Visitor(app.test_client())
    other.client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert other.sign_in("ana", PASSWORD).status_code == 303


def test_successful_sign_ins_do_not_count(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    for _ in range(8):
        assert visitor.sign_in().status_code == 303


# ---------------------------------------------------------------- cookies


def test_session_cookie_flags_over_http(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    response = visitor.sign_in()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_secure_over_https(app: Flask) -> None:
    add_user(app)
    visitor = Visitor(app.test_client())
    visitor.client.environ_base["wsgi.url_scheme"] = "https"
    response = visitor.client.get("/login", base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]


def test_session_cookie_secure_behind_a_trusted_proxy(
    database_url: str, tmp_path: Path
) -> None:
    app = build_app(database_url, tmp_path / "i", TRUST_PROXY=1)
    response = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["Set-Cookie"]
    dispose(app)


def test_session_cookie_secure_when_configured(
    database_url: str, tmp_path: Path
) -> None:
    app = build_app(database_url, tmp_path / "i", SESSION_COOKIE_SECURE=True)
    response = app.test_client().get("/login")
    assert "Secure" in response.headers["Set-Cookie"]
    dispose(app)


# ---------------------------------------------------------------- who may write


def test_accounts_off_anyone_may_write(app: Flask, visitor: Visitor) -> None:
    assert visitor.send("POST", "/_probe").status_code == 200
    assert len(snapshot(app)["movies"]) == 1


def test_accounts_on_only_signed_in_users_write(app: Flask, visitor: Visitor) -> None:
    add_user(app)
    before = snapshot(app)
    response = visitor.send("POST", "/_probe")
    assert response.status_code == 403
    assert "Sign in to make changes." in response.get_data(as_text=True)
    assert snapshot(app) == before
    visitor.sign_in()
    assert visitor.send("POST", "/_probe").status_code == 200
    assert len(snapshot(app)["movies"]) == 1


def test_read_only_refuses_writes_even_signed_in(
    database_url: str, tmp_path: Path
) -> None:
    app = build_app(database_url, tmp_path / "i", READ_ONLY=True)
    add_probes(app)
    add_user(app)
    visitor = Visitor(app.test_client())
    assert visitor.sign_in().status_code == 303  # signing in is still allowed
    response = visitor.send("POST", "/_probe", htmx=True)
    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "This catalogue is read-only" in body
    assert "<html" not in body  # a fragment for htmx
    assert snapshot(app)["movies"] == []
    dispose(app)


def can_write_for(client: FlaskClient) -> bool:
    """can_write() as seen during a request from this client."""
    with client:
        client.get("/login")
        return can_write()


def test_can_write_flag_follows_the_rules(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    assert can_write_for(app.test_client()) is True
    add_user(app)
    assert can_write_for(app.test_client()) is False
    visitor = Visitor(app.test_client())
    visitor.sign_in()
    assert can_write_for(visitor.client) is True
    read_only = build_app(database_url, tmp_path / "ro", READ_ONLY=True)
    assert can_write_for(read_only.test_client()) is False
    dispose(read_only)


# ---------------------------------------------------------------- the rating form


def test_rating_author_defaults_to_the_signed_in_user(
    app: Flask, visitor: Visitor
) -> None:
    from tests.security.test_corpus import seed

    movie = seed(app)["movie"]
    add_user(app, "Ana Lima")
    visitor.sign_in("ana lima")
    form = visitor.send("GET", f"/movies/{movie}/ratings", htmx=True)
    assert 'name="author" value="Ana Lima"' in form.get_data(as_text=True)
    added = visitor.send(
        "POST",
        f"/movies/{movie}/ratings",
        htmx=True,
        data={"rating": "8", "author": "Ana Lima"},
    )
    assert added.status_code == 200
    # The fresh form after an add keeps the default too.
    assert 'name="author" value="Ana Lima"' in added.get_data(as_text=True)


def test_rating_author_is_blank_without_accounts(app: Flask, visitor: Visitor) -> None:
    from tests.security.test_corpus import seed

    movie = seed(app)["movie"]
    form = visitor.send("GET", f"/movies/{movie}/ratings", htmx=True)
    assert 'name="author" value=""' in form.get_data(as_text=True)


# ---------------------------------------------------------------- configuration


def test_hardening_settings_from_the_environment() -> None:
    found = env_overrides(
        {
            "READ_ONLY": "1",
            "SESSION_COOKIE_SECURE": "true",
            "TRUST_PROXY": "1",
        }
    )
    assert found == {
        "READ_ONLY": True,
        "SESSION_COOKIE_SECURE": True,
        "TRUST_PROXY": 1,
    }
    assert env_overrides({"READ_ONLY": "0"}) == {"READ_ONLY": False}
