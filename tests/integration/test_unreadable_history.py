"""A ledger holding events this code cannot read: `db check` names them, every reading command says so in one line; old projection rows are rebuilt, never mixed."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

import bootstrap
from cli.main import ledger
from domain.base import ref_id
from projections import runner
from projections.platform import FOLD_VERSION

STAMP = {"timestamp": "2024-05-01T10:00:00+00:00", "occurred_at": "2024-05-01T00:00:00+00:00", "actor": "admin", "action_key": "k", "action_digest": "d"}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def with_examples(url: str) -> None:
    code, output = invoke("import", "examples/platform-actions.jsonl", "--db", url)
    assert code == 0, output


def append_raw(url: str, topic: str, fields: dict[str, object]) -> int:
    """Store an event as a later version of the code (or another program) would have, bypassing this code's mapper."""
    app = bootstrap.build_ledger(url)
    try:
        # Recorded now, as a writer would stamp it: recorded times only move forward.
        fields = {**fields, "timestamp": datetime.now(timezone.utc).isoformat()}
        app.recorder.insert_events([StoredEvent(originator_id=ref_id("ORG-IT-0001"), originator_version=9, topic=topic, state=json.dumps(fields).encode())])
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


@pytest.mark.parametrize(
    ("topic", "fields", "problem"),
    [
        ("domain.model:ClusterOrganisation.Updated", {"class_version": 7, **STAMP, "changes": []}, "written by a newer version of the ledger"),
        ("domain.model:ClusterOrganisation.Merged", {"class_version": 1, **STAMP}, "unknown event type"),
    ],
    ids=["future-version", "unknown-type"],
)
def test_db_check_names_what_cannot_be_read_and_every_reading_command_says_one_line(db_url: str, topic: str, fields: dict[str, object], problem: str) -> None:
    with_examples(db_url)
    code, output = invoke("db", "check", "--db", db_url)
    assert code == 0 and "no:" not in output
    position = append_raw(db_url, topic, fields)

    code, output = invoke("db", "check", "--db", db_url)
    assert code == 1
    assert f"{topic} version {fields['class_version']} at position {position}: {problem}" in output
    assert "domain.model:ClusterOrganisation.Registered" in output  # the readable types are listed too

    for command in (["report", "impact"], ["report", "impact", "--as-of", datetime.now(timezone.utc).isoformat()], ["project", "--rebuild"], ["audit", "log"], ["trace", "bilateral_meetings"], ["history", "ORG-IT-0001"]):
        code, output = invoke(*command, "--db", db_url)
        lines = output.strip().splitlines()
        assert code == 1, (command, output)
        assert len(lines) == 1 and lines[0].startswith("Error: event ") and problem in lines[0], (command, output)
        assert "Traceback" not in output


def test_rows_of_an_older_fold_are_rebuilt_with_one_line_and_equal_a_fresh_rebuild(db_url: str) -> None:
    with_examples(db_url)
    code, _ = invoke("project", "--db", db_url)
    assert code == 0
    store = bootstrap.build_projection_store(db_url)
    try:
        fresh = store.raw_rows(runner.PROJECTION)
        # Rows as an older fold left them: a stale shape, tracked under the previous version.
        store.write(runner.PROJECTION, FOLD_VERSION - 1, {"stale": {"kind": "org", "ref": "OLD"}}, 3)
        store.write(runner.PROJECTION, FOLD_VERSION - 1, {}, 3, expected=None)
    finally:
        store.close()

    result = CliRunner().invoke(ledger, ["project", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert f"projection 'platform' was built by fold version {FOLD_VERSION - 1}; rebuilding it from position 0 with version {FOLD_VERSION}" in result.stderr
    store = bootstrap.build_projection_store(db_url)
    try:
        assert store.raw_rows(runner.PROJECTION) == fresh
        assert store.tracked_version(runner.PROJECTION) == FOLD_VERSION
    finally:
        store.close()


def test_a_consumer_fed_read_model_of_an_older_fold_is_refused_with_the_command_to_run() -> None:
    from tests.conftest import drop_schema, fresh_postgres_url

    url = fresh_postgres_url()
    store = bootstrap.build_projection_store(url)
    try:
        store.write(runner.PROJECTION, FOLD_VERSION - 1, {"x": {"kind": "org", "ref": "X"}}, 5)
        # What a consumer leaves beside its rows: the versions it applied (see consumers/readmodel.py).
        table = SQL("{}.consumer_versions").format(Identifier(url.partition("?schema=")[2]))
        with store.connection.transaction():
            store.connection.execute(SQL("CREATE TABLE {} (projection text, aggregate_id text, version bigint)").format(table))
            store.connection.execute(SQL("INSERT INTO {} VALUES ('platform', 'x', 1)").format(table))
        assert store.fed_by_consumers(runner.PROJECTION)
    finally:
        store.close()
    try:
        code, output = invoke("report", "impact", "--db", url)
        assert code == 1
        assert f"fold version {FOLD_VERSION - 1}" in output and "ledger consume platform --db" in output
        assert len(output.strip().splitlines()) == 1
    finally:
        drop_schema(url)


def test_the_check_reads_only_what_a_catch_up_would_replay(db_url: str) -> None:
    with_examples(db_url)
    assert invoke("project", "--db", db_url)[0] == 0
    append_raw(db_url, "domain.model:ClusterOrganisation.Merged", {**STAMP})
    code, output = invoke("project", "--db", db_url)
    assert code == 1 and "unknown event type" in output


def test_a_consumer_refuses_a_read_model_of_an_older_fold() -> None:
    from tests.conftest import drop_schema, fresh_postgres_url

    url = fresh_postgres_url()
    store = bootstrap.build_projection_store(url)
    try:
        store.write(runner.PROJECTION, FOLD_VERSION - 1, {"x": {"kind": "org", "ref": "X"}}, 5)
    finally:
        store.close()
    try:
        result = CliRunner().invoke(ledger, ["consume", "platform", "--db", url, "--bootstrap", "127.0.0.1:1", "--until-idle", "1"])
        assert result.exit_code == 1, result.output
        assert f"built with fold version {FOLD_VERSION - 1}" in result.output and "consume into a new schema" in result.output
    finally:
        drop_schema(url)
