"""Histories to tamper with, and tampering as only the database's owner or superuser can do it: guards lifted."""

from __future__ import annotations

import os
import sqlite3

import psycopg
from psycopg.sql import SQL, Identifier

import bootstrap
from service_layer import commands as c
from tests.builders import matchmaking_with_two_orgs


def history(url: str) -> None:
    setup, event, a, b = matchmaking_with_two_orgs()
    app = bootstrap.build_ledger(url)
    app.execute(setup)
    app.execute([c.RequestMeeting(meeting=f"{event}-M", activity=event, requester=a, partner=b, occurred_at="2024-02-10")])
    app.close()


def tamper(url: str, *statements: str) -> None:
    """Edit stored rows as the database's owner (or superuser) can, guards and the actor index lifted: `{events}`, `{id}` and `{schema}` are filled in."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                conn.execute(f'DROP TRIGGER "{name}"')
            for statement in statements:
                conn.execute(statement.format(events="stored_events", id="rowid", schema="main"))
        return
    admin = os.environ["LEDGER_TEST_PG_ADMIN_URL"].rsplit("/", 1)[0] + "/" + url.split("/")[-1].split("?")[0]
    schema = url.partition("?schema=")[2]
    with psycopg.connect(admin) as conn:
        conn.execute(SQL("ALTER TABLE {}.ledger_events DISABLE TRIGGER USER").format(Identifier(schema)))
        # The audit log's actor index reads the payload as bytes: an owner retyping the column drops it first.
        conn.execute(SQL("DROP INDEX IF EXISTS {}.ledger_events_actor").format(Identifier(schema)))
        for statement in statements:
            conn.execute(statement.format(events=f'"{schema}".ledger_events', id="notification_id", schema=f'"{schema}"'))  # type: ignore[arg-type]
