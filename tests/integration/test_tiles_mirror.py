"""The log as C2SP tlog-tiles (served and exported) read by torchwood's Go client, and verified mirrors: identical copies,
refused forks and rewrites, resumed after kill -9, read-only, and a restore drill."""

from __future__ import annotations

import base64
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import bootstrap
from cli.main import ledger
from service_layer import commands as c
from tests.builders import matchmaking_with_two_orgs
from tests.conftest import drop_schema, new_url, snapshot
from tests.integration.tampering import tamper
from transparency import log
from transparency.leaf import record_leaf
from transparency.note import Signer

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "interop" / "tiles"
TOKEN = "tiles-test-token"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def grow(url: str, rounds: int) -> None:
    """Six events per round, in one batch."""
    commands: list[c.Command] = []
    for _ in range(rounds):
        setup, event, a, b = matchmaking_with_two_orgs()
        commands += [*setup, c.RequestMeeting(meeting=f"{event}-M", activity=event, requester=a, partner=b, occurred_at="2024-02-10")]
    app = bootstrap.build_ledger(url)
    app.execute(commands)
    app.close()


def publish(url: str, key: Path, folder: Path | None = None) -> None:
    assert run("checkpoint", "--sign", str(key), "--db", url)[0] == 0
    if folder is not None:
        code, output = run("tiles", "export", str(folder), "--db", url)
        assert code == 0, output


def contents(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The stored events as stored, the tree's leaves and its nodes."""
    store = bootstrap.build_tree_store(url)
    try:
        events = [(r.position, r.aggregate_id, r.version, r.topic, r.state) for r in store.records(0, 1 << 30)]
        size = store.size()
        leaves = [(leaf.index, leaf.position, leaf.hash) for leaf in store.leaves_after(-1, 1 << 30)]
        nodes = [(level, store.nodes_at(level, 0, size >> level)) for level in range(1, size.bit_length())]
    finally:
        store.close()
    return events, leaves, [tuple(n) for n in nodes]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    signer = Signer.generate("ledger.example/tlog")
    (tmp_path / "log.key").write_text(signer.encode() + "\n")
    (tmp_path / "log.pub").write_text(signer.verifier.encode() + "\n")
    return tmp_path / "log.key", tmp_path / "log.pub"


@pytest.fixture
def target(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind as `db_url`, for the mirror."""
    url = new_url("sqlite" if db_url.startswith("sqlite") else "postgres", tmp_path)
    yield url
    if url.startswith("postgres"):
        drop_schema(url)


def test_checkpoint_sign_publishes_and_lists(db_url: str, keys: tuple[Path, Path]) -> None:
    grow(db_url, 2)
    assert run("checkpoint", "--list", "--db", db_url) == (0, "no checkpoint published yet: `ledger checkpoint --sign KEY` publishes one\n")
    publish(db_url, keys[0])
    grow(db_url, 1)
    publish(db_url, keys[0])
    code, output = run("checkpoint", "--list", "--db", db_url)
    lines = output.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("#2 ") and "tree size 19 " in lines[0] and lines[0].endswith("signed by ledger.example/tlog")
    assert lines[1].startswith("#1 ") and "tree size 13 " in lines[1]


def test_a_mirror_of_a_ledger_written_to_meanwhile_ends_identical_and_read_only(
    db_url: str, target: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "tiles"
    grow(db_url, 50)
    publish(db_url, keys[0], folder)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            grow(db_url, 40)
            publish(db_url, keys[0], folder)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(4):
            code, output = run("mirror", str(folder), "--verifier-key", str(keys[1]), "--db", target)
            assert code == 0, output
    finally:
        stop.set()
        thread.join()
    publish(db_url, keys[0], folder)
    code, output = run("mirror", str(folder), "--verifier-key", str(keys[1]), "--db", target)
    assert code == 0 and output.startswith("mirrored ") or output.startswith("up to date "), output
    assert contents(target) == contents(db_url)
    assert run("mirror", str(folder), "--verifier-key", str(keys[1]), "--db", target)[1].startswith(f"up to date with {folder}")
    assert run("verify", "--db", target)[0] == 0

    setup, *_ = matchmaking_with_two_orgs()
    before = snapshot(target)
    code, output = run("org", "register", "--org", setup[0].org, "--name", "Cluster X", "--country", "IT", "--region", "ITC4",
                       "--sectors", "software", "--ecosystems", "digital", "--year-established", "2012", "--db", target)
    assert (code, output) == (1, f"Error: db: this ledger is a read-only mirror of {folder}; record the change at the source, "
                                 "then run `ledger mirror` again\n")
    assert snapshot(target) == before


@pytest.mark.parametrize("grown", [False, True], ids=["same-size", "grown"])
def test_a_rewritten_source_is_refused_and_nothing_is_written(
    db_url: str, target: str, keys: tuple[Path, Path], tmp_path: Path, grown: bool
) -> None:
    grow(db_url, 10)
    publish(db_url, keys[0], tmp_path / "before")
    assert run("mirror", str(tmp_path / "before"), "--verifier-key", str(keys[1]), "--db", target)[0] == 0
    mirrored = log.checkpoint(store := bootstrap.build_tree_store(target))
    store.close()
    # The operator rewrites one event, rebuilds the tree and signs again.
    tamper(db_url, "UPDATE {events} SET originator_version = 9 WHERE {id} = 2", "DELETE FROM {schema}.tlog_nodes", "DELETE FROM {schema}.tlog_leaves")
    if grown:
        grow(db_url, 3)
    after = tmp_path / "before"
    shutil.rmtree(after)
    publish(db_url, keys[0], after)
    before = snapshot(target)
    code, output = run("mirror", str(after), "--verifier-key", str(keys[1]), "--db", target)
    size = 61 + (18 if grown else 0)  # the writer's authorization, then the history
    assert code == 1 and output.count("\n") == 1, output
    assert output.startswith(f"Error: source: its signed tree (size {size}, root ")
    assert f"does not extend the mirrored tree (size 61, root {base64.b64encode(mirrored.root).decode()}): the source forked or rewrote its history" in output
    assert snapshot(target) == before


def test_a_mirror_killed_at_random_moments_resumes_to_an_identical_copy(keys: tuple[Path, Path], tmp_path: Path) -> None:
    source = new_url("sqlite", tmp_path)
    folder = tmp_path / "tiles"
    grow(source, 400)
    publish(source, keys[0], folder)
    expected = contents(source)
    moments = random.Random(2024)
    for attempt in range(10):
        target = new_url("sqlite", tmp_path)
        process = subprocess.Popen([sys.executable, "-m", "cli.main", "mirror", str(folder), "--verifier-key", str(keys[1]), "--db", target],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moments.uniform(0.3, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        # Whatever was written is whole entry bundles, events and tree together.
        events, leaves, _ = contents(target) if Path(target.removeprefix("sqlite:///")).exists() else ([], [], [])
        assert len(events) == len(leaves) and [e[0] for e in events] == [leaf[1] for leaf in leaves], attempt
        code, output = run("mirror", str(folder), "--verifier-key", str(keys[1]), "--db", target)
        assert code == 0, output
        assert contents(target) == expected, attempt


def test_the_restore_drill_mirror_verify_report_after_the_source_is_gone(db_url: str, target: str, keys: tuple[Path, Path], tmp_path: Path) -> None:
    grow(db_url, 12)
    publish(db_url, keys[0], tmp_path / "tiles")
    figures = run("report", "impact", "--format", "json", "--db", db_url)
    assert figures[0] == 0
    assert run("mirror", str(tmp_path / "tiles"), "--verifier-key", str(keys[1]), "--db", target)[0] == 0
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).unlink()
    else:
        drop_schema(db_url)
    code, output = run("verify", "--checkpoint", str(tmp_path / "tiles" / "checkpoint"), "--verifier-key", str(keys[1]), "--db", target)
    assert code == 0 and output.startswith("verified: 73 stored events match the tree of 73 leaves; matches checkpoint"), output
    assert run("report", "impact", "--format", "json", "--db", target) == figures


def go_binary(tmp_path: Path) -> Path:
    go = shutil.which("go", path="/usr/local/go/bin") or shutil.which("go")
    if go is None:
        pytest.fail("Go 1.24 or later is needed (/usr/local/go/bin/go) for torchwood's client", pytrace=False)
    binary = tmp_path / "tilescheck"
    built = subprocess.run([go, "build", "-o", str(binary), "."], cwd=INTEROP, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"go build failed:\n{built.stderr}"
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, "the server ended before it listened"
            assert time.monotonic() < deadline, "the server did not listen within 30 s"
            time.sleep(0.1)


def test_torchwood_reads_every_entry_of_a_served_ledger_and_of_an_exported_folder(keys: tuple[Path, Path], tmp_path: Path) -> None:
    url = new_url("sqlite", tmp_path)
    grow(url, 50)  # 301 events (the writer's, then 300): a full entry bundle and a partial one
    publish(url, keys[0], tmp_path / "tiles")
    store = bootstrap.build_tree_store(url)
    try:
        cp = log.checkpoint(store)
        expected = [f"{k} {base64.b64encode(record_leaf(r)).decode()}" for k, r in enumerate(store.records(0, 1 << 30))]
    finally:
        store.close()
    tilescheck = go_binary(tmp_path)
    served, static = free_port(), free_port()
    processes = [
        subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--db", url, "--port", str(served), "--token", TOKEN], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "http.server", str(static), "--bind", "127.0.0.1", "--directory", str(tmp_path / "tiles")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        listening(processes[0], served)
        listening(processes[1], static)
        for prefix, token in ((f"http://127.0.0.1:{served}/tlog", TOKEN), (f"http://127.0.0.1:{static}", "")):
            done = subprocess.run([str(tilescheck), "-prefix", prefix, "-key", str(keys[1]), "-token", token], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            lines = done.stdout.splitlines()
            assert lines[0] == f"301 {base64.b64encode(cp.root).decode()}"
            assert lines[1:] == expected
        refused = subprocess.run([str(tilescheck), "-prefix", f"http://127.0.0.1:{served}/tlog", "-key", str(keys[1])],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "status 401" in refused.stderr
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
