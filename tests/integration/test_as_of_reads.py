"""Rows as of a position, read through the nearest snapshot with the events after it folded once, equal a fold from
position 0: on a demo history and on every golden ledger, on both stores, in both ways `RowsAsOf` reads them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
import pytest

import bootstrap
from projections import reports, runner
from projections.figures import Settings, compute
from projections.platform import Row
from projections.store import ProjectionStore
from service_layer.demo import DemoHistory, write_demo
from service_layer.ledger import Ledger
from tests.integration.test_golden_ledgers import LEDGERS, golden_on
from web.read import Query, Reader

EVERY = 29
"""Positions between snapshots: small, so a demo history has many."""


def by_key(rows: Iterable[Row]) -> list[bytes]:
    return sorted(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) for row in rows)


def expect_rows_as_of_equal_a_fold(app: Ledger, store: ProjectionStore, positions: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    for streamed in (False, True):
        # Past FOLDED_AFTER_A_SNAPSHOT events, each pass merges the snapshot and the events again: 0 makes every read do so.
        monkeypatch.setattr(runner, "FOLDED_AFTER_A_SNAPSHOT", 0 if streamed else runner.SNAPSHOT_EVERY)
        for upto in positions:
            folded = runner.fold_in_bulk(app.recorder, upto)
            rows = runner.RowsAsOf(app.recorder, store, upto)
            assert rows.start == upto // EVERY * EVERY and upto - rows.start < EVERY
            assert rows.streamed is (streamed and upto > rows.start)
            assert by_key(rows()) == by_key(folded.values()) == by_key(rows()), (upto, streamed)
            # Asked for some kinds, a read holds every row of them.
            activities = [row for row in rows({"activity"}) if row["kind"] == "activity"]
            assert by_key(activities) == by_key(row for row in folded.values() if row["kind"] == "activity"), (upto, streamed)


@pytest.fixture
def demo(db_url: str) -> Iterator[tuple[Ledger, ProjectionStore]]:
    history = DemoHistory(seed=11, scale=0.01)
    app = bootstrap.build_ledger(db_url, clock=history.clock)
    write_demo(app, history)
    store = bootstrap.build_projection_store(db_url)
    yield app, store
    store.close()
    app.close()


def test_rows_as_of_any_position_equal_a_fold_from_position_0(demo: tuple[Ledger, ProjectionStore], monkeypatch: pytest.MonkeyPatch) -> None:
    app, store = demo
    runner.rebuild_in_bulk(app.recorder, store, snapshot_every=EVERY)
    last = app.recorder.max_notification_id() or 0
    assert last > 10 * EVERY
    positions = sorted({1, EVERY - 1, EVERY, EVERY + 1, 5 * EVERY - 1, 5 * EVERY + 3, last // 2, last - 1, last} | set(range(3, last, 97)))
    expect_rows_as_of_equal_a_fold(app, store, positions, monkeypatch)


def test_an_as_of_report_reads_the_rows_a_fold_from_position_0_gives(demo: tuple[Ledger, ProjectionStore]) -> None:
    app, store = demo
    runner.catch_up(app.recorder, app.mapper, store, page_size=31, snapshot_every=EVERY)
    sources = reports.Sources(app.recorder, app.mapper, store)
    start, end = reports.default_period()
    last = app.recorder.max_notification_id() or 0
    for upto in (EVERY + 1, last // 3, last // 2 + 7, last):
        rows, included = reports.rows_at_position(sources, upto)
        assert included.position == upto
        folded = runner.fold_in_bulk(app.recorder, upto)
        for settings in (Settings(start, end), Settings(start, end, country="LV")):
            through = reports.impact(rows, settings, None, charts=True, included=included)[0]
            assert orjson.dumps(through) == orjson.dumps(reports.impact(lambda: folded.values(), settings, None, charts=True, included=included)[0])
            assert compute(rows, settings).values == compute(lambda: folded.values(), settings).values


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("db", LEDGERS, ids=lambda db: f"{db.parent.name}/{db.stem}")
def test_rows_as_of_every_position_of_a_golden_ledger_equal_a_fold(db: Path, store_kind: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with golden_on(db, store_kind, tmp_path) as url:
        app = bootstrap.build_ledger(url)
        store = bootstrap.build_projection_store(url)
        try:
            runner.rebuild_in_bulk(app.recorder, store, snapshot_every=EVERY)
            last = app.recorder.max_notification_id() or 0
            expect_rows_as_of_equal_a_fold(app, store, list(range(1, last + 1, 1 if last < 60 else 7)) + [last], monkeypatch)
        finally:
            store.close()
            app.close()


def test_the_browser_view_computes_the_figures_of_one_position_once_whichever_moment_reaches_it(
        demo: tuple[Ledger, ProjectionStore], db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = demo
    url = db_url
    computed: list[int] = []
    impact = reports.impact
    monkeypatch.setattr(reports, "impact", lambda rows, *a, **k: computed.append(1) or impact(rows, *a, **k))
    last = app.recorder.max_notification_id() or 0
    stamps = {n.id: app.mapper.to_domain_event(n).timestamp for n in app.recorder.select_notifications(start=1, limit=last)}
    reader = Reader(url)
    try:
        now, _ = reader.report(Query())
        pinned, _ = reader.report(Query(as_of=stamps[last].isoformat()))
        assert len(computed) == 1
        assert pinned == {**now, "as_of": stamps[last].isoformat()} and now["as_of"] is None
        middle = stamps[last // 2].isoformat()
        earlier, _ = reader.report(Query(as_of=middle))
        assert len(computed) == 2 and earlier["as_of"] == middle and earlier["as_of_position"] < last
        alone = Reader(url)
        try:
            assert alone.report(Query(as_of=middle))[0] == earlier
        finally:
            alone.close()
    finally:
        reader.close()

