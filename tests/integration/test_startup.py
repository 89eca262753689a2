"""Commands start at once: `ledger --help` and a record's history load none of the heavy libraries other commands use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bootstrap
from service_layer import commands as c
from service_layer.ledger import utc_now

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"fastapi", "uvicorn", "starlette", "jinja2", "kafka", "psycopg", "psycopg_pool", "cryptography", "hypothesis"}

RUN = """
import json, sys
from click.testing import CliRunner
from cli.main import ledger
result = CliRunner().invoke(ledger, sys.argv[1:], catch_exceptions=False)
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"exit_code": result.exit_code, "output": result.output, "loaded": loaded}))
"""


def started(*args: str) -> tuple[str, set[str]]:
    """The output of `ledger ARGS` run in a fresh interpreter, and the top-level packages it imported."""
    done = subprocess.run([sys.executable, "-c", RUN, *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    result = json.loads(done.stdout)
    assert result["exit_code"] == 0, result["output"]
    return result["output"], set(result["loaded"])


def test_help_loads_no_heavy_library() -> None:
    output, loaded = started("--help")
    assert "history" in output and "serve" in output
    assert not loaded & HEAVY, sorted(loaded & HEAVY)
    # Nor the write path: the event sourcing library and the domain's event classes load with a command that reads or writes.
    assert not loaded & {"eventsourcing", "adapters", "transparency"}, sorted(loaded & {"eventsourcing", "adapters", "transparency"})


def test_a_history_on_sqlite_loads_no_heavy_library(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = bootstrap.build_ledger(url)
    try:
        app.execute([c.RegisterOrg(org="ORG-FAST", name="Quick Cluster", country="PT", ecosystems=("digital",), year_established=2010,
                                   occurred_at=utc_now())])
    finally:
        app.close()
    output, loaded = started("history", "ORG-FAST", "--db", url)
    assert "ClusterOrganisation.Registered" in output and "Quick Cluster" in output
    assert not loaded & HEAVY, sorted(loaded & HEAVY)


def test_the_listing_of_commands_added_when_named_is_what_their_modules_add() -> None:
    # The help listed from the table of lazy commands, and the help once every module has added its commands, are the same.
    script = RUN.replace("result = CliRunner()", "ledger.load_all()\nresult = CliRunner()")
    lazy, _ = started("--help")
    done = subprocess.run([sys.executable, "-c", script, "--help"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(done.stdout)["output"] == lazy
    # Each command named in the table is added by the module the table names.
    check = """
import importlib
import click
from cli.lazy import LAZY_COMMANDS
for name, (module, _) in LAZY_COMMANDS.items():
    group = click.Group()
    importlib.import_module(module).register(group)
    assert name in group.commands, (name, module)
"""
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True, timeout=60)
