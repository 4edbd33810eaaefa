"""The SQLAlchemy handle and per-connection engine tuning (SQLite pragmas)."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase

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
    # (rows 50,001-50,050 by name: 2.2 -> 1.7 ms). A worker holds one connection
    # per thread, so this is also the most a connection adds to a worker's memory.
    cursor.execute("PRAGMA cache_size = -16384")
    cursor.close()


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
