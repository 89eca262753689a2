"""Measures events per second and peak memory of writing, reading, projecting and streaming, against baselines.

Each measurement runs in its own process, so its peak memory is its own. Baselines, in the same run:
- `baseline-insert`: eventsourcing's bare recorder inserting the same stored events in the same batches
  (no domain rules, no pydantic), the floor under `demo-write`;
- `baseline-read`: reading and decoding every event of the log without folding it, the floor under `rebuild`
  and the relay;
- `rebuild` on PostgreSQL: the same read model built straight from the event store, compared with `kafka-consume`;
- `kafka-raw-produce` and `kafka-raw-consume`: bare kafka-python sending the relay's envelopes (prepared beforehand,
  one flush at the end) and reading them back without decoding, the ceilings over `kafka-relay` and `kafka-consume`;
- `kafka-lag`: relay and consumer running in their own processes while a writer appends about 1,000 events/s;
  reported as the 99th percentile of the time from an event's commit to its row in the read model.
- `baseline-sha256`: plain SHA-256 over the same leaf bytes, the floor under `tlog-verify` (`ledger verify`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from collections.abc import Iterator
from typing import Any


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _result(name: str, store: str, events: int, seconds: float) -> dict[str, Any]:
    return {"name": name, "store": store, "events": events, "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds) if seconds else 0, "peak_mib": round(_peak_mib(), 1)}


def demo_write(url: str, scale: float, seed: int) -> dict[str, Any]:
    import bootstrap
    from service_layer.demo import DemoHistory, plan_history, write_demo
    from domain.nuts import nuts_countries

    nuts_countries()  # reference tables load once per process; not part of the write
    history = DemoHistory(seed=seed, scale=scale)
    plan_history(DemoHistory(seed=seed, scale=scale))  # warm the planner the same way
    app = bootstrap.build_ledger(url, clock=history.clock)
    started = time.perf_counter()
    summary = write_demo(app, history)
    seconds = time.perf_counter() - started
    app.close()
    return _result("demo-write", _store(url), summary["events"], seconds)


BASELINE_BATCH = 2_000
"""The most events the baseline inserts at once: what the ledger writes at once (a batch of the generator, a chunk of an import)."""


def baseline_insert(source_url: str, url: str) -> dict[str, Any]:
    """eventsourcing's plain recorder inserting the source ledger's stored events, one batch per recorded time (at most
    BASELINE_BATCH events: an import records all its events at one time), streamed."""
    import bootstrap
    from eventsourcing.persistence import InfrastructureFactory, StoredEvent
    from eventsourcing.utils import Environment

    from projections import runner

    env = {k: v for k, v in bootstrap.persistence_env(url).items() if k != "APPLICATION_RECORDER_TOPIC"}
    if "POSTGRES_SCHEMA" in env:
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(url.partition("?")[0], autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(env["POSTGRES_SCHEMA"])))
    factory = InfrastructureFactory.construct(Environment("Baseline", env))
    recorder = factory.application_recorder()
    source = bootstrap.build_ledger(source_url)
    seconds, count = 0.0, 0
    batch: list[StoredEvent] = []
    stamp = b""
    for page in runner.notifications(source.recorder, 0, page_size=5_000):
        for n in page:
            recorded = n.state[n.state.find(b'"timestamp":') :][:40]
            if batch and (recorded != stamp or len(batch) == BASELINE_BATCH):
                started = time.perf_counter()
                recorder.insert_events(batch)
                seconds += time.perf_counter() - started
                count += len(batch)
                batch = []
            stamp = recorded
            batch.append(StoredEvent(n.originator_id, n.originator_version, n.topic, n.state))
    if batch:
        started = time.perf_counter()
        recorder.insert_events(batch)
        seconds += time.perf_counter() - started
        count += len(batch)
    source.close()
    factory.close()
    return _result("baseline-insert", _store(url), count, seconds)


def baseline_read(url: str) -> dict[str, Any]:
    import bootstrap
    from projections import runner

    app = bootstrap.build_ledger(url)
    started = time.perf_counter()
    count = sum(len([app.mapper.to_domain_event(n) for n in page]) for page in runner.notifications(app.recorder, 0))
    seconds = time.perf_counter() - started
    app.close()
    return _result("baseline-read", _store(url), count, seconds)


def rebuild(url: str) -> dict[str, Any]:
    import bootstrap
    from projections import runner

    app = bootstrap.build_ledger(url)
    store = bootstrap.build_projection_store(url)
    started = time.perf_counter()
    applied = runner.rebuild(app.recorder, app.mapper, store)
    seconds = time.perf_counter() - started
    store.close()
    app.close()
    result = _result("rebuild", _store(url), applied, seconds)
    # Its worker processes fold as much as it does: the peak is the larger of its own and theirs.
    result["peak_mib"] = max(result["peak_mib"], round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1))
    return result


def tlog_verify(url: str) -> dict[str, Any]:
    """`ledger verify` without a checkpoint: every event re-read and re-hashed, the tree recomputed and compared (tree built first, untimed)."""
    import bootstrap
    from transparency import audit, log

    store = bootstrap.build_tree_store(url)
    log.catch_up(store)
    started = time.perf_counter()
    report = audit.verify(store)
    seconds = time.perf_counter() - started
    store.close()
    assert report.holds, [f.line() for f in report.findings]
    result = _result("tlog-verify", _store(url), report.events, seconds)
    # Its worker processes read as much as it does: the peak is the larger of its own and theirs.
    result["peak_mib"] = max(result["peak_mib"], round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1))
    return result


def baseline_sha256(url: str) -> dict[str, Any]:
    """Plain SHA-256 over the same leaf bytes (read and encoded a page at a time, untimed), the floor under `tlog-verify`."""
    import hashlib

    import bootstrap
    from transparency.leaf import record_leaf
    from transparency.store import LOWEST

    store = bootstrap.build_tree_store(url)
    seconds, count, after = 0.0, 0, LOWEST
    # A page of leaves at a time, each read and encoded untimed, then hashed on the clock: memory stays one page.
    while page := store.records(after, 100_000):
        leaves = [record_leaf(r) for r in page]
        after = page[-1].position
        started = time.perf_counter()
        for leaf in leaves:
            hashlib.sha256(leaf).digest()
        seconds += time.perf_counter() - started
        count += len(leaves)
    store.close()
    return _result("baseline-sha256", _store(url), count, seconds)


def _batches(url: str) -> Iterator[list[Any]]:
    """The stored events of the ledger at `url`, as batches of what the ledger writes at once."""
    from uuid import UUID

    from eventsourcing.persistence import StoredEvent

    for rows in _source_rows(url, BASELINE_BATCH):
        yield [StoredEvent(UUID(str(aid)), version, topic, bytes(state)) for aid, version, topic, state in rows]


def sign_batches(url: str) -> dict[str, Any]:
    """Signing every stored event, a batch of BASELINE_BATCH at a time (read untimed): one note signature and an audit path per event."""
    from transparency.note import Signer
    from transparency.signing import sign_batch

    signer = Signer.generate("bench.example")
    seconds, count = 0.0, 0
    for batch in _batches(url):
        started = time.perf_counter()
        sign_batch(batch, signer)
        seconds += time.perf_counter() - started
        count += len(batch)
    return _result("sign-batch", _store(url), count, seconds)


def check_batches(url: str) -> dict[str, Any]:
    """Checking the signatures of every event signed by `sign-batch` (signed untimed): whole batches, one verification each, then each event on its own."""
    from transparency.note import Signer
    from transparency.signing import SignatureChecker, SignedEvent, sign_batch

    signer = Signer.generate("bench.example")
    seconds, alone, count = 0.0, 0.0, 0
    for batch in _batches(url):
        events = [SignedEvent.of(str(s.originator_id), s.originator_version, s.topic, s.state) for s in sign_batch(batch, signer)]
        signed = [e for e in events if e is not None]
        started = time.perf_counter()
        found = SignatureChecker().check_batch(signed, signer.verifier)
        seconds += time.perf_counter() - started
        assert not found, found
        # As a Kafka consumer does: each event on its own, the batch's one signature verified once and remembered.
        checker = SignatureChecker()
        started = time.perf_counter()
        assert all(checker.check_event(e, signer.verifier) is None for e in signed)
        alone += time.perf_counter() - started
        count += len(signed)
    result = _result("check-batch", _store(url), count, seconds)
    return {**result, "each_events_per_s": round(count / alone) if alone else 0}


def kafka_relay(url: str, server: str, topic: str) -> dict[str, Any]:
    import threading

    import bootstrap
    from consumers.relay import RelaySettings, relay

    app = bootstrap.build_ledger(url)
    store = bootstrap.build_projection_store(url)
    started = time.perf_counter()
    published = relay(app.recorder, store, RelaySettings(server, topic, partitions=4), stop=threading.Event(), until_caught_up=True)
    seconds = time.perf_counter() - started
    store.close()
    app.close()
    return _result("kafka-relay", _store(url), published, seconds)


def kafka_consume(read_model_url: str, server: str, topic: str, expected: str) -> dict[str, Any]:
    import threading

    import bootstrap
    from consumers.readmodel import ConsumerSettings, ReadModel, consume

    store = bootstrap.build_projection_store(read_model_url)
    settings = ConsumerSettings(server, group=f"bench-{uuid.uuid4().hex[:6]}", topic=topic)
    stop = threading.Event()
    seen = {"applied": 0, "first": 0.0}

    def on_batch(outcome: Any, _: float) -> None:
        seen["first"] = seen["first"] or time.perf_counter()
        seen["applied"] += outcome.applied
        if seen["applied"] >= int(expected):
            stop.set()

    started = time.perf_counter()
    schema = bootstrap.persistence_env(read_model_url)["POSTGRES_SCHEMA"]
    consume(lambda: ReadModel(bootstrap.build_projection_store(read_model_url), schema, settings), settings, stop=stop, on_batch=on_batch, idle_exit=30)
    seconds = time.perf_counter() - started
    store.close()
    return _result("kafka-consume", "postgresql", seen["applied"], seconds)


def kafka_raw_produce(url: str, server: str, topic: str) -> dict[str, Any]:
    import bootstrap
    from consumers.envelope import wrap
    from consumers.relay import RelaySettings, ensure_topic, producer
    from projections import runner

    app = bootstrap.build_ledger(url)
    messages = [(str(n.originator_id), wrap(n).model_dump_json()) for page in runner.notifications(app.recorder, 0) for n in page]
    app.close()
    settings = RelaySettings(server, topic, partitions=4)
    ensure_topic(settings)
    kafka = producer(settings)
    started = time.perf_counter()
    futures = [kafka.send(topic, key=key, value=value) for key, value in messages]
    kafka.flush(timeout=120)
    for future in futures:
        future.get(timeout=60)
    seconds = time.perf_counter() - started
    kafka.close()
    return _result("kafka-raw-produce", "postgresql", len(messages), seconds)


def kafka_raw_consume(server: str, topic: str, expected: str) -> dict[str, Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=server, group_id=f"bench-raw-{uuid.uuid4().hex[:6]}", enable_auto_commit=False,
                             auto_offset_reset="earliest", allow_auto_create_topics=False, max_poll_records=5000)
    count, started = 0, time.perf_counter()
    while count < int(expected) and time.perf_counter() - started < 120:
        count += sum(len(records) for records in consumer.poll(timeout_ms=500).values())
    seconds = time.perf_counter() - started
    consumer.close(autocommit=False)
    return _result("kafka-raw-consume", "postgresql", count, seconds)


def kafka_lag(store_url: str, read_model_url: str, server: str, topic: str, seconds: str) -> dict[str, Any]:
    """Append about 1,000 events/s for `seconds` with relay and consumer running; the p99 from commit to read model."""
    import statistics
    from datetime import date

    import bootstrap
    from service_layer import commands as c

    env = {**os.environ, "LEDGER_LOG_LEVEL": "WARNING"}
    common = ["--bootstrap", server, "--topic", topic]
    cli = [sys.executable, "-m", "cli.main"]
    processes = [subprocess.Popen([*cli, "relay", "--db", store_url, *common], env=env),
                 subprocess.Popen([*cli, "consume", "platform", "--db", read_model_url, "--group", f"lag-{uuid.uuid4().hex[:6]}", *common], env=env)]
    app = bootstrap.build_ledger(store_url)
    store = bootstrap.build_projection_store(read_model_url)
    today = date.today().isoformat()
    pending: dict[str, float] = {}
    lags: list[float] = []
    written, batch = 0, 50
    try:
        time.sleep(5)  # relay and consumer start, the topic exists
        started = time.perf_counter()
        while time.perf_counter() - started < float(seconds):
            refs = [f"ORG-LAG-{uuid.uuid4().hex[:10].upper()}" for _ in range(batch)]
            app.execute([c.RegisterOrg(org=ref, name="Lag cluster", country="DE", ecosystems=("digital",), year_established=2020,
                                       occurred_at=today) for ref in refs], actor="bench")
            now = time.perf_counter()
            pending.update({_key(ref): now for ref in refs})
            written += batch
            _seen(store, pending, lags)
            time.sleep(max(0.0, started + written / 1000 - time.perf_counter()))
        rate = written / (time.perf_counter() - started)
        deadline = time.perf_counter() + 60
        while pending and time.perf_counter() < deadline:
            _seen(store, pending, lags)
            time.sleep(0.01)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=60)
        store.close()
        app.close()
    result = _result("kafka-lag", "postgresql", written, float(seconds))
    result["events_per_s"] = round(rate)
    result["lag_p99_ms"] = round(statistics.quantiles(lags, n=100)[98] * 1000) if len(lags) > 1 else None
    result["lag_p50_ms"] = round(statistics.median(lags) * 1000) if lags else None
    result["unseen"] = len(pending)
    return result


def _key(ref: str) -> str:
    from domain.base import ref_id

    return ref_id(ref).hex


def _seen(store: Any, pending: dict[str, float], lags: list[float]) -> None:
    """Move the pending rows that reached the read model into `lags`."""
    found = store.rows("platform", list(pending))
    now = time.perf_counter()
    for key in found:
        lags.append(now - pending.pop(key))



def ledger_write(url: str, size: str, seed: str) -> dict[str, Any]:
    """The streaming generator's events written through the ledger's batches (`benchmarks.generate`)."""
    import bootstrap
    from benchmarks import generate
    from domain.nuts import nuts_countries

    nuts_countries()
    app = bootstrap.build_ledger(url, clock=generate.Clock())
    started = time.perf_counter()
    written = generate.write(app, int(size), int(seed))
    seconds = time.perf_counter() - started
    app.close()
    return _result("ledger-write", _store(url), written, seconds)


def import_file(url: str, size: str, seed: str) -> dict[str, Any]:
    """`ledger import` of a JSON Lines file of `size` generated actions into an empty ledger (the file is written first)."""
    from benchmarks import generate
    from cli.main import ledger

    path = Path(tempfile.mkdtemp(prefix="ledger-import-")) / "actions.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for line in generate.import_lines(int(size), int(seed)):
            file.write(line + "\n")
    started = time.perf_counter()
    ledger.main(["import", str(path), "--db", url], standalone_mode=False)
    seconds = time.perf_counter() - started
    path.unlink()
    return _result("import", _store(url), int(size), seconds)


def _source_rows(url: str, chunk: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
    """The stored events of the ledger at `url` in position order, `chunk` rows at a time, straight from the table."""
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        cursor = conn.execute("SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid")
        while rows := cursor.fetchmany(chunk):
            yield rows
        conn.close()
        return
    import psycopg
    from psycopg.sql import SQL, Identifier

    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn, conn.cursor(name="bench_source") as cursor:
        cursor.itersize = chunk
        cursor.execute(SQL("SELECT originator_id, originator_version, topic, state FROM {}.ledger_events ORDER BY notification_id").format(Identifier(schema)))
        while rows := cursor.fetchmany(chunk):
            yield rows


def raw_sqlite_insert(source_url: str, path: str) -> dict[str, Any]:
    """Bare sqlite3: the same rows into the same table shape with executemany, 20,000 per transaction (reading them untimed)."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
                 "PRIMARY KEY (originator_id, originator_version))")
    seconds, count = 0.0, 0
    for rows in _source_rows(source_url):
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        seconds += time.perf_counter() - started
        count += len(rows)
    conn.close()
    return _result("raw-insert", "sqlite", count, seconds)


def raw_postgres_insert(source_url: str, target_url: str, how: str) -> dict[str, Any]:
    """Bare psycopg: the same rows into a table like eventsourcing's, by COPY or executemany, 20,000 per transaction."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    base, _, schema = target_url.partition("?schema=")
    table = SQL("{}.stored_events").format(Identifier(schema))
    seconds, count = 0.0, 0
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
        conn.execute(SQL("CREATE TABLE {} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, state bytea, "
                         "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))").format(table))
        for rows in _source_rows(source_url):
            started = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                if how == "copy":
                    with cursor.copy(SQL("COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)").format(table)) as copy:
                        copy.set_types(["uuid", "int8", "text", "bytea"])
                        for row in rows:
                            copy.write_row(row)
                else:
                    cursor.executemany(SQL("INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)").format(table), rows)
            seconds += time.perf_counter() - started
            count += len(rows)
        conn.execute(SQL("DROP SCHEMA {} CASCADE").format(Identifier(schema)))
    return _result(f"raw-{how}", "postgresql", count, seconds)


def raw_scan(url: str, decoder: str) -> dict[str, Any]:
    """Bare driver: every stored state in position order, 5,000 rows a fetch, each decoded by json or orjson."""
    import json as json_module

    import orjson

    loads = orjson.loads if decoder == "orjson" else json_module.loads
    count = 0
    started = time.perf_counter()
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        cursor = conn.execute("SELECT originator_id, rowid, topic, state FROM stored_events ORDER BY rowid")
        while rows := cursor.fetchmany(5_000):
            for row in rows:
                loads(row[3])
            count += len(rows)
        conn.close()
    else:
        import psycopg
        from psycopg.sql import SQL, Identifier

        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base) as conn, conn.cursor(name="bench_scan") as cursor:
            cursor.itersize = 5_000
            cursor.execute(SQL("SELECT originator_id, notification_id, topic, state FROM {}.ledger_events ORDER BY notification_id").format(Identifier(schema)))
            while rows := cursor.fetchmany(5_000):
                for row in rows:
                    loads(row[3])
                count += len(rows)
    seconds = time.perf_counter() - started
    return _result(f"raw-scan-{decoder}", _store(url), count, seconds)


def rebuild_by_pages(url: str) -> dict[str, Any]:
    """The clear rebuild the bulk one replaces, page by page through pydantic."""
    import bootstrap
    from projections import runner

    app = bootstrap.build_ledger(url)
    store = bootstrap.build_projection_store(url)
    started = time.perf_counter()
    applied = runner.rebuild_by_pages(app.recorder, app.mapper, store, projection="platform_by_pages")
    seconds = time.perf_counter() - started
    store.reset("platform_by_pages")
    store.close()
    app.close()
    return _result("rebuild-by-pages", _store(url), applied, seconds)


def report(url: str, as_of: str) -> dict[str, Any]:
    """`ledger report impact` (caught up already), or with `--as-of` the recorded time of the middle event."""
    import bootstrap
    from cli.main import ledger

    app = bootstrap.build_ledger(url)
    total = app.recorder.max_notification_id() or 0
    args = ["report", "impact", "--format", "json", "--db", url]
    events = total
    if as_of == "middle":
        middle = next(iter(app.recorder.select_notifications(start=max(1, total // 2), limit=1)))
        stamp = json.loads(middle.state)["timestamp"]
        args += ["--as-of", stamp]
        # The events the report includes: all those recorded by then (an import records every event at one time).
        from datetime import datetime

        from projections import reports

        # Untimed, this also reads the log's recorded order once and keeps it, as the first as-of report on a ledger does.
        store = bootstrap.build_projection_store(url)
        try:
            events = reports.last_recorded_by(reports.Sources(app.recorder, app.mapper, store), datetime.fromisoformat(stamp)).position
        finally:
            store.close()
    app.close()
    started = time.perf_counter()
    ledger.main(args, standalone_mode=False)
    seconds = time.perf_counter() - started
    return _result("report-as-of" if as_of == "middle" else "report-impact", _store(url), events, seconds)


PAGE_REPEATS = 5
"""Each page is asked for once cold, then this many times; the median of those is its warm time."""


def web_pages(url: str) -> dict[str, Any]:
    """`ledger serve` on the ledger at `url`: the time of each page of the browser view, cold and warm, over HTTP.

    The transparency tree is caught up first (timed apart), as `ledger checkpoint` would leave it; the projection is
    caught up by the first figures page, which is what its cold time shows.
    """
    import statistics
    import urllib.parse
    import urllib.request

    import bootstrap
    from projections import runner
    from projections.platform import FOLD_VERSION
    from transparency import log

    app = bootstrap.build_ledger(url)
    total = app.recorder.max_notification_id() or 0
    middle = next(iter(app.recorder.select_notifications(start=max(1, total // 2), limit=1)))
    as_of = json.loads(middle.state)["timestamp"]
    store = bootstrap.build_projection_store(url)
    # Up to date, as the reporting job leaves it: the first page then shows reading, not building, the projection.
    if store.position(runner.PROJECTION, FOLD_VERSION) == 0:
        runner.rebuild(app.recorder, app.mapper, store)
    store.close()
    app.close()
    tree = bootstrap.build_tree_store(url)
    started = time.perf_counter()
    log.catch_up(tree)
    tree_seconds = time.perf_counter() - started
    tree.close()

    with _served(url, "/openapi.json") as (base, server):
        def get(path: str) -> tuple[float, bytes]:
            began = time.perf_counter()
            with urllib.request.urlopen(base + path, timeout=600) as answer:
                body = answer.read()
            return time.perf_counter() - began, body

        pages: list[dict[str, Any]] = []

        def measure(label: str, path: str) -> bytes:
            first, body = get(path)
            warm = [get(path)[0] for _ in range(PAGE_REPEATS)]
            pages.append({"page": label, "path": path, "first_ms": round(first * 1000, 1),
                          "warm_ms": round(statistics.median(warm) * 1000, 1), "bytes": len(body),
                          # a file to save, whose time grows with what it holds: timed, not held to a page's targets
                          "download": path.startswith("/export/")})
            return body

        quoted = urllib.parse.quote(as_of)
        measure("figures", "/")
        measure("figures as of the middle event", f"/?as_of={quoted}")
        listed = json.loads(measure("figures API", "/api/figures"))["figures"]
        # The count with the most events behind it: the longest listing to page through.
        key = max((f for f in listed if f["is_count"]), key=lambda f: f["events"])["key"]
        figure = json.loads(measure(f"figure API: {key}, page 1", f"/api/figures/{key}"))
        measure(f"figure: {key}, page 1", f"/figures/{key}")
        if figure.get("next_after"):
            measure(f"figure: {key}, page 2", f"/figures/{key}?after={figure['next_after']}")
        measure(f"figure: {key}, last page", f"/figures/{key}?page={max(1, -(-figure['total'] // 50))}")
        measure(f"figure: {key}, CSV of every event", f"/export/figures/{key}.csv")
        measure(f"figure: {key}, month by month", f"/figures/{key}/months")
        first_ref = figure["events"][0]["ref"] if figure["events"] else json.loads(get("/api/events/1")[1])["ref"]
        ref = urllib.parse.quote(first_ref, safe="")
        measure("record", f"/records/{ref}")
        measure("record as of the middle event", f"/records/{ref}?as_of={quoted}")
        measure("event with its proof", f"/events/{middle.id}")
        measure("event API", f"/api/events/{middle.id}")
        measure("audit log, page 1", "/audit")
        measure("audit log after the middle event", f"/audit?after={middle.id}")
        measure("audit log of one record", f"/audit?record={ref}")
        measure("audit log of one type", "/audit?type=Pitch.Delivered")
        measure("audit log of an actor with no events", "/audit?actor=nobody")
        measure("audit log recorded since the middle event", f"/audit?since={quoted}")
        measure("audit log, last page", f"/audit?before={total + 1}")
        measure("audit log of one type, CSV", "/export/audit.csv?type=Pitch.Delivered")
        measure("search: a position", f"/api/search?q={middle.id}")
        measure("search: a record reference", f"/api/search?q={ref}")
        measure("countries", "/countries")
        measure("country fact sheet", "/countries/LV")
        measure("country fact sheet API", "/api/countries/LV")
        server_peak = 0.0
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                server_peak = int(line.split()[1]) / 1024
    return {"name": "web-pages", "store": _store(url), "events": total, "seconds": round(sum(p["first_ms"] for p in pages) / 1000, 2),
            "events_per_s": 0, "peak_mib": round(server_peak, 1), "tree_seconds": round(tree_seconds, 2), "pages": pages}


@contextlib.contextmanager
def _published_and_served(url: str, folder: Path) -> Iterator[tuple[str, Path, int]]:
    """The ledger at `url` with a signed checkpoint published (untimed), served by `ledger serve` on a free port: the
    tiled log's URL, the verifier key's file and the tree size."""
    import bootstrap

    cli = [sys.executable, "-m", "cli.main"]
    subprocess.run([*cli, "keygen", "bench.example/log", "--dir", str(folder)], check=True, capture_output=True)
    subprocess.run([*cli, "checkpoint", "--sign", str(folder / "bench.example_log.key"), "--db", url], check=True, capture_output=True)
    tree = bootstrap.build_tree_store(url)
    size = tree.size()
    tree.close()
    with _served(url, "/tlog/checkpoint") as (base, _):
        yield f"{base}/tlog", folder / "bench.example_log.pub", size


@contextlib.contextmanager
def _served(url: str, ready: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`ledger serve` on the ledger at `url`, on a free port, once it answers `ready`: its base URL and process."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The server writes a line per request to stderr: into a file, as a pipe nobody reads would fill and stop the server.
    log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--db", url, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=log, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + ready, timeout=5).read()
                break
            except OSError:
                if server.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"ledger serve stopped: {log.read()[-3000:]}")
                time.sleep(0.1)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def mirror(url: str) -> dict[str, Any]:
    """`ledger mirror` of the ledger at `url` from a local `ledger serve` into a new SQLite file: every tile and entry
    fetched and checked, every event written with its tree (peak: the largest command-line process of the run)."""
    with tempfile.TemporaryDirectory() as folder, _published_and_served(url, Path(folder)) as (log_url, verifier, size):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli.main", "mirror", log_url, "--verifier-key", str(verifier),
                        "--db", f"sqlite:///{Path(folder) / 'mirror.db'}"], check=True, capture_output=True)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = _result("mirror", _store(url), size, seconds)
    result["peak_mib"] = round(peak, 1)
    return result


def tiles_http(url: str) -> dict[str, Any]:
    """Every tile and entry bundle `mirror` reads, fetched from the same local `ledger serve` with bare HTTP, unchecked."""
    import urllib.request

    from transparency.tiles import tiles_for

    with tempfile.TemporaryDirectory() as folder, _published_and_served(url, Path(folder)) as (log_url, _, size):
        started = time.perf_counter()
        for tile in tiles_for(size):
            with urllib.request.urlopen(f"{log_url}/{tile.path}", timeout=600) as answer:
                answer.read()
        seconds = time.perf_counter() - started
    return _result("tiles-http", _store(url), size, seconds)


def ledger_size(url: str) -> dict[str, Any]:
    """How many events the ledger at `url` holds (for a run on a ledger written beforehand; nothing is timed)."""
    import bootstrap

    app = bootstrap.build_ledger(url)
    total = app.recorder.max_notification_id() or 0
    app.close()
    return {**_result("ledger-size", _store(url), total, 0), "events_per_s": 0}


def report_at_position(url: str, position: str) -> dict[str, Any]:
    """The impact report as of log position `position` (what `--as-of` reaches on a ledger whose events were recorded at
    different times; an import records all its events at one time, so there no `--as-of` stops in the middle)."""
    import bootstrap
    from projections import reports, runner
    from projections.figures import Settings

    app = bootstrap.build_ledger(url)
    store = bootstrap.build_projection_store(url)
    upto = int(position)
    started = time.perf_counter()
    rows = runner.RowsAsOf(app.recorder, store, upto)
    reports.impact(rows, Settings(*reports.default_period()), None, included=reports.Included(upto))
    seconds = time.perf_counter() - started
    store.close()
    app.close()
    return _result("report-at-position", _store(url), upto, seconds)


def _store(url: str) -> str:
    return url.split(":", 1)[0]


MEASURES = {
    "demo-write": demo_write, "baseline-insert": baseline_insert, "baseline-read": baseline_read, "rebuild": rebuild,
    "kafka-relay": kafka_relay, "kafka-consume": kafka_consume, "kafka-raw-produce": kafka_raw_produce,
    "kafka-raw-consume": kafka_raw_consume, "kafka-lag": kafka_lag, "ledger-write": ledger_write, "import": import_file,
    "raw-sqlite-insert": raw_sqlite_insert, "raw-postgres-insert": raw_postgres_insert, "raw-scan": raw_scan,
    "rebuild-by-pages": rebuild_by_pages, "report": report,
    "tlog-verify": tlog_verify, "baseline-sha256": baseline_sha256, "web-pages": web_pages, "ledger-size": ledger_size,
    "report-at-position": report_at_position, "sign-batch": sign_batches, "check-batch": check_batches,
    "mirror": mirror, "tiles-http": tiles_http,
}


def _measure(name: str, *args: str) -> dict[str, Any]:
    """Run one measurement in a fresh process and return what it printed."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench", "one", name, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


CLEAR_CAP = 200_000
"""The clear paths (pydantic decoding page by page) are measured up to this many events; they would take minutes beyond."""

RATIOS = {
    "demo-write": ("raw-insert", "raw-copy", "baseline-insert"), "ledger-write": ("raw-insert", "raw-copy", "baseline-insert"),
    "import": ("raw-insert", "raw-copy"), "baseline-insert": ("raw-insert", "raw-copy"),
    "rebuild": ("raw-scan-json", "raw-scan-orjson"), "rebuild-by-pages": ("raw-scan-json",), "baseline-read": ("raw-scan-json",),
    "raw-scan-json": ("raw-scan-orjson",), "raw-executemany": ("raw-copy",),
    "kafka-relay": ("kafka-raw-produce",), "kafka-consume": ("kafka-raw-consume",), "tlog-verify": ("baseline-sha256",),
    "sign-batch": ("baseline-sha256",), "check-batch": ("baseline-sha256",), "mirror": ("tiles-http",),
}
"""Each measure and the baselines (same store, same run) it is compared with."""


def targets(r: dict[str, Any], by_name: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Whether a row meets the issue's targets (the ones that depend on size say at which size they apply)."""
    notes = []

    def share(base_name: str, at_least: float) -> None:
        base = by_name.get((base_name, r["store"]))
        if base and base["events_per_s"]:
            notes.append(f"≥{at_least:g} of {base_name} {'met' if r['events_per_s'] >= at_least * base['events_per_s'] else 'MISSED'}")

    if r["name"] == "rebuild":
        notes.append(f"≥150k/s {'met' if r['events_per_s'] >= 150_000 else 'MISSED'}")
        share("raw-scan-json", 0.5)
    if r["name"] == "import":
        notes.append(f"≥30k/s {'met' if r['events_per_s'] >= 30_000 else 'MISSED'}")
    if r["name"] == "ledger-write":
        notes.append(f"≥20k/s {'met' if r['events_per_s'] >= 20_000 else 'MISSED'}")
    if r["name"] == "tlog-verify":
        share("baseline-sha256", 0.25)
    if r["name"] == "kafka-consume":
        notes.append(f"≥15k/s {'met' if r['events_per_s'] >= 15_000 else 'MISSED'}")
        share("kafka-raw-consume", 0.3)
    if r["name"] == "kafka-lag" and "lag_p99_ms" in r:
        notes.append(f"p99 <500 ms {'met' if r['lag_p99_ms'] < 500 else 'MISSED'}")
    if r["name"] in ("rebuild", "import", "report-impact", "report-as-of", "tlog-verify", "mirror"):
        notes.append(f"<250 MiB {'met' if r['peak_mib'] < 250 else 'MISSED'}")
    if r["name"] == "report-impact":
        notes.append(f"<5 s {'met' if r['seconds'] < 5 else 'MISSED'}")
    if r["name"] == "report-as-of":
        notes.append(f"<10 s {'met' if r['seconds'] < 10 else 'MISSED'}")
    if r["name"] == "web-pages":
        first = sum(1 for page in r["pages"] if page["first_ms"] >= 1000 and not page.get("download"))
        warm = sum(1 for page in r["pages"] if page["warm_ms"] >= 200 and not page.get("download"))
        notes.append(f"every page <1 s first, <200 ms warm: {'met' if not first and not warm else 'MISSED'} "
                     f"({first} of {len(r['pages'])} over 1 s on first request, {warm} over 200 ms warm; downloads apart)")
    return ", ".join(notes)


def table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results with their ratios to their baselines and their targets, as printed and written."""
    by_name = {(r["name"], r["store"]): r for r in results}
    rows = []
    for r in results:
        ratios = []
        for base_name in RATIOS.get(r["name"], ()):
            base = by_name.get((base_name, r["store"]))
            if base and base["events_per_s"]:
                ratios.append(f"{r['events_per_s'] / base['events_per_s']:.2f}x {base_name}")
        if r["name"] == "check-batch":
            ratios.append(f"each event on its own {r['each_events_per_s']:,}/s")
        if r["name"] == "kafka-lag":
            ratios.append(f"lag p50 {r['lag_p50_ms']} ms, p99 {r['lag_p99_ms']} ms, {r['unseen']} unseen after 60 s")
        rows.append({**r, "ratios": ratios, "targets": targets(r, by_name)})
    return rows


def markdown(rows: list[dict[str, Any]], heading: str, command: str) -> str:
    lines = [f"### {heading}", "", f"`{command}`", "",
             "| measure | store | events | seconds | events/s | peak MiB | ratios | targets |", "|---|---|--:|--:|--:|--:|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['store']} | {r['events']:,} | {r['seconds']} | {r['events_per_s']:,} | {r['peak_mib']} | "
                     f"{'; '.join(r['ratios'])} | {r['targets']} |")
    for r in rows:
        if r["name"] == "web-pages":
            lines += ["", f"`ledger serve` on {r['store']}, {r['events']:,} events (tree caught up first in {r['tree_seconds']} s; "
                      f"server peak {r['peak_mib']} MiB; warm = median of {PAGE_REPEATS})", "",
                      "| page | address | first ms | warm ms |", "|---|---|--:|--:|"]
            lines += [f"| {page['page']} | `{page['path']}` | {page['first_ms']} | {page['warm_ms']} |" for page in r["pages"]]
    return "\n".join(lines) + "\n"


def _ratio(new: float, old: float) -> str:
    return f"{new / old:.2f}x" if old and new else "-"


def changes(rows: list[dict[str, Any]], earlier: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's change against the same measure and store of an earlier result: events/s and peak memory then and now,
    and now / then; a row only one of them holds is marked. Browser pages are compared page by page (first and warm ms)."""
    def keyed(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for r in results:
            found[(r["name"], r["store"])] = r
            for page in r.get("pages", []):
                found[(f"{r['name']}: {page['page']}", r["store"])] = {"page": page}
        return found

    now, then = keyed(rows), keyed(earlier)
    compared = []
    for key in [*now, *(k for k in then if k not in now)]:
        new, old = now.get(key), then.get(key)
        row: dict[str, Any] = {"name": key[0], "store": key[1], "only": "now" if old is None else "then" if new is None else ""}
        if new is not None and old is not None and "page" in new:
            for what in ("first_ms", "warm_ms"):
                row[what] = (old["page"][what], new["page"][what], _ratio(new["page"][what], old["page"][what]))
        elif new is not None and old is not None:
            row["events"] = (old["events"], new["events"])
            row["events_per_s"] = (old["events_per_s"], new["events_per_s"], _ratio(new["events_per_s"], old["events_per_s"]))
            row["peak_mib"] = (old["peak_mib"], new["peak_mib"], _ratio(new["peak_mib"], old["peak_mib"]))
        compared.append(row)
    return compared


def changes_markdown(compared: list[dict[str, Any]], earlier: str) -> str:
    """The changes against `earlier` (its file name and heading) as a table: then → now (now / then)."""
    def cell(values: tuple[Any, ...] | None) -> str:
        if values is None:
            return ""
        return f"{values[0]:,} → {values[1]:,} ({values[2]})" if len(values) == 3 else (
            f"{values[1]:,}" if values[0] == values[1] else f"{values[0]:,} → {values[1]:,}")

    lines = [f"### Change against {earlier}", "", "now / then: above 1x is faster for events/s, more memory for peak MiB, slower for ms", "",
             "| measure | store | events | events/s | peak MiB | first ms | warm ms |", "|---|---|--:|--:|--:|--:|--:|"]
    for c in compared:
        if c["only"]:
            lines.append(f"| {c['name']} | {c['store']} | only {c['only']} | | | | |")
            continue
        lines.append(f"| {c['name']} | {c['store']} | {cell(c.get('events'))} | {cell(c.get('events_per_s'))} | {cell(c.get('peak_mib'))} | "
                     f"{cell(c.get('first_ms'))} | {cell(c.get('warm_ms'))} |")
    return "\n".join(lines) + "\n"


def compare(new_path: Path, old_path: Path) -> str:
    """The changes of the result file `new_path` against `old_path`, also written into the markdown result beside it."""
    new, old = json.loads(new_path.read_text()), json.loads(old_path.read_text())
    text = changes_markdown(changes(new["results"], old["results"]), f"`{old_path.name}` ({old['heading']})")
    new_path.with_suffix(".md").write_text(markdown(new["results"], new["heading"], new["command"]) + "\n" + text)
    return text


def _signing_key() -> None:
    """Every write of a run signs with one writer's key, this run's own unless $LEDGER_SIGNING_KEY names one (measured
    processes inherit it): the first write on each empty ledger authorizes it."""
    if os.environ.get("LEDGER_SIGNING_KEY"):
        return
    from transparency.note import Signer

    path = Path(tempfile.mkdtemp(prefix="bench-key-")) / "benchmark.key"
    path.write_text(Signer.generate("benchmark").encode() + "\n", encoding="utf-8")
    os.environ["LEDGER_SIGNING_KEY"] = str(path)


def main() -> None:
    _signing_key()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every measurement and print a table")
    run.add_argument("--scale", type=float, default=1.0, help="demo scale (1 = the real platform); ignored with --size")
    run.add_argument("--size", type=int, help="write this many events with the streaming generator instead of the demo (e.g. 62527, 1000000)")
    run.add_argument("--seed", type=int, default=2024, help="demo seed")
    run.add_argument("--postgres", help="postgresql:// URL to measure as well (default: $LEDGER_TEST_PG_URL if set)")
    run.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    run.add_argument("--kafka", help="Kafka bootstrap HOST:PORT to measure relay and consumer as well (default: $LEDGER_TEST_KAFKA if set)")
    run.add_argument("--no-kafka", action="store_true", help="skip the Kafka measurements")
    run.add_argument("--lag-seconds", type=float, default=20, help="how long the writer appends during the lag measurement")
    run.add_argument("--kafka-only", action="store_true", help="write the demo on PostgreSQL only and measure the Kafka pipeline (skip SQLite)")
    run.add_argument("--results", default="bench/results", help="folder for the <date>-<size>.json and .md results")
    run.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    run.add_argument("--no-pages", action="store_true", help="skip the browser view's page times")
    run.add_argument("--no-write-baselines", action="store_true", help="skip the bare insert baselines (baseline-insert, raw-insert, "
                     "raw-copy, raw-executemany): with --written, to measure the reads of a large ledger whose writing is quoted")
    run.add_argument("--compare", metavar="OLD.json", type=Path, help="print each row's change against an earlier result file, and write it "
                     "into the markdown result too")
    run.add_argument("--written", metavar="URL[=RESULT]", help="measure the ledger already written at URL (e.g. by `python -m benchmarks.bench "
                     "one ledger-write|import URL SIZE SEED > RESULT`, whose printed RESULT is then quoted as its row) instead of writing one")
    one = sub.add_parser("one", help="one measurement (internal)")
    one.add_argument("name", choices=sorted(MEASURES))
    one.add_argument("args", nargs="*")
    against = sub.add_parser("compare", help="print each row's change in a result file against an earlier one, and write it into its markdown")
    against.add_argument("new", metavar="NEW.json", type=Path)
    against.add_argument("old", metavar="OLD.json", type=Path)
    options = parser.parse_args()
    if options.command == "compare":
        print(compare(options.new, options.old), end="")
        return
    if options.command == "one":
        measure = MEASURES[options.name]
        args: list[Any] = list(options.args)
        if options.name == "demo-write":
            args = [args[0], float(args[1]), int(args[2])]
        print(json.dumps(measure(*args)))
        return
    if options.compare is not None and not options.compare.is_file():
        parser.error(f"--compare: {str(options.compare)!r}: no such result file")

    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    urls = [] if options.kafka_only else [f"sqlite:///{folder / 'bench.db'}"]
    postgres = None if options.no_postgres else (options.postgres or os.environ.get("LEDGER_TEST_PG_URL"))
    written: dict[str, dict[str, Any]] = {}
    if options.written:
        # A ledger written earlier by `python -m benchmarks.bench one ledger-write URL SIZE SEED`: measured where it is.
        url, result = options.written.split("=", 1) if "=" in options.written else (options.written, "")
        urls, postgres = [url], None if url.startswith("sqlite") else postgres
        if result:
            written[url] = json.loads(Path(result).read_text().strip().splitlines()[-1])

    schemas: list[str] = []

    def schema_url() -> str:
        schemas.append(f"bench_{uuid.uuid4().hex[:8]}")
        return f"{postgres}?schema={schemas[-1]}"

    if postgres and not options.written:
        urls.append(schema_url())
    results = []
    size = options.size
    for url in urls:
        store = _store(url)
        if url in written:
            results.append(written[url])
        elif options.written:
            results.append(_measure("ledger-size", url))
        elif size is None:
            results.append(_measure("demo-write", url, str(options.scale), str(options.seed)))
        else:
            results.append(_measure("ledger-write", url, str(size), str(options.seed)))
        if options.kafka_only:
            continue
        events = results[-1]["events"]
        if not options.no_write_baselines:
            base_url = f"sqlite:///{folder / 'baseline.db'}" if store == "sqlite" else schema_url()
            results.append(_measure("baseline-insert", url, base_url))
            if store == "sqlite":
                results.append(_measure("raw-sqlite-insert", url, str(folder / "raw.db")))
            else:
                results.append(_measure("raw-postgres-insert", url, schema_url(), "copy"))
                results.append(_measure("raw-postgres-insert", url, schema_url(), "executemany"))
        import_url = f"sqlite:///{folder / 'import.db'}" if store == "sqlite" else schema_url()
        if written.get(url, {}).get("name") != "import":  # a ledger written by an import has measured it already
            results.append(_measure("import", import_url, str(events), str(options.seed)))
        results.append(_measure("raw-scan", url, "json"))
        results.append(_measure("raw-scan", url, "orjson"))
        if events <= CLEAR_CAP:
            results.append(_measure("baseline-read", url))
            results.append(_measure("rebuild-by-pages", url))
        results.append(_measure("rebuild", url))
        results.append(_measure("tlog-verify", url))
        results.append(_measure("baseline-sha256", url))
        results.append(_measure("sign-batch", url))
        results.append(_measure("check-batch", url))
        results.append(_measure("report", url, "now"))
        results.append(_measure("report", url, "middle"))
        if not options.no_pages:
            results.append(_measure("web-pages", url))
            results.append(_measure("mirror", url))
            results.append(_measure("tiles-http", url))
    server = None if options.no_kafka else (options.kafka or os.environ.get("LEDGER_TEST_KAFKA"))
    if server and postgres:
        topic = f"bench.{uuid.uuid4().hex[:8]}"
        relayed = _measure("kafka-relay", urls[-1], server, topic)
        results.append(relayed)
        read_model = schema_url()
        results.append(_measure("kafka-consume", read_model, server, topic, str(relayed["events"])))
        raw_topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
        results.append(_measure("kafka-raw-produce", urls[-1], server, raw_topic))
        results.append(_measure("kafka-raw-consume", server, raw_topic, str(relayed["events"])))
        results.append(_measure("kafka-lag", schema_url(), schema_url(), server, f"bench.lag.{uuid.uuid4().hex[:8]}", str(options.lag_seconds)))
    if postgres and schemas:
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(postgres, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
    shutil.rmtree(folder, ignore_errors=True)
    rows = table(results)
    if options.json:
        for r in rows:
            print(json.dumps(r))
    if options.written and results:
        size = results[0]["events"]
    what = f"{size} events" if size is not None else f"demo scale {options.scale}"
    heading = f"{what}, seed {options.seed}, python {sys.version.split()[0]}, {os.cpu_count()} cores"
    command = "scripts/benchmark " + " ".join(sys.argv[2:])
    if not options.json:
        print(heading)
        print(f"{'measure':17} {'store':10} {'events':>9} {'seconds':>8} {'events/s':>9} {'peak MiB':>9}  ratios; targets")
        for r in rows:
            print(f"{r['name']:17} {r['store']:10} {r['events']:>9} {r['seconds']:>8} {r['events_per_s']:>9} {r['peak_mib']:>9}  "
                  f"{', '.join(r['ratios'])}{'; ' if r['ratios'] and r['targets'] else ''}{r['targets']}")
            for page in r.get("pages", []):
                print(f"  {page['page']:45} first {page['first_ms']:>9} ms  warm {page['warm_ms']:>9} ms  {page['path']}")
    out = Path(options.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{time.strftime('%Y-%m-%d', time.gmtime())}-{size if size is not None else f'scale{options.scale:g}'}"
    stem.with_suffix(".json").write_text(json.dumps({"heading": heading, "command": command, "results": rows}, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(rows, heading, command))
    if options.compare is not None:
        text = compare(stem.with_suffix(".json"), options.compare)
        if not options.json:
            print(text, end="")
    if not options.json:
        print(f"written: {stem}.json, {stem}.md")


if __name__ == "__main__":
    main()
