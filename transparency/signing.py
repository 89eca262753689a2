"""Signed batches: one writer's Ed25519 note signature over the Merkle root of the events one write stores, carried in each event."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from eventsourcing.persistence import StoredEvent
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from transparency import merkle
from transparency.errors import BadSignature, ProofFailed
from transparency.note import Signer, Verifier

ENTRY_PREFIX = b"cluster-ledger/event/v1\n"
"""What every event's entry bytes begin with, so they are never taken for another kind of signed bytes."""
BATCH_ORIGIN = "cluster-ledger/batch/v1"
"""The first line of a batch's signed note."""
SIGNED_KEY = "signed"
"""The last top-level key of a signed event's stored payload: the signature block."""
_MARK = b',"signed":'
_OPENS = _MARK + b"{"


class Block(BaseModel):
    """The signature block of one stored event: who signed its batch, the batch's size, the event's index and audit path, the note signature."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    by: StrictStr
    n: Annotated[StrictInt, Field(ge=1)]
    i: Annotated[StrictInt, Field(ge=0)]
    path: tuple[StrictStr, ...]
    sig: StrictStr

    def encode(self) -> bytes:
        """The block as stored: compact JSON, keys in this order."""
        return _encode_block(json.dumps(self.by), self.n, self.i, '","'.join(self.path), self.sig)


def _encode_block(by_json: str, n: int, i: int, path: str, sig: str) -> bytes:
    # Path and signature are base64, which JSON never escapes; the name comes as JSON, the path's hashes joined by '","'.
    hashes = f'"{path}"' if path else ""
    return f'{{"by":{by_json},"n":{n},"i":{i},"path":[{hashes}],"sig":"{sig}"}}'.encode()


def _encoder(paths: Sequence[Sequence[bytes]]) -> Callable[[bytes], str]:
    """base64 of the hashes of a batch's paths, each encoded once: its inner nodes appear in many paths."""
    return {h: base64.b64encode(h).decode() for h in {h for path in paths for h in path}}.__getitem__


def event_entry(aggregate_id: str, version: int, topic: str, body: bytes) -> bytes:
    """The prefix, u16-length aggregate id (hyphenated lower-case UUID), u64 version, u16-length topic, u32-length body (big-endian)."""
    aid, name = aggregate_id.encode(), topic.encode("utf-8", "surrogatepass")
    return b"".join((
        ENTRY_PREFIX,
        struct.pack(">H", len(aid)), aid,
        struct.pack(">Q", version),
        struct.pack(">H", len(name)), name,
        struct.pack(">I", len(body)), body,
    ))


def batch_text(size: int, root: bytes) -> str:
    """The text a writer signs for a batch of `size` events whose tree has this root."""
    return f"{BATCH_ORIGIN}\n{size}\n{base64.b64encode(root).decode()}\n"


def note_signature(text: str, signer: Signer) -> str:
    """base64(4-byte key hash ‖ Ed25519 signature of the text): the signature of a signed note's signature line."""
    return base64.b64encode(struct.pack(">I", signer.verifier.hash) + signer.sign(text.encode())).decode()


def batch_tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The RFC 9162 root of a batch's leaf hashes and every leaf's inclusion path, with no hash computed twice.

    The same as `merkle.subtree_root` and `merkle.inclusion_path` of each index (a unit test proves it), in one pass: at each
    level the last node, complete or not, is kept apart, so a path is read off the levels instead of recomputed.
    """
    n = len(leaves)
    levels = merkle.build_levels(leaves)
    # edge[l]: the hash of the last node at level l, over leaves (last << l) .. n-1 (a complete node or a promoted one).
    edge = [leaves[-1]]
    last = n - 1
    for level in range(1, max(n - 1, 0).bit_length() + 1):
        below = levels[level - 1]
        edge.append(merkle.node_hash(below[last - 1], edge[-1]) if last & 1 else edge[-1])
        last >>= 1
    paths = []
    for index in range(n):
        path, k, last = [], index, n - 1
        for level in range(len(edge) - 1):
            if k & 1:
                path.append(levels[level][k - 1])
            elif k < last:
                path.append(edge[level] if k + 1 == last else levels[level][k + 1])
            k, last = k >> 1, last >> 1
        paths.append(path)
    return edge[-1], paths


def batch_blocks(by: str, sig: str, entry_hashes: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
    """The root over a batch's entry hashes and each event's signature block, byte for byte as `sign_batch` stores it.

    The same paths as `batch_tree` (a unit test proves it), built top down as bytes: the two children of a node share
    the path above it, so each path is one sibling's base64 before its parent's, with no per-event walk up the levels.
    """
    root, _, blocks = _signed_blocks(by, entry_hashes, lambda root: sig)
    return root, blocks


def _signed_blocks(by: str, entry_hashes: Sequence[bytes], sign: Callable[[bytes], str]) -> tuple[bytes, str, list[bytes]]:
    """`batch_blocks`, the signature made by `sign(root)` once the root is known: the root, the signature, the blocks."""
    n, sha256 = len(entry_hashes), hashlib.sha256
    levels = [list(entry_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([sha256(b"\x01" + left + right).digest() for left, right in zip(below[0::2], below[1::2])])
    edge = [entry_hashes[-1]]
    last = n - 1
    for level in range(1, max(n - 1, 0).bit_length() + 1):
        edge.append(sha256(b"\x01" + levels[level - 1][last - 1] + edge[-1]).digest() if last & 1 else edge[-1])
        last >>= 1
    encode = binascii.b2a_base64
    above = [b""]
    for level in range(len(edge) - 2, -1, -1):
        row, last, here = levels[level], (n - 1) >> level, []
        for k in range(last + 1):
            up = above[k >> 1]
            if k & 1:
                sibling = row[k - 1]
            elif k < last:
                sibling = edge[level] if k + 1 == last else row[k + 1]
            else:
                here.append(up)  # the last node, promoted: no sibling at this level
                continue
            here.append(encode(sibling, newline=False) + b'","' + up if up else encode(sibling, newline=False))
        above = here
    sig = sign(edge[-1])
    head, tail = b'{"by":%b,"n":%d,"i":' % (json.dumps(by).encode(), n), b'],"sig":"%b"}' % sig.encode()
    return edge[-1], sig, [head + b"%d" % i + (b',"path":["' + path + b'"' if path else b',"path":[') + tail for i, path in enumerate(above)]


def _entry_of(stored: StoredEvent, body: bytes) -> bytes:
    return event_entry(str(stored.originator_id), stored.originator_version, stored.topic, body)


def sign_batch(stored_events: Sequence[StoredEvent], signer: Signer) -> list[StoredEvent]:
    """The same events, in the same order, each state carrying the block of one signature over all of them.

    The blocks are built as bytes by `batch_blocks`' walk; the same bytes as `sign_batch_by_paths` (a unit test proves it).
    """
    if not stored_events:
        return []
    for i, stored in enumerate(stored_events):
        if not stored.state.endswith(b"}") or stored.state == b"{}":
            raise BadSignature(f"event {i + 1} of the batch: a stored state to sign must be a JSON object with fields")
    leaf = merkle.leaf_hash
    n = len(stored_events)
    _, _, blocks = _signed_blocks(signer.name, [leaf(_entry_of(s, s.state)) for s in stored_events], lambda root: note_signature(batch_text(n, root), signer))
    return [
        StoredEvent(stored.originator_id, stored.originator_version, stored.topic, stored.state[:-1] + _MARK + block + b"}")
        for stored, block in zip(stored_events, blocks, strict=True)
    ]


def sign_batch_by_paths(stored_events: Sequence[StoredEvent], signer: Signer) -> list[StoredEvent]:
    """`sign_batch` the clear way: every path from `batch_tree`, every block through `_encode_block`."""
    if not stored_events:
        return []
    root, paths = batch_tree([merkle.leaf_hash(_entry_of(s, s.state)) for s in stored_events])
    n = len(paths)
    sig = note_signature(batch_text(n, root), signer)
    encoded, by_json = _encoder(paths), json.dumps(signer.name)
    signed = []
    for i, stored in enumerate(stored_events):
        if not stored.state.endswith(b"}") or stored.state == b"{}":
            raise BadSignature(f"event {i + 1} of the batch: a stored state to sign must be a JSON object with fields")
        state = stored.state[:-1] + _MARK + _encode_block(by_json, n, i, '","'.join(map(encoded, paths[i])), sig) + b"}"
        signed.append(StoredEvent(stored.originator_id, stored.originator_version, stored.topic, state))
    return signed


def split_signed(state: bytes) -> tuple[bytes, Block | None]:
    """The payload as it was before signing, and its signature block (None if unsigned); BadSignature if the block is malformed."""
    body, block, raw = _split(state)
    if block is not None and block.encode() != raw:
        raise BadSignature("the signature block is not in its canonical form")
    return body, block


def _split(state: bytes) -> tuple[bytes, Block | None, bytes]:
    """`split_signed` and the block's stored bytes, their canonical form not yet checked."""
    at = state.rfind(_OPENS)
    if at < 0:
        return state, None, b""
    raw = state[at + len(_MARK) : -1]
    if not state.endswith(b"}"):
        raise BadSignature("the signature block is not the last field of the stored payload")
    try:
        block = Block.model_validate_json(raw)
    except ValueError:
        raise BadSignature("the signature block is malformed") from None
    return state[:at] + b"}", block, raw


def recorded_by(state: bytes) -> str:
    """The name of the writer whose key signed a stored event; empty if it is unsigned or its block is malformed."""
    try:
        block = split_signed(state)[1]
    except BadSignature:
        return ""
    return block.by if block is not None else ""


@dataclass(frozen=True)
class SignedEvent:
    """One stored event as a signature checker reads it: its columns, its payload without the block, and the block."""

    aggregate_id: str
    version: int
    topic: str
    body: bytes
    block: Block
    stored_block: bytes = b""
    """The block as stored, when it was read from a stored state: its canonical form is checked with the signature."""

    @classmethod
    def of(cls, aggregate_id: str, version: int, topic: str, state: bytes) -> SignedEvent | None:
        """The signed event of a stored row; None if it is unsigned; BadSignature if its block is malformed."""
        body, block, raw = _split(state)
        return None if block is None else cls(aggregate_id, version, topic, body, block, raw)

    def entry(self) -> bytes:
        return event_entry(self.aggregate_id, self.version, self.topic, self.body)


class SignatureChecker:
    """Checks signed events against writers' verifier keys, remembering each (key, root, signature) that verified."""

    def __init__(self, remember: int = 4096) -> None:
        self._verified: dict[tuple[str, bytes, str], None] = {}
        self._remember = remember
        """How many verified signatures are kept (the oldest go first): the events of one batch arrive together."""

    def _signature_holds(self, verifier: Verifier, size: int, root: bytes, sig: str) -> bool:
        remembered = (verifier.encode(), root, sig)
        if remembered in self._verified:
            return True
        try:
            raw = base64.b64decode(sig, validate=True)
        except binascii.Error:
            return False
        if len(raw) != 68 or struct.unpack(">I", raw[:4])[0] != verifier.hash:
            return False
        if not verifier.verify(batch_text(size, root).encode(), raw[4:]):
            return False
        if len(self._verified) >= self._remember:
            del self._verified[next(iter(self._verified))]
        self._verified[remembered] = None
        return True

    def holds(self, verifier: Verifier, size: int, root: bytes, sig: str) -> bool:
        """Whether `sig` is the verifier's note signature of a batch of `size` events with this root."""
        return self._signature_holds(verifier, size, root, sig)

    def check_event(self, event: SignedEvent, verifier: Verifier) -> str | None:
        """Why one event's signature does not hold on its own (its path to the batch root, then the note signature); None if it holds."""
        block = event.block
        if event.stored_block and event.stored_block != block.encode():
            return "the signature block is not in its canonical form"
        if block.by != verifier.name:
            return f"signed by {block.by!r}, checked against key {verifier.name!r}"
        try:
            path = [base64.b64decode(h, validate=True) for h in block.path]
            root = merkle.root_from_inclusion(merkle.leaf_hash(event.entry()), block.i, block.n, path)
        except (binascii.Error, ProofFailed) as error:
            return f"the audit path does not fit its batch ({error})" if isinstance(error, ProofFailed) else "the audit path is not base64"
        if not self._signature_holds(verifier, block.n, root, block.sig):
            return f"the signature by {verifier.name} does not cover this event at this aggregate, version and type"
        return None

    def check_batch(self, events: Sequence[SignedEvent], verifier: Verifier) -> list[tuple[int, str]]:
        """(index, why) for each of the consecutive events of one batch its signature does not cover; empty if all hold.

        A whole batch, in order, is checked with one signature verification; anything else falls back to each event on its own.
        """
        first = events[0].block
        whole = len(events) == first.n and all(e.block.i == i and e.block.sig == first.sig and e.block.by == first.by for i, e in enumerate(events))
        if whole and first.by == verifier.name:
            root, paths = batch_tree([merkle.leaf_hash(e.entry()) for e in events])
            # Each stored block, byte for byte, as the signer writes it with the recomputed path: path and canonical form at once.
            by_json, n, sig = json.dumps(first.by), first.n, first.sig
            encoded = _encoder(paths)
            blocks_match = all(
                e.stored_block == _encode_block(by_json, n, i, '","'.join(map(encoded, path)), sig)
                if e.stored_block else tuple(map(encoded, path)) == e.block.path
                for i, (path, e) in enumerate(zip(paths, events, strict=True))
            )
            if blocks_match and self._signature_holds(verifier, len(events), root, first.sig):
                return []
        found = []
        for index, event in enumerate(events):
            why = self.check_event(event, verifier)
            if why is not None:
                found.append((index, why))
        return found
