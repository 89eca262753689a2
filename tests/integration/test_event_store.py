"""The event stores (SQLite file, PostgreSQL): what is written survives reopening and cannot be edited."""

from __future__ import annotations

import os
import sqlite3
import uuid as uuid_module

import psycopg
import pytest

import bootstrap
from domain.base import ref_id
from service_layer.demo import DemoHistory, write_demo
from tests.builders import matchmaking_with_two_orgs
from tests.conftest import fresh_postgres_url, drop_schema


def postgres_with_setup() -> tuple[str, list[object]]:
    """A new PostgreSQL schema holding a small history, and that history's commands."""
    url = fresh_postgres_url()
    setup, *_ = matchmaking_with_two_orgs()
    app = bootstrap.build_ledger(url)
    app.execute(setup)
    app.close()
    return url, setup


def read_all(url: str) -> list[tuple[object, ...]]:
    app = bootstrap.build_ledger(url)
    try:
        return [(n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state)) for n in app.recorder.select_notifications(start=1, limit=1_000_000)]
    finally:
        app.close()


def test_write_close_reopen_reads_back_identical(db_url: str) -> None:
    setup, event, a, _ = matchmaking_with_two_orgs()
    app = bootstrap.build_ledger(db_url)
    app.execute(setup)
    before = {ref: app.repository.get(ref_id(ref)) for ref in (event, a, f"{event}/{a}")}
    written = [app.mapper.to_domain_event(app.mapper.to_stored_event(e)) for e in app.aggregate_events(a)]
    app.close()

    reopened = bootstrap.build_ledger(db_url)
    try:
        after = {ref: reopened.repository.get(ref_id(ref)) for ref in before}
        assert after == before
        assert reopened.aggregate_events(a) == written
    finally:
        reopened.close()


def test_sqlite_refuses_updates_and_deletes_of_events(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    setup, *_ = matchmaking_with_two_orgs()
    app = bootstrap.build_ledger(url)
    app.execute(setup)
    app.close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("UPDATE stored_events SET state = x'00'")
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("DELETE FROM stored_events")
    assert len(read_all(url)) == len(setup) + 1  # and the test writer's authorization


@pytest.mark.parametrize("statement", [
    "UPDATE {schema}.ledger_events SET topic = 'x'",
    "DELETE FROM {schema}.ledger_events",
    "TRUNCATE {schema}.ledger_events",
])
def test_postgres_refuses_edits_of_events_even_typed_by_hand(statement: str) -> None:
    url, setup = postgres_with_setup()
    base, _, schema = url.partition("?schema=")
    try:
        with psycopg.connect(base) as conn:
            with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)):
                conn.execute(statement.replace("{schema}", schema))  # type: ignore[arg-type]
        assert len(read_all(url)) == len(setup) + 1  # and the test writer's authorization
    finally:
        drop_schema(url)


def test_the_demo_is_deterministic_per_seed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    urls = [f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db", "c.db")]
    for url, seed in zip(urls, (11, 11, 12)):
        history = DemoHistory(seed=seed, scale=0.01)
        app = bootstrap.build_ledger(url, clock=history.clock)
        write_demo(app, history)
        app.close()
    a, b, c = (read_all(u) for u in urls)
    assert a == b
    assert a != c


def test_demo_records_after_the_fact_and_never_before(db_url: str) -> None:
    history = DemoHistory(seed=3, scale=0.01)
    app = bootstrap.build_ledger(db_url, clock=history.clock)
    summary = write_demo(app, history)
    events = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=1_000_000)]
    app.close()
    assert summary["events"] == len(events) > 100
    assert all(e.occurred_at <= e.timestamp for e in events)
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    assert any(e.occurred_at.year < 2024 for e in events)


def test_the_auditor_role_of_the_readme_reads_events_and_nothing_else() -> None:
    url, setup = postgres_with_setup()
    base, _, schema = url.partition("?schema=")
    dbname = base.rsplit("/", 1)[1]
    admin = os.environ["LEDGER_TEST_PG_ADMIN_URL"].rsplit("/", 1)[0] + f"/{dbname}"
    role = f"auditor_{uuid_module.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'audit'")  # type: ignore[arg-type]
            conn.execute(f"GRANT CONNECT ON DATABASE {dbname} TO {role}")  # type: ignore[arg-type]
            conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')  # type: ignore[arg-type]
            conn.execute(f'GRANT SELECT ON "{schema}".ledger_events TO {role}')  # type: ignore[arg-type]
        auditor = admin.replace("postgres@", f"{role}:audit@", 1)
        with psycopg.connect(auditor, autocommit=True) as conn:
            count = conn.execute(f'SELECT count(*) FROM "{schema}".ledger_events').fetchone()  # type: ignore[arg-type]
            assert count == (len(setup) + 1,)  # and the test writer's authorization
            for statement in (f'UPDATE "{schema}".ledger_events SET topic = topic', f'SELECT * FROM "{schema}".personal_data',
                              f'INSERT INTO "{schema}".ledger_events (originator_id, originator_version) VALUES (gen_random_uuid(), 1)'):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)  # type: ignore[arg-type]
    finally:
        drop_schema(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON DATABASE {dbname} FROM {role}")  # type: ignore[arg-type]
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]
