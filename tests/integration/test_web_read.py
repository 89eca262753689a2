"""What the browser view reads, on SQLite and PostgreSQL: positions of a record's events, stored events, audit log pages."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent

import bootstrap
from cli.main import ledger
from domain.base import ref_id
from domain.errors import UnreadableEvent
from web import read
from web.read import LogFilter, Query, Reader

ROOT = Path(__file__).resolve().parents[2]


def imported(db_url: str) -> list[dict[str, object]]:
    runner = CliRunner()
    assert runner.invoke(ledger, ["import", str(ROOT / "examples" / "platform-actions.jsonl"), "--db", db_url]).exit_code == 0
    result = runner.invoke(ledger, ["audit", "log", "--format", "json", "--db", db_url])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_a_records_history_names_the_log_position_of_each_event(db_url: str) -> None:
    log = imported(db_url)
    reader = Reader(db_url)
    try:
        for ref in {str(e["aggregate"]) for e in log}:
            page = read.record_page(reader, ref)
            assert [h["position"] for h in page["events"]] == [e["position"] for e in log if e["aggregate"] == ref]
            for entry in page["events"]:
                stored = read.event_page(reader, entry["position"])
                assert (stored["ref"], stored["version"], stored["type"]) == (ref, entry["version"], entry["type"])
                assert stored["proof"]["position"] == entry["position"] and json.loads(stored["stored_state"]) == stored["payload"]
    finally:
        reader.close()


def test_audit_pages_by_position_give_the_whole_log_and_a_figure_lists_its_events(db_url: str) -> None:
    log = imported(db_url)
    reader = Reader(db_url)
    try:
        seen, after = [], 0
        while True:
            page = read.audit_page(reader, LogFilter(), after, limit=5)
            seen += page["events"]
            if page["next_after"] is None:
                break
            after = page["next_after"]
        assert [(e["position"], e["ref"], e["type"]) for e in seen] == [(e["position"], e["aggregate"], e["type"]) for e in log]
        for ref in ("ORG-IT-0001", "MM-2024-MILAN-M001"):
            by_record = read.audit_page(reader, LogFilter(record=ref), limit=2)
            ours = [e["position"] for e in log if e["aggregate"] == ref]
            assert [e["position"] for e in by_record["events"]] == ours[:2] and by_record["next_after"] == ours[1]
            rest = read.audit_page(reader, LogFilter(record=ref), after=ours[1], limit=100)
            assert [e["position"] for e in rest["events"]] == ours[2:] and rest["next_after"] is None
        figures = {f["key"]: f for f in read.figures_page(reader, Query())["figures"]}
        for key, figure in figures.items():
            if figure["is_count"]:
                assert read.figure_page(reader, key, Query())["total"] == figure["value"], key
    finally:
        reader.close()


def test_an_event_this_code_cannot_read_is_shown_as_stored_and_reports_refuse_to_replay_it(db_url: str) -> None:
    imported(db_url)
    fields = {"class_version": 7, "timestamp": datetime.now(timezone.utc).isoformat(), "occurred_at": "2024-05-01T00:00:00+00:00",
              "actor": "<b>newer</b>", "action_key": "k", "action_digest": "d", "changes": []}
    app = bootstrap.build_ledger(db_url)
    try:
        app.recorder.insert_events([StoredEvent(originator_id=ref_id("ORG-IT-0001"), originator_version=9,
                                                topic="domain.model:ClusterOrganisation.Updated", state=json.dumps(fields).encode())])
        position = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    reader = Reader(db_url)
    try:
        shown = read.event_page(reader, position)
        assert shown["unreadable"] and "newer version" in shown["unreadable"] and shown["payload"] == fields and shown["type"] is None
        assert read.event_page(reader, 1)["unreadable"] is None
        with pytest.raises(UnreadableEvent):
            read.figures_page(reader, Query(as_of="2030-01-01"))
        with pytest.raises(UnreadableEvent):
            read.audit_page(reader, LogFilter())
    finally:
        reader.close()


def test_the_audit_log_of_one_type_or_kind_gives_every_such_event_a_page_at_a_time(db_url: str) -> None:
    log = imported(db_url)
    reader = Reader(db_url)
    try:
        for given in ("Activity.Held", "Held", "Participation"):
            wanted = [e["position"] for e in log if given in (e["type"], str(e["type"]).split(".")[0], str(e["type"]).split(".")[1])]
            assert wanted, given
            seen, after = [], 0
            while True:
                page = read.audit_page(reader, LogFilter(type=given), after, limit=3)
                seen += [e["position"] for e in page["events"]]
                if page["next_after"] is None:
                    break
                after = page["next_after"]
            assert seen == wanted, given
    finally:
        reader.close()


def test_an_unreadable_event_appended_after_the_log_was_checked_is_still_refused(db_url: str) -> None:
    imported(db_url)
    reader = Reader(db_url)
    try:
        assert read.audit_page(reader, LogFilter())["events"]  # the whole log checked once, and remembered
        app = bootstrap.build_ledger(db_url)
        try:
            fields = {"class_version": 7, "timestamp": datetime.now(timezone.utc).isoformat(), "occurred_at": "2024-05-01T00:00:00+00:00",
                      "actor": "a", "action_key": "k", "action_digest": "d", "changes": []}
            app.recorder.insert_events([StoredEvent(originator_id=ref_id("ORG-IT-0001"), originator_version=9,
                                                    topic="domain.model:ClusterOrganisation.Updated", state=json.dumps(fields).encode())])
        finally:
            app.close()
        with pytest.raises(UnreadableEvent):
            read.audit_page(reader, LogFilter())
        with pytest.raises(UnreadableEvent):
            read.figures_page(reader, Query())
    finally:
        reader.close()


def test_a_figures_pages_served_from_kept_runs_equal_pages_computed_alone(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    imported(db_url)
    monkeypatch.setattr(read, "EVIDENCE_RUN", 4)  # runs shorter than the listing, so pages come from several runs
    reader, alone = Reader(db_url), Reader(db_url)
    try:
        for key in ("matchmaking_participants", "cluster_organisations", "bilateral_meetings"):
            pages, after = [], 0
            while True:
                page = read.figure_page(reader, key, Query(), after, limit=3)
                assert page["events"] or page["next_after"] is None
                pages.append(page)
                if page["next_after"] is None:
                    break
                after = page["next_after"]
            # Each page equals the one a fresh reader computes for the same cursor, and together they list the figure once.
            for page in pages:
                fresh = read.figure_page(alone, key, Query(), page["after"], limit=3)
                assert fresh == page, (key, page["after"])
                alone.close()
            listed = [e["position"] for page in pages for e in page["events"]]
            assert len(listed) == len(set(listed)) == pages[0]["total"] and listed == sorted(listed), key
    finally:
        reader.close()
        alone.close()


def test_a_figures_events_read_as_one_run_of_the_log_equal_those_read_one_by_one(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    imported(db_url)
    monkeypatch.setattr(read, "LOG_RUN", 2)  # several runs of the log for one page
    reader = Reader(db_url)
    try:
        for key in ("matchmaking_participants", "cluster_organisations", "bilateral_meetings"):
            found, _ = reader.evidence(Query(), key, 0, 1_000)
            assert found.events, key
            monkeypatch.setattr(read, "SPREAD", 1_000_000)
            in_runs = read.listed_events(reader, found.events)
            monkeypatch.setattr(read, "SPREAD", 0)
            assert in_runs == read.listed_events(reader, found.events), key
            assert all(e["recorded_at"] and e["occurred_at"] for e in in_runs), key
    finally:
        reader.close()
