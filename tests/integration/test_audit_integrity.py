"""`ledger verify` names the first position where stored history diverges from the recorded tree and checkpoint, and how,
even when someone with the database's owner rights went around the guards."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import ledger
from tests.integration.tampering import history, tamper


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def on(url: str, sqlite: str, postgres: str) -> str:
    return sqlite if url.startswith("sqlite") else postgres


@pytest.fixture
def recorded(db_url: str, tmp_path: Path) -> tuple[str, Path, Path]:
    """A history of 13 events (the test writer's authorization, then two of 6), a signed checkpoint of it, and the verifier key."""
    history(db_url)
    history(db_url)
    assert run("keygen", "auditor.example/ledger", "--dir", str(tmp_path))[0] == 0
    cp = tmp_path / "cp.txt"
    assert run("checkpoint", "--sign", str(tmp_path / "auditor.example_ledger.key"), "--out", str(cp), "--db", db_url)[0] == 0
    return db_url, cp, tmp_path / "auditor.example_ledger.pub"


def verify(url: str, cp: Path, key: Path) -> tuple[int, list[str]]:
    code, output = run("verify", "--checkpoint", str(cp), "--verifier-key", str(key), "--db", url)
    return code, output.splitlines()


def test_an_untouched_history_verifies_and_keeps_verifying_as_events_are_added(recorded: tuple[str, Path, Path]) -> None:
    url, cp, key = recorded
    assert verify(url, cp, key) == (0, ["verified: 13 stored events match the tree of 13 leaves; "
                                        "matches checkpoint auditor.example/ledger at tree size 13 (signature valid)"])
    history(url)
    assert verify(url, cp, key) == (0, ["verified: 19 stored events match the tree of 19 leaves; "
                                        "matches checkpoint auditor.example/ledger at tree size 13 (signature valid)"])


def test_an_untouched_demo_verifies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run("demo", "--scale", "0.01", "--db", url)[0] == 0
    code, output = run("verify", "--db", url)
    assert code == 0 and output.startswith("verified: 446 stored events match the tree of 446 leaves")  # the demo's writer, then its 445


ONE_BYTE = "UPDATE {events} SET state = " + "{changed} WHERE {id} = 3"


@pytest.mark.parametrize(("case", "first"), [
    ("one byte", "position 3: payload altered: the event's leaf hash is not the one the tree recorded"),
    ("as text", "position 3: payload altered: the event's leaf hash is not the one the tree recorded"),
    ("deleted", "position 4: event deleted: the tree holds leaf 3 for position 4, the log has no event there"),
    ("inserted", "position 0: event inserted: the log has an event at position 0 that the tree never held"),
    ("swapped", "position 3: events reordered (2 positions): the event stored at position 3 was recorded at position 5"),
    ("tree", "position 3: tree table altered: the stored hash of leaf 2 is not the hash of the event, which its parent node still matches"),
    ("tree node", "position 5: tree table altered: node (1, 2) is not the hash of its two children"),
    ("tail", "position 7: log shorter than the checkpoint: the checkpoint commits to 13 events, the log holds 6; the first missing one follows position 6"),
])
def test_each_kind_of_tampering_is_named_at_its_first_position(recorded: tuple[str, Path, Path], case: str, first: str) -> None:
    url, cp, key = recorded
    statements = {
        "one byte": [ONE_BYTE.format(changed=on(url, "CAST(replace(CAST(state AS TEXT), 'actor', 'actos') AS BLOB)",
                                                "convert_to(replace(convert_from(state, 'UTF8'), 'actor', 'actos'), 'UTF8')"), events="{events}", id="{id}")],
        "as text": [ONE_BYTE.format(changed=on(url, "CAST(state AS TEXT)", "'\\xff00'::bytea"), events="{events}", id="{id}")],
        "deleted": ["DELETE FROM {events} WHERE {id} = 4"],
        "inserted": [on(url, "INSERT INTO {events} (rowid, originator_id, originator_version, topic, state) "
                             "SELECT 0, '00000000-0000-4000-8000-000000000000', 1, topic, state FROM {events} WHERE rowid = 1",
                        "INSERT INTO {events} (notification_id, originator_id, originator_version, topic, state) "
                        "SELECT 0, '00000000-0000-4000-8000-000000000000', 1, topic, state FROM {events} WHERE notification_id = 1")],
        "swapped": ["UPDATE {events} SET {id} = -1 WHERE {id} = 3", "UPDATE {events} SET {id} = 3 WHERE {id} = 5",
                    "UPDATE {events} SET {id} = 5 WHERE {id} = -1"],
        "tree": [on(url, "UPDATE tlog_leaves SET hash = zeroblob(32) WHERE leaf_index = 2",
                    "UPDATE {schema}.tlog_leaves SET hash = '\\x00'::bytea WHERE leaf_index = 2")],
        "tree node": [on(url, "UPDATE tlog_nodes SET hash = zeroblob(32) WHERE level = 1 AND node_index = 2",
                         "UPDATE {schema}.tlog_nodes SET hash = '\\x00'::bytea WHERE level = 1 AND node_index = 2")],
        "tail": ["DELETE FROM {events} WHERE {id} > 6", "DELETE FROM {schema}.tlog_leaves WHERE leaf_index >= 6",
                 "DELETE FROM {schema}.tlog_nodes WHERE (node_index + 1) * (1 << level) > 6"],
    }[case]
    tamper(url, *statements)
    code, lines = verify(url, cp, key)
    assert code == 1
    assert lines[0].startswith(first), lines
    if case == "as text" and url.startswith("sqlite"):
        assert "(payload stored as text: " in lines[0]
    assert lines[-1].startswith("Error: history diverges:")


def test_a_rewritten_history_with_a_rebuilt_tree_differs_from_the_checkpoint(recorded: tuple[str, Path, Path]) -> None:
    url, cp, key = recorded
    tamper(url, "DELETE FROM {schema}.tlog_nodes", "DELETE FROM {schema}.tlog_leaves",
           "UPDATE {events} SET originator_version = 7 WHERE {id} = 2")
    code, lines = verify(url, cp, key)
    # The moved event no longer fits its writer's signature either: the rebuilt tree cannot hide that.
    assert code == 1 and lines[0].startswith("position 2: signature invalid: "), lines
    assert lines[1].startswith("checkpoint: checkpoint root differs: the first 13 stored events hash to root "), lines


def test_a_forged_or_foreign_checkpoint_is_named(recorded: tuple[str, Path, Path], tmp_path: Path) -> None:
    url, cp, key = recorded
    forged = tmp_path / "forged.txt"
    forged.write_text(cp.read_text().replace("\n13\n", "\n11\n", 1))
    assert verify(url, forged, key)[1][0] == "checkpoint: signature invalid: the signature by auditor.example/ledger+" + key.read_text().split("+")[1] + " does not match the checkpoint"
    run("keygen", "other", "--dir", str(tmp_path))
    assert verify(url, cp, tmp_path / "other.pub")[1][0].startswith("checkpoint: signature invalid: the checkpoint carries no signature by key other+")


def test_garbage_stored_bytes_never_cause_a_traceback(recorded: tuple[str, Path, Path]) -> None:
    url, cp, key = recorded
    tamper(url, on(url, "UPDATE {events} SET state = NULL, originator_version = 'x', topic = x'00ff' WHERE {id} = 2",
                   "UPDATE {events} SET state = '\\x00ff'::bytea WHERE {id} = 2"))
    code, lines = verify(url, cp, key)
    assert code == 1 and lines[0].startswith("position 2: payload altered"), lines


def test_garbage_in_the_tree_tables_is_named_not_a_traceback(recorded: tuple[str, Path, Path]) -> None:
    url, cp, key = recorded
    garbage = on(url, "UPDATE tlog_leaves SET hash = 'text', position = 'x' WHERE leaf_index = 4; "
                      "UPDATE tlog_nodes SET level = 'one' WHERE node_index = 0 AND level = 1",
                 "UPDATE {schema}.tlog_leaves SET hash = '\\x01', position = 1000 WHERE leaf_index = 4; "
                 "UPDATE {schema}.tlog_nodes SET level = 40 WHERE node_index = 0 AND level = 1")
    tamper(url, *garbage.split("; "))
    code, lines = verify(url, cp, key)
    assert code == 1 and any(" tree table altered" in line for line in lines), lines
    assert lines[-1].startswith("Error: history diverges:")


def test_a_payload_column_turned_to_text_is_named_on_postgres(tmp_path: Path) -> None:
    from tests.conftest import drop_schema, fresh_postgres_url

    url = fresh_postgres_url()
    try:
        history(url)
        assert run("checkpoint", "--out", str(tmp_path / "cp.txt"), "--db", url)[0] == 0
        tamper(url, "ALTER TABLE {events} ALTER COLUMN state TYPE text USING convert_from(state, 'UTF8')")
        code, output = run("verify", "--checkpoint", str(tmp_path / "cp.txt"), "--db", url)
        assert code == 1 and output.startswith("position 1: payload altered (7 positions): the event's leaf hash is not the one the tree "
                                               "recorded (payload stored as str: '{\"class_version\":"), output
    finally:
        drop_schema(url)


def test_an_empty_ledger_or_read_model_is_said_to_hold_no_events(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import ledger

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert CliRunner().invoke(ledger, ["db", "init", "--db", url]).exit_code == 0  # reads never create a ledger
    for command in (["verify"], ["checkpoint"]):
        result = CliRunner().invoke(ledger, [*command, "--db", url])
        assert result.exit_code == 0, result.output
        assert "note: this database holds no stored events" in result.stderr


class WholeTreeRefused:
    """A tree store that refuses to hand over the whole tree at once: verification must read it a page at a time."""

    def __init__(self, store: object) -> None:
        self.store = store

    def leaves(self) -> None:
        raise AssertionError("verify read every leaf at once")

    def nodes(self) -> None:
        raise AssertionError("verify read every node at once")

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_verification_never_reads_the_whole_tree_at_once(recorded: tuple[str, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import bootstrap
    from transparency import audit, log

    url = recorded[0]
    monkeypatch.setattr(audit, "PAGE", 4)
    store = bootstrap.build_tree_store(url)
    try:
        report = audit.verify(WholeTreeRefused(store), log.checkpoint(store))  # type: ignore[arg-type]
        assert report.holds and (report.events, report.tree_size) == (13, 13)
        tamper(url, "DELETE FROM {events} WHERE {id} = 4", "UPDATE tlog_nodes SET hash = zeroblob(32) WHERE level = 2 AND node_index = 1"
               if url.startswith("sqlite") else "UPDATE {schema}.tlog_nodes SET hash = '\\x00'::bytea WHERE level = 2 AND node_index = 1")
        lines = [finding.line() for finding in audit.verify(WholeTreeRefused(store)).findings]  # type: ignore[arg-type]
        assert lines == ["position 1: tree table altered (2 positions): node (3, 0) is not the hash of its two children",
                         "position 4: event deleted: the tree holds leaf 3 for position 4, the log has no event there"], lines
    finally:
        store.close()


@pytest.mark.parametrize("page", [1, 2, 3, 5])
def test_findings_do_not_depend_on_how_many_rows_are_read_at_a_time(
    recorded: tuple[str, Path, Path], monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    from transparency import audit

    url, cp, key = recorded
    tamper(url, "UPDATE {events} SET {id} = -1 WHERE {id} = 3", "UPDATE {events} SET {id} = 3 WHERE {id} = 9",
           "UPDATE {events} SET {id} = 9 WHERE {id} = -1", "DELETE FROM {events} WHERE {id} = 11",
           "UPDATE {events} SET originator_version = 9 WHERE {id} = 6")
    whole = verify(url, cp, key)
    monkeypatch.setattr(audit, "PAGE", page)
    assert verify(url, cp, key) == whole
    # Position 3 now holds an event of a later batch: the positions after it in the first batch (the writer's authorization
    # went first in it), and 9 (which holds the first batch's), go back in time.
    disorder = whole[1].pop(1)
    assert disorder.startswith("position 4: recorded time out of order (5 positions): the event was recorded "), whole
    assert whole[1][:3] == ["position 3: events reordered (2 positions): the event stored at position 3 was recorded at position 9",
                            "position 6: payload altered: the event's leaf hash is not the one the tree recorded",
                            "position 11: event deleted: the tree holds leaf 10 for position 11, the log has no event there"], whole


def test_verification_memory_does_not_grow_with_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    import bootstrap
    from transparency import audit, log

    monkeypatch.setattr(audit, "PAGE", 8)

    def peak(url: str, events: int) -> int:
        while (store := bootstrap.build_tree_store(url)).last_position() < events:
            store.close()
            history(url)
        try:
            cp = log.checkpoint(store)
            audit.verify(store, cp)  # the first run fills what caches there are
            tracemalloc.start()
            assert audit.verify(store, cp).holds
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            store.close()

    small, large = peak(f"sqlite:///{tmp_path / 'small.db'}", 48), peak(f"sqlite:///{tmp_path / 'large.db'}", 192)
    assert large < 1.5 * small, (small, large)  # holding every leaf and node, it grew 3.8 times


SPELLINGS = {
    "upper-case": "upper(originator_id)",
    "hyphenated": "lower(substr(originator_id, 1, 8) || '-' || substr(originator_id, 9, 4) || '-' || substr(originator_id, 13, 4) || '-' "
                  "|| substr(originator_id, 17, 4) || '-' || substr(originator_id, 21))",
    "braced": "'{{' || originator_id || '}}'",  # doubled: `tamper` fills in names
    "urn": "'urn:uuid:' || originator_id",
    "as blob": "CAST(originator_id AS BLOB)",
}


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_an_aggregate_id_respelled_is_named_even_where_it_names_the_same_uuid(tmp_path: Path, spelling: str) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    history(url)
    history(url)
    assert run("keygen", "auditor.example/ledger", "--dir", str(tmp_path))[0] == 0
    cp, key = tmp_path / "cp.txt", tmp_path / "auditor.example_ledger.pub"
    assert run("checkpoint", "--sign", str(tmp_path / "auditor.example_ledger.key"), "--out", str(cp), "--db", url)[0] == 0
    tamper(url, f"UPDATE {{events}} SET originator_id = {spelling} WHERE topic LIKE '%Meeting.Requested'")
    code, lines = verify(url, cp, key)
    assert code == 1
    # The meeting requests are at positions 7 and 13 (the writer's authorization went first).
    assert lines[0].startswith("position 7: id altered (2 positions): the event's aggregate id stored as "), lines
    assert lines[0].endswith(", not as the store writes ids"), lines
    assert not any("payload altered" in line for line in lines), lines
    run("checkpoint", "--db", url)  # a tree extended after the edit does not make it pass
    assert verify(url, cp, key)[1][0].startswith("position 7: id altered (2 positions)")


@pytest.mark.parametrize("index", ["kept", "dropped"])
def test_a_history_with_a_respelled_id_is_refused_through_the_index_of_respelled_ids_or_without_it(tmp_path: Path, index: str) -> None:
    import json
    import sqlite3

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    history(url)
    entries = json.loads(run("audit", "log", "--format", "json", "--db", url)[1])
    meeting = next(e["aggregate"] for e in entries if e["type"] == "BilateralMeeting.Requested")
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        plan = " ".join(str(row[-1]) for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT rowid FROM stored_events INDEXED BY stored_events_respelled WHERE rowid > 0 AND "
            "(typeof(originator_id) <> 'text' OR length(originator_id) <> 32 OR originator_id GLOB '*[^0-9a-f]*')"))
        assert "stored_events_respelled" in plan  # the index a history read uses: it holds no row of an untouched log
        assert conn.execute("SELECT count(*) FROM stored_events INDEXED BY stored_events_respelled WHERE "
                            "typeof(originator_id) <> 'text' OR length(originator_id) <> 32 OR originator_id GLOB '*[^0-9a-f]*'").fetchone() == (0,)
    assert run("history", meeting, "--db", url)[0] == 0
    statements = ["UPDATE {events} SET originator_id = upper(originator_id) WHERE topic LIKE '%Meeting.Requested'"]
    if index == "dropped":
        statements.insert(0, "DROP INDEX stored_events_respelled")
    tamper(url, *statements)
    code, output = run("history", meeting, "--db", url)
    assert code == 1 and output.startswith("Error: position 7: an event of ") and "not as the ledger writes ids" in output, output


def test_an_aggregate_id_respelled_in_a_column_turned_to_text_is_named_on_postgres(tmp_path: Path) -> None:
    from tests.conftest import drop_schema, fresh_postgres_url

    url = fresh_postgres_url()
    try:
        history(url)
        assert run("checkpoint", "--out", str(tmp_path / "cp.txt"), "--db", url)[0] == 0
        tamper(url, "ALTER TABLE {events} ALTER COLUMN originator_id TYPE text",
               "UPDATE {events} SET originator_id = upper(originator_id) WHERE topic LIKE '%Meeting.Requested'")
        code, output = run("verify", "--checkpoint", str(tmp_path / "cp.txt"), "--db", url)
        assert code == 1 and output.startswith("position 7: id altered: the event's aggregate id stored as '"), output
    finally:
        drop_schema(url)


FIELDS = {
    "topic as blob": ("UPDATE {events} SET topic = CAST(topic AS BLOB) WHERE {id} = 3", "position 3: payload altered"),
    # SQLite's INTEGER affinity stores every other decimal spelling of the version ('03', '3.0', 3.0) as the integer itself.
    "version as hex text": ("UPDATE {events} SET originator_version = '0x' || originator_version WHERE {id} = 3",
                            "position 3: payload altered: the event's leaf hash is not the one the tree recorded (version stored as str)"),
    "payload as text": ("UPDATE {events} SET state = CAST(state AS TEXT) WHERE {id} = 3", "position 3: payload altered"),
    "recorded time respelled": ("UPDATE {events} SET state = CAST(replace(CAST(state AS TEXT), '\"timestamp\":\"', '\"timestamp\": \"') AS BLOB) "
                                "WHERE {id} = 3", "position 3: payload altered"),
}


@pytest.mark.parametrize(("statement", "first"), FIELDS.values(), ids=FIELDS.keys())
def test_every_field_of_a_leaf_is_read_as_the_application_reads_it(tmp_path: Path, statement: str, first: str) -> None:
    # Each edit leaves a value the leaf could read like the original (the same number, text or time); none may hash the same.
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    history(url)
    assert run("checkpoint", "--out", str(tmp_path / "cp.txt"), "--db", url)[0] == 0
    tamper(url, statement)
    code, output = run("verify", "--checkpoint", str(tmp_path / "cp.txt"), "--db", url)
    assert code == 1 and output.startswith(first), output
