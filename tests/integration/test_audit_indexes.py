"""The audit log's filters answered through indexes, on SQLite and PostgreSQL: the same pages as a scan of the log, counted
and paged from both ends, pinned to a position, and read without touching the events that do not match."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

import bootstrap
from tests.integration.test_postgres_roles import admin, guarded, owner_url, run  # noqa: F401 - `guarded` is a fixture
from tests.integration.test_web_read import imported
from web import audit, export
from web.audit import LogFilter, ScannedLog
from web import read
from web.read import Query, Reader


def walk(reader: Reader, given: LogFilter, limit: int, **kwargs: Any) -> tuple[list[int], list[dict[str, Any]]]:
    """Every position that passes `given`, page by page forwards; and the pages."""
    seen, pages, after = [], [], 0
    while True:
        page = audit.audit_page(reader, given, after=after, limit=limit, **kwargs)
        pages.append(page)
        seen += [e["position"] for e in page["events"]]
        if page["next_after"] is None:
            return seen, pages
        after = page["next_after"]


def walk_back(reader: Reader, given: LogFilter, limit: int, at: int) -> list[int]:
    """Every position that passes `given`, from the last page back to the first, by `previous_before`."""
    seen: list[int] = []
    before: int | None = at + 1
    while before is not None:
        page = audit.audit_page(reader, given, before=before, at=at, limit=limit)
        seen = [e["position"] for e in page["events"]] + seen
        before = page["previous_before"]
    return seen


def test_indexed_filters_give_the_pages_a_scan_gives_counted_and_paged_from_both_ends(db_url: str) -> None:
    log = imported(db_url)
    middle = datetime.fromisoformat(str(log[len(log) // 2]["recorded_at"]))
    actors = sorted({str(e["actor"]) for e in log})
    cases = [(LogFilter(actor=a), lambda e, a=a: e["actor"] == a) for a in actors] + [
        (LogFilter(actor="nobody"), lambda e: False),
        (LogFilter(type="Held"), lambda e: str(e["type"]).endswith(".Held")),
        (LogFilter(type="Participation"), lambda e: str(e["type"]).startswith("Participation.")),
        (LogFilter(record="ORG-IT-0001"), lambda e: e["aggregate"] == "ORG-IT-0001"),
        (LogFilter(actor=actors[0], type="Participation"), lambda e: e["actor"] == actors[0] and str(e["type"]).startswith("Participation.")),
        (LogFilter(since=middle.isoformat()), lambda e: datetime.fromisoformat(str(e["recorded_at"])) >= middle),
        (LogFilter(until=middle.isoformat(), type="Held"),
         lambda e: datetime.fromisoformat(str(e["recorded_at"])) <= middle and str(e["type"]).endswith(".Held")),
        (LogFilter(since=(middle + timedelta(microseconds=1)).isoformat()), lambda e: datetime.fromisoformat(str(e["recorded_at"])) > middle),
        (LogFilter(), lambda e: True),
    ]
    reader = Reader(db_url)
    try:
        size = len(log)
        for given, passes in cases:
            wanted = [e["position"] for e in log if passes(e)]
            seen, pages = walk(reader, given, limit=3)
            assert seen == wanted, given
            scanned, _ = walk(reader, given, limit=3, log=ScannedLog(reader.sources().recorder))
            assert scanned == wanted, given
            assert all(p["total"] == len(wanted) for p in pages), given
            # Each page says where it lies: "4–6 of N"; the first has no previous page, the last no next one.
            assert [(p["first"], p["last"]) for p in pages if p["events"]] == [(i + 1, min(i + 3, len(wanted))) for i in range(0, len(wanted), 3)]
            assert pages[0]["previous_before"] is None and pages[-1]["next_after"] is None
            assert walk_back(reader, given, limit=3, at=size) == wanted, given
        # Pinned to a position, a page reads the same after the log has grown.
        pinned = audit.audit_page(reader, LogFilter(type="Held"), at=size - 5, limit=100)
        assert [e["position"] for e in pinned["events"]] == [e["position"] for e in log[: size - 5] if str(e["type"]).endswith(".Held")]
    finally:
        reader.close()


def plans(db_url: str) -> dict[str, str]:
    app = bootstrap.build_ledger(db_url)
    try:
        recorder: Any = app.recorder
        topic = "domain.model:Activity.Held"
        return {"actor": recorder.log_plan("admin.anna", None, None), "topic": recorder.log_plan(None, topic, None),
                "both": recorder.log_plan("admin.anna", topic, None)}
    finally:
        app.close()


def test_a_filtered_page_reads_through_an_index_not_the_whole_log(db_url: str) -> None:
    imported(db_url)
    found = plans(db_url)
    table = "stored_events" if db_url.startswith("sqlite") else "ledger_events"
    for name, index in (("actor", f"{table}_actor"), ("topic", f"{table}_topic"), ("both", f"{table}_")):
        assert index in found[name], found[name]
        assert "SCAN" not in found[name] and "Seq Scan" not in found[name] and "Sort" not in found[name], found[name]


def test_a_sqlite_ledger_made_before_the_indexes_gets_them_when_next_opened(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    imported(url)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("DROP INDEX stored_events_actor")
        conn.execute("DROP INDEX stored_events_topic")
    assert "stored_events_actor" in plans(url)["actor"]


def test_db_init_with_the_owner_adds_the_indexes_to_a_schema_made_before_them(guarded: str) -> None:  # noqa: F811
    assert run("import", "examples/platform-actions.jsonl", "--db", guarded)[0] == 0
    schema = guarded.partition("?schema=")[2]
    database = guarded.partition("?")[0].rsplit("/", 1)[1]
    with admin(database) as conn:
        for index in ("ledger_events_actor", "ledger_events_topic"):
            conn.execute(SQL("DROP INDEX {}.{}").format(Identifier(schema), Identifier(index)))
    assert "ledger_events_actor" not in plans(guarded)["actor"]  # the everyday role runs no DDL
    code, output = run("db", "init", "--owner-url", owner_url(), "--db", guarded)
    assert code == 0, output
    assert "ledger_events_actor" in plans(guarded)["actor"]
    # The everyday role reads the actor through the owner's function, and appends events that the index takes in.
    reader = Reader(guarded)
    try:
        page = audit.audit_page(reader, LogFilter(actor="admin.anna"))
        assert page["total"] > 0 and {e["actor"] for e in page["events"]} == {"admin.anna"}
    finally:
        reader.close()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with psycopg.connect(guarded.partition("?")[0], autocommit=True) as conn:
            conn.execute(SQL("DROP INDEX {}.ledger_events_actor").format(Identifier(schema)))


def test_a_download_reads_every_row_a_chunk_at_a_time_pinned_where_it_started(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log = imported(db_url)
    monkeypatch.setattr(export, "CHUNK", 4)
    reader = Reader(db_url)
    try:
        chunks = list(export.audit_rows(reader, LogFilter(), at=len(log) - 1))
        assert [len(c) for c in chunks] == [4] * ((len(log) - 1) // 4) + ([(len(log) - 1) % 4] if (len(log) - 1) % 4 else [])
        assert [e["position"] for c in chunks for e in c] == [e["position"] for e in log[:-1]]
        encode = export.encoder("csv", export.AUDIT_COLUMNS)
        text = b"".join(encode(c) for c in chunks).decode()
        assert text.splitlines()[0] == ",".join(export.AUDIT_COLUMNS) and len(text.splitlines()) == len(log)
        monkeypatch.setattr(export, "CHUNK", 2)  # more than one chunk of the figure's 3 events
        held = [e for c in export.evidence_rows(reader, "matchmaking_participants", Query()) for e in c]
        assert len(held) == read.figure_page(reader, "matchmaking_participants", Query())["total"] > 2
        monkeypatch.setattr(export, "EVIDENCE_RUN", 2)  # and more than one pass over the rows: the same events as the pages list
        paged, after = [], 0
        while after is not None:
            page = read.figure_page(reader, "matchmaking_participants", Query(), after, limit=1)
            paged, after = paged + page["events"], page["next_after"]
        assert [e for c in export.evidence_rows(reader, "matchmaking_participants", Query()) for e in c] == paged == held
        assert list(export.evidence_rows(reader, "c2labs_held", Query(start="1990-01-01", end="1990-12-31"))) == [[]]
    finally:
        reader.close()


def test_the_actor_of_events_is_never_read_by_parallel_workers(tmp_path: Any) -> None:
    """Its exception block is a subtransaction, which a parallel worker cannot start: a plan that would run it there fails."""
    from tests.conftest import drop_schema, fresh_postgres_url

    url = fresh_postgres_url()
    try:
        imported(url)
        base, _, schema = url.partition("?schema=")
        with psycopg.connect(base) as conn:
            for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0", "force_parallel_mode = on",
                            "enable_indexscan = off", "enable_bitmapscan = off"):
                conn.execute(f"SET {setting}")
            row = conn.execute(SQL("SELECT count(*) FROM {s}.ledger_events WHERE {s}.event_actor(state) = 'admin.anna'").format(
                s=Identifier(schema))).fetchone()
        assert row is not None and row[0] > 0
    finally:
        drop_schema(url)


def test_a_permalink_to_the_log_as_it_stands_reads_the_projection_and_gives_what_the_fold_gives(db_url: str) -> None:
    from presentation.text import parse_moment
    from projections import reports

    imported(db_url)
    reader = Reader(db_url)
    try:
        now = read.figures_page(reader, Query())
        pinned = Query(as_of=now["pinned_as_of"])
        fast = read.figures_page(reader, pinned)
        moment = parse_moment("as-of", now["pinned_as_of"])
        rows, included = reports.platform_rows_included(reader.sources(), moment)
        folded, _ = reports.impact(rows, pinned.period(), moment, included=included)
        assert {f["key"]: f["value"] for f in fast["figures"]} == folded["figures"] == {f["key"]: f["value"] for f in now["figures"]}
        assert fast["as_of_position"] == included.position == now["as_of_position"]
    finally:
        reader.close()
