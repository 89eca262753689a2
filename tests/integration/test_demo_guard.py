"""The demo writes its own file and never replaces a ledger anyone else wrote to."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import bootstrap
from cli.main import ledger
from service_layer.demo import NotADemoLedger, discard_previous_demo

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ["org", "register", "--org", "ORG-IT-0001", "--name", "Lombardy Health Tech Cluster", "--country", "IT",
            "--region", "ITC4", "--ecosystems", "health", "--year-established", "2014", "--smes", "120", "--at", "2024-01-08"]


def invoke(*args: str, db: Path, actor: str | None = None) -> None:
    full = [*args, "--db", f"sqlite:///{db}"] + (["--actor", actor] if actor else [])
    result = CliRunner().invoke(ledger, full, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_ledger_with_real_actions_is_never_replaced(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    invoke(*REGISTER, db=db, actor="alice")
    before = digest(db)
    # alice's first write also authorized her key: two events by her.
    with pytest.raises(NotADemoLedger, match=r"holds 2 events not written by the demo \(by alice \(2\)\); not replacing it"):
        discard_previous_demo(db, bootstrap.build_ledger)
    assert db.exists() and digest(db) == before


def test_a_demo_with_one_real_action_added_is_never_replaced(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    invoke("demo", "--scale", "0.002", "--seed", "3", db=db)
    invoke(*REGISTER, db=db, actor="alice")
    before = digest(db)
    with pytest.raises(NotADemoLedger, match="alice"):
        discard_previous_demo(db, bootstrap.build_ledger)
    assert digest(db) == before


def test_a_file_that_is_not_a_ledger_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    db.write_text("my notes, not a database\n")
    with pytest.raises(NotADemoLedger, match="cannot be read as a ledger"):
        discard_previous_demo(db, bootstrap.build_ledger)
    assert db.read_text() == "my notes, not a database\n"


def test_an_earlier_demo_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    invoke("demo", "--scale", "0.002", "--seed", "3", db=db)
    assert discard_previous_demo(db, bootstrap.build_ledger)
    assert not db.exists()
    assert not discard_previous_demo(db, bootstrap.build_ledger)
    invoke("demo", "--scale", "0.002", "--seed", "4", db=db)


def test_scripts_demo_writes_its_own_file_and_deletes_nothing_itself() -> None:
    script = "\n".join(line for line in (ROOT / "scripts" / "demo").read_text().splitlines() if not line.startswith("#"))
    assert "ledger.db" not in script
    assert not re.search(r"^\s*rm\b|\brm -", script, re.MULTILINE)
    assert "discard_previous_demo" in script and 'DB=demo.db' in script
