"""Whatever is stored, however it got there, no reader crashes: each names the position of the event it cannot replay in one line, and `db check` names the same."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent

import bootstrap
from cli.main import ledger
from domain.base import ref_id
from tests.integration.tampering import tamper

NOW = "now"
"""Stands for the moment a reader runs (a moment in the future is refused): an as-of read of everything stored."""
READERS = (["report", "impact"], ["report", "impact", "--as-of", NOW], ["report", "country", "IT"], ["trace", "cluster_organisations"],
           ["project", "--rebuild"], ["project"])


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, [datetime.now(timezone.utc).isoformat() if a == NOW else a for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def imported(url: str) -> None:
    code, output = invoke("import", "examples/platform-actions.jsonl", "--db", url)
    assert code == 0, output


def position_of(url: str, ref: str, topic_end: str) -> int:
    app = bootstrap.build_ledger(url)
    try:
        return next(n.id for n in app.recorder.select_notifications(start=1, limit=1000)
                    if n.originator_id == ref_id(ref) and n.topic.endswith(topic_end))
    finally:
        app.close()


def edit_state(url: str, position: int, old: str, new: str) -> None:
    """Replace text in one stored payload, as the database's owner can (`old` and `new` hold no quote or brace)."""
    if url.startswith("sqlite:///"):
        changed = f"CAST(replace(CAST(state AS TEXT), '{old}', '{new}') AS BLOB)"
    else:
        changed = f"convert_to(replace(convert_from(state, 'UTF8'), '{old}', '{new}'), 'UTF8')"
    tamper(url, f"UPDATE {{events}} SET state = {changed} WHERE {{id}} = {position}")


def second_registration(url: str) -> int:
    """A copy of ORG-IT-0001's registration stored again as a later version: readable, and impossible."""
    app = bootstrap.build_ledger(url)
    try:
        first = next(iter(app.recorder.select_events(ref_id("ORG-IT-0001"), lte=1)))
        app.recorder.insert_events([StoredEvent(ref_id("ORG-IT-0001"), 9, first.topic, first.state)])
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def not_json(url: str) -> int:
    position = position_of(url, "ORG-LV-0007", "ClusterOrganisation.Published")
    edit_state(url, position, '"actor"', 'actor')
    return position


def missing_field(url: str) -> int:
    position = position_of(url, "ORG-IT-0001", "ClusterOrganisation.Registered")
    edit_state(url, position, '"year_established":2014,', "")
    return position


def wrong_type(url: str) -> int:
    position = position_of(url, "ORG-IT-0001", "ClusterOrganisation.Registered")
    edit_state(url, position, '"year_established":2014', '"year_established":"twenty-fourteen"')
    return position


def update_before_registration(url: str) -> int:
    """The update of 2025-02-10 dated 2023-01-01, before the registration of 2024-01-08: the row would lack its registered fields."""
    position = position_of(url, "ORG-IT-0001", "ClusterOrganisation.Updated")
    edit_state(url, position, '"occurred_at":"2025-02-10', '"occurred_at":"2023-01-01')
    return position


CASES = {"impossible": second_registration, "not-json": not_json, "missing-field": missing_field, "wrong-type": wrong_type}


def one_line_at(output: str, position: int) -> None:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and re.search(rf"\bposition {position}\b", lines[0]), output
    assert "Traceback" not in output


@pytest.mark.parametrize("case", CASES)
def test_every_reader_names_the_position_of_a_stored_event_it_cannot_replay(db_url: str, case: str) -> None:
    imported(db_url)
    position = CASES[case](db_url)

    code, output = invoke("db", "check", "--db", db_url)
    assert code == 1 and re.search(rf"first: .*\bposition {position}\b", output), output
    for command in READERS:
        code, output = invoke(*command, "--db", db_url)
        assert code == 1, (command, output)
        one_line_at(output, position)
    # The audit log and a record's history list events without folding them: they show them, or name what they cannot read.
    for command in (["audit", "log"], ["history", "ORG-IT-0001"]):
        code, output = invoke(*command, "--db", db_url)
        assert "Traceback" not in output
        if code:
            one_line_at(output, position)


def test_a_report_over_a_period_an_out_of_order_update_precedes_counts_the_profile_from_its_registration(db_url: str) -> None:
    # A fact dated before its record's creation (stored before the timeline rule, or edited) replays: figures count it from
    # the creation on (tests/integration/test_timeline.py), so no row lacks its registered fields.
    imported(db_url)
    update_before_registration(db_url)
    for period in (("2023-01-01", "2023-12-31"), ("2024-01-01", "2024-12-31")):
        code, output = invoke("report", "impact", "--from", period[0], "--to", period[1], "--format", "json", "--db", db_url)
        assert code == 0 and "Traceback" not in output, output
    code, output = invoke("db", "check", "--db", db_url)
    assert code == 0, output


def test_db_check_passes_a_ledger_every_event_of_which_replays(db_url: str) -> None:
    imported(db_url)
    code, output = invoke("db", "check", "--db", db_url)
    assert code == 0 and "cannot replay" not in output, output


@pytest.mark.parametrize("new_id", ["upper(originator_id)", "'not-a-uuid'"], ids=["other-spelling", "not-a-uuid"])
def test_an_altered_id_is_named_by_every_reader_and_history_is_never_shortened(tmp_path: Any, new_id: str) -> None:
    # Only SQLite keeps ids as text; PostgreSQL's uuid column cannot hold another spelling.
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    imported(url)
    position = position_of(url, "MM-2024-MILAN-M001", "BilateralMeeting.Held")
    tamper(url, f"UPDATE {{events}} SET originator_id = {new_id} WHERE {{id}} = {position}")

    code, output = invoke("db", "check", "--db", url)
    assert code == 1 and re.search(rf"first: position {position}\b.*ledger verify", output), output
    for command in (*READERS, ["audit", "log"]):
        code, output = invoke(*command, "--db", url)
        assert code == 1, (command, output)
        one_line_at(output, position)
        assert "ledger verify" in output
    code, output = invoke("history", "MM-2024-MILAN-M001", "--db", url)
    if new_id.startswith("upper"):  # the record's own event, stored under another spelling: named, never left out
        assert code == 1
        one_line_at(output, position)
        assert "MM-2024-MILAN-M001" in output and "history cannot be shown whole" in output and "ledger verify" in output
    else:
        assert code == 0 and "Traceback" not in output


def asgi_get(app: Any, *paths: str) -> list[tuple[int, dict[str, str], bytes]]:
    """GET each path from the ASGI app, with its start-up and shut-down run around them."""
    async def one(path: str) -> tuple[int, dict[str, str], bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
                 "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [], "client": ("127.0.0.1", 1),
                 "server": ("127.0.0.1", 80)}
        await app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
        return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])

    async def all_of() -> list[tuple[int, dict[str, str], bytes]]:
        async with app.router.lifespan_context(app):
            return [await one(path) for path in paths]

    return asyncio.run(all_of())


@pytest.mark.parametrize("case", ["impossible", "wrong-type"])
def test_the_browser_view_answers_an_error_page_and_a_json_error_never_a_500(db_url: str, case: str) -> None:
    from web.app import create_app

    imported(db_url)
    position = CASES[case](db_url)
    answers = asgi_get(create_app(db_url), "/api/figures", "/", "/countries/IT", "/api/figures/cluster_organisations")
    (api_status, api_headers, api_body), (status, headers, body), (country_status, _, _), (figure_status, _, _) = answers
    assert api_status == 409 and api_headers["content-type"] == "application/json"
    assert json.loads(api_body)["position"] == position and f"position {position}" in json.loads(api_body)["error"]
    assert status == 409 and headers["content-type"].startswith("text/html") and f"position {position}" in body.decode()
    assert "default-src 'none'" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"
    assert country_status == figure_status == 409


def test_a_record_page_names_an_event_stored_as_a_version_its_record_cannot_reach(db_url: str) -> None:
    from web.app import create_app

    imported(db_url)
    position = second_registration(db_url)
    [(status, _, body)] = asgi_get(create_app(db_url), "/api/records/ORG-IT-0001")
    assert status == 409 and json.loads(body)["position"] == position
