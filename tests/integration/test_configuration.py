"""The configuration file: found in the working folder or the user's, below the environment and the flags, and shown with sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import ledger

NAMES = ("LEDGER_DB", "LEDGER_ACTOR", "LEDGER_SIGNING_KEY", "LEDGER_KAFKA", "LEDGER_TOPIC", "LEDGER_WEB_TOKEN", "LEDGER_MIRROR_TOKEN",
         "LEDGER_LOG_LEVEL")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder, a user configuration folder with no file in it, and no LEDGER_ variable set."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return work


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(ledger, list(args), env=env, catch_exceptions=False)


def sources(result: Result) -> dict[str, tuple[str | None, str]]:
    assert result.exit_code == 0, result.output
    return {s["name"]: (s["value"], s["source"]) for s in json.loads(result.output)["settings"]}


def test_config_show_names_the_flag_the_environment_the_file_or_the_default(folder: Path) -> None:
    (folder / "ledger.toml").write_text(
        'db = "postgresql://ledger:s3cret@db.example/ledger"\nactor = "admin.file"\ntopic = "from.file"\nweb_token = "t0ken"\n'
        'signing_key = "file.key"\n'
    )
    file = "file ledger.toml"  # in the working folder
    shown = sources(run("config", "show", "--signing-key", "flag.key", "--format", "json", env={"LEDGER_ACTOR": "admin.env"}))
    assert shown == {
        "db": ("postgresql://ledger:***@db.example/ledger", file),
        "actor": ("admin.env", "environment $LEDGER_ACTOR"),
        "signing_key": ("flag.key", "flag --signing-key"),
        "kafka": ("127.0.0.1:9092", "default"),
        "topic": ("from.file", file),
        "web_token": ("***", file),
        "mirror_token": (None, "default"),
        "log_level": ("INFO", "default"),
    }
    flagged = sources(run("--db", "sqlite:///flag.db", "config", "show", "--actor", "admin.flag", "--format", "json"))
    assert flagged["db"] == ("sqlite:///flag.db", "flag --db") and flagged["actor"] == ("admin.flag", "flag --actor")
    assert "LEDGER_DB" not in os.environ  # the file's settings stand only while a command runs

    table = run("config", "show").output.splitlines()
    assert table[0] == "file: ledger.toml"
    assert table[3].split() == ["db", "postgresql://ledger:***@db.example/ledger", "file", "ledger.toml"]


def test_the_user_configuration_folder_serves_when_the_working_folder_has_no_file(folder: Path, tmp_path: Path) -> None:
    user = tmp_path / "config" / "ledger" / "ledger.toml"
    user.parent.mkdir(parents=True)
    user.write_text('kafka = "broker.example:9092"\n')
    assert sources(run("config", "show", "--format", "json"))["kafka"] == ("broker.example:9092", f"file {user}")
    (folder / "ledger.toml").write_text('kafka = "here:9092"\n')
    assert sources(run("config", "show", "--format", "json"))["kafka"] == ("here:9092", "file ledger.toml")


def test_a_write_takes_its_database_actor_and_key_from_the_file(folder: Path, signing_key: Path) -> None:
    (folder / "ledger.toml").write_text(f'db = "sqlite:///from-file.db"\nactor = "admin.file"\nsigning_key = "{signing_key}"\n')
    done = run("org", "register", "--org", "ORG-1", "--name", "Cluster", "--country", "IT", "--ecosystems", "health",
               "--year-established", "2014", "--at", "2024-01-08", env={"LEDGER_SIGNING_KEY": None})  # type: ignore[dict-item]
    assert done.exit_code == 0, done.output
    assert (folder / "from-file.db").is_file()
    entries = json.loads(run("audit", "log", "--format", "json").output)
    assert [e["actor"] for e in entries][-1] == "admin.file"
    elsewhere = run("audit", "log", env={"LEDGER_DB": "sqlite:///elsewhere.db"})  # the environment stands above the file
    assert (elsewhere.exit_code, elsewhere.output.split(": ")[:2]) == (1, ["Error", "$LEDGER_DB"]) and "'sqlite:///elsewhere.db'" in elsewhere.output


@pytest.mark.parametrize(("text", "line"), [
    ('dbb = "sqlite:///x.db"\n', "dbb: 'sqlite:///x.db': unknown setting (one of: db, actor, signing_key, kafka, topic, web_token, "
                                 "mirror_token, log_level)"),
    ("db = 5\n", "db: 5: expected a string in quotes"),
    ("db = \n", "is not valid TOML (Invalid value (at line 1, column 6))"),
])
def test_a_bad_file_gets_one_line_naming_the_file_the_key_and_the_value(folder: Path, text: str, line: str) -> None:
    (folder / "ledger.toml").write_text(text)
    result = run("list", "orgs")
    assert (result.exit_code, result.output) == (2, f"Error: ledger.toml: {line}\n")


def test_an_actor_from_the_file_that_breaks_a_rule_is_named_as_the_file_s(folder: Path, signing_key: Path) -> None:
    (folder / "ledger.toml").write_text('actor = "admin\\u0007rita"\n')
    result = run("org", "register", "--org", "ORG-1", "--name", "Cluster", "--country", "IT", "--ecosystems", "health",
                 "--year-established", "2014", "--at", "2024-01-08")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ledger.toml: actor: 'admin\\x07rita': contains U+0007")
    assert not (folder / "ledger.db").exists()


def test_a_malformed_database_from_the_file_is_named_as_the_file_s_and_from_the_environment_as_ledger_db(folder: Path) -> None:
    (folder / "ledger.toml").write_text('db = "garbage"\n')
    from_file = run("audit", "log")
    assert (from_file.exit_code, from_file.output.splitlines()[-1].split(": ")[:3]) == (1, ["Error", "ledger.toml", "db"])
    assert "'garbage'" in from_file.output
    from_env = run("audit", "log", env={"LEDGER_DB": "rubbish"})
    assert (from_env.exit_code, from_env.output.splitlines()[-1].split(": ")[:2]) == (1, ["Error", "$LEDGER_DB"])
    assert "'rubbish'" in from_env.output
