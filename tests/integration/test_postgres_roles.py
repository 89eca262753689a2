"""The production roles on PostgreSQL: the owner owns the database and schema, the everyday role reads, appends and
forgets through the owner's narrow function, and nothing it owns could let it drop the ledger."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.sql import SQL, Identifier

from cli.main import ledger
from tests.conftest import postgres_url
from tests.integration.test_forget_person import EMAIL, NAME, stored_bytes


def owner_url() -> str:
    url = os.environ.get("LEDGER_TEST_PG_OWNER_URL")
    if not url:
        pytest.fail("LEDGER_TEST_PG_OWNER_URL is not set: run the tests with scripts/test, which creates the owner role", pytrace=False)
    return url


def admin(database: str) -> psycopg.Connection:
    return psycopg.connect(os.environ["LEDGER_TEST_PG_ADMIN_URL"].rsplit("/", 1)[0] + f"/{database}", autocommit=True)


def on_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{database}"


def dumped(url: str) -> bytes:
    """A pg_dump of the schema of `url`, taken as superuser (the everyday role may not read what the owner keeps)."""
    base, _, schema = url.partition("?schema=")
    return stored_bytes(f"{os.environ['LEDGER_TEST_PG_ADMIN_URL'].rsplit('/', 1)[0]}/{base.rsplit('/', 1)[1]}?schema={schema}")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, list(args))
    return result.exit_code, result.output


@pytest.fixture
def guarded() -> Iterator[str]:
    schema = f"g_{uuid.uuid4().hex[:16]}"
    url = f"{postgres_url()}?schema={schema}"
    code, output = run("db", "init", "--owner-url", owner_url(), "--db", url)
    assert code == 0, output
    yield url
    database = postgres_url().rsplit("/", 1)[1]
    with admin(database) as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))


@pytest.fixture
def database_of(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new database owned by the role named by the test's parameter, which the everyday role may connect to and create in."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin("postgres") as conn:
        conn.execute(SQL("CREATE DATABASE {} OWNER {}").format(Identifier(name), Identifier(request.param)))
        conn.execute(SQL("GRANT CONNECT, CREATE ON DATABASE {} TO ledger").format(Identifier(name)))
    yield name
    with admin("postgres") as conn:
        conn.execute(SQL("DROP DATABASE {} WITH (FORCE)").format(Identifier(name)))


def test_the_services_database_belongs_to_the_owner_role() -> None:
    database = postgres_url().rsplit("/", 1)[1]
    with admin(database) as conn:
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()").fetchone()
    assert row == ("ledger_owner",)


def test_forget_works_for_the_everyday_role_on_a_guarded_schema(guarded: str) -> None:
    assert run("import", "examples/platform-actions.jsonl", "--db", guarded)[0] == 0
    assert NAME.encode() in dumped(guarded)
    code, output = run("person", "forget", "--person", "P-3f9c2a", "--reason", "erasure request", "--db", guarded)
    assert code == 0, output
    dump = dumped(guarded)
    assert NAME.encode() not in dump and EMAIL.encode() not in dump
    assert run("history", "P-3f9c2a", "--db", guarded)[0] == 0


def test_the_everyday_role_erases_nothing_but_through_a_recorded_forgetting(guarded: str) -> None:
    assert run("import", "examples/platform-actions.jsonl", "--db", guarded)[0] == 0
    schema = guarded.partition("?schema=")[2]
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(SQL("DELETE FROM {}.personal_data").format(Identifier(schema)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="may be erased only with its Person.Forgotten event"):
            conn.execute(SQL("SELECT {}.forget_personal_data('P-3f9c2a', %s::uuid)").format(Identifier(schema)),
                         ("00000000-0000-4000-8000-000000000000",))
    assert NAME.encode() in dumped(guarded)


def test_init_refuses_a_schema_the_everyday_role_owns() -> None:
    schema = f"g_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
    try:
        code, output = run("db", "init", "--owner-url", owner_url(), "--db", f"{postgres_url()}?schema={schema}")
        assert code == 1
        assert output == (f"Error: db: 'ledger': owns the schema {schema!r}, so it could drop the ledger; "
                          f'as a superuser run: ALTER SCHEMA "{schema}" OWNER TO "ledger_owner"\n')
    finally:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA {} CASCADE").format(Identifier(schema)))


@pytest.mark.parametrize("database_of", ["ledger"], indirect=True)
def test_init_refuses_a_database_the_everyday_role_owns(database_of: str) -> None:
    code, output = run("db", "init", "--owner-url", on_database(owner_url(), database_of), "--db", on_database(postgres_url(), database_of))
    assert code == 1
    assert output == (f"Error: db: 'ledger': owns the database {database_of!r}, so it could drop the ledger; "
                      f'as a superuser run: ALTER DATABASE "{database_of}" OWNER TO "ledger_owner"\n')


@pytest.mark.parametrize("database_of", ["ledger_owner"], indirect=True)
def test_in_the_owners_database_the_everyday_role_cannot_drop_or_shadow_the_ledger(database_of: str) -> None:
    app, owner = on_database(postgres_url(), database_of), on_database(owner_url(), database_of)
    with psycopg.connect(app, autocommit=True) as conn:  # a table made first, to be taken for the ledger's, is refused
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.ledger_events (forged text)")
    code, output = run("db", "init", "--owner-url", owner, "--db", app)
    assert code == 0, output
    assert run("import", "examples/platform-actions.jsonl", "--db", app)[0] == 0
    with psycopg.connect(app, autocommit=True) as conn:
        for statement in ("DROP TABLE public.ledger_events CASCADE", "DROP TABLE public.tlog_leaves", "DROP SCHEMA public CASCADE",
                          "ALTER TABLE public.ledger_events RENAME TO old_events",
                          "CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON public.personal_data "
                          "FOR EACH STATEMENT EXECUTE FUNCTION public.ledger_events_immutable()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    code, output = run("verify", "--db", app)
    assert code == 0 and output.startswith("verified: 25 stored events"), output  # the writer's authorization, then the import


@pytest.fixture
def auditor(guarded: str) -> Iterator[str]:
    """A login role given read-only access to the guarded schema by `ledger db grant-auditor`; its URL."""
    role = f"auditor_{uuid.uuid4().hex[:8]}"
    database = postgres_url().rsplit("/", 1)[1]
    with admin(database) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN PASSWORD 'auditor'").format(Identifier(role)))
    assert run("import", "examples/platform-actions.jsonl", "--db", guarded)[0] == 0
    code, output = run("db", "grant-auditor", role, "--owner-url", owner_url(), "--db", guarded)
    assert code == 0, output
    assert output.startswith("read-only access granted on ledger_events, tlog_leaves, tlog_nodes, projection_rows")
    assert output.endswith("; nothing on personal_data\n")
    base, _, schema = guarded.partition("?schema=")
    host = base.split("@", 1)[1]
    yield f"postgresql://{role}:auditor@{host}?schema={schema}"
    with admin(database) as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
        conn.execute(SQL("DROP OWNED BY {}").format(Identifier(role)))
        conn.execute(SQL("DROP ROLE {}").format(Identifier(role)))


def test_an_auditor_role_reads_everything_but_personal_data_and_writes_nothing(guarded: str, auditor: str) -> None:
    reads = (("report", "impact", "--format", "json"), ("report", "country", "LV"), ("trace", "bilateral_meetings"),
             ("history", "ORG-IT-0001"), ("audit", "log"), ("verify",), ("report", "impact", "--as-of", datetime.now(timezone.utc).isoformat()))
    expected = {command: run(*command, "--db", guarded)[1] for command in reads[:5]}
    for command in reads:
        code, output = run(*command, "--db", auditor)
        assert code == 0, (command, output)
        if command in expected:
            assert output.endswith(expected[command]), command
    # One more event: an auditor's report still works (the projection is folded in memory, as it may not write it).
    assert run("org", "publish", "--org", "ORG-PT-0001", "--at", "2024-05-01", "--db", guarded)[0] in (0, 1)
    assert run("person", "register", "--person", "P-0a1b2c", "--name", "Ana", "--email", "ana@example.pt", "--db", guarded)[0] == 0
    code, output = run("report", "impact", "--format", "json", "--db", auditor)
    assert code == 0 and "folded in memory" in output, output
    schema = auditor.partition("?schema=")[2]
    with psycopg.connect(auditor.partition("?schema=")[0]) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(SQL("SELECT * FROM {}.personal_data").format(Identifier(schema)))
    for write in (("org", "register", "--org", "ORG-AUD-1", "--name", "X", "--country", "IT", "--ecosystems", "digital",
                   "--year-established", "2001", "--at", "2024-01-01"), ("person", "forget", "--person", "P-0a1b2c",
                   "--reason", "asked")):
        code, output = run(*write, "--db", auditor)
        assert code == 1 and "permission denied" in output and output.count("\n") == 1, (write, output)
