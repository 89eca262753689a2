"""Snapshots of the projection: an as-of read through one equals a fold from position 0, and catch-up and bulk rebuild keep the same ones."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import psycopg
import pytest
from eventsourcing.persistence import ApplicationRecorder
from psycopg.sql import SQL, Identifier

import bootstrap
from projections import platform, reports, runner
from projections.figures import Settings
from projections.store import ProjectionStore
from service_layer.demo import DemoHistory, write_demo
from service_layer.ledger import Ledger
from tests.builders import new_ref, org
from tests.conftest import drop_schema, fresh_postgres_url, stored_rows
from tests.integration.test_guards import guarded_url  # noqa: F401 (a fixture)

EVERY = 37
"""Positions between snapshots: small, so a demo history has several."""


@dataclass
class Demo:
    """A demo history in a ledger, and the ledger's projection store."""

    app: Ledger
    store: ProjectionStore
    url: str

    @property
    def recorder(self) -> ApplicationRecorder:
        return self.app.recorder

    def last(self) -> int:
        return self.recorder.max_notification_id() or 0


@pytest.fixture
def demo(db_url: str) -> Iterator[Demo]:
    history = DemoHistory(seed=5, scale=0.01)
    app = bootstrap.build_ledger(db_url, clock=history.clock)
    write_demo(app, history)
    store = bootstrap.build_projection_store(db_url)
    yield Demo(app, store, db_url)
    store.close()
    app.close()


def cuts(last: int) -> list[int]:
    """As-of positions: before the first snapshot, on boundaries, just after and just before them, and the end."""
    return sorted({1, EVERY - 1, EVERY, EVERY + 1, 3 * EVERY, 3 * EVERY + 1, 4 * EVERY - 1, last // 2, last - 1, last})


def folded_events(demo: Demo, upto: int) -> Iterator[tuple[str, object, int]]:
    for page in runner.notifications(demo.recorder, 0):
        for n in page:
            if n.id > upto:
                return
            yield n.originator_id.hex, demo.app.mapper.to_domain_event(n), n.id


def test_rows_as_of_through_a_snapshot_equal_a_fold_from_position_0(demo: Demo) -> None:
    runner.rebuild_in_bulk(demo.recorder, demo.store, snapshot_every=EVERY, chunk=41)
    last = demo.last()
    assert last > 6 * EVERY
    for upto in cuts(last):
        through = list(runner.rows_as_of(demo.recorder, demo.store, upto))
        assert [key for key, _ in through] == sorted(key for key, _ in through)
        assert dict(through) == runner.fold_in_bulk(demo.recorder, upto) == runner.fold_in_memory(folded_events(demo, upto)), upto
    assert demo.store.snapshot_boundary(runner.PROJECTION, platform.FOLD_VERSION, last) == last // EVERY * EVERY


def test_an_impact_report_as_of_through_a_snapshot_equals_one_folded_from_position_0(demo: Demo) -> None:
    runner.rebuild_in_bulk(demo.recorder, demo.store, snapshot_every=EVERY)
    sources = reports.Sources(demo.recorder, demo.app.mapper, demo.store)
    stamps = [demo.app.mapper.to_domain_event(n).timestamp for n in demo.recorder.select_notifications(start=1, limit=100_000)]
    start, end = reports.default_period()
    for upto in cuts(len(stamps)):
        as_of = stamps[upto - 1]
        rows, included = reports.platform_rows_included(sources, as_of)
        clear = runner.fold_in_memory(reports.events_recorded_by(sources, as_of))
        for settings in (Settings(start, end), Settings(start, end, country="LV")):
            through, _ = reports.impact(rows, settings, as_of, charts=True, included=included)
            folded, _ = reports.impact(lambda: clear.values(), settings, as_of, charts=True, included=included)
            assert orjson.dumps(through) == orjson.dumps(folded), upto


@pytest.mark.parametrize("page_size", [23, 1000])
def test_catch_up_in_pages_keeps_the_snapshots_a_bulk_rebuild_keeps(demo: Demo, page_size: int) -> None:
    last = demo.last()
    for stop in (EVERY // 2, 2 * EVERY, 2 * EVERY + 5, None):  # several catch-ups, stopping on, before and after boundaries
        runner.catch_up(demo.recorder, demo.app.mapper, demo.store, stop=stop, page_size=page_size, projection="paged",
                        snapshot_every=EVERY)
    runner.rebuild_in_bulk(demo.recorder, demo.store, projection="bulk", chunk=53, snapshot_every=EVERY)
    paged, bulk = demo.store.raw_snapshots("paged"), demo.store.raw_snapshots("bulk")
    assert paged == bulk
    assert {boundary for boundary, *_ in bulk} == set(range(EVERY, last + 1, EVERY))
    assert {version for _, version, *_ in bulk} == {platform.FOLD_VERSION}
    assert demo.store.raw_rows("paged") == demo.store.raw_rows("bulk")
    # Each snapshot holds only the rows changed since the one before: far fewer than a row per key per snapshot.
    assert len(bulk) < len(demo.store.raw_rows("bulk")) * (last // EVERY) / 2


def test_snapshots_of_another_fold_version_are_not_used(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    runner.rebuild_in_bulk(demo.recorder, demo.store, snapshot_every=EVERY)
    upto = 5 * EVERY  # on a boundary: a read through the snapshot folds no event after it
    expected = runner.fold_in_bulk(demo.recorder, upto)
    # Snapshot rows no fold could make: a read that used them would differ.
    spoil = "UPDATE {schema}projection_snapshots SET data = '{{\"kind\": \"spoiled\"}}'"
    stored_rows(demo.url, {"sqlite": spoil.format(schema=""), "postgres": spoil.format(schema="{schema}.") + " RETURNING 1"})
    assert dict(runner.rows_as_of(demo.recorder, demo.store, upto)) != expected

    monkeypatch.setattr(platform, "FOLD_VERSION", platform.FOLD_VERSION + 1)
    assert demo.store.snapshot_boundary(runner.PROJECTION, platform.FOLD_VERSION, upto) == 0
    assert dict(runner.rows_as_of(demo.recorder, demo.store, upto)) == expected
    # Catching up with the new version drops them with the rows, and keeps new ones.
    runner.catch_up(demo.recorder, demo.app.mapper, demo.store, snapshot_every=EVERY)
    assert {version for _, version, *_ in demo.store.raw_snapshots(runner.PROJECTION)} == {platform.FOLD_VERSION}
    assert dict(runner.rows_as_of(demo.recorder, demo.store, upto)) == expected


def test_a_reset_drops_the_snapshots_with_the_rows(demo: Demo) -> None:
    runner.rebuild_in_bulk(demo.recorder, demo.store, snapshot_every=EVERY)
    assert demo.store.raw_snapshots(runner.PROJECTION)
    demo.store.reset(runner.PROJECTION)
    assert demo.store.raw_snapshots(runner.PROJECTION) == []
    assert demo.store.snapshot_boundary(runner.PROJECTION, platform.FOLD_VERSION, demo.last()) == 0


def test_a_projection_caught_up_before_snapshots_keeps_a_whole_one_at_the_next_boundary(demo: Demo) -> None:
    runner.catch_up(demo.recorder, demo.app.mapper, demo.store, stop=2 * EVERY + 5, snapshot_every=0)
    assert demo.store.raw_snapshots(runner.PROJECTION) == []
    runner.catch_up(demo.recorder, demo.app.mapper, demo.store, page_size=23, snapshot_every=EVERY)
    first = {key for boundary, _, key, _ in demo.store.raw_snapshots(runner.PROJECTION) if boundary == 3 * EVERY}
    assert first == set(runner.fold_in_bulk(demo.recorder, 3 * EVERY))
    for upto in (2 * EVERY, 3 * EVERY, 3 * EVERY + 1, 5 * EVERY + 2, demo.last()):
        assert dict(runner.rows_as_of(demo.recorder, demo.store, upto)) == runner.fold_in_bulk(demo.recorder, upto), upto


def test_snapshots_on_boundaries_inside_a_gap_of_positions() -> None:
    # PostgreSQL leaves gaps where a transaction rolled back: boundaries with no event of their own.
    url = fresh_postgres_url()
    history = DemoHistory(seed=5, scale=0.004)
    app = bootstrap.build_ledger(url, clock=history.clock)
    store = bootstrap.build_projection_store(url)
    try:
        write_demo(app, history)
        before = app.recorder.max_notification_id() or 0
        schema = url.partition("?schema=")[2]
        stored_rows(url, {"postgres": f"SELECT setval(pg_get_serial_sequence('\"{schema}\".ledger_events', 'notification_id'), {before + 3 * EVERY})"})
        app.execute([org(new_ref("gap"))])
        last = app.recorder.max_notification_id() or 0
        assert last > before + 3 * EVERY
        runner.catch_up(app.recorder, app.mapper, store, page_size=23, projection="paged", snapshot_every=EVERY)
        runner.rebuild_in_bulk(app.recorder, store, projection="bulk", snapshot_every=EVERY)
        assert store.raw_snapshots("paged") == store.raw_snapshots("bulk")
        assert store.raw_rows("paged") == store.raw_rows("bulk")
        inside = before + 2 * EVERY
        assert store.snapshot_boundary("paged", platform.FOLD_VERSION, inside) == inside // EVERY * EVERY > before
        for upto in (before, before + 1, (before // EVERY + 1) * EVERY, before + 2 * EVERY, last - 1, last):
            through = dict(runner.rows_as_of(app.recorder, store, upto, projection="paged"))
            assert through == runner.fold_in_bulk(app.recorder, upto), upto
    finally:
        store.close()
        app.close()
        drop_schema(url)


def test_the_everyday_role_keeps_snapshots_in_a_schema_its_owner_made(guarded_url: str) -> None:  # noqa: F811
    expect_snapshots_kept_by_a_catch_up(guarded_url, kept=True)


def test_the_everyday_role_reads_without_snapshots_where_the_owner_made_no_snapshot_tables(guarded_url: str) -> None:  # noqa: F811
    # A schema made before snapshots: the everyday role may not make tables, so it keeps none and folds from position 0.
    owner = os.environ["LEDGER_TEST_PG_OWNER_URL"]
    schema = guarded_url.partition("?schema=")[2]
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(SQL("DROP TABLE {}.projection_snapshots, {}.projection_snapshot_marks").format(Identifier(schema), Identifier(schema)))
    expect_snapshots_kept_by_a_catch_up(guarded_url, kept=False)


def expect_snapshots_kept_by_a_catch_up(url: str, kept: bool) -> None:
    history = DemoHistory(seed=5, scale=0.004)
    app = bootstrap.build_ledger(url, clock=history.clock)
    store = bootstrap.build_projection_store(url)
    try:
        write_demo(app, history)
        runner.catch_up(app.recorder, app.mapper, store, snapshot_every=EVERY)
        assert bool(store.raw_snapshots(runner.PROJECTION)) is kept
        for upto in (EVERY - 1, 2 * EVERY, 2 * EVERY + 1):
            assert dict(runner.rows_as_of(app.recorder, store, upto)) == runner.fold_in_bulk(app.recorder, upto), upto
    finally:
        store.close()
        app.close()
