"""Fixtures shared by every tier: ledgers on the in-memory store, on SQLite files and on PostgreSQL schemas."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

import bootstrap
from service_layer.ledger import Ledger
from transparency.note import Signer

STORES = ["sqlite", "postgres"]
TEST_WRITER = "test-writer"


@pytest.fixture(scope="session", autouse=True)
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One writer's signer key for the whole run (its verifier key beside it, .pub), named by $LEDGER_SIGNING_KEY (CLI runs
    in subprocesses inherit it): every ledger a test writes to makes it its first writer. Tests of unsigned or unauthorized
    writes unset or replace it."""
    path = tmp_path_factory.mktemp("keys") / f"{TEST_WRITER}.key"
    signer = Signer.generate(TEST_WRITER)
    path.write_text(signer.encode() + "\n", encoding="utf-8")
    path.with_suffix(".pub").write_text(signer.verifier.encode() + "\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEDGER_SIGNING_KEY", str(path))
        yield path


def postgres_url() -> str:
    """The test server's URL; the run fails (never skips) without one."""
    url = os.environ.get("LEDGER_TEST_PG_URL")
    if not url:
        pytest.fail("LEDGER_TEST_PG_URL is not set: run the tests with scripts/test, which starts PostgreSQL", pytrace=False)
    return url


def fresh_postgres_url() -> str:
    """A URL to a new, empty schema on the test server."""
    return f"{postgres_url()}?schema=t_{uuid.uuid4().hex[:16]}"


def drop_schema(url: str) -> None:
    """Drop the schema of `url`, as a superuser where one is known (the owner role may have made it)."""
    base, _, query = url.partition("?schema=")
    admin = os.environ.get("LEDGER_TEST_PG_ADMIN_URL")
    if admin:
        base = admin.rsplit("/", 1)[0] + "/" + base.rsplit("/", 1)[1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(query)))


def new_url(store: str, folder: Path) -> str:
    if store == "sqlite":
        return f"sqlite:///{folder / f'ledger-{uuid.uuid4().hex[:8]}.db'}"
    if store == "postgres":
        return fresh_postgres_url()
    return "memory://"


@pytest.fixture(params=STORES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = new_url(request.param, tmp_path)
    yield url
    if request.param == "postgres":
        drop_schema(url)


@pytest.fixture(params=["memory", *STORES])
def ledger_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = new_url(request.param, tmp_path)
    app = bootstrap.build_ledger(url)
    yield app
    app.close()
    if request.param == "postgres":
        drop_schema(url)


def snapshot(url: str) -> object:
    """Everything stored at `url`: the file's digest, or every row of every table of the schema."""
    if url.startswith("sqlite:///"):
        return hashlib.sha256(Path(url.removeprefix("sqlite:///")).read_bytes()).hexdigest()
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,))]
        return {t: conn.execute(SQL("SELECT * FROM {}.{} ORDER BY 1, 2").format(Identifier(schema), Identifier(t))).fetchall() for t in tables}


def stored_rows(url: str, sql_by_store: dict[str, str]) -> list[tuple[object, ...]]:
    """Rows of a query on the store at `url` (`{schema}` is replaced by the PostgreSQL schema)."""
    if url.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return [tuple(r) for r in conn.execute(sql_by_store["sqlite"])]
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn:
        return [tuple(r) for r in conn.execute(sql_by_store["postgres"].replace("{schema}", schema))]  # type: ignore[arg-type]
