"""The tree's proofs agree with RFC 9162's recursive definitions, verify, and fail when anything is changed."""

from __future__ import annotations

import hashlib

import pytest

from transparency import merkle
from transparency.errors import ProofFailed
from transparency.leaf import StoredRecord, leaf_bytes, parse_leaf, record_leaf
from transparency.store import nodes_completed


def mth(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1, straight from the definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH of RFC 9162 §2.1.3.1."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF of RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


LEAVES = [f"leaf {i}".encode() for i in range(40)]
HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]
LEVELS = merkle.build_levels(HASHES)
COMPLETE = merkle.levels_complete(LEVELS)


@pytest.mark.parametrize("size", range(1, 41))
def test_roots_paths_and_proofs_are_those_of_the_rfc(size: int) -> None:
    assert merkle.subtree_root(COMPLETE, 0, size) == mth(LEAVES[:size]) == merkle.root_of(HASHES[:size])
    for index in range(size):
        assert merkle.inclusion_path(COMPLETE, index, size) == path(index, LEAVES[:size])
        merkle.verify_inclusion(HASHES[index], index, size, path(index, LEAVES[:size]), mth(LEAVES[:size]))
    for old in range(1, size + 1):
        proof = merkle.consistency_path(COMPLETE, old, size)
        assert proof == subproof(old, LEAVES[:size], True)
        merkle.verify_consistency(old, size, proof, mth(LEAVES[:old]), mth(LEAVES[:size]))


@pytest.mark.parametrize(("old", "new"), [(1, 2), (2, 3), (4, 5), (5, 8), (7, 40), (16, 33), (32, 40)])
def test_a_changed_hash_or_size_fails_a_consistency_proof(old: int, new: int) -> None:
    proof = merkle.consistency_path(COMPLETE, old, new)
    old_root, new_root = mth(LEAVES[:old]), mth(LEAVES[:new])
    for i in range(len(proof)):
        bad = [*proof[:i], bytes(32), *proof[i + 1 :]]
        with pytest.raises(ProofFailed):
            merkle.verify_consistency(old, new, bad, old_root, new_root)
    rewritten = mth([b"rewritten", *LEAVES[1:old]])
    with pytest.raises(ProofFailed):
        merkle.verify_consistency(old, new, proof, rewritten, new_root)
    with pytest.raises(ProofFailed):
        merkle.verify_consistency(old, new, proof, old_root, mth(LEAVES[: new - 1]))


def test_a_changed_leaf_index_or_path_fails_an_inclusion_proof() -> None:
    proof = merkle.inclusion_path(COMPLETE, 11, 29)
    root = mth(LEAVES[:29])
    with pytest.raises(ProofFailed):
        merkle.verify_inclusion(HASHES[11], 12, 29, proof, root)
    with pytest.raises(ProofFailed):
        merkle.verify_inclusion(HASHES[12], 11, 29, proof, root)
    with pytest.raises(ProofFailed):
        merkle.verify_inclusion(HASHES[11], 11, 29, proof[:-1], root)


def test_appending_in_any_batches_stores_the_same_nodes_as_building_at_once() -> None:
    stored: dict[tuple[int, int], bytes] = {(0, i): h for i, h in enumerate(HASHES)}
    size = 0
    for batch in (1, 2, 5, 3, 8, 13, 8):
        stored |= {(level, index): h for level, index, h in nodes_completed(size, HASHES[size : size + batch], lambda lv, ix: stored[(lv, ix)])}
        size += batch
    expected = {(level, index): h for level, row in enumerate(LEVELS) for index, h in enumerate(row)}
    assert stored == expected


def test_leaf_bytes_read_back_and_keep_the_stored_payload_untouched() -> None:
    payload = b'{"class_version":2,"timestamp":"2024-01-01T06:00:00Z","x":1}'
    data = leaf_bytes(7, "8eb1a1b1-d8f5-544a-b915-58cad1e03134", 3, "domain.model:Activity.Held", payload)
    leaf = parse_leaf(data)
    assert (leaf.position, leaf.version, leaf.recorded_at, leaf.payload) == (7, 3, "2024-01-01T06:00:00Z", payload)
    old_style = b'{"timestamp":"2023-05-01T00:00:00Z"}'
    assert parse_leaf(leaf_bytes(1, "a", 1, "t", old_style)).recorded_at == "2023-05-01T00:00:00Z"
    text = StoredRecord(7, "8eb1a1b1-d8f5-544a-b915-58cad1e03134", 3, "domain.model:Activity.Held", None, "payload stored as text")
    assert record_leaf(text) != data
