"""An import is read line by line and written chunk by chunk inside one transaction: all of it or nothing, in bounded memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.postgres import PostgresWriting
from adapters.sqlite import SQLiteWriting
from cli.main import ledger
from service_layer import ledger as ledger_module
from tests.conftest import drop_schema, new_url, snapshot, stored_rows

CHUNK = 10
"""A chunk this small makes a file of a few dozen lines cross several chunks."""


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "CHUNK", CHUNK)


def run(*args: str, db: str) -> Result:
    return CliRunner().invoke(ledger, [*args, "--db", db], catch_exceptions=False)


def register(org: str, name: str | None = None, **extra: object) -> str:
    return json.dumps({
        "action": "org.register", "org": org, "name": name or f"Cluster {org}", "country": "IT", "region": "ITC4",
        "ecosystems": ["digital"], "year_established": 2012, "occurred_at": "2024-01-10", **extra,
    })


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def event_count(url: str) -> int:
    rows = stored_rows(url, {"sqlite": "SELECT count(*) FROM stored_events", "postgres": "SELECT count(*) FROM {schema}.ledger_events"})
    return int(rows[0][0])  # type: ignore[call-overload]


def seeded(url: str) -> None:
    done = run("org", "register", "--org", "ORG-SEED", "--name", "Seed", "--country", "AT", "--ecosystems", "tourism",
               "--year-established", "1999", "--at", "2024-01-02", db=url)
    assert done.exit_code == 0, done.output


ORGS = [register(f"ORG-CHUNK-{i:04d}") for i in range(35)]


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (json.dumps({"action": "org.publish", "org": "ORG-NOWHERE", "occurred_at": "2024-01-11"}),
         "line 36: unknown cluster organisation: 'ORG-NOWHERE'"),
        # A rule broken only against the state the file's first chunk creates.
        (register("ORG-CHUNK-0000", name="Another name"), "line 36: cluster organisation 'ORG-CHUNK-0000' already exists"),
    ],
)
def test_a_bad_last_line_after_several_chunks_leaves_the_store_unchanged(db_url: str, tmp_path: Path, last: str, expected: str) -> None:
    seeded(db_url)
    before, rows_before = snapshot(db_url), event_count(db_url)
    result = run("import", str(write(tmp_path / "bad-end.jsonl", [*ORGS, last])), db=db_url)
    assert result.exit_code == 1
    assert f"error: {expected}" in result.output
    assert "1 bad line; nothing was written" in result.output
    assert "Traceback" not in result.output
    assert event_count(db_url) == rows_before
    assert snapshot(db_url) == before


def test_a_line_needing_a_record_created_chunks_earlier_is_imported(db_url: str, tmp_path: Path) -> None:
    later = [
        json.dumps({"action": "org.publish", "org": "ORG-CHUNK-0000", "occurred_at": "2024-02-01"}),
        json.dumps({"action": "org.update", "org": "ORG-CHUNK-0001", "members": {"smes": 12}, "occurred_at": "2024-02-02"}),
        json.dumps({"action": "person.register", "person": "P-c0ffee", "name": "Ann", "email": "ann@example.org", "occurred_at": "2024-02-03"}),
    ]
    result = run("import", str(write(tmp_path / "depends.jsonl", [*ORGS, *later])), db=db_url)
    assert result.exit_code == 0, result.output
    assert "imported 38 actions" in result.output and "38 events written, 0 already recorded" in result.output
    assert "ClusterOrganisation.Published" in run("history", "ORG-CHUNK-0000", db=db_url).output
    assert "ClusterOrganisation.Updated" in run("history", "ORG-CHUNK-0001", db=db_url).output
    assert event_count(db_url) == 39  # and the test writer's authorization, first


def test_a_reimport_across_chunks_says_every_line_is_already_recorded(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path / "orgs.jsonl", ORGS)
    assert "35 events written, 0 already recorded" in run("import", str(path), db=db_url).output
    before = snapshot(db_url)
    again = run("import", str(path), db=db_url)
    assert again.exit_code == 0, again.output
    assert "imported 35 actions" in again.output and "0 events written, 35 already recorded" in again.output
    assert snapshot(db_url) == before


def test_a_line_repeated_chunks_later_in_one_file_is_recorded_once(db_url: str, tmp_path: Path) -> None:
    result = run("import", str(write(tmp_path / "twice.jsonl", [*ORGS, ORGS[0]])), db=db_url)
    assert result.exit_code == 0, result.output
    assert "35 events written, 1 already recorded" in result.output


def test_a_key_reused_chunks_later_for_another_action_is_refused(db_url: str, tmp_path: Path) -> None:
    lines = [register("ORG-KEYED-1", key="K1"), *ORGS, register("ORG-KEYED-1", name="Other", key="K1")]
    result = run("import", str(write(tmp_path / "keys.jsonl", lines)), db=db_url)
    assert result.exit_code == 1
    assert "error: line 37: key: 'K1': was already used for a different action" in result.output
    assert event_count(db_url) == 0


def test_no_write_holds_more_than_one_chunk(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    for session in (SQLiteWriting, PostgresWriting):
        def counted(self: object, events: list[object], *rest: object, _write: object = session.write) -> object:
            sizes.append(len(events))
            return _write(self, events, *rest)  # type: ignore[operator]

        monkeypatch.setattr(session, "write", counted)
    result = run("import", str(write(tmp_path / "orgs.jsonl", ORGS)), db=db_url)
    assert result.exit_code == 0, result.output
    assert sizes == [11, 10, 10, 5]  # the first chunk begins with the test writer's authorization


def _peak_bytes(path: Path, url: str) -> int:
    tracemalloc.start()
    try:
        result = run("import", str(path), db=url)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert result.exit_code == 0, result.output


def test_the_memory_an_import_needs_does_not_grow_with_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole file held at once (as before) needs about four times more for four times the lines.
    monkeypatch.setattr(ledger_module, "CHUNK", 200)
    monkeypatch.setattr(ledger_module, "CARRIED", 100)
    url = new_url("sqlite", tmp_path)
    run("import", str(write(tmp_path / "warm.jsonl", [register("ORG-WARM")])), db=url)  # tables, NUTS data and caches
    small = _peak_bytes(write(tmp_path / "small.jsonl", [register(f"ORG-S-{i:05d}") for i in range(1_000)]), url)
    large = _peak_bytes(write(tmp_path / "large.jsonl", [register(f"ORG-L-{i:05d}") for i in range(4_000)]), url)
    print(f"peak of 1,000 lines {small / 1e6:.1f} MB, of 4,000 lines {large / 1e6:.1f} MB")
    assert large < 1.6 * small, (small, large)


def test_an_import_that_cannot_get_the_postgres_lock_in_time_is_refused_in_one_line(tmp_path: Path) -> None:
    import psycopg
    from psycopg.sql import SQL, Identifier

    url = new_url("postgres", tmp_path)
    try:
        seeded(url)
        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base) as holder:
            holder.execute(SQL("LOCK TABLE {}.{} IN EXCLUSIVE MODE").format(Identifier(schema), Identifier("ledger_events")))
            result = CliRunner().invoke(ledger, ["import", str(write(tmp_path / "orgs.jsonl", ORGS)), "--db", f"{url}&lock_timeout=1"])
            holder.rollback()
        assert result.exit_code == 1
        assert result.output.splitlines() == [
            "Error: db: another write held the ledger for more than 1 s; nothing was written, run the command again"
        ]
        assert event_count(url) == 2  # what was seeded: the test writer's authorization and one event
    finally:
        drop_schema(url)
