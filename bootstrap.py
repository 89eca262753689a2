"""The composition root: builds the ledger and its stores from a database URL, at call time."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from psycopg.conninfo import make_conninfo

from domain.errors import InvalidValue
from projections.store import PostgresProjectionStore, ProjectionStore, SQLiteProjectionStore
from service_layer.ledger import Clock, Ledger, utc_now
from transparency.note import Signer
from transparency.store import PostgresTreeStore, SQLiteTreeStore, TreeStore

DEFAULT_DB = "sqlite:///ledger.db"
DEFAULT_LOCK_TIMEOUT = "30"


def database_url(explicit: str | None = None) -> str:
    """The database URL: `--db`, else LEDGER_DB, else ./ledger.db."""
    return explicit or os.environ.get("LEDGER_DB") or DEFAULT_DB


def persistence_env(url: str) -> dict[str, str]:
    """eventsourcing settings for a `sqlite:///path`, `postgresql://...[?schema=s&lock_timeout=seconds]` or `memory://` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise InvalidValue("db", describe(url), "expected sqlite:///path/to/ledger.db")
        if path != ":memory:" and not Path(path).parent.exists():
            raise InvalidValue("db", describe(url), f"folder {str(Path(path).parent)!r} does not exist")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "APPLICATION_RECORDER_TOPIC": "adapters.sqlite:LedgerSQLiteRecorder",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    if parsed.scheme in ("postgresql", "postgres"):
        if not parsed.hostname or not parsed.path.strip("/"):
            raise InvalidValue("db", describe(url), "expected postgresql://user:password@host:port/dbname")
        try:
            port = parsed.port or 5432
        except ValueError:
            raise InvalidValue("db", describe(url), "the port is not a number from 1 to 65535") from None
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "adapters.postgres:LedgerPostgresRecorder",
            "POSTGRES_DBNAME": unquote(parsed.path.strip("/")),
            "POSTGRES_HOST": parsed.hostname,
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "4",
        }
        query = parse_qs(parsed.query)
        schema = query.get("schema", [""])[0]
        if schema:
            env["POSTGRES_SCHEMA"] = schema
        lock_timeout = query.get("lock_timeout", [DEFAULT_LOCK_TIMEOUT])[0]
        if not lock_timeout.isdigit() or int(lock_timeout) < 1:
            raise InvalidValue("db", describe(url), "lock_timeout must be a whole number of seconds, at least 1")
        # A writer waits this long for another write to finish, then gives up with a clear error.
        env["POSTGRES_LOCK_TIMEOUT"] = lock_timeout
        return env
    raise InvalidValue("db", describe(url), "expected sqlite:///path/to/ledger.db, postgresql://user:password@host:port/dbname or memory://")


def describe(url: str) -> str:
    """The URL with its password masked, for every message and log line."""
    return re.sub(r"(://[^:/@?#]*:)[^/?#]*@", r"\1***@", url, count=1)


def diagnose(url: str | None = None) -> str:
    """Why the PostgreSQL server of `url` cannot be reached, in one line naming the host and port ('' if it can)."""
    import psycopg

    env = persistence_env(database_url(url))
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        return ""
    where = f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}"
    try:
        psycopg.connect(_conninfo(env), connect_timeout=5).close()
    except psycopg.Error as error:
        reason = " ".join(str(error).split())
        return f"cannot connect to PostgreSQL at {where}: {reason}"
    return ""


def build_ledger(url: str | None = None, clock: Clock = utc_now, signing_key: str | None = None, signer: Signer | None = None) -> Ledger:
    """A ledger on the database at `url` (see `database_url`), writing with `signer`, else the key in the file `signing_key`,
    else the one $LEDGER_SIGNING_KEY names (read at the first write)."""
    key_file = signing_key or os.environ.get("LEDGER_SIGNING_KEY") or None
    return Ledger(env=persistence_env(database_url(url)), clock=clock, signer=signer, signing_key=key_file)


def build_projection_store(url: str | None = None) -> ProjectionStore:
    """The store of projection rows beside the ledger at `url`."""
    resolved = database_url(url)
    env = persistence_env(resolved)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return SQLiteProjectionStore(env["SQLITE_DBNAME"])
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        return PostgresProjectionStore(_conninfo(env), env.get("POSTGRES_SCHEMA", "public"))
    raise InvalidValue("db", describe(resolved), "projections need a sqlite:/// or postgresql:// database")


def build_tree_store(url: str | None = None) -> TreeStore:
    """The transparency log's tree beside the ledger at `url` (the ledger's tables are created first if missing)."""
    resolved = database_url(url)
    env = persistence_env(resolved)
    if env["PERSISTENCE_MODULE"] not in ("eventsourcing.sqlite", "eventsourcing.postgres"):
        raise InvalidValue("db", describe(resolved), "the transparency log needs a sqlite:/// or postgresql:// database")
    app = build_ledger(resolved)
    table = app.recorder.events_table_name
    app.close()
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return SQLiteTreeStore(env["SQLITE_DBNAME"], table)
    return PostgresTreeStore(_conninfo(env), env.get("POSTGRES_SCHEMA", "public"), table)


def _conninfo(env: dict[str, str]) -> str:
    return make_conninfo(
        host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DBNAME"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"], connect_timeout=10,
    )


def init_database(url: str | None = None, owner_url: str | None = None) -> str:
    """Create the ledger's tables, guards and tree at `url`; with `owner_url`, as that role, granting the role of `url` only
    what appending and reading need. Returns the role that owns the schema."""
    from urllib.parse import urlparse

    from adapters.postgres_roles import grant_everyday_role

    resolved = database_url(url)
    env = persistence_env(resolved)
    builder = resolved
    if owner_url is not None:
        if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
            raise InvalidValue("owner-url", describe(owner_url), "an owner role is for PostgreSQL; --db must be a postgresql:// URL")
        schema = env.get("POSTGRES_SCHEMA", "public")
        builder = owner_url if "schema=" in owner_url else f"{owner_url}{'&' if '?' in owner_url else '?'}schema={schema}"
        if persistence_env(builder).get("POSTGRES_SCHEMA", "public") != schema:
            raise InvalidValue("owner-url", describe(owner_url), f"names another schema than --db ({schema})")
    build_ledger(builder).close()
    build_projection_store(builder).close()
    build_tree_store(builder).close()
    owner_env = persistence_env(builder)
    if owner_url is not None:
        grant_everyday_role(_conninfo(owner_env), owner_env.get("POSTGRES_SCHEMA", "public"), env["POSTGRES_USER"])
        build_ledger(resolved).close()  # the everyday role can open it
    return owner_env.get("POSTGRES_USER", "") or urlparse(builder).username or ""
