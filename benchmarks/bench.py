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
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
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


def baseline_insert(source_url: str, url: str) -> dict[str, Any]:
    """Insert the source ledger's stored events into a bare recorder, batched by recorded time as the demo was."""
    import bootstrap
    from eventsourcing.persistence import InfrastructureFactory, StoredEvent
    from eventsourcing.utils import Environment

    source = bootstrap.build_ledger(source_url)
    notes = list(source.recorder.select_notifications(start=1, limit=10_000_000))
    batches: dict[bytes, list[StoredEvent]] = {}
    for n in notes:
        stamp = json.loads(n.state)["timestamp"].encode()
        batches.setdefault(stamp, []).append(StoredEvent(n.originator_id, n.originator_version, n.topic, n.state))
    source.close()
    env = {k: v for k, v in bootstrap.persistence_env(url).items() if k != "APPLICATION_RECORDER_TOPIC"}
    if "POSTGRES_SCHEMA" in env:
        import psycopg
        from psycopg.sql import SQL, Identifier

        with psycopg.connect(url.partition("?")[0], autocommit=True) as conn:
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(env["POSTGRES_SCHEMA"])))
    factory = InfrastructureFactory.construct(Environment("Baseline", env))
    recorder = factory.application_recorder()
    started = time.perf_counter()
    for batch in batches.values():
        recorder.insert_events(batch)
    seconds = time.perf_counter() - started
    factory.close()
    return _result("baseline-insert", _store(url), len(notes), seconds)


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
    return _result("rebuild", _store(url), applied, seconds)


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
    return _result("tlog-verify", _store(url), report.events, seconds)


def baseline_sha256(url: str) -> dict[str, Any]:
    """Plain SHA-256 over the same leaf bytes (read and encoded first, untimed), the floor under `tlog-verify`."""
    import hashlib

    import bootstrap
    from transparency.leaf import record_leaf
    from transparency.store import LOWEST

    store = bootstrap.build_tree_store(url)
    leaves = [record_leaf(r) for r in store.records(LOWEST, 10_000_000)]
    store.close()
    started = time.perf_counter()
    for leaf in leaves:
        hashlib.sha256(leaf).digest()
    seconds = time.perf_counter() - started
    return _result("baseline-sha256", _store(url), len(leaves), seconds)


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


def _store(url: str) -> str:
    return url.split(":", 1)[0]


MEASURES = {
    "demo-write": demo_write, "baseline-insert": baseline_insert, "baseline-read": baseline_read, "rebuild": rebuild,
    "kafka-relay": kafka_relay, "kafka-consume": kafka_consume, "kafka-raw-produce": kafka_raw_produce,
    "kafka-raw-consume": kafka_raw_consume, "kafka-lag": kafka_lag,
    "tlog-verify": tlog_verify, "baseline-sha256": baseline_sha256,
}


def _measure(name: str, *args: str) -> dict[str, Any]:
    """Run one measurement in a fresh process and return what it printed."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench", "one", name, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every measurement and print a table")
    run.add_argument("--scale", type=float, default=1.0, help="demo scale (1 = the real platform)")
    run.add_argument("--seed", type=int, default=2024, help="demo seed")
    run.add_argument("--postgres", help="postgresql:// URL to measure as well (default: $LEDGER_TEST_PG_URL if set)")
    run.add_argument("--kafka", help="Kafka bootstrap HOST:PORT to measure relay and consumer as well (default: $LEDGER_TEST_KAFKA if set)")
    run.add_argument("--lag-seconds", type=float, default=20, help="how long the writer appends during the lag measurement")
    run.add_argument("--kafka-only", action="store_true", help="write the demo on PostgreSQL only and measure the Kafka pipeline (skip SQLite)")
    run.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    one = sub.add_parser("one", help="one measurement (internal)")
    one.add_argument("name", choices=sorted(MEASURES))
    one.add_argument("args", nargs="*")
    options = parser.parse_args()
    if options.command == "one":
        measure = MEASURES[options.name]
        args: list[Any] = list(options.args)
        if options.name == "demo-write":
            args = [args[0], float(args[1]), int(args[2])]
        print(json.dumps(measure(*args)))
        return

    folder = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    urls = [] if options.kafka_only else [f"sqlite:///{folder / 'bench.db'}"]
    postgres = options.postgres or os.environ.get("LEDGER_TEST_PG_URL")
    if postgres:
        urls.append(f"{postgres}?schema=bench_{uuid.uuid4().hex[:8]}")
    results = []
    for url in urls:
        store = _store(url)
        results.append(_measure("demo-write", url, str(options.scale), str(options.seed)))
        if options.kafka_only:
            continue
        base_url = f"sqlite:///{folder / 'baseline.db'}" if store == "sqlite" else f"{postgres}?schema=bench_{uuid.uuid4().hex[:8]}"
        results.append(_measure("baseline-insert", url, base_url))
        results.append(_measure("baseline-read", url))
        results.append(_measure("rebuild", url))
        results.append(_measure("tlog-verify", url))
        results.append(_measure("baseline-sha256", url))
    server = options.kafka or os.environ.get("LEDGER_TEST_KAFKA")
    if server and postgres:
        topic = f"bench.{uuid.uuid4().hex[:8]}"
        relayed = _measure("kafka-relay", urls[-1], server, topic)
        results.append(relayed)
        read_model = f"{postgres}?schema=bench_{uuid.uuid4().hex[:8]}"
        results.append(_measure("kafka-consume", read_model, server, topic, str(relayed["events"])))
        raw_topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
        results.append(_measure("kafka-raw-produce", urls[-1], server, raw_topic))
        results.append(_measure("kafka-raw-consume", server, raw_topic, str(relayed["events"])))
        lag_store = f"{postgres}?schema=bench_{uuid.uuid4().hex[:8]}"
        lag_read_model = f"{postgres}?schema=bench_{uuid.uuid4().hex[:8]}"
        results.append(_measure("kafka-lag", lag_store, lag_read_model, server, f"bench.lag.{uuid.uuid4().hex[:8]}", str(options.lag_seconds)))
    if options.json:
        for r in results:
            print(json.dumps(r))
        return
    baselines = {("demo-write", r["store"]): r for r in results if r["name"] == "baseline-insert"}
    baselines.update({("rebuild", r["store"]): r for r in results if r["name"] == "baseline-read"})
    baselines.update({("kafka-relay", r["store"]): r for r in results if r["name"] == "kafka-raw-produce"})
    baselines.update({("kafka-consume", r["store"]): r for r in results if r["name"] == "kafka-raw-consume"})
    baselines.update({("tlog-verify", r["store"]): r for r in results if r["name"] == "baseline-sha256"})
    print(f"scale {options.scale}, seed {options.seed}, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"{'measure':16} {'store':10} {'events':>8} {'seconds':>8} {'events/s':>9} {'peak MiB':>9}  vs baseline")
    for r in results:
        base = baselines.get((r["name"], r["store"]))
        ratio = f"{r['events_per_s'] / base['events_per_s']:.2f}x of {base['name']}" if base and base["events_per_s"] else ""
        if r["name"] == "kafka-lag":
            ratio = f"lag p50 {r['lag_p50_ms']} ms, p99 {r['lag_p99_ms']} ms, {r['unseen']} unseen after 60 s"
        print(f"{r['name']:16} {r['store']:10} {r['events']:>8} {r['seconds']:>8} {r['events_per_s']:>9} {r['peak_mib']:>9}  {ratio}")


if __name__ == "__main__":
    main()
