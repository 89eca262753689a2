"""Consumers and relay on a real broker: poison messages are parked, the relay alone creates the topic, outages heal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import Any

import pytest
from click.testing import CliRunner

import bootstrap
from cli.main import ledger
from domain.base import ref_id
from service_layer import commands as c
from tests.conftest import drop_schema, fresh_postgres_url
from tests.e2e.test_kafka_pipeline import (
    LOGS,
    ROOT,
    Pipeline,
    finish,
    holds_two_partitions,
    kafka,
    output_of,
    query,
    relay_position,
    rows,
    stop,
    wait_until,
)


@pytest.fixture
def small() -> Iterator[Pipeline]:
    before = set(LOGS)
    made = Pipeline(scale=0.01)
    yield made
    for pid in set(LOGS) - before:  # a failed test leaves no member behind to disturb the next one's group
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    made.close()


def group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def partitions_of(topic: str) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka(), client_id="test-admin")
    try:
        return len(admin.describe_topics([topic])[0]["partitions"])
    finally:
        admin.close()


def topic_exists(topic: str) -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka(), client_id="test-admin")
    try:
        return topic in admin.list_topics()
    finally:
        admin.close()


def send(topic: str, *messages: tuple[bytes, bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka(), acks="all", allow_auto_create_topics=False)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`ledger ARGS` in its own process (the relay's producer warns in-process, and warnings are errors here)."""
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def execute(url: str, *commands: c.Command) -> None:
    app = bootstrap.build_ledger(url)
    try:
        app.execute(list(commands), actor="test-writer")
    finally:
        app.close()


def envelope(aggregate_id: uuid.UUID, version: int, topic: str, payload: dict[str, Any], position: int = 999_999) -> bytes:
    return json.dumps({"position": position, "aggregate_id": str(aggregate_id), "version": version, "topic": topic,
                       "type": topic.split(":", 1)[-1], "occurred_at": payload["occurred_at"], "recorded_at": payload["timestamp"],
                       "actor": "intruder", "payload": payload}).encode()


def stamps() -> dict[str, str]:
    now = datetime.now(timezone.utc).isoformat()
    return {"timestamp": now, "occurred_at": now, "actor": "intruder", "action_key": uuid.uuid4().hex, "action_digest": "x"}


def parked_reasons(url: str) -> dict[bytes, str]:
    return {bytes(key): reason for key, reason in query(url, "SELECT message_key, error FROM {schema}.dead_letters")}


def test_poison_messages_are_parked_and_the_events_after_them_still_arrive(small: Pipeline) -> None:
    finish(small.relay("--until-caught-up"))
    ref = f"ACT-{uuid.uuid4().hex[:8].upper()}"
    today = date.today().isoformat()
    execute(small.store_url, c.ScheduleActivity(activity=ref, kind="matchmaking", title="Poison test", starts_on=today, place="Brno",
                                                ends_on=today, occurred_at=today))
    finish(small.relay("--until-caught-up"))
    activity = ref_id(ref)
    key = str(activity).encode()
    award = {**stamps(), "level": "gold", "valid_until": "2030-01-01"}
    held = {**stamps()}
    send(small.topic,
         (key, envelope(activity, 2, "domain.model:ClusterOrganisation.LabelAwarded", award)),
         (key, envelope(activity, 2, "domain.model:Activity.Held", held, position=10**20)),
         (key, envelope(activity, 2**63, "domain.model:Activity.Held", held)),
         (b"junk", b"{not json"),
         (b"unicorn", envelope(uuid.uuid4(), 1, "domain.model:Unicorn.Sighted", stamps())))
    # The real next version of the activity comes after the poison, on the same partition.
    execute(small.store_url, c.CancelActivity(activity=ref, reason="weather", occurred_at=today))
    finish(small.relay("--until-caught-up"))
    url = small.read_model_url()
    consumer = small.consumer(url, group(), "--until-idle", "3")
    output = finish(consumer)
    assert "parked 5 messages" in output, output
    assert sorted(parked_reasons(url)) == sorted([key, b"junk", b"unicorn"])
    by_offset = [r for (r,) in query(url, "SELECT error FROM {schema}.dead_letters ORDER BY partition, message_offset")]
    assert len(by_offset) == 5, by_offset
    assert any("LabelAwarded" in r and "activity" in r for r in by_offset), by_offset
    assert any("position" in r and str(10**20) in r for r in by_offset), by_offset
    assert any("version" in r and str(2**63) in r for r in by_offset), by_offset
    assert "Traceback" not in output and "KeyError" not in output
    assert rows(url) == small.rebuilt_rows()
    cancelled = [json.loads(data) for k, data in rows(url) if k == activity.hex]
    assert cancelled and cancelled[0]["cancelled"] is not None

    listed = CliRunner().invoke(ledger, ["consume", "platform", "--dead-letters", "--db", url])
    assert listed.exit_code == 0, listed.output
    assert len(listed.output.strip().splitlines()) == 1 + 5, listed.output
    assert "partition" in listed.output and "offset" in listed.output and "Unicorn" in listed.output


def test_a_topic_naming_a_python_module_imports_nothing(small: Pipeline) -> None:
    finish(small.relay("--until-caught-up"))
    send(small.topic, (b"zen", envelope(uuid.uuid4(), 1, "this:s", stamps())))
    url = small.read_model_url()
    output = finish(small.consumer(url, group(), "--until-idle", "3"))
    assert "The Zen of Python" not in output and "Beautiful is better than ugly" not in output, output
    assert list(parked_reasons(url)) == [b"zen"]
    assert rows(url) == small.rebuilt_rows()


def test_consumers_started_before_the_relay_leave_the_topic_to_the_relay(small: Pipeline) -> None:
    shared = small.read_model_url()
    name = group()
    members = [small.consumer(shared, name, "--until-idle", "6") for _ in range(2)]
    wait_until(lambda: topic_exists(small.topic) or all("waiting for topic" in output_of(m) for m in members),
               timeout=60, what="the consumers to wait for the topic")
    time.sleep(1)
    empty = fresh_postgres_url()
    try:
        # A relay with nothing to publish yet creates the topic; the members then split its partitions.
        created = run_cli("relay", "--db", empty, "--bootstrap", kafka(), "--topic", small.topic, "--partitions", "4", "--until-caught-up")
        assert created.returncode == 0, created.stderr
    finally:
        drop_schema(empty)
    assert partitions_of(small.topic) == 4
    wait_until(lambda: all(holds_two_partitions(m) for m in members), timeout=60, what="both members to hold two partitions")
    finish(small.relay("--until-caught-up"))
    outputs = [finish(m, timeout=120) for m in members]
    applied = [int(o.rsplit("applied ", 1)[1].split()[0].replace(",", "")) for o in outputs]
    assert all(n > 0 for n in applied), outputs
    assert rows(shared) == small.rebuilt_rows()


def test_the_relay_refuses_a_topic_with_another_partition_count() -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    topic = f"ledger.test.{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka(), client_id="test-admin")
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    url = fresh_postgres_url()
    try:
        done = run_cli("relay", "--db", url, "--bootstrap", kafka(), "--topic", topic, "--partitions", "4", "--until-caught-up")
    finally:
        drop_schema(url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and topic in errors[0] and "2 partitions" in errors[0] and "4" in errors[0], done.stderr
    assert partitions_of(topic) == 2


class Writer(threading.Thread):
    """Registers and updates organisations, a few events a second, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.halt, self.written, self.error = url, threading.Event(), 0, None

    def run(self) -> None:
        app = bootstrap.build_ledger(self.url)
        today = date.today().isoformat()
        try:
            while not self.halt.is_set():
                ref = f"ORG-DE-{uuid.uuid4().hex[:6].upper()}"
                app.execute([c.RegisterOrg(org=ref, name="Outage cluster", country="DE", ecosystems=("digital",),
                                           year_established=2020, occurred_at=today),
                             c.UpdateOrg(org=ref, name="Outage cluster renamed", occurred_at=today)], actor="test-writer")
                self.written += 2
                self.halt.wait(0.2)
        except Exception as error:  # reported by the test
            self.error = error
        finally:
            app.close()


def test_a_broker_outage_longer_than_the_flush_timeout_heals(small: Pipeline) -> None:
    relay = small.relay("--page-size", "50")
    url = small.read_model_url()
    consumer = small.consumer(url, group())
    wait_until(lambda: relay_position(small) == small.total, timeout=60, what="the relay to publish the demo")
    writer = Writer(small.store_url)
    writer.start()
    services = str(ROOT / "scripts" / "services")
    try:
        time.sleep(2)
        subprocess.run([services, "stop", "kafka"], check=True, capture_output=True, timeout=120)
        time.sleep(65)
        subprocess.run([services, "start", "kafka"], check=True, capture_output=True, timeout=180)
        time.sleep(3)
    finally:
        writer.halt.set()
        writer.join(timeout=30)
    assert writer.error is None and writer.written > 100
    app = bootstrap.build_ledger(small.store_url)
    total = app.recorder.max_notification_id()
    app.close()
    wait_until(lambda: relay_position(small) == total, timeout=120, what="the relay to catch up after the outage")
    wait_until(lambda: rows(url) == small.rebuilt_rows(), timeout=120, what="the read model to equal the rebuild")
    assert relay.poll() is None and consumer.poll() is None, output_of(relay) + output_of(consumer)
    stop(relay)
    assert "parked 0" in stop(consumer)
