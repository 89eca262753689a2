"""Full verification: every stored event re-read and re-hashed, compared with the stored tree and with a checkpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from transparency import merkle
from transparency.leaf import StoredRecord, record_leaf
from transparency.log import catch_up
from transparency.note import Checkpoint
from transparency.proofs import b64
from transparency.store import LOWEST, StoredLeaf, TreeStore

PAYLOAD_ALTERED = "payload altered"
EVENT_DELETED = "event deleted"
EVENT_INSERTED = "event inserted"
EVENTS_REORDERED = "events reordered"
TREE_ALTERED = "tree table altered"
LOG_SHORTER = "log shorter than the checkpoint"
ROOT_DIFFERS = "checkpoint root differs"
SIGNATURE_INVALID = "signature invalid"
REORDER_CANDIDATES = 64
"""How many other diverging positions (the nearest) an altered event is tried at, to tell a swap from an edit."""
REORDER_CHECKED = 256
"""How many diverging events are tried at other positions: a mass rewrite stays linear in time."""


@dataclass(frozen=True)
class Finding:
    """One way history diverges, at the first position where it does."""

    position: int | None
    kind: str
    detail: str
    count: int = 1

    def line(self) -> str:
        where = f"position {self.position}" if self.position is not None else "checkpoint"
        more = f" ({self.count} positions)" if self.count > 1 else ""
        return f"{where}: {self.kind}{more}: {self.detail}"


@dataclass
class Report:
    """What `verify` found, and how much it read."""

    events: int
    tree_size: int
    findings: list[Finding]

    @property
    def holds(self) -> bool:
        return not self.findings


def verify(store: TreeStore, checkpoint: Checkpoint | None = None, *, progress: Callable[[int], None] = lambda n: None) -> Report:
    """Recompute every leaf from the stored events and compare with the stored tree and the checkpoint."""
    found: list[Finding] = []
    try:
        catch_up(store)
    except Exception as error:  # noqa: BLE001 - whatever an edited tree table makes the follower trip on is a finding, not a crash
        found.append(Finding(None, TREE_ALTERED, f"the stored tree cannot be extended: {type(error).__name__}: {' '.join(str(error).split())[:200]}"))
    stored = store.leaves()
    by_position = {leaf.position: leaf for leaf in stored}
    last_stored = stored[-1].position if stored else LOWEST
    nodes = store.nodes()

    positions: list[int] = []
    hashes: list[bytes] = []
    diverging: dict[int, StoredRecord] = {}
    inserted: list[int] = []
    after = LOWEST
    while page := store.records(after, 5000):
        for record in page:
            h = merkle.leaf_hash(record_leaf(record))
            positions.append(record.position)
            hashes.append(h)
            leaf = by_position.get(record.position)
            if leaf is None:
                if record.position < last_stored:
                    inserted.append(record.position)
            elif leaf.hash != h:
                diverging[record.position] = record
        after = page[-1].position
        progress(len(page))

    seen = set(positions)
    deleted = [leaf.position for leaf in stored if leaf.position not in seen]
    kinds: dict[str, list[tuple[int, str]]] = {}

    def note(kind: str, position: int, detail: str) -> None:
        kinds.setdefault(kind, []).append((position, detail))

    for p in deleted:
        note(EVENT_DELETED, p, f"the tree holds leaf {by_position[p].index} for position {p}, the log has no event there")
    for p in inserted:
        note(EVENT_INSERTED, p, f"the log has an event at position {p} that the tree never held")
    others = sorted(diverging)
    for n, (p, record) in enumerate(sorted(diverging.items())):
        nearest = sorted((q for q in others[max(0, n - REORDER_CANDIDATES) : n + REORDER_CANDIDATES + 1] if q != p), key=lambda q: abs(q - p))
        moved = _recorded_at(record, nearest[:REORDER_CANDIDATES], by_position) if n < REORDER_CHECKED else None
        if moved is not None:
            note(EVENTS_REORDERED, p, f"the event stored at position {p} was recorded at position {moved}")
        elif _tree_leaf_altered(by_position[p], merkle.leaf_hash(record_leaf(record)), stored, nodes):
            note(TREE_ALTERED, p, f"the stored hash of leaf {by_position[p].index} is not the hash of the event, which its parent node still matches")
        else:
            why = f" ({record.note[:100]})" if record.note else ""
            note(PAYLOAD_ALTERED, p, f"the event's leaf hash is not the one the tree recorded{why}")
    for position, detail in _tree_findings(stored, nodes):
        note(TREE_ALTERED, position, detail)
    for kind, items in kinds.items():
        items.sort(key=lambda item: item[0])  # stable: at one position, what was noted first explains the rest
        found.append(Finding(items[0][0], kind, items[0][1], len({p for p, _ in items})))

    if checkpoint is not None:
        found += _against_checkpoint(checkpoint, positions, hashes, stored, store, any(f.kind == TREE_ALTERED for f in found))
    found.sort(key=lambda f: (f.position is None, f.position or 0))
    return Report(len(positions), len(stored), found)


def _recorded_at(record: StoredRecord, candidates: list[int], by_position: dict[int, StoredLeaf]) -> int | None:
    """The other position whose recorded leaf this event's content matches, if any: the event was moved there from."""
    for q in candidates:
        if merkle.leaf_hash(record_leaf(dataclasses.replace(record, position=q))) == by_position[q].hash:
            return q
    return None


def _tree_leaf_altered(leaf: StoredLeaf, recomputed: bytes, stored: list[StoredLeaf], nodes: dict[tuple[int, int], bytes]) -> bool:
    """Whether the recomputed leaf, not the stored one, fits the stored parent node: then the tree row was edited."""
    sibling = leaf.index ^ 1
    parent = nodes.get((1, leaf.index >> 1))
    if parent is None or sibling >= len(stored) or stored[sibling].index != sibling:
        return False
    pair = (recomputed, stored[sibling].hash) if leaf.index % 2 == 0 else (stored[sibling].hash, recomputed)
    return merkle.node_hash(*pair) == parent


def _tree_findings(stored: list[StoredLeaf], nodes: dict[tuple[int, int], bytes]) -> list[tuple[int, str]]:
    """Places where the stored tree disagrees with itself: leaves out of order, nodes missing or not the hash of their children."""
    out: list[tuple[int, str]] = []
    for i, leaf in enumerate(stored):
        if leaf.index != i or (i and leaf.position <= stored[i - 1].position):
            out.append((leaf.position, f"leaf {leaf.index} at position {leaf.position} is out of order in the tree table"))
            return out
    size = len(stored)
    level = 1
    while size >> level:
        for j in range(size >> level):
            first = stored[j << level].position
            node = nodes.get((level, j))
            left, right = _child(stored, nodes, level - 1, 2 * j), _child(stored, nodes, level - 1, 2 * j + 1)
            if node is None:
                out.append((first, f"node ({level}, {j}) is missing from the tree table"))
            elif left is not None and right is not None and merkle.node_hash(left, right) != node:
                out.append((first, f"node ({level}, {j}) is not the hash of its two children"))
        level += 1
    extra = [key for key in nodes if key[0] < 1 or key[1] >= size >> key[0]]
    if extra:
        out.append((stored[-1].position if stored else 0, f"the tree table holds {len(extra)} node(s) beyond its {size} leaves"))
    return out


def _child(stored: list[StoredLeaf], nodes: dict[tuple[int, int], bytes], level: int, index: int) -> bytes | None:
    return stored[index].hash if level == 0 else nodes.get((level, index))


def _against_checkpoint(
    cp: Checkpoint, positions: list[int], hashes: list[bytes], stored: list[StoredLeaf], store: TreeStore, tree_reported: bool
) -> list[Finding]:
    if cp.size > len(hashes):
        last = positions[-1] if positions else 0
        return [Finding(last + 1, LOG_SHORTER,
                        f"the checkpoint commits to {cp.size} events, the log holds {len(hashes)}; the first missing one follows position {last}")]
    recomputed = merkle.root_of(hashes[: cp.size])
    if recomputed != cp.root:
        return [Finding(None, ROOT_DIFFERS, f"the first {cp.size} stored events hash to root {b64(recomputed)}, the checkpoint says {b64(cp.root)}")]
    if not tree_reported and len(stored) >= cp.size:
        try:
            tree_root = merkle.subtree_root(store.complete, 0, cp.size)
        except KeyError:
            tree_root = b""
        if tree_root != cp.root:
            return [Finding(None, TREE_ALTERED, f"the events match the checkpoint but the stored tree's root at size {cp.size} does not")]
    return []
