"""Golden ledgers written by earlier versions of the code: this code reads them all and reports their figures unchanged."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent

import bootstrap
from cli.main import ledger
from tests.conftest import drop_schema, fresh_postgres_url

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
LEDGERS = sorted(GOLDEN.glob("v*/*.db"))
CASES = [pytest.param((db, store), id=f"{db.parent.name}/{db.stem}-{store}") for db in LEDGERS for store in ("sqlite", "postgres")]


def written_down(db: Path) -> dict[str, object]:
    return json.loads((db.parent / "figures.json").read_text())[db.stem]  # type: ignore[no-any-return]


def replay_into_postgres(db: Path) -> str:
    """A new PostgreSQL schema holding the golden ledger's stored events byte for byte, in their order, with its personal data."""
    url = fresh_postgres_url()
    with sqlite3.connect(db) as conn:
        events = [
            StoredEvent(originator_id=UUID(row[0]), originator_version=row[1], topic=row[2], state=bytes(row[3]))
            for row in conn.execute("SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid")
        ]
        people = [tuple(row) for row in conn.execute("SELECT person, name, email FROM personal_data ORDER BY person")]
    app = bootstrap.build_ledger(url)
    try:
        app.recorder.insert_events(events, personal_data=people)
    finally:
        app.close()
    return url


@contextlib.contextmanager
def golden_on(db: Path, store: str, folder: Path) -> Iterator[str]:
    """The URL of the golden ledger `db` on `store`: a copy in `folder` (sqlite), or a replay into a new schema (postgres),
    dropped afterwards."""
    if store == "sqlite":
        copy = folder / db.name
        shutil.copyfile(db, copy)
        yield f"sqlite:///{copy}"
        return
    url = replay_into_postgres(db)
    try:
        yield url
    finally:
        drop_schema(url)


@pytest.fixture(params=CASES)
def golden(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    db, store = request.param
    if store == "sqlite":
        copy = tmp_path / db.name
        shutil.copyfile(db, copy)
        yield db, f"sqlite:///{copy}"
        return
    url = replay_into_postgres(db)
    yield db, url
    drop_schema(url)


def cli(*args: str) -> str:
    result = CliRunner().invoke(ledger, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_golden_ledgers_are_there() -> None:
    assert {f"{db.parent.name}/{db.stem}" for db in LEDGERS} >= {"v1/every-event", "v1/demo-tiny", "v2/nuts", "v3/keys-and-forget", "v4/signed"}
    assert all((db.parent / "figures.json").exists() for db in LEDGERS)


def test_every_stored_event_decodes(golden: tuple[Path, str]) -> None:
    db, url = golden
    expected = written_down(db)
    app = bootstrap.build_ledger(url)
    try:
        notifications = list(app.recorder.select_notifications(start=1, limit=100_000))
        events = [app.mapper.to_domain_event(n) for n in notifications]
    finally:
        app.close()
    assert len(events) == expected["events"]
    assert {n.topic for n in notifications} == set(expected["event_types"])  # type: ignore[arg-type]
    check = json.loads(cli("db", "check", "--format", "json", "--db", url))
    assert all(t["readable"] for t in check) and sum(t["events"] for t in check) == expected["events"]


def test_history_works_for_one_record_of_each_type(golden: tuple[Path, str]) -> None:
    db, url = golden
    for kind, record in written_down(db)["records"].items():  # type: ignore[union-attr]
        history = json.loads(cli("history", record["ref"], "--format", "json", "--db", url))
        assert len(history) == record["events"], kind
        assert history[0]["details"]["ref"] == record["ref"]


def test_every_report_figure_equals_the_written_down_one(golden: tuple[Path, str]) -> None:
    db, url = golden
    expected = written_down(db)
    impact = json.loads(cli("report", "impact", "--format", "json", "--db", url))
    assert impact["figures"] == expected["impact_2024_2025"]
    for country, sheet in expected["country_sheets_2024_2025"].items():  # type: ignore[union-attr]
        report = json.loads(cli("report", "country", country, "--format", "json", "--db", url))
        assert {key: report[key] for key in sheet} == sheet, country  # every part the golden sheet wrote down
        assert report["regions"]["classification"] == "NUTS 2024"


def test_the_file_that_wrote_a_golden_ledger_imports_again_as_already_recorded(tmp_path: Path) -> None:
    # Idempotency keys and digests of commands stay the same across versions, so re-running an old import is a no-op.
    copy = tmp_path / "every-event.db"
    shutil.copyfile(GOLDEN / "v1" / "every-event.db", copy)
    lines = len((GOLDEN / "v1" / "every-event.jsonl").read_text().splitlines())
    output = cli("import", str(GOLDEN / "v1" / "every-event.jsonl"), "--db", f"sqlite:///{copy}")
    assert f"0 events written, {lines} already recorded" in output


def test_verify_tells_which_positions_predate_signed_writes(golden: tuple[Path, str]) -> None:
    db, url = golden
    result = CliRunner().invoke(ledger, ["verify", "--db", url])
    events = written_down(db)["events"]
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    if db.parent.name in ("v1", "v2", "v3"):  # written before writes were signed: told once, never as a finding
        assert lines == [f"verified: {events} stored events match the tree of {events} leaves",
                         f"positions 1\u2013{events} predate signed writes ({events} events)"], lines
    else:
        assert lines == [f"verified: {events} stored events match the tree of {events} leaves"], lines


def test_the_signed_golden_ledger_names_its_writers(tmp_path: Path) -> None:
    copy = tmp_path / "signed.db"
    shutil.copyfile(GOLDEN / "v4" / "signed.db", copy)
    entries = json.loads(cli("audit", "log", "--format", "json", "--db", f"sqlite:///{copy}"))
    assert [e["recorded_by"] for e in entries] == ["rita"] * 8 + ["bob"] * 2
    assert [e["type"] for e in entries if e["type"].startswith("Writer.")] == ["Writer.Authorized", "Writer.Authorized", "Writer.Revoked"]
