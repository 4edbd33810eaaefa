"""Search that finds what people mean: accents ignored, words in any order.

"amelie" finds "Amélie", "kubrick shining" finds The Shining by Stanley Kubrick:
each word of a search is matched on its own, accents and case ignored, in any
searched column (app/crud/query.py search_words, app/crud/select.py).

SQLite: both FTS5 trigram indexes are rebuilt over folded values, case-sensitive
(`trigram case_sensitive 1`) over values whose ASCII letters are lower-cased, so
the index finds what LIKE finds (FTS5 would also fold Cyrillic case, which LIKE,
the row-by-row test of a walk or scan, cannot). SQLite 3.40's
trigram tokenizer has no remove_diacritics option (3.45 added one), and
unicode61's, which has, cannot find part of a word; so the triggers fold each
value before indexing it: each Latin letter U+00C0-U+017F mapped as PostgreSQL's
unaccent.rules maps it (character by character through json_each), skipped for
ASCII values (length in bytes = length in characters). The search folds its
words the same way (dialect.py fold_text, fold_sql), and its row-by-row test
compares folded values too.

PostgreSQL: the `unaccent` extension (in `public`, as pg_trgm; trusted, so the
database owner may create it), an IMMUTABLE wrapper `fold_accents(text)` (an
index may only use immutable functions; unaccent() is STABLE), and the four
trigram GIN indexes rebuilt on fold_accents(column) under their old names. For a
superuser the wrapper calls unaccent's C function through an IMMUTABLE C
declaration of it, so the planner inlines it: about 0.4 µs a value against 2.3
µs through a plain SQL wrapper (measured on 100,000 movies), which every match's
recheck pays. The indexes on the raw columns served nothing any more.

Downgrade: back to 0018 (0015's indexes on SQLite, raw-column trigram indexes on
PostgreSQL); the unaccent extension stays, as other schemas may use it.

Revision ID: 0019_search_words
Revises: 0018_pg_row_counts
Create Date: 2026-12-01
"""

from alembic import op

revision = "0019_search_words"
down_revision = "0018_pg_row_counts"
branch_labels = None
depends_on = None

# index -> (table, searched columns): the `searchable` fields in app/resources.py.
INDEXES = {
    "movies_search": ("movies", ("name", "director")),
    "ratings_search": ("ratings", ("author", "movie_name")),
}
END = "char(31)"  # after each indexed value; Text fields refuse C0 controls
# (table, column) of each PostgreSQL trigram index, ix_<table>_<column>_trgm.
POSTGRESQL = (
    ("movies", "name"),
    ("movies", "director"),
    ("ratings", "author"),
    ("ratings", "movie_name"),
)
FUNCTION = "fold_accents"
C_FUNCTION = "fold_accents_dict"

# What PostgreSQL's unaccent.rules makes of each Latin letter U+00C0-U+017F,
# as this revision indexes them (app/crud/dialect.py keeps the same).
FOLDS = (
    "ÀA ÁA ÂA ÃA ÄA ÅA ÆAE ÇC ÈE ÉE ÊE ËE ÌI ÍI ÎI ÏI ÐD ÑN ÒO ÓO ÔO ÕO ÖO ×* ØO "
    "ÙU ÚU ÛU ÜU ÝY ÞTH ßss àa áa âa ãa äa åa æae çc èe ée êe ëe ìi íi îi ïi ðd "
    "ñn òo óo ôo õo öo ÷/ øo ùu úu ûu üu ýy þth ÿy ĀA āa ĂA ăa ĄA ąa ĆC ćc ĈC ĉc "
    "ĊC ċc ČC čc ĎD ďd ĐD đd ĒE ēe ĔE ĕe ĖE ėe ĘE ęe ĚE ěe ĜG ĝg ĞG ğg ĠG ġg ĢG "
    "ģg ĤH ĥh ĦH ħh ĨI ĩi ĪI īi ĬI ĭi ĮI įi İI ıi ĲIJ ĳij ĴJ ĵj ĶK ķk ĸq ĹL ĺl ĻL "
    "ļl ĽL ľl ĿL ŀl ŁL łl ŃN ńn ŅN ņn ŇN ňn ŉ'n ŊN ŋn ŌO ōo ŎO ŏo ŐO őo ŒOE œoe "
    "ŔR ŕr ŖR ŗr ŘR řr ŚS śs ŜS ŝs ŞS şs ŠS šs ŢT ţt ŤT ťt ŦT ŧt ŨU ũu ŪU ūu ŬU "
    "ŭu ŮU ůu ŰU űu ŲU ųu ŴW ŵw ŶY ŷy ŸY ŹZ źz ŻZ żz ŽZ žz ſs"
)


def _fold(value: str) -> str:
    """SQL taking the accents off a text expression (ASCII values skip it).

    Character by character: a replace() a letter would nest deeper than SQLite's
    parser allows.
    """
    pairs = {pair[0]: pair[1:] for pair in FOLDS.split()}
    targets = "".join((pairs[chr(c)] + " ")[:2] for c in range(0xC0, 0x180))
    targets = targets.replace("'", "''")
    return (
        f"CASE WHEN length(CAST({value} AS BLOB)) = length({value}) THEN {value}"
        " ELSE (SELECT group_concat(CASE WHEN unicode(c) BETWEEN 192 AND 383"
        f" THEN rtrim(substr('{targets}', 2 * unicode(c) - 383, 2))"
        f" ELSE c END, '') FROM (SELECT substr({value}, key + 1, 1) AS c"
        f" FROM json_each('[' || replace(hex(zeroblob(length({value}))), '00', '0,')"
        f" || '0]') WHERE key < length({value}))) END"
    )


def _values(row: str, columns: tuple[str, ...], folded: bool) -> str:
    """The indexed values of a row (`new`, `old` or a table): each with END after.

    Folded: accents off, ASCII letters lower-cased (as LIKE compares), for the
    case-sensitive index.
    """
    values = []
    for column in columns:
        value = f"{row}.{column}"
        values.append(f"lower({_fold(value)})" if folded else value)
    return ", ".join(f"{value} || {END}" for value in values)


def _create(
    index: str, table: str, columns: tuple[str, ...], folded: bool
) -> list[str]:
    """The statements that make, fill and maintain one index (0015's if not folded)."""
    names = ", ".join(columns)
    add = (
        f"INSERT INTO {index}(rowid, {names})"
        f" VALUES (new.id, {_values('new', columns, folded)});"
    )
    # A contentless index deletes an entry given the very values it was given.
    remove = (
        f"INSERT INTO {index}({index}, rowid, {names})"
        f" VALUES ('delete', old.id, {_values('old', columns, folded)});"
    )
    tokenize = "trigram case_sensitive 1" if folded else "trigram"
    return [
        f"CREATE VIRTUAL TABLE {index} USING fts5({names},"
        f" content='', columnsize=0, tokenize='{tokenize}')",
        f"CREATE VIRTUAL TABLE {index}_terms USING fts5vocab({index}, 'row')",
        f"CREATE TRIGGER {index}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {index}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        # Only when a searched column is written: other edits leave the index be.
        f"CREATE TRIGGER {index}_update AFTER UPDATE OF {names} ON {table}"
        f" BEGIN {remove} {add} END",
        f"INSERT INTO {index}(rowid, {names})"
        f" SELECT id, {_values(table, columns, folded)} FROM {table}",
        # One segment instead of the many a long insert leaves: faster matches.
        f"INSERT INTO {index}({index}) VALUES ('optimize')",
    ]


def _drop(index: str) -> None:
    """Drop an index, its term list and its triggers."""
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {index}_{trigger}")
    op.execute(f"DROP TABLE IF EXISTS {index}_terms")
    op.execute(f"DROP TABLE IF EXISTS {index}")


def _sqlite(folded: bool) -> None:
    """Rebuild both FTS5 indexes, over folded values or (downgrade) raw ones."""
    for index, (table, columns) in INDEXES.items():
        _drop(index)
        for statement in _create(index, table, columns, folded):
            op.execute(statement)


def _postgresql_upgrade() -> None:
    """unaccent, the IMMUTABLE wrapper, and the indexes on folded columns."""
    bind = op.get_bind()
    quote = bind.dialect.identifier_preparer.quote
    # In public, which every schema's search path holds (as pg_trgm): an
    # extension made in a schema of its own would go with that schema.
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
    home = bind.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
        " ON n.oid = e.extnamespace WHERE e.extname = 'unaccent'"
    ).scalar_one()
    here = quote(bind.exec_driver_sql("SELECT current_schema()").scalar_one())
    # Named with their schemas: an index's function may run (ANALYZE, a restore)
    # with a search path that does not hold them.
    dictionary = f"'{quote(home)}.unaccent'::regdictionary"
    superuser = bind.exec_driver_sql(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    ).scalar()
    if superuser:
        # unaccent's own C function, declared IMMUTABLE: the wrapper below then
        # is inlined into each query and index (only superusers declare C).
        op.execute(
            f"CREATE FUNCTION {here}.{C_FUNCTION}(regdictionary, text) RETURNS text"
            " LANGUAGE c IMMUTABLE PARALLEL SAFE STRICT"
            " AS '$libdir/unaccent', 'unaccent_dict'"
        )
        body = f"{here}.{C_FUNCTION}({dictionary}, $1)"
    else:
        body = f"{quote(home)}.unaccent({dictionary}, $1)"
    op.execute(
        f"CREATE FUNCTION {here}.{FUNCTION}(text) RETURNS text"
        f" LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ SELECT {body} $$"
    )
    for table, column in POSTGRESQL:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
        op.execute(
            f"CREATE INDEX ix_{table}_{column}_trgm ON {table}"
            f" USING gin ({FUNCTION}({column}) gin_trgm_ops) WITH (fastupdate = off)"
        )


def _postgresql_downgrade() -> None:
    """The raw-column trigram indexes of 0001 (fastupdate off, 0010) again."""
    bind = op.get_bind()
    quote = bind.dialect.identifier_preparer.quote
    here = quote(bind.exec_driver_sql("SELECT current_schema()").scalar_one())
    for table, column in POSTGRESQL:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
        op.execute(
            f"CREATE INDEX ix_{table}_{column}_trgm ON {table}"
            f" USING gin ({column} gin_trgm_ops) WITH (fastupdate = off)"
        )
    op.execute(f"DROP FUNCTION IF EXISTS {here}.{FUNCTION}(text)")
    op.execute(f"DROP FUNCTION IF EXISTS {here}.{C_FUNCTION}(regdictionary, text)")


def upgrade() -> None:
    """Index folded values: FTS5 on SQLite, unaccent + trigram GIN on PostgreSQL."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite(folded=True)
    elif dialect == "postgresql":
        _postgresql_upgrade()


def downgrade() -> None:
    """Back to 0018's search indexes."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite(folded=False)
    elif dialect == "postgresql":
        _postgresql_downgrade()
