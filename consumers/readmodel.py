"""A consumer-group member that folds Kafka events into the PostgreSQL read model, with offsets in the same transaction."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.sql import SQL, Identifier

from consumers.envelope import ENVELOPE, Envelope
from consumers.relay import topic_partitions
from consumers.writers import HeldRecord, TrustedKey, Verdict, WriterEvent, Writers, entry_digest, writer_event
from domain.errors import UnreplayableEvent
from projections import platform
from projections.reports import StaleReadModel
from projections.store import PostgresProjectionStore
from transparency.note import Verifier
from transparency.streamed import StreamChecker

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
    root_key: Verifier | None = None
    """The root writer's key, trusted from the start; signatures are then checked."""
    trust_first_writer: bool = False
    """Without a root key, trust the first writer authorization that arrives signed by its own key, and check signatures."""


class RootKeyMismatch(Exception):
    """The read model already trusts another root key than the one given."""


@dataclass
class BatchOutcome:
    """What one poll batch did to the read model."""

    applied: int = 0
    duplicates: int = 0
    parked: int = 0
    held: int = 0
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
        self.entries_table = SQL("{}.{}").format(Identifier(schema), Identifier("consumer_entries"))
        self.writers_table = SQL("{}.{}").format(Identifier(schema), Identifier("consumer_writers"))
        self.held_table = SQL("{}.{}").format(Identifier(schema), Identifier("held_messages"))
        self.checker = StreamChecker()
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
            self.conn.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (projection text, aggregate_id text, version bigint, position bigint NOT NULL, "
                "digest bytea NOT NULL, PRIMARY KEY (projection, aggregate_id, version))").format(self.entries_table))
            self.conn.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (projection text, name text, verifier text NOT NULL, counts_after bigint NOT NULL, "
                "revoked_at bigint, PRIMARY KEY (projection, name))").format(self.writers_table))
            self.conn.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, projection text NOT NULL, group_id text NOT NULL, topic text NOT NULL, "
                "partition integer NOT NULL, message_offset bigint NOT NULL, message_key bytea, message_value bytea NOT NULL, "
                "writer text NOT NULL, aggregate_id text NOT NULL, reason text NOT NULL, held_at timestamptz NOT NULL DEFAULT now(), "
                "UNIQUE (projection, group_id, topic, partition, message_offset))").format(self.held_table))
            if settings.root_key is not None:
                self._trust_root(settings.root_key)
        built_by = store.tracked_version(settings.projection)
        if built_by is not None and built_by != platform.FOLD_VERSION:
            # Rows of two folds are never mixed: a new fold needs a read model of its own, consumed from the start.
            raise StaleReadModel(
                f"db: this read model was built with fold version {built_by}, and this code folds version {platform.FOLD_VERSION}; "
                "consume into a new schema (`ledger consume platform --db <new schema URL>`) and point reports there"
            )

    def _trust_root(self, root: Verifier) -> None:
        trusted = self.conn.execute(SQL("SELECT verifier FROM {} WHERE projection = %s AND name = %s").format(self.writers_table),
                                    (self.settings.projection, root.name)).fetchone()
        if trusted is not None and trusted[0] != root.encode():
            raise RootKeyMismatch(f"root-key: this read model trusts another key for writer {root.name!r} ({trusted[0]})")
        self.conn.execute(SQL("INSERT INTO {} (projection, name, verifier, counts_after) VALUES (%s, %s, %s, 0) ON CONFLICT DO NOTHING"
                              ).format(self.writers_table), (self.settings.projection, root.name, root.encode()))

    def _writers(self, cursor: Any) -> Writers:
        from transparency.note import parse_verifier

        rows = cursor.execute(SQL("SELECT name, verifier, counts_after, revoked_at FROM {} WHERE projection = %s").format(self.writers_table),
                              (self.settings.projection,)).fetchall()
        keys = {name: TrustedKey(parse_verifier(verifier), after, revoked) for name, verifier, after, revoked in rows}
        return Writers(keys, self.settings.trust_first_writer, self.checker)

    def held(self) -> list[tuple[str, str, int, int, str, Any]]:
        """Every held message, oldest first: group, topic, partition, offset, why it waits and since when."""
        return self.conn.execute(SQL(
            "SELECT group_id, topic, partition, message_offset, reason, held_at FROM {} WHERE projection = %s ORDER BY held_at, id"
        ).format(self.held_table), (self.settings.projection,)).fetchall()

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
            SQL("SELECT v.aggregate_id, v.version FROM unnest(%b::text[]) AS k(id) JOIN {} AS v ON v.projection = %s AND v.aggregate_id = k.id"
                ).format(self.versions_table),
            (keys, self.settings.projection),
        )
        return {key: version for key, version in rows}

    def apply(self, records: list[Any], refused: str | None = None) -> BatchOutcome:
        """Fold one batch of records (in partition order) and store rows, versions, offsets and parked messages at once.

        The group's offset rows are locked first: records below a stored offset were applied by another
        member (after a rebalance, or by a member that was dropped from the group) and are skipped.
        With `refused`, the records are parked for that reason instead of applied. Once a root writer is
        known, every signature is checked; a message signed by a key not yet authorized is held, and the
        messages held for a writer are applied in the batch that applies its authorization.
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
            queue = deque(self._decode(r) if refused is None else (r, None, None, refused) for r in fresh)
            writers = self._writers(cursor)
            rows: dict[str, platform.Row] = {}
            versions: dict[str, int] = {}
            loaded: set[str] = set()

            def load(keys: set[str]) -> None:
                missing = sorted(keys - loaded)
                if missing:
                    rows.update(self.store.rows(projection, missing))
                    versions.update(self._versions(missing))
                    loaded.update(missing)

            load({e.aggregate_id.hex for _, e, _, _ in queue if e is not None})
            waiting = self._waiting(cursor, sorted(loaded)) if writers.checking else set()
            if writers.checking:
                # Another member may have held a message while this one applied its writer's authorization.
                for name in self._held_writers(cursor) & writers.keys.keys():
                    released = self._release(cursor, name, [], waiting)
                    load({e.aggregate_id.hex for _, e, _, _ in released if e is not None})
                    queue.extendleft(reversed(released))
            applied: dict[tuple[str, int], tuple[int, bytes]] = {}
            changed: dict[str, platform.Row] = {}
            parked: list[tuple[Any, str]] = []
            held: list[tuple[Any, str, str, str]] = []
            top = 0
            while queue:
                record, envelope, event, problem = queue.popleft()
                if envelope is None:
                    parked.append((record, problem or "undecodable"))
                    continue
                key = envelope.aggregate_id.hex
                if key not in loaded:
                    load({key})
                writer = event if isinstance(event, WriterEvent) else None
                verdict = writers.check(envelope, writer) if writers.checking else Verdict()
                if verdict.problem is not None:
                    parked.append((record, verdict.problem))
                    continue
                if verdict.held_for is not None:
                    held.append((record, verdict.held_for, key, f"key not yet authorized: signed by {verdict.held_for!r}"))
                    waiting.add(key)
                    continue
                expected = versions.get(key, 0) + 1
                if envelope.version < expected:
                    conflict = self._conflict(cursor, key, envelope, applied)
                    if conflict is None:
                        outcome.duplicates += 1
                    else:
                        parked.append((record, conflict))
                    continue
                if envelope.version > expected:
                    if key in waiting:
                        held.append((record, "", key, f"waits for version {expected} of {key}, which is held"))
                    else:
                        parked.append((record, f"gap: version {envelope.version} of {key} arrived, version {expected} was expected"))
                    continue
                new = None
                if writer is not None:
                    why = writers.learn(writer, envelope.position, root=verdict.root) if writers.checking else None
                    if why is not None:
                        parked.append((record, f"impossible: {why}"))
                        continue
                    if verdict.root:
                        log.warning("trusting writer %r on first use: the first authorization to arrive, at position %d, with key %s "
                                    "(give --root-key to pin the root instead)", writer.name, envelope.position, writer.verifier.encode() if writer.verifier else "")
                    if writer.kind == "authorized" and writers.checking:
                        released = self._release(cursor, writer.name, held, waiting)
                        load({e.aggregate_id.hex for _, e, _, _ in released if e is not None})
                        queue.extendleft(reversed(released))  # next, before the rest of the batch, which may build on them
                else:
                    try:
                        new = platform.fold(rows.get(key), event, envelope.position)
                    except UnreplayableEvent as error:
                        parked.append((record, f"impossible: {error}"))
                        continue
                versions[key] = envelope.version
                applied[(key, envelope.version)] = (envelope.position, entry_digest(envelope))
                top = max(top, envelope.position)
                if new is not None:
                    rows[key] = changed[key] = new
                outcome.applied += 1
            for record in records:
                outcome.offsets[record.partition] = max(outcome.offsets.get(record.partition, 0), record.offset + 1)
            outcome.parked, outcome.held = len(parked), len(held)
            # The writes go out together, without a round trip each: one wait for the database per batch, not eight.
            with self.conn.pipeline():
                self.store.upsert_rows(cursor, projection, changed)
                written = [key for key in sorted(loaded) if key in versions]
                cursor.execute(
                    SQL("INSERT INTO {} AS v (projection, aggregate_id, version) SELECT %s, id, version FROM unnest(%b::text[], %b::bigint[]) AS u(id, version) "
                        "ON CONFLICT (projection, aggregate_id) DO UPDATE SET version = GREATEST(excluded.version, v.version)"
                        ).format(self.versions_table),
                    (projection, written, [versions[key] for key in written]),
                )
                cursor.execute(
                    # Arrays in binary (%b): psycopg's text form escapes every element through a regular expression.
                    SQL("INSERT INTO {} (projection, aggregate_id, version, position, digest) SELECT %s, id, version, position, digest "
                        "FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::bytea[]) AS u(id, version, position, digest) ON CONFLICT DO NOTHING"
                        ).format(self.entries_table),
                    (projection, [k for k, _ in applied], [v for _, v in applied], [p for p, _ in applied.values()], [d for _, d in applied.values()]),
                )
                cursor.executemany(
                    SQL("INSERT INTO {} AS w (projection, name, verifier, counts_after, revoked_at) VALUES (%s, %s, %s, %s, %s) "
                        "ON CONFLICT (projection, name) DO UPDATE SET revoked_at = COALESCE(w.revoked_at, excluded.revoked_at)").format(self.writers_table),
                    [(projection, *row) for row in writers.rows()],
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
                cursor.executemany(
                    SQL("INSERT INTO {} (projection, group_id, topic, partition, message_offset, message_key, message_value, writer, aggregate_id, reason) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING").format(self.held_table),
                    [(projection, group, r.topic, r.partition, r.offset, r.key, r.value, by, key, why) for r, by, key, why in held],
                )
                if top:
                    self.store.upsert_tracking(cursor, projection, platform.FOLD_VERSION, top, keep_highest=True)
        for record, why in parked:
            log.warning("parked message %s[%d]@%d: %s", record.topic, record.partition, record.offset, why)
        for record, _, _, why in held:
            log.info("held message %s[%d]@%d: %s", record.topic, record.partition, record.offset, why)
        return outcome

    def _waiting(self, cursor: Any, keys: list[str]) -> set[str]:
        """Which of these aggregates have a message held."""
        return {key for (key,) in cursor.execute(
            SQL("SELECT DISTINCT aggregate_id FROM {} WHERE projection = %s AND aggregate_id = ANY(%s)").format(self.held_table),
            (self.settings.projection, keys))}

    def _held_writers(self, cursor: Any) -> set[str]:
        """The writers some held message waits for."""
        return {name for (name,) in cursor.execute(
            SQL("SELECT DISTINCT writer FROM {} WHERE projection = %s AND writer <> ''").format(self.held_table), (self.settings.projection,))}

    def _release(self, cursor: Any, writer: str, held: list[tuple[Any, str, str, str]], waiting: set[str]) -> list[tuple[Any, Envelope | None, Any, str | None]]:
        """Take out the messages held for `writer`, and those held behind them, decoded and in version order."""
        mine = [h for h in held if h[1] == writer]
        stored = cursor.execute(
            SQL("DELETE FROM {} WHERE projection = %s AND writer = %s RETURNING topic, partition, message_offset, message_key, message_value, aggregate_id"
                ).format(self.held_table), (self.settings.projection, writer)).fetchall()
        aggregates = {key for _, _, key, _ in mine} | {row[5] for row in stored}
        behind = [h for h in held if h[1] == "" and h[2] in aggregates]
        stored += cursor.execute(
            SQL("DELETE FROM {} WHERE projection = %s AND writer = '' AND aggregate_id = ANY(%s) "
                "RETURNING topic, partition, message_offset, message_key, message_value, aggregate_id").format(self.held_table),
            (self.settings.projection, sorted(aggregates))).fetchall()
        taken = {id(h) for h in mine + behind}
        held[:] = [h for h in held if id(h) not in taken]
        waiting -= aggregates
        records = [h[0] for h in mine + behind] + [HeldRecord(t, p, o, bytes(k) if k is not None else None, bytes(v)) for t, p, o, k, v, _ in stored]
        released = [self._decode(r) for r in records]
        log.info("writer %r authorized: applying the %d messages held for it", writer, len(released))
        return sorted(released, key=lambda d: (d[1].aggregate_id.hex, d[1].version) if d[1] is not None else ("", 0))

    def _conflict(self, cursor: Any, key: str, envelope: Envelope, applied: dict[tuple[str, int], tuple[int, bytes]]) -> str | None:
        """Why a message at an applied version is no mere duplicate: its content differs from the applied event's."""
        known = applied.get((key, envelope.version))
        if known is None:
            row = cursor.execute(SQL("SELECT position, digest FROM {} WHERE projection = %s AND aggregate_id = %s AND version = %s").format(self.entries_table),
                                 (self.settings.projection, key, envelope.version)).fetchone()
            known = (row[0], bytes(row[1])) if row is not None else None
        if known is None or known[1] == entry_digest(envelope):
            return None  # the same event again (or one applied before digests were kept)
        return f"conflicts with the event applied at position {known[0]}: version {envelope.version} of {key} arrived with other content"

    @staticmethod
    def _decode(record: Any) -> tuple[Any, Envelope | None, Any, str | None]:
        try:
            envelope = ENVELOPE.validate_json(record.value)
            for name, value in (("position", envelope.position), ("version", envelope.version)):
                if not 1 <= value <= BIGINT:
                    return record, None, None, f"out of range: {name} {value} is not within 1..{BIGINT}"
            writer = writer_event(envelope)
            return record, envelope, writer if writer is not None else envelope.event(), None
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
            total.held += outcome.held
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
