"""The composition root: builds the ledger and its stores from a database URL, at call time."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

from domain.errors import InvalidValue

if TYPE_CHECKING:  # the stores and the ledger are loaded by the commands that build them, so `ledger --help` starts at once
    import psycopg

    from projections.store import ProjectionStore
    from service_layer.ledger import Clock, Ledger
    from transparency.note import Signer
    from transparency.store import TreeStore

DEFAULT_DB = "sqlite:///ledger.db"
DEFAULT_LOCK_TIMEOUT = "30"
CONNECT_TIMEOUT = 10
"""Seconds a connection to PostgreSQL may take before it fails."""
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
"""A PostgreSQL schema named in `?schema=`: a plain identifier, checked before it reaches any SQL text."""
EVENTS_TABLES = {"eventsourcing.sqlite": "stored_events", "eventsourcing.postgres": "ledger_events"}
"""Where each store keeps the ledger's events (eventsourcing names the table after the application)."""
READ_MODEL_TABLE = "projection_rows"
"""What a read model built by Kafka consumers holds instead of events: reports read it too."""


def lost_connection() -> tuple[type[Exception], ...]:
    """What a database that went away (restarted, unreachable, out of connections) raises, directly or through eventsourcing
    (loaded when first asked: only servers that outlive their database ask)."""
    import psycopg
    from eventsourcing.persistence import InterfaceError, OperationalError

    return (psycopg.OperationalError, psycopg.InterfaceError, OperationalError, InterfaceError)


class BadSetting(InvalidValue):
    """A connection setting that is malformed before anything is tried: a usage mistake (exit status 2)."""


class NoLedger(InvalidValue):
    """A command that only reads was pointed at a database that holds no ledger; it creates none."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(field, value, reason)
        self.args = (f"{field}: {value!r}: {reason}",)  # the whole URL: a mistyped path must be seen to be fixed


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
        path, _, options = path.partition("?lock_timeout=")
        lock_timeout = options or DEFAULT_LOCK_TIMEOUT
        if not path:
            raise InvalidValue("db", describe(url), "expected sqlite:///path/to/ledger.db")
        if not lock_timeout.isdigit() or int(lock_timeout) < 1:
            raise InvalidValue("db", describe(url), "lock_timeout must be a whole number of seconds, at least 1")
        if path != ":memory:" and not Path(path).parent.exists():
            raise InvalidValue("db", describe(url), f"folder {str(Path(path).parent)!r} does not exist")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "APPLICATION_RECORDER_TOPIC": "adapters.sqlite:LedgerSQLiteRecorder",
            "SQLITE_DBNAME": path,
            # A writer waits this long for another write to finish, then gives up with the same line as on PostgreSQL.
            "SQLITE_LOCK_TIMEOUT": lock_timeout,
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
            "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "4",
        }
        query = parse_qs(parsed.query, keep_blank_values=True)
        schema = query.get("schema", [""])[0]
        if "schema" in query:
            if not SCHEMA_NAME.fullmatch(schema) or schema.lower().startswith("pg_"):
                raise BadSetting("?schema=", schema, "a schema is 1 to 63 ASCII letters, digits and _, not starting with a digit or pg_")
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


class Probe:
    """One connection of its own to the ledger's PostgreSQL server, asked `SELECT 1` before each page a server shows: a restart
    or an outage is found in one round trip, not after the pool's retries. On SQLite it always answers."""

    def __init__(self, url: str | None = None) -> None:
        self.env = persistence_env(database_url(url))
        self._connection: psycopg.Connection[Any] | None = None

    def answers(self) -> bool:
        """Whether the connection kept since the last check still answers; False once if it broke (every other one did too)."""
        if self.env["PERSISTENCE_MODULE"] != "eventsourcing.postgres" or self._connection is None:
            return True
        import psycopg

        try:
            self._connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            self.close()
            return False

    def reason(self) -> str:
        """Why the server cannot be reached now, in one line naming the host and port ('' if it can: a new connection is kept)."""
        if self.env["PERSISTENCE_MODULE"] != "eventsourcing.postgres" or self._connection is not None:
            return ""
        import psycopg

        try:
            self._connection = psycopg.connect(_conninfo(self.env), connect_timeout=5, autocommit=True)
        except psycopg.Error as error:
            return f"cannot connect to PostgreSQL at {self.env['POSTGRES_HOST']}:{self.env['POSTGRES_PORT']}: {' '.join(str(error).split())}"
        return ""

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass(frozen=True)
class ReadTarget:
    """Where a command that only reads finds the ledger: its URL, or a temporary copy's, and a one-line note saying why."""

    url: str
    note: str = ""


CONNECT_NOTICE_AFTER = 1.0
"""Seconds a connection to PostgreSQL may take before the user is told what is being tried."""


def reach(url: str | None = None, notice: Callable[[str], None] | None = None) -> None:
    """For a PostgreSQL URL, connect once: refused at once in one line (the write path's pool would wait its whole timeout
    first), and, when the server is slow to answer, `notice` is told what is being tried while waiting."""
    env = persistence_env(database_url(url))
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        _connect(env, notice).close()


def _connect(env: dict[str, str], notice: Callable[[str], None] | None) -> Any:
    import threading

    import psycopg

    where = f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}"
    timer = threading.Timer(CONNECT_NOTICE_AFTER, notice or (lambda _: None),
                            [f"connecting to PostgreSQL at {where} as {env['POSTGRES_USER']} (gives up after {CONNECT_TIMEOUT} s)..."])
    timer.daemon = True
    timer.start()
    try:
        return psycopg.connect(_conninfo(env), autocommit=True)
    except psycopg.OperationalError as error:
        raise psycopg.OperationalError(f"cannot connect to PostgreSQL at {where}: {' '.join(str(error).split())}") from None
    finally:
        timer.cancel()


def require_ledger(url: str | None = None, notice: Callable[[str], None] | None = None) -> ReadTarget:
    """Refuse, with NoLedger, a database that holds no ledger: commands that only read never create one. A SQLite file this
    process cannot write (read-only mount, immutable file) is read through a temporary copy, where projection and tree are
    brought up to date and dropped at exit."""
    resolved = database_url(url)
    env = persistence_env(resolved)
    module = env["PERSISTENCE_MODULE"]
    if module == "eventsourcing.sqlite":
        path = env["SQLITE_DBNAME"]
        if path == ":memory:":
            return ReadTarget(resolved)
        if not Path(path).is_file():
            raise NoLedger("db", describe(resolved), "no such file; a write or `ledger db init` creates a ledger, a read never does")
        import sqlite3

        writable = os.access(path, os.W_OK) and os.access(Path(path).resolve().parent, os.W_OK)
        # Looking must neither create nor change the file; one that cannot be written is opened as immutable.
        uri = f"{Path(path).resolve().as_uri()}?mode=ro" + ("" if writable else "&immutable=1")
        try:
            conn = sqlite3.connect(uri, uri=True)
            try:
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.OperationalError:
                conn.close()
                # A full disk or a read-only folder leaves no room for the shared-memory file a reader needs: read as immutable.
                writable = False
                uri = f"{Path(path).resolve().as_uri()}?mode=ro&immutable=1"
                conn = sqlite3.connect(uri, uri=True)
            try:
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)", (EVENTS_TABLES[module], READ_MODEL_TABLE)
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError as error:
            raise NoLedger("db", describe(resolved), f"not a ledger file ({error})") from None
        if found is None:
            raise NoLedger("db", describe(resolved), "this file holds no ledger; a write or `ledger db init` creates one, a read never does")
        if not writable:
            return ReadTarget(_temporary_copy(uri), f"note: {path} cannot be written here (read-only, or its disk is full); reading a temporary copy, where the projection "
                                                    "and the tree are brought up to date in memory and dropped afterwards")
        if _tables_missing(uri) and _write_locked(path):
            # Making the projection's or the tree's tables would wait for that write: a read never does.
            return ReadTarget(_temporary_copy(uri), f"note: another write holds {path}; reading a temporary copy of the ledger as it was "
                                                    "before that write, where the projection and the tree are brought up to date")
        return ReadTarget(resolved)
    if module == "eventsourcing.postgres":
        schema = env.get("POSTGRES_SCHEMA", "public")
        with _connect(env, notice) as conn:
            row = conn.execute(
                "SELECT coalesce(to_regclass(%s), to_regclass(%s))", (f'"{schema}"."{EVENTS_TABLES[module]}"', f'"{schema}"."{READ_MODEL_TABLE}"')
            ).fetchone()
        if row is None or row[0] is None:
            raise NoLedger("db", describe(resolved), f"schema {schema!r} holds no ledger; a write or `ledger db init` creates one, a read never does")
    return ReadTarget(resolved)


READ_TABLES = ("projection_rows", "projection_tracking", "projection_snapshots", "projection_snapshot_marks", "tlog_leaves", "tlog_nodes",
               "tlog_checkpoints", "mirror_source")
"""Tables a command that only reads makes on first use (beside the events), which takes the write lock."""
READ_INDEXES = ("projection_rows_kind",)
"""Indexes of those tables a ledger written before them gets on first use, which takes the write lock too."""


def _tables_missing(uri: str) -> bool:
    import sqlite3

    from adapters.sqlite import AUDIT_INDEXES

    conn = sqlite3.connect(uri, uri=True)
    try:
        found = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    finally:
        conn.close()
    # The audit log's indexes too: a ledger written before them gets them on first use.
    indexes = {f"{EVENTS_TABLES['eventsourcing.sqlite']}_{name}" for name in AUDIT_INDEXES}
    return not set(READ_TABLES) | set(READ_INDEXES) | indexes <= found


def _write_locked(path: str) -> bool:
    """Whether another connection holds the SQLite file's write lock right now (asked without waiting)."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            return True
        raise
    finally:
        conn.close()


def _temporary_copy(uri: str) -> str:
    """A consistent copy of the SQLite database at `uri` in a temporary folder removed at exit; its URL."""
    import atexit
    import shutil
    import sqlite3
    import tempfile

    folder = tempfile.mkdtemp(prefix="ledger-read-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = Path(folder) / "ledger.db"
    source, target = sqlite3.connect(uri, uri=True), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return f"sqlite:///{copy}"


def build_ledger(url: str | None = None, clock: Clock | None = None, signing_key: str | None = None, signer: Signer | None = None,
                 pool_wait: int | None = None) -> Ledger:
    """A ledger on the database at `url` (see `database_url`), with `clock` (else the time now), writing with `signer`, else
    the key in the file `signing_key`, else the one $LEDGER_SIGNING_KEY names (read at the first write). On PostgreSQL, a
    read waits up to `pool_wait` seconds (else 10) for a connection, on each of eventsourcing's 10 attempts."""
    from service_layer.ledger import Ledger, utc_now

    key_file = signing_key or os.environ.get("LEDGER_SIGNING_KEY") or None
    env = persistence_env(database_url(url))
    if pool_wait is not None and "POSTGRES_CONNECT_TIMEOUT" in env:
        env["POSTGRES_CONNECT_TIMEOUT"] = str(pool_wait)
    return Ledger(env=env, clock=clock or utc_now, signer=signer, signing_key=key_file)


def build_projection_store(url: str | None = None) -> ProjectionStore:
    """The store of projection rows beside the ledger at `url`."""
    from projections.store import PostgresProjectionStore, SQLiteProjectionStore

    resolved = database_url(url)
    env = persistence_env(resolved)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return SQLiteProjectionStore(env["SQLITE_DBNAME"])
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        schema = env.get("POSTGRES_SCHEMA", "public")
        if not _may_write_projection(env, schema):
            store = SQLiteProjectionStore(":memory:")
            store.note = "note: this role may only read the projection; it is folded in memory from position 0"
            return store
        return PostgresProjectionStore(_conninfo(env), schema)
    raise InvalidValue("db", describe(resolved), "projections need a sqlite:/// or postgresql:// database")


def _may_write_projection(env: dict[str, str], schema: str) -> bool:
    """Whether the role of `env` may bring the projection up to date (an auditor's may not), or make its tables."""
    import psycopg

    with psycopg.connect(_conninfo(env), autocommit=True) as conn:
        row = conn.execute(
            "SELECT CASE WHEN to_regnamespace(%s) IS NULL THEN true "
            "WHEN to_regclass(%s) IS NULL THEN has_schema_privilege(current_user, %s, 'CREATE') "
            "ELSE has_table_privilege(to_regclass(%s), 'UPDATE') END",
            (f'"{schema}"', f'"{schema}".projection_tracking', schema, f'"{schema}".projection_tracking'),
        ).fetchone()
    return bool(row and row[0])


def build_tree_store(url: str | None = None) -> TreeStore:
    """The transparency log's tree beside the ledger at `url` (the ledger's tables are created first if missing)."""
    from transparency.store import PostgresTreeStore, SQLiteTreeStore

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
    from psycopg.conninfo import make_conninfo  # only PostgreSQL ledgers load the driver

    return make_conninfo(
        host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DBNAME"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"], connect_timeout=CONNECT_TIMEOUT,
    )


def grant_auditor(url: str | None, owner_url: str, role: str) -> list[str]:
    """Grant `role` read-only access to the ledger at `url`, as the schema's owner (`owner_url`); the tables granted."""
    from adapters.postgres_roles import grant_auditor as grant

    resolved = database_url(url)
    env = persistence_env(resolved)
    if env["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
        raise InvalidValue("db", describe(resolved), "auditor roles are for PostgreSQL; a SQLite file is audited by reading it")
    schema = env.get("POSTGRES_SCHEMA", "public")
    owner_env = persistence_env(owner_url if "schema=" in owner_url else f"{owner_url}{'&' if '?' in owner_url else '?'}schema={schema}")
    if owner_env.get("POSTGRES_SCHEMA", "public") != schema:
        raise InvalidValue("owner-url", describe(owner_url), f"names another schema than --db ({schema})")
    return grant(_conninfo(owner_env), schema, role)


def init_database(url: str | None = None, owner_url: str | None = None) -> str:
    """Create the ledger's tables, guards and tree at `url`; with `owner_url`, as that role, granting the role of `url` only
    what appending and reading need. Returns the role that owns the schema."""
    from urllib.parse import urlparse

    from adapters.postgres_roles import grant_everyday_role, refuse_everyday_ownership

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
        refuse_everyday_ownership(_conninfo(persistence_env(builder)), schema, env["POSTGRES_USER"])
    build_ledger(builder).close()
    build_projection_store(builder).close()
    build_tree_store(builder).close()
    owner_env = persistence_env(builder)
    if owner_url is not None:
        grant_everyday_role(_conninfo(owner_env), owner_env.get("POSTGRES_SCHEMA", "public"), env["POSTGRES_USER"])
        build_ledger(resolved).close()  # the everyday role can open it
    return owner_env.get("POSTGRES_USER", "") or urlparse(builder).username or ""
