"""The fast path of `verify` confirms exactly the histories the careful path finds nothing in, with the same counts: on demo
histories, every golden ledger and segments split across processes; anything tampered with it leaves to the careful path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import bootstrap
from service_layer.demo import DemoHistory, write_demo
from tests.conftest import drop_schema
from tests.integration.tampering import history, tamper
from tests.integration.test_golden_ledgers import LEDGERS, replay_into_postgres
from transparency import audit, log, sweep
from transparency.leaf import recorded_time

PAGES = (audit.PAGE, 3)
"""The page verify reads, and one so small that even a golden ledger is read as several segments, by two processes."""


def both_paths(url: str, page: int, checkpoint: bool = True) -> tuple[audit.Report, audit.Report, sweep.Held | None, int]:
    """The careful report, the report as `verify` gives it, what the fast path confirmed, and the events it said it read."""
    store = bootstrap.build_tree_store(url)
    try:
        cp = log.checkpoint(store) if checkpoint else None
        careful = audit.verify(store, cp, fast=False)
        read: list[int] = []
        held = sweep.confirm(store, cp, page=page, progress=read.append)
        told: list[int] = []
        given = audit.verify(store, cp, progress=told.append)
        assert sum(told) == careful.events  # told once, even where the careful path reads the history again
        return careful, given, held, sum(read)
    finally:
        store.close()


def assert_confirmed(url: str, page: int) -> audit.Report:
    careful, given, held, read = both_paths(url, page)
    assert careful.holds, [f.line() for f in careful.findings]
    assert held == sweep.Held(careful.events, careful.tree_size, careful.predating, careful.predating_upto)
    assert given == careful and read == careful.events
    return careful


@pytest.mark.parametrize("page", PAGES)
def test_the_fast_path_confirms_a_demo_history_with_the_careful_counts(db_url: str, page: int) -> None:
    demo = DemoHistory(seed=11, scale=0.02)
    app = bootstrap.build_ledger(db_url, clock=demo.clock)
    write_demo(app, demo)
    app.close()
    report = assert_confirmed(db_url, page)
    assert report.events > 500 and report.predating == 0  # signed from its first writer on


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("db", LEDGERS, ids=lambda db: f"{db.parent.name}/{db.stem}")
def test_the_fast_path_confirms_every_golden_ledger_with_the_careful_counts(db: Path, store: str, page: int, tmp_path: Path) -> None:
    if store == "sqlite":
        copy = tmp_path / db.name
        shutil.copyfile(db, copy)
        url = f"sqlite:///{copy}"
    else:
        url = replay_into_postgres(db)
    try:
        report = assert_confirmed(url, page)
    finally:
        if store == "postgres":
            drop_schema(url)
    assert report.events > 0


def test_an_empty_ledger_is_confirmed_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    bootstrap.build_ledger(url).close()
    assert both_paths(url, 3)[2] == sweep.Held(0, 0, 0, 0)


def sqlite_or_postgres(url: str, sqlite: str, postgres: str) -> str:
    return sqlite if url.startswith("sqlite") else postgres


def tampering(case: str, url: str) -> list[str]:
    """Statements that edit a history of 19 events as the database's owner can (see `tamper`)."""
    on = sqlite_or_postgres
    zero = on(url, "zeroblob(32)", "'\\x00'::bytea")
    return {
        "a payload byte": ["UPDATE {events} SET state = " + on(url, "CAST(replace(CAST(state AS TEXT), 'actor', 'actos') AS BLOB)",
                                                              "convert_to(replace(convert_from(state, 'UTF8'), 'actor', 'actos'), 'UTF8')")
                           + " WHERE {id} = 9"],
        "a signature block removed": ["UPDATE {events} SET state = " + on(
            url, "CAST(substr(CAST(state AS TEXT), 1, instr(CAST(state AS TEXT), ',\"signed\":') - 1) || '}}' AS BLOB)",
            "convert_to(split_part(convert_from(state, 'UTF8'), ',\"signed\":', 1) || '}}', 'UTF8')") + " WHERE {id} = 14"],
        "an event deleted": ["DELETE FROM {events} WHERE {id} = 10"],
        "an event inserted": [on(url, "INSERT INTO {events} (rowid, originator_id, originator_version, topic, state) "
                                      "SELECT 0, '00000000000040008000000000000000', 1, topic, state FROM {events} WHERE rowid = 1",
                                 "INSERT INTO {events} (notification_id, originator_id, originator_version, topic, state) "
                                 "SELECT 0, '00000000-0000-4000-8000-000000000000', 1, topic, state FROM {events} WHERE notification_id = 1")],
        "two events swapped": ["UPDATE {events} SET {id} = -1 WHERE {id} = 8", "UPDATE {events} SET {id} = 8 WHERE {id} = 12",
                               "UPDATE {events} SET {id} = 12 WHERE {id} = -1"],
        "a version": ["UPDATE {events} SET originator_version = 9 WHERE {id} = 11"],
        "a leaf hash": [f"UPDATE {{schema}}.tlog_leaves SET hash = {zero} WHERE leaf_index = 10"],
        "a node hash": [f"UPDATE {{schema}}.tlog_nodes SET hash = {zero} WHERE level = 2 AND node_index = 2"],
        "a node too many": [f"INSERT INTO {{schema}}.tlog_nodes (level, node_index, hash) VALUES (1, 40, {zero})"],
    }[case]


CASES = ["a payload byte", "a signature block removed", "an event deleted", "an event inserted", "two events swapped", "a version",
         "a leaf hash", "a node hash", "a node too many"]


@pytest.mark.parametrize("case", CASES)
def test_tampering_anywhere_is_left_to_the_careful_path(db_url: str, case: str) -> None:
    for _ in range(3):
        history(db_url)  # 19 events: the writer's authorization, then three batches of 6
    store = bootstrap.build_tree_store(db_url)
    log.catch_up(store)  # the tree records the history before anyone edits it
    store.close()
    tamper(db_url, *tampering(case, db_url))
    for page in PAGES:
        careful, given, held, _ = both_paths(db_url, page, checkpoint=False)
        assert held is None and not careful.holds
        assert given == careful


def test_a_checkpoint_the_history_does_not_match_is_left_to_the_careful_path(db_url: str) -> None:
    history(db_url)
    store = bootstrap.build_tree_store(db_url)
    try:
        cp = log.checkpoint(store)
        history(db_url)
        later = log.checkpoint(store)
        assert sweep.confirm(store, cp, page=3) is not None and sweep.confirm(store, later, page=3) is not None
        other = type(cp)(cp.origin, cp.size, later.root)
        longer = type(cp)(cp.origin, later.size + 1, later.root)
        for wrong in (other, longer):
            assert sweep.confirm(store, wrong, page=3) is None
            assert audit.verify(store, wrong) == audit.verify(store, wrong, fast=False) and not audit.verify(store, wrong).holds
    finally:
        store.close()


SIGNED_TAIL = ',"signed":{"by":"w","n":1,"i":0,"path":[],"sig":"x"}}'


@pytest.mark.parametrize("body", [
    '{"class_version":1,"timestamp":"2025-01-02T03:04:05.000006Z","name":"a"',
    '{"class_version":12,"timestamp":"2025-01-02T03:04:05Z","note":"{\\"timestamp\\":\\"1999-01-01\\"}"',
    '{"class_version":1,"timestamp":"2025-01-02T03:04:05Z","inner":{"timestamp":"1999-01-01"}',
    '{"class_version":1,"timestamp":"2025-01-02T03:04:05Z","timestamp":"1999-01-01"',
    '{"class_version":1,"timestamp":"2025-01-02T03:04:05Z","time\\u0073tamp":"1999-01-01"',
    '{"class_version":1,"timestamp":"2025\\u002d01-02T03:04:05Z"',
    '{"class_version":1,"timestamp":"2025-01-02T03:04:05Z","name":"Zoë \\"Z\\""',
    '{"class_version":1,"timestamp":5',
    '{"timestamp":"2025-01-02T03:04:05Z","class_version":1',
    '{"class_version":1,"name":"a","timestamp":"2025-01-02T03:04:05Z"',
])
def test_the_recorded_time_of_a_signed_payload_is_read_as_a_json_decoder_reads_it(body: str) -> None:
    state = (body + SIGNED_TAIL).encode()
    json.loads(state)  # each is JSON, as a writer's encoder writes it
    assert sweep._recorded(state, state.rfind(b',"signed":{')) == recorded_time(state).encode()
