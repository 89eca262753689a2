"""PostgreSQL roles: the schema's owner creates it, and grants the everyday role only what appending and reading need."""

from __future__ import annotations

import psycopg
from psycopg.sql import SQL, Identifier

from domain.errors import InvalidValue

EVENTS_TABLE = "ledger_events"
FORGET_FUNCTION = "forget_personal_data"
"""Made by the recorder's DDL (adapters/postgres.py); the everyday role may only execute it."""
ACTOR_FUNCTION = "event_actor"
"""Made by the recorder's DDL: a stored event's actor, which the audit log's index holds and its queries call."""


def refuse_everyday_ownership(owner_conninfo: str, schema: str, role: str) -> None:
    """Refuse a guarded set-up in which the everyday `role` owns the database or the schema: an owner drops what it owns."""
    with psycopg.connect(owner_conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), pg_get_userbyid(d.datdba), "
            "(SELECT pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname = %s), "
            "(SELECT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            " WHERE n.nspname = %s AND c.relname = %s) "
            "FROM pg_database d WHERE d.datname = current_database()", (schema, schema, EVENTS_TABLE),
        ).fetchone()
    if row is None:
        return
    owner, database, database_owner, schema_owner, events_owner = row
    if database_owner == role:
        raise InvalidValue("db", role, f"owns the database {database!r}, so it could drop the ledger; as a superuser run: "
                                       f'ALTER DATABASE "{database}" OWNER TO "{owner}"')
    if schema_owner == role:
        raise InvalidValue("db", role, f"owns the schema {schema!r}, so it could drop the ledger; as a superuser run: "
                                       f'ALTER SCHEMA "{schema}" OWNER TO "{owner}"')
    if events_owner == role:
        raise InvalidValue("db", role, f"owns the table {schema}.{EVENTS_TABLE}, so it could drop or rewrite the ledger; as a superuser run: "
                                       f'ALTER TABLE "{schema}"."{EVENTS_TABLE}" OWNER TO "{owner}"')


def grant_everyday_role(owner_conninfo: str, schema: str, role: str) -> None:
    """Grant `role` SELECT and INSERT on events, personal data and the tree, and read-write on projections (the owner keeps the rest).

    TRUNCATE is granted too: eventsourcing's `LOCK TABLE ... IN EXCLUSIVE MODE` needs UPDATE, DELETE or TRUNCATE
    (PostgreSQL 15; from 17 MAINTAIN would do), and the owner's trigger refuses every TRUNCATE anyway.
    """
    with psycopg.connect(owner_conninfo, autocommit=True) as conn:
        owner = conn.execute("SELECT current_user").fetchone()
        if owner is not None and owner[0] == role:
            raise InvalidValue("owner-url", owner[0], "the owner must be another role than the one in --db")
        s, r = Identifier(schema), Identifier(role)
        events = SQL("{}.{}").format(s, Identifier(EVENTS_TABLE))
        sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'notification_id')", (f'"{schema}"."{EVENTS_TABLE}"',)).fetchone()
        with conn.transaction():
            conn.execute(SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(s))
            conn.execute(SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r))
            conn.execute(SQL("REVOKE ALL ON {} FROM PUBLIC").format(events))
            conn.execute(SQL("GRANT SELECT, INSERT, TRUNCATE ON {} TO {}").format(events, r))
            if sequence is not None and sequence[0]:
                conn.execute(SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(SQL(sequence[0]), r))
            for table, rights in (("personal_data", "SELECT, INSERT"), ("tlog_leaves", "SELECT, INSERT"), ("tlog_nodes", "SELECT, INSERT"),
                                  ("tlog_checkpoints", "SELECT, INSERT"), ("mirror_source", "SELECT"),
                                  ("projection_rows", "SELECT, INSERT, UPDATE, DELETE"),
                                  ("projection_tracking", "SELECT, INSERT, UPDATE, DELETE"),
                                  ("projection_snapshots", "SELECT, INSERT, UPDATE, DELETE"),
                                  ("projection_snapshot_marks", "SELECT, INSERT, UPDATE, DELETE")):
                conn.execute(SQL("GRANT " + rights + " ON {}.{} TO {}").format(s, Identifier(table), r))  # rights: a fixed list above
            # Personal data is erased only through the owner's function, which checks the log holds the person's forgetting.
            conn.execute(SQL("GRANT EXECUTE ON FUNCTION {}.{}(text, uuid) TO {}").format(s, Identifier(FORGET_FUNCTION), r))
            # Inserting an event computes its actor for the index; filtering the audit log by actor calls it too.
            conn.execute(SQL("GRANT EXECUTE ON FUNCTION {}.{}(bytea) TO {}").format(s, Identifier(ACTOR_FUNCTION), r))


AUDITED_TABLES = (EVENTS_TABLE, "tlog_leaves", "tlog_nodes", "projection_rows", "projection_tracking", "projection_snapshots",
                  "projection_snapshot_marks", "tlog_checkpoints", "mirror_source")
"""What report, trace, history, audit log, verify and serve read; personal data is not among them."""


def grant_auditor(owner_conninfo: str, schema: str, role: str) -> list[str]:
    """Grant `role` read-only access to what auditors read, now and (by default privileges) to tables the owner adds later;
    never personal data. Returns the tables granted."""
    with psycopg.connect(owner_conninfo, autocommit=True) as conn:
        owner = conn.execute("SELECT current_user").fetchone()
        if owner is not None and owner[0] == role:
            raise InvalidValue("role", role, "is the owner; an auditor is a role of its own")
        found = conn.execute("SELECT to_regrole(%s)", (role,)).fetchone()
        if found is None or found[0] is None:
            raise InvalidValue("role", role, "no such role; create it first: CREATE ROLE ... LOGIN PASSWORD '...'")
        s, r = Identifier(schema), Identifier(role)
        granted = []
        with conn.transaction():
            conn.execute(SQL("GRANT CONNECT ON DATABASE {} TO {}").format(Identifier(conn.info.dbname), r))
            conn.execute(SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r))
            for table in AUDITED_TABLES:
                exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()
                if exists is not None and exists[0] is not None:
                    conn.execute(SQL("GRANT SELECT ON {}.{} TO {}").format(s, Identifier(table), r))
                    granted.append(table)
            conn.execute(SQL("REVOKE ALL ON {}.personal_data FROM {}").format(s, r))
            # Tables the owner makes later (an upgrade's) are readable too; only personal data is ever taken back.
            conn.execute(SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(s, r))
        return granted
