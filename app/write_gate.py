"""While an import writes a SQLite database, other writers hear so at once (issue 11).

SQLite has one writer at a time, and an import's transaction holds the write lock
for its whole length (a million rows: tens of seconds). Every other writer waited
busy_timeout (10 s) in SQLite and then failed with "database is locked", a 500.
Two flock()ed files next to the database file let them know without waiting:

- `<database>-import.lock`: an import holds it exclusively for its whole write
  transaction; an ordinary write, or a second import, that finds it taken is
  refused at once (the caller raises WriteBusy, a 503);
- `<database>-writes.lock`: every ordinary write holds it shared for its
  transaction; an import, once it holds the first file, takes this one
  exclusively, so it waits for the writes already under way and for no new one
  (a writer arriving meanwhile finds the first file taken).

The kernel drops a flock when its process ends, however it ends (kill -9, a
killed worker), so a crashed import never keeps the gate shut. The files belong
to the database, not to an instance folder: every app, worker and command using
that database meets the same gate.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WriteGate:
    """The import gate of one SQLite database file (see the module docstring)."""

    def __init__(self, database: Path) -> None:
        self.imports = database.with_name(database.name + "-import.lock")
        self.writes = database.with_name(database.name + "-writes.lock")

    @staticmethod
    def _open(path: Path) -> int:
        """Open (creating) one of the lock files; only the server's user may read it."""
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    @staticmethod
    def _try(fd: int, operation: int) -> bool:
        """flock() without waiting; False if another holder is in the way."""
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    @contextmanager
    def ordinary(self) -> Iterator[bool]:
        """Hold the gate for an ordinary write; yield False if an import holds it."""
        probe = self._open(self.imports)
        try:
            # A look only: holding it could keep a waiting import out for good.
            free = self._try(probe, fcntl.LOCK_SH)
        finally:
            os.close(probe)
        if not free:
            yield False
            return
        writing = self._open(self.writes)
        try:
            # Taken since the look above: an import is about to write.
            yield self._try(writing, fcntl.LOCK_SH)
        finally:
            os.close(writing)

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Hold the gate for an import; yield False if another import holds it.

        Once it has the first file it waits for the ordinary writes under way
        (each a few milliseconds; no new one starts).
        """
        importing = self._open(self.imports)
        try:
            if not self._try(importing, fcntl.LOCK_EX):
                yield False
                return
            writing = self._open(self.writes)
            try:
                fcntl.flock(writing, fcntl.LOCK_EX)
                yield True
            finally:
                os.close(writing)
        finally:
            os.close(importing)

    def note(self, text: str) -> None:
        """Leave a line in the import lock file for others to read (noted()).

        Only its holder writes it: an import says how far it got, which it cannot
        write to the database while it holds the write lock (issue 15).
        """
        fd = os.open(self.imports, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            data = text.encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

    def noted(self) -> str | None:
        """The holder's note if an import holds the gate now, else None."""
        fd = self._open(self.imports)
        try:
            if self._try(fd, fcntl.LOCK_SH):
                return None  # free: the note, if any, is a dead import's
            return os.pread(fd, 4096, 0).decode(errors="replace")
        finally:
            os.close(fd)


def gate_for(database: str | None) -> WriteGate | None:
    """The gate of a SQLite database file, or None for an in-memory one."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return WriteGate(Path(database).absolute())
