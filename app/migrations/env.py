"""Alembic environment: migrate the database of the Flask app that runs ``flask db ...``."""

import logging
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from flask import current_app
from sqlalchemy import text

MIGRATION_LOCK = 0x486F6F6B73  # "Hooks": any constant shared by every Hookscope process

config = context.config
# Keep the host process's loggers (gunicorn's among them) working after migrations run.
fileConfig(config.config_file_name, disable_existing_loggers=False)
if current_app.config.get("HOOKSCOPE_LOG_FORMAT") == "json":
    from app.runtime.jsonlogs import format_handlers

    format_handlers(logging.getLogger())  # the migrations' lines as JSON, as every other
logger = logging.getLogger("alembic.env")

db = current_app.extensions["migrate"].db
config.set_main_option(
    "sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


# Made by hand in 0003 and 0004 and kept by triggers, not described by the models: leave them out
# of autogenerate's comparison (SQLite's FTS5 table, its shadow tables and the queue of requests
# to index; PostgreSQL's column).
SEARCH_INDEX = (
    "request_search",
    "search_pending",
    "search_document",
    "ix_payloads_search_document",
)


def include_name(name, type_, parent_names):
    """Compare everything but the search index's own objects."""
    return not (name or "").startswith(SEARCH_INDEX)


@contextmanager
def sqlite_foreign_keys_off(connection):
    """Turn SQLite's foreign keys off while the migrations run, then back to what they were.

    A batch migration changes an SQLite table by copying it and dropping the old one; with foreign
    keys on, the drop deletes the old rows first and ON DELETE CASCADE deletes every capture
    below them. SQLite's own recipe for changing a table turns them off around it. The pragma is
    ignored inside a transaction, so it is set on the driver's connection before SQLAlchemy
    begins one. PostgreSQL alters its tables in place: nothing to do there.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    (enforced,) = raw.execute("PRAGMA foreign_keys").fetchone()
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        # Each migration committed its own work; end whatever read is still open, or the pragma
        # would be ignored and the connection go back to the app's pool without foreign keys.
        connection.rollback()
        raw.execute(f"PRAGMA foreign_keys = {int(enforced)}")


def check_foreign_keys(ctx, step, heads, run_args):
    """Refuse a step that left rows pointing at rows that are gone (SQLite, keys turned off).

    Runs inside the step's transaction, so refusing rolls the step back.
    """
    dangling = ctx.connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if not dangling:
        return
    orphans = {}
    for table, rowid, parent, _ in dangling:
        orphans.setdefault((table, parent), []).append(str(rowid))
    found = "; ".join(
        f"{table} rows {', '.join(ids[:10])}{' and more' if len(ids) > 10 else ''}"
        f" ({len(ids)} in all) point at {parent} rows that are gone"
        for (table, parent), ids in orphans.items()
    )
    direction = "upgrade" if step.is_upgrade else "downgrade"
    source = ",".join(step.source_revision_ids) or "base"
    destination = ",".join(step.destination_revision_ids) or "base"
    raise CommandError(
        f"{direction} {source} -> {destination} rolled back, the database stays at {source}:"
        f" {found} (PRAGMA foreign_key_check)"
    )


def run_migrations_offline():
    """Emit SQL for the migrations without a database connection."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=db.metadata,
        literal_binds=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on the app's engine."""

    def skip_empty_autogenerate(context, revision, directives):
        # "flask db migrate" with no model change should write no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", skip_empty_autogenerate)
    conf_args.setdefault("include_name", include_name)
    with db.engine.connect() as connection, sqlite_foreign_keys_off(connection):
        if connection.dialect.name == "sqlite":
            given = conf_args.get("on_version_apply") or ()
            given = (given,) if callable(given) else tuple(given)
            conf_args["on_version_apply"] = (*given, check_foreign_keys)
        # Several hosts may start at once against one PostgreSQL: one migrates, the rest wait.
        locked = connection.dialect.name == "postgresql"
        if locked:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
        try:
            context.configure(connection=connection, target_metadata=db.metadata, **conf_args)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if locked:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
