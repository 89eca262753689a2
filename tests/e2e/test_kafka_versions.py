"""Old events travel through Kafka as stored, with their class version, and the consumer upcasts them as the event store does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import bootstrap
from domain.base import ref_id
from domain.catalogue import version_of
from domain.model import ClusterOrganisation
from projections import runner
from tests.conftest import drop_schema, fresh_postgres_url
from tests.integration.test_golden_ledgers import GOLDEN, replay_into_postgres

ROOT = Path(__file__).resolve().parents[2]


def kafka() -> str:
    server = os.environ.get("LEDGER_TEST_KAFKA")
    if not server:
        pytest.fail("LEDGER_TEST_KAFKA is not set: run the tests with scripts/test, which starts Kafka", pytrace=False)
    return server


def ledger(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def platform_rows(url: str, projection: str = "platform") -> list[tuple[str, str]]:
    store = bootstrap.build_projection_store(url)
    try:
        return store.raw_rows(projection)
    finally:
        store.close()


def test_version_1_and_2_events_reach_the_read_model_upcast_through_kafka() -> None:
    store_url = replay_into_postgres(GOLDEN / "v1" / "every-event.db")
    read_model = fresh_postgres_url()
    topic = f"ledger.test.versions.{uuid.uuid4().hex[:10]}"
    try:
        # A version 2 event on top of the version 1 history: both kinds travel on the same topic. The old ledger has no
        # writers yet: the test writer's key is recorded as its root first.
        ledger("db", "init", "--root-key", os.environ["LEDGER_SIGNING_KEY"].removesuffix(".key") + ".pub", "--db", store_url)
        ledger("org", "update", "--org", "ORG-DE-0042", "--region", "DE21", "--at", "2025-01-10", "--db", store_url)
        stored = {(t["topic"], t["version"]) for t in json.loads(ledger("db", "check", "--format", "json", "--db", store_url))}
        assert {("domain.model:ClusterOrganisation.Updated", 1), ("domain.model:ClusterOrganisation.Updated", version_of(ClusterOrganisation.Updated))} <= stored

        ledger("relay", "--db", store_url, "--bootstrap", kafka(), "--topic", topic, "--partitions", "2", "--until-caught-up")
        envelopes = _read_topic(topic)
        assert {(e["type"], e["type_version"]) for e in envelopes if e["type"] == "ClusterOrganisation.Updated"} == {
            ("ClusterOrganisation.Updated", 1), ("ClusterOrganisation.Updated", version_of(ClusterOrganisation.Updated))}
        assert all("class_version" not in e["payload"] for e in envelopes)

        consumed = ledger("consume", "platform", "--db", read_model, "--bootstrap", kafka(), "--topic", topic, "--until-idle", "4")
        assert "parked 0" in consumed, consumed

        app = bootstrap.build_ledger(store_url)
        store = bootstrap.build_projection_store(store_url)
        try:
            runner.rebuild(app.recorder, app.mapper, store, projection="rebuilt")
            rebuilt = store.raw_rows("rebuilt")
        finally:
            store.close()
            app.close()
        assert platform_rows(read_model) == rebuilt
        profile = dict(platform_rows(read_model))[ref_id("ORG-DE-0042").hex]
        versions_seen = [v.get("nuts_version") for v in json.loads(profile)["versions"]]
        assert versions_seen[0] == "2024"  # supplied by the upcaster: the stored version 1 event has no such field
    finally:
        drop_schema(store_url)
        drop_schema(read_model)


def _read_topic(topic: str) -> list[dict[str, object]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka(), auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=3000, group_id=None)
    try:
        return [json.loads(record.value) for record in consumer]
    finally:
        consumer.close()
