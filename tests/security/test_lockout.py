"""Sign-in limits: per account and address, per address, and a slowdown per account.

Issue 12, item 6 ("Account lockout as a weapon"): ten wrong passwords from anywhere
locked the account for everyone, and each worker counted its own failures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app import signin_limits
from app.db import db
from app.models import SignInFailure
from app.signin_limits import Rate, address_key, parse_rates
from tests.conftest import dispose
from tests.security.conftest import PASSWORD, Visitor, add_user, build_app

A = "198.51.100.1"
B = "203.0.113.9"
T0 = 1_800_000_000


class FakeTime:
    """A clock that moves only when told to, and a sleep that only takes notes."""

    def __init__(self) -> None:
        self.now = float(T0)
        self.slept: list[float] = []

    def time(self) -> float:
        """The fake now."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Note the wait instead of waiting."""
        self.slept.append(seconds)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTime]:
    """Sign-in limits on a fake clock, with no real waiting."""
    fake = FakeTime()
    monkeypatch.setattr(signin_limits, "clock", fake.time)
    monkeypatch.setattr(signin_limits, "sleep", fake.sleep)
    yield fake


def at(app: Flask, address: str) -> Visitor:
    """A visitor coming from this address."""
    visitor = Visitor(app.test_client())
    visitor.client.environ_base["REMOTE_ADDR"] = address
    return visitor


def failures(app: Flask) -> list[tuple[str, str, int]]:
    """The stored failures: (account, address, at), oldest first."""
    with app.app_context():
        rows = db.session.execute(
            sa.select(
                SignInFailure.account, SignInFailure.address, SignInFailure.at
            ).order_by(SignInFailure.id)
        )
        found = [tuple(row) for row in rows]
        db.session.remove()
        return found  # type: ignore[return-value]


# Issue 12, item 6: failures from one address locked the account for everyone.
def test_failures_from_one_address_do_not_lock_the_owner_out(
    app: Flask, fake_time: FakeTime
) -> None:
    add_user(app, "ana")
    add_user(app, "bo")
    attacker = at(app, A)
    statuses = [
        attacker.sign_in("ana", "wrong password").status_code for _ in range(10)
    ]
    assert statuses == [401] * 5 + [429] * 5
    # Refused attempts are not failures: only the five that were checked count.
    assert failures(app) == [("ana", A, T0)] * 5
    # The owner, from their own address, signs in (it was 429).
    assert at(app, B).sign_in("ana", PASSWORD).status_code == 303
    # From the attacker's address even the right password waits...
    response = attacker.sign_in("ANA", PASSWORD)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    body = response.get_data(as_text=True)
    assert "Too many sign-in attempts. Try again in 60 seconds." in body
    assert 'value="ANA"' in body  # the form again, name kept
    # ... but that address may still sign in to another account.
    assert at(app, A).sign_in("bo", PASSWORD).status_code == 303
    assert fake_time.slept == []  # five failures are far from slowing anyone


def test_the_refusal_is_logged_with_the_address(
    app: Flask, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    add_user(app)
    attacker = at(app, A)
    for _ in range(6):
        attacker.sign_in("ana", "wrong password")
    assert f"sign-in refused for 'ana' from {A}: too many failures" in caplog.text


# Issue 12, item 6: each gunicorn worker counted failures in its own memory.
def test_failures_are_shared_by_app_instances_on_one_database(
    database_url: str, tmp_path: Path, fake_time: FakeTime
) -> None:
    workers = [build_app(database_url, tmp_path / f"w{i}") for i in range(2)]
    try:
        add_user(workers[0])
        for attempt in range(5):
            worker = at(workers[attempt % 2], A)
            assert worker.sign_in("ana", "wrong password").status_code == 401
        # A server started afterwards (a fresh process, empty memory) sees them too.
        workers.append(build_app(database_url, tmp_path / "w2"))
        for worker in workers:
            assert at(worker, A).sign_in().status_code == 429
            assert at(worker, B).sign_in().status_code == 303
        assert len(failures(workers[2])) == 5
    finally:
        for worker in workers:
            dispose(worker)


def test_the_pair_reopens_when_its_window_passes(
    app: Flask, fake_time: FakeTime
) -> None:
    add_user(app)
    attacker = at(app, A)
    for _ in range(5):
        attacker.sign_in("ana", "wrong password")
    fake_time.now += 45
    assert attacker.sign_in().headers["Retry-After"] == "15"
    fake_time.now += 15
    assert attacker.sign_in("ana", "wrong password").status_code == 401


def test_fifty_failures_a_day_close_the_pair_for_the_rest_of_the_day(
    app: Flask, fake_time: FakeTime
) -> None:
    add_user(app)
    attacker = at(app, A)
    for _ in range(10):  # five a minute, as fast as the minute limit allows
        for _ in range(5):
            assert attacker.sign_in("ana", "wrong password").status_code == 401
        fake_time.now += 60
    response = attacker.sign_in()
    assert response.status_code == 429
    # Until the first of the fifty is a day old.
    assert response.headers["Retry-After"] == str(86400 - 600)
    assert "Try again in 24 hours." in response.get_data(as_text=True)
    assert at(app, B).sign_in().status_code == 303


def test_an_address_is_limited_across_accounts(app: Flask, fake_time: FakeTime) -> None:
    add_user(app)
    attacker = at(app, A)
    for i in range(20):
        assert attacker.sign_in(f"guess{i}", "wrong password").status_code == 401
    response = attacker.sign_in("someone-else", "wrong password")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert at(app, B).sign_in().status_code == 303
    assert len(failures(app)) == 20


def test_a_sign_in_clears_that_pair_only(app: Flask, fake_time: FakeTime) -> None:
    add_user(app)
    for _ in range(4):
        at(app, A).sign_in("ana", "wrong password")
        at(app, B).sign_in("ana", "wrong password")
    assert at(app, A).sign_in().status_code == 303
    assert failures(app) == [("ana", B, T0)] * 4
    # A starts afresh: five more failures before its 429.
    attacker = at(app, A)
    statuses = [attacker.sign_in("ana", "wrong password").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


# Issue 12, item 6: the per-account limit must slow guessing, never lock out.
def test_many_failures_for_an_account_slow_it_down_up_to_a_cap(
    app: Flask, fake_time: FakeTime
) -> None:
    add_user(app)
    waits = []
    # Five addresses, each within its own limits, guess at one account.
    for n in range(16):
        guesser = at(app, f"192.0.2.{n // 5 + 1}")
        fake_time.slept.clear()
        assert guesser.sign_in("ana", "wrong password").status_code == 401
        waits.append(sum(fake_time.slept))
    assert waits == [0.0] * 10 + [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]
    # The owner waits too (the password is checked after the wait), but gets in.
    fake_time.slept.clear()
    assert at(app, B).sign_in("Ana", PASSWORD).status_code == 303
    assert fake_time.slept == [3.0]
    # Other accounts are not slowed.
    fake_time.slept.clear()
    at(app, B).sign_in("bo", "wrong password")
    assert fake_time.slept == []
    # Ten minutes without failures and the account is quick again.
    fake_time.now += 600
    assert at(app, B).sign_in().status_code == 303
    assert fake_time.slept == []


def test_the_slowdown_is_computed_from_the_settings(
    database_url: str, tmp_path: Path, fake_time: FakeTime
) -> None:
    app = build_app(
        database_url,
        tmp_path / "i",
        LOGIN_SLOWDOWN_AFTER="3 per hour",
        LOGIN_SLOWDOWN_MAX=0.5,
    )
    try:
        with app.app_context():
            found = signin_limits.limits()
        assert found.slowdown_after == Rate(3, 3600)
        waits = [signin_limits.delay_for(n, found) for n in range(7)]
        assert waits == [0.0, 0.0, 0.0, 0.25, 0.5, 0.5, 0.5]
        add_user(app)
        for n in range(4):
            at(app, f"192.0.2.{n}").sign_in("ana", "wrong password")
        assert fake_time.slept == [0.25]
    finally:
        dispose(app)


def test_failures_past_every_window_are_deleted(
    app: Flask, fake_time: FakeTime
) -> None:
    add_user(app)
    at(app, A).sign_in("ana", "wrong password")
    fake_time.now += 3600
    at(app, B).sign_in("bo", "wrong password")
    fake_time.now += 86400 - 3600
    at(app, B).sign_in("cy", "wrong password")
    assert failures(app) == [("bo", B, T0 + 3600), ("cy", B, T0 + 86400)]


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("198.51.100.1", "198.51.100.1"),
        ("2001:db8:0:1:aaaa::1", "2001:db8:0:1::/64"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("not an address", "not an address"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_addresses_are_counted_ipv6_by_its_64(remote: str | None, key: str) -> None:
    assert address_key(remote) == key


def test_one_ipv6_64_is_one_address(app: Flask, fake_time: FakeTime) -> None:
    add_user(app)
    for n in range(5):
        at(app, f"2001:db8::{n + 1}").sign_in("ana", "wrong password")
    assert at(app, "2001:db8::99").sign_in().status_code == 429
    assert at(app, "2001:db8:0:1::1").sign_in().status_code == 303


@pytest.mark.parametrize(
    ("text", "rates"),
    [
        ("5 per minute;50 per day", (Rate(5, 60), Rate(50, 86400))),
        ("10 per 10 minutes", (Rate(10, 600),)),
        ("3/hour, 7 PER 2 Days;", (Rate(3, 3600), Rate(7, 172800))),
        ("", ()),
    ],
)
def test_rates_are_read_in_flask_limiters_notation(
    text: str, rates: tuple[Rate, ...]
) -> None:
    assert parse_rates(text) == rates


@pytest.mark.parametrize("text", ["5", "0 per minute", "5 per fortnight", "x/day"])
def test_a_bad_rate_stops_the_app_from_starting(
    database_url: str, tmp_path: Path, text: str
) -> None:
    with pytest.raises(ValueError, match="Not a rate"):
        build_app(database_url, tmp_path / "i", LOGIN_LIMIT_PER_ADDRESS=text)


def test_the_old_per_account_setting_is_reported(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    app = build_app(
        database_url, tmp_path / "i", LOGIN_LIMIT_PER_ACCOUNT="5 per minute"
    )
    dispose(app)
    assert "LOGIN_LIMIT_PER_ACCOUNT is no longer read" in caplog.text
