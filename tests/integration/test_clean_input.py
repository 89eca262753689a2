"""Nothing a user types poisons the permanent log or crashes the CLI: references, free text, limits, import files, output, URLs."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from eventsourcing.persistence import StoredEvent

import bootstrap
from cli.main import ledger
from domain.base import ref_id
from service_layer.importing import MAX_REPORTED
from tests.conftest import snapshot
from tests.integration.test_forget_person import stored_bytes

ORG = {"action": "org.register", "org": "ORG-IT-0101", "name": "Cluster", "country": "IT", "region": "ITC4", "ecosystems": ["digital"],
       "year_established": 2010, "members": {"smes": 85, "large_enterprises": 6, "research_organisations": 4}, "occurred_at": "2024-01-08"}


def run(*args: str, db: str) -> Result:
    result = CliRunner().invoke(ledger, [*args, "--db", db])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def refused(db: str, *args: str) -> str:
    before = snapshot(db)
    result = run(*args, db=db)
    assert result.exit_code == 1, result.output
    assert snapshot(db) == before
    return result.output.strip()


def seeded(db: str) -> None:
    # A first write creates the tables, so "nothing written" compares two states of a real store.
    assert run("org", "register", "--org", "ORG-SEED", "--name", "Seed", "--country", "AT", "--ecosystems", "tourism",
               "--year-established", "1999", "--at", "2024-01-02", db=db).exit_code == 0


def write_lines(folder: Path, *lines: str | bytes) -> str:
    path = folder / "actions.jsonl"
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return str(path)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--person", "maria@example.pt"), "person: 'maria@example.pt': looks like an e-mail address"),
        (("--person", "P-anna"), "person: 'P-anna': a person's reference is P- and 4 to 32 lower-case hex digits"),
        (("--person", "P-3f9c2a", "--name", "   "), "name: '   ': must not be blank"),
        (("--person", "P-3f9c2a", "--name", "\x1b[2J\x1b[31mRed"), "name: '\\x1b[2J\\x1b[31mRed': contains U+001B"),
        (("--person", "P-3f9c2a", "--name", "Ann\nposition 1  forged row"), "contains U+000A"),
        (("--person", "P-3f9c2a", "--name", "Ann\u202eevil"), "contains U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        (("--person", "P-3f9c2a", "--name", "Ann\x00"), "contains U+0000"),
        (("--person", "P-3f9c2a", "--name", "A" * 201), "is 201 characters long; at most 200 are accepted"),
    ],
)
def test_person_references_and_names_follow_the_rules(db_url: str, args: tuple[str, ...], expected: str) -> None:
    seeded(db_url)
    base = {"--person": "P-3f9c2a", "--name": "Ann", "--email": "ann@example.org"}
    given = dict(zip(args[::2], args[1::2]))
    options = [part for key, value in {**base, **given}.items() for part in (key, value)]
    output = refused(db_url, "person", "register", *options, "--at", "2024-01-02")
    assert len(output.splitlines()) == 1 and output.startswith("Error: ") and expected in output, output


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("ORG-ZW\u200b1", "a reference is 1 to 80 ASCII letters"), ("ORG 1", "(no spaces)"), ("a@b.eu", "looks like an e-mail"), ("X" * 81, "1 to 80")],
)
def test_references_are_ascii_without_spaces(db_url: str, ref: str, expected: str) -> None:
    seeded(db_url)
    output = refused(db_url, "org", "register", "--org", ref, "--name", "N", "--country", "IT", "--ecosystems", "digital",
                     "--year-established", "2010", "--at", "2024-01-02")
    assert expected in output and len(output.splitlines()) == 1


def test_an_idempotency_key_is_stored_as_a_digest_only(db_url: str) -> None:
    seeded(db_url)
    assert run("org", "publish", "--org", "ORG-SEED", "--key", "karla.keyleak@example.eu", "--at", "2024-01-03", db=db_url).exit_code == 0
    assert b"karla.keyleak" not in stored_bytes(db_url)
    again = run("org", "publish", "--org", "ORG-SEED", "--key", "karla.keyleak@example.eu", "--at", "2024-01-03", db=db_url)
    assert again.exit_code == 0 and "already recorded" in again.output


def test_counts_and_dates_have_bounds(db_url: str) -> None:
    seeded(db_url)
    output = refused(db_url, "org", "update", "--org", "ORG-SEED", "--smes", str(10**30), "--at", "2024-01-03")
    assert f"Error: smes: {10**30}: must be at most 1,000,000" in output
    output = refused(db_url, "activity", "schedule", "--activity", "A-1", "--kind", "matchmaking", "--title", "T", "--starts-on", "2400-01-01",
                     "--ends-on", "2400-01-02", "--place", "Rome", "--at", "2024-01-03")
    assert "starts-on: '2400-01-01': must lie between 1900-01-01 and 2100-12-31" in output


def test_a_member_update_changes_only_the_counts_it_names(db_url: str, tmp_path: Path) -> None:
    assert run("import", write_lines(tmp_path, json.dumps(ORG), json.dumps({"action": "org.publish", "org": "ORG-IT-0101", "occurred_at": "2024-01-09"})), db=db_url).exit_code == 0
    sheet = json.loads(run("report", "country", "IT", "--format", "json", db=db_url).output)["figures"]
    assert sheet["member_organisations_represented"] == 95
    assert run("org", "update", "--org", "ORG-IT-0101", "--smes", "90", "--at", "2024-02-01", db=db_url).exit_code == 0
    app = bootstrap.build_ledger(db_url)
    try:
        members = app.repository.get(ref_id("ORG-IT-0101")).members
    finally:
        app.close()
    assert (members.smes, members.large_enterprises, members.research_organisations) == (90, 6, 4)
    after = json.loads(run("report", "country", "IT", "--format", "json", db=db_url).output)["figures"]
    assert after == {**sheet, "member_organisations_represented": 100}
    assert "only the types given" in " ".join(CliRunner().invoke(ledger, ["org", "update", "--help"]).output.split())


def test_an_import_reports_every_bad_line_in_one_run(db_url: str, tmp_path: Path) -> None:
    seeded(db_url)
    file = write_lines(
        tmp_path,
        b"\xef\xbb\xbf" + json.dumps(ORG).encode(),                                   # 1: fine, after a BOM
        json.dumps({**ORG, "org": "ORG-IT-0102", "name": "Line\u2028Separator"}),     # 2: U+2028 is text inside a line, not a break
        '{"action": "org.publish", "org": "ORG-IT-0101", "org": "ORG-X", "occurred_at": "2024-01-09"}',  # 3: duplicate key
        "[" * 100_000,                                                                # 4: deep nesting
        '{"action": "org.register", "year_established": ' + "9" * 5000 + "}",         # 5: huge number
        json.dumps({**ORG, "org": "ORG-IT-0103", "name": "Nul\x00Name"}),             # 6: NUL (PostgreSQL cannot store it)
        json.dumps({"action": "org.publish", "org": "ORG-UNKNOWN", "occurred_at": "2024-01-09"}),  # 7: unknown reference
        json.dumps({"action": "org.publish", "org": "ORG-IT-0101", "occurred_at": "2024-01-09"}),  # 8: fine: line 1 registers it
        b"\xff\xfe not utf-8",                                                        # 9: undecodable
        "   {not json",                                                               # 10: malformed
    )
    output = refused(db_url, "import", file)
    lines = output.splitlines()
    assert lines[:-1] == [
        "error: line 2: name: 'Line\\u2028Separator': contains U+2028 (LINE SEPARATOR); control and format characters are not accepted",
        "error: line 3: org: appears twice in one object; each key once",
        "error: line 4: nested deeper than 16 levels",
        "error: line 5: a number of 5,000 characters; at most 30 are accepted",
        "error: line 6: name: 'Nul\\x00Name': contains U+0000 (a control or format character); control and format characters are not accepted",
        "error: line 7: unknown cluster organisation: 'ORG-UNKNOWN'",
        "error: line 9: not UTF-8 text (byte 1: invalid start byte)",
        "error: line 10: malformed JSON at column 5: Expecting property name enclosed in double quotes",
    ]
    assert lines[-1].endswith("8 bad lines; nothing was written")


def test_a_file_of_many_bad_lines_lists_the_first_ones_and_counts_the_rest(db_url: str, tmp_path: Path) -> None:
    seeded(db_url)
    output = refused(db_url, "import", write_lines(tmp_path, *["{}"] * 120))
    lines = output.splitlines()
    assert len(lines) == MAX_REPORTED + 2
    assert lines[MAX_REPORTED] == f"error: ... and {120 - MAX_REPORTED} more problem(s)"


def test_a_valid_file_with_a_bom_and_crlf_lines_imports(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ORG).encode() + b"\r\n" + json.dumps({"action": "org.publish", "org": "ORG-IT-0101", "occurred_at": "2024-01-09"}).encode() + b"\r\n")
    result = run("import", str(path), db=db_url)
    assert result.exit_code == 0 and "imported 2 actions" in result.output


def test_a_huge_name_is_refused_in_one_line(db_url: str, tmp_path: Path) -> None:
    seeded(db_url)
    # As long as a line may be (a longer one is refused for its length: tests/integration/test_long_lines.py).
    output = refused(db_url, "import", write_lines(tmp_path, json.dumps({**ORG, "name": "N" * 1_000_000})))
    assert output.splitlines()[0] == "error: line 1: name: '" + "N" * 59 + "... (1,000,000 characters): is 1,000,000 characters long; at most 200 are accepted"
    assert len(output) < 500


def test_stored_text_never_acts_on_a_terminal(db_url: str) -> None:
    seeded(db_url)
    app = bootstrap.build_ledger(db_url)
    try:
        # Text an older version of the code let through: stored events are kept exactly as they were written.
        state = {"class_version": 2, "timestamp": datetime.now(timezone.utc).isoformat(), "occurred_at": "2024-01-05T00:00:00+00:00",
                 "actor": "old\x1b[2Jversion", "action_key": "0" * 32, "action_digest": "d", "reason": "line one\nposition 99  forged\u202e"}
        app.recorder.insert_events([StoredEvent(originator_id=ref_id("ORG-SEED"), originator_version=2,
                                                topic="domain.model:ClusterOrganisation.Archived", state=json.dumps(state).encode())])
    finally:
        app.close()
    for command in (["history", "ORG-SEED"], ["audit", "log"]):
        output = run(*command, db=db_url).output
        assert "\x1b" not in output and "\u202e" not in output, command
        assert "old\\x1b[2Jversion" in output
        assert len([line for line in output.splitlines() if "Archived" in line]) == 1


def test_a_database_password_is_never_shown() -> None:
    for url in ("postgresql://ledger:S3cretPw@127.0.0.1/", "postgres://ledger:S3cretPw@127.0.0.1:99x/ledger", "mysql://ledger:S3cretPw@host/db"):
        result = CliRunner().invoke(ledger, ["report", "impact", "--db", url])
        assert result.exit_code == 1 and "S3cretPw" not in result.output and "***" in result.output, result.output
