"""PostgreSQL: exact row counts in counter slots, so a page view counts nothing.

Every page shows its table's total ("282 of 282 movies"), and PostgreSQL counted
it with count(*) over the whole table (about 5 ms at 100,000 movies). SQLite keeps
the totals by row triggers (0006, 0008). The first PostgreSQL design (one counter
row a table, updated by every statement; 0016 dropped it) had two faults:
writers queued on the one row, and a load of row-by-row INSERTs in one
transaction slowed quadratically, as each update of a row the transaction had
already updated walked all its earlier versions.

Here a table's total is sum(n) over 16 slot rows in `row_count_slots`, and its
version (the key of the count cache, app/crud/counts.py) is sum(version):

- Statement-level triggers with transition tables count each statement's rows
  into a transaction-local setting (set_config(..., true)); no row is written,
  so a long load updates nothing per statement and rolls back with the
  transaction (or the savepoint) it belongs to.
- The first counted statement of a transaction inserts its id into
  `row_count_pending`, whose deferred constraint trigger runs once at COMMIT:
  one UPDATE per table of the slot pg_backend_pid() % 16, adding the net
  change and 1 to the version. Writers hold a slot's lock only while they
  commit, and rarely share one; tables are updated in name order, so two
  committing writers never wait on each other in a cycle.
- TRUNCATE sets the table's slots to 0 (and bumps their versions).

Every committed write adds at least 1 to sum(version), and PostgreSQL's
snapshots see commits in one order, so a version names one state of the table.

SQLite: nothing (its counters are in row_counts).

Revision ID: 0018_pg_row_counts
Revises: 0017_changes
Create Date: 2026-12-03
"""

from alembic import op

revision = "0018_pg_row_counts"
down_revision = "0017_changes"
branch_labels = None
depends_on = None

TABLES = ("movies", "ratings")
SLOTS = 16
# (event, transition table, function) of each table's triggers.
TRIGGERS = (
    ("insert", "REFERENCING NEW TABLE AS new_rows", "row_count_slots_inserted"),
    ("delete", "REFERENCING OLD TABLE AS old_rows", "row_count_slots_deleted"),
    ("update", "REFERENCING NEW TABLE AS new_rows", "row_count_slots_updated"),
    ("truncate", "", "row_count_slots_truncated"),
)

# The bodies name the tables and functions with their schema ("@." below): a
# trigger runs with the search path of whoever writes, which need not hold it.
FUNCTIONS = {
    # Add `delta` rows to `tbl`'s pending change in this transaction, and queue
    # the apply at commit the first time the transaction counts anything.
    "row_count_slots_note(tbl text, delta bigint)": """
    RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        name text := 'reeltable.row_count_' || tbl;
        held text := current_setting(name, true);
        tables text;
    BEGIN
        IF held IS NULL OR held = '' THEN
            tables := current_setting('reeltable.row_count_tables', true);
            IF tables IS NULL OR tables = '' THEN
                INSERT INTO @.row_count_pending (xact) VALUES (txid_current());
                tables := tbl;
            ELSE
                tables := tables || ',' || tbl;
            END IF;
            PERFORM set_config('reeltable.row_count_tables', tables, true);
            held := '0';
        END IF;
        PERFORM set_config(name, (held::bigint + delta)::text, true);
    END $$""",
    "row_count_slots_inserted()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE delta bigint;
    BEGIN
        SELECT count(*) INTO delta FROM new_rows;
        IF delta > 0 THEN PERFORM @.row_count_slots_note(TG_TABLE_NAME, delta); END IF;
        RETURN NULL;
    END $$""",
    "row_count_slots_deleted()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE delta bigint;
    BEGIN
        SELECT count(*) INTO delta FROM old_rows;
        IF delta > 0 THEN PERFORM @.row_count_slots_note(TG_TABLE_NAME, -delta); END IF;
        RETURN NULL;
    END $$""",
    # An edit changes no total, but the version: filtered counts may change.
    "row_count_slots_updated()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT FROM new_rows) THEN
            PERFORM @.row_count_slots_note(TG_TABLE_NAME, 0);
        END IF;
        RETURN NULL;
    END $$""",
    "row_count_slots_truncated()": """
    RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE name text := 'reeltable.row_count_' || TG_TABLE_NAME;
    BEGIN
        UPDATE @.row_count_slots SET n = 0, version = version + 1
        WHERE table_name = TG_TABLE_NAME;
        -- Rows this transaction added before are gone too.
        IF coalesce(current_setting(name, true), '') <> '' THEN
            PERFORM set_config(name, '0', true);
        END IF;
        RETURN NULL;
    END $$""",
    # At commit (deferred): move the transaction's changes into its slots.
    "row_count_slots_apply()": f"""
    RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        tables text := current_setting('reeltable.row_count_tables', true);
        tbl text;
        name text;
    BEGIN
        DELETE FROM @.row_count_pending WHERE xact = NEW.xact;
        PERFORM set_config('reeltable.row_count_tables', '', true);
        FOR tbl IN
            SELECT t FROM unnest(string_to_array(tables, ',')) t ORDER BY t
        LOOP
            name := 'reeltable.row_count_' || tbl;
            UPDATE @.row_count_slots
            SET n = n + current_setting(name)::bigint, version = version + 1
            WHERE table_name = tbl AND slot = pg_backend_pid() % {SLOTS};
            PERFORM set_config(name, '', true);
        END LOOP;
        RETURN NULL;
    END $$""",
}


def table_sql(table: str) -> list[str]:
    """Statements that seed `table`'s slots and create its triggers."""
    made = [
        # SHARE: reads go on, no write slips in between the count and the triggers.
        f"LOCK TABLE {table} IN SHARE MODE",
        "INSERT INTO row_count_slots (table_name, slot, n)"
        f" SELECT '{table}', s, CASE WHEN s = 0 THEN (SELECT count(*) FROM {table})"
        f" ELSE 0 END FROM generate_series(0, {SLOTS - 1}) s",
    ]
    for event, referencing, function in TRIGGERS:
        made.append(
            f"CREATE TRIGGER row_count_slots_{table}_{event}"
            f" AFTER {event.upper()} ON {table} {referencing}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    return made


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE row_count_slots ("
        " table_name varchar(64) NOT NULL, slot smallint NOT NULL,"
        " n bigint NOT NULL DEFAULT 0, version bigint NOT NULL DEFAULT 0,"
        " CONSTRAINT pk_row_count_slots PRIMARY KEY (table_name, slot))"
    )
    op.execute(
        "CREATE TABLE row_count_pending ("
        " xact bigint NOT NULL, CONSTRAINT pk_row_count_pending PRIMARY KEY (xact))"
    )
    bind = op.get_bind()
    schema = bind.dialect.identifier_preparer.quote(
        bind.exec_driver_sql("SELECT current_schema()").scalar()
    )
    for signature, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {signature} {body.replace('@.', schema + '.')}")
    op.execute(
        "CREATE CONSTRAINT TRIGGER row_count_slots_apply"
        " AFTER INSERT ON row_count_pending DEFERRABLE INITIALLY DEFERRED"
        " FOR EACH ROW EXECUTE FUNCTION row_count_slots_apply()"
    )
    for table in TABLES:
        for statement in table_sql(table):
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        for event, _referencing, _function in TRIGGERS:
            op.execute(
                f"DROP TRIGGER IF EXISTS row_count_slots_{table}_{event} ON {table}"
            )
    op.execute("DROP TABLE row_count_pending")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.execute("DROP TABLE row_count_slots")
