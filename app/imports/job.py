"""The child process that checks or imports a big upload, and the import itself.

A small upload is imported within its request (import_upload); a big one by a
job (start_job, job_main), which saves its progress and renews its lease as it
goes (app/imports/store.py says why and how).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from app import ROOT, create_app, csvfile
from app.crud import Conflict, ValidationError, WriteBusy
from app.db import WRITE_INTENT, db
from app.imports.store import (
    POLL_SECONDS,
    RUNNING,
    drop_refused,
    drop_upload,
    import_row,
    keep_state,
    lease_ms,
    now_ms,
    read_state,
    row_values,
    save_state,
    sqlite_gate,
    state_from,
    state_of,
    upload_source,
)
from app.models import Import
from app.services import service

REPORT_SECONDS = 0.25  # how often a job saves its progress, at most
BUSY_WAIT_SECONDS = 600  # how long a job waits for another import to finish
JOB_ENTRY = "from app.imports.job import job_main; job_main()"
# The job's CPU priority below the workers': an import takes about as long at 10
# as at 0 while GET /movies answers faster meanwhile (`python -m bench.stress
# --import FILE` prints both).
JOB_NICENESS = 10


class _Claimed(Exception):
    """The import's claim was taken over (its lease ran out): nothing is written."""


def import_upload(
    token: str,
    state: dict[str, Any],
    claim: str,
    progress: csvfile.Progress | None = None,
) -> dict[str, Any]:
    """Import a claimed upload and save what came of it (raises WriteBusy).

    The new state says it: "done" (saved in the import's own transaction, with
    the rows), or "preview" with a note (the table changed since the preview,
    or the database refused the rows) and the status code to answer in "answer".
    """
    name, owner, filename = state["resource"], state["owner"], state["filename"]
    svc = service(name)

    def finish(preview: csvfile.Preview, set_id: int | None) -> None:
        """Mark the row done in the import's transaction, if the claim still holds."""
        done = state_from(name, filename, preview, "done", owner)
        # Its change set, so the result page can offer to undo it (issue 14).
        done["set_id"] = set_id
        marked = svc.session.execute(
            sa.update(Import)
            .where(
                Import.token == token,
                Import.status == "importing",
                Import.claim == claim,
            )
            .values(**row_values(done), claim=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        if not getattr(marked, "rowcount", 0):
            raise _Claimed()
        drop_upload(svc.session, token)

    back = {**state, "status": "preview"}
    back.pop("progress", None)
    back.pop("started", None)
    where = (Import.claim == claim,)
    release = {"claim": None, "lease_until": None}
    try:
        csvfile.import_file(
            svc,
            upload_source(svc.session, token),
            expected=state["counts"],
            progress=progress,
            finish=finish,
        )
    except csvfile.PreviewOutdated as exc:
        state = state_from(name, filename, exc.preview, "preview", owner)
        state["note"] = (
            "The table changed since this preview: here is the new one. Check it."
        )
        keep_state(token, state, *where, **release)
        return state
    except _Claimed:
        return {**read_state(token), "answer": 409}
    except (ValidationError, Conflict) as exc:
        reason = (
            "; ".join(exc.errors.values())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        state = {**back, "note": f"Nothing was imported: {reason}"}
        keep_state(token, state, *where, **release)
        return {**state, "answer": 409}
    return read_state(token)


def start_job(token: str, claim: str) -> None:
    """Start the child process that checks or imports an upload, as its row says.

    The child is handed the claim it works under and this app's configuration
    (on stdin: it holds the secret key), so it works on the same database.
    Raises OSError if it cannot start.
    """
    config: dict[str, Any] = {}
    for key, value in current_app.config.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue  # a Flask default (a timedelta, say): the child has it too
        config[key] = value
    job = {
        "token": token,
        "claim": claim,
        "instance_path": current_app.instance_path,
        "config": config,
    }
    child = subprocess.Popen(
        [sys.executable, "-c", JOB_ENTRY], cwd=ROOT, stdin=subprocess.PIPE
    )
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps(job).encode())
        child.stdin.close()
    except OSError:
        child.kill()
        child.wait()
        raise
    # Collect its exit status when it ends, so it never lingers as a zombie.
    threading.Thread(target=child.wait, name=f"import-{token[:6]}", daemon=True).start()


def job_main() -> None:
    """Run the job described on stdin: check or import one upload (see start_job)."""
    job = json.load(sys.stdin)
    # Below the workers: requests go first, the job takes what CPU is left.
    os.nice(JOB_NICENESS)
    app = create_app(job["config"], instance_path=job["instance_path"])
    with app.app_context():
        token = job["token"]
        try:
            _run_job(token, job["claim"])
        except Exception:
            app.logger.exception("import %s: the job failed", token)
            raise


class _Reporter:
    """Saves a job's progress and renews its lease, a few times a second at most.

    The progress goes to the row through a connection of its own, never the
    job's write transaction (whose writes nobody sees before it commits). On
    SQLite, while the job's import holds the write lock, it goes to the write
    gate's note instead (see app/imports/store.py's docstring).
    """

    def __init__(
        self, token: str, claim: str, totals: dict[str, int], importing: bool
    ) -> None:
        self.token = token
        self.claim = claim
        self.totals = totals  # by phase, when the job knows better than its caller
        self.importing = importing
        self.gate = sqlite_gate()
        self.engine = db.engine
        self.lease = lease_ms()
        self.phase = ""
        self.due = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        """Record that `done` of `total` rows are checked or written."""
        now = time.monotonic()
        if phase == self.phase and now < self.due:
            return
        self.phase, self.due = phase, now + REPORT_SECONDS
        progress = {
            "phase": phase,
            "done": done,
            "total": total or self.totals.get(phase, 0),
        }
        if self.gate is not None and self.importing and phase != "waiting":
            # Called from inside the import's transaction: this job holds the gate.
            self.gate.note(json.dumps({"token": self.token, "progress": progress}))
            return
        self.beat(progress)

    def beat(self, progress: dict[str, Any] | None = None) -> None:
        """Renew the lease (and save the progress) in a short write of its own."""
        values: dict[str, Any] = {"lease_until": now_ms() + self.lease}
        if progress is not None:
            values.update(
                phase=progress["phase"], done=progress["done"], total=progress["total"]
            )
        stmt = (
            sa.update(Import)
            .where(
                Import.token == self.token,
                Import.claim == self.claim,
                Import.status.in_(RUNNING),
            )
            .values(**values)
        )
        try:
            if self.gate is None:
                with self.engine.begin() as connection:
                    connection.execute(stmt)
                return
            with self.gate.ordinary() as open_:
                if open_:  # else an import holds the gate, which keeps us alive
                    options = {WRITE_INTENT: True}
                    connect = self.engine.connect().execution_options(**options)
                    with connect as c, c.begin():
                        c.execute(stmt)
        except SQLAlchemyError as exc:
            current_app.logger.info(
                "import %s: progress not saved: %s", self.token, exc
            )


class _Heartbeat:
    """Renews a job's lease every third of it, from a thread (PostgreSQL).

    Batches report often, but the last step of a big import (building indexes
    again) runs for seconds without a report; on SQLite the gate keeps a job
    alive then, and a thread's write would only wait for the write lock.
    """

    def __init__(self, reporter: _Reporter) -> None:
        self.reporter = reporter
        self.stop = threading.Event()
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        """Beat until stopped."""
        with self.app.app_context():
            while not self.stop.wait(self.reporter.lease / 3000):
                self.reporter.beat()

    def __enter__(self) -> _Heartbeat:
        if self.reporter.gate is None:
            self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()


def _run_job(token: str, claim: str) -> None:
    """Check or import an upload, as its row asks, saving progress and result."""
    row = import_row(token)
    if row is None or row.claim != claim:
        return  # swept, or taken over meanwhile
    state = state_of(row)
    db.session.rollback()  # no read transaction held while the job runs
    if state["status"] == "checking":
        _check_job(token, claim, state, row.size)
    elif state["status"] == "importing":
        _import_job(token, claim, state)


def _lines_in(token: str) -> int:
    """Count an upload's lines quickly (its rows, give or take blank or quoted)."""
    count, last = 0, b"\n"
    with upload_source(db.session(), token)() as stream:
        while chunk := stream.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    db.session.rollback()
    return count + (last != b"\n")


def _save_until_done(token: str, state: dict[str, Any], held: str, **more: Any) -> None:
    """Save a job's result, waiting behind an import that holds the database."""
    waited_until = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        try:
            save_state(token, state, Import.claim == held, **more)
            return
        except WriteBusy:
            db.session.rollback()
            if time.monotonic() > waited_until:
                raise
            time.sleep(POLL_SECONDS)


def _check_job(token: str, claim: str, state: dict[str, Any], size: int) -> None:
    """Check an upload as a preview does, saving progress, then the preview."""
    name, filename, owner = state["resource"], state["filename"], state["owner"]
    report = _Reporter(
        token, claim, {"checking": max(_lines_in(token) - 1, 0)}, importing=False
    )
    report("checking", 0, 0)
    release = {"claim": None, "lease_until": None}
    try:
        with _Heartbeat(report):
            preview = csvfile.preview_file(
                service(name), upload_source(db.session(), token), progress=report
            )
    except csvfile.CsvFileError as exc:
        db.session.rollback()
        failed = _ended(state, status="failed", message=exc.message)
        _save_until_done(token, failed, claim, **release)
        drop_refused(token)
        return
    except Exception:
        db.session.rollback()
        message = (
            "The server could not check this file (the error is logged). Upload it"
            " again; if it keeps happening, tell whoever runs this server."
        )
        failed = _ended(state, status="failed", message=message)
        keep_state(token, failed, Import.claim == claim, **release)
        raise
    db.session.rollback()
    result = state_from(name, filename, preview, "preview", owner)
    _save_until_done(token, result, claim, **release)


def _ended(state: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An upload's state once its job ended early: `changes` over it, no progress."""
    ended = {**state, **changes}
    ended.pop("progress", None)
    return ended


def _import_job(token: str, claim: str, state: dict[str, Any]) -> None:
    """Import an upload, waiting its turn behind another import, saving progress."""
    counts = state["counts"]
    report = _Reporter(token, claim, {"checking": sum(counts.values())}, importing=True)
    waited_until = time.monotonic() + BUSY_WAIT_SECONDS
    with _Heartbeat(report):
        while True:
            try:
                import_upload(token, state, claim, progress=report)
                return
            except WriteBusy:
                db.session.rollback()
                # Another import holds the database: wait for it, saying so.
                if time.monotonic() > waited_until:
                    note = (
                        "Nothing was imported: another import kept the database busy."
                    )
                    back = _ended(state, status="preview", note=note)
                    keep_state(
                        token, back, Import.claim == claim, claim=None, lease_until=None
                    )
                    return
                report("waiting", 0, 0)
                time.sleep(POLL_SECONDS)
            except Exception:
                db.session.rollback()
                note = (
                    "The import failed, so nothing was written (the error is logged)."
                    " Try again; if it keeps happening, tell whoever runs this server."
                )
                failed = _ended(state, status="preview", note=note)
                failed.pop("started", None)
                keep_state(
                    token, failed, Import.claim == claim, claim=None, lease_until=None
                )
                raise
