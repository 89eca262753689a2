"""The write paths store the same bytes as the code that wrote golden v5: the same commands, clock and key, the same rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import ledger
from tests.conftest import stored_rows
from tests.golden.v5 import write_chunks

GOLDEN = write_chunks.HERE / "chunks.db"
ROWS = {
    "sqlite": "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid",
    "postgres": "SELECT originator_id, originator_version, topic, state FROM {schema}.ledger_events ORDER BY notification_id",
}
PEOPLE = {"sqlite": "SELECT person, name, email FROM personal_data ORDER BY person", "postgres": "SELECT person, name, email FROM {schema}.personal_data ORDER BY person"}


def test_both_write_paths_store_the_golden_bytes(db_url: str, tmp_path: Path) -> None:
    write_chunks.write(db_url)
    written = [(str(r[0]).replace("-", ""), r[1], r[2], bytes(r[3])) for r in stored_rows(db_url, ROWS)]  # type: ignore[arg-type]
    golden = f"sqlite:///{tmp_path / GOLDEN.name}"
    shutil.copyfile(GOLDEN, golden.removeprefix("sqlite:///"))  # even a read leaves files beside a WAL database
    expected = [(str(r[0]), r[1], r[2], bytes(r[3])) for r in stored_rows(golden, ROWS)]  # type: ignore[arg-type]
    assert len(written) == len(expected) == 457
    for position, (row, kept) in enumerate(zip(written, expected, strict=True), start=1):
        assert row == kept, f"position {position}"
    assert stored_rows(db_url, PEOPLE) == stored_rows(golden, PEOPLE)
    result = CliRunner().invoke(ledger, ["verify", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["verified: 457 stored events match the tree of 457 leaves"]

