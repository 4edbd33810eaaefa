"""Limit failed sign-ins, counted in the database that every worker and server shares.

Only failures count. Too many for one account from one address
(LOGIN_LIMIT_PER_ACCOUNT_ADDRESS), or for any accounts from one address
(LOGIN_LIMIT_PER_ADDRESS), and that pair or that address gets 429 with Retry-After.
An account's failures from everywhere refuse nobody, or a stranger could lock its
owner out (issue 12, item 6): past LOGIN_SLOWDOWN_AFTER they make every sign-in to
that account wait before its password is checked, so guessing slows down while the
owner, from any address, still gets in.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, current_app, request

from app.crud.errors import WriteBusy
from app.crud.tx import side_write
from app.db import db
from app.models import ADDRESS_MAX, USER_NAME_MAX, SignInFailure

# Looked up at each use, so tests can swap them (monkeypatch) and check windows
# and delays without waiting.
clock: Callable[[], float] = time.time
sleep: Callable[[float], None] = time.sleep

# The wait at LOGIN_SLOWDOWN_AFTER failures (seconds); each further failure doubles it.
FIRST_DELAY = 0.25
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATE = re.compile(
    r"(\d+)\s*(?:per|/)\s*(\d+)?\s*(second|minute|hour|day)s?", re.IGNORECASE
)


@dataclass(frozen=True)
class Rate:
    """At most `amount` failures within any `seconds`."""

    amount: int
    seconds: int


def parse_rates(text: str) -> tuple[Rate, ...]:
    """Read "5 per minute;50 per day" (Flask-Limiter's notation); "" is none."""
    rates = []
    for part in re.split(r"[;,]", text):
        if not part.strip():
            continue
        match = RATE.fullmatch(part.strip())
        if match is None or int(match[1]) < 1:
            raise ValueError(f"Not a rate: {part.strip()!r} (e.g. '5 per minute').")
        amount, count, unit = match.groups()
        rates.append(Rate(int(amount), int(count or 1) * UNIT_SECONDS[unit.lower()]))
    return tuple(rates)


@dataclass(frozen=True)
class Limits:
    """The configured limits, read once when the app starts."""

    per_account_address: tuple[Rate, ...]
    per_address: tuple[Rate, ...]
    slowdown_after: Rate
    slowdown_max: float

    @property
    def longest(self) -> int:
        """The longest window: an older failure counts for nothing."""
        rates = (*self.per_account_address, *self.per_address, self.slowdown_after)
        return max(rate.seconds for rate in rates)


def init_app(app: Flask) -> None:
    """Read the limits from the config; a bad one stops the app from starting."""
    if "LOGIN_LIMIT_PER_ACCOUNT" in app.config:
        # It used to lock the account for everyone; quietly dropping it would
        # leave whoever set it believing a limit that no longer exists.
        app.logger.warning(
            "LOGIN_LIMIT_PER_ACCOUNT is no longer read: see"
            " LOGIN_LIMIT_PER_ACCOUNT_ADDRESS and LOGIN_SLOWDOWN_AFTER"
        )
    slowdown = parse_rates(app.config["LOGIN_SLOWDOWN_AFTER"])
    if len(slowdown) != 1:
        raise ValueError("LOGIN_SLOWDOWN_AFTER takes one rate: '10 per 10 minutes'.")
    app.extensions["signin_limits"] = Limits(
        per_account_address=parse_rates(app.config["LOGIN_LIMIT_PER_ACCOUNT_ADDRESS"]),
        per_address=parse_rates(app.config["LOGIN_LIMIT_PER_ADDRESS"]),
        slowdown_after=slowdown[0],
        slowdown_max=float(app.config["LOGIN_SLOWDOWN_MAX"]),
    )


def limits() -> Limits:
    """The current app's limits."""
    found: Limits = current_app.extensions["signin_limits"]
    return found


def account_key(name: str) -> str:
    """The account a failure counts against: the name tried, matched as sign-in does."""
    return name.strip().lower()[:USER_NAME_MAX]


def address_key(remote_addr: str | None) -> str:
    """The address a failure counts against; an IPv6 client by its /64.

    A subscriber is usually handed a whole /64: counting single IPv6 addresses
    would give them 2**64 fresh counts.
    """
    try:
        ip = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return (remote_addr or "unknown")[:ADDRESS_MAX]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt: the account tried, from where, when (Unix seconds)."""

    account: str
    address: str
    at: int


def attempt(name: str, remote_addr: str | None) -> Attempt:
    """Describe the attempt being made now."""
    return Attempt(account_key(name), address_key(remote_addr), int(clock()))


def retry_after(tried: Attempt) -> int:
    """Seconds before this pair may try again (0: now), by the two refusing limits."""
    found = limits()
    failure = SignInFailure
    pair = (failure.account == tried.account, failure.address == tried.address)
    checks: list[tuple[tuple[sa.ColumnElement[bool], ...], tuple[Rate, ...]]]
    checks = [(pair, found.per_account_address)]
    checks.append(((failure.address == tried.address,), found.per_address))
    wait = 0
    for where, rates in checks:
        for rate in rates:
            # The amount-th newest failure in the window: while it is there the
            # limit is reached, and it leaves `seconds` after it happened. Reading
            # it walks at most `amount` index entries, however many failures exist.
            at = db.session.scalar(
                sa.select(failure.at)
                .where(*where, failure.at > tried.at - rate.seconds)
                .order_by(failure.at.desc())
                .limit(1)
                .offset(rate.amount - 1)
            )
            if at is not None:
                wait = max(wait, at + rate.seconds - tried.at)
    return wait


def delay_for(failures: int, found: Limits) -> float:
    """The wait before checking a password, for an account with these failures."""
    over = failures - found.slowdown_after.amount
    if over < 0:
        return 0.0
    return min(found.slowdown_max, FIRST_DELAY * 2.0**over)


def delay(tried: Attempt) -> float:
    """The wait every sign-in to this account owes now (its failures from anywhere)."""
    found = limits()
    rate = found.slowdown_after
    # Counting stops well past the failures the cap needs, so an account under a
    # large attack costs no more to check than a quiet one.
    recent = (
        sa.select(SignInFailure.id)
        .where(
            SignInFailure.account == tried.account,
            SignInFailure.at > tried.at - rate.seconds,
        )
        .limit(rate.amount + 32)
        .subquery()
    )
    failures = db.session.scalar(sa.select(sa.func.count()).select_from(recent))
    return delay_for(failures or 0, found)


def slow_down(tried: Attempt) -> float:
    """Wait as long as the account's recent failures ask; return the wait."""
    wait = delay(tried)
    # No transaction stays open while waiting (a snapshot held for seconds).
    db.session.commit()
    if wait:
        # Under `make serve` a worker runs one request at a time: a wait that
        # computes nothing gives up that turn (app/gunicorn_conf.py).
        outside = request.environ.get("reeltable.outside_turn", nullcontext)
        with outside():
            sleep(wait)
    return wait


def record_failure(tried: Attempt) -> None:
    """Count a failed attempt, and forget failures older than every window."""
    with side_write(db.session()) as open_:
        if not open_:
            raise WriteBusy()
        db.session.execute(
            sa.insert(SignInFailure).values(
                account=tried.account, address=tried.address, at=tried.at
            )
        )
        db.session.execute(
            sa.delete(SignInFailure).where(
                SignInFailure.at <= tried.at - limits().longest
            )
        )
        db.session.commit()


def forget_failures(tried: Attempt) -> None:
    """After a sign-in, this pair starts afresh; other pairs keep their failures."""
    with side_write(db.session()) as open_:
        if not open_:
            raise WriteBusy()
        db.session.execute(
            sa.delete(SignInFailure).where(
                SignInFailure.account == tried.account,
                SignInFailure.address == tried.address,
            )
        )
        db.session.commit()
