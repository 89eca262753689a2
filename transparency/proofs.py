"""Inclusion and consistency proofs as JSON, and their checking against checkpoints with no database at all."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from transparency import merkle
from transparency.errors import ProofFailed
from transparency.leaf import parse_leaf
from transparency.note import Checkpoint


class InclusionProof(BaseModel):
    """That the event at `position` is leaf `leaf_index` of the tree of `tree_size` leaves."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["inclusion"] = "inclusion"
    position: int
    leaf_index: int
    tree_size: int
    leaf: str
    leaf_hash: str
    path: tuple[str, ...]


class ConsistencyProof(BaseModel):
    """That the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["consistency"] = "consistency"
    old_size: int
    new_size: int
    path: tuple[str, ...]


Proof = Annotated[InclusionProof | ConsistencyProof, Field(discriminator="kind")]
PROOF: TypeAdapter[InclusionProof | ConsistencyProof] = TypeAdapter(Proof)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ProofFailed(f"{field}: not base64") from None


def parse_proof(text: str) -> InclusionProof | ConsistencyProof:
    """A proof from its JSON; raises ProofFailed with the first problem if it is not one."""
    try:
        return PROOF.validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "proof"
        raise ProofFailed(f"not a proof: {where}: {first['msg']}") from None


def check_inclusion(proof: InclusionProof, checkpoint: Checkpoint) -> None:
    """Raise ProofFailed unless the leaf, its position and its path lead to the checkpoint's root."""
    if proof.tree_size != checkpoint.size:
        raise ProofFailed(f"the proof is for a tree of {proof.tree_size} leaves, the checkpoint's tree has {checkpoint.size}")
    leaf = unb64("leaf", proof.leaf)
    computed = merkle.leaf_hash(leaf)
    if computed != unb64("leaf_hash", proof.leaf_hash):
        raise ProofFailed("the leaf hash is not the hash of the leaf bytes")
    try:
        position = parse_leaf(leaf).position
    except ValueError as error:
        raise ProofFailed(f"the leaf bytes are not an event's leaf: {error}") from None
    if position != proof.position:
        raise ProofFailed(f"the leaf bytes are of position {position}, not {proof.position}")
    path = [unb64("path", p) for p in proof.path]
    merkle.verify_inclusion(computed, proof.leaf_index, proof.tree_size, path, checkpoint.root)


def check_consistency(proof: ConsistencyProof, old: Checkpoint, new: Checkpoint) -> None:
    """Raise ProofFailed unless the old checkpoint's tree is a prefix of the new checkpoint's tree."""
    if old.origin != new.origin:
        raise ProofFailed(f"the checkpoints are of different logs ({old.origin!r}, {new.origin!r})")
    if (proof.old_size, proof.new_size) != (old.size, new.size):
        raise ProofFailed(f"the proof is from size {proof.old_size} to {proof.new_size}; the checkpoints have sizes {old.size} and {new.size}")
    path = [unb64("path", p) for p in proof.path]
    merkle.verify_consistency(old.size, new.size, path, old.root, new.root)
