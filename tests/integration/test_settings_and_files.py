"""Settings checked before any SQL, reads that never create a ledger, and files written whole or not at all."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import bootstrap
from cli.main import ledger
from tests.conftest import drop_schema, postgres_url

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "platform-actions.jsonl"
EMPTY_CHECKPOINT = ROOT / "tests" / "data" / "empty-checkpoint.txt"
READS = [
    ("report", "impact"), ("report", "country", "LV"), ("trace", "bilateral_meetings"), ("history", "ORG-IT-0001"),
    ("audit", "log"), ("verify",), ("checkpoint",), ("prove", "1", "--checkpoint", str(EMPTY_CHECKPOINT)), ("db", "check"),
]


def run(*args: str) -> Result:
    return CliRunner().invoke(ledger, list(args), catch_exceptions=False)


@pytest.mark.parametrize("schema", ['a"; drop table x; --', "x y", "public;select", "pg_catalog", "1abc", "", "a" * 64])
def test_a_schema_that_is_not_a_plain_identifier_is_refused_before_any_sql(schema: str) -> None:
    result = run("history", "ORG-IT-0001", "--db", f"{postgres_url()}?schema={schema}")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ?schema=: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_a_read_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path, command: tuple[str, ...]) -> None:
    target = tmp_path / "typo.db"
    result = run(*command, "--db", f"sqlite:///{target}")
    assert result.exit_code == 1
    assert "no such file" in result.output and result.output.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_read_on_a_file_that_holds_no_ledger_is_refused_and_leaves_it_untouched(tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    subprocess.run(["sqlite3", str(other), "CREATE TABLE notes (body TEXT)"], check=True)
    before = other.read_bytes()
    for command in READS:
        result = run(*command, "--db", f"sqlite:///{other}")
        assert result.exit_code == 1, command
        assert "holds no ledger" in result.output, command
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


@pytest.fixture
def empty_schema() -> Iterator[str]:
    url = f"{postgres_url()}?schema=t_{uuid.uuid4().hex[:16]}"
    yield url
    drop_schema(url)


def test_a_read_on_a_postgres_schema_without_a_ledger_creates_nothing(empty_schema: str) -> None:
    import psycopg

    for command in READS:
        result = run(*command, "--db", empty_schema)
        assert result.exit_code == 1, command
        assert "holds no ledger" in result.output, command
    schema = empty_schema.partition("?schema=")[2]
    with psycopg.connect(postgres_url()) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() == (0,)


def test_a_write_still_creates_the_ledger_and_reads_then_work(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert run("import", str(EXAMPLE), "--db", url).exit_code == 0
    assert run("history", "ORG-IT-0001", "--db", url).exit_code == 0
    assert run("report", "impact", "--db", url).exit_code == 0


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 64 KiB tmpfs, filled to the last byte."""
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={folder / 'filler'}", "bs=4k"], capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_keygen_on_a_full_disk_leaves_no_file_and_the_name_free(full_disk: Path) -> None:
    result = run("keygen", "eccp-test", "--dir", str(full_disk))
    assert result.exit_code == 1
    assert "No space left on device; nothing was written" in result.output and result.output.count("\n") == 1
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]
    (full_disk / "filler").unlink()
    assert run("keygen", "eccp-test", "--dir", str(full_disk)).exit_code == 0
    assert sorted(p.name for p in full_disk.iterdir()) == ["eccp-test.key", "eccp-test.pub"]
    assert (full_disk / "eccp-test.key").stat().st_mode & 0o777 == 0o600


def test_report_and_checkpoint_out_on_a_full_disk_leave_no_file(tmp_path: Path, full_disk: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run("import", str(EXAMPLE), "--db", url).exit_code == 0
    for command in (("report", "impact", "--format", "html"), ("checkpoint",)):
        result = run(*command, "--out", str(full_disk / "out.txt"), "--db", url)
        assert result.exit_code == 1, command
        assert result.output.endswith("No space left on device; nothing was written\n"), result.output
        assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_keygen_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    result = run("keygen", "eccp-test", "--dir", str(tmp_path / "keys"))
    assert result.exit_code == 1
    assert result.output == f"Error: dir: {str(tmp_path / 'keys')!r}: no such folder; nothing was written\n"


@pytest.fixture
def read_only_ledger(tmp_path: Path) -> Iterator[Path]:
    """A ledger (the example import, its tree caught up) on a tmpfs then remounted read-only."""
    folder = tmp_path / "ro"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], check=True)
    try:
        url = f"sqlite:///{folder / 'ledger.db'}"
        assert run("import", str(EXAMPLE), "--db", url).exit_code == 0
        assert run("checkpoint", "--db", url).exit_code == 0
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder / "ledger.db"
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_ledger_file_that_cannot_be_written_is_still_audited(read_only_ledger: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{read_only_ledger}"
    before = read_only_ledger.read_bytes()
    writable = tmp_path / "copy.db"
    writable.write_bytes(before)
    for command in (("report", "impact", "--format", "json"), ("trace", "bilateral_meetings"), ("verify",), ("history", "ORG-IT-0001"),
                    ("audit", "log")):
        result = CliRunner().invoke(ledger, [*command, "--db", url])
        assert result.exit_code == 0, (command, result.output)
        assert result.stderr.startswith(f"note: {read_only_ledger} cannot be written here (read-only, or its disk is full); reading a temporary copy"), result.stderr
        expected = CliRunner().invoke(ledger, [*command, "--db", f"sqlite:///{writable}"])
        assert result.stdout == expected.stdout, command
    assert read_only_ledger.read_bytes() == before
    assert sorted(p.name for p in read_only_ledger.parent.iterdir()) == ["ledger.db"]


def test_a_sqlite_writer_that_waits_too_long_gets_the_same_line_as_on_postgresql(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "ledger.db"
    assert run("import", str(EXAMPLE), "--db", f"sqlite:///{path}").exit_code == 0
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another write holds the ledger
    try:
        result = run("org", "update", "--org", "ORG-IT-0001", "--smes", "7", "--at", "2025-06-01", "--db", f"sqlite:///{path}?lock_timeout=1")
        assert result.exit_code == 1
        assert result.output == "Error: db: another write held the ledger for more than 1 s; nothing was written, run the command again\n"
    finally:
        holder.rollback()
        holder.close()
    result = run("org", "update", "--org", "ORG-IT-0001", "--smes", "7", "--at", "2025-06-01", "--db", f"sqlite:///{path}?lock_timeout=1")
    assert result.exit_code == 0, result.output


def test_on_a_full_disk_a_rebuild_names_the_real_error_and_says_nothing_was_written(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], check=True)
    try:
        url = f"sqlite:///{folder / 'ledger.db'}"
        result = run("demo", "--scale", "0.01", "--seed", "3", "--db", url)
        assert result.exit_code == 0, result.output
        subprocess.run(["dd", "if=/dev/zero", f"of={folder / 'filler'}", "bs=4k"], capture_output=True)
        result = run("project", "--rebuild", "--db", url)
        assert result.exit_code == 1
        assert result.output.startswith("Error: db: ") and "nothing was written" in result.output, result.output
        assert "cannot rollback" not in result.output and result.output.count("\n") == 1
        for command in (("history", "MM-000-M0001"), ("report", "impact"), ("verify",)):  # reads go on, from a temporary copy
            result = CliRunner().invoke(ledger, [*command, "--db", url])
            assert result.exit_code == 0, (command, result.output)
            assert "cannot be written here (read-only, or its disk is full)" in result.stderr
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_never_waits_for_a_writer_even_where_its_tables_are_not_made_yet(tmp_path: Path) -> None:
    import sqlite3
    import time

    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}?lock_timeout=20"
    assert run("import", str(EXAMPLE), "--db", url).exit_code == 0  # events only: no projection or tree tables yet
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a long import holds the ledger
    try:
        for command in (("report", "impact", "--format", "json"), ("verify",), ("trace", "bilateral_meetings")):
            started = time.monotonic()
            result = CliRunner().invoke(ledger, [*command, "--db", url])
            assert result.exit_code == 0, (command, result.output)
            assert time.monotonic() - started < 10, command
            assert result.stderr.startswith(f"note: another write holds {path}; reading a temporary copy"), result.stderr
    finally:
        holder.rollback()
        holder.close()


def test_a_read_never_waits_for_a_writer_to_index_a_read_model_made_before_its_index(tmp_path: Path) -> None:
    import sqlite3
    import time

    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}?lock_timeout=20"
    assert run("import", str(EXAMPLE), "--db", url).exit_code == 0
    for command in (("report", "impact", "--format", "json"), ("verify",), ("checkpoint",)):  # every table a read makes is made
        assert run(*command, "--db", url).exit_code == 0, command
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX projection_rows_kind")  # as a read model written before the index left it
        assert {n for (n,) in conn.execute("SELECT name FROM sqlite_master")} >= set(bootstrap.READ_TABLES)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        result = CliRunner().invoke(ledger, ["report", "impact", "--format", "json", "--db", url])
        assert result.exit_code == 0 and time.monotonic() - started < 10, result.output
        assert result.stderr.startswith(f"note: another write holds {path}; reading a temporary copy"), result.stderr
    finally:
        holder.rollback()
        holder.close()
    assert run("report", "impact", "--format", "json", "--db", url).exit_code == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'projection_rows_kind'").fetchone() == (1,)
