"""The ledger over a real Kafka broker: relay and consumers build the same read model as a rebuild, through crashes."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.sql import SQL, Identifier

import bootstrap
from cli.main import ledger
from presentation.text import count
from projections import runner
from tests.conftest import drop_schema, fresh_postgres_url

ROOT = Path(__file__).resolve().parents[2]
LOGS: dict[int, Path] = {}


def kafka() -> str:
    server = os.environ.get("LEDGER_TEST_KAFKA")
    if not server:
        pytest.fail("LEDGER_TEST_KAFKA is not set: run the tests with scripts/test, which starts Kafka", pytrace=False)
    return server


class Pipeline:
    """One event store, one topic, and read models built by consumers, each in its own schema."""

    def __init__(self, scale: float, partitions: int = 4) -> None:
        self.store_url = fresh_postgres_url()
        self.topic = f"ledger.test.{uuid.uuid4().hex[:10]}"
        self.partitions = partitions
        self.schemas = [self.store_url]
        result = CliRunner().invoke(ledger, ["demo", "--scale", str(scale), "--seed", "17", "--db", self.store_url])
        assert result.exit_code == 0, result.output
        app = bootstrap.build_ledger(self.store_url)
        self.total = app.recorder.max_notification_id()
        app.close()

    def read_model_url(self) -> str:
        url = fresh_postgres_url()
        self.schemas.append(url)
        return url

    def start(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "LEDGER_LOG_LEVEL": "INFO"}
        log = Path(tempfile.mkstemp(prefix="ledger-process-", suffix=".log")[1])
        with log.open("w") as out:
            process = subprocess.Popen([sys.executable, "-m", "cli.main", *args, "--bootstrap", kafka(), "--topic", self.topic],
                                       cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        LOGS[process.pid] = log
        return process

    def relay(self, *extra: str) -> subprocess.Popen[str]:
        return self.start("relay", "--db", self.store_url, "--partitions", str(self.partitions), *extra)

    def consumer(self, url: str, group: str, *extra: str) -> subprocess.Popen[str]:
        return self.start("consume", "platform", "--db", url, "--group", group, *extra)

    def rebuilt_rows(self) -> list[tuple[str, str]]:
        app = bootstrap.build_ledger(self.store_url)
        store = bootstrap.build_projection_store(self.store_url)
        runner.rebuild(app.recorder, app.mapper, store, projection="rebuilt")
        rows = store.raw_rows("rebuilt")
        store.close()
        app.close()
        return rows

    def close(self) -> None:
        for url in self.schemas:
            drop_schema(url)


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    made = Pipeline(scale=0.05)
    yield made
    made.close()


def rows(url: str) -> list[tuple[str, str]]:
    store = bootstrap.build_projection_store(url)
    try:
        return store.raw_rows("platform")
    finally:
        store.close()


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn:
        return conn.execute(SQL(sql).format(schema=Identifier(schema))).fetchall()  # type: ignore[arg-type]


def relay_position(pipeline: Pipeline) -> int:
    try:
        found = query(pipeline.store_url, "SELECT position FROM {schema}.projection_tracking WHERE projection LIKE 'relay:%'")
    except psycopg.errors.UndefinedTable:
        return 0
    return int(found[0][0]) if found else 0


def applied_offsets(url: str) -> int:
    try:
        return int(query(url, "SELECT COALESCE(SUM(next_offset), 0) FROM {schema}.consumer_offsets")[0][0])
    except psycopg.errors.UndefinedTable:
        return 0


def wait_until(condition, timeout: float = 90, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def output_of(process: subprocess.Popen[str]) -> str:
    return LOGS[process.pid].read_text()


def finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    process.wait(timeout=timeout)
    assert process.returncode == 0, output_of(process)
    return output_of(process)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    return finish(process, timeout=60)


def report(url: str) -> dict[str, object]:
    result = CliRunner().invoke(ledger, ["report", "impact", "--format", "json", "--db", url])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["figures"]


def test_the_kafka_read_model_equals_a_rebuild_from_the_event_store(pipeline: Pipeline) -> None:
    published = finish(pipeline.relay("--until-caught-up"))
    assert f"published {count(pipeline.total, 'event')}" in published
    url = pipeline.read_model_url()
    consumed = finish(pipeline.consumer(url, "g-one", "--until-idle", "4"))
    assert f"applied {count(pipeline.total, 'event')}" in consumed and "parked 0" in consumed
    assert rows(url) == pipeline.rebuilt_rows()
    assert report(url) == report(pipeline.store_url)


def test_killed_relay_and_consumer_and_a_restarted_broker_still_give_the_rebuild(pipeline: Pipeline) -> None:
    # The relay dies mid-stream and starts again: it resumes from its recorded position.
    relay = pipeline.relay("--page-size", "5")
    wait_until(lambda: 0 < relay_position(pipeline), what="the relay to publish a first page")
    relay.send_signal(signal.SIGKILL)
    relay.wait(timeout=30)
    assert relay_position(pipeline) < pipeline.total
    relay = pipeline.relay("--page-size", "5")
    url = pipeline.read_model_url()
    consumer = pipeline.consumer(url, "g-crash", "--max-records", "40")
    wait_until(lambda: applied_offsets(url) > 0, what="the consumer to apply a first batch")
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(timeout=30)
    assert applied_offsets(url) < pipeline.total
    consumer = pipeline.consumer(url, "g-crash", "--max-records", "40")
    # The broker stops and starts while both run, the relay still publishing.
    assert relay_position(pipeline) < pipeline.total
    subprocess.run([str(ROOT / "scripts" / "services"), "stop", "kafka"], check=True, capture_output=True, timeout=120)
    time.sleep(2)
    subprocess.run([str(ROOT / "scripts" / "services"), "start", "kafka"], check=True, capture_output=True, timeout=180)
    wait_until(lambda: relay_position(pipeline) == pipeline.total, timeout=180, what="the relay to catch up")
    wait_until(lambda: rows(url) == pipeline.rebuilt_rows(), timeout=180, what="the read model to equal the rebuild")
    stop(relay)
    output = stop(consumer)
    assert "parked 0" in output
    assert report(url) == report(pipeline.store_url)


def holds_two_partitions(process: subprocess.Popen[str]) -> bool:
    """Whether the member's latest assignment is two partitions."""
    assigned = [line.split("partitions assigned: ", 1)[1] for line in output_of(process).splitlines() if "partitions assigned: " in line]
    return bool(assigned) and len(ast.literal_eval(assigned[-1])) == 2


def test_two_consumers_in_one_group_give_the_same_result_as_one(pipeline: Pipeline) -> None:
    from consumers.relay import RelaySettings, ensure_topic

    ensure_topic(RelaySettings(kafka(), pipeline.topic, partitions=4))
    single, shared = pipeline.read_model_url(), pipeline.read_model_url()
    members = [pipeline.consumer(shared, "g-shared", "--until-idle", "30") for _ in range(2)]
    wait_until(lambda: all(holds_two_partitions(m) for m in members), timeout=120, what="both members to hold two partitions")
    finish(pipeline.relay("--until-caught-up"))
    outputs = [finish(m, timeout=180) for m in members]
    finish(pipeline.consumer(single, "g-single", "--until-idle", "4"))
    applied = [int(o.rsplit("applied ", 1)[1].split()[0].replace(",", "")) for o in outputs]
    assert sum(applied) >= pipeline.total and all(n > 0 for n in applied), outputs
    assert rows(shared) == rows(single) == pipeline.rebuilt_rows()


def test_malformed_messages_are_parked_not_skipped_and_not_fatal(pipeline: Pipeline) -> None:
    from kafka import KafkaProducer

    finish(pipeline.relay("--until-caught-up"))
    producer = KafkaProducer(bootstrap_servers=kafka(), acks="all")
    producer.send(pipeline.topic, key=b"junk", value=b"{not json")
    good = json.loads(query(pipeline.store_url, "SELECT convert_from(state, 'UTF8') FROM {schema}.ledger_events LIMIT 1")[0][0])
    unknown = {"position": 999999, "aggregate_id": str(uuid.uuid4()), "version": 1, "topic": "domain.model:Unicorn.Sighted",
               "type": "Unicorn.Sighted", "occurred_at": good["occurred_at"], "recorded_at": good["timestamp"], "actor": "x", "payload": {}}
    producer.send(pipeline.topic, key=b"unicorn", value=json.dumps(unknown).encode())
    producer.flush()
    producer.close()
    url = pipeline.read_model_url()
    output = finish(pipeline.consumer(url, "g-dead", "--until-idle", "4"))
    assert "parked 2 messages" in output
    parked = query(url, "SELECT message_key, error FROM {schema}.dead_letters ORDER BY message_key")
    assert [bytes(k) for k, _ in parked] == [b"junk", b"unicorn"]
    assert "Unicorn" in parked[1][1] or "domain.model" in parked[1][1]
    assert rows(url) == pipeline.rebuilt_rows()
    offsets = query(url, "SELECT partition, next_offset FROM {schema}.consumer_offsets ORDER BY partition")
    again = finish(pipeline.consumer(url, "g-dead", "--until-idle", "3"))
    assert "partitions assigned" in again
    assert "applied 0 events" in again and "parked 0" in again
    assert query(url, "SELECT count(*) FROM {schema}.dead_letters") == [(2,)]
    assert query(url, "SELECT partition, next_offset FROM {schema}.consumer_offsets ORDER BY partition") == offsets
