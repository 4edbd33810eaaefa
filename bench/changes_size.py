"""The change log's size on SQLite (issue 14): `python -m bench.changes_size [N]`.

Writes N (default 1,000,000) single-cell edits' change rows into a fresh,
migrated SQLite database, each a change set of its own, through the code the
service logs an edit with (ChangeSet.updated), a rating's score changed by a
signed-in person. Prints the database file's growth and the bytes per change.
"""

from __future__ import annotations

import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from flask_migrate import upgrade

from app import create_app
from app.crud.changes import ChangeSet, acting_as
from app.crud.dialect import backend_of
from app.db import db

COMMIT_EVERY = 10_000


def main() -> None:
    """Fill the log with N edits and print what it takes on disk."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    logging.disable(logging.INFO)
    folder = Path(tempfile.mkdtemp())
    path = folder / "changes.sqlite3"
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
        }
    )
    rng = random.Random(14)
    with app.app_context():
        upgrade()
        db.session.execute(db.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        empty = path.stat().st_size
        backend = backend_of(db.session)
        started = time.perf_counter()
        with acting_as("ana"):
            for i in range(n):
                log = ChangeSet(db.session, backend)
                row_id = rng.randint(1, 1_000_000)
                old = rng.randint(1, 10)
                log.updated(
                    "ratings",
                    row_id,
                    {"rating": old},
                    {"rating": old % 10 + 1},
                    rng.randint(2, 9),
                )
                if (i + 1) % COMMIT_EVERY == 0:
                    db.session.commit()
        db.session.commit()
        spent = time.perf_counter() - started
        db.session.execute(db.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.commit()
    grown = path.stat().st_size - empty
    print(
        f"{n:,} single-cell edits: change log {grown / 1e6:.1f} MB"
        f" ({grown / n:.0f} bytes a change, indexes included); written in"
        f" {spent:.1f} s ({spent / n * 1e6:.0f} µs a change set)"
    )


if __name__ == "__main__":
    main()
