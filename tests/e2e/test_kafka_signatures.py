"""Consumers on a real broker check each envelope's signature: forged and conflicting messages are parked, a message signed
by a key not yet authorized is held until its authorization arrives, and a revoked key's later messages are parked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from eventsourcing.persistence import Notification, StoredEvent
from psycopg.sql import SQL, Identifier

import bootstrap
from cli.main import ledger
from consumers.envelope import wrap
from consumers.relay import RelaySettings, ensure_topic
from consumers.writers import AUTHORIZED_TYPE, KEY_FIELD, NAME_FIELD, REVOKED_TYPE
from service_layer import commands as c
from tests.builders import matchmaking_with_two_orgs, new_ref, org
from tests.conftest import drop_schema, fresh_postgres_url
from tests.e2e.test_kafka_pipeline import ROOT, kafka, query, report, rows
from tests.e2e.test_kafka_robustness import envelope, send, stamps
from transparency.note import Signer
from transparency.signing import sign_batch, split_signed


@dataclass
class Stream:
    """One topic of one partition, a ledger whose events it carries, and read models fed from it."""

    topic: str
    store_url: str
    schemas: list[str]
    events: list[Notification]

    def read_model_url(self) -> str:
        url = fresh_postgres_url()
        self.schemas.append(url)
        return url

    def publish(self, *notifications: Notification) -> None:
        """Publish as the relay does: keyed by aggregate id, in the relay's envelope."""
        send(self.topic, *((str(n.originator_id).encode(), wrap(n).model_dump_json().encode()) for n in notifications))

    def consume(self, url: str, *extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "cli.main", "consume", "platform", "--db", url, "--group", "g-signed", "--until-idle", "3",
                               "--bootstrap", kafka(), "--topic", self.topic, *extra],
                              cwd=ROOT, env={**os.environ, "LEDGER_LOG_LEVEL": "INFO"}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout + done.stderr


@pytest.fixture
def stream() -> Iterator[Stream]:
    """Two organisations and a matchmaking event with both registered, then both organisations renamed, in PostgreSQL."""
    store = fresh_postgres_url()
    commands, _, a, b = matchmaking_with_two_orgs()
    app = bootstrap.build_ledger(store)
    try:
        app.execute(commands, actor="test-writer")
        app.execute([c.UpdateOrg(org=a, name="Renamed A", occurred_at="2024-03-01")], actor="test-writer")
        app.execute([c.UpdateOrg(org=b, name="Renamed B", occurred_at="2024-03-02")], actor="test-writer")
        # Signed again below by the tests' own writers: the test writer's authorization and signature blocks are left out.
        events = [Notification(id=n.id, originator_id=n.originator_id, originator_version=n.originator_version, topic=n.topic,
                               state=split_signed(n.state)[0])
                  for n in app.recorder.select_notifications(start=1, limit=100) if "Writer." not in n.topic]
    finally:
        app.close()
    assert len(events) == 7
    made = Stream(f"ledger.test.{uuid.uuid4().hex[:10]}", store, [store], events)
    ensure_topic(RelaySettings(kafka(), made.topic, partitions=1))
    yield made
    for url in made.schemas:
        drop_schema(url)


def signed(events: list[Notification], signer: Signer) -> list[Notification]:
    """The events with the signature block of one batch signed by `signer`, at their own positions."""
    batch = sign_batch([StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in events], signer)
    return [Notification(id=n.id, originator_id=s.originator_id, originator_version=s.originator_version, topic=s.topic, state=s.state)
            for n, s in zip(events, batch)]


def writer_event(kind: str, writer: uuid.UUID, version: int, position: int, **fields: str) -> Notification:
    """A writer's authorization or revocation as the ledger stores it, at a position of our choosing."""
    now = datetime.now(timezone.utc).isoformat()
    state = json.dumps({**fields, "timestamp": now, "occurred_at": now, "actor": "root"}, separators=(",", ":")).encode()
    return Notification(id=position, originator_id=writer, originator_version=version, topic=f"domain.writer:{kind}", state=state)


def rebuilt(store_url: str) -> list[tuple[str, str]]:
    from projections import runner

    app = bootstrap.build_ledger(store_url)
    store = bootstrap.build_projection_store(store_url)
    try:
        runner.rebuild(app.recorder, app.mapper, store, projection="rebuilt")
        return store.raw_rows("rebuilt")
    finally:
        store.close()
        app.close()


def parked(url: str) -> list[str]:
    return [reason for (reason,) in query(url, "SELECT error FROM {schema}.dead_letters ORDER BY message_offset")]


def test_a_forged_envelope_is_parked_and_the_genuine_events_give_the_ledgers_figures(stream: Stream, tmp_path: Path) -> None:
    root = Signer.generate("root.example")
    (tmp_path / "root.pub").write_text(root.verifier.encode() + "\n")
    first, rename_a, rename_b = stream.events[:5], stream.events[5], stream.events[6]
    stream.publish(*signed(first, root))
    # Version 2 of organisation A, forged: no signature at all, then a signed event whose body was changed after signing.
    org_a = rename_a.originator_id
    forged = json.loads(envelope(org_a, 2, rename_a.topic, {**json.loads(rename_a.state), **stamps(), "name": "Forged"}, position=10**12))
    send(stream.topic, (str(org_a).encode(), json.dumps(forged).encode()))
    genuine_b = signed([rename_b], root)[0]
    altered = genuine_b.state.replace(b"Renamed B", b"Altered B")
    stream.publish(Notification(id=10**12 + 1, originator_id=genuine_b.originator_id, originator_version=2, topic=genuine_b.topic, state=altered))
    stream.publish(*signed([rename_a], root), genuine_b)
    url = stream.read_model_url()
    output = stream.consume(url, "--root-key", str(tmp_path / "root.pub"))
    assert "applied 7 events" in output and "parked 2 messages" in output, output
    assert parked(url)[0].startswith("unsigned: the envelope carries no stored state"), parked(url)
    assert parked(url)[1].startswith("signature invalid: the signature by root.example does not cover this event"), parked(url)
    assert rows(url) == rebuilt(stream.store_url)
    assert report(url) == report(stream.store_url)


def test_a_message_that_conflicts_with_an_applied_version_is_parked_with_its_position(stream: Stream) -> None:
    # No root is given: signatures are not checked, but a second, different version 2 is never taken for a duplicate.
    org_a = stream.events[5].originator_id
    stream.publish(*stream.events[:5])
    forged = json.loads(envelope(org_a, 2, stream.events[5].topic, {**json.loads(stream.events[5].state), **stamps(), "name": "Forged"},
                                 position=10**12))
    send(stream.topic, (str(org_a).encode(), json.dumps(forged).encode()))
    stream.publish(*stream.events[5:], stream.events[0])
    url = stream.read_model_url()
    output = stream.consume(url)
    assert "applied 7 events" in output and "dropped 1 duplicate;" in output and "parked 1 message" in output, output
    assert parked(url) == [f"conflicts with the event applied at position {10**12}: version 2 of {org_a.hex} arrived with other content"]
    assert rows(url) != rebuilt(stream.store_url)


def moved(n: Notification, position: int) -> Notification:
    return Notification(id=position, originator_id=n.originator_id, originator_version=n.originator_version, topic=n.topic, state=n.state)


def test_a_message_signed_by_a_key_not_yet_authorized_is_held_until_its_authorization_and_a_revoked_keys_later_one_is_parked(
    stream: Stream, tmp_path: Path
) -> None:
    root, second = Signer.generate("root.example"), Signer.generate("second.example")
    (tmp_path / "root.pub").write_text(root.verifier.encode())
    writer = uuid.uuid4()
    # The root authorizes the second writer at position 10; it signs the events at 11 to 15, is revoked at 16, then signs 17.
    authorized = signed([writer_event(AUTHORIZED_TYPE, writer, 1, 10, **{NAME_FIELD: second.name, KEY_FIELD: second.verifier.encode()})], root)
    revoked = signed([writer_event(REVOKED_TYPE, writer, 2, 16, **{NAME_FIELD: second.name, "reason": "left"})], root)
    first = [moved(n, 11 + i) for i, n in enumerate(stream.events[:5])]
    rename_a, rename_b = moved(stream.events[5], 17), moved(stream.events[6], 18)
    # The ledger's own trust anchor, recorded unsigned, comes first: it authorizes the key given as --root-key.
    anchor = writer_event(AUTHORIZED_TYPE, uuid.uuid4(), 1, 1, **{NAME_FIELD: root.name, KEY_FIELD: root.verifier.encode()})
    stream.publish(anchor, *signed(first, second))
    url = stream.read_model_url()
    output = stream.consume(url, "--root-key", str(tmp_path / "root.pub"))
    assert "applied 1 event" in output and "parked 0 messages; held 5" in output, output
    assert [r for (r,) in query(url, "SELECT reason FROM {schema}.held_messages")] == ["key not yet authorized: signed by 'second.example'"] * 5
    assert rows(url) == []
    listed = CliRunner().invoke(ledger, ["consume", "platform", "--dead-letters", "--db", url])
    assert listed.exit_code == 0 and "held until their writer's key is authorized:" in listed.output, listed.output
    assert listed.output.count("key not yet authorized: signed by 'second.example'") == 5, listed.output

    stream.publish(*authorized, *revoked, *signed([rename_a], second), *signed([rename_b], root))
    output = stream.consume(url, "--root-key", str(tmp_path / "root.pub"))
    assert "applied 8 events" in output and "parked 1 message; held 0" in output, output
    assert "writer 'second.example' authorized: applying the 5 messages held for it" in output
    assert query(url, "SELECT count(*) FROM {schema}.held_messages") == [(0,)]
    assert parked(url) == ["signed by 'second.example' at position 17, after its revocation at position 16"]
    names = {version.get("name") for _, data in rows(url) for version in json.loads(data).get("versions", [])}
    assert "Renamed B" in names and "Renamed A" not in names, names
    assert query(url, "SELECT name, counts_after, revoked_at FROM {schema}.consumer_writers ORDER BY name") == [
        ("root.example", 0, None), ("second.example", 10, 16)]


def test_on_first_use_a_consumer_trusts_the_first_self_signed_authorization_and_applies_what_it_signed(stream: Stream) -> None:
    root = Signer.generate("root.example")
    authorized = signed([writer_event(AUTHORIZED_TYPE, uuid.uuid4(), 1, 10, **{NAME_FIELD: root.name, KEY_FIELD: root.verifier.encode()})], root)
    events = signed([moved(n, 11 + i) for i, n in enumerate(stream.events)], root)
    # The root's events arrive before its authorization (they wait for it); an unsigned copy of the last one is parked.
    stream.publish(*events[:6], *authorized, events[6])
    send(stream.topic, (b"copy", envelope(stream.events[6].originator_id, 3, stream.events[6].topic, json.loads(stream.events[6].state))))
    url = stream.read_model_url()
    output = stream.consume(url, "--trust-first-writer")
    assert "applied 8 events" in output and "parked 1 message; held 0" in output, output
    assert "writer 'root.example' authorized: applying the 6 messages held for it" in output
    assert f"trusting writer 'root.example' on first use: the first authorization to arrive, at position 10, with key {root.verifier.encode()}" in output
    assert parked(url) == ["unsigned: the envelope carries no stored state to check"]
    assert query(url, "SELECT name, counts_after FROM {schema}.consumer_writers") == [("root.example", 9)]

    # A message another member held while this one applied its writer's authorization is applied with the next batch.
    app = bootstrap.build_ledger("memory://")
    try:
        app.execute([org(new_ref("ORG"))], actor="test-writer")
        late = signed([moved(next(iter(app.recorder.select_notifications(start=1, limit=1))), 30)], root)[0]
    finally:
        app.close()
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn:
        conn.execute(SQL("INSERT INTO {}.held_messages (projection, group_id, topic, partition, message_offset, message_value, writer, aggregate_id, reason) "
                         "VALUES ('platform', 'g-other', %s, 0, 99, %s, 'root.example', %s, 'key not yet authorized')").format(Identifier(schema)),
                     (stream.topic, wrap(late).model_dump_json().encode(), late.originator_id.hex))
    stream.publish(events[0])
    output = stream.consume(url)
    assert "applied 1 event" in output and "dropped 1 duplicate;" in output, output
    assert query(url, "SELECT count(*) FROM {schema}.held_messages") == [(0,)]


def test_a_bad_root_key_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    url = fresh_postgres_url()
    (tmp_path / "bad.pub").write_text("root.example+00000000+AAAA\n")
    (tmp_path / "root.pub").write_text(Signer.generate("root.example").verifier.encode())
    try:
        done = CliRunner().invoke(ledger, ["consume", "platform", "--db", url, "--root-key", str(tmp_path / "bad.pub")])
        assert (done.exit_code, done.output) == (1, "Error: verifier key: not an Ed25519 key (algorithm byte 0x01 and 32 key bytes)\n")
        done = CliRunner().invoke(ledger, ["consume", "platform", "--db", url, "--root-key", str(tmp_path / "root.pub"), "--trust-first-writer"])
        assert done.exit_code == 2 and "--root-key and --trust-first-writer: give one of them, not both" in done.output, done.output
        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone() == (0,)
    finally:
        drop_schema(url)
