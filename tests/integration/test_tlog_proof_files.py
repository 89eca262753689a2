"""`prove --format tlog-proof` and `verify-proof` of the file: the same proof as the JSON one, checked with no database;
altered leaves, other keys, other checkpoints and unsigned checkpoints refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_tiles_mirror import grow, keys, run  # noqa: F401 - fixture
from transparency.note import Signer
from transparency.proofs import parse_proof
from transparency.tlogproof import parse_tlog_proof, to_inclusion


def test_a_tlog_proof_holds_the_json_proof_and_its_signed_checkpoint(db_url: str, keys: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    grow(db_url, 3)
    assert run("checkpoint", "--sign", str(keys[0]), "--out", str(tmp_path / "cp.txt"), "--db", db_url)[0] == 0
    position = json.loads(run("audit", "log", "--format", "json", "--db", db_url)[1])[4]["position"]
    code, output = run("prove", str(position), "--checkpoint", str(tmp_path / "cp.txt"), "--format", "tlog-proof",
                       "--out", str(tmp_path / "p.tlog-proof"), "--db", db_url)
    assert code == 0, output
    code, as_json = run("prove", str(position), "--checkpoint", str(tmp_path / "cp.txt"), "--db", db_url)
    text = (tmp_path / "p.tlog-proof").read_text()
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ") and text.endswith("\n\n" + (tmp_path / "cp.txt").read_text())
    assert to_inclusion(parse_tlog_proof(text))[0] == parse_proof(as_json)
    size = (tmp_path / "cp.txt").read_text().split("\n")[1]
    for extra in ([], ["--checkpoint", str(tmp_path / "cp.txt")]):
        code, output = run("verify-proof", str(tmp_path / "p.tlog-proof"), "--verifier-key", str(keys[1]), *extra)
        assert code == 0 and output.startswith(f"verified: the event at position {position} is leaf 4 of the tree of {size} events\n"), output


def test_a_tlog_proof_that_does_not_hold_is_refused_in_one_line(keys: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    grow(url, 2)
    assert run("checkpoint", "--sign", str(keys[0]), "--out", str(tmp_path / "cp.txt"), "--db", url)[0] == 0
    assert run("prove", "3", "--checkpoint", str(tmp_path / "cp.txt"), "--format", "tlog-proof", "--out", str(tmp_path / "p"), "--db", url)[0] == 0
    proof = parse_tlog_proof((tmp_path / "p").read_text())

    def refused(text: str, *args: str) -> str:
        (tmp_path / "edited").write_text(text)
        code, output = run("verify-proof", str(tmp_path / "edited"), "--verifier-key", str(keys[1]), *args)
        assert code == 1 and output.count("\n") == 1, output
        return output

    altered = proof.extra[:-2] + b"9}" if proof.extra else b""  # the payload's last figure changed
    moved = type(proof)(proof.index + 1, proof.path, proof.checkpoint, proof.extra).text()
    for edited in (type(proof)(proof.index, proof.path, proof.checkpoint, altered).text(), moved):
        assert refused(edited) == "Error: the inclusion path does not lead to the checkpoint's root hash\n"
    other = Signer.generate("ledger.example/tlog")
    (tmp_path / "other.key").write_text(other.encode() + "\n")
    assert run("checkpoint", "--sign", str(tmp_path / "other.key"), "--out", str(tmp_path / "other.txt"), "--db", url)[0] == 0
    forged = type(proof)(proof.index, proof.path, (tmp_path / "other.txt").read_text(), proof.extra).text()
    assert refused(forged).startswith(f"Error: checkpoint: '{tmp_path / 'edited'}': signature invalid: the checkpoint carries no signature by key ")
    grow(url, 1)
    assert run("checkpoint", "--sign", str(keys[0]), "--out", str(tmp_path / "later.txt"), "--db", url)[0] == 0
    assert refused(proof.text(), "--checkpoint", str(tmp_path / "later.txt")).startswith(
        f"Error: checkpoint: '{tmp_path / 'later.txt'}': not the checkpoint the tlog-proof carries (tree size {(tmp_path / 'cp.txt').read_text().split(chr(10))[1]}, root ")
    assert refused(proof.text().replace("\nindex ", "\nindex 0")).startswith("Error: not a tlog-proof: line 3: expected 'index N'")
    assert run("checkpoint", "--out", str(tmp_path / "unsigned.txt"), "--db", url)[0] == 0
    code, output = run("prove", "3", "--checkpoint", str(tmp_path / "unsigned.txt"), "--format", "tlog-proof", "--db", url)
    assert (code, output) == (1, "Error: checkpoint: a tlog-proof carries a signed checkpoint; give one written by `ledger checkpoint --sign`\n")
    code, output = run("prove", "--from", str(tmp_path / "cp.txt"), "--to", str(tmp_path / "later.txt"), "--format", "tlog-proof", "--db", url)
    assert code == 2 and output.endswith("Error: --format tlog-proof writes inclusion proofs: give POSITION --checkpoint FILE\n")
    (tmp_path / "p.json").write_text(run("prove", "3", "--checkpoint", str(tmp_path / "cp.txt"), "--db", url)[1])
    code, output = run("verify-proof", str(tmp_path / "p.json"))
    assert code == 2 and output.endswith("Error: a JSON proof needs --checkpoint FILE (a tlog-proof carries its own)\n")
