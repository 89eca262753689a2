"""Looking records up from the command line: `list`, `show`, `history --activity` and `audit log --record/--limit`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from cli.main import ledger
from tests.conftest import snapshot

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform-actions.jsonl"


def run(*args: str, db: str) -> Result:
    return CliRunner().invoke(ledger, [*args, "--db", db], catch_exceptions=False)


def imported(db: str) -> str:
    result = run("import", str(EXAMPLE), db=db)
    assert result.exit_code == 0, result.output
    return db


def listed(db: str, *args: str) -> list[dict[str, object]]:
    result = run("list", *args, "--format", "json", db=db)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_filters_records_by_country_year_activity_org_and_status(db_url: str) -> None:
    db = imported(db_url)
    assert [o["ref"] for o in listed(db, "orgs")] == ["ORG-IT-0001", "ORG-LV-0007"]
    assert listed(db, "orgs", "--country", "lv") == [{
        "ref": "ORG-LV-0007", "name": "Latvian Hydrogen Cluster", "country": "LV", "region": "LV00", "ecosystems": ["energy-renewables"],
        "status": "published", "registered_on": "2024-01-10", "labels": [],
    }]
    assert [a["ref"] for a in listed(db, "activities", "--year", "2024")] == ["MM-2024-MILAN"]
    assert listed(db, "activities", "--year", "2025") == []
    assert [(p["participant"], p["status"]) for p in listed(db, "participants", "--activity", "MM-2024-MILAN")] == [
        ("ORG-IT-0001", "attended"), ("ORG-LV-0007", "attended"), ("P-3f9c2a", "registered")]
    assert [p["participant"] for p in listed(db, "participants", "--activity", "MM-2024-MILAN", "--status", "registered")] == ["P-3f9c2a"]
    assert [m["ref"] for m in listed(db, "meetings", "--org", "ORG-IT-0001")] == ["MM-2024-MILAN-M001"]
    assert [c["status"] for c in listed(db, "cases", "--from", "2024-05-01", "--to", "2024-05-31")] == ["joint_project_launched"]
    assert [p["ref"] for p in listed(db, "publications", "--country", "LV")] == ["FS-LV"]
    assert [o["ref"] for o in listed(db, "orgs", "--limit", "1")] == ["ORG-IT-0001"]

    table = run("list", "orgs", "--limit", "1", db=db)
    assert table.exit_code == 0
    assert table.output.splitlines()[0].split() == ["ref", "name", "country", "region", "ecosystems", "status", "registered", "on", "labels"]
    assert table.output.splitlines()[-1] == "2 organisations (the first 1 of 2)"
    assert run("list", "pitches", "--activity", "MM-NONE", db=db).output == "0 pitches\n"


def test_list_as_of_a_moment_before_anything_was_recorded_lists_nothing(db_url: str) -> None:
    db = imported(db_url)
    assert listed(db, "orgs", "--as-of", "2020-01-01") == []


def test_list_refuses_bad_filters_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    db = imported(f"sqlite:///{tmp_path / 'ledger.db'}")
    before = snapshot(db)
    for args, line in [
        (("orgs", "--status", "held"), "Error: status: 'held': not a status of orgs (one of: registered, published, archived)"),
        (("activities", "--year", "2025", "--from", "2025-01-01"), "Error: year: '2025': give --year or --from/--to, not both"),
        (("orgs", "--country", "Latvia"), "Error: country: 'Latvia': not an ISO 3166 alpha-2 country code"),
        (("cases", "--from", "2025-01-01", "--to", "2024-01-01"), "Error: to: '2024-01-01': is before from (2025-01-01)"),
    ]:
        result = run("list", *args, db=db)
        assert (result.exit_code, result.output) == (1, line + "\n"), args
    assert snapshot(db) == before


def test_show_gives_a_record_s_current_state_or_its_state_at_a_moment(db_url: str) -> None:
    db = imported(db_url)
    shown = json.loads(run("show", "ORG-LV-0007", "--format", "json", db=db).output)
    assert (shown["kind"], shown["version"], shown["as_of"]) == ("ClusterOrganisation", 2, None)
    assert shown["state"]["members"] == {"smes": 31, "large_enterprises": 4, "research_organisations": 5, "universities": 0, "other": 0}
    assert shown["state"]["published"] is True and shown["state"]["created_at"] == "2024-01-10T00:00:00+00:00"

    # A participant named by its organisation within the activity, not by the composite reference.
    by_org = run("show", "ORG-IT-0001", "--activity", "MM-2024-MILAN", "--format", "json", db=db)
    composite = run("show", "MM-2024-MILAN/ORG-IT-0001", "--format", "json", db=db)
    assert by_org.output == composite.output
    assert json.loads(by_org.output)["state"]["status"] == "attended"
    history = run("history", "ORG-IT-0001", "--activity", "MM-2024-MILAN", "--format", "json", db=db)
    assert [e["type"] for e in json.loads(history.output)] == ["Participation.Registered", "Participation.Attended"]

    table = run("show", "CASE-2024-0001", db=db).output.splitlines()
    assert table[0] == "CooperationCase CASE-2024-0001: version 4"
    assert "stage       joint_project_launched" in table

    unknown = run("show", "ORG-XX-9999", db=db)
    assert (unknown.exit_code, unknown.output) == (1, "Error: unknown record: 'ORG-XX-9999'\n")
    early = run("show", "ORG-LV-0007", "--as-of", "2020-01-01", db=db)
    assert early.exit_code == 1 and early.output.startswith("Error: as-of: 2020-01-01T00:00:00+00:00: 'ORG-LV-0007' was first recorded later, at ")


def test_audit_log_lists_one_record_and_stops_at_the_limit(db_url: str) -> None:
    db = imported(db_url)
    record = json.loads(run("audit", "log", "--record", "CASE-2024-0001", "--format", "json", db=db).output)
    assert [(e["aggregate"], e["type"]) for e in record] == [("CASE-2024-0001", "CooperationCase.Identified")] + [
        ("CASE-2024-0001", "CooperationCase.Advanced")] * 3
    composite = json.loads(run("audit", "log", "--record", "MM-2024-MILAN/P-3f9c2a", "--format", "json", db=db).output)
    assert [e["type"] for e in composite] == ["Participation.Registered"]
    first = json.loads(run("audit", "log", "--limit", "2", "--format", "json", db=db).output)
    assert [e["position"] for e in first] == [1, 2]
    table = run("audit", "log", "--record", "CASE-2024-0001", "--limit", "3", db=db)
    assert table.output.splitlines()[-1] == "more follow: only the first 3 are listed (--limit)"
    assert len(table.output.splitlines()) == 2 + 3 + 2
    assert run("audit", "log", "--record", "ORG-XX-9999", db=db).output.splitlines()[-1].startswith("0 event")
