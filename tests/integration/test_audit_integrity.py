"""Sealed digests prove that stored events were not altered, removed or reordered, even by someone who bypasses the guards."""

from __future__ import annotations

import os
import re
import sqlite3

import psycopg
from click.testing import CliRunner

import bootstrap
from cli.main import ledger
from service_layer import commands as c
from tests.builders import matchmaking_with_two_orgs


def seal(url: str) -> tuple[str, int]:
    result = CliRunner().invoke(ledger, ["audit", "seal", "--db", url])
    assert result.exit_code == 0, result.output
    found = re.search(r"position (\d+) \(\d+ events\): ([0-9a-f]{64})", result.stdout)
    assert found
    return found.group(2), int(found.group(1))


def verify(url: str, digest: str, position: int) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, ["audit", "verify", digest, "--position", str(position), "--db", url])
    return result.exit_code, result.output


def tamper(url: str, statement: str) -> None:
    """Edit stored events the way only someone with the database's owner rights could: around the guards."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("DROP TRIGGER stored_events_no_update")
            conn.execute("DROP TRIGGER stored_events_no_delete")
            conn.execute(statement.format(table="stored_events", id="rowid"))
        return
    admin = os.environ["LEDGER_TEST_PG_ADMIN_URL"].rsplit("/", 1)[0] + "/" + url.split("/")[-1].split("?")[0]
    schema = url.partition("?schema=")[2]
    with psycopg.connect(admin) as conn:
        conn.execute(f'ALTER TABLE "{schema}".ledger_events DISABLE TRIGGER USER')  # type: ignore[arg-type]
        conn.execute(statement.format(table=f'"{schema}".ledger_events', id="notification_id"))  # type: ignore[arg-type]


def history(url: str) -> None:
    setup, event, a, b = matchmaking_with_two_orgs()
    app = bootstrap.build_ledger(url)
    app.execute(setup)
    app.execute([c.RequestMeeting(meeting=f"{event}-M", activity=event, requester=a, partner=b, occurred_at="2024-02-10")])
    app.close()


def test_a_sealed_history_verifies_and_keeps_verifying_as_events_are_added(db_url: str) -> None:
    history(db_url)
    digest, position = seal(db_url)
    assert verify(db_url, digest, position) == (0, f"verified: {position} events up to position {position} are unchanged\n")
    history(db_url)
    assert verify(db_url, digest, position)[0] == 0
    assert seal(db_url)[0] != digest


def test_an_altered_event_fails_verification(db_url: str) -> None:
    history(db_url)
    digest, position = seal(db_url)
    changed = "convert_to(replace(convert_from(state, 'UTF8'), 'Milan', 'Milano'), 'UTF8')" if "postgresql" in db_url else \
        "CAST(replace(CAST(state AS TEXT), 'Milan', 'Milano') AS BLOB)"
    tamper(db_url, "UPDATE {table} SET state = " + changed + " WHERE {id} = 3")
    code, output = verify(db_url, digest, position)
    assert code == 1 and "are not the ones that were sealed" in output


def test_a_removed_event_fails_verification(db_url: str) -> None:
    history(db_url)
    digest, position = seal(db_url)
    tamper(db_url, "DELETE FROM {table} WHERE {id} = 2")
    code, output = verify(db_url, digest, position)
    assert code == 1 and "digest" in output


def test_a_wrong_digest_is_named(db_url: str) -> None:
    history(db_url)
    _, position = seal(db_url)
    code, output = verify(db_url, "00" * 32, position)
    assert code == 1 and output.startswith(f"Error: digest: '{'00' * 32}'")
