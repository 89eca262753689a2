"""The transparency log over the event log: a follower that catches the tree up, checkpoints and proofs."""

from __future__ import annotations

from collections.abc import Callable

from transparency import merkle
from transparency.errors import TransparencyError
from transparency.leaf import record_leaf
from transparency.note import Checkpoint
from transparency.proofs import ConsistencyProof, InclusionProof, b64
from transparency.store import TreeStore

PAGE_SIZE = 2000
DEFAULT_ORIGIN = "cluster-ledger"


def catch_up(store: TreeStore, *, page_size: int = PAGE_SIZE, progress: Callable[[int], None] = lambda n: None) -> int:
    """Add a leaf for every event stored after the tree's last leaf; returns how many were added. A store this role may only
    read (an auditor's) is left as it is: its tree is checked as far as it goes."""
    if not getattr(store, "appendable", True):
        return 0
    added = 0
    while True:
        last = store.last_leaf()
        size, after = (0, -(1 << 63)) if last is None else (last.index + 1, last.position)
        page = store.records(after, page_size)
        if not page:
            return added
        if store.append(size, [(r.position, merkle.leaf_hash(record_leaf(r))) for r in page]):
            added += len(page)
            progress(len(page))


def root(store: TreeStore, size: int) -> bytes:
    """The root hash of the stored tree's first `size` leaves."""
    try:
        return merkle.subtree_root(store.complete, 0, size)
    except KeyError as missing:
        raise TransparencyError(f"tree: the stored tree lacks node {missing.args[0]}; run `ledger verify`") from None


def size_at(store: TreeStore, position: int) -> int:
    """The tree size that ends with the event at `position`: the number of leaves up to it (positions may have gaps)."""
    if position <= 0:
        return 0
    leaf = store.leaf_at(position)
    if leaf is None:
        raise TransparencyError(f"as_of_position: {position}: no event at this position is in this ledger's tree")
    return leaf.index + 1


def checkpoint(store: TreeStore, origin: str = DEFAULT_ORIGIN) -> Checkpoint:
    """The checkpoint of the whole tree, after catching it up."""
    catch_up(store)
    size = store.size()
    return Checkpoint(origin, size, root(store, size))


def _matching(store: TreeStore, cp: Checkpoint, what: str) -> None:
    if cp.size > store.size():
        raise TransparencyError(f"{what}: its tree has {cp.size} leaves, this ledger's tree only {store.size()}")
    if root(store, cp.size) != cp.root:
        raise TransparencyError(f"{what}: its root hash is not this ledger's root at tree size {cp.size}; run `ledger verify --checkpoint`")


def prove_inclusion(store: TreeStore, position: int, cp: Checkpoint) -> InclusionProof:
    """The inclusion proof of the event at `position` in the checkpoint's tree."""
    catch_up(store)
    _matching(store, cp, "checkpoint")
    leaf = store.leaf_at(position)
    if leaf is None:
        raise TransparencyError(f"position: {position}: no event at this position is in the tree")
    if leaf.index >= cp.size:
        raise TransparencyError(f"position: {position}: the event was added after the checkpoint (leaf {leaf.index}, tree size {cp.size})")
    records = store.records(position - 1, 1)
    if not records or records[0].position != position:
        raise TransparencyError(f"position: {position}: the event is in the tree but no longer in the log; run `ledger verify`")
    data = record_leaf(records[0])
    path = merkle.inclusion_path(store.complete, leaf.index, cp.size)
    return InclusionProof(
        position=position, leaf_index=leaf.index, tree_size=cp.size, leaf=b64(data),
        leaf_hash=b64(merkle.leaf_hash(data)), path=tuple(b64(p) for p in path),
    )


def prove_consistency(store: TreeStore, old: Checkpoint, new: Checkpoint) -> ConsistencyProof:
    """The consistency proof from the old checkpoint's tree to the new one's."""
    catch_up(store)
    if not 0 < old.size <= new.size:
        raise TransparencyError(f"from: a consistency proof needs 0 < old size ({old.size}) <= new size ({new.size})")
    # The old checkpoint is not matched against the stored tree: if history was rewritten since, the proof shows it.
    _matching(store, new, "to")
    path = merkle.consistency_path(store.complete, old.size, new.size)
    return ConsistencyProof(old_size=old.size, new_size=new.size, path=tuple(b64(p) for p in path))
