"""A verified mirror of a tiled log (the updating part of C2SP tlog-mirror): every entry checked against the signed tree before it is stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transparency import merkle
from transparency.errors import BadNote, ProofFailed, TransparencyError
from transparency.leaf import StoredRecord, parse_leaf, record_leaf
from transparency.note import Checkpoint, Verifier, read_checkpoint
from transparency.proofs import b64
from transparency.store import MirroredEvent, TreeStore
from transparency.tiles import HEIGHT, WIDTH, split_bundle, split_hashes, tile_path

Fetch = Callable[[str], bytes]
"""Reads one resource under the source's prefix (`checkpoint`, `tile/...`); raises TransparencyError if it cannot."""
KEPT_TILES = 64
"""Hash tiles kept between look-ups: the few upper ones every bundle's check needs."""


class SourceDiverged(TransparencyError):
    """The source's signed tree does not extend the tree already mirrored: it forked or rewrote its history."""


class NotThisMirror(TransparencyError):
    """The target ledger is not a mirror of this source (it has events of its own, or mirrors another log)."""


@dataclass
class Mirrored:
    """What one run did: the signed checkpoint it reached, and how many entries it fetched."""

    checkpoint: Checkpoint
    fetched: int
    was: int


class _SourceTree:
    """Complete-subtree hashes of the source's tree of `size` leaves, read from its hash tiles (trusted only once a root matches)."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        self.fetch = fetch
        self.size = size
        self.tiles: dict[tuple[int, int], list[bytes]] = {}

    def tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self.tiles:
            width = min(WIDTH, (self.size >> (HEIGHT * level)) - index * WIDTH)
            if len(self.tiles) >= KEPT_TILES:
                self.tiles.clear()
            self.tiles[key] = split_hashes(self.fetch(tile_path(level, index, width)), width)
        return self.tiles[key]

    def complete(self, level: int, index: int) -> bytes:
        tile_level, below = divmod(level, HEIGHT)
        first = index << below
        hashes = self.tile(tile_level, first // WIDTH)[first % WIDTH : first % WIDTH + (1 << below)]
        if len(hashes) != 1 << below:
            raise TransparencyError(f"source: tile {tile_path(tile_level, first // WIDTH)} is shorter than its checkpoint needs")
        return merkle.root_of(hashes)


def fetch_checkpoint(fetch: Fetch, verifier: Verifier) -> tuple[Checkpoint, str]:
    """The source's checkpoint, its signature checked with `verifier`, and its note as served."""
    try:
        note = fetch("checkpoint").decode("utf-8")
    except UnicodeDecodeError:
        raise BadNote("source: its checkpoint is not UTF-8 text") from None
    try:
        return read_checkpoint(note, verifier), note
    except BadNote as error:
        raise BadNote(f"source: checkpoint: {error}") from None


def update(store: TreeStore, fetch: Fetch, verifier: Verifier, prefix: str, *, now: str,
           progress: Callable[[int], None] = lambda n: None, started: Callable[[int, int], None] = lambda was, size: None) -> Mirrored:
    """Bring the mirror in `store` up to the source's signed checkpoint, one verified entry bundle per transaction."""
    checkpoint, note = fetch_checkpoint(fetch, verifier)
    source = store.mirror_source()
    if source is None and (store.size() or store.last_position()):
        raise NotThisMirror("db: this ledger holds events of its own; a mirror starts in an empty database")
    if source is not None and source[0] != prefix:
        raise NotThisMirror(f"db: this ledger is a mirror of {source[0]}, not of {prefix}")
    if source is not None and source[1] != verifier.encode():
        raise NotThisMirror(f"verifier-key: this ledger mirrors {source[0]} checked with key {source[1]}, not {verifier.encode()}")
    size = store.size()
    tree = _SourceTree(fetch, checkpoint.size)
    check_consistent(store, size, checkpoint, tree)
    if source is None:
        store.mark_mirror(prefix, verifier.encode(), now)
    started(size, checkpoint.size)
    was = size
    while size < checkpoint.size:
        added = _mirror_bundle(store, fetch, size, checkpoint, tree)
        size += added
        progress(added)
    latest = store.published(1)
    if not latest or latest[0].note != note:
        # Served again by this mirror, so that it can be mirrored and checked in turn.
        store.publish(checkpoint.size, note, now)
    return Mirrored(checkpoint, size - was, was)


def check_consistent(store: TreeStore, size: int, checkpoint: Checkpoint, tree: _SourceTree) -> None:
    """Raise SourceDiverged unless the signed tree extends the `size` leaves already mirrored (checked from the source's tiles)."""
    if size == 0:
        return
    mirrored = merkle.subtree_root(store.complete, 0, size)
    holds = False
    if checkpoint.size == size:
        holds = mirrored == checkpoint.root
    elif checkpoint.size > size:
        try:
            path = merkle.consistency_path(tree.complete, size, checkpoint.size)
            merkle.verify_consistency(size, checkpoint.size, path, mirrored, checkpoint.root)
            holds = True
        except ProofFailed:
            holds = False
    if not holds:
        raise SourceDiverged(
            f"source: its signed tree (size {checkpoint.size}, root {b64(checkpoint.root)}) does not extend the mirrored tree "
            f"(size {size}, root {b64(mirrored)}): the source forked or rewrote its history; nothing was written"
        )


def _mirror_bundle(store: TreeStore, fetch: Fetch, size: int, checkpoint: Checkpoint, tree: _SourceTree) -> int:
    """Fetch the entry bundle holding leaf `size`, check its new entries against the signed root, store them; how many were new."""
    index = size // WIDTH
    width = min(WIDTH, checkpoint.size - index * WIDTH)
    path = tile_path(None, index, width)
    entries = split_bundle(fetch(path))
    if len(entries) != width:
        raise TransparencyError(f"source: {path} holds {len(entries)} entries, not {width}")
    new = entries[size - index * WIDTH :]
    hashes = [merkle.leaf_hash(entry) for entry in new]
    if _root_with(store, size, hashes, tree, checkpoint.size) != checkpoint.root:
        raise TransparencyError(f"source: the entries of {path} do not hash to the signed root; nothing of them was written")
    last = store.last_position()
    events = []
    for k, entry in enumerate(new):
        event = _event(entry, size + k)
        if event.position <= last:
            raise TransparencyError(f"source: leaf {size + k} is the event at position {event.position}, not after position {last}")
        events.append(event)
        last = event.position
    if not store.append_mirrored(size, events, hashes):
        raise TransparencyError("db: another run is writing this mirror; run the command again once it has ended")
    return len(new)


def _root_with(store: TreeStore, size: int, hashes: list[bytes], tree: _SourceTree, tree_size: int) -> bytes:
    """The root of the signed tree, taking the first `size` leaves from the mirror, the next from `hashes`, the rest from the source's tiles."""
    end = size + len(hashes)
    made: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        first, last = index << level, (index + 1) << level
        if last <= size:
            return store.complete(level, index)
        if first >= end:
            return tree.complete(level, index)
        if level == 0:
            return hashes[first - size]
        if (level, index) not in made:
            made[(level, index)] = merkle.node_hash(node(level - 1, 2 * index), node(level - 1, 2 * index + 1))
        return made[(level, index)]

    return merkle.subtree_root(node, 0, tree_size)


def _event(entry: bytes, index: int) -> MirroredEvent:
    """The event an entry holds; its leaf bytes must be exactly what the mirror will recompute from the stored row."""
    try:
        leaf = parse_leaf(entry)
    except (ValueError, UnicodeDecodeError) as error:
        raise TransparencyError(f"source: leaf {index} is not an event's leaf bytes ({error})") from None
    event = MirroredEvent(leaf.position, leaf.aggregate_id, leaf.version, leaf.topic, leaf.payload)
    stored = StoredRecord(event.position, event.aggregate_id, event.version, event.topic, event.payload)
    if record_leaf(stored) != entry:
        raise TransparencyError(f"source: leaf {index} (position {leaf.position}) is not in the form a stored event has")
    return event
