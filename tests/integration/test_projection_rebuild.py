"""Rebuilding from position 0 and catching up in any number of steps give the same rows, byte for byte."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bootstrap
from projections import runner
from service_layer.demo import DemoHistory, write_demo

_FOLDER = Path(tempfile.mkdtemp(prefix="ledger-rebuild-"))


@functools.cache
def history(seed: int) -> tuple[str, int]:
    """A small demo history per seed, written once per test session."""
    url = f"sqlite:///{_FOLDER / f'h{seed}.db'}"
    demo = DemoHistory(seed=seed, scale=0.008)
    app = bootstrap.build_ledger(url, clock=demo.clock)
    write_demo(app, demo)
    total = app.recorder.max_notification_id()
    app.close()
    return url, total


def rows_after(url: str, stops: list[int], page_size: int) -> list[tuple[str, str]]:
    copy = Path(tempfile.mkdtemp(prefix="ledger-step-")) / "copy.db"
    shutil.copy(url.removeprefix("sqlite:///"), copy)
    copy_url = f"sqlite:///{copy}"
    app = bootstrap.build_ledger(copy_url)
    store = bootstrap.build_projection_store(copy_url)
    try:
        for stop in stops:
            runner.catch_up(app.recorder, app.mapper, store, stop=stop, page_size=page_size)
        return store.raw_rows(runner.PROJECTION)
    finally:
        store.close()
        app.close()
        shutil.rmtree(copy.parent)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2), cuts=st.lists(st.floats(0, 1), max_size=6), page_size=st.sampled_from([1, 7, 100, 1000]))
def test_incremental_catch_up_equals_rebuild(seed: int, cuts: list[float], page_size: int) -> None:
    url, total = history(seed)
    stops = sorted(int(cut * total) for cut in cuts) + [total]
    incremental = rows_after(url, stops, page_size)
    rebuilt = rows_after(url, [total], 1000)
    assert incremental == rebuilt
    assert len(rebuilt) > 50
