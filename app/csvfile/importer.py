"""CSV import: classify a file's rows against the table (preview), then write them.

Generic over a Resource declaration: which fields may be set, which identify a
row without an id (`match_on`) and which are copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from app.crud import CrudService, Reference, largest_id
from app.csvfile.reader import BLOCK_BYTES, ParsedRow, read_rows
from app.csvfile.sets import IdSet, SeenKeys

# progress(phase, done, total): "checking" or "writing", rows so far, and how many
# in all (0 when not known yet); called at most once a batch.
Progress = Callable[[str, int, int], None]

MAX_ERRORS = 500  # invalid rows listed in a preview; all are counted
BATCH = 5000  # rows classified (and written) per round of queries


class PreviewOutdated(Exception):
    """The data changed since the preview; nothing was written."""

    def __init__(self, preview: Preview) -> None:
        super().__init__("The table changed since the preview.")
        self.preview = preview


@dataclass(frozen=True)
class RowError:
    """Why one row cannot be imported: its line, column (or "") and reason."""

    line: int
    column: str
    reason: str


@dataclass
class Preview:
    """What an import would do (or did): the counts and the first invalid rows.

    Nothing in it grows with the file but `errors`, which stops at MAX_ERRORS.
    """

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)
    # Rows with an id the table lacks are refused, except in an empty table: there
    # a file (a download being restored) keeps its ids.
    keeps_ids: bool = False

    @property
    def counts(self) -> dict[str, int]:
        """The four counts by name, as shown and as compared before writing."""
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
        }

    @property
    def rows(self) -> int:
        """How many data rows were classified."""
        return self.new + self.changed + self.unchanged + self.invalid

    @property
    def writes(self) -> int:
        """How many rows an import would write."""
        return self.new + self.changed


# An import must leave this many ids free above the largest it writes, so the
# rows created after it still get ids (issue 11).
ID_HEADROOM = 1_000_000


def _chunked(rows: Iterable[ParsedRow], size: int) -> Iterator[list[ParsedRow]]:
    """Yield lists of `size` rows (the last one shorter)."""
    source = iter(rows)
    while chunk := list(islice(source, size)):
        yield chunk


# What the import writes for one batch: rows to insert, (id, changed fields).
_Writes = tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]


class _Classifier:
    """Sort parsed rows into new, changed, unchanged and invalid, batch by batch.

    Each batch costs a few set-based queries (ids, match_on keys, references),
    whatever its size; what the file has shown so far (for duplicates) is kept
    in compact sets, so memory stays small however long the file.
    """

    def __init__(self, svc: CrudService, writing: bool = False) -> None:
        self.svc = svc
        resource = svc.resource
        self.compare = [f.name for f in resource.fields if f.creatable]
        # (name, position in self.compare) of the fields set once, never edited.
        self.fixed = [
            (name, self.compare.index(name))
            for name in self.compare
            if not resource.field(name).editable
        ]
        # (name, position in self.compare) of the fields an import may change.
        self.editable = [
            (name, self.compare.index(name))
            for name in self.compare
            if resource.field(name).editable
        ]
        self.references = [
            f.name for f in resource.fields if isinstance(f.kind, Reference)
        ]
        self.match_on = resource.match_on
        self.largest = largest_id(resource.model)
        # An empty table takes the file's ids: the file is a download being
        # restored (export, import into an empty database gives the same bytes).
        # Otherwise an id the table lacks is refused (issue 11): creating it
        # would move the id sequence past it for every later row.
        self.restoring = not svc.lookups.has_rows()
        # An import writes each batch once it is classified: later batches must
        # not meet those rows, which were not there when the file was checked.
        # Ids are never reused and new rows get ids above the largest, so the
        # rows that were there are the ids up to `newest` (none, when restoring).
        self.writing = writing
        self.newest = svc.lookups.newest_id() if writing else None
        self.preview = Preview()
        # Referenced ids found to exist. A row deleted after it was looked up
        # is not noticed by a preview; an import holds the write lock (SQLite),
        # or the foreign key refuses the row (PostgreSQL) and nothing is written.
        self.known = {name: IdSet() for name in self.references}
        self.seen_ids = IdSet()
        # Hashes, not the keys themselves, keep memory small; a collision could
        # only make a valid row look like a duplicate, never write a wrong one.
        self.seen_keys = SeenKeys(svc)

    def key(self, row: ParsedRow) -> tuple[Any, ...]:
        """The row's values of the match_on fields."""
        return tuple(row.values[n] for n in self.match_on)

    def run(
        self, rows: Iterable[ParsedRow], progress: Progress | None = None
    ) -> Preview:
        """Classify every row and return the preview; `progress` hears each batch."""
        for batch in _chunked(rows, BATCH):
            self.batch(batch)
            if progress is not None:
                progress("checking", self.preview.rows, 0)
        self.seen_keys.close()
        if progress is not None:
            progress("checking", self.preview.rows, 0)
        return self.preview

    def was_there(self, row_id: int) -> bool:
        """True if the row was in the table before this import wrote anything."""
        return not self.writing or (self.newest is not None and row_id <= self.newest)

    def batch(self, rows: list[ParsedRow]) -> _Writes:
        """Classify one batch with a few queries; return what importing it writes."""
        valid = [r for r in rows if not r.errors]
        matched: dict[tuple[Any, ...], list[int]] = {}
        if self.match_on:
            keys = {self.key(r) for r in valid if r.id is None}
            matched = self.svc.lookups.ids_matching(self.match_on, keys)
            if self.writing:
                kept = (
                    (k, [i for i in ids if self.was_there(i)])
                    for k, ids in matched.items()
                )
                matched = {k: ids for k, ids in kept if ids}
        wanted = {r.id for r in valid if r.id is not None}
        wanted.update(ids[0] for ids in matched.values() if len(ids) == 1)
        stored = self.svc.lookups.stored_values(wanted, self.compare)
        if self.writing:
            stored = {i: old for i, old in stored.items() if self.was_there(i)}
        existing = {name: self.existing(name, valid) for name in self.references}
        if self.match_on:
            self.seen_keys.prefetch(hash(self.key(r)) for r in valid)
        writes: _Writes = ([], [])
        for row in rows:
            self.row(row, matched, stored, existing, writes)
        self.seen_keys.flush()
        return writes

    def existing(self, name: str, rows: list[ParsedRow]) -> set[int]:
        """Which of the rows' references in field `name` name an existing row.

        Only ids not seen to exist before are looked up: a file names each movie
        ten times over, say, and the lookups were a third of the checking time.
        """
        asked = {r.values[name] for r in rows}
        known = self.known[name]
        unknown = [i for i in asked if i not in known]
        if not unknown:
            return asked
        found = self.svc.lookups.existing_references(name, unknown)
        for i in found:
            known.add(i)
        return asked.difference(unknown).union(found)

    def row(
        self,
        row: ParsedRow,
        matched: dict[tuple[Any, ...], list[int]],
        stored: dict[int, tuple[Any, ...]],
        existing: dict[str, set[int]],
        writes: _Writes,
    ) -> None:
        """Classify one row: count it, note its errors or what importing it writes."""
        values = row.values
        errors = row.errors
        if not errors:
            for name in self.references:
                if values[name] not in existing[name]:
                    errors = self.missing_references(row, existing)
                    break
        target = row.id
        key = None
        if not errors and self.match_on:
            if target is None:
                target, errors = self.match(row, matched)
            if not errors:
                key = hash(self.key(row))
        if not errors and (
            (target is not None and target in self.seen_ids)
            or (row.id is None and key is not None and key in self.seen_keys)
        ):
            errors = self.duplicates(row, target, key)
        if not errors and row.id is not None and row.id not in stored:
            errors = self.unknown_id(row.id)
        old = stored.get(target) if target is not None and not errors else None
        if old is not None:
            for name, at in self.fixed:
                if values[name] != old[at]:
                    errors = self.fixed_changes(row, old)
                    break
        preview = self.preview
        if errors:
            preview.invalid += 1
            room = MAX_ERRORS - len(preview.errors)
            if room > 0:
                preview.errors.extend(
                    RowError(row.line, c, r) for c, r in errors[:room]
                )
            return
        if target is not None:
            self.seen_ids.add(target)
        if key is not None:
            self.seen_keys.add(key)
        if old is None:
            preview.new += 1
            if row.id is not None:
                preview.keeps_ids = True
                values = {"id": row.id, **values}
            if self.writing:
                writes[0].append(values)
            return
        # values holds the fields in self.compare's order (validate's, the quick
        # path's): one tuple comparison settles the usual unchanged row.
        changed = (
            {
                name: values[name]
                for name, at in self.editable
                if values[name] != old[at]
            }
            if tuple(values.values()) != old
            else None
        )
        if changed:
            preview.changed += 1
            if self.writing:
                assert target is not None
                writes[1].append((target, changed))
        else:
            preview.unchanged += 1

    def missing_references(
        self, row: ParsedRow, existing: dict[str, set[int]]
    ) -> list[tuple[str, str]]:
        """Errors for references to rows that do not exist."""
        errors = []
        for name in self.references:
            kind = self.svc.resource.field(name).kind
            value = row.values[name]
            if isinstance(kind, Reference) and value not in existing[name]:
                target = kind.label_of_target
                errors.append((name, f"There is no {target} with id {value}."))
        return errors

    def unknown_id(self, row_id: int) -> list[tuple[str, str]]:
        """Errors for an id the table lacks: refused, or in an empty table kept."""
        resource = self.svc.resource
        singular = resource.singular
        if not self.restoring:
            reason = (
                f"There is no {singular} with id {row_id}; leave the id empty to"
                f" add it as a new {singular}."
            )
            return [("id", reason)]
        if row_id > self.largest - ID_HEADROOM:
            reason = (
                f"id {row_id:,} is too close to the largest id a {singular} can have"
                f" ({self.largest:,}): there would be no ids left for new"
                f" {resource.name}. Leave the id empty to add it as a new {singular}."
            )
            return [("id", reason)]
        return []

    def match(
        self, row: ParsedRow, matched: dict[tuple[Any, ...], list[int]]
    ) -> tuple[int | None, list[tuple[str, str]]]:
        """Find the stored row a row without id stands for, by the match_on fields."""
        ids = matched.get(self.key(row), [])
        if len(ids) > 1:
            reason = (
                f"matches {len(ids)} existing {self.svc.resource.name};"
                " add the id to choose one."
            )
            return None, [(",".join(self.match_on), reason)]
        return (ids[0] if ids else None), []

    def duplicates(
        self, row: ParsedRow, target: int | None, key: int | None
    ) -> list[tuple[str, str]]:
        """Errors for a row that an earlier row of the file already covers."""
        if target is not None and target in self.seen_ids:
            if row.id is not None:
                return [("id", f"id {target} appears more than once in the file.")]
            reason = (
                f"matches the same {self.svc.resource.singular} (id {target})"
                " as an earlier line."
            )
            return [(",".join(self.match_on), reason)]
        if row.id is None and key is not None and key in self.seen_keys:
            return [(",".join(self.match_on), "repeats an earlier line of the file.")]
        return []

    def fixed_changes(
        self, row: ParsedRow, old: tuple[Any, ...]
    ) -> list[tuple[str, str]]:
        """Errors for changes to fields that can be set once but not edited."""
        errors = []
        for name, at in self.fixed:
            was = old[at]
            if row.values[name] != was:
                label = self.svc.resource.field(name).label
                errors.append((name, f"{label} cannot be changed (it is {was})."))
        return errors


# Where an import reads its file: a path, or a function opening a binary stream
# (an upload kept in the database, read a piece at a time).
Source = Path | Callable[[], AbstractContextManager[BinaryIO]]
# finish(preview, change set id): called inside the import's transaction, after
# its last write; it may write too (the import's "done" state), or raise to undo.
Finish = Callable[["Preview", int | None], None]


def _open(source: Source) -> AbstractContextManager[BinaryIO]:
    """Open an import's source for reading."""
    if isinstance(source, Path):
        return source.open("rb")
    return source()


def preview_file(
    svc: CrudService, path: Source, progress: Progress | None = None
) -> Preview:
    """Parse, validate and classify a CSV file without writing anything.

    `progress`, if given, is called as progress("checking", rows checked so
    far, 0) after each batch of BATCH rows, and once at the end.
    """
    with _open(path) as stream:
        return _Classifier(svc).run(read_rows(svc, stream), progress)


def import_file(
    svc: CrudService,
    path: Source,
    expected: dict[str, int] | None = None,
    progress: Progress | None = None,
    finish: Finish | None = None,
) -> Preview:
    """Write every valid row of a CSV file in one transaction; return what was done.

    The file is classified again inside the write transaction, in one pass: each
    batch of BATCH rows is checked, then written. If `expected` counts are given
    and the file's no longer match them (the table changed since the preview),
    writing stops, the rest is only checked, and PreviewOutdated is raised with
    the new preview: the transaction rolls back, nothing is written. `progress`,
    if given, is called once after each batch: progress("writing", rows written
    so far, rows the preview expects to write or 0) if the batch wrote rows,
    else progress("checking", rows checked so far, rows in the preview or 0).
    `finish`, if given, runs in the same transaction after the last write, so
    what it records commits with the rows or not at all.
    """
    total = expected["new"] + expected["changed"] if expected else 0
    rows_total = sum(expected.values()) if expected else 0
    with svc.transaction() as change_set, ExitStack() as indexes:
        classifier = _Classifier(svc, writing=True)
        preview = classifier.preview
        lines = 0 if expected else _count_lines(path)
        written = 0
        outdated = False
        deferring = False
        with _open(path) as stream:
            for batch in _chunked(read_rows(svc, stream), BATCH):
                inserts, updates = classifier.batch(batch)
                if expected is not None and any(
                    n > expected.get(name, 0) for name, n in preview.counts.items()
                ):
                    outdated = True  # the rest is only checked, for the new preview
                if outdated or not (inserts or updates):
                    if progress is not None:
                        progress("checking", preview.rows, rows_total)
                    continue
                if not deferring:
                    # About to write: tell the service how much, so it can choose
                    # how to keep the indexes (Bulk.deferred_indexes).
                    share = (len(inserts) + len(updates)) / len(batch)
                    estimate = total or int(share * (lines - batch[0].line + 1))
                    indexes.enter_context(svc.bulk.deferred_indexes(estimate))
                    deferring = True
                svc.bulk.insert_many(inserts)
                svc.bulk.update_many(updates)
                written += len(inserts) + len(updates)
                if progress is not None:
                    progress("writing", written, total)
        classifier.seen_keys.close()
        if expected is not None and preview.counts != expected:
            raise PreviewOutdated(preview)
        if finish is not None:
            finish(preview, change_set.id)
    return preview


def _count_lines(path: Source) -> int:
    """Count a file's lines (a block at a time, quick even at the upload limit)."""
    count = 0
    with _open(path) as stream:
        while block := stream.read(BLOCK_BYTES):
            count += block.count(b"\n")
    return count + 1
