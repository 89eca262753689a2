"""The rebuild on several processes gives the same rows and snapshots, byte for byte, as the clear page-by-page rebuild and
the one-process bulk rebuild: on demo histories and golden ledgers; it refuses what they refuse; small ledgers fold in one process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import bootstrap
from domain.errors import UnreplayableEvent
from projections import parallel, runner
from service_layer.demo import DemoHistory, write_demo
from tests.integration.test_golden_ledgers import LEDGERS, golden_on
from tests.integration.tampering import tamper
from tests.integration.test_replay_survives import CASES, imported

EVERY = 37
"""Positions between snapshots: small, so every history has several."""


def rebuilt(url: str, every: int = EVERY, **options: Any) -> dict[str, list[Any]]:
    """The rows and snapshots (every `every` positions) of the clear rebuild, the one-process bulk rebuild and the parallel
    one on 2 and 3 workers."""
    app = bootstrap.build_ledger(url)
    store = bootstrap.build_projection_store(url)
    try:
        counts = {
            "clear": runner.rebuild_by_pages(app.recorder, app.mapper, store, projection="clear", snapshot_every=every, **options),
            "bulk": runner.rebuild_in_bulk(app.recorder, store, projection="bulk", snapshot_every=every, **options),
            "two": parallel.rebuild(app.recorder, store, projection="two", workers=2, snapshot_every=every, **options),
            "three": parallel.rebuild(app.recorder, store, projection="three", workers=3, snapshot_every=every, chunk=29, **options),
        }
        assert len(set(counts.values())) == 1, counts
        last = options.get("stop") or app.recorder.max_notification_id()
        assert {store.position(name, runner.platform.FOLD_VERSION) for name in counts} == {last}
        return {name: [store.raw_rows(name), store.raw_snapshots(name), counts[name]] for name in counts}
    finally:
        store.close()
        app.close()


def assert_all_equal(found: dict[str, list[Any]]) -> None:
    rows, snapshots, applied = found["clear"]
    assert rows and snapshots and applied
    for name in ("bulk", "two", "three"):
        assert found[name][0] == rows, name
        assert found[name][1] == snapshots, name


def test_the_parallel_rebuild_equals_the_clear_one_on_a_demo_history(db_url: str) -> None:
    demo = DemoHistory(seed=7, scale=0.02)
    app = bootstrap.build_ledger(db_url, clock=demo.clock)
    write_demo(app, demo)
    app.close()
    found = rebuilt(db_url)
    assert_all_equal(found)
    assert len(found["clear"][0]) > 100 and found["clear"][2] > 500


def test_the_parallel_rebuild_stops_where_asked(db_url: str) -> None:
    demo = DemoHistory(seed=3, scale=0.008)
    app = bootstrap.build_ledger(db_url, clock=demo.clock)
    write_demo(app, demo)
    half = (app.recorder.max_notification_id() or 0) // 2
    app.close()
    found = rebuilt(db_url, stop=half)
    assert_all_equal(found)
    assert found["two"][2] == half


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("db", LEDGERS, ids=lambda db: f"{db.parent.name}/{db.stem}")
def test_the_parallel_rebuild_equals_the_clear_one_on_every_golden_ledger(db: Path, store: str, tmp_path: Path) -> None:
    with golden_on(db, store, tmp_path) as url:
        assert_all_equal(rebuilt(url, every=4))  # golden ledgers are short: a snapshot every few positions


@pytest.mark.parametrize("case", CASES)
def test_the_parallel_rebuild_refuses_the_event_the_one_process_rebuild_refuses(db_url: str, case: str) -> None:
    imported(db_url)
    position = CASES[case](db_url)
    app = bootstrap.build_ledger(db_url)
    store = bootstrap.build_projection_store(db_url)
    try:
        with pytest.raises(UnreplayableEvent) as alone:
            runner.rebuild_in_bulk(app.recorder, store, projection="alone")
        with pytest.raises(UnreplayableEvent) as side_by_side:
            parallel.rebuild(app.recorder, store, projection="side_by_side", workers=2)
    finally:
        store.close()
        app.close()
    assert type(side_by_side.value) is type(alone.value)
    assert str(side_by_side.value) == str(alone.value) and f"position {position}" in str(alone.value)


def test_a_small_ledger_folds_in_one_process_and_a_long_one_on_every_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    demo = DemoHistory(seed=2, scale=0.008)
    app = bootstrap.build_ledger(url, clock=demo.clock)
    write_demo(app, demo)
    store = bootstrap.build_projection_store(url)
    ran: list[int] = []
    on_cores = parallel.rebuild_in_parallel

    def counted(*args: Any, workers: int, **options: Any) -> int:
        ran.append(workers)
        return on_cores(*args, workers=workers, **options)

    monkeypatch.setattr(parallel, "rebuild_in_parallel", counted)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1})
    try:
        applied = runner.rebuild(app.recorder, app.mapper, store, projection="small")
        assert ran == [] and applied == app.recorder.max_notification_id() < parallel.PARALLEL_FROM
        monkeypatch.setattr(parallel, "PARALLEL_FROM", applied)
        assert runner.rebuild(app.recorder, app.mapper, store, projection="long") == applied
        assert ran == [2]
        assert store.raw_rows("long") == store.raw_rows("small") != []
    finally:
        store.close()
        app.close()


def test_an_event_edited_to_no_id_at_all_is_met_as_the_one_process_rebuild_meets_it(tmp_path: Path) -> None:
    # No range of ids holds a NULL id (only SQLite's column can be edited to one): such a ledger folds in one process.
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    imported(url)
    tamper(url, "UPDATE {events} SET originator_id = NULL WHERE {id} = 5")
    app = bootstrap.build_ledger(url)
    store = bootstrap.build_projection_store(url)
    try:
        with pytest.raises(Exception) as alone:
            runner.rebuild_in_bulk(app.recorder, store, projection="alone")
        with pytest.raises(Exception) as side_by_side:
            parallel.rebuild(app.recorder, store, projection="side_by_side", workers=2)
    finally:
        store.close()
        app.close()
    assert type(side_by_side.value) is type(alone.value) and str(side_by_side.value) == str(alone.value)


def test_a_failing_write_or_worker_stops_every_worker_and_reaches_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing
    import sqlite3

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    demo = DemoHistory(seed=2, scale=0.008)
    app = bootstrap.build_ledger(url, clock=demo.clock)
    write_demo(app, demo)
    store = bootstrap.build_projection_store(url)
    full = sqlite3.OperationalError("database or disk is full")

    def no_room(projection: str, rows: Any) -> None:
        raise full

    try:
        with monkeypatch.context() as patched:
            patched.setattr(store, "put_rows", no_room)
            with pytest.raises(sqlite3.OperationalError) as failed:
                parallel.rebuild(app.recorder, store, projection="full", workers=2, chunk=10)
            assert failed.value is full
        on_cores = runner.rebuild_in_bulk

        def broken(*args: Any, keys: Any = (None, None), **options: Any) -> int:
            if keys[0] is not None:  # the second range's worker
                raise ValueError("a fault of the fold")
            return on_cores(*args, keys=keys, **options)

        monkeypatch.setattr(runner, "rebuild_in_bulk", broken)
        with pytest.raises(RuntimeError, match="a rebuild worker failed:(.|\n)*ValueError: a fault of the fold"):
            parallel.rebuild(app.recorder, store, projection="broken", workers=2)
        assert multiprocessing.active_children() == []
        assert store.position("broken", runner.platform.FOLD_VERSION) == 0
    finally:
        store.close()
        app.close()
