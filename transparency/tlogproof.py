"""C2SP tlog-proof: an inclusion proof and the signed checkpoint it leads to, in one text file, checked offline.

The ledger's proofs carry the event's leaf bytes on the `extra` line (a verifier needs them to compute the leaf hash, and
they name the event's position); the checkpoint is the signed note, verbatim, cosignatures included.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from transparency.errors import BadNote, ProofFailed
from transparency.leaf import parse_leaf
from transparency.merkle import leaf_hash
from transparency.note import Checkpoint, parse_checkpoint, split_note
from transparency.proofs import InclusionProof, b64

HEADER = "c2sp.org/tlog-proof@v1"
EXTENSION = ".tlog-proof"
_INDEX = re.compile(r"index (0|[1-9][0-9]*)")


@dataclass(frozen=True)
class TlogProof:
    """A tlog-proof: the entry's index, its inclusion path (sibling first), the checkpoint as signed, and opaque extra data."""

    index: int
    path: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def text(self) -> str:
        lines = [HEADER, *([f"extra {b64(self.extra)}"] if self.extra is not None else []), f"index {self.index}"]
        lines += [b64(h) for h in self.path]
        return "\n".join(lines) + "\n\n" + self.checkpoint


def is_tlog_proof(text: str) -> bool:
    return text.startswith(HEADER + "\n")


def parse_tlog_proof(text: str) -> TlogProof:
    """A tlog-proof from its text; raises ProofFailed naming the first line that is not as the format says."""
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise ProofFailed("not a tlog-proof: no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise ProofFailed(f"not a tlog-proof: the first line is not {HEADER!r}")
    at, extra = 1, None
    if len(lines) > 1 and lines[1].startswith("extra "):
        extra = _decoded(lines[1].removeprefix("extra "), 2, "extra")
        at = 2
    index = _INDEX.fullmatch(lines[at]) if len(lines) > at else None
    if index is None:
        raise ProofFailed(f"not a tlog-proof: line {at + 1}: expected 'index N' (a decimal, no leading zeros)")
    path = []
    for number, line in enumerate(lines[at + 1 :], start=at + 2):
        digest = _decoded(line, number, "proof hash")
        if len(digest) != 32:
            raise ProofFailed(f"not a tlog-proof: line {number}: a proof hash has {len(digest)} bytes, not 32")
        path.append(digest)
    if not checkpoint:
        raise ProofFailed("not a tlog-proof: no checkpoint after the empty line")
    # The checkpoint is kept verbatim: its signatures are read where they are checked.
    return TlogProof(int(index.group(1)), tuple(path), checkpoint, extra)


def _decoded(text: str, number: int, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ProofFailed(f"not a tlog-proof: line {number}: the {what} is not base64") from None


def from_inclusion(proof: InclusionProof, checkpoint_note: str) -> TlogProof:
    """The tlog-proof of an inclusion proof in the tree of a signed checkpoint (the leaf bytes as its extra data)."""
    try:
        split_note(checkpoint_note)
    except BadNote:
        raise ProofFailed("checkpoint: a tlog-proof carries a signed checkpoint; give one written by `ledger checkpoint --sign`") from None
    return TlogProof(proof.leaf_index, tuple(base64.b64decode(p) for p in proof.path), checkpoint_note, base64.b64decode(proof.leaf))


def to_inclusion(proof: TlogProof) -> tuple[InclusionProof, Checkpoint]:
    """The ledger's inclusion proof a tlog-proof holds, and its checkpoint (signatures not checked here: see `check_inclusion`)."""
    if proof.extra is None:
        raise ProofFailed("tlog-proof: no extra line: the ledger's proofs carry the event's leaf bytes there")
    try:
        position = parse_leaf(proof.extra).position
    except ValueError as error:
        raise ProofFailed(f"tlog-proof: the extra data is not an event's leaf: {error}") from None
    try:
        checkpoint = parse_checkpoint(proof.checkpoint)
    except BadNote as error:
        raise ProofFailed(f"tlog-proof: the checkpoint: {error}") from None
    inclusion = InclusionProof(
        position=position, leaf_index=proof.index, tree_size=checkpoint.size, leaf=b64(proof.extra),
        leaf_hash=b64(leaf_hash(proof.extra)), path=tuple(b64(h) for h in proof.path),
    )
    return inclusion, checkpoint
