"""Every command that prints data takes `--format json` and prints one valid JSON document on stdout, and nothing else there."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from psycopg.sql import SQL, Identifier

from cli.lazy import LazyGroup
from cli.main import ledger
from tests.conftest import postgres_url
from tests.integration.test_postgres_roles import admin, guarded, owner_url  # noqa: F401  (guarded is a fixture)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "platform-actions.jsonl"
PRINT_NO_DATA = {
    ("relay",): "a long-running service: it logs what it forwards, line by line, until stopped",
    ("consume",): "a long-running service: it logs what it folds, line by line, until stopped",
    ("serve",): "a web server: it logs requests until stopped; its pages give JSON at /api/...",
}
"""Commands that print no data, each with the reason; every other command is run below with `--format json`."""
POSTGRES_ONLY = {("db", "grant-auditor"): "tested on PostgreSQL below"}


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(group, LazyGroup):
        group.load_all()  # commands added when named are walked too
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


def invocations(folder: Path, key: Path) -> list[list[str]]:
    """The command lines run, in order, on one small ledger in `folder`: every command that prints data, and what it needs first."""
    pub = str(key.with_suffix(".pub"))
    demo = f"sqlite:///{folder / 'demo.db'}"
    return [
        ["keygen", "other", "--dir", str(folder)],
        ["db", "init"],
        ["import", str(EXAMPLE)],
        ["org", "register", "--org", "ORG-1", "--name", "C", "--country", "IT", "--ecosystems", "health,digital",
                              "--year-established", "2014", "--at", "2024-01-08"],
        ["org", "publish", "--org", "ORG-1", "--at", "2024-01-09"],
        ["org", "update", "--org", "ORG-1", "--smes", "3", "--at", "2024-01-10"],
        ["org", "label", "--org", "ORG-1", "--level", "bronze", "--valid-until", "2026-01-01", "--at", "2024-01-11"],
        ["activity", "schedule", "--activity", "A-1", "--kind", "matchmaking", "--title", "T", "--starts-on",
                                   "2024-03-01", "--ends-on", "2024-03-02", "--online", "--at", "2024-01-12"],
        ["activity", "schedule", "--activity", "A-2", "--kind", "matchmaking", "--title", "T", "--starts-on",
                                 "2024-03-01", "--ends-on", "2024-03-02", "--online", "--at", "2024-01-12"],
        ["activity", "cancel", "--activity", "A-2", "--reason", "no venue", "--at", "2024-01-13"],
        ["person", "register", "--person", "P-00a1", "--name", "Ana", "--email", "p1@example.org", "--at", "2024-01-13"],
        ["participant", "register", "--activity", "A-1", "--org", "ORG-1", "--at", "2024-01-14"],
        ["participant", "register", "--activity", "A-1", "--person", "P-00a1", "--at", "2024-01-14"],
        ["participant", "cancel", "--activity", "A-1", "--person", "P-00a1", "--at", "2024-01-15"],
        ["meeting", "request", "--meeting", "M-1", "--activity", "MM-2024-MILAN", "--requester", "ORG-IT-0001",
                                 "--partner", "ORG-LV-0007", "--at", "2024-05-03"],
        ["meeting", "accept", "--meeting", "M-1", "--at", "2024-05-04"],
        ["meeting", "hold", "--meeting", "M-1", "--at", "2024-05-14"],
        ["meeting", "request", "--meeting", "M-2", "--activity", "MM-2024-MILAN", "--requester", "ORG-IT-0001",
                                 "--partner", "ORG-LV-0007", "--at", "2024-05-03"],
        ["meeting", "decline", "--meeting", "M-2", "--at", "2024-05-04"],
        ["meeting", "request", "--meeting", "M-3", "--activity", "MM-2024-MILAN", "--requester", "ORG-IT-0001",
                                "--partner", "ORG-LV-0007", "--at", "2024-05-03"],
        ["meeting", "cancel", "--meeting", "M-3", "--outcome", "no_show", "--at", "2024-05-05"],
        ["pitch", "deliver", "--pitch", "PI-1", "--activity", "MM-2024-MILAN", "--org", "ORG-IT-0001", "--title", "T",
                               "--at", "2024-05-14"],
        ["case", "identify", "--case", "C-1", "--orgs", "ORG-IT-0001,ORG-LV-0007", "--source-kind", "meeting",
                               "--source", "M-1", "--title", "T", "--at", "2024-05-20"],
        ["case", "advance", "--case", "C-1", "--stage", "exploring", "--at", "2024-05-21"],
        ["case", "identify", "--case", "C-2", "--orgs", "ORG-IT-0001,ORG-LV-0007", "--source-kind", "meeting",
                              "--source", "M-1", "--title", "T", "--at", "2024-05-20"],
        ["case", "abandon", "--case", "C-2", "--reason", "no funding", "--at", "2024-05-22"],
        ["publication", "publish", "--publication", "PU-1", "--kind", "case_study", "--title", "T",
                                     "--at", "2024-06-01"],
        ["publication", "update", "--publication", "PU-1", "--note", "typo", "--at", "2024-06-02"],
        ["activity", "hold", "--activity", "A-1", "--at", "2024-03-02"],
        ["participant", "attend", "--activity", "A-1", "--org", "ORG-1", "--at", "2024-03-02"],
        ["org", "archive", "--org", "ORG-1", "--at", "2024-06-03"],
        ["person", "forget", "--person", "P-00a1", "--reason", "asked to be forgotten"],
        ["writer", "authorize", str(folder / "other.pub")],
        ["writer", "revoke", "other"],
        ["writer", "list"],
        ["history", "ORG-1"],
        ["show", "ORG-1"],
        ["list", "orgs"],
        ["audit", "log", "--limit", "3"],
        ["db", "check"],
        ["db", "compact"],
        ["project"],
        ["report", "impact"],
        ["report", "country", "IT"],
        ["report", "impact", "--out", str(folder / "report.json")],
        ["trace", "cluster_organisations"],
        ["checkpoint", "--sign", str(key), "--out", str(folder / "cp.json")],
        ["prove", "2", "--checkpoint", str(folder / "cp.txt"), "--out", str(folder / "proof.json")],
        ["verify-proof", str(folder / "proof.json"), "--checkpoint", str(folder / "cp.txt"), "--verifier-key", pub],
        ["verify", "--checkpoint", str(folder / "cp.txt"), "--verifier-key", pub],
        ["tiles", "export", str(folder / "tiles")],
        ["mirror", str(folder / "tiles"), "--verifier-key", pub, "--db", f"sqlite:///{folder / 'mirror.db'}"],
        ["report", "verify", str(folder / "signed.json"), "--verifier-key", pub],
        ["demo", "--scale", "0.005", "--db", demo],
        ["config", "show"],
    ]


def path_of(args: list[str]) -> tuple[str, ...]:
    """The command a command line runs: its leading group and command names."""
    path: list[str] = []
    command: click.Command = ledger
    while isinstance(command, click.Group):
        path.append(args[len(path)])
        command = command.commands[path[-1]]
    return tuple(path)


def test_every_command_is_run_below_or_said_to_print_no_data(tmp_path: Path, signing_key: Path) -> None:
    assert set(commands(ledger)) == {path_of(args) for args in invocations(tmp_path, signing_key)} | set(PRINT_NO_DATA) | set(POSTGRES_ONLY)


def test_every_command_that_prints_data_gives_valid_json_on_stdout(tmp_path: Path, signing_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LEDGER_DB", f"sqlite:///{tmp_path / 'ledger.db'}")
    runner = CliRunner()
    for args in invocations(tmp_path, signing_key):
        path = path_of(args)
        if path == ("prove",):
            # The proofs and the report verified below need a checkpoint and a signed report first (in text form).
            note = runner.invoke(ledger, ["checkpoint", "--sign", str(signing_key)], catch_exceptions=False)
            (tmp_path / "cp.txt").write_text(note.stdout)
            signed = runner.invoke(ledger, ["report", "impact", "--sign", str(signing_key), "--format", "json"], catch_exceptions=False)
            (tmp_path / "signed.json").write_text(signed.stdout)
        result = runner.invoke(ledger, [*args, "--format", "json"], catch_exceptions=False)
        assert result.exit_code == 0, (path, result.output)
        if "--out" in args:
            assert result.stdout == "", path
            text = Path(args[args.index("--out") + 1]).read_text()
        else:
            text = result.stdout
        try:
            json.loads(text)
        except ValueError:
            pytest.fail(f"ledger {' '.join(path)} --format json printed no valid JSON: {text[:200]!r}")


@pytest.fixture
def role() -> Iterator[str]:
    name = f"auditor_{uuid.uuid4().hex[:8]}"
    database = postgres_url().rsplit("/", 1)[1]
    with admin(database) as conn:
        conn.execute(SQL("CREATE ROLE {} LOGIN PASSWORD 'auditor'").format(Identifier(name)))
    yield name
    with admin(database) as conn:
        conn.execute(SQL("DROP OWNED BY {}").format(Identifier(name)))
        conn.execute(SQL("DROP ROLE {}").format(Identifier(name)))


def test_granting_an_auditor_gives_json_too(guarded: str, role: str) -> None:  # noqa: F811
    result = CliRunner().invoke(ledger, ["db", "grant-auditor", role, "--owner-url", owner_url(), "--db", guarded, "--format", "json"])
    assert result.exit_code == 0, result.output
    granted = json.loads(result.stdout)
    assert (granted["role"], granted["personal_data"]) == (role, "not granted")
    assert {"ledger_events", "projection_rows"} <= set(granted["granted"])
