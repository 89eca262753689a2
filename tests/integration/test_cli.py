"""The admin command line on a real SQLite file, through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cli.lazy import LazyGroup
from cli.main import ledger
from tests.conftest import snapshot, stored_rows

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "platform-actions.jsonl"
BAD = ROOT / "tests" / "data" / "bad-imports"


def run(*args: str, db: str | None = None) -> Result:
    full = [*args, "--db", db] if db else list(args)
    return CliRunner().invoke(ledger, full, catch_exceptions=False)


def all_commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(group, LazyGroup):
        group.load_all()  # commands added when named are checked too
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += all_commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


@pytest.mark.parametrize("path", all_commands(ledger), ids=lambda p: " ".join(p) or "ledger")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Usage: ledger" in result.output
    summary = result.output.split("\n\n")[1].strip()
    assert summary and not summary.startswith("Options")


def test_top_level_help_lists_every_group() -> None:
    output = run("--help").output
    for group in ("org", "activity", "person", "participant", "meeting", "pitch", "case", "publication", "import", "demo", "history"):
        assert f"  {group} " in output


def test_every_option_has_help() -> None:
    for path in all_commands(ledger):
        command: click.Command = ledger
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"ledger {' '.join(path)} {param.opts[0]} has no help"


def test_full_scenario_from_registration_to_a_launched_project(db_url: str) -> None:
    steps = [
        ("org", "register", "--org", "ORG-A", "--name", "Agri-food Cluster", "--country", "DE", "--region", "DE21",
         "--ecosystems", "agri-food", "--year-established", "2015", "--smes", "80", "--at", "2024-01-03"),
        ("org", "register", "--org", "ORG-B", "--name", "Hydrogen Cluster", "--country", "MA",
         "--ecosystems", "energy-renewables", "--year-established", "2020", "--at", "2024-01-04"),
        ("org", "publish", "--org", "ORG-A", "--at", "2024-01-05"),
        ("activity", "schedule", "--activity", "MISSION-MA", "--kind", "mission", "--title", "Mission to Morocco",
         "--starts-on", "2024-04-08", "--ends-on", "2024-04-10", "--place", "Casablanca", "--target-countries", "MA", "--at", "2024-02-01"),
        ("participant", "register", "--activity", "MISSION-MA", "--org", "ORG-A", "--at", "2024-03-01"),
        ("participant", "register", "--activity", "MISSION-MA", "--org", "ORG-B", "--at", "2024-03-02"),
        ("meeting", "request", "--meeting", "MA-M1", "--activity", "MISSION-MA", "--requester", "ORG-A", "--partner", "ORG-B", "--at", "2024-04-01"),
        ("meeting", "accept", "--meeting", "MA-M1", "--at", "2024-04-02"),
        ("meeting", "hold", "--meeting", "MA-M1", "--at", "2024-04-09"),
        ("activity", "hold", "--activity", "MISSION-MA", "--at", "2024-04-10"),
        ("case", "identify", "--case", "CASE-MA-1", "--orgs", "ORG-A", "--orgs", "ORG-B", "--source-kind", "mission",
         "--source", "MISSION-MA", "--title", "Green hydrogen for greenhouses", "--at", "2024-04-20"),
        ("case", "advance", "--case", "CASE-MA-1", "--stage", "agreement_signed", "--at", "2024-09-01"),
        ("case", "advance", "--case", "CASE-MA-1", "--stage", "joint_project_launched", "--project", "Horizon Europe GH2", "--at", "2025-01-15"),
    ]
    for step in steps:
        result = run(*step, "--actor", "admin.test", db=db_url)
        assert result.exit_code == 0, (step, result.output)
        assert result.output.splitlines()[-1].startswith("recorded 1 event")  # the first also authorizes the test writer
    history = run("history", "CASE-MA-1", "--format", "json", db=db_url)
    events = json.loads(history.stdout)
    assert [e["type"] for e in events] == ["CooperationCase.Identified", "CooperationCase.Advanced", "CooperationCase.Advanced"]
    assert events[-1]["details"] == {"stage": "joint_project_launched", "project": "Horizon Europe GH2"}
    assert {e["actor"] for e in events} == {"admin.test"}
    assert events[0]["occurred_at"] == "2024-04-20T00:00:00+00:00"


def test_repeating_a_command_writes_nothing(db_url: str) -> None:
    args = ("org", "register", "--org", "ORG-R", "--name", "R", "--country", "FR", "--ecosystems", "digital",
            "--year-established", "2001", "--at", "2024-01-03")
    assert run(*args, db=db_url).output.splitlines()[-1].startswith("recorded")
    assert run(*args, db=db_url).output.strip() == "already recorded; nothing written"


def test_repeating_a_command_without_a_time_writes_nothing(db_url: str) -> None:
    args = ("org", "register", "--org", "ORG-NOW", "--name", "Now", "--country", "FR", "--ecosystems", "digital", "--year-established", "2001")
    assert run(*args, db=db_url).output.splitlines()[-1].startswith("recorded")
    assert run(*args, db=db_url).output.strip() == "already recorded; nothing written"
    assert run("org", "publish", "--org", "ORG-NOW", db=db_url).output.startswith("recorded")
    assert run("org", "publish", "--org", "ORG-NOW", db=db_url).output.strip() == "already recorded; nothing written"
    events = json.loads(run("history", "ORG-NOW", "--format", "json", db=db_url).stdout)
    assert [e["type"] for e in events] == ["ClusterOrganisation.Registered", "ClusterOrganisation.Published"]


def test_a_person_registered_again_with_other_personal_data_is_refused(db_url: str) -> None:
    first = ("person", "register", "--person", "P-0009", "--name", "Ann", "--email", "ann@example.org", "--at", "2024-01-02")
    assert run(*first, db=db_url).exit_code == 0
    assert run(*first, db=db_url).output.strip() == "already recorded; nothing written"
    other = run("person", "register", "--person", "P-0009", "--name", "Bob", "--email", "bob@example.org", "--at", "2024-01-02", db=db_url)
    assert other.exit_code == 1 and "person: 'P-0009': is already registered with another name or e-mail" in other.output


def test_import_of_the_example_file_then_again(db_url: str) -> None:
    first = run("import", str(EXAMPLE), db=db_url)
    assert first.exit_code == 0, first.output
    lines = len(EXAMPLE.read_text().splitlines())
    assert f"{lines} events written, 0 already recorded" in first.output
    second = run("import", str(EXAMPLE), db=db_url)
    assert f"0 events written, {lines} already recorded" in second.output
    history = run("history", "ORG-IT-0001", db=db_url).output
    assert "ClusterOrganisation.LabelAwarded" in history and "level=silver" in history


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("unknown-action.jsonl", "line 2: action: 'org.teleport': unknown action"),
        ("bad-country.jsonl", "line 1: country: 'XX': not an ISO 3166 alpha-2 country code"),
        ("region-of-another-country.jsonl", "line 1: region: 'ITC4' is in IT, not in country 'DE'"),
        ("negative-members.jsonl", "line 1: members.smes: -3: must be at least 0"),
        ("meeting-between-unregistered.jsonl", "line 7: participant: 'ORG-LV-0007' is not registered for activity 'MM-2024-MILAN'"),
        ("malformed-line-3.jsonl", "line 3: malformed JSON"),
    ],
)
def test_a_bad_import_file_changes_nothing(db_url: str, name: str, expected: str) -> None:
    seeded = run("org", "register", "--org", "ORG-SEED", "--name", "Seed", "--country", "AT", "--ecosystems", "tourism",
                 "--year-established", "1999", "--at", "2024-01-02", db=db_url)
    assert seeded.exit_code == 0
    before = snapshot(db_url)
    result = run("import", str(BAD / name), db=db_url)
    assert result.exit_code == 1
    assert f"error: {expected}" in result.output
    assert "nothing was written" in result.output
    assert "Traceback" not in result.output
    assert snapshot(db_url) == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("org", "register", "--org", "ORG-Z", "--name", "Z", "--country", "ZZ", "--ecosystems", "digital", "--year-established", "2001"), "country: 'ZZ'"),
        (("org", "publish", "--org", "ORG-NOPE"), "unknown cluster organisation: 'ORG-NOPE'"),
        (("org", "publish", "--org", "ORG-NOPE", "--at", "yesterday"), "at: 'yesterday': expected YYYY-MM-DD or an ISO timestamp"),
        (("history", "NOTHING-HERE"), "unknown record: 'NOTHING-HERE'"),
        (("history", "NOTHING-HERE", "--as-of", "2025-01-01"), "unknown record: 'NOTHING-HERE'"),
        (("import", "/no/such/file.jsonl"), "file: '/no/such/file.jsonl'"),
        (("import", "/tmp"), "file: '/tmp': is a folder; expected a JSON Lines file"),
        (("import", "/dev/null"), "file: '/dev/null': holds no actions (every line is blank)"),
        (("org", "register", "--org", "ORG-Z", "--name", "Z", "--country", "PTT", "--ecosystems", "digital", "--year-established", "2001"),
         "Error: country: 'PTT': not an ISO 3166 alpha-2 country code"),
        (("audit", "log", "--type", "Nope"), "type: 'Nope': not an event type"),
    ],
)
def test_user_mistakes_get_one_line_and_a_non_zero_exit(db_url: str, args: tuple[str, ...], expected: str) -> None:
    assert run("db", "init", db=db_url).exit_code == 0  # a read of a database that holds no ledger is a mistake of its own
    result = run(*args, db=db_url)
    assert result.exit_code != 0
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_bad_database_url_is_named() -> None:
    result = run("history", "X", db="mysql://somewhere/db")
    assert result.exit_code == 1
    assert "db: 'mysql://somewhere/db'" in result.output


def test_person_data_stays_out_of_the_event_file(db_url: str) -> None:
    result = run("person", "register", "--person", "P-0077", "--name", "Jan Kowalski", "--email", "jan@example.org", "--at", "2024-02-02", db=db_url)
    assert result.exit_code == 0
    states = [bytes(r[0]) for r in stored_rows(db_url, {"sqlite": "SELECT state FROM stored_events", "postgres": "SELECT state FROM {schema}.ledger_events"})]
    people = stored_rows(db_url, {"sqlite": "SELECT person, name, email FROM personal_data", "postgres": "SELECT person, name, email FROM {schema}.personal_data"})
    assert states and not any(b"Kowalski" in s or b"jan@example.org" in s for s in states)
    assert people == [("P-0077", "Jan Kowalski", "jan@example.org")]


def test_demo_writes_a_small_history_and_refuses_a_used_ledger(db_url: str) -> None:
    result = run("demo", "--scale", "0.01", "--seed", "7", db=db_url)
    assert result.exit_code == 0, result.output
    assert "wrote a demo history of" in result.output
    again = run("demo", "--scale", "0.01", db=db_url)
    assert again.exit_code == 1 and "already holds events" in again.output


def test_required_options_are_marked_in_help() -> None:
    help_text = " ".join(CliRunner().invoke(ledger, ["org", "register", "--help"]).output.split())
    assert "(repeat, or separate with commas) [required]" in help_text
    missing = CliRunner().invoke(ledger, ["org", "register", "--org", "ORG-Q", "--name", "Q", "--country", "IT", "--year-established", "2001"])
    assert missing.exit_code == 2 and "Missing option '--ecosystems'" in missing.output


def test_audit_log_types_are_full_names_event_names_or_record_kinds(db_url: str) -> None:
    assert run("import", "examples/platform-actions.jsonl", db=db_url).exit_code == 0
    counts = {}
    for given in ("Person.Registered", "Person", "Registered"):
        result = run("audit", "log", "--type", given, "--format", "json", db=db_url)
        assert result.exit_code == 0, result.output
        counts[given] = {e["type"] for e in json.loads(result.output)}
    assert counts["Person.Registered"] == counts["Person"] == {"Person.Registered"}
    assert {"Person.Registered", "ClusterOrganisation.Registered", "Participation.Registered"} <= counts["Registered"]
