"""Inclusion and consistency proofs from the ledger verify with `ledger verify-proof` and with Go's reference libraries,
and fail for a tampered leaf, a wrong checkpoint, a wrong verifier key and a rewritten history."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import bootstrap
from cli.main import ledger
from presentation.text import count
from tests.integration.tampering import history, tamper
from transparency import log
from transparency.note import Checkpoint, Signer, sign_note

INTEROP = Path(__file__).resolve().parents[2] / "interop" / "tlog"
SIZES = (1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 37)


def go() -> str:
    found = shutil.which("go") or (shutil.which("go", path="/usr/local/go/bin"))
    if not found:
        pytest.fail("Go is not installed: the interop check needs it (scripts/test installs Debian's golang-go)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go checker, built once from interop/tlog."""
    binary = tmp_path_factory.mktemp("go") / "tlogcheck"
    built = subprocess.run([go(), "build", "-o", str(binary), "."], cwd=INTEROP, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"go build failed:\n{built.stderr}"
    return binary


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def go_check(tlogcheck: Path, key: Path, cp: Path, *proofs: Path, old: Path | None = None) -> tuple[int, str]:
    args = [str(tlogcheck), "-key", str(key), "-checkpoint", str(cp), *(["-old-checkpoint", str(old)] if old else []), *map(str, proofs)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def signed(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, Signer]]:
    """37 events (the test writer's authorization, then 6 histories), signed checkpoints at the tree sizes in SIZES (cp-N.txt), and the keys."""
    for _ in range(6):
        history(db_url)
    signer = Signer.generate("auditor.example/ledger")
    (tmp_path / "ledger.pub").write_text(signer.verifier.encode() + "\n")
    (tmp_path / "ledger.key").write_text(signer.encode() + "\n")
    store = bootstrap.build_tree_store(db_url)
    try:
        log.catch_up(store)
        for size in SIZES:
            (tmp_path / f"cp-{size}.txt").write_text(sign_note(Checkpoint(signer.name, size, log.root(store, size)).body(), signer))
    finally:
        store.close()
    code, _ = run("checkpoint", "--sign", str(tmp_path / "ledger.key"), "--out", str(tmp_path / "cp-cli.txt"), "--db", db_url)
    assert code == 0 and (tmp_path / "cp-cli.txt").read_text() == (tmp_path / "cp-37.txt").read_text()
    yield db_url, tmp_path, signer


def test_inclusion_proofs_of_random_positions_verify_here_and_in_go(signed: tuple[str, Path, Signer], tlogcheck: Path) -> None:
    url, d, _ = signed
    proofs = []
    for position in random.Random(9162).sample(range(1, 38), 8):
        proof = d / f"inclusion-{position}.json"
        assert run("prove", str(position), "--checkpoint", str(d / "cp-37.txt"), "--out", str(proof), "--db", url)[0] == 0
        assert json.loads(proof.read_text())["leaf_index"] == position - 1
        assert sorted(json.loads(proof.read_text())) == ["kind", "leaf", "leaf_hash", "leaf_index", "path", "position", "tree_size"]
        code, output = run("verify-proof", str(proof), "--checkpoint", str(d / "cp-37.txt"), "--verifier-key", str(d / "ledger.pub"))
        assert code == 0 and output.startswith(f"verified: the event at position {position} is leaf {position - 1} of the tree of 37 events\n  domain.")
        proofs.append(proof)
    code, output = go_check(tlogcheck, d / "ledger.pub", d / "cp-37.txt", *proofs)
    assert code == 0, output


def test_an_inclusion_proof_fails_for_a_tampered_leaf_a_wrong_checkpoint_and_a_wrong_key(signed: tuple[str, Path, Signer], tlogcheck: Path) -> None:
    url, d, _ = signed
    proof = d / "inclusion.json"
    assert run("prove", "7", "--checkpoint", str(d / "cp-33.txt"), "--out", str(proof), "--db", url)[0] == 0
    fields = json.loads(proof.read_text())
    leaf = bytearray(base64.b64decode(fields["leaf"]))
    leaf[-5] ^= 1
    tampered = d / "tampered.json"
    tampered.write_text(json.dumps(fields | {"leaf": base64.b64encode(leaf).decode(),
                                             "leaf_hash": base64.b64encode(hashlib.sha256(b"\0" + leaf).digest()).decode()}))
    code, output = run("verify-proof", str(tampered), "--checkpoint", str(d / "cp-33.txt"), "--verifier-key", str(d / "ledger.pub"))
    assert (code, output) == (1, "Error: the inclusion path does not lead to the checkpoint's root hash\n")
    assert go_check(tlogcheck, d / "ledger.pub", d / "cp-33.txt", tampered)[0] == 1

    code, output = run("verify-proof", str(proof), "--checkpoint", str(d / "cp-32.txt"), "--verifier-key", str(d / "ledger.pub"))
    assert (code, output) == (1, "Error: the proof is for a tree of 33 leaves, the checkpoint's tree has 32\n")
    forger = Signer.generate("auditor.example/ledger")
    forged = d / "forged.txt"
    forged.write_text(sign_note(Checkpoint(forger.name, 33, bytes(32)).body(), forger))
    code, output = run("verify-proof", str(proof), "--checkpoint", str(forged), "--verifier-key", str(d / "ledger.pub"))
    assert code == 1 and "signature invalid: the checkpoint carries no signature by key auditor.example/ledger+" in output
    assert go_check(tlogcheck, d / "ledger.pub", forged, proof)[0] == 1
    (d / "forger.pub").write_text(forger.verifier.encode())
    code, output = run("verify-proof", str(proof), "--checkpoint", str(d / "cp-33.txt"), "--verifier-key", str(d / "forger.pub"))
    assert code == 1 and "signature invalid" in output
    assert go_check(tlogcheck, d / "forger.pub", d / "cp-33.txt", proof)[0] == 1


PAIRS = [(1, 2), (1, 37), (2, 3), (4, 5), (8, 9), (16, 17), (32, 33), (3, 3), (5, 37), (9, 33)]


def test_consistency_proofs_between_sizes_verify_here_and_in_go(signed: tuple[str, Path, Signer], tlogcheck: Path) -> None:
    url, d, _ = signed
    pairs = PAIRS + sorted(tuple(sorted(p)) for p in (random.Random(6962).sample(SIZES, 2) for _ in range(5)))  # type: ignore[misc]
    for old, new in pairs:
        proof = d / f"consistency-{old}-{new}.json"
        code, output = run("prove", "--from", str(d / f"cp-{old}.txt"), "--to", str(d / f"cp-{new}.txt"), "--out", str(proof), "--db", url)
        assert code == 0, output
        assert sorted(json.loads(proof.read_text())) == ["kind", "new_size", "old_size", "path"]
        assert run("verify-proof", str(proof), "--checkpoint", str(d / f"cp-{new}.txt"), "--old-checkpoint", str(d / f"cp-{old}.txt"),
                   "--verifier-key", str(d / "ledger.pub")) == (0, f"verified: the tree of {count(old, 'event')} is a prefix of the tree of {count(new, 'event')}\n")
        code, output = go_check(tlogcheck, d / "ledger.pub", d / f"cp-{new}.txt", proof, old=d / f"cp-{old}.txt")
        assert code == 0, output


def test_a_consistency_proof_fails_after_an_early_event_was_rewritten(signed: tuple[str, Path, Signer], tlogcheck: Path) -> None:
    url, d, signer = signed
    # The attacker rewrites event 2 and rebuilds the tree so that new checkpoints agree with the rewritten history.
    tamper(url, "UPDATE {events} SET originator_version = 9 WHERE {id} = 2", "DELETE FROM {schema}.tlog_nodes", "DELETE FROM {schema}.tlog_leaves")
    store = bootstrap.build_tree_store(url)
    try:
        log.catch_up(store)
        (d / "cp-after.txt").write_text(sign_note(Checkpoint(signer.name, 36, log.root(store, 36)).body(), signer))
    finally:
        store.close()
    proof = d / "consistency.json"
    assert run("prove", "--from", str(d / "cp-5.txt"), "--to", str(d / "cp-after.txt"), "--out", str(proof), "--db", url)[0] == 0
    code, output = run("verify-proof", str(proof), "--checkpoint", str(d / "cp-after.txt"), "--old-checkpoint", str(d / "cp-5.txt"),
                       "--verifier-key", str(d / "ledger.pub"))
    assert (code, output) == (1, "Error: the consistency path does not lead to the old checkpoint's root hash\n")
    code, output = go_check(tlogcheck, d / "ledger.pub", d / "cp-after.txt", proof, old=d / "cp-5.txt")
    assert code == 1 and "FAIL" in output


def test_two_followers_never_add_an_event_twice(db_url: str) -> None:
    history(db_url)
    first, second = bootstrap.build_tree_store(db_url), bootstrap.build_tree_store(db_url)
    try:
        page = first.records(-(1 << 63), 4)
        leaves = [(r.position, bytes(32)) for r in page]
        assert first.append(0, leaves) is True
        assert second.append(0, leaves) is False  # it read the same page, but the tree moved: it reloads instead
        assert log.catch_up(second, page_size=1) == 3 and log.catch_up(first) == 0
        assert first.size() == second.size() == 7  # the test writer's authorization and one history
    finally:
        first.close()
        second.close()
