"""Alembic environment: migrate the database of the current Flask app."""

import logging
import warnings
from logging.config import fileConfig

from alembic import context
from flask import current_app

from app.resources import RESOURCES

config = context.config
# Keep the app's own loggers (and pytest's) alive when Alembic sets up logging.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db
engine = target_db.engine
config.set_main_option(
    "sqlalchemy.url",
    engine.url.render_as_string(hide_password=False).replace("%", "%%"),
)


# What migrations create that the models cannot declare, so autogenerate must not
# offer to drop it: SQLite FTS5 search tables (and the shadow tables FTS5 keeps
# beside each, and the term list <index>_terms of revision 0015), PostgreSQL's
# trigram indexes (ix_<table>_<column>_trgm), its NULLS LAST sort indexes
# (ix_<table>_<column>_nulls_last, revision 0022) and counter slots.
SEARCH_TABLES = {r.search_index for r in RESOURCES.values() if r.search_index}
FTS5_SHADOWS = ("_data", "_idx", "_config", "_docsize", "_content", "_terms")
# PostgreSQL's counter slots and their commit queue (revision 0018), which only
# its triggers write.
COUNTER_TABLES = {"row_count_slots", "row_count_pending"}

# Expression indexes (lower(name), ...) are declared on the models but SQLite's
# reflection cannot read them back; autogenerate then warns for each and skips it.
warnings.filterwarnings("ignore", message=".*expression-based index")


def _is_search_table(name):
    """True for a declared FTS5 search table or one of its shadow tables."""
    return any(
        name == table or (name.startswith(table) and name[len(table) :] in FTS5_SHADOWS)
        for table in SEARCH_TABLES
    )


def include_object(obj, name, type_, reflected, compare_to):
    """Leave search tables, one-dialect indexes, counter slots out of the comparison."""
    if not reflected or compare_to is not None:
        return True
    if type_ == "table":
        return not _is_search_table(name) and name not in COUNTER_TABLES
    if type_ == "index":
        return not name.endswith(("_trgm", "_nulls_last"))
    return True


def run_migrations_offline():
    """Emit SQL for the migrations without a database connection."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_db.metadata,
        include_object=include_object,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations against the app's engine."""

    def process_revision_directives(context, revision, directives):
        # Do not write an empty migration when autogenerate finds no change.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("include_object", include_object)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_db.metadata, **conf_args
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # A migration waits for its locks as long as it must, as before
                # the app's connections had a lock_timeout (app/db.py).
                connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
