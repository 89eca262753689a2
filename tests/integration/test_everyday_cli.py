"""The admin's everyday command line: comma-separated lists and machine-readable output from writes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import ledger
from transparency.note import Signer


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


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform-actions.jsonl"


def test_a_write_in_json_gives_outcome_positions_events_and_the_writer_key(tmp_path: Path, signing_key: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = signing_key.with_suffix(".pub").read_text().strip()
    args = ("org", "register", "--org", "ORG-1", "--name", "Cluster", "--country", "IT", "--ecosystems", "health",
            "--year-established", "2014", "--at", "2024-01-08", "--format", "json")
    first = run(*args, db=db)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {
        "outcome": "recorded", "positions": [2],
        "events": [{"position": 2, "type": "ClusterOrganisation.Registered", "record": "ORG-1", "version": 1}],
        "writer": {"name": signing_key.stem, "key": key}, "first_writer": {"name": signing_key.stem, "position": 1},
    }
    again = json.loads(run(*args, db=db).output)
    assert (again["outcome"], again["positions"], again["events"], again["first_writer"]) == ("already recorded", [], [], None)
    published = json.loads(run("org", "publish", "--org", "ORG-1", "--at", "2024-01-09", "--format", "json", db=db).output)
    assert published["events"] == [{"position": 3, "type": "ClusterOrganisation.Published", "record": "ORG-1", "version": 2}]


def test_an_import_in_json_counts_each_action(tmp_path: Path, signing_key: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    report = json.loads(run("import", str(EXAMPLE), "--format", "json", db=db).output)
    assert {k: v for k, v in report.items() if k not in ("by_action", "writer")} == {
        "outcome": "recorded", "file": str(EXAMPLE), "actions": 24, "written": 24, "already_recorded": 0,
        "first_writer": {"name": signing_key.stem, "position": 1},
    }
    assert report["by_action"]["org.register"] == 2 and report["by_action"]["case.advance"] == 3
    assert sum(report["by_action"].values()) == 24
    again = json.loads(run("import", str(EXAMPLE), "--format", "json", db=db).output)
    assert (again["outcome"], again["written"], again["already_recorded"], again["by_action"]) == (
        "already recorded", 0, 24, report["by_action"])


def test_writer_and_database_commands_give_json_too(tmp_path: Path, signing_key: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = signing_key.with_suffix(".pub").read_text().strip()
    ready = json.loads(run("db", "init", "--root-key", str(signing_key.with_suffix(".pub")), "--format", "json", db=db).output)
    assert ready == {"outcome": "ready", "db": db, "guards": "stored events refuse UPDATE and DELETE", "owner": None,
                     "everyday_role": None, "root_writer": {"position": 1, "key": key}}
    assert json.loads(run("writer", "list", "--format", "json", db=db).output) == [{"name": signing_key.stem, "status": "active", "key": key}]
    other = tmp_path / "other.pub"
    other.write_text(Signer.generate("other").verifier.encode() + "\n")
    authorized = json.loads(run("writer", "authorize", str(other), "--format", "json", db=db).output)
    assert authorized["events"] == [{"position": 2, "type": "Writer.Authorized", "record": "writer:other", "version": 1}]
    assert authorized["writer"] == {"name": signing_key.stem, "key": key}
