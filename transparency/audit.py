"""Full verification: every stored event re-read and re-hashed, compared with the stored tree and with a checkpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import json

from domain.catalogue import topic_of
from domain.writer import Writer
from transparency import merkle, sweep
from transparency.errors import BadKey, BadSignature
from transparency.leaf import StoredRecord, moment, record_leaf, recorded_time
from transparency.log import catch_up
from transparency.note import Checkpoint, Verifier, parse_verifier
from transparency.proofs import b64
from transparency.signing import SignatureChecker, SignedEvent
from transparency.store import LOWEST, StoredLeaf, TreeStore

PAYLOAD_ALTERED = "payload altered"
ID_ALTERED = "id altered"
RECORDED_TIME_DISORDER = "recorded time out of order"
EVENT_DELETED = "event deleted"
EVENT_INSERTED = "event inserted"
EVENTS_REORDERED = "events reordered"
TREE_ALTERED = "tree table altered"
LOG_SHORTER = "log shorter than the checkpoint"
ROOT_DIFFERS = "checkpoint root differs"
SIGNATURE_INVALID = "signature invalid"
UNSIGNED = "unsigned after signing began"
KEY_UNKNOWN = "key unknown"
KEY_REVOKED = "key revoked"
AUTHORIZED = topic_of(Writer.Authorized)
REVOKED = topic_of(Writer.Revoked)
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
    predating: int = 0
    """How many events, from the first position on, were stored before signed writes began."""
    predating_upto: int = 0
    """The position of the last of them."""

    @property
    def holds(self) -> bool:
        return not self.findings


PAGE = 5000
"""Events, leaves and nodes are read this many at a time: verification holds a few pages, never the whole tree."""
KEPT_POSITIONS = 100_000
"""How many distinct positions of one kind are remembered to count them: past this, each further finding counts as a new position."""


@dataclass
class _Kind:
    first: tuple[int, int]
    best: tuple[int, int, int]
    detail: str
    count: int = 0
    seen: set[int] = dataclasses.field(default_factory=set)


class _Tally:
    """The findings of each kind as they are noted: the first (lowest position) with its detail, and how many positions."""

    # Phases, in the order a reader of the whole history would note them: deleted, inserted, diverging events by position, the tree.
    DELETED, INSERTED, DIVERGING, TREE = range(4)

    def __init__(self) -> None:
        self.kinds: dict[str, _Kind] = {}
        self.noted = 0

    def note(self, kind: str, phase: int, position: int, detail: str) -> None:
        self.noted += 1
        order = position if phase == self.DIVERGING else self.noted
        key = (position, phase, order)
        entry = self.kinds.get(kind)
        if entry is None:
            entry = self.kinds[kind] = _Kind((phase, order), key, detail)
        else:
            entry.first = min(entry.first, (phase, order))
            if key < entry.best:  # at one position, what was noted first explains the rest
                entry.best, entry.detail = key, detail
        if position not in entry.seen:
            entry.count += 1
            if len(entry.seen) < KEPT_POSITIONS:
                entry.seen.add(position)

    def findings(self) -> list[Finding]:
        ordered = sorted(self.kinds.items(), key=lambda item: item[1].first)
        return [Finding(entry.best[0], kind, entry.detail, entry.count) for kind, entry in ordered]


class _RootOfPrefix:
    """RFC 9162 MTH of the first `size` hashes added, on a stack of at most log2(size) complete subtrees."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.added = 0
        self.stack: list[tuple[int, bytes]] = []

    def add(self, h: bytes) -> None:
        if self.added >= self.size:
            return
        self.added += 1
        height = 0
        while self.stack and self.stack[-1][0] == height:
            h = merkle.node_hash(self.stack.pop()[1], h)
            height += 1
        self.stack.append((height, h))

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        h = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            h = merkle.node_hash(left, h)
        return h


@dataclass
class _Writer:
    verifier: Verifier | None
    revoked_at: int | None = None


class _Signatures:
    """Every event's signature, batch by batch, and its writer's authorization at that position, noted in a tally as they are read.

    Events stored before the first writer was authorized or the first signed event (whichever is first) predate signed writes;
    from there on every event must be signed. A batch is a run of consecutive events carrying the same signature.
    """

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.checker = SignatureChecker(remember=16)  # verify reads each batch once: memory stays flat however long the log
        self.writers: dict[str, _Writer] = {}
        self.began: int | None = None
        self.predating = self.predating_upto = 0
        self.batch: list[tuple[int, SignedEvent]] = []
        self.explained: set[int] = set()
        """Positions of the open batch where the tree already tells what happened: no signature finding repeats it."""

    def add(self, record: StoredRecord, explained: bool = False) -> None:
        """Read the next stored event; `explained` if the tree check already found it altered, moved or inserted."""
        p, state = record.position, record.state
        if explained:
            self.explained.add(p)
        try:
            signed = SignedEvent.of(record.aggregate_id, record.version, record.topic, state) if state is not None else None
        except BadSignature as error:
            self.close()
            self._begin(p)
            self._note(SIGNATURE_INVALID, p, str(error))
            return
        if signed is None:
            self.close()
            if self.began is None:
                if record.topic == AUTHORIZED:
                    self._begin(p)  # the root writer: the trust anchor, recorded unsigned
                    self._writer_event(p, record.topic, state or b"")
                else:
                    self.predating += 1
                    self.predating_upto = p
                return
            self._note(UNSIGNED, p, f"the event carries no signature; signed writes began at position {self.began}")
            return
        self._begin(p)
        if self.batch:
            first = self.batch[0][1].block
            if signed.block.sig != first.sig or signed.block.by != first.by or len(self.batch) >= first.n:
                self.close()
        self.batch.append((p, signed))
        if len(self.batch) >= signed.block.n:
            self.close()

    def _note(self, kind: str, position: int, detail: str) -> None:
        if position not in self.explained:
            self.tally.note(kind, _Tally.DIVERGING, position, detail)
        elif not self.batch:  # an event checked on its own: nothing later asks about it again
            self.explained.discard(position)

    def _begin(self, position: int) -> None:
        if self.began is None:
            self.began = position

    def close(self) -> None:
        """Check the batch read so far: its writer's authorization at its first position, then its signature."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        start, first = batch[0]
        by = first.block.by
        if not self.writers and first.topic == AUTHORIZED:
            # The first signed write on a ledger without writers authorizes its own key, as its first event.
            self._writer_event(start, first.topic, first.body)
        writer = self.writers.get(by)
        bad: set[int] = set()
        if writer is None or writer.verifier is None:
            bad = {p for p, _ in batch}
            for p in sorted(bad):
                self._note(KEY_UNKNOWN, p, f"signed by {by!r}, a key no Writer.Authorized before it names")
        elif writer.revoked_at is not None and writer.revoked_at < start:
            bad = {p for p, _ in batch}
            for p in sorted(bad):
                self._note(KEY_REVOKED, p, f"signed by {by!r}, revoked at position {writer.revoked_at}")
        else:
            for index, why in self.checker.check_batch([event for _, event in batch], writer.verifier):
                bad.add(batch[index][0])
                self._note(SIGNATURE_INVALID, batch[index][0], why)
        for p, event in batch:  # only what a valid signature covers changes who may write
            if event.topic in (AUTHORIZED, REVOKED) and p not in bad and p not in self.explained:
                self._writer_event(p, event.topic, event.body)
        self.explained = {q for q in self.explained if q > batch[-1][0]}

    def _writer_event(self, position: int, topic: str, body: bytes) -> None:
        try:
            fields = json.loads(body)
            name = fields["name"]
        except (ValueError, KeyError, TypeError):
            return  # an unreadable payload: its leaf, not its signature, tells what happened to it
        if topic == REVOKED:
            if name in self.writers and self.writers[name].revoked_at is None:
                self.writers[name].revoked_at = position
            return
        try:
            verifier: Verifier | None = parse_verifier(fields.get("verifier", ""))
        except (BadKey, AttributeError):
            verifier = None
        self.writers.setdefault(name, _Writer(verifier))


def verify(store: TreeStore, checkpoint: Checkpoint | None = None, *, progress: Callable[[int], None] = lambda n: None,
           fast: bool = True) -> Report:
    """Recompute every leaf from the stored events and compare with the stored tree and the checkpoint, a page at a time.

    The fast path (`sweep`) reads a history that holds everywhere; where anything looks wrong, the careful path below reads
    it all again and tells what, so the findings are always the careful path's.
    """
    found: list[Finding] = []
    try:
        catch_up(store)
    except Exception as error:  # noqa: BLE001 - whatever an edited tree table makes the follower trip on is a finding, not a crash
        found.append(Finding(None, TREE_ALTERED, f"the stored tree cannot be extended: {type(error).__name__}: {' '.join(str(error).split())[:200]}"))
    if fast and not found:
        told = _Told(progress)
        if (held := sweep.confirm(store, checkpoint, page=PAGE, progress=told)) is not None:
            return Report(held.events, held.tree_size, [], held.predating, held.predating_upto)
        progress = told.again
    tally = _Tally()
    signatures = _Signatures(tally)
    last = store.last_leaf()
    last_stored = last.position if last is not None else LOWEST

    # The tree's leaves by index: any whose event is gone, and whether they are in order.
    rows, previous, disorder = 0, LOWEST, None
    after = LOWEST
    while leaves := store.leaves_after(after, PAGE):
        present = store.positions_present([leaf.position for leaf in leaves])
        for leaf in leaves:
            if leaf.position not in present:
                tally.note(EVENT_DELETED, _Tally.DELETED, leaf.position,
                           f"the tree holds leaf {leaf.index} for position {leaf.position}, the log has no event there")
            if disorder is None and (leaf.index != rows or (rows and leaf.position <= previous)):
                disorder = (leaf.position, f"leaf {leaf.index} at position {leaf.position} is out of order in the tree table")
            previous = leaf.position
            rows += 1
        after = leaves[-1].index

    # The events by position, each beside the leaf the tree holds for it.
    events, last_position = 0, 0
    prefix = _RootOfPrefix(checkpoint.size if checkpoint is not None else 0)
    kept: list[tuple[StoredRecord, StoredLeaf]] = []
    keep = REORDER_CHECKED + REORDER_CANDIDATES + 1
    after = LOWEST
    latest: tuple[datetime, str, int] | None = None  # the latest recorded time so far, as stored, and its position
    while page := store.records(after, PAGE):
        by_position = {leaf.position: leaf for leaf in store.leaves_between(page[0].position, page[-1].position)}
        for record in page:
            recorded = recorded_time(record.state) if record.state is not None else ""
            h = merkle.leaf_hash(record_leaf(record, recorded))
            if when := moment(recorded):
                if latest is not None and when < latest[0]:
                    tally.note(RECORDED_TIME_DISORDER, _Tally.DIVERGING, record.position,
                               f"the event was recorded {recorded}, before position {latest[2]}'s {latest[1]}")
                elif latest is None or when > latest[0]:
                    latest = (when, recorded, record.position)
            prefix.add(h)
            events += 1
            leaf = by_position.get(record.position)
            if not record.id_as_written:  # the application no longer finds the event by its aggregate's id, whatever the tree holds
                tally.note(ID_ALTERED, _Tally.DIVERGING, record.position, f"the event's {record.note[:160]}, not as the store writes ids")
            explained = (leaf.hash != h) if leaf is not None else record.position < last_stored
            signatures.add(record, explained=explained or not record.id_as_written)
            if leaf is None:
                if record.position < last_stored:
                    tally.note(EVENT_INSERTED, _Tally.INSERTED, record.position,
                               f"the log has an event at position {record.position} that the tree never held")
            elif leaf.hash != h and record.id_as_written:
                if len(kept) < keep:  # the first diverging events are tried at each other's positions once all are known
                    kept.append((record, leaf))
                else:
                    _note_altered(tally, store, record, leaf, h, rows)
        after = last_position = page[-1].position
        progress(len(page))

    signatures.close()
    hashes = {leaf.position: leaf.hash for _, leaf in kept}
    others = [record.position for record, _ in kept]
    for n, (record, leaf) in enumerate(kept):
        p = record.position
        nearest = sorted((q for q in others[max(0, n - REORDER_CANDIDATES) : n + REORDER_CANDIDATES + 1] if q != p), key=lambda q: abs(q - p))
        moved = _recorded_at(record, nearest[:REORDER_CANDIDATES], hashes) if n < REORDER_CHECKED else None
        if moved is not None:
            tally.note(EVENTS_REORDERED, _Tally.DIVERGING, p, f"the event stored at position {p} was recorded at position {moved}")
        else:
            _note_altered(tally, store, record, leaf, merkle.leaf_hash(record_leaf(record)), rows)

    if disorder is not None:
        tally.note(TREE_ALTERED, _Tally.TREE, *disorder)
    else:
        _tree_findings(tally, store, rows, previous if rows else 0)
    found += tally.findings()

    if checkpoint is not None:
        tree_reported = any(f.kind == TREE_ALTERED for f in found)
        found += _against_checkpoint(checkpoint, events, last_position, prefix.root(), rows, store, tree_reported)
    found.sort(key=lambda f: (f.position is None, f.position or 0))
    return Report(events, rows, found, signatures.predating, signatures.predating_upto)


class _Told:
    """Progress as the fast path tells it; `again` then passes on, of the careful path's progress, only what goes beyond it."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self.progress = progress
        self.told = self.read = 0

    def __call__(self, n: int) -> None:
        self.told += n
        self.progress(n)

    def again(self, n: int) -> None:
        before, self.read = self.read, self.read + n
        if self.read > self.told:
            self.progress(self.read - max(before, self.told))


def _note_altered(tally: _Tally, store: TreeStore, record: StoredRecord, leaf: StoredLeaf, recomputed: bytes, rows: int) -> None:
    """An event whose leaf hash is not the tree's: the tree row was edited if its parent node still fits the event, else the event was."""
    p = record.position
    if _tree_leaf_altered(store, leaf, recomputed, rows):
        tally.note(TREE_ALTERED, _Tally.DIVERGING, p, f"the stored hash of leaf {leaf.index} is not the hash of the event, which its parent node still matches")
    else:
        why = f" ({record.note[:100]})" if record.note else ""
        tally.note(PAYLOAD_ALTERED, _Tally.DIVERGING, p, f"the event's leaf hash is not the one the tree recorded{why}")


def _recorded_at(record: StoredRecord, candidates: list[int], hashes: dict[int, bytes]) -> int | None:
    """The other position whose recorded leaf this event's content matches, if any: the event was moved there from."""
    for q in candidates:
        if merkle.leaf_hash(record_leaf(dataclasses.replace(record, position=q))) == hashes[q]:
            return q
    return None


def _tree_leaf_altered(store: TreeStore, leaf: StoredLeaf, recomputed: bytes, rows: int) -> bool:
    """Whether the recomputed leaf, not the stored one, fits the stored parent node: then the tree row was edited."""
    sibling = leaf.index ^ 1
    if not 0 <= sibling < rows:
        return False
    try:
        parent = store.complete(1, leaf.index >> 1)
        other = store.complete(0, sibling)
    except KeyError:
        return False
    pair = (recomputed, other) if leaf.index % 2 == 0 else (other, recomputed)
    return merkle.node_hash(*pair) == parent


def _tree_findings(tally: _Tally, store: TreeStore, size: int, last_position: int) -> None:
    """Where the stored tree, its leaves in order, disagrees with itself: nodes missing or not the hash of their children."""

    def position(level: int, j: int) -> int:
        return store.leaves_after((j << level) - 1, 1)[0].position

    level = 1
    while size >> level:
        width = size >> level
        for first in range(0, width, PAGE):
            limit = min(PAGE, width - first)
            nodes, below = store.nodes_at(level, first, limit), store.nodes_at(level - 1, 2 * first, 2 * limit)
            for j in range(first, first + limit):
                node = nodes.get(j)
                left, right = below.get(2 * j), below.get(2 * j + 1)
                if node is None:
                    tally.note(TREE_ALTERED, _Tally.TREE, position(level, j), f"node ({level}, {j}) is missing from the tree table")
                elif left is not None and right is not None and merkle.node_hash(left, right) != node:
                    tally.note(TREE_ALTERED, _Tally.TREE, position(level, j), f"node ({level}, {j}) is not the hash of its two children")
        level += 1
    extra = store.nodes_beyond(size)
    if extra:
        tally.note(TREE_ALTERED, _Tally.TREE, last_position, f"the tree table holds {extra} node(s) beyond its {size} leaves")


def _against_checkpoint(
    cp: Checkpoint, events: int, last_position: int, recomputed: bytes, rows: int, store: TreeStore, tree_reported: bool
) -> list[Finding]:
    if cp.size > events:
        return [Finding(last_position + 1, LOG_SHORTER,
                        f"the checkpoint commits to {cp.size} events, the log holds {events}; the first missing one follows position {last_position}")]
    if recomputed != cp.root:
        return [Finding(None, ROOT_DIFFERS, f"the first {cp.size} stored events hash to root {b64(recomputed)}, the checkpoint says {b64(cp.root)}")]
    if not tree_reported and rows >= cp.size:
        try:
            tree_root = merkle.subtree_root(store.complete, 0, cp.size)
        except KeyError:
            tree_root = b""
        if tree_root != cp.root:
            return [Finding(None, TREE_ALTERED, f"the events match the checkpoint but the stored tree's root at size {cp.size} does not")]
    return []
