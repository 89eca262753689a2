"""A consumer-group member that folds Kafka events into the PostgreSQL read model, with offsets in the same transaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg.sql import SQL, Identifier

from consumers.envelope import ENVELOPE, Envelope
from projections import platform
from projections.store import PostgresProjectionStore

log = logging.getLogger("ledger.consumer")


@dataclass
class ConsumerSettings:
    """Which topic, group and read model a consumer serves."""

    bootstrap: str
    group: str = "ledger-readmodel"
    topic: str = "ledger.events"
    projection: str = "platform"
    max_records: int = 500


@dataclass
class BatchOutcome:
    """What one poll batch did to the read model."""

    applied: int = 0
    duplicates: int = 0
    parked: int = 0
    offsets: dict[int, int] = field(default_factory=dict)


class ReadModel:
    """The read model's tables: projection rows, applied versions, partition offsets and parked messages."""

    def __init__(self, store: PostgresProjectionStore, schema: str, settings: ConsumerSettings) -> None:
        self.store = store
        self.settings = settings
        self.conn = store.connection
        self.offsets_table = SQL("{}.{}").format(Identifier(schema), Identifier("consumer_offsets"))
        self.versions_table = SQL("{}.{}").format(Identifier(schema), Identifier("consumer_versions"))
        self.dead_table = SQL("{}.{}").format(Identifier(schema), Identifier("dead_letters"))
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cluster-ledger-ddl:{schema}",))
            self.conn.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (group_id text, topic text, partition integer, next_offset bigint NOT NULL, "
                "PRIMARY KEY (group_id, topic, partition))").format(self.offsets_table))
            self.conn.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (projection text, aggregate_id text, version bigint NOT NULL, "
                "PRIMARY KEY (projection, aggregate_id))").format(self.versions_table))
            self.conn.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, group_id text NOT NULL, topic text NOT NULL, "
                "partition integer NOT NULL, message_offset bigint NOT NULL, message_key bytea, message_value bytea, "
                "error text NOT NULL, parked_at timestamptz NOT NULL DEFAULT now(), UNIQUE (group_id, topic, partition, message_offset))"
            ).format(self.dead_table))

    def stored_offsets(self) -> dict[int, int]:
        """The next offset to read, per partition, for this group and topic."""
        rows = self.conn.execute(
            SQL("SELECT partition, next_offset FROM {} WHERE group_id = %s AND topic = %s").format(self.offsets_table),
            (self.settings.group, self.settings.topic),
        )
        return {partition: offset for partition, offset in rows}

    def _versions(self, keys: list[str]) -> dict[str, int]:
        rows = self.conn.execute(
            SQL("SELECT aggregate_id, version FROM {} WHERE projection = %s AND aggregate_id = ANY(%s)").format(self.versions_table),
            (self.settings.projection, keys),
        )
        return {key: version for key, version in rows}

    def apply(self, records: list[Any]) -> BatchOutcome:
        """Fold one batch of records (in partition order) and store rows, versions, offsets and parked messages at once.

        The group's offset rows are locked first: records below a stored offset were applied by another
        member (after a rebalance, or by a member that was dropped from the group) and are skipped.
        """
        outcome = BatchOutcome()
        group, topic, projection = self.settings.group, self.settings.topic, self.settings.projection
        with self.conn.transaction(), self.conn.cursor() as cursor:
            stored = dict(cursor.execute(
                SQL("SELECT partition, next_offset FROM {} WHERE group_id = %s AND topic = %s AND partition = ANY(%s) FOR UPDATE").format(self.offsets_table),
                (group, topic, sorted({r.partition for r in records})),
            ).fetchall())
            fresh = [r for r in records if r.offset >= stored.get(r.partition, 0)]
            outcome.duplicates = len(records) - len(fresh)
            decoded = [self._decode(r) for r in fresh]
            keys = sorted({e.aggregate_id.hex for _, e, _, _ in decoded if e is not None})
            rows = self.store.rows(projection, keys)
            versions = self._versions(keys)
            changed: dict[str, platform.Row] = {}
            parked: list[tuple[Any, str]] = []
            top = 0
            for record, envelope, event, problem in decoded:
                if envelope is None:
                    parked.append((record, problem or "undecodable"))
                    continue
                key = envelope.aggregate_id.hex
                expected = versions.get(key, 0) + 1
                if envelope.version < expected:
                    outcome.duplicates += 1
                    continue
                if envelope.version > expected:
                    parked.append((record, f"gap: version {envelope.version} of {key} arrived, version {expected} was expected"))
                    continue
                try:
                    new = platform.fold(rows.get(key), event, envelope.position)
                except (ValueError, AssertionError) as error:
                    parked.append((record, f"{type(error).__name__}: {error or 'event arrived before its aggregate was created'}"))
                    continue
                versions[key] = envelope.version
                top = max(top, envelope.position)
                if new is not None:
                    rows[key] = changed[key] = new
                outcome.applied += 1
            for record in records:
                outcome.offsets[record.partition] = max(outcome.offsets.get(record.partition, 0), record.offset + 1)
            outcome.parked = len(parked)
            self.store.upsert_rows(cursor, projection, changed)
            cursor.executemany(
                SQL("INSERT INTO {} (projection, aggregate_id, version) VALUES (%s, %s, %s) "
                    "ON CONFLICT (projection, aggregate_id) DO UPDATE SET version = GREATEST(excluded.version, {}.version)"
                    ).format(self.versions_table, Identifier("consumer_versions")),
                [(projection, key, versions[key]) for key in keys if key in versions],
            )
            cursor.executemany(
                SQL("INSERT INTO {} AS o (group_id, topic, partition, next_offset) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = GREATEST(excluded.next_offset, o.next_offset)"
                    ).format(self.offsets_table),
                [(group, topic, p, o) for p, o in outcome.offsets.items()],
            )
            cursor.executemany(
                SQL("INSERT INTO {} (group_id, topic, partition, message_offset, message_key, message_value, error) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING").format(self.dead_table),
                [(group, r.topic, r.partition, r.offset, r.key, r.value, why) for r, why in parked],
            )
            if top:
                self.store.upsert_tracking(cursor, projection, platform.FOLD_VERSION, top, keep_highest=True)
        for record, why in parked:
            log.warning("parked message %s[%d]@%d: %s", record.topic, record.partition, record.offset, why)
        return outcome

    @staticmethod
    def _decode(record: Any) -> tuple[Any, Envelope | None, Any, str | None]:
        try:
            envelope = ENVELOPE.validate_json(record.value)
            return record, envelope, envelope.event(), None
        except Exception as error:  # anything a producer may have put on the topic is parked, never fatal
            return record, None, None, f"{type(error).__name__}: {' '.join(str(error).split())[:500]}"


def consume(
    read_model: ReadModel,
    settings: ConsumerSettings,
    *,
    stop: threading.Event,
    idle_exit: float | None = None,
    on_batch: Callable[[BatchOutcome, float], None] = lambda outcome, rate: None,
    retry_wait: float = 2.0,
) -> int:
    """Poll, fold and store until stopped (or idle for `idle_exit` seconds); return how many events were applied.

    If the broker goes away the consumer reconnects and goes on from the offsets stored with the read model.
    """
    from kafka.errors import KafkaError

    applied = 0
    # Idle time counts from the latest assignment, so joining the group is never mistaken for silence.
    clock = {"idle_since": time.monotonic(), "assigned": False}

    def assigned() -> None:
        clock["idle_since"], clock["assigned"] = time.monotonic(), True

    while not stop.is_set():
        consumer: Any = None
        try:
            consumer = _subscribe(read_model, settings, on_assigned=assigned)
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=500, max_records=settings.max_records)
                records = [r for tp in sorted(batch, key=lambda tp: tp.partition) for r in batch[tp]]
                if not records:
                    if idle_exit is not None and clock["assigned"] and time.monotonic() - clock["idle_since"] > idle_exit:
                        return applied
                    continue
                started = time.perf_counter()
                outcome = read_model.apply(records)
                applied += outcome.applied
                clock["idle_since"] = time.monotonic()
                on_batch(outcome, len(records) / max(time.perf_counter() - started, 1e-6))
        except KafkaError as error:
            log.warning("broker unavailable (%s); reconnecting in %.0f s from the stored offsets", type(error).__name__, retry_wait)
            stop.wait(retry_wait)
        finally:
            if consumer is not None:
                try:
                    consumer.close(autocommit=False)
                except Exception as error:  # a consumer whose broker is gone may fail to close; the offsets are safe
                    log.warning("closing the consumer failed: %s", error)
    return applied


def _subscribe(read_model: ReadModel, settings: ConsumerSettings, on_assigned: Callable[[], None]) -> Any:
    """A group member subscribed to the topic that seeks to the stored offsets on every assignment."""
    from kafka import KafkaConsumer
    from kafka.consumer.subscription_state import ConsumerRebalanceListener

    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=settings.group,
        client_id=f"ledger-consumer-{settings.group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        allow_auto_create_topics=False,  # the relay creates the topic with its partitions
        max_poll_records=settings.max_records,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )

    class SeekToStored(ConsumerRebalanceListener):
        """On every assignment, continue from the offsets stored with the read model."""

        def on_partitions_revoked(self, revoked: Any) -> None:
            log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            stored = read_model.stored_offsets()
            for tp in assigned:
                if tp.partition in stored:
                    consumer.seek(tp, stored[tp.partition])
                else:
                    consumer.seek_to_beginning(tp)
            log.info("partitions assigned: %s", {tp.partition: stored.get(tp.partition, 0) for tp in assigned})
            if assigned:
                on_assigned()

    consumer.subscribe([settings.topic], listener=SeekToStored())
    return consumer
