"""Rough edges an admin met in a working day with the command line, each held to its exact outcome."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import ledger
from tests.conftest import snapshot

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "platform-actions.jsonl"
REGISTER = ("org", "register", "--org", "ORG-T1", "--name", "Test Cluster", "--country", "IT", "--ecosystems", "digital",
            "--year-established", "2010", "--at", "2024-01-02")
SCHEDULE = ("activity", "schedule", "--activity", "MM-T1", "--kind", "matchmaking", "--title", "Matchmaking",
            "--starts-on", "2024-05-01", "--ends-on", "2024-05-02", "--at", "2024-02-01")
MOMENT_FORMS = "expected YYYY-MM-DD or an ISO timestamp such as 2025-06-01T12:00:00+02:00 (at most 6 decimals, offset in hours and minutes)"


def run(*args: str, db: str | None = None) -> Result:
    return CliRunner().invoke(ledger, [*args, "--db", db] if db else list(args), catch_exceptions=False)


def refused(result: Result, line: str, exit_code: int = 1) -> None:
    """The command failed with exactly this one line."""
    assert (result.exit_code, result.output) == (exit_code, f"Error: {line}\n")


def imported(tmp_path: Path, *lines: dict[str, object]) -> Result:
    path = tmp_path / "actions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return run("import", str(path), db=f"sqlite:///{tmp_path / 'ledger.db'}")


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


@pytest.mark.parametrize("command", [("report", "impact"), ("history", "ORG-IT-0001"), ("trace", "cluster_organisations")])
def test_a_moment_in_the_future_is_refused_as_of(tmp_path: Path, command: tuple[str, ...]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLE), db=url).exit_code == 0
    result = run(*command, "--as-of", "2099-01-01", db=url)
    assert result.exit_code == 1
    assert re.fullmatch(r"Error: as-of: '2099-01-01': is in the future \(now: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\); "
                        r"leave it out for the ledger as it is now\n", result.output), result.output
    assert run(*command, "--as-of", now(), db=url).exit_code == 0


def test_reversed_audit_dates_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLE), db=url).exit_code == 0
    refused(run("audit", "log", "--since", "2027-01-01", "--until", "2020-01-01", db=url),
            "until: '2020-01-01': is before since (2027-01-01); nothing could be listed")


def test_the_audit_table_marks_a_cut_summary_and_writes_moments_and_counts_in_one_style(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run(*REGISTER, "--region", "ITC4", "--sectors", "medical devices and long sector names", db=url).exit_code == 0
    output = run("audit", "log", db=url).output
    row = output.splitlines()[3]
    assert row.endswith(" ref=ORG-T1, name=Test Cluster, country=IT, region=ITC4, nuts_version=2024, sect…")
    assert re.match(r"2 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00  2024-01-02T00:00:00\+00:00  ", row), row
    assert output.endswith("\n2 events\n")
    assert run("audit", "log", "--type", "Registered", db=url).output.endswith("\n1 event\n")


def test_a_region_is_stored_in_capitals_as_the_country_is(db_url: str) -> None:
    assert run("org", "register", "--org", "ORG-T1", "--name", "T", "--country", "it", "--region", "itc4", "--ecosystems", "digital",
               "--year-established", "2010", "--at", "2024-01-02", db=db_url).exit_code == 0
    details = json.loads(run("history", "ORG-T1", "--format", "json", db=db_url).output)[0]["details"]
    assert (details["country"], details["region"]) == ("IT", "ITC4")


def test_an_activity_is_online_or_has_a_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    refused(run(*SCHEDULE, "--place", "Rome", "--online", db=url), "place: an online activity has no place: give place or online, not both")
    refused(run(*SCHEDULE, db=url), "place: missing: an activity that is not online needs a place (or give online)")
    result = imported(tmp_path, {"action": "activity.schedule", "activity": "MM-T1", "kind": "matchmaking", "title": "M", "starts_on": "2024-05-01",
                                 "ends_on": "2024-05-02", "place": "Rome", "online": True, "occurred_at": "2024-02-01"})
    assert (result.exit_code, result.output.splitlines()[0]) == (1, "error: line 1: place: an online activity has no place: give place or online, not both")


def test_a_publication_update_says_what_changed(tmp_path: Path) -> None:
    refused(run("publication", "update", "--publication", "PUB-1", "--at", "2024-03-01", db=f"sqlite:///{tmp_path / 'ledger.db'}"),
            "title: give title or note (or both): an update says what changed")
    assert not (tmp_path / "ledger.db").exists()


def test_a_meeting_cancellation_names_its_outcome(tmp_path: Path) -> None:
    result = run("meeting", "cancel", "--meeting", "M-1", db=f"sqlite:///{tmp_path / 'ledger.db'}")
    assert result.exit_code == 2
    assert result.output.endswith("Error: Missing option '--outcome'. Choose from:\n\tcancelled,\n\tno_show\n"), result.output
    result = imported(tmp_path, {"action": "meeting.cancel", "meeting": "M-1", "occurred_at": "2024-03-01"})
    assert "error: line 1: outcome: missing (one of: cancelled, no_show)\n" in result.output


@pytest.mark.parametrize(("args", "line"), [
    (("participant", "register", "--activity", "A-1"), "org: give exactly one of org or person"),
    (("participant", "register", "--activity", "A-1", "--org", "ORG-1", "--person", "P-abcd"), "org: give exactly one of org or person, not both"),
    (("case", "identify", "--case", "C-1", "--orgs", "ORG-1", "--source-kind", "meeting", "--source", "M-1", "--title", "T"),
     "orgs: ('ORG-1',): needs at least 2; 1 given"),
    (("person", "register", "--person", "P-abcd", "--name", "A", "--email", "someone"), "email: 'someone': not an e-mail address (expected name@domain.tld)"),
    (("org", "update", "--org", "ORG-1", "--smes", "-1"), "smes: -1: must be at least 0"),
    (("org", "update", "--org", "ORG-1", "--other-members", "-1"), "other-members: -1: must be at least 0"),
])
def test_validation_names_the_option_in_one_line(tmp_path: Path, args: tuple[str, ...], line: str) -> None:
    refused(run(*args, db=f"sqlite:///{tmp_path / 'ledger.db'}"), line)


def test_an_optional_list_option_lists_its_choices_and_takes_several(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = run("org", "update", "--org", "ORG-T1", "--ecosystems", "digitl", db=url)
    assert result.exit_code == 2
    assert "Error: Invalid value for '--ecosystems': 'digitl' is not one of 'aerospace-defence', 'agri-food'," in result.output
    assert run(*REGISTER, db=url).exit_code == 0
    assert run("org", "update", "--org", "ORG-T1", "--ecosystems", "digital", "--ecosystems", "health", "--at", "2024-02-01", db=url).exit_code == 0
    assert json.loads(run("history", "ORG-T1", "--format", "json", db=url).output)[1]["details"]["ecosystems"] == ["digital", "health"]


def test_import_lines_name_their_keys_and_choices(tmp_path: Path) -> None:
    result = imported(
        tmp_path,
        {"action": "participant.register", "activity": "A-1", "occurred_at": "2024-03-01"},
        {"action": "org.update", "org": "ORG-1", "ecosystems": ["digitl"], "year_established": "x", "occurred_at": "2024-03-01"},
        {"action": "org.update", "org": "ORG-1", "ecosystems": "digital", "occurred_at": "2024-03-01"},
    )
    assert result.exit_code == 1
    assert result.output.splitlines()[:4] == [
        "error: line 1: org: give exactly one of org or person",
        "error: line 2: ecosystems.0: 'digitl': expected one of: aerospace-defence, agri-food, construction, cultural-creative, digital, "
        "electronics, energy-intensive, energy-renewables, health, mobility-transport-automotive, proximity-social-economy, retail, textile, tourism",
        "error: line 2: year_established: 'x': Input should be a valid integer, unable to parse string as an integer",
        "error: line 3: ecosystems: 'digital': expected a list",
    ]


def test_a_byte_order_mark_after_the_first_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "actions.jsonl"
    path.write_text('\n\ufeff{"action": "org.publish"}\n', encoding="utf-8")
    result = run("import", str(path), db=f"sqlite:///{tmp_path / 'ledger.db'}")
    assert "error: line 2: starts with a byte order mark (U+FEFF), which only the first line of a file may; save the file as UTF-8 without one\n" in result.output


def test_a_signer_key_given_for_a_verifier_key_is_named(tmp_path: Path, signing_key: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLE), db=url).exit_code == 0
    assert run("checkpoint", "--out", str(tmp_path / "cp.txt"), db=url).exit_code == 0
    result = run("report", "verify", str(tmp_path / "cp.txt"), "--verifier-key", str(signing_key), db=url)
    refused(result, "verifier key: this is a signer key (PRIVATE+KEY+...), which stays secret; give its verifier key, NAME.pub from `ledger keygen`")


def test_a_malformed_database_setting_names_where_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_DB", "garbage")
    expected = "'garbage': expected sqlite:///path/to/ledger.db, postgresql://user:password@host:port/dbname or memory://"
    refused(run("audit", "log"), f"$LEDGER_DB: {expected}")
    refused(run("audit", "log", "--db", "garbage"), f"db: {expected}")


@pytest.mark.parametrize(("given", "stored"), [("EL", "GR"), ("uk", "GB"), ("gr", "GR")])
def test_a_country_as_the_eu_spells_it_is_stored_as_iso_3166(db_url: str, given: str, stored: str) -> None:
    assert run("org", "register", "--org", "ORG-T1", "--name", "T", "--country", given, "--ecosystems", "digital",
               "--year-established", "2010", "--at", "2024-01-02", db=db_url).exit_code == 0
    assert run("org", "publish", "--org", "ORG-T1", "--at", "2024-01-03", db=db_url).exit_code == 0
    assert json.loads(run("history", "ORG-T1", "--format", "json", db=db_url).output)[0]["details"]["country"] == stored
    report = json.loads(run("report", "country", given, "--format", "json", db=db_url).output)
    assert (report["country"], report["figures"]["cluster_organisations"]) == (stored, 1)


def test_a_country_the_eu_spells_otherwise_is_taken_on_import_too(tmp_path: Path) -> None:
    result = imported(tmp_path, {"action": "org.register", "org": "ORG-T1", "name": "T", "country": "EL", "region": "el30", "ecosystems": ["digital"],
                                 "year_established": 2010, "occurred_at": "2024-01-02"})
    assert result.exit_code == 0, result.output
    details = json.loads(run("history", "ORG-T1", "--format", "json", db=f"sqlite:///{tmp_path / 'ledger.db'}").output)[0]["details"]
    assert (details["country"], details["region"]) == ("GR", "EL30")
    refused(run("report", "country", "XX", db=f"sqlite:///{tmp_path / 'ledger.db'}"),
            "country: 'XX': not an ISO 3166 alpha-2 country code (EL and UK, as the EU spells them, are taken as GR and GB)")


@pytest.mark.parametrize("given", ["2025-06-01T12:00:00.1234567", "2025-W22-1", "20250601", "2025-06-01T12:00:00+00:00:30", "2025-152", "2025-06-01T1200"])
def test_a_moment_in_an_undocumented_form_is_refused(tmp_path: Path, given: str) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    refused(run(*REGISTER[:-1], given, db=url), f"at: {given!r}: {MOMENT_FORMS}")
    refused(run("audit", "log", "--since", given, db=url), f"since: {given!r}: {MOMENT_FORMS}")
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize(("given", "effective"), [
    ("2025-06-01", "2025-06-01T00:00:00+00:00"), ("2025-06-01T12:00", "2025-06-01T12:00:00+00:00"),
    ("2025-06-01T12:00:00.123456Z", "2025-06-01T12:00:00.123456+00:00"), ("2025-06-01T14:30:00+02:30", "2025-06-01T12:00:00+00:00"),
])
def test_the_documented_moment_forms_are_taken(tmp_path: Path, given: str, effective: str) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run(*REGISTER[:-1], given, db=url).exit_code == 0
    assert json.loads(run("history", "ORG-T1", "--format", "json", db=url).output)[0]["occurred_at"] == effective
