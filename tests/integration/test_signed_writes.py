"""Every write is signed by an authorized writer; `ledger verify` names each event whose signature or writer does not hold."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

import bootstrap
from cli.main import ledger
from tests.conftest import TEST_WRITER, snapshot
from tests.integration.tampering import history
from transparency.note import Signer, parse_signer
from transparency.signing import sign_batch, split_signed

NO_KEY = "Error: signing key: none given; give --signing-key FILE or set $LEDGER_SIGNING_KEY (make one with: ledger keygen NAME)\n"


def run(*args: str, db: str) -> Result:
    result = CliRunner().invoke(ledger, [*args, "--db", db])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def keygen(name: str, folder: str) -> bool:
    return CliRunner().invoke(ledger, ["keygen", name, "--dir", folder]).exit_code == 0


def verify(url: str) -> tuple[int, list[str]]:
    assert run("checkpoint", db=url).exit_code == 0  # the appended events join the tree first
    result = run("verify", db=url)
    return result.exit_code, result.output.splitlines()


def last_event(url: str) -> StoredEvent:
    app = bootstrap.build_ledger(url)
    try:
        last = app.recorder.max_notification_id() or 0
        n = app.recorder.select_notifications(start=last, limit=1)[0]
        return StoredEvent(n.originator_id, n.originator_version, n.topic, bytes(n.state))
    finally:
        app.close()


def insert_raw(url: str, event: StoredEvent) -> None:
    """Append a stored event past the ledger, as the database's owner can (no guard refuses an INSERT today)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
                         (event.originator_id.hex, event.originator_version, event.topic, event.state))  # type: ignore[union-attr]
        return
    admin = os.environ["LEDGER_TEST_PG_ADMIN_URL"].rsplit("/", 1)[0] + "/" + url.split("/")[-1].split("?")[0]
    schema = url.partition("?schema=")[2]
    with psycopg.connect(admin) as conn:
        conn.execute(SQL("INSERT INTO {}.ledger_events (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)")
                     .format(Identifier(schema)), (event.originator_id, event.originator_version, event.topic, event.state))


def moved(event: StoredEvent, state: bytes | None = None) -> StoredEvent:
    """The event (or another state) at the next version of its aggregate."""
    return StoredEvent(event.originator_id, event.originator_version + 1, event.topic, event.state if state is None else state)


def test_signed_writes_verify_and_name_their_writer(db_url: str) -> None:
    history(db_url)
    assert verify(db_url) == (0, ["verified: 7 stored events match the tree of 7 leaves"])
    entries = json.loads(run("audit", "log", "--format", "json", db=db_url).stdout)
    assert [e["type"] for e in entries][0] == "Writer.Authorized" and {e["recorded_by"] for e in entries} == {TEST_WRITER}
    assert "recorded by" in run("audit", "log", db=db_url).stdout


def test_a_signed_event_copied_to_another_version_is_named(db_url: str) -> None:
    history(db_url)
    insert_raw(db_url, moved(last_event(db_url)))
    code, lines = verify(db_url)
    assert code == 1 and lines[0].startswith("position 8: signature invalid: the signature by test-writer does not cover this event"), lines


def test_an_unsigned_event_after_signing_began_is_named(db_url: str) -> None:
    history(db_url)
    event = last_event(db_url)
    insert_raw(db_url, moved(event, split_signed(event.state)[0]))
    code, lines = verify(db_url)
    assert code == 1 and lines[0] == "position 8: unsigned after signing began: the event carries no signature; signed writes began at position 1"


def test_a_batch_signed_by_an_unknown_key_is_named(db_url: str) -> None:
    history(db_url)
    event = last_event(db_url)
    forged = sign_batch([moved(event, split_signed(event.state)[0])], Signer.generate("mallory"))[0]
    insert_raw(db_url, forged)
    code, lines = verify(db_url)
    assert code == 1 and lines[0] == "position 8: key unknown: signed by 'mallory', a key no Writer.Authorized before it names", lines


def test_a_revoked_key_is_refused_at_write_time_and_named_by_verify(db_url: str, tmp_path: Path, signing_key: Path) -> None:
    history(db_url)
    assert keygen("bob", str(tmp_path))
    assert run("writer", "authorize", str(tmp_path / "bob.pub"), db=db_url).exit_code == 0
    revoked = run("writer", "revoke", TEST_WRITER, "--reason", "key left on a laptop", "--signing-key", str(tmp_path / "bob.key"), db=db_url)
    assert revoked.output == f"writer '{TEST_WRITER}' revoked at position 9\n"
    before = snapshot(db_url)
    refused = run("publication", "publish", "--publication", "PUB-R", "--kind", "case_study", "--title", "After revoke", db=db_url)
    assert refused.exit_code == 1
    assert refused.output == f"Error: signing key: '{TEST_WRITER}' was revoked as a writer of this ledger; sign with the key of an authorized writer\n"
    assert snapshot(db_url) == before
    event = last_event(db_url)
    insert_raw(db_url, sign_batch([moved(event, split_signed(event.state)[0])], parse_signer(signing_key.read_text()))[0])
    code, lines = verify(db_url)
    assert code == 1 and lines[0] == f"position 10: key revoked: signed by '{TEST_WRITER}', revoked at position 9", lines


def test_an_unsigned_write_is_refused_in_one_line_and_writes_nothing(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history(db_url)
    before = snapshot(db_url)
    monkeypatch.delenv("LEDGER_SIGNING_KEY")
    refused = run("org", "publish", "--org", "ORG-X", db=db_url)
    assert (refused.exit_code, refused.output) == (1, NO_KEY)
    assert snapshot(db_url) == before
    lines = tmp_path / "one.jsonl"
    lines.write_text(json.dumps({"action": "publication.publish", "publication": "PUB-1", "kind": "case_study", "title": "T",
                                 "occurred_at": "2024-01-02"}) + "\n")
    fresh = tmp_path / "never.db"
    assert run("import", str(lines), db=f"sqlite:///{fresh}").output == NO_KEY and not fresh.exists()


def test_a_key_that_is_not_a_writer_is_refused_with_the_fix(db_url: str, tmp_path: Path) -> None:
    history(db_url)
    assert keygen("bob", str(tmp_path))
    before = snapshot(db_url)
    refused = run("publication", "publish", "--publication", "PUB-B", "--kind", "case_study", "--title", "T",
                  "--signing-key", str(tmp_path / "bob.key"), db=db_url)
    assert refused.output == ("Error: signing key: 'bob' is not an authorized writer of this ledger; "
                              "an authorized writer runs: ledger writer authorize bob.pub\n")
    assert snapshot(db_url) == before


def test_writer_rules(db_url: str, tmp_path: Path) -> None:
    history(db_url)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        assert keygen("bob", str(tmp_path / folder))
    bob, other_bob = tmp_path / "a" / "bob.pub", tmp_path / "b" / "bob.pub"

    def says(*args: str) -> str:
        return run(*args, db=db_url).output

    assert says("writer", "authorize", str(bob)) == "writer 'bob' authorized at position 8\n"
    assert says("writer", "authorize", str(bob)) == "already recorded; nothing written\n"
    assert says("writer", "authorize", str(other_bob)) == (
        "Error: writer: 'bob' is already authorized with another key; revoke it first, then authorize a key with a new name\n")
    assert says("writer", "revoke", "carol") == "Error: unknown writer: 'carol'\n"
    assert says("writer", "revoke", "bob") == "writer 'bob' revoked at position 9\n"
    assert says("writer", "revoke", "bob", "--reason", "again") == "Error: writer: 'bob' is already revoked\n"
    assert says("writer", "revoke", TEST_WRITER) == f"Error: writer: '{TEST_WRITER}' is the last active writer; authorize another first\n"
    assert says("writer", "authorize", str(bob)).startswith("Error: writer: 'bob' was revoked; a revoked name is never authorized again")
    listed = says("writer", "list").splitlines()
    assert [line.split()[:2] for line in listed[2:]] == [[TEST_WRITER, "active"], ["bob", "revoked"]]
    assert verify(db_url)[0] == 0


def test_the_root_key_is_recorded_once_unsigned_on_a_ledger_without_writers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'rooted.db'}"
    assert keygen("root", str(tmp_path))
    monkeypatch.delenv("LEDGER_SIGNING_KEY")
    first = run("db", "init", "--root-key", str(tmp_path / "root.pub"), db=url)
    assert first.exit_code == 0 and "root writer recorded at position 1: root+" in first.output
    again = run("db", "init", "--root-key", str(tmp_path / "root.pub"), db=url)
    assert again.output.endswith("Error: root-key: this ledger already has writers; an authorized writer runs: ledger writer authorize NAME.pub\n")
    signed = run("publication", "publish", "--publication", "PUB-1", "--kind", "case_study", "--title", "T",
                 "--signing-key", str(tmp_path / "root.key"), db=url)
    assert signed.output == "recorded 1 event at position 2\n"
    assert verify(url) == (0, ["verified: 2 stored events match the tree of 2 leaves"])
    assert "root" in run("history", "PUB-1", db=url).stdout.splitlines()[2].split()


def test_without_a_key_the_demo_signs_with_its_own_kept_beside_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_SIGNING_KEY")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run("demo", "--scale", "0.002", "--seed", "3", db=url).exit_code == 0
    assert (tmp_path / "demo.key").exists() and (tmp_path / "demo.pub").exists()
    entries = json.loads(run("audit", "log", "--format", "json", db=url).stdout)
    assert entries[0]["type"] == "Writer.Authorized" and {e["recorded_by"] for e in entries} == {"demo"}
    added = run("publication", "publish", "--publication", "PUB-D", "--kind", "case_study", "--title", "T",
                "--signing-key", str(tmp_path / "demo.key"), db=url)
    assert added.output == f"recorded 1 event at position {len(entries) + 1}\n"
    assert verify(url)[0] == 0
