"""Rough edges an admin met in a working day with the command line, each held to its exact outcome."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import bootstrap
from cli.main import ledger

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "platform-actions.jsonl"
LEDGER = Path(sys.executable).parent / "ledger"
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


def test_a_pitch_is_delivered_by_an_organisation_registered_for_the_activity(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    for args in (REGISTER, (*SCHEDULE, "--place", "Rome")):
        assert run(*args, db=url).exit_code == 0, run(*args, db=url).output
    pitch = ("pitch", "deliver", "--pitch", "P-1", "--activity", "MM-T1", "--org", "ORG-T1", "--title", "Ours", "--at", "2024-05-01T15:00:00")
    refused(run(*pitch, db=url), "org: 'ORG-T1' is not registered for activity 'MM-T1'; register it first (participant register)")
    assert [e["type"] for e in json.loads(run("audit", "log", "--format", "json", db=url).output)][-1] == "Activity.Scheduled"
    assert run("participant", "register", "--activity", "MM-T1", "--org", "ORG-T1", "--at", "2024-04-01", db=url).exit_code == 0
    assert run(*pitch, db=url).exit_code == 0
    result = imported(tmp_path, {"action": "pitch.deliver", "pitch": "P-2", "activity": "MM-T1", "org": "ORG-T9", "title": "Theirs",
                                 "occurred_at": "2024-05-01T16:00:00Z"})
    assert result.exit_code == 1 and "error: line 1: " in result.output


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


def test_every_text_output_writes_counts_numbers_and_moments_in_one_style(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    one = tmp_path / "one.jsonl"
    one.write_text(EXAMPLE.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    assert run("import", str(one), db=url).output.endswith(f"imported 1 action from {one}: 1 event written, 0 already recorded\n")
    assert run("import", str(one), db=url).output == f"imported 1 action from {one}: 0 events written, 1 already recorded\n"
    assert run("trace", "member_organisations_represented", db=url).output.endswith("\nmember_organisations_represented = 0 (0 events listed)\n")
    assert run("org", "publish", "--org", "ORG-IT-0001", "--at", "2024-01-09", db=url).output == "recorded 1 event at position 3\n"
    assert run("trace", "cluster_organisations", db=url).output.endswith("\ncluster_organisations = 1 (1 event listed)\n")
    report = run("report", "impact", db=url).output
    assert "\nmember_organisations_represented        135      more than 155,000\n" in report
    assert "\ncluster_organisations                   1        about 1,500\n" in report
    assert "\nmember_organisations_represented,135,more than 155000\n" in run("report", "impact", "--format", "csv", db=url).output  # data, as written
    row = run("history", "ORG-IT-0001", db=url).output.splitlines()[2]
    assert re.match(r"1 +ClusterOrganisation\.Registered +2024-01-08T00:00:00\+00:00  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00  admin\.anna ", row), row


def test_a_report_names_the_ecosystem_figure_for_what_it_counts_and_keeps_the_published_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLE), db=url).exit_code == 0
    note = "most_represented_ecosystem is the published figure most_represented_sector, counted from the profiles' industrial ecosystems, not from their free-text sectors"
    table = run("report", "impact", db=url).output
    assert "\nmost_represented_ecosystem              digital  exactly digital\n" in table and table.endswith(f"\n{note}\n")
    assert f"regularly updated = updated within 365 days; {note}." in run("report", "impact", "--format", "markdown", db=url).output
    assert "\nmost_represented_sector,digital,exactly digital\n" in run("report", "impact", "--format", "csv", db=url).output
    assert json.loads(run("report", "impact", "--format", "json", db=url).output)["figures"]["most_represented_sector"] == "digital"
    page = run("report", "impact", "--format", "html", db=url).output
    assert '<tr data-key="most_represented_sector"><td>most represented ecosystem</td>' in page


def test_a_report_of_another_period_is_not_set_against_the_published_figures(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLE), db=url).exit_code == 0
    page = run("report", "impact", "--from", "2025-01-01", db=url, *("--format", "html")).output
    assert ('<p class="caption" id="not-compared">The published values cover 2024-01-01 to 2025-12-31; this report covers 2025-01-01 to '
            "2025-12-31, so its figures are not set against them.</p>") in page
    assert "against published" not in page and "below" not in page
    assert run("report", "impact", "--from", "2025-01-01", db=url).output.splitlines()[-2] == (
        "published values cover 2024-01-01 to 2025-12-31, not this period; they are shown, not compared")
    whole = run("report", "impact", "--format", "html", db=url).output
    assert "<th>against published</th>" in whole and 'id="not-compared"' not in whole


def test_the_html_report_folds_its_appendix_and_says_when_and_by_what_it_was_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLE), db=url).exit_code == 0
    page = run("report", "impact", "--format", "html", db=url).output
    assert '<details id="evidence"><summary><h2>Appendix: the events behind each count</h2></summary>' in page
    generated = re.search(r'<p id="generated"><small>Generated <time datetime="([^"]+)">[^<]+ UTC</time> by cluster-ledger ([^<]+)\.</small></p>', page)
    assert generated, page
    assert abs((datetime.now(timezone.utc) - datetime.fromisoformat(generated.group(1))).total_seconds()) < 60
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", generated.group(2))


def test_an_empty_ledger_reports_none_rather_than_python_words(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("db", "init", db=url).exit_code == 0
    for fmt in ("table", "markdown", "html"):
        output = run("report", "impact", "--format", fmt, db=url).output
        assert "None" not in output and "no value" not in output and "the first 0" not in output, fmt
    assert "\nmost_represented_ecosystem              none    exactly digital\n" in run("report", "impact", db=url).output
    assert "| most_represented_ecosystem | none |" in run("report", "country", "IT", "--format", "markdown", db=url).output
    page = run("report", "impact", "--format", "html", db=url).output
    assert '<p class="caption">No event is counted in this report.</p>' in page and "nothing to compare" in page


def test_a_country_sheet_names_profiles_without_a_region(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run(*REGISTER, db=url).exit_code == 0
    assert run("org", "publish", "--org", "ORG-T1", "--at", "2024-01-03", db=url).exit_code == 0
    assert "\nprofiles by region (NUTS 2024): no region given (1)\n" in run("report", "country", "IT", db=url).output


def test_a_relay_to_a_closed_port_gives_up_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run(*REGISTER, db=url).exit_code == 0
    started = time.monotonic()
    done = subprocess.run([str(LEDGER), "relay", "--until-caught-up", "--bootstrap", "127.0.0.1:1", "--give-up-after", "3", "--db", url],
                          capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert (done.returncode, done.stdout) == (1, "")
    assert re.fullmatch(r"Error: bootstrap: '127\.0\.0\.1:1': no broker answered in \d s; gave up with 0 events published\n", done.stderr), done.stderr


def test_a_postgresql_server_that_does_not_answer_is_named_while_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "CONNECT_NOTICE_AFTER", 0.2)
    with socket.socket() as server:  # accepts, then says nothing, then hangs up
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def hang_up() -> None:
            conn, _ = server.accept()
            time.sleep(1.0)
            conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        result = CliRunner().invoke(ledger, ["org", "publish", "--org", "ORG-T1", "--at", "2024-01-02", "--db", f"postgresql://u:p@127.0.0.1:{port}/x"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"connecting to PostgreSQL at 127.0.0.1:{port} as u (gives up after 10 s)...\n"
                                    f"Error: db: cannot connect to PostgreSQL at 127.0.0.1:{port}: "), result.stderr
    assert result.stderr.endswith("; nothing was written\n") and result.stderr.count("\n") == 2


def test_a_postgresql_url_on_a_closed_port_fails_at_once_for_a_write() -> None:
    started = time.monotonic()
    result = CliRunner().invoke(ledger, ["org", "publish", "--org", "ORG-T1", "--at", "2024-01-02", "--db", "postgresql://u:p@127.0.0.1:1/x"])
    assert time.monotonic() - started < 3  # the pool alone would wait its whole connect timeout (10 s)
    assert result.exit_code == 1
    assert result.output.startswith("Error: db: cannot connect to PostgreSQL at 127.0.0.1:1: connection failed: ")
    assert result.output.endswith("; nothing was written\n") and result.output.count("\n") == 1


def test_the_readme_set_up_names_what_scripts_test_installs_and_changes_outside_the_clone() -> None:
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    services = (ROOT / "scripts" / "services").read_text(encoding="utf-8")
    packages = set(re.findall(r"apt-get install -y -qq (\S+) ", script)) | set(re.findall(r"apt_install ([\w.-]+)", services))
    assert {"chromium", "golang-go", "sqlite3", "faketime", "postgresql"} <= packages
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme[readme.index("## Two commands"):readme.index("## Using the ledger")]
    assert "`scripts/test` needs root" in setup
    assert [p for p in sorted(packages) if f"`{p}`" not in setup] == []
    assert "chmod o+x" in services and "`chmod o+x`" in setup and "user `postgres`" in setup
    assert 'if [[ "$(id -u)" -ne 0 ]]; then' in script


def test_the_readme_says_the_class_version_the_code_has_and_what_its_examples_need() -> None:
    from domain.model import ClusterOrganisation

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"(they are at {ClusterOrganisation.Registered.class_version}\n   now:" in readme
    using = readme[readme.index("## Using the ledger"):readme.index("```text", readme.index("## Using the ledger"))]
    assert all(f"`{folder}/`" in using for folder in ("examples", "tests/golden", "interop"))


@pytest.mark.parametrize("command", [("report", "impact"), ("report", "country", "IT"), ("trace", "cluster_organisations")])
def test_a_period_whose_update_window_reaches_before_the_year_1_is_refused_in_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLE), db=url).exit_code == 0
    refused(run(*command, "--from", "0001-01-01", db=url), "window_days: '365': reaches back before the year 1 from 0001-01-01")
    assert run(*command, "--from", "0002-01-01", db=url).exit_code == 0
