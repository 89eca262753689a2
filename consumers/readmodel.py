"""A consumer-group member that folds Kafka events into the PostgreSQL read model, with offsets in the same transaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier

from consumers.envelope import ENVELOPE, Envelope
from consumers.relay import topic_partitions
from domain.errors import UnreplayableEvent
from projections import platform
from projections.reports import StaleReadModel
from projections.store import PostgresProjectionStore

log = logging.getLogger("ledger.consumer")
BIGINT = 2**63 - 1
"""The largest position or version the read model's bigint columns hold."""
TRANSIENT_DATABASE = (psycopg.OperationalError, psycopg.InterfaceError)
"""Database failures that pass: the batch is rolled back and tried again from the stored offsets."""
REFUSED_BY_DATABASE = (psycopg.DataError, psycopg.IntegrityError)
"""Database refusals caused by one message's values: that message is found and parked."""


@dataclass
class ConsumerSettings:
    """Which topic, group and read model a consumer serves."""

    bootstrap: str
    group: str = "ledger-readmodel"
    topic: str = "ledger.events"
    projection: str = "platform"
    max_records: int = 2000


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
        built_by = store.tracked_version(settings.projection)
        if built_by is not None and built_by != platform.FOLD_VERSION:
            # Rows of two folds are never mixed: a new fold needs a read model of its own, consumed from the start.
            raise StaleReadModel(
                f"db: this read model was built with fold version {built_by}, and this code folds version {platform.FOLD_VERSION}; "
                "consume into a new schema (`ledger consume platform --db <new schema URL>`) and point reports there"
            )

    def stored_offsets(self) -> dict[int, int]:
        """The next offset to read, per partition, for this group and topic."""
        rows = self.conn.execute(
            SQL("SELECT partition, next_offset FROM {} WHERE group_id = %s AND topic = %s").format(self.offsets_table),
            (self.settings.group, self.settings.topic),
        )
        return {partition: offset for partition, offset in rows}

    def dead_letters(self) -> list[tuple[str, str, int, int, str, Any]]:
        """Every parked message, oldest first: group, topic, partition, offset, reason and when it was parked."""
        return self.conn.execute(SQL(
            "SELECT group_id, topic, partition, message_offset, error, parked_at FROM {} ORDER BY parked_at, id").format(self.dead_table)
        ).fetchall()

    def close(self) -> None:
        """Close the read model's connection."""
        self.store.close()

    def _versions(self, keys: list[str]) -> dict[str, int]:
        # One primary-key probe per key, so the cost follows the batch, not the read model (`= ANY(...)` may scan it all).
        rows = self.conn.execute(
            SQL("SELECT v.aggregate_id, v.version FROM unnest(%s::text[]) AS k(id) JOIN {} AS v ON v.projection = %s AND v.aggregate_id = k.id"
                ).format(self.versions_table),
            (keys, self.settings.projection),
        )
        return {key: version for key, version in rows}

    def apply(self, records: list[Any], refused: str | None = None) -> BatchOutcome:
        """Fold one batch of records (in partition order) and store rows, versions, offsets and parked messages at once.

        The group's offset rows are locked first: records below a stored offset were applied by another
        member (after a rebalance, or by a member that was dropped from the group) and are skipped.
        With `refused`, the records are parked for that reason instead of applied.
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
            decoded = [self._decode(r) if refused is None else (r, None, None, refused) for r in fresh]
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
                except UnreplayableEvent as error:
                    parked.append((record, f"impossible: {error}"))
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
            written = [key for key in keys if key in versions]
            cursor.execute(
                SQL("INSERT INTO {} AS v (projection, aggregate_id, version) SELECT %s, id, version FROM unnest(%s::text[], %s::bigint[]) AS u(id, version) "
                    "ON CONFLICT (projection, aggregate_id) DO UPDATE SET version = GREATEST(excluded.version, v.version)"
                    ).format(self.versions_table),
                (projection, written, [versions[key] for key in written]),
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
                [(group, r.topic, r.partition, r.offset, r.key, r.value, why.replace("\x00", "\\x00")) for r, why in parked],
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
            for name, value in (("position", envelope.position), ("version", envelope.version)):
                if not 1 <= value <= BIGINT:
                    return record, None, None, f"out of range: {name} {value} is not within 1..{BIGINT}"
            return record, envelope, envelope.event(), None
        except Exception as error:  # anything a producer may have put on the topic is parked, never fatal
            return record, None, None, f"undecodable: {type(error).__name__}: {' '.join(str(error).split())[:500]}"

    def apply_or_park(self, records: list[Any]) -> BatchOutcome:
        """Apply a batch; if the database refuses a value in it, apply the records one by one and park the refused."""
        try:
            return self.apply(records)
        except REFUSED_BY_DATABASE as error:
            log.warning("the database refused a value in a batch of %d (%s); applying its messages one by one", len(records), error)
        total = BatchOutcome()
        for record in records:
            try:
                outcome = self.apply([record])
            except REFUSED_BY_DATABASE as error:
                outcome = self.apply([record], refused=f"refused by the database: {type(error).__name__}: {' '.join(str(error).split())[:500]}")
            total.applied += outcome.applied
            total.duplicates += outcome.duplicates
            total.parked += outcome.parked
            for partition, offset in outcome.offsets.items():
                total.offsets[partition] = max(total.offsets.get(partition, 0), offset)
        return total


def consume(
    open_read_model: Callable[[], ReadModel],
    settings: ConsumerSettings,
    *,
    stop: threading.Event,
    idle_exit: float | None = None,
    on_batch: Callable[[BatchOutcome, float], None] = lambda outcome, rate: None,
    retry_wait: float = 1.0,
    max_retry_wait: float = 30.0,
) -> int:
    """Poll, fold and store until stopped (or idle for `idle_exit` seconds); return how many events were applied.

    A message that can never be applied is parked and consumption goes on. When the broker or the database
    goes away the consumer waits (longer each time, up to `max_retry_wait`), reconnects and goes on from the
    offsets stored with the read model; it never gives up on its own.
    """
    from kafka.errors import KafkaError

    applied = 0
    failures = 0
    # Idle time counts from the latest assignment, so joining the group is never mistaken for silence.
    clock = {"idle_since": time.monotonic(), "assigned": False}

    def assigned() -> None:
        clock["idle_since"], clock["assigned"] = time.monotonic(), True

    while not stop.is_set():
        consumer: Any = None
        read_model: ReadModel | None = None
        try:
            read_model = open_read_model()
            if not wait_for_topic(settings, stop):
                break
            consumer = _subscribe(read_model, settings, on_assigned=assigned)
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=500, max_records=settings.max_records)
                records = [r for tp in sorted(batch, key=lambda tp: tp.partition) for r in batch[tp]]
                if not records:
                    if idle_exit is not None and clock["assigned"] and time.monotonic() - clock["idle_since"] > idle_exit:
                        return applied
                    continue
                started = time.perf_counter()
                outcome = read_model.apply_or_park(records)
                failures = 0
                applied += outcome.applied
                clock["idle_since"] = time.monotonic()
                on_batch(outcome, len(records) / max(time.perf_counter() - started, 1e-6))
        except (KafkaError, *TRANSIENT_DATABASE) as error:
            failures += 1
            wait = min(retry_wait * 2 ** (failures - 1), max_retry_wait)
            where = "broker" if isinstance(error, KafkaError) else "database"
            log.warning("%s unavailable (%s: %s); attempt %d, going on from the stored offsets in %.0f s",
                        where, type(error).__name__, " ".join(str(error).split())[:200], failures, wait)
            stop.wait(wait)
        finally:
            if consumer is not None:
                try:
                    consumer.close(autocommit=False)
                except Exception as error:  # a consumer whose broker is gone may fail to close; the offsets are safe
                    log.warning("closing the consumer failed: %s", error)
            if read_model is not None:
                try:
                    read_model.close()
                except Exception as error:  # a connection the database dropped may fail to close; nothing is lost
                    log.warning("closing the read model failed: %s", error)
    return applied


def wait_for_topic(settings: ConsumerSettings, stop: threading.Event, every: float = 1.0) -> bool:
    """Wait until the relay has created the topic (asking without creating it); False if stopped first."""
    waiting_since: float | None = None
    while not stop.is_set():
        if topic_partitions(settings.bootstrap, settings.topic) is not None:
            if waiting_since is not None:
                log.info("topic %s exists after %.0f s", settings.topic, time.monotonic() - waiting_since)
            return True
        if waiting_since is None:
            waiting_since = time.monotonic()
            log.info("waiting for topic %s to be created by the relay (ledger relay --topic %s)", settings.topic, settings.topic)
        stop.wait(every)
    return False


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
        allow_auto_create_topics=False,  # kafka-python 3.0 ignores this in its metadata requests: see wait_for_topic
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
