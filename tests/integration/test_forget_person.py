"""The right to be forgotten: a person's name and e-mail vanish from every byte the store keeps, while history and counts stay."""

from __future__ import annotations

import glob
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import ledger
from tests.conftest import stored_rows

NAME, EMAIL = "Giulia Rossi", "giulia.rossi@example.org"  # P-3f9c2a in the example import
KEPT_NAME, KEPT_EMAIL = "Ieva Ozola", "ieva.ozola@example.lv"


def run(*args: str, db: str) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, [*args, "--db", db])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def stored_bytes(url: str) -> bytes:
    """Every byte the store keeps: the SQLite file and its side files, or a pg_dump of the schema."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return b"".join(Path(p).read_bytes() for p in sorted(glob.glob(path + "*")))
    base, _, schema = url.partition("?schema=")
    pg_dump = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))[-1]
    return subprocess.run([pg_dump, "--schema", schema, "--dbname", base], check=True, capture_output=True).stdout


EVENTS = {"sqlite": "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid",
          "postgres": "SELECT originator_id, originator_version, topic, state FROM {schema}.ledger_events ORDER BY notification_id"}


def test_forgetting_erases_name_and_email_everywhere_and_keeps_every_count(db_url: str) -> None:
    assert run("import", "examples/platform-actions.jsonl", db=db_url)[0] == 0
    assert run("person", "register", "--person", "P-0a1b", "--name", KEPT_NAME, "--email", KEPT_EMAIL, "--at", "2024-06-01", db=db_url)[0] == 0
    before = json.loads(run("report", "impact", "--format", "json", db=db_url)[1])["figures"]
    events_before = stored_rows(db_url, EVENTS)
    assert NAME.encode() in stored_bytes(db_url) and EMAIL.encode() in stored_bytes(db_url)

    code, output = run("person", "forget", "--person", "P-3f9c2a", "--reason", "erasure request of 2025-03-04", "--actor", "dpo.maria", db=db_url)
    assert code == 0, output

    dump = stored_bytes(db_url)
    for secret in (NAME, EMAIL, "giulia.rossi"):
        assert secret.encode() not in dump, secret
    assert KEPT_NAME.encode() in dump and KEPT_EMAIL.encode() in dump  # only the forgotten person's data went
    assert json.loads(run("report", "impact", "--format", "json", db=db_url)[1])["figures"] == before
    events_after = stored_rows(db_url, EVENTS)
    assert events_after[: len(events_before)] == events_before and len(events_after) == len(events_before) + 1

    log = json.loads(run("audit", "log", "--type", "Forgotten", "--format", "json", db=db_url)[1])
    assert [(e["actor"], e["aggregate"], e["type"]) for e in log] == [("dpo.maria", "P-3f9c2a", "Person.Forgotten")]
    assert "erasure request" in log[0]["summary"]
    history = run("history", "P-3f9c2a", "--format", "json", db=db_url)[1]
    assert [e["type"] for e in json.loads(history)] == ["Person.Registered", "Person.Forgotten"]
    assert NAME not in history and EMAIL not in history


def test_forgetting_twice_or_an_unknown_person_is_one_clear_line(db_url: str) -> None:
    assert run("import", "examples/platform-actions.jsonl", db=db_url)[0] == 0
    assert run("person", "forget", "--person", "P-3f9c2a", "--reason", "asked", "--at", "2025-01-01", db=db_url)[0] == 0
    code, output = run("person", "forget", "--person", "P-3f9c2a", "--reason", "asked again", "--at", "2025-01-02", db=db_url)
    assert (code, output.strip()) == (1, "Error: person: 'P-3f9c2a' was already forgotten")
    code, output = run("person", "forget", "--person", "P-ffff", "--reason", "asked", db=db_url)
    assert (code, output.strip()) == (1, "Error: unknown person: 'P-ffff'")
    code, output = run("person", "forget", "--person", "P-3f9c2a", "--reason", "   ", db=db_url)
    assert code == 1 and output.strip() == "Error: reason: '   ': must not be blank"
    code, output = run("import", "examples/platform-actions.jsonl", db=db_url)
    assert code == 1 and "P-3f9c2a' was forgotten; a forgotten person is not registered again" in output


def test_a_forget_that_cannot_empty_the_write_ahead_log_says_so_and_compact_finishes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import adapters.sqlite

    monkeypatch.setattr(adapters.sqlite, "SCRUB_WAIT", 0.5)
    monkeypatch.setattr(adapters.sqlite, "COMPACT_WAIT", 0.5)
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    assert run("import", "examples/platform-actions.jsonl", db=url)[0] == 0
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM stored_events").fetchone()  # an open read transaction pins the log
    try:
        code, output = run("person", "forget", "--person", "P-3f9c2a", "--reason", "erasure request", db=url)
        assert code == 1 and output.count("\n") == 1, output
        assert "the forgetting is recorded and the name and e-mail are erased from the table" in output
        assert "run `ledger db compact` once no reader is open" in output
        code, output = run("db", "compact", db=url)
        assert code == 1 and "nothing was compacted" in output
    finally:
        reader.rollback()
        reader.close()
    history = json.loads(run("history", "P-3f9c2a", "--format", "json", db=url)[1])
    assert [e["type"] for e in history] == ["Person.Registered", "Person.Forgotten"]
    code, output = run("db", "compact", db=url)
    assert code == 0 and output.startswith("compacted: the write-ahead log"), output
    dump = stored_bytes(url)
    assert NAME.encode() not in dump and EMAIL.encode() not in dump


def test_forgetting_again_scrubs_what_an_earlier_forget_could_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import adapters.sqlite

    monkeypatch.setattr(adapters.sqlite, "SCRUB_WAIT", 0.5)
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    assert run("import", "examples/platform-actions.jsonl", db=url)[0] == 0
    forget = ("person", "forget", "--person", "P-3f9c2a", "--reason", "erasure request")
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM stored_events").fetchone()
    try:
        assert run(*forget, db=url)[0] == 1
        code, output = run(*forget, db=url)  # the same command again tries the scrub again, and says it could not
        assert code == 1 and "run `ledger db compact` once no reader is open" in output, output
    finally:
        reader.rollback()
        reader.close()
    code, output = run(*forget, db=url)
    assert (code, output.strip()) == (0, "already recorded; nothing written")
    dump = stored_bytes(url)
    assert NAME.encode() not in dump and EMAIL.encode() not in dump
