"""The bulk rebuild gives the same rows, byte for byte, as the clear page-by-page rebuild: on demo histories and golden ledgers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bootstrap
from projections import runner
from projections.store import encode
from service_layer.demo import DemoHistory, write_demo
from tests.integration.test_golden_ledgers import LEDGERS, replay_into_postgres
from tests.conftest import drop_schema


def both_rebuilds(url: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
    app = bootstrap.build_ledger(url)
    store = bootstrap.build_projection_store(url)
    try:
        clear = runner.rebuild_by_pages(app.recorder, app.mapper, store, projection="platform_clear")
        fast = runner.rebuild_in_bulk(app.recorder, store, projection="platform_fast", chunk=37)
        assert fast == clear
        assert store.position("platform_fast", runner.platform.FOLD_VERSION) == app.recorder.max_notification_id()
        return store.raw_rows("platform_clear"), store.raw_rows("platform_fast"), clear
    finally:
        store.close()
        app.close()


def test_the_bulk_rebuild_equals_the_clear_one_on_a_demo_history(db_url: str) -> None:
    demo = DemoHistory(seed=7, scale=0.02)
    app = bootstrap.build_ledger(db_url, clock=demo.clock)
    write_demo(app, demo)
    app.close()
    clear, fast, applied = both_rebuilds(db_url)
    assert fast == clear
    assert len(clear) > 100 and applied > 500


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("db", LEDGERS, ids=lambda db: f"{db.parent.name}/{db.stem}")
def test_the_bulk_rebuild_equals_the_clear_one_on_every_golden_ledger(db: Path, store: str, tmp_path: Path) -> None:
    if store == "sqlite":
        copy = tmp_path / db.name
        shutil.copyfile(db, copy)
        url = f"sqlite:///{copy}"
    else:
        url = replay_into_postgres(db)
    try:
        clear, fast, _ = both_rebuilds(url)
    finally:
        if store == "postgres":
            drop_schema(url)
    assert fast == clear
    assert clear


def test_the_bulk_rebuild_stops_where_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    demo = DemoHistory(seed=3, scale=0.008)
    app = bootstrap.build_ledger(url, clock=demo.clock)
    write_demo(app, demo)
    store = bootstrap.build_projection_store(url)
    try:
        half = app.recorder.max_notification_id() // 2
        runner.rebuild_by_pages(app.recorder, app.mapper, store, projection="clear_half", stop=half)
        runner.rebuild_in_bulk(app.recorder, store, projection="fast_half", stop=half)
        assert store.raw_rows("fast_half") == store.raw_rows("clear_half")
        assert store.position("fast_half", runner.platform.FOLD_VERSION) == half
    finally:
        store.close()
        app.close()


def test_an_as_of_fold_read_in_bulk_equals_the_clear_one(db_url: str) -> None:
    from datetime import timedelta

    from projections import reports

    demo = DemoHistory(seed=11, scale=0.01)
    app = bootstrap.build_ledger(db_url, clock=demo.clock)
    write_demo(app, demo)
    store = bootstrap.build_projection_store(db_url)
    try:
        sources = reports.Sources(app.recorder, app.mapper, store)
        stamps = [app.mapper.to_domain_event(n).timestamp for n in app.recorder.select_notifications(start=1, limit=100_000)]
        cuts = [stamps[0] - timedelta(days=1), stamps[0], stamps[len(stamps) // 3], stamps[len(stamps) // 2] + timedelta(seconds=1), stamps[-1]]
        for as_of in cuts:
            clear = runner.fold_in_memory(reports.events_recorded_by(sources, as_of))
            rows, included = reports.platform_rows_included(sources, as_of)
            assert sorted(map(encode, rows())) == sorted(map(encode, clear.values())), as_of
            expected = [i + 1 for i, stamp in enumerate(stamps) if stamp <= as_of]
            assert included.position == (expected[-1] if expected else 0)
    finally:
        store.close()
        app.close()
