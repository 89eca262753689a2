"""RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs, over any source of complete-subtree hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from transparency.errors import ProofFailed

Hash = bytes
SubtreeHash = Callable[[int, int], Hash]
"""The hash of the complete subtree at (level, index): leaves index·2^level up to (index+1)·2^level."""


def leaf_hash(leaf: bytes) -> Hash:
    """SHA-256(0x00 ‖ leaf)."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: Hash, right: Hash) -> Hash:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(complete: SubtreeHash, start: int, end: int) -> Hash:
    """MTH(D[start:end]) where start is a multiple of the largest power of two not above end - start, as every RFC 9162 split is."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return complete(level, start >> level)
    k = _split(n)
    return node_hash(complete((k.bit_length() - 1), start // k), subtree_root(complete, start + k, end))


def inclusion_path(complete: SubtreeHash, index: int, size: int) -> list[Hash]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[Hash] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_root(complete, start + k, end))
            end = start + k
        else:
            path.append(subtree_root(complete, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(complete: SubtreeHash, old: int, new: int) -> list[Hash]:
    """PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    return _subproof(complete, old, 0, new, True)


def _subproof(complete: SubtreeHash, m: int, start: int, end: int, whole: bool) -> list[Hash]:
    n = end - start
    if m == n:
        return [] if whole else [subtree_root(complete, start, end)]
    k = _split(n)
    if m <= k:
        return _subproof(complete, m, start, start + k, whole) + [subtree_root(complete, start + k, end)]
    return _subproof(complete, m - k, start + k, end, False) + [subtree_root(complete, start, start + k)]


def root_of(leaves: Sequence[Hash]) -> Hash:
    """The root of a tree of these leaf hashes, computed in memory."""
    return subtree_root(levels_complete(build_levels(leaves)), 0, len(leaves))


def build_levels(leaves: Sequence[Hash]) -> list[list[Hash]]:
    """Every complete-subtree hash: level 0 the leaves, level l the nodes over 2^l leaves."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


def levels_complete(levels: Sequence[Sequence[Hash]]) -> SubtreeHash:
    """A SubtreeHash reading in-memory levels."""
    return lambda level, index: levels[level][index]


def verify_inclusion(leaf: Hash, index: int, size: int, path: Sequence[Hash], root: Hash) -> None:
    """RFC 9162 §2.1.3.2; raises ProofFailed unless the path leads from the leaf to the root."""
    if root_from_inclusion(leaf, index, size, path) != root:
        raise ProofFailed("the inclusion path does not lead to the checkpoint's root hash")


def root_from_inclusion(leaf: Hash, index: int, size: int, path: Sequence[Hash]) -> Hash:
    """The root hash an inclusion path leads to from a leaf (RFC 9162 §2.1.3.2); raises ProofFailed if the path has the wrong length."""
    if not 0 <= index < size:
        raise ProofFailed(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofFailed("the inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofFailed("the inclusion path is shorter than the tree is deep")
    return r


def verify_consistency(old_size: int, new_size: int, path: Sequence[Hash], old_root: Hash, new_root: Hash) -> None:
    """RFC 9162 §2.1.4.2; raises ProofFailed unless the old tree is a prefix of the new one."""
    if not 0 < old_size <= new_size:
        raise ProofFailed(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == new_size:
        if path:
            raise ProofFailed("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofFailed("the two checkpoints have the same size but different root hashes")
        return
    if not path:
        raise ProofFailed("the consistency path is empty")
    hashes = list(path)
    if old_size & (old_size - 1) == 0:
        hashes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if sn == 0:
            raise ProofFailed("the consistency path is longer than needed")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofFailed("the consistency path is shorter than needed")
    if fr != old_root:
        raise ProofFailed("the consistency path does not lead to the old checkpoint's root hash")
    if sr != new_root:
        raise ProofFailed("the consistency path does not lead to the new checkpoint's root hash")
