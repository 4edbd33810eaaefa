"""CrudService[M]: the facade the views call, one per table and request.

It wires the parts together and adds the rules that span them: a write is one
transaction (tx) that logs what it changes (changes), a stale edit may merge
(validate.holds), a delete is offered for undo (trash), a change set can be
undone and redone (changes.ChangeLog). Reading is delegated to
select/plan/counts; loaders and imports call the parts bulk and lookup
themselves (svc.bulk, svc.lookups), and embedded lists, figures and the export
the reader (svc.reader).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy.orm import Session, scoped_session

from app.crud.bulk import Bulk
from app.crud.changes import ChangeLog, ChangeSet
from app.crud.counts import CountCache, Counter
from app.crud.dialect import backend_of
from app.crud.errors import Conflict, NotFound, StaleWrite
from app.crud.fields import M, Resource, fits_id, table_of
from app.crud.lookup import Lookups
from app.crud.part import Part
from app.crud.plan import Reader
from app.crud.query import ListQuery, Page, parse_query
from app.crud.select import Statements
from app.crud.trash import Snapshots
from app.crud.tx import write_transaction
from app.crud.validate import MERGE_ATTEMPTS, holds, validate

# The session.info key naming the last change set a write of the session
# committed, as (table name, set id): a view offers its undo (app/views/history.py).
LAST_SET = "reeltable.last_set"


class CrudService(Part[M]):
    """List, get, create, update, delete and export rows of one declared table.

    It knows SQLAlchemy and the declarations in app.resources, and nothing of
    Flask requests or HTML. Errors are typed (app.crud.errors) so views can map
    them to 400/404/409/422/503. The parts it delegates to are built on first use.
    """

    def __init__(
        self,
        resource: Resource[M],
        session: Session | scoped_session[Any],
        page_size: int = 50,
        max_page_size: int = 500,
        counts: CountCache | None = None,
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        # Resolve a scoped session to the current one: the service lives for one
        # request or command, and needs the real Session's transaction methods.
        real = session() if isinstance(session, scoped_session) else session
        super().__init__(real, resource, backend_of(real))
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.counts = counts
        self.write_lock = write_lock
        # The change set of this service's last committed write, if it logged one.
        self.last_set: int | None = None

    # ------------------------------------------------------------ the parts

    @property
    def dialect(self) -> str:
        """The database's dialect name: "sqlite" or "postgresql"."""
        return self.backend.name

    @functools.cached_property
    def statements(self) -> Statements:
        """The one WHERE / ORDER BY builder for this table."""
        return Statements(self.resource, self.backend)

    @functools.cached_property
    def reader(self) -> Reader:
        """Reads pages: sort-index walks, ids-first deep pages, summaries."""
        return Reader(self.session, self.statements)

    @functools.cached_property
    def counter(self) -> Counter:
        """Counts rows, with the app's count cache."""
        return Counter(self.session, self.statements, self.counts)

    @functools.cached_property
    def snapshots(self) -> Snapshots:
        """Snapshots of deleted rows, for undo."""
        return Snapshots(self.session, self.resource, self.backend)

    @functools.cached_property
    def changelog(self) -> ChangeLog:
        """Undo and redo of change sets of this table and its children."""
        return ChangeLog(self.session, self.backend, self.resource.family)

    @functools.cached_property
    def bulk(self) -> Bulk:
        """Multi-row inserts and updates for loaders and imports."""
        single = functools.partial(self.transaction, bulk=False)
        return Bulk(self.session, self.resource, self.backend, self.counter, single)

    @functools.cached_property
    def lookups(self) -> Lookups:
        """Many-row lookups by id or key, for imports."""
        return Lookups(self.session, self.resource, self.backend)

    # ------------------------------------------------------------ reading

    def parse_query(self, args: Mapping[str, str]) -> ListQuery:
        """Validate query-string arguments into a ListQuery or raise QueryError."""
        return parse_query(self.resource, args, self.page_size, self.max_page_size)

    def list(self, query: ListQuery) -> Page[M]:
        """Return one page of rows matching the query, with counts and summaries."""
        # Counts first: how many rows match decides how the page is best read.
        total, grand_total = self.counter.totals(query)
        items = self.reader.items(query, total, grand_total)
        summaries = self.reader.summaries([row.id for row in items])
        return Page(items, total, grand_total, query, summaries)

    def count(self, query: ListQuery | None = None) -> int:
        """Return the number of rows in the table, or of those matching `query`."""
        return self.counter.count(query)

    def get(self, row_id: int, fresh: bool = False) -> M:
        """Return the row with this id or raise NotFound; `fresh` reads past caches."""
        # Every id in a URL comes here first: one no row can have is not asked for.
        row = None
        if fits_id(self.model, row_id):
            # A write must compare against the stored row: one this session cached
            # earlier may be older than what the UPDATE will meet.
            row = self.session.get(self.model, row_id, populate_existing=fresh)
        if row is None:
            raise NotFound(f"No {self.resource.singular} with id {row_id}.")
        return row

    # ------------------------------------------------------------ writing

    @contextmanager
    def transaction(self, bulk: bool = True) -> Iterator[ChangeSet]:
        """Open one write transaction: commit if the body succeeds, else roll back.

        It yields the change set the body writes (tx.write_transaction): an
        import undoes as one. Once committed, the set is `last_set` (and LAST_SET
        in the session's info). A `bulk` write (an import) makes other writers
        get WriteBusy until it ends, and gets WriteBusy if another bulk write is
        under way (app/write_gate.py); a single edit passes bulk=False.
        """
        with write_transaction(
            self.session, self.backend, self.write_lock, bulk
        ) as log:
            yield log
        if log.id is not None:
            self.last_set = log.id
            self.session.info[LAST_SET] = (self.resource.name, log.id)

    def validate(
        self,
        data: Mapping[str, Any],
        *,
        creating: bool,
        check_references: bool = True,
    ) -> dict[str, Any]:
        """Validate input against the declaration (see validate.validate)."""
        return validate(self.resource, self.session, data, creating, check_references)

    def create(self, data: Mapping[str, Any]) -> M:
        """Validate and insert a new row; return it."""
        with self.transaction(bulk=False) as log:
            values = self.validate(data, creating=True)
            row = self.model(**values)
            self.session.add(row)
            self.session.flush()
            stored: Any = row  # every declared model has an id
            log.created(table_of(self.model), [stored.id])
        return row

    def update(
        self,
        row_id: int,
        data: Mapping[str, Any],
        version: int,
        original: Mapping[str, Any] | None = None,
    ) -> M:
        """Save data if the row is at `version` or its fields still hold `original`."""
        # Without `original` a stale version is a conflict at once; with it, a write
        # that lands between our read and our UPDATE (the version in the UPDATE's
        # WHERE catches it) is worth another look, as it may have touched other
        # fields only.
        attempts = 1 if original is None else MERGE_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction(bulk=False) as log:
                    row = self.get(row_id, fresh=True)
                    stored: Any = row  # every declared model has a version
                    if stored.version != version and not holds(
                        self.resource, row, data, original
                    ):
                        raise Conflict(row)
                    values = self.validate(data, creating=False)
                    old = {name: getattr(row, name) for name in values}
                    for name, value in values.items():
                        setattr(row, name, value)
                    self.session.flush()
                    new = {name: getattr(row, name) for name in values}
                    log.updated(
                        self.model.__tablename__, row_id, old, new, stored.version
                    )
                    # For the answer, which shows them (Reader.keep_summaries).
                    summaries = self.reader.summaries([row_id])
                self.reader.keep_summaries([row_id], summaries)
                return row
            except StaleWrite:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def trash(
        self, row_id: int, version: int | None = None, owner: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Delete a row but keep its snapshot for undo(); return (token, snapshot).

        The snapshot is stored in the database, in the delete's own transaction, so
        any server process can undo it until it expires. `owner` (e.g. "user:7")
        is stored with it: only that owner may undo it (issue 12).
        """
        with self.transaction(bulk=False):
            row: Any = self.get(row_id)  # every declared model has a version
            if version is not None and row.version != version:
                raise Conflict(row)
            snapshot = self.snapshots.remove(row)
            token = self.snapshots.keep(snapshot, owner)
        return token, snapshot

    def undo(self, token: str, owner: str | None = None) -> M:
        """Restore the row trashed under `token` (once) and return it.

        The delete's change set is undone (a change set of its own). Raises
        NotFound if the token is unknown, used, expired, of another table or of
        another owner (see Snapshots.take), Conflict if the row is back already.
        """
        with self.transaction(bulk=False):
            set_id, row_id = self.snapshots.take(token, owner)
            self.snapshots.undo(set_id)
        return self.get(row_id)

    def undo_set(self, set_id: int) -> int:
        """Undo a change set of this table (and its children); return the new set.

        Raises NotFound for an unknown set, UndoRefused (a Conflict naming who
        changed what since) if a value it would restore was changed after it.
        """
        with self.transaction(bulk=False):
            return self.changelog.undo(set_id)

    def redo_set(self, set_id: int) -> int:
        """Do an undone change set again; return the new set (see undo_set)."""
        with self.transaction(bulk=False):
            return self.changelog.redo(set_id)
