"""No statement through the application's own connection changes or removes a stored event, on either store;
on PostgreSQL the everyday role cannot lift the guards either, because another role owns the schema."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from eventsourcing.persistence import PersistenceError
from psycopg.sql import SQL, Identifier

import bootstrap
from cli.main import ledger
from tests.conftest import postgres_url, snapshot, stored_rows
from tests.integration.tampering import history

FORGED = "'00000000-0000-4000-8000-000000000000'"
SQLITE_STATEMENTS = {
    "update": "UPDATE stored_events SET state = x'7b7d' WHERE rowid = 3",
    "update rowid": "UPDATE stored_events SET rowid = 100 WHERE rowid = 3",
    "update or replace": "UPDATE OR REPLACE stored_events SET originator_version = 1 WHERE rowid = 4",
    "delete": "DELETE FROM stored_events WHERE rowid = 3",
    "delete all": "DELETE FROM stored_events",
    "insert or replace by rowid": "INSERT OR REPLACE INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                                  "SELECT rowid, originator_id, originator_version, topic, x'7b7d' FROM stored_events WHERE rowid = 5",
    "insert or replace by rowid, new key": "INSERT OR REPLACE INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                                           f"VALUES (5, {FORGED}, 1, 'forged', x'7b7d')",
    "replace by key": "REPLACE INTO stored_events (originator_id, originator_version, topic, state) "
                      "SELECT originator_id, originator_version, topic, x'7b7d' FROM stored_events WHERE rowid = 5",
    "upsert": "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
              "SELECT originator_id, originator_version, topic, x'7b7d' FROM stored_events WHERE rowid = 5 "
              "ON CONFLICT (originator_id, originator_version) DO UPDATE SET state = excluded.state",
    "upsert by rowid": "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
                       f"VALUES (5, {FORGED}, 1, 'forged', x'7b7d') ON CONFLICT DO UPDATE SET state = excluded.state",
}


@pytest.mark.parametrize("statement", SQLITE_STATEMENTS.values(), ids=SQLITE_STATEMENTS.keys())
def test_sqlite_refuses_every_change_of_a_stored_event(tmp_path: Path, statement: str) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    history(url)
    before = snapshot(url)
    app = bootstrap.build_ledger(url)
    try:
        with pytest.raises(PersistenceError, match="stored events are immutable"):
            with app.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
                cursor.execute(statement)
    finally:
        app.close()
    assert snapshot(url) == before
    history(url)  # appending still works


@pytest.fixture
def guarded_url() -> Iterator[str]:
    """A schema made by the owner role with `ledger db init --owner-url`, used by the everyday role."""
    owner = os.environ.get("LEDGER_TEST_PG_OWNER_URL")
    if not owner:
        pytest.fail("LEDGER_TEST_PG_OWNER_URL is not set: run the tests with scripts/test, which creates the owner role", pytrace=False)
    url = f"{postgres_url()}?schema=g_{uuid.uuid4().hex[:16]}"
    result = CliRunner().invoke(ledger, ["db", "init", "--owner-url", owner, "--db", url])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("schema owned by ledger_owner; ledger may read and append, and cannot lift the guards\n")
    yield url
    with psycopg.connect(os.environ["LEDGER_TEST_PG_ADMIN_URL"].rsplit("/", 1)[0] + "/ledger", autocommit=True) as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(url.partition("?schema=")[2])))


POSTGRES_STATEMENTS = {
    "update": "UPDATE {s}.ledger_events SET state = '\\x7b7d' WHERE notification_id = 3",
    "delete": "DELETE FROM {s}.ledger_events WHERE notification_id = 3",
    "truncate": "TRUNCATE {s}.ledger_events",
    "upsert": "INSERT INTO {s}.ledger_events (originator_id, originator_version, topic, state) "
              "SELECT originator_id, originator_version, topic, state FROM {s}.ledger_events WHERE notification_id = 5 "
              "ON CONFLICT (originator_id, originator_version) DO UPDATE SET state = '\\x7b7d'",
    "drop table": "DROP TABLE {s}.ledger_events",
    "alter table": "ALTER TABLE {s}.ledger_events ADD COLUMN forged text",
    "rename table": "ALTER TABLE {s}.ledger_events RENAME TO old_events",
    "change owner": "ALTER TABLE {s}.ledger_events OWNER TO ledger",
    "disable triggers": "ALTER TABLE {s}.ledger_events DISABLE TRIGGER USER",
    "disable trigger": "ALTER TABLE {s}.ledger_events DISABLE TRIGGER ledger_events_immutable",
    "drop trigger": "DROP TRIGGER ledger_events_immutable ON {s}.ledger_events",
    "drop truncate trigger": "DROP TRIGGER ledger_events_no_truncate ON {s}.ledger_events",
    "replace guard": "CREATE OR REPLACE FUNCTION {s}.ledger_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$",
    "drop guard": "DROP FUNCTION {s}.ledger_events_immutable() CASCADE",
    # Holding some privileges, the role gets a warning instead of an error, and nothing is granted: the edit after it fails.
    "grant": "GRANT UPDATE, DELETE ON {s}.ledger_events TO ledger; UPDATE {s}.ledger_events SET state = '\\x7b7d'",
    "grant all": "GRANT ALL ON {s}.ledger_events TO PUBLIC; DELETE FROM {s}.ledger_events",
    "grant on tree": "GRANT UPDATE ON {s}.tlog_leaves TO ledger; UPDATE {s}.tlog_leaves SET hash = '\\x00'",
    "edit tree": "UPDATE {s}.tlog_leaves SET hash = '\\x00'",
    "delete tree": "DELETE FROM {s}.tlog_nodes",
    "session replication role": "SET session_replication_role = replica",
}


@pytest.mark.parametrize("statement", POSTGRES_STATEMENTS.values(), ids=POSTGRES_STATEMENTS.keys())
def test_postgres_refuses_every_change_and_every_lifting_of_the_guards(guarded_url: str, statement: str) -> None:
    history(guarded_url)
    assert CliRunner().invoke(ledger, ["checkpoint", "--db", guarded_url]).exit_code == 0
    before = snapshot_as_admin(guarded_url)
    schema = guarded_url.partition("?schema=")[2]
    app = bootstrap.build_ledger(guarded_url)
    try:
        with pytest.raises(PersistenceError, match="permission denied|must be owner|immutable|must be member"):
            with app.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
                cursor.execute(statement.format(s=f'"{schema}"'))
    finally:
        app.close()
    assert snapshot_as_admin(guarded_url) == before
    history(guarded_url)  # appending still works, and so do projections and verification
    runner = CliRunner()
    assert runner.invoke(ledger, ["project", "--db", guarded_url]).exit_code == 0
    result = runner.invoke(ledger, ["verify", "--db", guarded_url])
    assert result.exit_code == 0 and result.output.startswith("verified: 13 stored events"), result.output


def snapshot_as_admin(url: str) -> object:
    """Every row of every table of the schema, read as superuser."""
    admin = os.environ["LEDGER_TEST_PG_ADMIN_URL"].rsplit("/", 1)[0] + "/ledger"
    return snapshot(f"{admin}?schema={url.partition('?schema=')[2]}")


SQLITE_POSITIONS = {
    "far ahead": f"INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) VALUES (100000, {FORGED}, 1, 'forged', x'7b7d')",
    "before the first": f"INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) VALUES (0, {FORGED}, 1, 'forged', x'7b7d')",
    "negative": f"INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) VALUES (-5, {FORGED}, 1, 'forged', x'7b7d')",
    "one gap": "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
               f"SELECT max(rowid) + 2, {FORGED}, 1, 'forged', x'7b7d' FROM stored_events",
}


@pytest.mark.parametrize("statement", SQLITE_POSITIONS.values(), ids=SQLITE_POSITIONS.keys())
def test_sqlite_refuses_an_event_at_a_position_of_its_own(tmp_path: Path, statement: str) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    history(url)
    before = snapshot(url)
    app = bootstrap.build_ledger(url)
    try:
        with pytest.raises(PersistenceError, match="stored events take the next position"):
            with app.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
                cursor.execute(statement)
    finally:
        app.close()
    assert snapshot(url) == before
    history(url)  # appending still works
    assert [row[0] for row in stored_rows(url, {"sqlite": "SELECT rowid FROM stored_events ORDER BY rowid"})] == list(range(1, 14))  # the writer's authorization first


def test_sqlite_refuses_a_first_event_anywhere_but_position_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    bootstrap.build_ledger(url).close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn, pytest.raises(sqlite3.IntegrityError, match="take the next position"):
        conn.execute(SQLITE_POSITIONS["far ahead"])
    history(url)
    assert stored_rows(url, {"sqlite": "SELECT min(rowid), max(rowid) FROM stored_events"}) == [(1, 7)]


def test_postgres_refuses_an_event_with_a_notification_id_of_its_own(guarded_url: str) -> None:
    history(guarded_url)
    schema = Identifier(guarded_url.partition("?schema=")[2])
    explicit = SQL("INSERT INTO {}.ledger_events (notification_id, originator_id, originator_version, topic, state) "
                   "SELECT 100000, originator_id, 99, topic, state FROM {}.ledger_events WHERE notification_id = 1").format(schema, schema)
    appended = SQL("INSERT INTO {}.ledger_events (originator_id, originator_version, topic, state) "
                   "SELECT originator_id, 98, topic, state FROM {}.ledger_events WHERE notification_id = 1").format(schema, schema)
    with psycopg.connect(guarded_url.partition("?")[0]) as conn:  # the everyday role, in a session that drew no id yet
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="currval of sequence"):
            conn.execute(explicit)
    with psycopg.connect(guarded_url.partition("?")[0]) as conn:  # ... and in one that did
        conn.execute(appended)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="stored events take the next notification id: 100000 refused"):
            conn.execute(explicit)
    history(guarded_url)  # later writes are not wedged
    result = CliRunner().invoke(ledger, ["verify", "--db", guarded_url])
    assert result.exit_code == 0 and result.output.startswith("verified: 13 stored events"), result.output  # the writer's first


def test_an_everyday_insert_without_an_id_still_appends_at_the_next_position(guarded_url: str) -> None:
    # By design the everyday role appends: a copied event under a new version is stored, at the next position (signatures name it).
    history(guarded_url)
    schema = guarded_url.partition("?schema=")[2]
    with psycopg.connect(guarded_url.partition("?")[0]) as conn:
        conn.execute(SQL("INSERT INTO {}.ledger_events (originator_id, originator_version, topic, state) "
                         "SELECT originator_id, 99, topic, state FROM {}.ledger_events WHERE notification_id = 2")
                     .format(Identifier(schema), Identifier(schema)))
    assert stored_rows(guarded_url, {"postgres": "SELECT max(notification_id) FROM {schema}.ledger_events"}) == [(8,)]
    history(guarded_url)


def test_db_init_adds_the_notification_id_guard_to_a_schema_made_before_it(guarded_url: str) -> None:
    history(guarded_url)
    schema = guarded_url.partition("?schema=")[2]
    admin = os.environ["LEDGER_TEST_PG_ADMIN_URL"].rsplit("/", 1)[0] + "/ledger"
    with psycopg.connect(admin) as conn:  # the schema as an earlier version made it
        conn.execute(SQL("DROP FUNCTION {}.ledger_events_next_id() CASCADE").format(Identifier(schema)))
    history(guarded_url)  # the everyday role runs no DDL, and still writes
    result = CliRunner().invoke(ledger, ["db", "init", "--owner-url", os.environ["LEDGER_TEST_PG_OWNER_URL"], "--db", guarded_url])
    assert result.exit_code == 0, result.output
    with psycopg.connect(guarded_url.partition("?")[0]) as conn, pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute(SQL("INSERT INTO {}.ledger_events (notification_id, originator_id, originator_version, topic, state) "
                         "VALUES (100000, {}, 2, 'forged', '\\x7b7d')").format(Identifier(schema), SQL(FORGED)))
    history(guarded_url)
