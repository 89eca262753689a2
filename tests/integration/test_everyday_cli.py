"""The admin's everyday command line: comma-separated lists and machine-readable output from writes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import ledger


def run(*args: str, db: str) -> Result:
    return CliRunner().invoke(ledger, [*args, "--db", db], catch_exceptions=False)


def test_list_options_take_commas_as_well_as_repeated_flags_and_check_each_item(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    done = run("org", "register", "--org", "ORG-1", "--name", "Cluster", "--country", "IT", "--region", "ITC4",
               "--ecosystems", "health,digital", "--ecosystems", "tourism", "--year-established", "2014", "--at", "2024-01-08", db=db)
    assert done.exit_code == 0, done.output
    shown = json.loads(run("history", "ORG-1", "--format", "json", db=db).output)
    assert shown[0]["details"]["ecosystems"] == ["health", "digital", "tourism"]

    refused = run("org", "register", "--org", "ORG-2", "--name", "Cluster", "--country", "IT", "--ecosystems", "health,digitl",
                  "--year-established", "2014", db=db)
    assert refused.exit_code == 2
    assert "Invalid value for '--ecosystems': 'digitl' is not one of 'aerospace-defence'," in refused.output
    assert "ORG-2" not in run("audit", "log", "--format", "json", db=db).output


def test_a_sector_may_hold_a_comma_and_is_never_split(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    done = run("org", "register", "--org", "ORG-1", "--name", "Cluster", "--country", "IT", "--sectors", "food, drink",
               "--ecosystems", "agri-food", "--year-established", "2014", "--at", "2024-01-08", db=db)
    assert done.exit_code == 0, done.output
    assert json.loads(run("history", "ORG-1", "--format", "json", db=db).output)[0]["details"]["sectors"] == ["food, drink"]
