"""Commands that carry the ledger over Kafka: the relay and the read-model consumer."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

import bootstrap
from cli.context import Settings, db_option, pass_settings
from domain.errors import InvalidValue
from presentation.text import count, moment, number

log = logging.getLogger("ledger")


def _bootstrap_option(f: Any) -> Any:
    return click.option("--bootstrap", "server", envvar="LEDGER_KAFKA", default="127.0.0.1:9092", show_default=True,
                        help="Kafka bootstrap server HOST:PORT (or $LEDGER_KAFKA)")(f)


def _topic_option(f: Any) -> Any:
    return click.option("--topic", envvar="LEDGER_TOPIC", default="ledger.events", show_default=True, help="Kafka topic of ledger events (or $LEDGER_TOPIC)")(f)


@contextmanager
def _until_signalled() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so loops finish their batch and shut down cleanly."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Throughput:
    """Logs a running count and rate every few seconds."""

    def __init__(self, what: str, every: float = 5.0) -> None:
        self.what, self.every = what, every
        self.total, self.window, self.since = 0, 0, time.monotonic()

    def add(self, count: int) -> None:
        self.total += count
        self.window += count
        now = time.monotonic()
        if now - self.since >= self.every:
            log.info("%s %d events (%.0f events/s)", self.what, self.total, self.window / (now - self.since))
            self.window, self.since = 0, now


class _OneLine(logging.Filter):
    """kafka-python logs some of its own socket errors with a traceback (on a closing connection); keep each to one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("kafka") and record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()} ({type(error).__name__}: {error})", ()
            record.exc_info, record.exc_text = None, None
        return True


def _logging() -> None:
    logging.basicConfig(level=os.environ.get("LEDGER_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # The relay and the consumers log a broker's absence once per attempt themselves; kafka-python's own lines (about 20 a
    # minute for one unreachable broker) are kept for debugging.
    logging.getLogger("kafka").setLevel(logging.DEBUG if os.environ.get("LEDGER_LOG_LEVEL") == "DEBUG" else logging.CRITICAL)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_OneLine())


def register(ledger: click.Group) -> None:
    """Add `relay` and `consume` to the `ledger` group."""

    @ledger.command()
    @_topic_option
    @_bootstrap_option
    @click.option("--partitions", type=click.IntRange(min=1), default=4, show_default=True,
                  help="partitions of the topic: the relay creates it so, and refuses an existing topic with another count")
    @click.option("--replication-factor", type=click.IntRange(min=1), default=1, show_default=True, help="replicas of each partition when the relay creates the topic")
    @click.option("--until-caught-up", is_flag=True, help="stop once every recorded event is published")
    @click.option("--give-up-after", type=click.FloatRange(min=1), default=60, show_default=True,
                  help="with --until-caught-up: seconds without an answer from a broker before the relay stops with exit status 1")
    @click.option("--page-size", type=click.IntRange(min=1), default=5000, show_default=True, help="events published (and acknowledged) per page")
    @db_option
    @pass_settings
    def relay(settings: Settings, topic: str, server: str, partitions: int, replication_factor: int, until_caught_up: bool, give_up_after: float,
              page_size: int) -> None:
        """Create the topic if needed and publish ledger events to it (keyed by aggregate id); runs until stopped."""
        from consumers.relay import RelaySettings, StreamError, relay as run_relay

        _logging()
        app = settings.ledger()
        store = bootstrap.build_projection_store(settings.db)
        rate = _Throughput("published")
        started = time.perf_counter()
        try:
            with _until_signalled() as stop:
                published = run_relay(app.recorder, store, RelaySettings(server, topic, partitions, page_size, replication_factor), stop=stop,
                                      until_caught_up=until_caught_up, give_up_after=give_up_after, on_page=lambda n, _: rate.add(n))
        except StreamError as error:
            raise click.ClickException(str(error)) from None
        finally:
            store.close()
            app.close()
        seconds = time.perf_counter() - started
        click.echo(f"published {count(published, 'event')} to {topic} in {seconds:.1f} s ({published / max(seconds, 1e-6):,.0f} events/s)")

    @ledger.command()
    @click.argument("projection", type=click.Choice(["platform"]))
    @click.option("--group", default="ledger-readmodel", show_default=True, help="consumer group; members of one group share the partitions")
    @_topic_option
    @_bootstrap_option
    @click.option("--until-idle", type=float, help="stop after this many seconds without messages (default: run until stopped)")
    @click.option("--max-records", type=click.IntRange(min=1), default=2000, show_default=True, help="messages applied per transaction")
    @click.option("--dead-letters", is_flag=True, help="list the messages parked (and held) in this read model (partition, offset, reason, when) and exit")
    @click.option("--root-key", type=click.Path(exists=True, dir_okay=False), help="verifier key file of the root writer: trust it, check every signature")
    @click.option("--trust-first-writer", is_flag=True, help="without --root-key: trust the first writer authorization signed by its own key, check every signature")
    @db_option
    @pass_settings
    def consume(settings: Settings, projection: str, group: str, topic: str, server: str, until_idle: float | None, max_records: int,
                dead_letters: bool, root_key: str | None, trust_first_writer: bool) -> None:
        """Build a PostgreSQL read model from Kafka, offsets stored with each change; waits for the relay to create the topic."""
        from consumers.readmodel import ConsumerSettings, ReadModel, RootKeyMismatch, consume as run_consumer
        from projections.store import PostgresProjectionStore
        from transparency.note import parse_verifier

        url = bootstrap.database_url(settings.db)
        if bootstrap.persistence_env(url)["PERSISTENCE_MODULE"] != "eventsourcing.postgres":
            raise InvalidValue("db", url, "the Kafka read model lives in PostgreSQL: give a postgresql:// URL")
        if root_key is not None and trust_first_writer:
            raise click.UsageError("--root-key and --trust-first-writer: give one of them, not both")
        root = parse_verifier(Path(root_key).read_text()) if root_key is not None else None
        options = ConsumerSettings(server, group, topic, projection, max_records, root, trust_first_writer)
        schema = bootstrap.persistence_env(url).get("POSTGRES_SCHEMA", "public")

        def open_read_model() -> ReadModel:
            store = bootstrap.build_projection_store(url)
            assert isinstance(store, PostgresProjectionStore)
            try:
                return ReadModel(store, schema, options)
            except RootKeyMismatch as error:
                store.close()
                raise click.ClickException(str(error)) from None
            except BaseException:
                store.close()
                raise

        if dead_letters:
            read_model = open_read_model()
            try:
                click.echo(render_dead_letters(read_model.dead_letters()))
                held = read_model.held()
                if held:
                    click.echo("held until their writer's key is authorized:\n" + render_dead_letters(held))
            finally:
                read_model.close()
            return
        _logging()
        if root is not None:
            log.info("signatures are checked: root writer %s from %s", root.encode(), root_key)
        elif trust_first_writer:
            log.info("signatures are checked: the first writer authorization signed by its own key is trusted as the root")
        rate = _Throughput("applied")
        counts = {"duplicates": 0, "parked": 0, "held": 0}

        def on_batch(outcome: Any, _: float) -> None:
            rate.add(outcome.applied)
            counts["duplicates"] += outcome.duplicates
            counts["parked"] += outcome.parked
            counts["held"] += outcome.held

        started = time.perf_counter()
        with _until_signalled() as stop:
            applied = run_consumer(open_read_model, options, stop=stop, idle_exit=until_idle, on_batch=on_batch)
        seconds = time.perf_counter() - started
        click.echo(f"applied {count(applied, 'event')} in {seconds:.1f} s ({applied / max(seconds, 1e-6):,.0f} events/s); "
                   f"dropped {count(counts['duplicates'], 'duplicate')}; parked {count(counts['parked'], 'message')}; held {number(counts['held'])}")



def render_dead_letters(parked: list[tuple[str, str, int, int, str, Any]]) -> str:
    """One line per parked message under a header."""
    lines = [f"{'group':20} {'topic':24} {'partition':>9} {'offset':>8}  {'parked at':25}  reason"]
    for group, topic, partition, offset, reason, parked_at in parked:
        lines.append(f"{group:20} {topic:24} {partition:>9} {offset:>8}  {moment(parked_at):25}  {reason}")
    return "\n".join(lines)
