"""Large writes to PostgreSQL finish, stay one atomic transaction, and never leave another writer hanging."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg.sql import SQL, Identifier

import bootstrap
from adapters.postgres import LedgerPostgresRecorder
from domain.inputs import LIMITS, MAX_ITEMS
from service_layer.importing import MAX_LINE
from tests.conftest import drop_schema, fresh_postgres_url

ROOT = Path(__file__).resolve().parents[2]
# Far above what a working write needs here, far below "never finishes".
IMPORT_DEADLINE = 120
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = fresh_postgres_url()
    bootstrap.build_ledger(url).close()  # tables exist before any writer starts
    yield url
    drop_schema(url)


def org_line(ref: str, name: str, sectors: list[str] | None = None) -> str:
    return json.dumps({
        "action": "org.register", "org": ref, "name": name, "country": "IT", "region": "ITC4", "sectors": sectors or [],
        "ecosystems": ["digital"], "year_established": 2012, "occurred_at": "2024-01-10",
    })


def widest_org_line(ref: str) -> str:
    """A registration as large as the text limits allow: the longest name and the most, longest sectors."""
    name = f"{ref} " + "N" * (LIMITS["name"] - len(ref) - 1)
    sectors = [f"{i:02d} " + "S" * (LIMITS["sector"] - 3) for i in range(MAX_ITEMS["sectors"])]
    return org_line(ref, name, sectors)


def write_lines(path: Path, lines: Iterator[str] | list[str]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
    return path


def ledger_cli(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Runs `ledger ARGS` in its own process; fails the test (instead of hanging) past `timeout` seconds."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        out = None
    if out is None:
        pytest.fail(f"`ledger {' '.join(args[:2])}` did not finish within {timeout} s", pytrace=False)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), time.monotonic() - started


def count_rows(url: str, table: str) -> int:
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn:
        row = conn.execute(SQL("SELECT count(*) FROM {}.{}").format(Identifier(schema), Identifier(table))).fetchone()
    assert row is not None
    return int(row[0])


def test_an_import_of_100000_lines_completes(pg_url: str, tmp_path: Path) -> None:
    lines = (org_line(f"ORG-BULK-{i:06d}", f"Cluster {i}") for i in range(100_000))
    # Most of its minute goes to checking each reference is new (one SELECT per line), not to the write.
    done, elapsed = ledger_cli("import", str(write_lines(tmp_path / "orgs.jsonl", lines)), "--db", pg_url, timeout=3 * IMPORT_DEADLINE)
    assert done.returncode == 0, done.stderr
    assert "100,000 events written" in done.stdout
    assert count_rows(pg_url, "ledger_events") == 100_001  # and the test writer's authorization
    print(f"100,000-line import: {elapsed:.1f} s")


def test_an_import_of_2000_lines_as_large_as_the_limits_allow_completes(pg_url: str, tmp_path: Path) -> None:
    # The hang was seen with 5 KB names; names now stop at 200 characters, so each line carries the most text allowed.
    lines = [widest_org_line(f"ORG-WIDE-{i:04d}") for i in range(2_000)]
    assert all(len(line) > 2_000 for line in lines)
    done, elapsed = ledger_cli("import", str(write_lines(tmp_path / "wide.jsonl", lines)), "--db", pg_url, timeout=IMPORT_DEADLINE)
    assert done.returncode == 0, done.stderr
    assert "2,000 events written" in done.stdout
    assert count_rows(pg_url, "ledger_events") == 2_001  # and the test writer's authorization
    print(f"2,000 widest-line import: {elapsed:.1f} s")


def test_one_line_with_an_8mb_name_is_refused_for_its_length_in_one_line(pg_url: str, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "huge.jsonl", [org_line("ORG-HUGE", "Cluster " + "N" * (8 << 20))])
    done, _ = ledger_cli("import", str(path), "--db", pg_url, timeout=IMPORT_DEADLINE)
    assert done.returncode == 1
    # Longer than a line may be: refused for its length before its name is read (tests/integration/test_long_lines.py).
    assert done.stderr.splitlines()[0] == f"error: line 1: longer than {MAX_LINE:,} bytes, the most a line may have; not read further"
    assert count_rows(pg_url, "ledger_events") == 0


def test_a_large_import_with_one_bad_line_at_the_end_writes_nothing(pg_url: str, tmp_path: Path) -> None:
    lines = [org_line(f"ORG-ALMOST-{i:05d}", f"{i} " + "N" * 190) for i in range(20_000)]
    lines.append(json.dumps({"action": "org.publish", "org": "ORG-NOWHERE", "occurred_at": "2024-01-11"}))
    done, _ = ledger_cli("import", str(write_lines(tmp_path / "bad-end.jsonl", lines)), "--db", pg_url, timeout=IMPORT_DEADLINE)
    assert done.returncode == 1
    assert "line 20001: unknown cluster organisation: 'ORG-NOWHERE'" in done.stderr
    assert "nothing was written" in done.stderr
    assert count_rows(pg_url, "ledger_events") == 0


def _write_with_a_taken_event_last(url: str, results: Any) -> None:
    app = bootstrap.build_ledger(url)
    try:
        recorder = app.recorder
        assert isinstance(recorder, LedgerPostgresRecorder)
        taken = StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="t", state=b"first")
        recorder.insert_events([taken])
        many = [StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="t", state=b"x" * 2_000) for _ in range(20_000)]
        people = [(f"PER-{i:05d}", f"Person {i}", f"p{i}@example.eu") for i in range(20_000)]
        try:
            recorder.insert_events([*many, taken], personal_data=people)
            results.put("written")
        except IntegrityError:
            results.put("refused")
    except Exception as error:  # reported to the test, which fails naming it
        results.put(repr(error))
    finally:
        app.close()


def test_a_write_the_database_refuses_at_its_last_event_leaves_nothing_behind(pg_url: str) -> None:
    results = SPAWN.Queue()
    writer = SPAWN.Process(target=_write_with_a_taken_event_last, args=(pg_url, results))
    writer.start()
    writer.join(timeout=IMPORT_DEADLINE)
    if writer.is_alive():
        writer.kill()
        pytest.fail(f"the write did not finish within {IMPORT_DEADLINE} s", pytrace=False)
    assert results.get(timeout=5) == "refused"
    assert count_rows(pg_url, "ledger_events") == 1
    assert count_rows(pg_url, "personal_data") == 0


def _hold_events_lock(url: str) -> psycopg.Connection[tuple[object, ...]]:
    base, _, schema = url.partition("?schema=")
    conn = psycopg.connect(base)
    conn.execute(SQL("LOCK TABLE {}.{} IN EXCLUSIVE MODE").format(Identifier(schema), Identifier("ledger_events")))
    return conn


def register_org_cli(url: str, ref: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    return ledger_cli(
        "org", "register", "--org", ref, "--name", f"Cluster {ref}", "--country", "IT", "--ecosystems", "digital",
        "--year-established", "2015", "--at", "2024-02-01", "--db", url, timeout=timeout,
    )


def test_a_writer_that_cannot_get_the_lock_in_time_is_refused_with_one_line(pg_url: str) -> None:
    holder = _hold_events_lock(pg_url)
    try:
        done, elapsed = register_org_cli(f"{pg_url}&lock_timeout=2", "ORG-LATE", timeout=60)
    finally:
        holder.rollback()
        holder.close()
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "Error: db: another write held the ledger for more than 2 s; nothing was written, run the command again"
    ]
    assert 2 <= elapsed < 20
    assert count_rows(pg_url, "ledger_events") == 0


def test_a_writer_that_gets_the_lock_within_the_timeout_is_served(pg_url: str) -> None:
    holder = _hold_events_lock(pg_url)
    waiter = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "org", "register", "--org", "ORG-PATIENT", "--name", "Patient", "--country", "IT",
         "--ecosystems", "digital", "--year-established", "2015", "--at", "2024-02-01", "--db", f"{pg_url}&lock_timeout=30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for_lock_waiter(pg_url)
    finally:
        holder.rollback()
        holder.close()
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert out.splitlines()[-1].startswith("recorded 1 event at position ")
    assert count_rows(pg_url, "ledger_events") == 2  # and the test writer's authorization, first


def _wait_for_lock_waiter(url: str, timeout: float = 30) -> None:
    """Returns once some backend waits for a lock on the ledger's database."""
    base, _, _ = url.partition("?schema=")
    deadline = time.monotonic() + timeout
    with psycopg.connect(base, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").fetchone():
                return
            time.sleep(0.05)
    pytest.fail("no writer ever waited for the events table", pytrace=False)


def _stall_notification_ids(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """Holds the notification id sequence, so a writer that has locked the events table waits inside its write."""
    base, _, schema = url.partition("?schema=")
    conn = psycopg.connect(base)
    sequence = conn.execute("SELECT pg_get_serial_sequence(%s, 'notification_id')", (f"{schema}.ledger_events",)).fetchone()
    assert sequence is not None
    schema_name, _, sequence_name = str(sequence[0]).partition(".")
    conn.execute(SQL("ALTER SEQUENCE {}.{} CACHE 1").format(Identifier(schema_name), Identifier(sequence_name)))
    return conn


def _events_locked_by_a_waiting_writer(url: str) -> bool:
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        return conn.execute(
            "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE n.nspname = %s AND c.relname = 'ledger_events' AND l.mode = 'ExclusiveLock' AND l.granted AND a.wait_event_type = 'Lock'",
            (schema,),
        ).fetchone() is not None


def test_a_second_writer_during_a_large_import_is_refused_within_the_lock_timeout(pg_url: str, tmp_path: Path) -> None:
    lines = [widest_org_line(f"ORG-BUSY-{i:04d}") for i in range(2_000)]
    path = write_lines(tmp_path / "busy.jsonl", lines)
    stall = _stall_notification_ids(pg_url)
    importer = subprocess.Popen([sys.executable, "-m", "cli.main", "import", str(path), "--db", pg_url],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + IMPORT_DEADLINE
        while not _events_locked_by_a_waiting_writer(pg_url):
            assert importer.poll() is None, importer.communicate()
            assert time.monotonic() < deadline, "the import never locked the events table"
            time.sleep(0.05)
        # The import now holds the events table in the middle of its write, as a long write would.
        done, elapsed = register_org_cli(f"{pg_url}&lock_timeout=2", "ORG-SECOND", timeout=60)
        stall.rollback()
        out, err = importer.communicate(timeout=IMPORT_DEADLINE)
    finally:
        stall.close()
        if importer.poll() is None:
            importer.kill()
            importer.communicate()
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "Error: db: another write held the ledger for more than 2 s; nothing was written, run the command again"
    ]
    assert 2 <= elapsed < 20
    assert importer.returncode == 0, err
    assert "2,000 events written" in out
    assert count_rows(pg_url, "ledger_events") == 2_001  # and the test writer's authorization
