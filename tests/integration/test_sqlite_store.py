"""The SQLite file: what is written survives closing and reopening, and cannot be edited."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import bootstrap
from domain.base import ref_id
from service_layer.demo import DemoHistory, write_demo
from tests.builders import matchmaking_with_two_orgs


def read_all(url: str) -> list[tuple[object, ...]]:
    app = bootstrap.build_ledger(url)
    try:
        return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in app.recorder.select_notifications(start=1, limit=1_000_000)]
    finally:
        app.close()


def test_write_close_reopen_reads_back_identical(sqlite_url: str) -> None:
    setup, event, a, _ = matchmaking_with_two_orgs()
    app = bootstrap.build_ledger(sqlite_url)
    app.execute(setup)
    before = {ref: app.repository.get(ref_id(ref)) for ref in (event, a, f"{event}/{a}")}
    written = [app.mapper.to_domain_event(app.mapper.to_stored_event(e)) for e in app.aggregate_events(a)]
    app.close()

    reopened = bootstrap.build_ledger(sqlite_url)
    try:
        after = {ref: reopened.repository.get(ref_id(ref)) for ref in before}
        assert after == before
        assert reopened.aggregate_events(a) == written
    finally:
        reopened.close()


def test_stored_events_cannot_be_updated_or_deleted(sqlite_url: str) -> None:
    setup, *_ = matchmaking_with_two_orgs()
    app = bootstrap.build_ledger(sqlite_url)
    app.execute(setup)
    app.close()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("UPDATE stored_events SET state = x'00'")
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("DELETE FROM stored_events")
    assert len(read_all(sqlite_url)) == len(setup)


def test_the_demo_is_deterministic_per_seed(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db", "c.db")]
    for url, seed in zip(urls, (11, 11, 12)):
        history = DemoHistory(seed=seed, scale=0.01)
        app = bootstrap.build_ledger(url, clock=history.clock)
        write_demo(app, history)
        app.close()
    a, b, c = (read_all(u) for u in urls)
    assert a == b
    assert a != c


def test_demo_records_after_the_fact_and_never_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    history = DemoHistory(seed=3, scale=0.01)
    app = bootstrap.build_ledger(url, clock=history.clock)
    summary = write_demo(app, history)
    events = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=1_000_000)]
    app.close()
    assert summary["events"] == len(events) > 100
    assert all(e.occurred_at <= e.timestamp for e in events)
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    assert any(e.occurred_at.year < 2024 for e in events)
