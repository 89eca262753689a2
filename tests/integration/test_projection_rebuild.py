"""Rebuilding from position 0 and catching up in any number of steps give the same rows, byte for byte."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bootstrap
from projections import runner
from service_layer.demo import DemoHistory, write_demo
from tests.conftest import fresh_postgres_url

_FOLDER = Path(tempfile.mkdtemp(prefix="ledger-rebuild-"))


@functools.cache
def history(store: str, seed: int) -> tuple[str, int]:
    """A small demo history per store and seed, written once per test session."""
    url = f"sqlite:///{_FOLDER / f'h{seed}.db'}" if store == "sqlite" else fresh_postgres_url()
    demo = DemoHistory(seed=seed, scale=0.008)
    app = bootstrap.build_ledger(url, clock=demo.clock)
    write_demo(app, demo)
    total = app.recorder.max_notification_id()
    app.close()
    return url, total


def rows_after(url: str, projection: str, stops: list[int], page_size: int) -> list[tuple[str, str]]:
    app = bootstrap.build_ledger(url)
    store = bootstrap.build_projection_store(url)
    try:
        store.reset(projection)
        for stop in stops:
            runner.catch_up(app.recorder, app.mapper, store, stop=stop, page_size=page_size, projection=projection)
        return store.raw_rows(projection)
    finally:
        store.close()
        app.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1), cuts=st.lists(st.floats(0, 1), max_size=6), page_size=st.sampled_from([1, 7, 100, 1000]))
def test_incremental_catch_up_equals_rebuild(store: str, seed: int, cuts: list[float], page_size: int) -> None:
    url, total = history(store, seed)
    stops = sorted(int(cut * total) for cut in cuts) + [total]
    incremental = rows_after(url, "platform_steps", stops, page_size)
    rebuilt = rows_after(url, "platform_rebuilt", [total], 1000)
    assert incremental == rebuilt
    assert len(rebuilt) > 50


def test_two_catch_ups_at_once_apply_nothing_twice(db_url: str) -> None:
    demo = DemoHistory(seed=4, scale=0.008)
    app = bootstrap.build_ledger(db_url, clock=demo.clock)
    write_demo(app, demo)
    first, second = bootstrap.build_projection_store(db_url), bootstrap.build_projection_store(db_url)
    try:
        # Both read the same starting position and page; the second write finds the position moved and reloads.
        page = list(app.recorder.select_notifications(start=1, limit=50))
        rows = first.rows("platform_race", {n.originator_id.hex for n in page})
        changed = runner.apply_page(rows, ((n.originator_id.hex, app.mapper.to_domain_event(n), n.id) for n in page))
        assert runner.catch_up(app.recorder, app.mapper, second, page_size=50, projection="platform_race") > 0
        assert first.write("platform_race", runner.platform.FOLD_VERSION, changed, page[-1].id, expected=0) is False
        assert runner.catch_up(app.recorder, app.mapper, first, projection="platform_race") == 0
        raced = first.raw_rows("platform_race")
        runner.rebuild(app.recorder, app.mapper, first, projection="platform_clean")
        assert raced == first.raw_rows("platform_clean")
    finally:
        first.close()
        second.close()
        app.close()
