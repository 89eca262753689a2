"""The composition root: builds the ledger and its stores from a database URL, at call time."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from domain.errors import InvalidValue
from projections.store import ProjectionStore, SQLiteProjectionStore
from service_layer.ledger import Clock, Ledger, utc_now

DEFAULT_DB = "sqlite:///ledger.db"


def database_url(explicit: str | None = None) -> str:
    """The database URL: `--db`, else LEDGER_DB, else ./ledger.db."""
    return explicit or os.environ.get("LEDGER_DB") or DEFAULT_DB


def persistence_env(url: str) -> dict[str, str]:
    """eventsourcing settings for a `sqlite:///path` or `memory://` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise InvalidValue("db", url, "expected sqlite:///path/to/ledger.db")
        if path != ":memory:" and not Path(path).parent.exists():
            raise InvalidValue("db", url, f"folder {str(Path(path).parent)!r} does not exist")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "APPLICATION_RECORDER_TOPIC": "adapters.sqlite:LedgerSQLiteRecorder",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    raise InvalidValue("db", url, "expected sqlite:///path/to/ledger.db or memory://")


def build_ledger(url: str | None = None, clock: Clock = utc_now) -> Ledger:
    """A ledger on the database at `url` (see `database_url`)."""
    return Ledger(env=persistence_env(database_url(url)), clock=clock)


def build_projection_store(url: str | None = None) -> ProjectionStore:
    """The store of projection rows beside the ledger at `url`."""
    resolved = database_url(url)
    env = persistence_env(resolved)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return SQLiteProjectionStore(env["SQLITE_DBNAME"])
    raise InvalidValue("db", resolved, "projections need a sqlite:/// database")
