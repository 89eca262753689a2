"""Signed batches: the entry bytes, the batch tree and the note signature agree with an independent computation, and break when moved."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import struct
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import StoredEvent

from transparency.errors import BadSignature
from transparency.note import Signer
from transparency import merkle
from transparency.signing import (
    Block, SignatureChecker, SignedEvent, batch_blocks, batch_tree, event_entry, recorded_by, sign_batch, sign_batch_by_paths, split_signed,
)

SEED = bytes(range(32))
AGGREGATE = UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
TOPIC = "domain.model:Publication.Updated"


def _stored(version: int, body: bytes) -> StoredEvent:
    return StoredEvent(originator_id=AGGREGATE, originator_version=version, topic=TOPIC, state=body)


BATCH = [_stored(v, b'{"class_version":2,"note":"n%d"}' % v) for v in (1, 2, 3)]


def _entry(version: int, body: bytes) -> bytes:
    aid = b"0f8fad5b-d9cb-469f-a165-70867728950e"
    return (b"cluster-ledger/event/v1\n" + struct.pack(">H", 36) + aid + struct.pack(">Q", version)
            + struct.pack(">H", len(TOPIC)) + TOPIC.encode() + struct.pack(">I", len(body)) + body)


def _signed_events(stored: list[StoredEvent]) -> list[SignedEvent]:
    return [e for e in (SignedEvent.of(str(s.originator_id), s.originator_version, s.topic, s.state) for s in stored) if e is not None]


def test_a_batch_of_three_matches_the_independently_computed_vector() -> None:
    h = [hashlib.sha256(b"\x00" + _entry(s.originator_version, s.state)).digest() for s in BATCH]
    left = hashlib.sha256(b"\x01" + h[0] + h[1]).digest()
    root = hashlib.sha256(b"\x01" + left + h[2]).digest()
    text = f"cluster-ledger/batch/v1\n3\n{base64.b64encode(root).decode()}\n".encode()
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    public = key.public_key().public_bytes_raw()
    key_hash = hashlib.sha256(b"rita\n\x01" + public).digest()[:4]
    sig = base64.b64encode(key_hash + key.sign(text)).decode()

    signed = sign_batch(BATCH, Signer("rita", SEED))

    expected_paths = [[h[1], h[2]], [h[0], h[2]], [left]]
    for i, (before, after) in enumerate(zip(BATCH, signed, strict=True)):
        block = {"by": "rita", "n": 3, "i": i, "path": [base64.b64encode(p).decode() for p in expected_paths[i]], "sig": sig}
        assert after.state == before.state[:-1] + b',"signed":' + json.dumps(block, separators=(",", ":")).encode() + b"}"
        assert (after.originator_id, after.originator_version, after.topic) == (before.originator_id, before.originator_version, before.topic)
    assert json.loads(signed[0].state)["note"] == "n1"


def test_entry_bytes_are_as_specified() -> None:
    assert event_entry(str(AGGREGATE), 7, TOPIC, b"{}") == _entry(7, b"{}")


def test_split_gives_back_the_payload_before_signing_and_the_writer() -> None:
    signed = sign_batch(BATCH, Signer("rita", SEED))
    body, block = split_signed(signed[1].state)
    assert body == BATCH[1].state and block is not None and (block.by, block.n, block.i) == ("rita", 3, 1)
    assert split_signed(BATCH[0].state) == (BATCH[0].state, None)
    assert recorded_by(signed[2].state) == "rita" and recorded_by(BATCH[2].state) == ""


@pytest.mark.parametrize("change", [
    lambda s: s.replace(b'"n":3', b'"n":3,"x":1'),  # an extra field
    lambda s: s.replace(b'"i":0', b'"i":"0"'),  # a number as text
    lambda s: s.replace(b'"by":"rita"', b'"by": "rita"'),  # not the canonical form
    lambda s: s[:-1] + b' }',  # the block is not last
])
def test_a_malformed_block_is_refused(change: object) -> None:
    state = sign_batch(BATCH, Signer("rita", SEED))[0].state
    with pytest.raises(BadSignature):
        split_signed(change(state))  # type: ignore[operator]


def test_each_event_and_the_whole_batch_verify() -> None:
    signer = Signer("rita", SEED)
    events = _signed_events(sign_batch(BATCH, signer))
    checker = SignatureChecker()
    assert checker.check_batch(events, signer.verifier) == []
    assert [checker.check_event(e, signer.verifier) for e in events] == [None, None, None]


def test_an_event_moved_to_another_version_or_aggregate_or_edited_breaks_its_signature() -> None:
    signer = Signer("rita", SEED)
    events = _signed_events(sign_batch(BATCH, signer))
    checker = SignatureChecker()
    moved = dataclasses.replace(events[1], version=4)
    elsewhere = dataclasses.replace(events[1], aggregate_id="7c9e6679-7425-40de-944b-e07fc1f90ae7")
    edited = dataclasses.replace(events[1], body=events[1].body.replace(b"n2", b"n9"))
    for bad in (moved, elsewhere, edited):
        assert checker.check_event(bad, signer.verifier) is not None
        assert [i for i, _ in checker.check_batch([events[0], bad, events[2]], signer.verifier)] == [1]
    assert checker.check_event(events[0], Signer.generate("rita").verifier) is not None  # another key of the same name


def test_a_batch_with_an_event_missing_still_checks_the_others_one_by_one() -> None:
    signer = Signer("rita", SEED)
    events = _signed_events(sign_batch(BATCH, signer))
    assert SignatureChecker().check_batch([events[0], events[2]], signer.verifier) == []


def test_the_one_pass_batch_tree_equals_rfc_9162_root_and_paths() -> None:
    for n in (*range(1, 40), 64, 100, 2000):
        leaves = [hashlib.sha256(b"%d" % k).digest() for k in range(n)]
        complete = merkle.levels_complete(merkle.build_levels(leaves))
        root, paths = batch_tree(leaves)
        assert root == merkle.subtree_root(complete, 0, n), n
        assert paths == [merkle.inclusion_path(complete, i, n) for i in range(n)], n


def test_the_blocks_of_a_batch_are_the_ones_its_signer_stores() -> None:
    signer = Signer("writer.example", SEED)
    for n in (*range(1, 20), 64, 100, 257):
        stored = [_stored(v, b'{"class_version":2,"note":"n%d"}' % v) for v in range(1, n + 1)]
        signed = sign_batch_by_paths(stored, signer)
        blocks = [s.state[s.state.rfind(b',"signed":{') + 10 : -1] for s in signed]
        sig = Block.model_validate_json(blocks[0]).sig
        root, expected = batch_blocks(signer.name, sig, [merkle.leaf_hash(_entry(s.originator_version, s.state)) for s in stored])
        assert expected == blocks, n
        assert root == batch_tree([merkle.leaf_hash(_entry(s.originator_version, s.state)) for s in stored])[0]


def test_a_batch_signs_to_the_bytes_of_the_clear_signing() -> None:
    signer = Signer("writer.example", SEED)
    for n in (*range(1, 20), 31, 32, 33, 100, 257, 2000):
        stored = [_stored(v, b'{"class_version":2,"note":"n%d \\u00e9"}' % v) for v in range(1, n + 1)]
        assert sign_batch(stored, signer) == sign_batch_by_paths(stored, signer), n


def test_the_block_encoding_is_compact_json_in_key_order() -> None:
    block = Block(by='wr"iter', n=2, i=1, path=("YQ==",), sig="c2ln")
    assert block.encode() == json.dumps({"by": 'wr"iter', "n": 2, "i": 1, "path": ["YQ=="], "sig": "c2ln"}, separators=(",", ":")).encode()
    assert Block(by="w", n=1, i=0, path=(), sig="c2ln").encode() == b'{"by":"w","n":1,"i":0,"path":[],"sig":"c2ln"}'


@pytest.mark.parametrize("block", [
    b'{"by":"w","n":1,"i":0,"path":[],"sig":"c2ln"}', b'{"by":"w","n":true,"i":0,"path":[],"sig":"c2ln"}',
    b'{"by":"w","n":0,"i":0,"path":[],"sig":"c2ln"}', b'{"by":"w","n":1,"i":-1,"path":[],"sig":"c2ln"}',
    b'{"by":"w","n":1,"i":0,"path":[1],"sig":"c2ln"}', b'{"by":"w","n":1,"i":0,"path":[],"sig":"c2ln","x":1}',
    b'{"by":"w","n":1,"i":0,"path":[]}', b'{"by":"w","n":1.0,"i":0,"path":[],"sig":"c2ln"}', b'{"by":null,"n":1,"i":0,"path":[],"sig":"c2ln"}',
    b'{"by":"w","n":1,"i":0,"path":"YQ==","sig":"c2ln"}',
])
def test_a_block_is_read_as_strictly_as_its_pydantic_model_reads_it(block: bytes) -> None:
    try:
        Block.model_validate_json(block)
        valid = True
    except ValueError:
        valid = False
    try:
        split_signed(b'{"a":1,"signed":' + block + b"}")
        read = True
    except BadSignature:
        read = False
    assert read == valid
