"""The schema comes from migrations, and the migrations match the models."""

from __future__ import annotations

from flask_migrate import check, downgrade, upgrade
from sqlalchemy import inspect

from app.extensions import db


def test_migrations_create_every_table_the_models_need(app):
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert {"bins", "requests", "payloads", "alembic_version"} <= tables


def test_models_and_migrations_agree(app):
    # Fails with "New upgrade operations detected" when a model changed without a migration.
    with app.app_context():
        check()


def test_downgrade_and_upgrade_again(app):
    with app.app_context():
        downgrade(revision="base")
        assert "requests" not in inspect(db.engine).get_table_names()
        upgrade()
        assert "requests" in inspect(db.engine).get_table_names()
