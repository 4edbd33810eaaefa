"""The write transaction: every write goes through write_transaction()."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.crud.changes import ChangeSet, begin_set, end_set
from app.crud.dialect import Dialect, backend_of
from app.crud.errors import StaleWrite, ValidationError, WriteBusy
from app.db import WRITE_INTENT


@contextmanager
def write_transaction(
    session: Session,
    backend: Dialect,
    write_lock: AbstractContextManager[Any] | None = None,
    bulk: bool = False,
) -> Iterator[ChangeSet]:
    """Run the body as one write transaction: commit on success, else roll back.

    Yields the transaction's change set: what the body changes is logged in it
    (app/crud/changes.py), in this transaction, so nothing commits unlogged.

    Raises WriteBusy, writing nothing, while an import holds the database; a
    `bulk` write (an import) holds it, and gets WriteBusy if another one does.
    `write_lock` queues the process's writers (Dialect.writer_turn). Database
    refusals come out typed: a lock that stayed taken is WriteBusy, a row
    changed meanwhile StaleWrite (a Conflict), a failed constraint ValidationError.
    """
    end_reads(session, backend)
    with backend.import_gate(session, bulk) as open_, backend.writer_turn(write_lock):
        if not open_:
            raise WriteBusy()
        try:
            connection = write_connection(session)
            backend.start_write(connection, bulk)
            yield begin_set(session, backend)
            session.commit()
        except OperationalError as exc:
            session.rollback()
            if backend.lock_timed_out(exc):
                raise WriteBusy() from exc
            raise
        except StaleDataError:
            session.rollback()
            # A Conflict to every caller; update() alone may retry on it.
            raise StaleWrite(None) from None
        except (IntegrityError, DataError) as exc:
            session.rollback()
            raise ValidationError(
                {"_": "The database refused this change (a constraint failed)."}
            ) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            end_set(session)


@contextmanager
def side_write(session: Session) -> Iterator[bool]:
    """Open a write of sign-in records; yield False while an import writes.

    Sign-in records are not table data, so they skip the change log and the
    service, but they meet the same SQLite import gate (app/write_gate.py): an
    import holds the write lock for tens of seconds, and a sign-in would wait
    busy_timeout and fail with a 500 instead of hearing at once to retry. The
    write starts IMMEDIATE, as it cannot upgrade a read while others write.
    The caller commits inside the block.
    """
    backend = backend_of(session)
    end_reads(session, backend)
    with backend.import_gate(session, False) as open_:
        if open_:
            write_connection(session)
        yield open_


def end_reads(session: Session, backend: Dialect) -> None:
    """Commit the reads before a write where the database needs that.

    SQLite cannot upgrade a reader to a writer while others write, so the write
    starts a transaction of its own, IMMEDIATE. PostgreSQL writes on in the reads'
    transaction (READ COMMITTED: each statement sees the latest commits), which
    saves a COMMIT and a BEGIN, two of a single-cell edit's round trips.
    """
    if session.in_transaction() and backend.writes_begin_afresh:
        session.commit()


def write_connection(session: Session) -> Connection:
    """The session's connection, marked as a write's (WRITE_INTENT).

    SQLite reads the mark as its transaction begins (BEGIN IMMEDIATE), counts
    as they are read (a count seen in a write is not cached: app/crud/counts.py).
    """
    if not session.in_transaction():
        return session.connection(execution_options={WRITE_INTENT: True})
    connection = session.connection()  # the reads' transaction goes on
    connection.execution_options(**{WRITE_INTENT: True})  # in place (SQLAlchemy 2)
    return connection
