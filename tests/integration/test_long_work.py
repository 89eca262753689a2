"""Long work is never silent: a command that must catch a read model up by many events says so in one line on stderr."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import bootstrap
from cli import render
from cli.main import ledger
from tests.builders import new_ref, org


def write_orgs(url: str, count: int) -> None:
    app = bootstrap.build_ledger(url)
    try:
        app.execute([org(new_ref("ORG")) for _ in range(count)])
    finally:
        app.close()


def test_a_report_on_a_read_model_far_behind_says_so_on_stderr_only(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "LONG_CATCH_UP", 10)  # what counts as far behind, scaled down to a small ledger
    write_orgs(db_url, 12)  # and the writer its first write authorized: 13 events
    result = CliRunner().invoke(ledger, ["report", "impact", "--format", "json", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.stderr == "catching up the read model: 13 events behind\n"
    assert json.loads(result.stdout)["as_of_position"] == 13  # stdout stays the report alone
    # Caught up, and then a few events behind: nothing to say.
    write_orgs(db_url, 3)
    result = CliRunner().invoke(ledger, ["report", "impact", "--format", "json", "--db", db_url])
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert json.loads(result.stdout)["as_of_position"] == 16


def test_a_rebuild_says_how_many_events_it_folds(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "LONG_CATCH_UP", 10)
    write_orgs(db_url, 12)
    result = CliRunner().invoke(ledger, ["project", "--rebuild", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.stderr == "rebuilding the read model: 13 events to fold\n"
    assert result.stdout.startswith("rebuilt: applied 13 events")
