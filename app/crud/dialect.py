"""Every difference between SQLite and PostgreSQL the service knows, in one place.

The service never tests a dialect's name: it asks its backend, a `Dialect`. The base
class is what any database gets (plain SQL, nothing held back); `SQLite` and
`PostgreSQL` override where they differ: how text is matched (LIKE, ILIKE, the FTS5
index) and its accents taken off (fold_sql, fold_accents), how a list of values is
sent, how writers queue and time out, the id sequence, the export cursor and the
CSV cell SQL (app/csvfile/cells.py), the counter rows and the index rebuild of big
imports.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.db import PG_LOCK_NOT_AVAILABLE
from app.write_gate import gate_for

# SQLite's "database is locked" (SQLITE_BUSY, SQLITE_LOCKED) and PostgreSQL's
# lock_not_available (app.db): a write that waited for a lock as long as it may.
_SQLITE_LOCK_CODES = (5, 6)


class Dialect:
    """What the service does on any database; subclasses say where theirs differs."""

    name = "default"
    # May a big import drop the table's plain indexes and build them afterwards?
    rebuilds_indexes = False
    # Must a write begin a transaction of its own (app/crud/tx.py end_reads)?
    writes_begin_afresh = False

    # ------------------------------------------------------------ reading

    def contains(
        self, column: sa.ColumnElement[Any], pattern: str
    ) -> sa.ColumnElement[bool]:
        """column LIKE pattern (an escaped `%text%`), ignoring case.

        ILIKE, which the pg_trgm indexes serve on PostgreSQL.
        """
        return column.ilike(pattern, escape="\\")

    def fold(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The text with its accents taken off ("Amélie" -> "Amelie").

        Here: as it is (no folding this service knows of).
        """
        return column

    def contains_folded(
        self, column: sa.ColumnElement[Any], pattern: str
    ) -> sa.ColumnElement[bool]:
        """fold(column) ILIKE fold(pattern): accents and case ignored.

        The pattern is folded by the same function, in the statement, so both
        sides are folded alike; PostgreSQL's trigram indexes on the folded
        columns (migration 0019) serve it.
        """
        folded = self.fold(sa.bindparam(None, pattern, type_=sa.String))
        return self.fold(column).ilike(folded, escape="\\")

    def has_non_ascii(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """True when the text holds a character beyond ASCII (bytes > characters)."""
        octets = sa.func.length(sa.cast(column, sa.LargeBinary))
        return octets != sa.func.length(column)

    def search_match(
        self, index: str | None, words: Sequence[str]
    ) -> sa.Select[Any] | None:
        """SELECT rowid FROM a full-text index holding every word, if one serves.

        Each word is matched accents and case ignored; None when the index cannot
        serve one of them (or there is none).
        """
        return None

    def among(
        self, column: sa.ColumnElement[Any], values: Iterable[Any]
    ) -> sa.ColumnElement[bool]:
        """`column IN values`, the values sent as one parameter however many.

        IN with a parameter a value cost SQLAlchemy time for every value at every
        execution (an import by id looks up many: `python -m bench.imports --only
        speed`), and the database a new statement to parse for each count; a
        JSON array (SQLite's json_each) or an array (PostgreSQL's = ANY) is one
        parameter of a statement compiled and prepared once. The database still
        looks each value up in the column's index.
        """
        return column.in_(list(values))

    def plain_rows(
        self, result: sa.CursorResult[Any], stmt: sa.Select[Any]
    ) -> Sequence[Sequence[Any]]:
        """The rows of an executed SELECT, as tuples."""
        return result.all()

    def counter_row(
        self, session: Session, counts_table: str, table_name: str
    ) -> tuple[int, int] | None:
        """(row count, version) from a table's counter row, or None if none kept."""
        return None

    def counter_version(
        self, counts_table: str, table_name: str
    ) -> sa.ScalarSelect[Any] | None:
        """The table's version as a subquery, to read in a count's own statement."""
        return None

    def cursor(self, driver_connection: Any) -> Any:
        """A DBAPI cursor for streaming a whole result (an export)."""
        return driver_connection.cursor()

    # Whether copy_csv works: the database itself writes a SELECT's rows as CSV.
    copies_csv = False

    def copy_csv(
        self, driver_connection: Any, sql: str, params: Any, batch: int
    ) -> Iterator[list[Any]]:
        """Yield `batch` CSV lines (bytes, each ending in LF) of the SELECT `sql`."""
        raise NotImplementedError(f"{self.name} cannot COPY a query as CSV")

    # ------------------------------------------------------------ CSV cells
    # What app/csvfile/cells.py formats in SQL: PostgreSQL's functions here (what
    # any other database got before), SQLite's printf and GLOB in SQLite.

    def csv_line(
        self, cells: Sequence[sa.ColumnElement[Any]], whole: Sequence[bool]
    ) -> sa.ColumnElement[Any]:
        """Join cells with commas and end with CRLF; NULL becomes an empty cell.

        format() builds the line in one allocation; a chain of || would copy it
        once per piece, which shows at a million rows. `whole` marks never-NULL
        integer cells, which SQLite prints straight from the integer.
        """
        pattern = ",".join("%s" for _ in whole) + "\r\n"
        return sa.func.format(pattern, *cells, type_=sa.String)

    def csv_decimal(self, column: Any, places: int) -> sa.ColumnElement[str]:
        """Format a number with a fixed number of decimals, the same on both."""
        rounded = sa.func.round(sa.cast(column, sa.Numeric), places)
        return sa.cast(rounded, sa.String)

    def contains_any(self, column: Any, chars: str) -> sa.ColumnElement[bool]:
        """True when the text holds any of the characters (a regex class)."""
        return column.op("~")("[" + re.escape(chars) + "]")

    def by_code_point(self, column: Any) -> Any:
        """The text column compared by code point (the "C" collation)."""
        return sa.collate(column, "C")

    # ------------------------------------------------------------ writing

    def import_gate(self, session: Session, bulk: bool) -> AbstractContextManager[bool]:
        """Hold the database's import gate (app/write_gate.py): True if open."""
        return nullcontext(True)

    def writer_turn(
        self, write_lock: AbstractContextManager[Any] | None
    ) -> AbstractContextManager[Any]:
        """Queue this thread behind the process's other writers, where that helps."""
        return nullcontext()

    def start_write(self, connection: sa.Connection, bulk: bool) -> None:
        """Set up a write transaction that has just begun."""

    def lock_timed_out(self, exc: OperationalError) -> bool:
        """True if the database refused a write because a lock stayed taken."""
        return False

    def sync_id_sequence(self, session: Session, table: sa.Table) -> None:
        """Move the id sequence past ids that were inserted explicitly."""

    def next_id(self, session: Session, table: sa.Table) -> int:
        """Take the id the table's next row gets, for a row inserted with it.

        The change log names a change set by its first change's id (never
        reused), known before that row is written. The base asks max(id): right
        only while writers take turns.
        """
        top = session.scalar(sa.select(sa.func.max(table.c.id)))
        return int(top or 0) + 1

    def next_id_sql(self, table: str) -> str:
        """next_id() as an SQL expression, for an INSERT to take it in passing."""
        return f"(SELECT coalesce(max(id), 0) + 1 FROM {table})"

    def json_object(self, *pairs: Any) -> sa.ColumnElement[str]:
        """JSON text of an object from (key, value, key, value...), made in SQL."""
        return sa.func.json_object(*pairs, type_=sa.Text)

    def drop_plain_indexes(
        self, connection: sa.Connection, table: str, keep: set[str]
    ) -> list[str]:
        """Drop a table's plain indexes for a big write; return their CREATE SQL."""
        return []

    def create_indexes(self, connection: sa.Connection, statements: list[str]) -> None:
        """Build indexes again from the statements drop_plain_indexes returned."""
        for statement in statements:
            connection.exec_driver_sql(statement)


class SQLite(Dialect):
    """SQLite: FTS5 search, one writer at a time, counters kept by triggers."""

    name = "sqlite"
    rebuilds_indexes = True
    writes_begin_afresh = True

    def fold(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """fold_accents(column): fold_text, as the FTS5 indexes hold values (0019)."""
        return Folded(column)

    def contains(
        self, column: sa.ColumnElement[Any], pattern: str
    ) -> sa.ColumnElement[bool]:
        """column LIKE pattern: SQLite's LIKE already ignores (ASCII) case.

        SQLAlchemy writes ILIKE for SQLite as lower(column) LIKE lower(pattern):
        two function calls a row, for nothing, as SQLite's LIKE already ignores
        case exactly as far as its lower() does (ASCII). Plain LIKE there makes a
        walk cheaper (W2 of `python -m bench`).
        """
        return column.like(pattern, escape="\\")

    def contains_folded(
        self, column: sa.ColumnElement[Any], pattern: str
    ) -> sa.ColumnElement[bool]:
        """fold(column) LIKE the pattern folded here, as the index's values were.

        LIKE ignores ASCII case, and folding leaves the Latin letters ASCII.
        """
        return self.fold(column).like(fold_text(pattern), escape="\\")

    def search_match(
        self, index: str | None, words: Sequence[str]
    ) -> sa.Select[Any] | None:
        """SELECT rowid FROM the FTS5 index WHERE it MATCHes every word, if it serves.

        The index holds values folded and lower-cased as LIKE compares (ASCII
        letters only; migration 0019), so each word is too, and a word of three
        or more characters is one phrase: a substring of a value (trigrams).
        Phrases are AND-ed, each found in any column.
        """
        if not index or not words:
            return None
        parts: list[str] = []
        params: dict[str, str] = {}
        for n, word in enumerate(words):
            text = ascii_lower(fold_text(word))
            if len(text) >= 3:
                params[f"w{n}"] = '"' + text.replace('"', '""') + '"'
                parts.append(f":w{n}")
            elif len(text) == 2 and text.isascii():
                # No trigram is two characters long, but every value is indexed
                # with an end mark after it (migration 0015), so wherever the two
                # occur a trigram starts with them: match any such in the index's
                # term list (`/ratings?q=xq` on 1,000,000 rows: a scan of seconds
                # becomes an index lookup; `python -m bench.stress` searches two
                # letters).
                params[f"lo{n}"] = text
                params[f"hi{n}"] = text + "\U0010ffff"
                parts.append(
                    "'(' || (SELECT coalesce(group_concat("
                    """'"' || replace(term, '"', '""') || '"', ' OR '), '""')"""
                    f" FROM {index}_terms WHERE term >= :lo{n} AND term <= :hi{n})"
                    " || ')'"
                )
            else:
                return None  # one character: a scan (most rows hold it anyway)
        query = " || ' AND ' || ".join(parts)
        match = sa.text(f"{index} MATCH ({query})").bindparams(**params)
        return sa.select(sa.column("rowid")).select_from(sa.table(index)).where(match)

    def among(
        self, column: sa.ColumnElement[Any], values: Iterable[Any]
    ) -> sa.ColumnElement[bool]:
        """`column IN (SELECT value FROM json_each(:values))`: one parameter."""
        items = sa.func.json_each(
            sa.bindparam(None, json.dumps(list(values)), type_=sa.String)
        ).table_valued("value")
        return column.in_(sa.select(items.c.value))

    def plain_rows(
        self, result: sa.CursorResult[Any], stmt: sa.Select[Any]
    ) -> Sequence[Sequence[Any]]:
        """The driver's own rows when no selected column converts values.

        Making SQLAlchemy Rows of them cost as much as reading them (an import by
        id reads each row once: `python -m bench.imports --only speed`).
        """
        dialect = result.dialect
        if any(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in stmt.selected_columns
        ):
            return result.all()
        try:
            return result.cursor.fetchall()
        finally:
            result.close()

    def counter_row(
        self, session: Session, counts_table: str, table_name: str
    ) -> tuple[int, int] | None:
        """Read the counter row the triggers keep (migration 0006)."""
        stmt = sa.text(
            f"SELECT n, version FROM {counts_table} WHERE table_name = :name"
        )
        row = session.execute(stmt.bindparams(name=table_name)).first()
        return (row[0], row[1]) if row is not None else None

    def counter_version(
        self, counts_table: str, table_name: str
    ) -> sa.ScalarSelect[Any] | None:
        """SELECT version FROM the table's counter row."""
        return (
            sa.select(sa.column("version"))
            .select_from(sa.table(counts_table))
            .where(sa.column("table_name") == table_name)
            .scalar_subquery()
        )

    def csv_line(
        self, cells: Sequence[sa.ColumnElement[Any]], whole: Sequence[bool]
    ) -> sa.ColumnElement[Any]:
        """printf() the line, never-NULL integers with %d, as UTF-8 bytes.

        %d prints straight from the integer, without making a text copy first.
        As a BLOB the driver hands over the UTF-8 bytes as they are, instead of
        decoding each line to str for us to encode again.
        """
        pattern = ",".join("%d" if w else "%s" for w in whole) + "\r\n"
        return sa.cast(sa.func.printf(pattern, *cells), sa.LargeBinary)

    def csv_decimal(self, column: Any, places: int) -> sa.ColumnElement[str]:
        """Format a number with a fixed number of decimals: printf, NULL kept."""
        formatted = sa.func.printf(f"%.{places}f", column, type_=sa.String)
        return sa.case((column.is_(None), sa.null()), else_=formatted)

    def contains_any(self, column: Any, chars: str) -> sa.ColumnElement[bool]:
        """True when the text holds any of the characters.

        One GLOB per character: a '*x*' pattern takes SQLite's fast path, a
        character class does not.
        """
        return sa.or_(*(column.op("GLOB")(f"*{c}*") for c in chars))

    def by_code_point(self, column: Any) -> Any:
        """The column as it is: SQLite's default collation compares code points."""
        return column

    def import_gate(self, session: Session, bulk: bool) -> AbstractContextManager[bool]:
        """Hold the SQLite database's import gate (app/write_gate.py): True if open."""
        bind = session.get_bind()
        gate = gate_for(bind.engine.url.database)
        if gate is None:
            return nullcontext(True)
        return gate.exclusive() if bulk else gate.ordinary()

    def writer_turn(
        self, write_lock: AbstractContextManager[Any] | None
    ) -> AbstractContextManager[Any]:
        """Queue this thread behind the process's other SQLite writers.

        SQLite lets one writer in at a time; a thread that finds the lock taken
        sleeps in SQLite's busy handler (1, 2, 5, 10 ms...) and wakes late. Threads
        of one process queue on a lock instead and go as soon as it is free, so
        only the processes contend in SQLite. PostgreSQL locks rows, not the file.
        """
        return nullcontext() if write_lock is None else write_lock

    def lock_timed_out(self, exc: OperationalError) -> bool:
        """True for "database is locked": the busy_timeout ran out."""
        code = getattr(exc.orig, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_LOCK_CODES

    def next_id(self, session: Session, table: sa.Table) -> int:
        """The id AUTOINCREMENT gives next: past every id ever handed out.

        Safe to take ahead of the INSERT: SQLite lets one writer in at a time.
        """
        stmt = sa.text("SELECT seq FROM sqlite_sequence WHERE name = :name")
        seq = session.scalar(stmt.bindparams(name=table.name))
        return int(seq or 0) + 1

    def next_id_sql(self, table: str) -> str:
        """next_id() as an SQL expression (one statement less for an edit)."""
        return (
            "(SELECT coalesce(max(seq), 0) + 1 FROM sqlite_sequence"
            f" WHERE name = '{table}')"
        )

    def drop_plain_indexes(
        self, connection: sa.Connection, table: str, keep: set[str]
    ) -> list[str]:
        """Drop the table's plain indexes (see Bulk.deferred_indexes); their SQL.

        Unique indexes stay (they enforce), as do those whose first column is in
        `keep`.
        """
        quote = connection.dialect.identifier_preparer.quote
        statements = []
        listed = connection.exec_driver_sql(f"PRAGMA index_list({quote(table)})")
        for _seq, name, unique, origin, *_rest in listed.all():
            if unique or origin != "c":
                continue
            info = connection.exec_driver_sql(f"PRAGMA index_info({quote(name)})")
            first = info.first()
            if first is not None and first[2] in keep:
                continue
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                (name,),
            ).scalar()
            if not sql:
                continue
            connection.exec_driver_sql(f"DROP INDEX {quote(name)}")
            statements.append(sql)
        return statements

    def create_indexes(self, connection: sa.Connection, statements: list[str]) -> None:
        """Build the dropped indexes again, with a small page cache.

        CREATE INDEX sorts in memory up to the page cache's size, then merges
        runs from temporary files: with 2 MB it took less CPU than with the
        connection's 16 MB, and less memory (`python -m bench.imports --only
        speed` prints an import's CPU time and peak RSS).
        """
        cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        connection.exec_driver_sql(f"PRAGMA cache_size = {_REBUILD_CACHE}")
        try:
            super().create_indexes(connection, statements)
        finally:
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache or 0)}")


class PostgreSQL(Dialect):
    """PostgreSQL: pg_trgm ILIKE, row locks, sequences, named cursors, counter slots."""

    name = "postgresql"

    def fold(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """fold_accents(column): unaccent, IMMUTABLE, as the indexes hold it (0019)."""
        return Folded(column)

    def among(
        self, column: sa.ColumnElement[Any], values: Iterable[Any]
    ) -> sa.ColumnElement[bool]:
        """`column = ANY(:values)`: one array parameter."""
        array = sa.ARRAY(column.type)
        return column == sa.any_(sa.bindparam(None, list(values), type_=array))

    def counter_row(
        self, session: Session, counts_table: str, table_name: str
    ) -> tuple[int, int] | None:
        """(row count, version) summed over the table's counter slots (0018).

        The count adds what this transaction has written and not yet committed
        (kept in a setting until the commit moves it into a slot), so a writer
        counts its own rows as on SQLite. None if the table has no slots.
        """
        slots = counter_slots(counts_table)
        stmt = sa.text(
            "SELECT coalesce(sum(n), 0) + coalesce(nullif("
            "current_setting(:setting, true), '')::bigint, 0),"
            f" coalesce(sum(version), 0), count(*) FROM {slots}"
            " WHERE table_name = :name"
        ).bindparams(name=table_name, setting=PG_PENDING_SETTING + table_name)
        row = session.execute(stmt).one()
        return (int(row[0]), int(row[1])) if row[2] else None

    def counter_version(
        self, counts_table: str, table_name: str
    ) -> sa.ScalarSelect[Any] | None:
        """SELECT sum(version) over the table's counter slots (0018).

        Every committed write raises it and snapshots see commits in one order,
        so it names one state of the table; counts.Counter reads it in the
        count's own statement (each statement sees a newer snapshot).
        """
        return (
            sa.select(sa.func.coalesce(sa.func.sum(sa.column("version")), 0))
            .select_from(sa.table(counter_slots(counts_table)))
            .where(sa.column("table_name") == table_name)
            .scalar_subquery()
        )

    def cursor(self, driver_connection: Any) -> Any:
        """A named (server-side) cursor.

        It fetches `batch` rows per round trip instead of loading the whole result
        into the client.
        """
        return driver_connection.cursor(name="reeltable_" + secrets.token_hex(4))

    copies_csv = True

    def copy_csv(
        self, driver_connection: Any, sql: str, params: Any, batch: int
    ) -> Iterator[list[Any]]:
        """COPY (sql) TO STDOUT as CSV, streamed: `batch` lines (rows) at a time.

        PostgreSQL quotes a cell holding a comma, a quote, CR or LF and doubles its
        quotes, as app/csvfile/cells.py does; NULL is an empty cell. Each CopyData
        message is one row. psycopg merges `params` into the statement client-side
        (COPY takes no bind parameters), quoted by libpq.
        """
        if not params:
            # psycopg reads %-placeholders (and %% escapes) only when given params.
            sql, params = sql.replace("%%", "%"), None
        statement = f"COPY ({sql}) TO STDOUT (FORMAT csv)"
        encoding = driver_connection.info.encoding
        with (
            driver_connection.cursor() as cursor,
            cursor.copy(statement, params) as copy,
        ):
            lines: list[bytes] = []
            for line in copy:
                # Copied out now: holding a batch of psycopg's buffers (views of
                # libpq's memory) made the export three times slower (measured).
                row = bytes(line)
                if encoding != "utf-8":  # the export is UTF-8 whatever the client's
                    row = row.decode(encoding).encode()
                lines.append(row)
                if len(lines) >= batch:
                    yield lines
                    lines = []
            if lines:
                yield lines

    def start_write(self, connection: sa.Connection, bulk: bool) -> None:
        """Let an import wait for row locks as long as it must.

        Every connection opens with app.db.PG_LOCK_TIMEOUT_MS: a row an import (or
        anyone) holds makes an ordinary write wait that long, then answer 503,
        never hang (issue 11). An import is one long transaction that other
        writers step aside for; failing it on a passing lock would waste it.
        """
        if bulk:
            connection.exec_driver_sql("SET LOCAL lock_timeout = 0")

    def lock_timed_out(self, exc: OperationalError) -> bool:
        """True for lock_not_available: the lock_timeout ran out."""
        return getattr(exc.orig, "sqlstate", None) == PG_LOCK_NOT_AVAILABLE

    def next_id(self, session: Session, table: sa.Table) -> int:
        """Take the next id from the table's sequence (spent even on rollback)."""
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        return int(session.scalar(sa.select(sa.func.nextval(sequence))) or 0)

    def next_id_sql(self, table: str) -> str:
        """next_id() as an SQL expression, for an INSERT to take it in passing."""
        return f"nextval(pg_get_serial_sequence('{table}', 'id'))"

    def json_object(self, *pairs: Any) -> sa.ColumnElement[str]:
        """JSON text of an object from (key, value, key, value...), made in SQL."""
        return sa.cast(sa.func.json_build_object(*pairs), sa.Text)

    def sync_id_sequence(self, session: Session, table: sa.Table) -> None:
        """Move the id sequence past ids that were inserted explicitly.

        SQLite needs nothing: AUTOINCREMENT keeps its sequence past every id
        inserted (0011).
        """
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        # Forward only: ids between max(id) and the sequence may be rows in the
        # trash, whose Undo needs them. nextval() spends one id, but reads the
        # sequence's position in a way no concurrent insert can undercut.
        handed_out = session.scalar(sa.select(sa.func.nextval(sequence)))
        top = session.scalar(sa.select(sa.func.max(table.c.id)))
        if top is not None and handed_out is not None and top >= handed_out:
            session.execute(sa.select(sa.func.setval(sequence, top)))


# ------------------------------------------------------------ folding accents
# Latin letters (U+00C0-U+017F) and what PostgreSQL's unaccent makes of each (its
# unaccent.rules): what SQLite's search indexes and compares without. PostgreSQL
# folds with unaccent itself, which knows more letters (migration 0019).
_FOLDS = (
    "ÀA ÁA ÂA ÃA ÄA ÅA ÆAE ÇC ÈE ÉE ÊE ËE ÌI ÍI ÎI ÏI ÐD ÑN ÒO ÓO ÔO ÕO ÖO ×* ØO "
    "ÙU ÚU ÛU ÜU ÝY ÞTH ßss àa áa âa ãa äa åa æae çc èe ée êe ëe ìi íi îi ïi ðd "
    "ñn òo óo ôo õo öo ÷/ øo ùu úu ûu üu ýy þth ÿy ĀA āa ĂA ăa ĄA ąa ĆC ćc ĈC ĉc "
    "ĊC ċc ČC čc ĎD ďd ĐD đd ĒE ēe ĔE ĕe ĖE ėe ĘE ęe ĚE ěe ĜG ĝg ĞG ğg ĠG ġg ĢG "
    "ģg ĤH ĥh ĦH ħh ĨI ĩi ĪI īi ĬI ĭi ĮI įi İI ıi ĲIJ ĳij ĴJ ĵj ĶK ķk ĸq ĹL ĺl ĻL "
    "ļl ĽL ľl ĿL ŀl ŁL łl ŃN ńn ŅN ņn ŇN ňn ŉ'n ŊN ŋn ŌO ōo ŎO ŏo ŐO őo ŒOE œoe "
    "ŔR ŕr ŖR ŗr ŘR řr ŚS śs ŜS ŝs ŞS şs ŠS šs ŢT ţt ŤT ťt ŦT ŧt ŨU ũu ŪU ūu ŬU "
    "ŭu ŮU ůu ŰU űu ŲU ųu ŴW ŵw ŶY ŷy ŸY ŹZ źz ŻZ żz ŽZ žz ſs"
)
FOLDS: dict[str, str] = {pair[0]: pair[1:] for pair in _FOLDS.split()}
_FOLD_TABLE = str.maketrans(FOLDS)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# What each of U+00C0-U+017F folds to, two characters each (space-padded), as an
# SQL string literal.
_FOLD_TARGETS = "".join(
    (FOLDS[chr(code)] + " ")[:2] for code in range(0xC0, 0x180)
).replace("'", "''")
# PostgreSQL's IMMUTABLE wrapper of unaccent (migration 0019), which its
# trigram indexes are built on; SQLite connections get one of the name (Folded).
PG_FOLD_FUNCTION = "fold_accents"


def fold_text(text: str) -> str:
    """Take the accents off text as SQLite's fold_sql does ("Amélie" -> "Amelie")."""
    return text.translate(_FOLD_TABLE)


def ascii_lower(text: str) -> str:
    """Lower-case the ASCII letters alone, as SQLite's lower() and LIKE do."""
    return text.translate(_ASCII_LOWER)


def fold_sql(value: str) -> str:
    """SQLite SQL that takes the accents off a text expression, as fold_text does.

    Character by character (json_each of an array as long as the text), each
    letter U+00C0-U+017F looked up in FOLD_TARGETS; a replace() a letter would
    nest deeper than SQLite's parser allows. ASCII text (as long in bytes as in
    characters) is taken as it is, so only values with other letters pay
    (about 20 µs for a short one).
    """
    return (
        f"CASE WHEN length(CAST({value} AS BLOB)) = length({value}) THEN {value}"
        " ELSE (SELECT group_concat(CASE WHEN unicode(c) BETWEEN 192 AND 383"
        f" THEN rtrim(substr('{_FOLD_TARGETS}', 2 * unicode(c) - 383, 2))"
        f" ELSE c END, '') FROM (SELECT substr({value}, key + 1, 1) AS c"
        f" FROM json_each('[' || replace(hex(zeroblob(length({value}))), '00', '0,')"
        f" || '0]') WHERE key < length({value}))) END"
    )


class Folded(FunctionElement[str]):
    """A text expression with its accents taken off: fold_accents(text).

    PostgreSQL's is the IMMUTABLE wrapper of unaccent of migration 0019, which its
    trigram indexes are built on; SQLite's is fold_text, given to every connection
    as a function of the same name (_sqlite_fold_function). SQLite's search
    indexes fold with fold_sql in their triggers, where no Python runs (another
    program may write the file); a query's row-by-row test folds in Python, about
    1 µs a value against 20 for fold_sql (the walk of Statements.walk).
    """

    type = sa.String()
    inherit_cache = True
    name = PG_FOLD_FUNCTION


@compiles(Folded)
def _fold(element: Folded, compiler: SQLCompiler, **kw: Any) -> str:
    """fold_accents(text), on either database."""
    return f"{PG_FOLD_FUNCTION}({compiler.process(element.clauses, **kw)})"


def _fold_value(value: Any) -> Any:
    """SQLite's fold_accents(): fold_text of a text, any other value as it is."""
    if isinstance(value, str) and not value.isascii():
        return value.translate(_FOLD_TABLE)
    return value


@event.listens_for(Engine, "connect")
def _sqlite_fold_function(dbapi_connection: Any, _record: Any) -> None:
    """Give every SQLite connection fold_accents(text) (see Folded)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(
            PG_FOLD_FUNCTION, 1, _fold_value, deterministic=True
        )


_REBUILD_CACHE = -2048  # KiB of page cache while indexes are built (see there)
# The transaction-local setting where PostgreSQL's triggers keep a table's
# uncommitted change in rows (migration 0018), + the table's name.
PG_PENDING_SETTING = "reeltable.row_count_"


def counter_slots(counts_table: str) -> str:
    """The PostgreSQL table of counter slots beside SQLite's `counts_table`.

    row_counts (SQLite, one row a table) -> row_count_slots (PostgreSQL, 16).
    """
    return counts_table.removesuffix("s") + "_slots"


_BACKENDS: dict[str, Dialect] = {d.name: d for d in (SQLite(), PostgreSQL())}
_DEFAULT = Dialect()


def backend_of(session: Session) -> Dialect:
    """The Dialect of the database a session talks to."""
    return _BACKENDS.get(session.get_bind().dialect.name, _DEFAULT)
