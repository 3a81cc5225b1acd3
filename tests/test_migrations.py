"""The schema comes from migrations, they match the models, and they keep every capture."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import check, downgrade, upgrade
from harness import POSTGRES_URL, drop_postgres_database, fresh_postgres_database
from sqlalchemy import Connection, MetaData, Table, inspect, select, text

from app import MIGRATIONS, create_app
from app.extensions import db, migrate


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


# Captured data is hostile: every body below must come back byte for byte.
BODIES = [
    b'{"event": "charge.succeeded", "note": "caf\xc3\xa9"}',
    b"\x00\xff\xfe not text \x00",
    "latin-1, not UTF-8: caf\u00e9".encode("latin-1") + bytes(range(256)) * 300,
    b"",
    b"failed on purpose",
]
AT = datetime(2026, 11, 23, 9, 30, 15, 123456)


def request_row(id_: int, bin_id: str, seq: int, **later_columns: object) -> dict[str, object]:
    return {
        "id": id_,
        "bin_id": bin_id,
        "seq": seq,
        "method": "POST",
        "path": f"/hook/{seq}",
        "query_string": "a=1&b=%40",
        "content_type": "application/octet-stream",
        "body_size": len(BODIES[id_ - 1]),
        "remote_addr": "127.0.0.1",
        "received_at": AT,
        **later_columns,
    }


def payload_row(id_: int) -> dict[str, object]:
    headers = [["Content-Type", "application/octet-stream"], ["X-Odd", 'caf\u00e9 "\\ \u2028']]
    return {
        "request_id": id_,
        "url": f"http://127.0.0.1/h/x/hook/{id_}",
        "http_version": "HTTP/1.1",
        "headers": headers,
        "body": BODIES[id_ - 1],
    }


# The rows written right after upgrading to each revision, through that revision's own tables.
# A revision that adds a table, or columns worth carrying, adds its rows here; a revision without
# an entry writes nothing, and every row written before it is checked through it, up and down.
ROWS_AT = {
    "0001": {
        "bins": [
            {"id": "bin-one", "name": "first", "created_at": AT, "last_seq": 2},
            {"id": "bin-two", "name": "second", "created_at": AT, "last_seq": 1},
        ],
        "requests": [request_row(1, "bin-one", 1), request_row(2, "bin-one", 2)]
        + [request_row(3, "bin-two", 1)],
        "payloads": [payload_row(1), payload_row(2), payload_row(3)],
    },
    "0002": {
        "bins": [
            {
                "id": "bin-three",
                "name": "third",
                "description": "made at 0002",
                "created_at": AT,
                "read_key_hash": "ab" * 32,
                "last_seq": 1,
                "request_count": 1,
                "max_requests": 5,
                "expires_after": 3600,
                "expires_at": AT,
                "ingest_auth": "bearer",
                "ingest_secret_hash": "cd" * 32,
                "fixed": True,
            }
        ],
        "requests": [request_row(4, "bin-three", 1, status=401, rejected=True, pinned=True)],
        "payloads": [payload_row(4)],
    },
    "0008": {
        "bins": [
            {
                "id": "bin-four",
                "name": "answers",
                "created_at": AT,
                "last_seq": 1,
                "request_count": 1,
                "max_requests": 5,
                "settings_version": 3,
                "response_settings": '{"response":{"status":201},"version":1}',
            }
        ],
        "requests": [
            request_row(5, "bin-four", 1, status=503, delivery_id="d-1 \u00e9"),
        ],
        "payloads": [payload_row(5)],
        "answers": [
            {"request_id": 5, "record": '{"status":503,"body":"caf\u00e9"}', "sent_at": AT},
            {"request_id": 4, "record": '{"status":401}', "sent_at": None},
        ],
    },
}


@dataclass
class Written:
    """A row the test wrote, and the columns every schema since has had: those it must keep."""

    table: str
    values: dict[str, object]
    kept: set[str]


def revision_chain() -> list[str]:
    """List the app's revisions from the first to the head, however many there are."""
    scripts = ScriptDirectory.from_config(migrate.get_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def reflected(conn: Connection, table: str) -> Table:
    return Table(table, MetaData(), autoload_with=conn)


def write(conn: Connection, revision: str, written: list[Written]) -> None:
    for table, rows in ROWS_AT.get(revision, {}).items():
        conn.execute(reflected(conn, table).insert(), rows)
        written += [Written(table, row, set(row)) for row in rows]


def assert_kept(conn: Connection, written: list[Written], where: str) -> None:
    """Check every row written so far is there, on every column it has kept."""
    schema = inspect(conn)
    columns = {t: {c["name"] for c in schema.get_columns(t)} for t in schema.get_table_names()}
    for row in written:
        row.kept &= columns.get(row.table, set())
    for table in dict.fromkeys(row.table for row in written):
        rows = [row for row in written if row.table == table and row.kept]
        if not rows:
            continue  # the table is gone at this revision, and its rows with it
        stored = reflected(conn, table)
        key = schema.get_pk_constraint(table)["constrained_columns"]
        expected, found = [], []
        for row in rows:
            wanted = sorted(row.kept)
            expected.append({c: row.values[c] for c in wanted})
            match = select(stored).where(*(stored.c[k] == row.values[k] for k in key))
            got = conn.execute(match).mappings().first()
            found.append(None if got is None else {c: got[c] for c in wanted})
        left = sum(got is not None for got in found)
        assert found == expected, f"{where}: {table} went from {len(rows)} rows to {left}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_app(request, tmp_path):
    """The app on an empty database: an SQLite file, or PostgreSQL when the tests have one."""
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path / 'hookscope.db'}"
    elif POSTGRES_URL:
        database = fresh_postgres_database()
    else:
        pytest.skip("PostgreSQL needs HOOKSCOPE_TEST_POSTGRES_URL")
    settings = {"SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": database}
    app = create_app({"TESTING": True, "RATELIMIT_ENABLED": False, **settings})
    yield app
    with app.app_context():
        db.engine.dispose()
    if request.param == "postgresql":
        drop_postgres_database(database)


def test_every_revision_keeps_every_capture_up_and_down(empty_app):
    """Rows written at each revision survive every upgrade and downgrade after it, byte for byte,
    on the columns each schema can hold (SQLite rebuilds a table to change it)."""
    written: list[Written] = []
    with empty_app.app_context():
        chain = revision_chain()
        assert chain[0] in ROWS_AT, "the first revision must have rows to carry"
        for revision in chain:
            upgrade(revision=revision)
            with db.engine.begin() as conn:
                assert_kept(conn, written, f"upgraded to {revision}")
                write(conn, revision, written)
        for revision in reversed(chain[:-1]):
            downgrade(revision=revision)
            with db.engine.connect() as conn:
                assert_kept(conn, written, f"downgraded to {revision}")
        upgrade()
        with db.engine.connect() as conn:
            assert_kept(conn, written, f"upgraded to {chain[-1]} again")


def test_db_downgrade_on_the_command_line_keeps_captures(app, client, new_bin, runner):
    bin_id = new_bin["id"]
    for body in (b"one", b"\x00two\xff", b"three"):
        assert client.post(f"/h/{bin_id}", data=body).status_code == 200
    bodies = text(
        "SELECT p.body FROM payloads p JOIN requests r ON r.id = p.request_id"
        " WHERE r.bin_id = :bin ORDER BY r.seq"
    )

    result = runner.invoke(args=["db", "downgrade", "0001"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(bodies, {"bin": bin_id}).scalars().all() == [
            b"one",
            b"\x00two\xff",
            b"three",
        ]

    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(args=["list"]).output
    assert any(line.split()[:2] == [bin_id, "3"] for line in listed.splitlines()), listed
    with app.app_context():
        # The migrations' connections went back to the app: deleting a bin still takes its
        # captures with it.
        db.session.execute(text("DELETE FROM bins WHERE id = :bin"), {"bin": bin_id})
        db.session.commit()
        assert db.session.execute(bodies, {"bin": bin_id}).all() == []


def test_migrating_with_nothing_to_do_leaves_foreign_keys_on(app, client, new_bin, runner):
    """Every server start runs the migrations; the app's connections must cascade as before."""
    bin_id = new_bin["id"]
    assert client.post(f"/h/{bin_id}", data=b"kept until its bin goes").status_code == 200
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.execute(text("DELETE FROM bins WHERE id = :bin"), {"bin": bin_id})
        db.session.commit()
        left = db.session.execute(text("SELECT count(*) FROM requests")).scalar()
    assert left == 0


# A later revision with a bug: it deletes bins with foreign keys off, leaving their captures
# pointing at nothing.
ORPHANING_REVISION = '''"""delete every bin and leave its requests behind"""
from alembic import op

revision = "orphans"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("DELETE FROM bins")


def downgrade():
    pass
'''


def test_a_migration_that_orphans_captures_is_rolled_back(app, client, new_bin, runner, tmp_path):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("PostgreSQL never turns foreign keys off")
        head = revision_chain()[-1]
    bin_id = new_bin["id"]
    for body in (b"first", b"second"):
        assert client.post(f"/h/{bin_id}", data=body).status_code == 200
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "orphans.py").write_text(ORPHANING_REVISION.format(head=head))

    result = runner.invoke(args=["db", "upgrade", "--directory", str(migrations)])

    assert result.exit_code == 1
    assert f"upgrade {head} -> orphans rolled back, the database stays at {head}:" in result.output
    assert ": requests rows 1, 2 (2 in all) point at bins rows that are gone" in result.output
    with app.app_context():
        version = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        bins = db.session.execute(text("SELECT id FROM bins")).scalars().all()
        captures = db.session.execute(text("SELECT count(*) FROM payloads")).scalar()
    assert (version, bins, captures) == (head, [bin_id], 2)
