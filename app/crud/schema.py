"""Migration helpers: the schema objects a declared table needs beyond its model.

A table's model declares its columns and plain indexes, which autogenerate
writes into a migration. What the service also expects cannot be declared on a
model, so a new table's migration calls these, as migrations 0006, 0008 and
0015 did by hand for movies and ratings:

    row counter   SQLite: the table's row in `row_counts` (n, version) and the
                  triggers that keep it exact (counts.Counter reads it, and keys
                  the count cache by its version). PostgreSQL: 16 slots a
                  table in `row_count_slots`, kept by statement triggers (0018).
    search index  SQLite: a contentless FTS5 trigram table over the searchable
                  columns, each value folded (accents off, dialect.fold_sql)
                  with an end mark, its term list `<index>_terms` and the
                  triggers that keep it in step (dialect.SQLite.search_match
                  reads them). PostgreSQL: a trigram GIN index per column on
                  its folded value, `ix_<table>_<column>_trgm` over
                  fold_accents(<column>), which serves the ILIKE search
                  (pg_trgm from 0001, unaccent and fold_accents from 0019).

A migration should pass names, not a Resource: it must make the same schema
for as long as it ships, while a declaration may change later. For example:

    def upgrade():
        op.create_table("directors", ...)
        schema.create_row_counter(op, "directors")
        schema.create_search_index(op, "directors", ("name", "country"),
                                   index="directors_search")

`create_declared` / `drop_declared` read all of it off a Resource, for tests
and for a table whose migration is written together with its declaration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic.operations import Operations

from app.crud.dialect import PG_FOLD_FUNCTION, counter_slots, fold_sql
from app.crud.fields import Resource

# After each indexed value: a control character no Text field may hold, so every
# place two letters occur starts a trigram (two-letter searches, migration 0015).
END = "char(31)"
EVENTS = ("insert", "delete", "update")
# PostgreSQL's counter slots a table (0018), and each trigger's (event,
# transition table, function).
PG_SLOTS = 16
PG_TRIGGERS = (
    ("insert", "REFERENCING NEW TABLE AS new_rows", "row_count_slots_inserted"),
    ("delete", "REFERENCING OLD TABLE AS old_rows", "row_count_slots_deleted"),
    ("update", "REFERENCING NEW TABLE AS new_rows", "row_count_slots_updated"),
    ("truncate", "", "row_count_slots_truncated"),
)


def _dialect(op: Operations) -> str:
    """The name of the database the migration runs on."""
    return str(op.get_bind().dialect.name)


# ---------------------------------------------------------------- row counters


def row_counter_sql(table: str, counts: str = "row_counts") -> list[str]:
    """SQLite statements that start and keep `table`'s counter row (0006, 0008)."""
    where = f"WHERE table_name = '{table}'"
    return [
        f"INSERT INTO {counts} (table_name, n) SELECT '{table}', count(*) FROM {table}",
        f"CREATE TRIGGER {counts}_{table}_insert AFTER INSERT ON {table}"
        f" BEGIN UPDATE {counts} SET n = n + 1, version = version + 1 {where}; END",
        f"CREATE TRIGGER {counts}_{table}_delete AFTER DELETE ON {table}"
        f" BEGIN UPDATE {counts} SET n = n - 1, version = version + 1 {where}; END",
        f"CREATE TRIGGER {counts}_{table}_update AFTER UPDATE ON {table}"
        f" BEGIN UPDATE {counts} SET version = version + 1 {where}; END",
    ]


def pg_row_counter_sql(table: str, counts: str = "row_counts") -> list[str]:
    """PostgreSQL statements that seed `table`'s counter slots and triggers (0018).

    The slot table and the trigger functions are 0018's, shared by every table.
    """
    slots = counter_slots(counts)
    made = [
        # SHARE: reads go on, no write slips in between the count and the triggers.
        f"LOCK TABLE {table} IN SHARE MODE",
        f"INSERT INTO {slots} (table_name, slot, n)"
        f" SELECT '{table}', s, CASE WHEN s = 0 THEN (SELECT count(*) FROM {table})"
        f" ELSE 0 END FROM generate_series(0, {PG_SLOTS - 1}) s",
    ]
    for event, referencing, function in PG_TRIGGERS:
        made.append(
            f"CREATE TRIGGER {slots}_{table}_{event}"
            f" AFTER {event.upper()} ON {table} {referencing}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    return made


def create_row_counter(op: Operations, table: str, counts: str = "row_counts") -> None:
    """Count `table`'s rows by triggers: a row in `counts` (SQLite) or its slots."""
    dialect = _dialect(op)
    if dialect == "sqlite":
        statements = row_counter_sql(table, counts)
    elif dialect == "postgresql":
        statements = pg_row_counter_sql(table, counts)
    else:
        return
    for statement in statements:
        op.execute(statement)


def drop_row_counter(op: Operations, table: str, counts: str = "row_counts") -> None:
    """Undo create_row_counter: its triggers and `table`'s counter row or slots."""
    dialect = _dialect(op)
    if dialect == "sqlite":
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {counts}_{table}_{event}")
        op.execute(f"DELETE FROM {counts} WHERE table_name = '{table}'")
    elif dialect == "postgresql":
        slots = counter_slots(counts)
        for event, _referencing, _function in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {slots}_{table}_{event} ON {table}")
        op.execute(f"DELETE FROM {slots} WHERE table_name = '{table}'")


# ---------------------------------------------------------------- search indexes


def fts5_index_sql(index: str, table: str, columns: Sequence[str]) -> list[str]:
    """SQLite statements that make, fill and maintain one FTS5 index (as 0019)."""
    names = ", ".join(columns)

    def values(row: str) -> str:
        """The indexed values of a row (`new`, `old` or the table): folded, END after.

        Folded as searches fold their words (dialect.fold_text): SQLite 3.40's
        trigram tokenizer has no remove_diacritics of its own. Lower-cased as
        LIKE compares (ASCII), into a case-sensitive index: the index then finds
        what LIKE finds, where FTS5's own folding would also fold Cyrillic.
        """
        return ", ".join(f"lower({fold_sql(f'{row}.{c}')}) || {END}" for c in columns)

    add = f"INSERT INTO {index}(rowid, {names}) VALUES (new.id, {values('new')});"
    # A contentless index deletes an entry given the very values it was given.
    remove = (
        f"INSERT INTO {index}({index}, rowid, {names})"
        f" VALUES ('delete', old.id, {values('old')});"
    )
    return [
        f"CREATE VIRTUAL TABLE {index} USING fts5({names},"
        " content='', columnsize=0, tokenize='trigram case_sensitive 1')",
        f"CREATE VIRTUAL TABLE {index}_terms USING fts5vocab({index}, 'row')",
        f"CREATE TRIGGER {index}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {index}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        # Only when a searched column is written: other edits leave the index be.
        f"CREATE TRIGGER {index}_update AFTER UPDATE OF {names} ON {table}"
        f" BEGIN {remove} {add} END",
        f"INSERT INTO {index}(rowid, {names}) SELECT id, {values(table)} FROM {table}",
        # One segment instead of the many a long insert leaves: faster matches.
        f"INSERT INTO {index}({index}) VALUES ('optimize')",
    ]


def trigram_index_sql(table: str, columns: Sequence[str]) -> list[str]:
    """PostgreSQL statements for one trigram GIN index a column (0010, 0019).

    On the folded value, fold_accents(column), which the search compares.
    """
    # fastupdate off: each write goes into the index at once, so searches never
    # read a long pending list (migration 0010).
    return [
        f"CREATE INDEX IF NOT EXISTS ix_{table}_{column}_trgm ON {table}"
        f" USING gin ({PG_FOLD_FUNCTION}({column}) gin_trgm_ops)"
        " WITH (fastupdate = off)"
        for column in columns
    ]


def create_search_index(
    op: Operations, table: str, columns: Sequence[str], index: str
) -> None:
    """Index `columns` for search: FTS5 `index` on SQLite, trigram GIN on PostgreSQL."""
    dialect = _dialect(op)
    if dialect == "sqlite":
        statements = fts5_index_sql(index, table, columns)
    elif dialect == "postgresql":
        statements = trigram_index_sql(table, columns)
    else:
        return
    for statement in statements:
        op.execute(statement)


def drop_search_index(
    op: Operations, table: str, columns: Sequence[str], index: str
) -> None:
    """Undo create_search_index."""
    dialect = _dialect(op)
    if dialect == "sqlite":
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {index}_{event}")
        op.execute(f"DROP TABLE IF EXISTS {index}_terms")
        op.execute(f"DROP TABLE IF EXISTS {index}")
    elif dialect == "postgresql":
        for column in columns:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")


# ---------------------------------------------------------------- from a declaration


def searched_columns(resource: Resource[Any]) -> tuple[str, ...]:
    """The columns a declared table's search index covers: its searchable fields."""
    return tuple(f.name for f in resource.fields if f.searchable)


def create_declared(op: Operations, resource: Resource[Any]) -> None:
    """Make the counter and search index a declaration asks for (see the top)."""
    table = resource.model.__tablename__
    if resource.row_count_table:
        create_row_counter(op, table, resource.row_count_table)
    if resource.search_index and searched_columns(resource):
        create_search_index(
            op, table, searched_columns(resource), resource.search_index
        )


def drop_declared(op: Operations, resource: Resource[Any]) -> None:
    """Undo create_declared."""
    table = resource.model.__tablename__
    if resource.search_index and searched_columns(resource):
        drop_search_index(op, table, searched_columns(resource), resource.search_index)
    if resource.row_count_table:
        drop_row_counter(op, table, resource.row_count_table)
