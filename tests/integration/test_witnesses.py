"""Checkpoints cosigned by two real witnesses (litewitness), checked against a tlog-policy; split views and refusals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import ledger
from tests.integration.tampering import history
from tests.witnesses import ROOT, LiteWitness, policy_text, running
from transparency.note import Signer


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(ledger, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.fixture
def witnesses() -> Iterator[list[LiteWitness]]:
    with running(2) as started:
        yield started


@pytest.fixture
def keys(tmp_path: Path, witnesses: list[LiteWitness]) -> tuple[Path, Path]:
    """A ledger key both witnesses trust, and a policy naming both witnesses (with URLs) and requiring both."""
    signer = Signer.generate(f"ledger.example/{tmp_path.name}")
    (tmp_path / "ledger.key").write_text(signer.encode() + "\n")
    (tmp_path / "ledger.pub").write_text(signer.verifier.encode() + "\n")
    for w in witnesses:
        w.trust(signer.name, signer.verifier.encode())
    (tmp_path / "policy.txt").write_text(policy_text(signer.verifier.encode(), witnesses))
    return tmp_path / "ledger.key", tmp_path / "policy.txt"


def publish(url: str, key: Path, policy: Path, out: Path, *extra: str) -> tuple[int, str]:
    return run("checkpoint", "--sign", str(key), "--policy", str(policy), "--out", str(out), "--db", url, *extra)


def test_checkpoints_cosigned_twice_pass_a_quorum_of_two_and_fail_naming_the_witness_when_a_line_is_altered_or_removed(
        db_url: str, tmp_path: Path, keys: tuple[Path, Path]) -> None:
    key, policy = keys
    history(db_url)
    assert publish(db_url, key, policy, tmp_path / "cp-1.txt")[0] == 0
    history(db_url)
    code, out = publish(db_url, key, policy, tmp_path / "cp-2.txt")
    assert code == 0 and "cosigned by 2 of 2 witnesses: w1, w2" in out, out
    cp2 = (tmp_path / "cp-2.txt").read_text()
    assert cp2.count("\n\u2014 witness.example/w") == 2 and cp2.splitlines()[1] == "13"  # the writer's authorization, then two histories

    code, out = run("verify", "--checkpoint", str(tmp_path / "cp-2.txt"), "--policy", str(policy), "--db", db_url)
    assert code == 0, out
    assert "witness w1 (witness.example/w1+" in out and out.count("cosignature valid") == 2
    assert "quorum witnesses (2 of w1, w2): held (2 valid cosignatures)" in out
    code, out = run("prove", "--from", str(tmp_path / "cp-1.txt"), "--to", str(tmp_path / "cp-2.txt"), "--policy", str(policy),
                    "--out", str(tmp_path / "consistency.json"), "--db", db_url)
    assert code == 0, out
    code, out = run("verify-proof", str(tmp_path / "consistency.json"), "--old-checkpoint", str(tmp_path / "cp-1.txt"),
                    "--checkpoint", str(tmp_path / "cp-2.txt"), "--policy", str(policy))
    assert code == 0 and "verified: the tree of 7 events is a prefix of the tree of 13 events" in out, out

    lines = cp2.splitlines(keepends=True)
    w1 = next(i for i, line in enumerate(lines) if line.startswith("\u2014 witness.example/w1 "))
    signature = lines[w1].rstrip("\n")
    # One base64 character of the signature changed, away from the padding.
    altered = signature[:-10] + ("A" if signature[-10] != "A" else "B") + signature[-9:] + "\n"
    (tmp_path / "altered.txt").write_text("".join([*lines[:w1], altered, *lines[w1 + 1:]]))
    code, out = run("verify", "--checkpoint", str(tmp_path / "altered.txt"), "--policy", str(policy), "--db", db_url)
    assert code == 1 and "witness w1 (witness.example/w1+" in out and "cosignature invalid" in out, out
    assert "checkpoint: policy: quorum witnesses (2 of w1, w2) not held: cosignature of w1 invalid" in out

    w2 = next(i for i, line in enumerate(lines) if line.startswith("\u2014 witness.example/w2 "))
    (tmp_path / "removed.txt").write_text("".join(lines[:w2] + lines[w2 + 1:]))
    code, out = run("verify-proof", str(tmp_path / "consistency.json"), "--old-checkpoint", str(tmp_path / "cp-1.txt"),
                    "--checkpoint", str(tmp_path / "removed.txt"), "--policy", str(policy))
    assert code == 1 and "cosignature of w2 missing" in out and "verified" not in out, out


def test_a_second_ledger_with_the_same_key_and_another_history_is_refused_as_a_fork(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    key, policy = keys
    first, second = f"sqlite:///{tmp_path / 'first.db'}", f"sqlite:///{tmp_path / 'second.db'}"
    history(first)
    assert publish(first, key, policy, tmp_path / "public.txt")[0] == 0
    history(second)
    history(second)  # longer than what the witnesses saw, and a different history
    code, out = publish(second, key, policy, tmp_path / "split.txt")
    assert code == 1 and not (tmp_path / "split.txt").exists(), out
    assert "witness w1 refused tree size 13: 422 Unprocessable Entity: not consistent with the tree of 7 leaves it cosigned before" in out
    assert "witness w2 refused tree size 13" in out and "Error: policy: quorum witnesses (2 of w1, w2) not held" in out


def test_refusals_name_the_witness_and_the_reason_and_quorum_decides(tmp_path: Path, witnesses: list[LiteWitness]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    history(url)
    signer, stranger = Signer.generate("ledger.example/refused"), Signer.generate("ledger.example/refused")
    (tmp_path / "ledger.key").write_text(signer.encode() + "\n")
    witnesses[0].trust(signer.name, stranger.verifier.encode())  # w1 knows the origin with another key; w2 not at all
    args = ["checkpoint", "--sign", str(tmp_path / "ledger.key"), "--out", str(tmp_path / "cp.txt"), "--db", url,
            "--witness", witnesses[0].url, "--witness", witnesses[1].url, "--witness", "http://127.0.0.1:9/", "--witness-timeout", "2"]
    code, out = run(*args, "--quorum", "1")
    assert code == 1 and not (tmp_path / "cp.txt").exists(), out
    assert f"witness {witnesses[0].url} refused tree size 7: 403 Forbidden: it does not trust the key" in out
    assert f"witness {witnesses[1].url} refused tree size 7: 403 Forbidden: it does not know the origin 'ledger.example/refused'" in out
    assert "witness http://127.0.0.1:9/: unreachable: [Errno 111] Connection refused" in out
    assert "Error: quorum: 0 witness(es) cosigned, --quorum 1 needs 1; nothing published" in out
    witnesses[1].trust(signer.name, signer.verifier.encode())
    code, out = run(*args, "--quorum", "1")
    assert code == 0 and "cosigned by 1 of 3 witnesses" in out and "\u2014 witness.example/w2 " in (tmp_path / "cp.txt").read_text()


def test_the_schedule_retries_a_witness_that_is_down_and_publishes_when_the_quorum_holds(
        tmp_path: Path, keys: tuple[Path, Path], witnesses: list[LiteWitness]) -> None:
    key, policy = keys
    url, out = f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "published.txt"
    history(url)
    witnesses[1].stop()
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "checkpoint", "--sign", str(key), "--policy", str(policy), "--quorum", "1",
                                "--out", str(out), "--every", "0.2", "--witness-timeout", "2", "--db", url],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: out.exists())
        first = out.read_text()
        assert "\u2014 witness.example/w1 " in first and "witness.example/w2" not in first
        witnesses[1].start()  # restarted, with what it had stored: it has never cosigned this log
        history(url)
        wait_for(lambda: "\n13\n" in out.read_text() and "witness.example/w2" in out.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    lines = output.splitlines()
    assert any("witness w2" in line and "unreachable" in line for line in lines), output
    assert any(line.endswith("published tree size 7 to " + str(out) + ", cosigned by 1 of 2 witnesses: w1") for line in lines), output
    assert any(line.endswith("published tree size 13 to " + str(out) + ", cosigned by 2 of 2 witnesses: w1, w2") for line in lines), output
    assert lines[-1].endswith(" stopped")


def wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
