"""The fast path of `verify`: a history that holds everywhere, confirmed with bulk reads and tight loops, on both cores.

It answers only "everything holds" (with the counts a report gives) or "something looks wrong". For the latter, `audit`
reads the history again on its careful path and tells what: findings never come from here, so they stay the careful path's.
Every check below is at least as strict as the careful one it stands for; anything unexpected counts as looking wrong.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import signal
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from multiprocessing.connection import Connection
from typing import Any

from domain.catalogue import topic_of
from domain.writer import Writer
from transparency import merkle
from transparency.errors import BadKey
from transparency.leaf import FORMAT, moment, recorded_time
from transparency.note import Checkpoint, Verifier, parse_verifier
from transparency.signing import ENTRY_PREFIX, SignatureChecker, batch_blocks
from transparency.store import LOWEST, TreeStore

AUTHORIZED = topic_of(Writer.Authorized)
REVOKED = topic_of(Writer.Revoked)
SEGMENT_PAGES = 4
"""Positions a process reads as one piece of work, in pages of `audit.PAGE`; tree nodes go by as many leaves, rounded down to a power of two."""
PROCESSES = 2
"""At most this many processes read segments at once (never more than the cores this process may use)."""
TAIL = 256
"""Rows read at a time past a segment's end, to finish the batch open there."""
ROWS = 500
"""Rows read at a time within a segment: each check runs in a tight loop over them, while their payloads stay in the processor's cache."""

_OPENS = b',"signed":{'
_LEAF_HEAD = struct.Struct(">BBQH36sQ")
"""The leaf hash's 0x00 and the leaf's format, position, id length, id (36 characters, hyphenated) and version."""
_ENTRY_START = b"\x00" + ENTRY_PREFIX
"""The leaf hash's 0x00 before an event's entry bytes."""
_ENTRY_HEAD = struct.Struct(">H36sQ")
_U16, _U32 = struct.Struct(">H").pack, struct.Struct(">I").pack
_BATCH_START = re.compile(rb'\{"by":"(?:[^"\\]|\\.)*","n":[0-9]+,"i":0,')
_FIRST_BLOCK = re.compile(rb'\{"by":("[^"\\]*"),"n":([1-9][0-9]*),"i":0,"path":\[[^\]]*\],"sig":"([^"\\]*)"\}')
"""The block of a batch's first event, with a name that needs no escaping: the others are compared with what the signer writes."""
_HEAD = re.compile(rb'\{"class_version":[0-9]+,"timestamp":"([^"\\]{0,65535})"')
"""The start of a payload as the store's encoder writes it: its class version, then its recorded time, unescaped."""


@dataclass
class Held:
    """What a history that holds everywhere gives a report."""

    events: int
    tree_size: int
    predating: int
    predating_upto: int


@dataclass
class _Segment:
    """What one process read of a range of positions: whether all of it holds, and what joins it to its neighbours."""

    holds: bool = True
    first: int | None = None
    """The first position read: the first event after the range's start that opens a batch (or is unsigned)."""
    skipped: int = 0
    """Events before it that continue a batch opened before the range: the previous segment reads them."""
    next: int | None = None
    """The position of the event after the last one read; None at the end of the log."""
    events: int = 0
    first_index: int = 0
    unsigned: int = 0
    """Unsigned events before the first signed one or the root writer."""
    unsigned_upto: int = 0
    began: int | None = None
    """The position of the first signed event or root writer."""
    root: bool = False
    """Whether that is an unsigned Writer.Authorized."""
    earliest: datetime | None = None
    latest: datetime | None = None


@dataclass
class _Key:
    verifier: Verifier | None
    revoked_at: int | None = None


class _Writers:
    """Who may sign a batch: the Writer.Authorized and Writer.Revoked events stored before it, applied in position order."""

    def __init__(self, changes: Sequence[tuple[int, str, bytes]]) -> None:
        self.changes = changes
        self.applied = 0
        self.keys: dict[str, _Key] = {}

    def before(self, position: int) -> None:
        while self.applied < len(self.changes) and self.changes[self.applied][0] < position:
            self.apply(*self.changes[self.applied])
            self.applied += 1

    def apply(self, position: int, topic: str, body: bytes) -> None:
        try:
            fields = json.loads(body)
            name = fields["name"]
        except (ValueError, KeyError, TypeError):
            return
        if topic == REVOKED:
            if name in self.keys and self.keys[name].revoked_at is None:
                self.keys[name].revoked_at = position
            return
        try:
            verifier: Verifier | None = parse_verifier(fields.get("verifier", ""))
        except (BadKey, AttributeError):
            verifier = None
        self.keys.setdefault(name, _Key(verifier))

    def holds(self, checker: SignatureChecker, start: int, by: str, sig: str, root: bytes, size: int, authorizes: bytes | None) -> bool:
        """Whether the batch opening at `start` is signed by a key authorized before it and not revoked, and its signature holds."""
        self.before(start)
        if not self.keys and authorizes is not None:
            self.apply(start, AUTHORIZED, authorizes)  # the first signed write on a ledger without writers authorizes its own key
        key = self.keys.get(by)
        if key is None or key.verifier is None or key.verifier.name != by:
            return False
        if key.revoked_at is not None and key.revoked_at < start:
            return False
        return checker.holds(key.verifier, size, root, sig)


def writer_changes(store: TreeStore) -> list[tuple[int, str, bytes]]:
    """(position, topic, payload without its signature block) of the writer events that may change who signs: signed ones, and unsigned authorizations."""
    changes = []
    for position, topic, state in store.writer_events((AUTHORIZED, REVOKED)):
        at = state.rfind(_OPENS)
        if at >= 0:
            changes.append((position, topic, state[:at] + b"}"))
        elif topic == AUTHORIZED:
            changes.append((position, topic, state))
    return changes


def _topic(topics: dict[bytes, tuple[bytes, bytes, str]], topic: bytes) -> tuple[bytes, bytes, str]:
    """A topic's part of the leaf bytes, its part of the entry bytes, and its name, remembered; ValueError if it is not UTF-8 or too long."""
    name = topic.decode("utf-8")
    if len(topic) > 0xFFFF:
        raise ValueError("topic too long for its length field")
    topics[topic] = kinds = (_U16(len(topic)) + topic, _U16(len(topic)) + topic, name)
    return kinds


def _recorded(state: bytes, at: int) -> bytes:
    """The recorded time's UTF-8 bytes of a payload whose signature block starts at `at` (its length if unsigned), read from
    where the store's encoder puts it when that is certain; else as `recorded_time` reads it.

    After it and before `at` there must be no escape and no other "timestamp": the block after it, once found canonical, holds
    neither. (A signed body is JSON as its writer's encoder wrote it: were it not, its leaf, made by `recorded_time` when the
    tree grew, would not match this reading.)
    """
    head = _HEAD.match(state)
    if head is not None and (end := head.end()) <= at and state.find(b"\\", end, at) < 0 and state.find(b"timestamp", end, at) < 0:
        return head.group(1)
    return recorded_time(state).encode("utf-8", "surrogatepass")[:0xFFFF]


_HEX_DIGITS = b"0123456789abcdef"
_UUID_PARTS = struct.Struct("8s4s4s4s12s").unpack
"""The five groups of a UUID's 32 hex digits, as it prints them hyphenated."""
IDS_KEPT = 65_536
"""How many hyphenated ids are remembered (an aggregate's events come close together); then the memory starts again."""


def _hyphenated(ids: dict[bytes, bytes], aid: bytes) -> bytes:
    """The id as the leaf holds it: 32 lower-case hex digits hyphenated as a UUID prints them (ValueError otherwise); 36 are checked already."""
    if len(aid) == 36:
        return aid
    if len(aid) != 32 or aid.translate(None, _HEX_DIGITS):
        raise ValueError("the id is not as the store writes it")
    if len(ids) >= IDS_KEPT:
        ids.clear()
    ids[aid] = done = b"-".join(_UUID_PARTS(aid))
    return done


def segment(store: TreeStore, changes: Sequence[tuple[int, str, bytes]], page: int, after: int, upto: int, first: bool) -> _Segment:
    """Read the events from the first batch opening after position `after` to the last batch opening at or before `upto`, each against its leaf."""
    try:
        return _segment(store, changes, page, after, upto, first)
    except Exception:  # noqa: BLE001 - whatever an edited row makes this path trip on, the careful path names
        return _Segment(holds=False)


def _segment(store: TreeStore, changes: Sequence[tuple[int, str, bytes]], page: int, after: int, upto: int, first: bool) -> _Segment:
    seg, failed = _Segment(), _Segment(holds=False)
    writers, checker = _Writers(changes), SignatureChecker(remember=16)
    topics: dict[bytes, tuple[bytes, bytes, str]] = {}
    ids: dict[bytes, bytes] = {}
    sha256, leaf_head, entry_head, u16, u32, recorded_of = hashlib.sha256, _LEAF_HEAD.pack, _ENTRY_HEAD.pack, _U16, _U32, _recorded
    skipping, started, expect, previous, began = not first, False, 0, LOWEST, None
    last_recorded: bytes | None = None
    hashes: list[bytes] = []
    blocks: list[bytes | None] = []
    size, start, by, sig, authorizes = 0, 0, "", "", None
    cursor, step = after, min(page, ROWS)
    while rows := store.sweep_rows(cursor, min(step, upto - cursor) if cursor < upto else TAIL):
        cursor = rows[-1][0]
        columns = tuple(zip(*rows))
        if any(None in column for column in columns):
            return failed
        positions, aids, versions, names, states, indices, leaves = columns
        # The page at once, in tight loops over its rows: those read past the segment's end are checked as well, as a history that holds passes.
        if (started and indices[0] != expect) or positions[0] <= previous or indices != tuple(range(indices[0], indices[0] + len(rows))):
            return failed
        previous = positions[-1]
        ats = [state.rfind(_OPENS) for state in states]
        if skipping:  # events that continue a batch opened before the segment: the previous segment reads them
            i = 0
            while i < len(rows) and ats[i] >= 0 and not _BATCH_START.match(states[i], ats[i] + 10):
                i += 1
            seg.skipped += i
            if i == len(rows):
                continue
            skipping = False
            positions, aids, versions, names, states = positions[i:], aids[i:], versions[i:], names[i:], states[i:]
            indices, leaves, ats = indices[i:], leaves[i:], ats[i:]
        aids = [ids.get(aid) or _hyphenated(ids, aid) for aid in aids]
        kinds = [topics.get(topic) or _topic(topics, topic) for topic in names]
        times = [recorded_of(state, at if at >= 0 else len(state)) for state, at in zip(states, ats)]
        if [sha256(b"".join((leaf_head(0, FORMAT, p, 36, a, v), k[0], u16(len(t)), t, u32(len(state)), state))).digest()
                for p, a, v, k, t, state in zip(positions, aids, versions, kinds, times, states)] != list(leaves):
            return failed
        entries = [sha256(b"".join((_ENTRY_START, entry_head(36, a, v), k[1], u32(at + 1), state[:at], b"}"))).digest()
                   if at >= 0 else b"" for a, v, k, at, state in zip(aids, versions, kinds, ats, states)]
        # A signed event's block, if it is the payload's last field; None (which no block matches) otherwise.
        stored = [state[at + 10 : -1] if at >= 0 and state[-1] == 0x7D else None for at, state in zip(ats, states)]
        i, n, ended = 0, len(positions), False
        while i < n:
            if not hashes:  # between batches: the segment may end here, or an unsigned event come
                if positions[i] > upto:
                    seg.next, ended = positions[i], True
                    break
                if not started:
                    started, seg.first, seg.first_index = True, positions[i], indices[i]
                at = ats[i]
                if at < 0:
                    if began is not None:
                        return failed  # unsigned after signed writes began
                    if kinds[i][2] == AUTHORIZED:
                        began, seg.root = positions[i], True
                    else:
                        seg.unsigned, seg.unsigned_upto = seg.unsigned + 1, positions[i]
                    i += 1
                    continue
                opening = _FIRST_BLOCK.fullmatch(states[i], at + 10, len(states[i]) - 1)
                if opening is None:
                    return failed
                by, size, sig = json.loads(opening.group(1)), int(opening.group(2)), opening.group(3).decode("ascii")
                start, authorizes = positions[i], states[i][:at] + b"}" if kinds[i][2] == AUTHORIZED else None
                if began is None:
                    began = positions[i]
            # The batch's events in this page at once: an unsigned one among them has no block, so the blocks do not match.
            take = min(size - len(hashes), n - i)
            hashes += entries[i : i + take]
            blocks += stored[i : i + take]
            i += take
            if len(hashes) == size:
                root, expected = batch_blocks(by, sig, hashes)
                if expected != blocks or not writers.holds(checker, start, by, sig, root, size, authorizes):
                    return failed
                hashes, blocks = [], []
        for recorded, _ in groupby(times[:i]):  # recorded times in order: one moment for each run of events recorded at once
            if recorded != last_recorded:
                last_recorded = recorded
                when = moment(recorded.decode("utf-8"))
                if when is not None:
                    if seg.latest is not None and when < seg.latest:
                        return failed
                    if seg.latest is None or when > seg.latest:
                        seg.latest = when
                    if seg.earliest is None:
                        seg.earliest = when
        expect = indices[i - 1] + 1 if i else indices[0]
        if ended:
            return _ended(seg, expect, began)
    return failed if hashes else _ended(seg, expect, began)


def _ended(seg: _Segment, expect: int, began: int | None) -> _Segment:
    """The segment as read: its events are its leaves' indices, which run on without a gap."""
    seg.events = expect - seg.first_index if seg.first is not None else 0
    seg.began = began
    return seg


def _tree_chunk(store: TreeStore, first: int, count: int, width: int, page: int) -> tuple[bool, bytes | None]:
    """Whether every stored node over leaves `first` to `first + count` is the hash of its stored children; the chunk's root if complete."""
    sha256 = hashlib.sha256
    current = list(map(store.nodes_at(0, first, count).get, range(first, first + count)))
    if None in current:
        return False, None
    level = 1
    while len(current) >= 2:
        made = [sha256(b"\x01" + left + right).digest() for left, right in zip(current[0::2], current[1::2])]
        base = first >> level
        for offset in range(0, len(made), page):
            limit = min(page, len(made) - offset)
            stored = store.nodes_at(level, base + offset, limit)
            if list(map(stored.get, range(base + offset, base + offset + limit))) != made[offset : offset + limit]:
                return False, None
        current, level = made, level + 1
    return True, current[0] if count == width else None


def _run(store: TreeStore, changes: Sequence[tuple[int, str, bytes]], page: int, task: tuple[Any, ...]) -> Any:
    if task[0] == "events":
        return segment(store, changes, page, *task[1:])
    try:
        return _tree_chunk(store, *task[1:], page)
    except Exception:  # noqa: BLE001 - an edited tree table: the careful path names what
        return False, None


def _work(answers: Connection, store: TreeStore, changes: Sequence[tuple[int, str, bytes]], page: int, tasks: Sequence[tuple[Any, ...]]) -> None:
    """A worker process: its own connection, its share of the tasks in order, each result sent back as it is done."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the parent's to handle: it ends the workers
    try:
        own = store.reopened()
        for task in tasks:
            answers.send(_run(own, changes, page, task))
        own.close()
    except Exception:  # noqa: BLE001 - no connection, or a result that cannot be sent: the parent sees the pipe end, and reads carefully
        pass
    answers.close()


def _forked(store: TreeStore, changes: Sequence[tuple[int, str, bytes]], page: int, tasks: list[tuple[Any, ...]], workers: int) -> Iterator[Any]:
    """The results of the tasks in order, worked on by `workers` forked processes (task k by process k mod workers).

    Each process has a pipe of its own and nothing else shared: stopping early ends them, and one that dies ends the results.
    """
    context = multiprocessing.get_context("fork")  # started at once, without importing anything again
    pipes, processes = [], []
    try:
        for w in range(workers):
            receiving, sending = context.Pipe(duplex=False)
            process = context.Process(target=_work, args=(sending, store, changes, page, tasks[w::workers]), daemon=True)
            process.start()
            sending.close()
            pipes.append(receiving)
            processes.append(process)
        for k in range(len(tasks)):
            try:
                yield pipes[k % workers].recv()
            except EOFError:
                yield _Segment(holds=False)  # a worker that died: the careful path reads it all
                return
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for pipe in pipes:
            pipe.close()


def confirm(store: TreeStore, checkpoint: Checkpoint | None, *, page: int, progress: Callable[[int], None] = lambda n: None,
            processes: int = PROCESSES) -> Held | None:
    """The counts of a report without findings if the whole history holds (and matches the checkpoint); None if anything looks wrong."""
    span = page * SEGMENT_PAGES
    last, rows, changes = store.last_position(), store.leaf_count(), writer_changes(store)
    bounds = [LOWEST, *range(span, last, span), max(last, span)]
    tasks: list[tuple[Any, ...]] = [("events", bounds[k], bounds[k + 1], k == 0) for k in range(len(bounds) - 1)]
    width = 1 << (span.bit_length() - 1)
    tasks += [("tree", first, min(width, rows - first), width) for first in range(0, rows, width)]
    workers = min(processes, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if len(bounds) > 2 and workers > 1:
        results = _forked(store, changes, page, tasks, workers)
        try:
            return _merge(store, checkpoint, results, rows, width, progress)
        finally:
            results.close()
    return _merge(store, checkpoint, (_run(store, changes, page, task) for task in tasks), rows, width, progress)


def _merge(store: TreeStore, checkpoint: Checkpoint | None, results: Any, rows: int, width: int, progress: Callable[[int], None]) -> Held | None:
    """Join the segments in position order, then the tree's chunks; None at the first thing that does not hold."""
    events, expect, began, predating, predating_upto = 0, None, None, 0, 0
    latest: datetime | None = None
    tops: list[bytes] = []
    for result in results:
        if not isinstance(result, _Segment):
            holds, top = result
            if not holds:
                return None
            if top is not None:
                tops.append(top)
            continue
        if not result.holds:
            return None
        if result.first is None:
            if result.skipped and not events:
                return None
            continue
        if (result.skipped if not events else result.first != expect) or result.first_index != events:
            return None
        events, expect = events + result.events, result.next
        if result.earliest is not None:
            if latest is not None and result.earliest < latest:
                return None
            latest = result.latest if latest is None or (result.latest is not None and result.latest > latest) else latest
        if began is None:
            predating += result.unsigned
            predating_upto = result.unsigned_upto if result.unsigned else predating_upto
            began = result.began
        elif result.unsigned or result.root:
            return None
        progress(result.events)
    if expect is not None or rows != events or store.nodes_beyond(rows):
        return None
    if not _upper_levels(store, tops, width):
        return None
    if checkpoint is not None:
        if checkpoint.size > events:
            return None
        try:
            if merkle.subtree_root(store.complete, 0, checkpoint.size) != checkpoint.root:
                return None
        except KeyError:
            return None
    return Held(events, rows, predating, predating_upto)


def _upper_levels(store: TreeStore, tops: list[bytes], width: int) -> bool:
    """Whether the stored nodes above the chunks are the hashes of their children, the roots of the complete chunks at the bottom."""
    level, current = width.bit_length() - 1, tops
    while len(current) >= 2:
        level += 1
        made = [merkle.node_hash(current[2 * k], current[2 * k + 1]) for k in range(len(current) // 2)]
        stored = store.nodes_at(level, 0, len(made))
        if any(stored.get(k) != h for k, h in enumerate(made)):
            return False
        current = made
    return True
