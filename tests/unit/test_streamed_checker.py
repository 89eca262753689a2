"""The streamed signature checker gives the clear checker's answer for every event, genuine or altered, however much of a batch it has proven."""

from __future__ import annotations

import base64
import dataclasses
import random
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from transparency.note import Signer
from transparency.signing import Block, SignatureChecker, SignedEvent, sign_batch
from transparency.streamed import StreamChecker

SEED = bytes(range(32))
AGGREGATE = UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
TOPIC = "domain.model:Publication.Updated"


def _batch(size: int, signer: Signer) -> list[SignedEvent]:
    stored = [StoredEvent(AGGREGATE, v, TOPIC, b'{"class_version":2,"note":"n%d"}' % v) for v in range(1, size + 1)]
    events = [SignedEvent.of(str(s.originator_id), s.originator_version, s.topic, s.state) for s in sign_batch(stored, signer)]
    return [e for e in events if e is not None]


def _with_block(event: SignedEvent, **change: object) -> SignedEvent:
    block = Block.model_validate({**event.block.model_dump(), **change})
    return dataclasses.replace(event, block=block, stored_block=block.encode())


def _altered(event: SignedEvent, other: SignedEvent) -> list[SignedEvent]:
    """The ways a message's event or block can be changed in transit, each of which the clear checker refuses."""
    path = list(event.block.path)
    flipped = base64.b64encode(bytes([base64.b64decode(path[-1])[0] ^ 1]) + base64.b64decode(path[-1])[1:]).decode()
    return [
        dataclasses.replace(event, version=event.version + 1),
        dataclasses.replace(event, body=event.body.replace(b"note", b"nota")),
        _with_block(event, path=tuple(path[:-1] + [flipped])),  # the top of the path, where a proven node is met
        _with_block(event, path=tuple([flipped] + path[1:])),  # the bottom of the path
        _with_block(event, path=tuple(path[:-1])),  # one sibling short
        _with_block(event, path=tuple(path + path[-1:])),  # one sibling too many
        _with_block(event, path=tuple(other.block.path)),  # another event's path
        _with_block(event, i=other.block.i),  # another event's place
        _with_block(event, path=tuple(path[:-1] + ["not base64!"])),
        dataclasses.replace(event, stored_block=event.stored_block.replace(b'"n":', b'"n": ')),  # not the canonical form
    ]


@pytest.mark.parametrize("size", [1, 2, 7, 13, 64, 100])
def test_every_event_and_every_alteration_gets_the_clear_checkers_answer(size: int) -> None:
    signer = Signer("rita", SEED)
    events = _batch(size, signer)
    clear, streamed = SignatureChecker(), StreamChecker()
    order = list(range(size))
    random.Random(size).shuffle(order)
    for step, i in enumerate(order):
        event = events[i]
        assert streamed.check_event(event, signer.verifier) is None
        for bad in _altered(event, events[order[step - 1]]) if size > 1 else []:
            answer = clear.check_event(bad, signer.verifier)
            assert answer is not None
            assert streamed.check_event(bad, signer.verifier) == answer
    # Every event proven: each is met at a proven node, and an alteration still is not.
    assert all(streamed.check_event(e, signer.verifier) is None for e in events)
    assert all(streamed.check_event(e, Signer.generate("rita").verifier) == clear.check_event(e, Signer.generate("rita").verifier) for e in events[:3])


def test_an_event_of_a_proven_batch_is_checked_without_walking_its_whole_path(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = Signer("rita", SEED)
    events = _batch(13, signer)
    streamed = StreamChecker()
    assert streamed.check_event(events[0], signer.verifier) is None
    clear_checks: list[SignedEvent] = []
    original = SignatureChecker.check_event
    monkeypatch.setattr(SignatureChecker, "check_event", lambda self, e, v: clear_checks.append(e) or original(self, e, v))
    assert all(streamed.check_event(e, signer.verifier) is None for e in events[1:])
    # Only an event whose walk meets no proven node goes the clear way: in a batch of 13, a few where the tree splits.
    assert len(clear_checks) <= 3, len(clear_checks)
    moved = [dataclasses.replace(e, aggregate_id="7c9e6679-7425-40de-944b-e07fc1f90ae7") for e in events]
    assert all(streamed.check_event(e, signer.verifier) == original(SignatureChecker(), e, signer.verifier) is not None for e in moved)
