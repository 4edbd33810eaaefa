"""Uploads kept in the database, and the state, claim and lease of each import.

An upload lives in the database (issue 15): a row of `imports` (owner, status,
progress, the preview's counts and invalid rows) and its file in compressed
pieces (`import_chunks`), so any app server can show, check or import it. A
small file is checked, and later imported, within its request. A bigger one
would hold one of the server's two workers for a minute or more while nearly
every other request timed out (issue 11; an import during edits: `python -m
bench.stress --import FILE`), so it is checked and imported by a job: a child
process (app/imports/job.py) that saves its progress in the row, which the page polls.
A child process, not a thread in the worker, because a thread would share the
worker's one interpreter lock with the requests it serves (README.md, "CSV
import").

Who runs a job: the request that starts it claims the row (one conditional
UPDATE: status preview -> importing, with a claim id and a lease), so two
servers never run it twice. The job renews the lease as it goes; a row whose
lease ran out belongs to a dead job (kill -9, a lost server: a pid would name a
process on another machine) and is claimable again. The import marks the row
done in its own write transaction, and only while it still holds the claim,
so the rows and "done" commit together or not at all. On SQLite the import
holds the write lock for its whole transaction: it cannot renew its lease or
save progress in the database meanwhile, so it leaves its progress in the
write gate's lock file (app/write_gate.py), whose flock the kernel drops when
the job dies: a job is alive while its lease lasts or the gate is held.
"""

from __future__ import annotations

import io
import json
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any, BinaryIO

import sqlalchemy as sa
from flask import abort, current_app
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app import csvfile
from app.crud import WriteBusy
from app.crud.dialect import backend_of
from app.crud.tx import write_transaction
from app.db import db
from app.models import Import, ImportChunk
from app.write_gate import WriteGate, gate_for

TOKEN_LENGTH = 24  # characters of secrets.token_urlsafe(18)
IMPORT_TTL_SECONDS = 24 * 3600
GONE = "This import has expired or does not exist; upload the file again."

# States a job is working in; "preview", "done" and "failed" are final.
RUNNING = ("checking", "importing")
POLL_SECONDS = 1  # how often the page asks how a job is doing
CHUNK_BYTES = 1 << 20  # an upload is stored a MB of the file a row
# The columns of `imports` a state dict has; the rest of it is the JSON `state`.
_COLUMNS = ("owner", "resource", "filename", "status", "progress")

# Looked up at each use, so tests can move time on (a lease running out).
clock: Callable[[], float] = time.time


def now_ms() -> int:
    """Unix milliseconds, the unit of a lease."""
    return int(clock() * 1000)


def lease_ms() -> int:
    """How long a claim lasts without renewal (IMPORT_LEASE_SECONDS), in ms."""
    return int(float(current_app.config["IMPORT_LEASE_SECONDS"]) * 1000)


def _check_token(token: str) -> None:
    """404 for a malformed token, before any query."""
    if (
        len(token) != TOKEN_LENGTH
        or not token.replace("-", "").replace("_", "").isalnum()
    ):
        abort(404)


def import_row(token: str) -> Import | None:
    """The import's row as the database has it now (never a cached copy)."""
    _check_token(token)
    query = sa.select(Import).where(Import.token == token)
    return db.session.execute(
        query.execution_options(populate_existing=True)
    ).scalar_one_or_none()


def sqlite_gate() -> WriteGate | None:
    """The SQLite database's write gate (None on PostgreSQL)."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return None
    return gate_for(engine.url.database)


def gate_note() -> dict[str, Any] | None:
    """What the import holding the SQLite write gate says of itself, if one does."""
    gate = sqlite_gate()
    text = gate.noted() if gate is not None else None
    if text is None:
        return None
    try:
        note: dict[str, Any] = json.loads(text)
    except ValueError:
        return {}  # held, by an import that has not said anything yet
    return note


def state_of(row: Import) -> dict[str, Any]:
    """The state dict the pages are drawn from, as a row holds it."""
    state: dict[str, Any] = json.loads(row.state)
    state.update(
        owner=row.owner, resource=row.resource, filename=row.filename, status=row.status
    )
    if row.status in RUNNING:
        state["progress"] = {
            "phase": row.phase or "starting",
            "done": row.done,
            "total": row.total,
        }
    return state


def row_values(state: dict[str, Any]) -> dict[str, Any]:
    """The values of `imports` that a state dict sets."""
    progress = state.get("progress") or {}
    rest = {k: v for k, v in state.items() if k not in _COLUMNS}
    return {
        "status": state["status"],
        "state": json.dumps(rest),
        "phase": progress.get("phase"),
        "done": progress.get("done", 0),
        "total": progress.get("total", 0),
    }


def read_state(token: str) -> dict[str, Any]:
    """Read an import's saved state, whoever owns it, or 404 if it is unknown."""
    row = import_row(token)
    if row is None:
        abort(404, GONE)
    return state_of(row)


@contextmanager
def store_write() -> Iterator[Session]:
    """One short write of the imports tables, as any write (raises WriteBusy).

    It meets the SQLite import gate like every other writer: while an import
    holds the write lock, waiting busy_timeout would end in a 500.
    """
    session = db.session()
    with write_transaction(
        session, backend_of(session), current_app.extensions["reeltable.write_lock"]
    ):
        yield session


def _update(token: str, values: dict[str, Any], *where: Any) -> bool:
    """Update an import's row if it still matches `where`; True if it did."""
    with store_write() as session:
        result = session.execute(
            sa.update(Import)
            .where(Import.token == token, *where)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(result, "rowcount", 0))


def save_state(token: str, state: dict[str, Any], *where: Any, **more: Any) -> bool:
    """Save an import's state (raises WriteBusy); False if `where` no longer held."""
    return _update(token, {**row_values(state), **more}, *where)


def keep_state(token: str, state: dict[str, Any], *where: Any, **more: Any) -> None:
    """Save an import's state after the fact; a failure is logged, not shown.

    The page is drawn from `state` itself, so the person still sees the result.
    """
    try:
        save_state(token, state, *where, **more)
    except (WriteBusy, SQLAlchemyError) as exc:
        db.session.rollback()
        current_app.logger.error("import %s: state not saved: %s", token, exc)


def store_upload(
    token: str, state: dict[str, Any], stream: IO[bytes], **more: Any
) -> int:
    """Store a new import's row and its file, in one transaction; return its size.

    The file goes in CHUNK_BYTES pieces, each compressed on its own: neither
    this nor a reader ever holds more than a piece of it (issue 11's memory
    bound). Raises WriteBusy, StorageFull (no room) or another database error;
    then nothing is stored.
    """
    size = 0
    now = int(clock())
    with store_write() as session:
        values = {
            "token": token,
            "owner": state["owner"],
            "resource": state["resource"],
            "filename": state["filename"],
            "size": 0,
            "claim": None,
            "lease_until": None,
            "created_at": now,
            **row_values(state),
            **more,
        }
        session.execute(sa.insert(Import).values(**values))
        insert = sa.insert(ImportChunk)
        seq = 0
        while piece := stream.read(CHUNK_BYTES):
            size += len(piece)
            session.execute(
                insert, {"token": token, "seq": seq, "data": _packed(piece)}
            )
            seq += 1
        session.execute(
            sa.update(Import).where(Import.token == token).values(size=size)
        )
    return size


def _packed(piece: bytes) -> bytes:
    """Compress a piece of an upload: level 1, as fast as the upload arrives.

    A CSV shrinks to a fourth or so; higher levels gain little and cost seconds.
    """
    return zlib.compress(piece, 1)


class _Upload(io.RawIOBase):
    """Reads an upload back from the database, a piece at a time."""

    def __init__(self, session: Session, token: str) -> None:
        self.session = session
        self.token = token
        self.seq = 0
        self.piece = b""
        self.at = 0

    def readable(self) -> bool:
        """Yes."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` from the current piece, fetching the next when it is spent."""
        while self.at >= len(self.piece):
            data = self.session.execute(
                sa.select(ImportChunk.data).where(
                    ImportChunk.token == self.token, ImportChunk.seq == self.seq
                )
            ).scalar_one_or_none()
            if data is None:
                return 0
            self.piece, self.at, self.seq = zlib.decompress(data), 0, self.seq + 1
        view = memoryview(self.piece)[self.at : self.at + len(buffer)]
        buffer[: len(view)] = view
        self.at += len(view)
        return len(view)


def upload_source(
    session: Session, token: str
) -> Callable[[], AbstractContextManager[BinaryIO]]:
    """An upload as app.csvfile reads it: a function opening a buffered stream."""

    @contextmanager
    def opened() -> Iterator[BinaryIO]:
        with io.BufferedReader(_Upload(session, token), 1 << 16) as stream:
            yield stream

    return opened


def drop_upload(session: Session, token: str) -> None:
    """Delete an upload's file (in the caller's transaction): done or refused."""
    session.execute(sa.delete(ImportChunk).where(ImportChunk.token == token))


def sweep() -> None:
    """Delete imports older than a day, so abandoned uploads do not pile up.

    Not one a live job holds. Best effort: skipped while an import writes.
    """
    limit = int(clock()) - IMPORT_TTL_SECONDS
    old = sa.and_(
        Import.created_at < limit,
        sa.or_(
            Import.status.not_in(RUNNING),
            sa.func.coalesce(Import.lease_until, 0) < now_ms(),
        ),
    )
    try:
        with store_write() as session:
            tokens = sa.select(Import.token).where(old).scalar_subquery()
            session.execute(sa.delete(ImportChunk).where(ImportChunk.token.in_(tokens)))
            session.execute(sa.delete(Import).where(old))
    except (WriteBusy, SQLAlchemyError) as exc:
        db.session.rollback()
        current_app.logger.info("import sweep skipped: %s", exc)


def state_from(
    name: str, filename: str, preview: csvfile.Preview, status: str, owner: str
) -> dict[str, Any]:
    """The record of a preview or a finished import, and whose it is."""
    return {
        "owner": owner,
        "resource": name,
        "filename": filename,
        "status": status,
        "counts": preview.counts,
        "errors": [[e.line, e.column, e.reason] for e in preview.errors],
        "keeps_ids": preview.keeps_ids,
    }


def job_alive(row: Import, state: dict[str, Any]) -> bool:
    """True if a running row's job still works: its lease lasts, or (SQLite) it
    holds the write gate, when it cannot renew its lease. Adds what the gate says
    of its progress to `state`."""
    if row.lease_until is not None and row.lease_until > now_ms():
        alive = True
    else:
        alive = False
    note = gate_note() if row.status == "importing" or not alive else None
    if note is not None:
        if note.get("token") == row.token and "progress" in note:
            state["progress"] = note["progress"]
        elif row.status == "importing":
            # Another import holds the database: this one waits its turn.
            state["progress"] = {"phase": "waiting", "done": 0, "total": 0}
        # A gate held by someone: a job waiting behind it cannot renew either.
        alive = True
    return alive


def drop_refused(token: str) -> None:
    """Delete a refused upload's file; a failure is logged (the sweep gets it)."""
    try:
        with store_write() as session:
            drop_upload(session, token)
    except (WriteBusy, SQLAlchemyError) as exc:
        db.session.rollback()
        current_app.logger.info("import %s: file not deleted: %s", token, exc)
