"""Publishes the ledger's notification log to Kafka, recording its position only after the broker acknowledged."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from consumers.envelope import wrap
from projections.runner import notifications
from projections.store import ProjectionStore

log = logging.getLogger("ledger.relay")
RELAY_VERSION = 1


class StreamError(Exception):
    """A problem with the Kafka stream that its operator has to resolve."""


class BrokerUnavailable(StreamError):
    """The broker stayed out of reach for a relay that was asked to catch up and stop."""


class TopicMismatch(StreamError):
    """The topic exists with another partition count than the relay was given."""


@dataclass
class RelaySettings:
    """Where and how the relay publishes."""

    bootstrap: str
    topic: str = "ledger.events"
    partitions: int = 4
    page_size: int = 5000
    replication_factor: int = 1


def topic_partitions(bootstrap: str, topic: str, timeout_ms: int = 30_000) -> int | None:
    """How many partitions `topic` has, or None if it does not exist; asking never creates it. A broker that does not
    answer within `timeout_ms` raises KafkaTimeoutError."""
    from kafka import KafkaAdminClient
    from kafka.errors import UnknownTopicOrPartitionError

    # The admin client's metadata requests never ask for auto-creation (a consumer's or producer's do, in kafka-python 3.0).
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ledger-topic-check", bootstrap_timeout_ms=timeout_ms)
    try:
        found = admin.describe_topics([topic])
    except UnknownTopicOrPartitionError:
        return None
    finally:
        admin.close()
    if not found or found[0]["error_code"] == UnknownTopicOrPartitionError.errno:
        return None
    return len(found[0]["partitions"])


def ensure_topic(settings: RelaySettings, timeout_ms: int = 30_000) -> None:
    """Create the topic with its partitions and replication factor; refuse one that exists with other partitions."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if topic_partitions(settings.bootstrap, settings.topic, timeout_ms) is None:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="ledger-relay-admin", bootstrap_timeout_ms=timeout_ms)
        try:
            admin.create_topics([NewTopic(settings.topic, num_partitions=settings.partitions, replication_factor=settings.replication_factor)])
            admin.wait_for_topics([settings.topic], timeout_ms=30_000)
            log.info("created topic %s with %d partitions (replication factor %d)", settings.topic, settings.partitions, settings.replication_factor)
        except TopicAlreadyExistsError:  # another relay created it first; its partitions are checked below
            pass
        finally:
            admin.close()
    existing = topic_partitions(settings.bootstrap, settings.topic, timeout_ms)
    if existing != settings.partitions:
        raise TopicMismatch(f"topic {settings.topic!r} has {existing} partitions, not the {settings.partitions} asked for "
                            f"(--partitions {existing} publishes to it as it is)")


def producer(settings: RelaySettings) -> Any:
    """An idempotent producer that waits for every in-sync replica."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.bootstrap,
        client_id="ledger-relay",
        acks="all",
        enable_idempotence=True,
        # Pages end with a flush, which sends at once: lingering only fills the batches of a long page.
        linger_ms=100,
        batch_size=256 * 1024,
        key_serializer=lambda key: key.encode(),
        value_serializer=lambda value: value.encode(),
    )


def relay(
    recorder: ApplicationRecorder,
    store: ProjectionStore,
    settings: RelaySettings,
    *,
    stop: threading.Event,
    until_caught_up: bool = False,
    on_page: Callable[[int, float], None] = lambda n, rate: None,
    idle_wait: float = 0.1,
    retry_wait: float = 2.0,
    give_up_after: float = 60.0,
) -> int:
    """Publish every notification after the relay's position; return how many were published.

    When the broker is unreachable the relay waits and publishes again from its recorded position,
    so an event may reach the topic twice (consumers drop it by aggregate id and version), never zero times.
    """
    from kafka.errors import KafkaError

    name = f"relay:{settings.topic}"
    answered_at = time.monotonic()  # the start, or the broker's last answer
    published = 0
    kafka: Any = None
    while not stop.is_set():
        position = store.position(name, RELAY_VERSION)
        try:
            if kafka is None:
                # Run until caught up, the relay gives up after give_up_after seconds without a broker: no wait may outlast it.
                left = give_up_after - (time.monotonic() - answered_at)
                ensure_topic(settings, int(1000 * max(1.0, min(30.0, left))) if until_caught_up else 30_000)
                kafka = producer(settings)
                log.info("relay publishes to %s after position %d", settings.topic, position)
            moved = False
            for page in notifications(recorder, position, settings.page_size):
                started = time.perf_counter()
                futures = [kafka.send(settings.topic, key=str(n.originator_id), value=wrap(n).model_dump_json()) for n in page]
                kafka.flush(timeout=60)
                for future in futures:
                    future.get(timeout=60)  # raises unless the broker acknowledged
                store.write(name, RELAY_VERSION, {}, page[-1].id)
                published += len(page)
                moved = True
                on_page(len(page), len(page) / max(time.perf_counter() - started, 1e-6))
                if stop.is_set():
                    break
            answered_at = time.monotonic()
            if until_caught_up and not moved:
                break
            if not moved:
                stop.wait(idle_wait)
        except KafkaError as error:
            if until_caught_up and time.monotonic() - answered_at + retry_wait >= give_up_after:
                _close(kafka)
                raise BrokerUnavailable(f"bootstrap: {settings.bootstrap!r}: no broker answered in {time.monotonic() - answered_at:.0f} s; "
                                        f"gave up with {published:,} events published") from error
            log.warning("broker unavailable (%s); publishing again from position %d in %.0f s", type(error).__name__, position, retry_wait)
            _close(kafka)
            kafka = None
            stop.wait(retry_wait)
    _close(kafka)
    log.info("relay stopped at position %d after publishing %d events", store.position(name, RELAY_VERSION), published)
    return published


def _close(kafka: Any) -> None:
    if kafka is not None:
        try:
            kafka.close(timeout=10)
        except Exception as error:  # closing a producer whose broker is gone must not hide the cause
            log.warning("closing the producer failed: %s", error)
