"""The SQLAlchemy handle, per-connection engine tuning (SQLite pragmas), read limits.

Interactive reads are bounded (issue 11): after limit_reads(), the statements of a
request may run READ_TIMEOUT_MS in all. SQLite stops one past that time through a
progress handler, PostgreSQL through statement_timeout set to the time left (set
again once a statement could overrun by a tenth of it); either way the caller gets
ReadTimeout. The same handler
stops a SQLite statement run under step_budget() once it has taken its steps
(StepsSpent). A write that finds no room left on disk raises StorageFull. All are
OperationalErrors, so code that handles database errors in general still sees them
as such.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

# Named constraints, so Alembic can alter them on SQLite (batch mode) and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Connection execution option that makes the next SQLite transaction BEGIN IMMEDIATE.
WRITE_INTENT = "reeltable_write"


class Base(DeclarativeBase):
    """Declarative base for every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Sessions live for one request. Keeping attributes after commit lets a view draw
# the row it has just saved without reading it back (every value the app shows
# is set in Python, versions included; only updated_at comes from the database).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Turn on foreign keys, WAL and a busy timeout for every SQLite connection."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # pysqlite's own transaction handling issues BEGIN lazily and only as DEFERRED;
    # we take it over (see _sqlite_begin) so writers can ask for IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL is durable against application crashes; only an OS crash or power
    # loss can drop the last commits, never corrupt the file.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA busy_timeout = 10000")
    # 16 MB of page cache (the default is 2 MB): the name index of 100,000 movies
    # no longer fits 2 MB, and a deep page re-read it from the OS on every request
    # (faster deep pages: W3 of `python -m bench`). A worker holds one connection
    # per thread, so this is also the most a connection adds to a worker's memory.
    cursor.execute("PRAGMA cache_size = -16384")
    cursor.close()
    # Called between virtual-machine steps: stops a bounded read past its time.
    dbapi_connection.set_progress_handler(_stop_statement, PROGRESS_STEPS)


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn: Connection) -> None:
    """Start SQLite transactions ourselves: IMMEDIATE for writes, DEFERRED for reads.

    A deferred transaction that reads and then writes cannot wait for the write lock
    (SQLite returns "database is locked" at once to avoid a deadlock), so every write
    transaction takes the lock up front, where busy_timeout makes it queue instead.
    """
    if conn.dialect.name != "sqlite":
        return
    immediate = conn.get_execution_options().get(WRITE_INTENT, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
    if immediate:
        # Another connection may have changed the schema since this one last read
        # it (a big import rebuilds indexes: Bulk.deferred_indexes). A statement the
        # driver keeps prepared notices that and reloads it now. Else the write's
        # first statement, if newly prepared, is compiled against the old schema,
        # and when its trigger feeds an FTS5 index (0015) not yet opened since, the
        # index opens mid-compile, reloads the schema under the compiler and fails
        # with "no such table: ratings" (seen on SQLite 3.40.1 and 3.51.1).
        # Writes only: the lock is already held, so no commit can come between.
        driver = conn.connection.driver_connection
        assert driver is not None  # a checked-out connection has one
        driver.execute(_SCHEMA_PROBE)


# Reads the schema cookie and nothing else (PRAGMA schema_version reads it but
# does not reload a changed schema).
_SCHEMA_PROBE = "SELECT 1 FROM sqlite_master WHERE 0"


# How long a PostgreSQL statement may wait for a lock before it fails with
# lock_not_available: an ordinary write then answers 503 (WriteBusy), never hangs
# behind an import's rows (issue 11). Given to every connection as it opens, not
# by SET LOCAL in each write: one round trip of ten fewer in a single-cell edit
# (W5 of `python -m bench`). An import and the migrations lift it for their own
# transaction (Dialect.start_write, migrations/env.py).
PG_LOCK_TIMEOUT_MS = 3000


@event.listens_for(Engine, "do_connect")
def _pg_session_settings(
    dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]
) -> None:
    """Open every PostgreSQL connection with the lock_timeout above."""
    if dialect.name != "postgresql":
        return
    # Added to any options the URL gives (a search_path, say), not in their place.
    given = cparams.get("options", "")
    cparams["options"] = f"{given} -c lock_timeout={PG_LOCK_TIMEOUT_MS}".strip()


# ---------------------------------------------------------------- stale connections

# A pooled PostgreSQL connection idle this long is pinged before use: the server
# may have restarted or dropped it meanwhile, and a dead one is swapped for a fresh
# one before a request sees the error. pool_pre_ping pinged on every checkout:
# three round trips of fifteen in a single-cell edit (W5 of `python -m bench`). A
# busy server reuses its connections within milliseconds and now skips them; one
# dropped within the window fails a single request, after which the pool, told of
# the disconnect, replaces every connection it holds.
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "reeltable_idle_since"


@event.listens_for(Pool, "checkin")
def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    """Note when a connection went back to the pool."""
    record.info[_IDLE_SINCE] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a PostgreSQL connection that sat idle; a dead one is replaced."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        return  # a file: nothing to lose between uses
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
        return
    try:
        # As psycopg_pool checks a connection: an empty query, in no transaction,
        # then the mode the engine gave it (an AUTOCOMMIT engine's stays so).
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.execute("")
        finally:
            dbapi_connection.autocommit = autocommit
    except Exception as exc:
        # The pool discards this connection and checks out another (or a new one).
        raise DisconnectionError() from exc


# ---------------------------------------------------------------- read limits


class ReadTimeout(OperationalError):
    """A bounded read ran past its time and was stopped; nothing was changed."""


class StorageFull(OperationalError):
    """The database had no room left for a write, which was not made."""


class StepsSpent(OperationalError):
    """A SQLite statement run under step_budget() used its steps up and was stopped."""


# When the reads of this context (a request's) must have ended, on the monotonic
# clock; None: no bound. Context variables: each thread (request) has its own.
_deadline: ContextVar[float | None] = ContextVar("reeltable_deadline", default=None)
# Progress-handler calls left to the statements of a step_budget() block: a list,
# which the handler counts down in place.
_steps_left: ContextVar[list[int] | None] = ContextVar(
    "reeltable_steps_left", default=None
)

# SQLite runs the progress handler every this many virtual-machine steps: often
# enough to stop on time, rarely enough to cost nothing measurable (W2 of
# `python -m bench` runs bounded reads).
PROGRESS_STEPS = 10_000

# Connection.info key: the statement_timeout (ms, None for the server's default)
# this PostgreSQL transaction was given by SET LOCAL, which ends with it.
PG_TIMEOUT = "reeltable_statement_timeout"
# How far past its context's deadline, as a share of the timeout it was given, a
# PostgreSQL statement may be allowed to run before the timeout is set again.
PG_TIMEOUT_SLACK = 0.1

SQLITE_INTERRUPT = 9  # sqlite3.SQLITE_INTERRUPT, spelled out for type checkers
SQLITE_FULL = 13
PG_QUERY_CANCELED = "57014"
PG_LOCK_NOT_AVAILABLE = "55P03"
PG_DISK_FULL = "53100"


def _deadline_in(milliseconds: int | None) -> float | None:
    """The monotonic time `milliseconds` from now (None for None or 0)."""
    return time.monotonic() + milliseconds / 1000 if milliseconds else None


def limit_reads(milliseconds: int | None) -> None:
    """Let later statements in this context run `milliseconds` in all (0: no end)."""
    _deadline.set(_deadline_in(milliseconds))


@contextmanager
def bounded_reads(milliseconds: int | None) -> Iterator[None]:
    """Let the statements in the block run `milliseconds` in all, within any bound."""
    outer = _deadline.get()
    inner = _deadline_in(milliseconds)
    if outer is not None and (inner is None or outer < inner):
        inner = outer
    token = _deadline.set(inner)
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def step_budget(steps: int) -> Iterator[None]:
    """Stop SQLite statements in the block after about `steps` VM steps (StepsSpent).

    For a plan that pays only if the data are as expected: it gives up at a cost
    bounded in advance, and the caller takes another way.
    """
    token = _steps_left.set([max(1, steps // PROGRESS_STEPS)])
    try:
        yield
    finally:
        _steps_left.reset(token)


def _stop_statement() -> bool:
    """SQLite's progress handler: True stops the statement (budget or time up)."""
    left = _steps_left.get()
    if left is not None:
        left[0] -= 1
        if left[0] < 0:
            return True
    deadline = _deadline.get()
    return deadline is not None and time.monotonic() > deadline


def _steps_spent() -> bool:
    """True once the statements of this context's step_budget() used it up."""
    left = _steps_left.get()
    return left is not None and left[0] < 0


@event.listens_for(Engine, "begin")
def _new_transaction(conn: Connection) -> None:
    """A PostgreSQL transaction starts with the server's statement_timeout."""
    if conn.dialect.name == "postgresql":
        conn.info.pop(PG_TIMEOUT, None)


@event.listens_for(Engine, "before_cursor_execute")
def _bound_statement(
    conn: Connection,
    cursor: Any,
    _statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    """PostgreSQL: give the statement about to run the time its context has left.

    (SQLite's progress handler reads the deadline itself.)
    """
    if conn.dialect.name != "postgresql":
        return
    deadline = _deadline.get()
    held = conn.info.get(PG_TIMEOUT)
    if deadline is None:
        if held is None:
            return
        wanted = None
    else:
        wanted = max(1, math.ceil((deadline - time.monotonic()) * 1000))
        # The timeout set for an earlier statement of this transaction lets this
        # one end a little past the deadline: the time since it was set. Within
        # a tenth of it, keep it. A page's four statements take one SET LOCAL,
        # not four (three round trips of eleven on PostgreSQL: W2-W4).
        if held is not None and 0 <= held - wanted <= held * PG_TIMEOUT_SLACK:
            return
    # SET LOCAL: it ends with the transaction, so a pooled connection never
    # carries it to a write or an export. A cursor of its own, as `cursor` may
    # be a server-side one, which only takes a SELECT.
    value = "DEFAULT" if wanted is None else str(wanted)
    cursor.connection.execute(f"SET LOCAL statement_timeout = {value}")
    conn.info[PG_TIMEOUT] = wanted


@event.listens_for(Engine, "handle_error")
def _typed_errors(context: ExceptionContext) -> None:
    """Raise ReadTimeout or StorageFull for the database errors they stand for."""
    original = context.original_exception
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    sqlstate = getattr(original, "sqlstate", None)
    # The primary code is the low byte of SQLite's extended one.
    primary = sqlite_code & 0xFF if isinstance(sqlite_code, int) else None
    bounded = context.connection is not None and bool(
        context.connection.info.get(PG_TIMEOUT)
    )
    kind: type[OperationalError] | None = None
    if primary == SQLITE_INTERRUPT and _steps_spent():
        kind = StepsSpent
    elif primary == SQLITE_INTERRUPT or (sqlstate == PG_QUERY_CANCELED and bounded):
        kind = ReadTimeout
    elif sqlstate == PG_LOCK_NOT_AVAILABLE:
        # A read that waited PG_LOCK_TIMEOUT_MS for a lock (a migration's, say)
        # is a read that took too long. In a write, write_transaction sees the
        # original error under it and answers WriteBusy.
        kind = ReadTimeout
    elif primary == SQLITE_FULL or sqlstate == PG_DISK_FULL:
        kind = StorageFull
    if kind is not None:
        raise kind(context.statement, context.parameters, original) from original
