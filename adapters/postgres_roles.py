"""PostgreSQL roles: the schema's owner creates it, and grants the everyday role only what appending and reading need."""

from __future__ import annotations

import psycopg
from psycopg.sql import SQL, Identifier

from domain.errors import InvalidValue

EVENTS_TABLE = "ledger_events"


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
