"""Signed batches cross languages: keys made by Go's sumdb/note sign the ledger's stored events here and verify in Go,
Go refuses a tampered body, a wrong index, a swapped path element and another key, and a signature made by Go verifies here."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

import bootstrap
from tests.builders import matchmaking_with_two_orgs
from tests.integration.test_transparency_proofs import tlogcheck  # noqa: F401 (the Go checker, built once)
from transparency.note import Signer, parse_signer, parse_verifier
from transparency.signing import SIGNED_KEY, SignatureChecker, SignedEvent, batch_text, sign_batch, split_signed


@dataclass(frozen=True)
class GoKey:
    signer: str
    verifier: str


def genkey(binary: Path, name: str) -> GoKey:
    done = subprocess.run([str(binary), "genkey", name], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    signer, verifier = done.stdout.splitlines()
    return GoKey(signer, verifier)


def stored_events() -> list[StoredEvent]:
    """The stored events of five real commands, as the ledger's mapper wrote them, before they were signed (the test writer's
    authorization, which went first, and the signature blocks left out)."""
    app = bootstrap.build_ledger("memory://")
    try:
        commands, *_ = matchmaking_with_two_orgs()
        app.execute(commands, actor="interop-writer")
        return [StoredEvent(n.originator_id, n.originator_version, n.topic, split_signed(n.state)[0])
                for n in app.recorder.select_notifications(start=1, limit=100) if "Writer." not in n.topic]
    finally:
        app.close()


def go_verify(binary: Path, verifier: str, events: list[StoredEvent]) -> tuple[int, str]:
    lines = "".join(json.dumps({"aggregate_id": str(e.originator_id), "version": e.originator_version, "topic": e.topic,
                                "state_base64": base64.b64encode(e.state).decode()}) + "\n" for e in events)
    done = subprocess.run([str(binary), "verify-batch", verifier], input=lines, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def with_block(event: StoredEvent, change: Callable[[dict[str, object]], None], body: bytes | None = None) -> StoredEvent:
    """The event with its block (and optionally its body) changed, the block still in its canonical form."""
    old_body, block = split_signed(event.state)
    assert block is not None
    fields = json.loads(block.encode())
    change(fields)
    raw = json.dumps(fields, separators=(",", ":")).encode()
    state = (body or old_body)[:-1] + f',"{SIGNED_KEY}":'.encode() + raw + b"}"
    return StoredEvent(event.originator_id, event.originator_version, event.topic, state)


@pytest.fixture(scope="module")
def go_key(tlogcheck: Path) -> GoKey:  # noqa: F811
    return genkey(tlogcheck, "writer.example/go")


@pytest.fixture
def signed(go_key: GoKey) -> Iterator[list[StoredEvent]]:
    events = stored_events()
    assert len(events) == 5 and all(SIGNED_KEY.encode() not in e.state for e in events)
    yield sign_batch(events, parse_signer(go_key.signer))


def test_events_signed_here_with_a_key_made_by_go_verify_in_go(tlogcheck: Path, go_key: GoKey, signed: list[StoredEvent]) -> None:  # noqa: F811
    assert parse_signer(go_key.signer).verifier == parse_verifier(go_key.verifier)
    code, output = go_verify(tlogcheck, go_key.verifier, signed)
    assert code == 0, output
    assert output.startswith("ok: 5 events signed by writer.example/go, root "), output
    # A batch of one event has an empty audit path and still verifies.
    code, output = go_verify(tlogcheck, go_key.verifier, sign_batch(stored_events()[:1], parse_signer(go_key.signer)))
    assert code == 0, output


def test_go_refuses_a_tampered_body_a_wrong_index_a_swapped_path_element_and_another_key(
    tlogcheck: Path, go_key: GoKey, signed: list[StoredEvent]  # noqa: F811
) -> None:
    body = split_signed(signed[2].state)[0]
    assert b'"interop-writer"' in body
    tampered = with_block(signed[2], lambda b: None, body=body.replace(b'"interop-writer"', b'"interop-writes"'))

    def index(fields: dict[str, object]) -> None:
        fields["i"] = 3

    def swap(fields: dict[str, object]) -> None:
        path = fields["path"]
        assert isinstance(path, list) and len(path) >= 2
        path[0], path[1] = path[1], path[0]

    for broken, at in (([*signed[:2], tampered, *signed[3:]], 3), ([*signed[:2], with_block(signed[2], index), *signed[3:]], 3),
                       ([with_block(signed[0], swap), *signed[1:]], 1)):
        code, output = go_verify(tlogcheck, go_key.verifier, broken)
        assert code == 1 and output.startswith(f"FAIL: event {at} ") and "leads to another root than the signed one" in output, output
        # The checker here refuses the same event, for its own reasons.
        event = SignedEvent.of(str(broken[at - 1].originator_id), broken[at - 1].originator_version, broken[at - 1].topic, broken[at - 1].state)
        assert event is not None and SignatureChecker().check_event(event, parse_verifier(go_key.verifier)) is not None
    other = genkey(tlogcheck, "writer.example/go")
    code, output = go_verify(tlogcheck, other.verifier, signed)
    assert code == 1 and output.startswith("FAIL: batch note: note.Open: note has no verifiable signatures"), output
    # Each event and its path hold on their own, but the batch given is not the one signed: two events change places.
    code, output = go_verify(tlogcheck, go_key.verifier, [signed[1], signed[0], *signed[2:]])
    assert (code, output) == (1, "FAIL: the events given, in this order, are not the batch the signature covers\n")
    code, output = go_verify(tlogcheck, go_key.verifier, signed[:4])
    assert code == 1 and "not of the same batch of 4 events" in output, output
    code, output = go_verify(tlogcheck, go_key.verifier, stored_events())
    assert code == 1 and "unsigned" in output, output


class GoSigner(Signer):
    """A signer whose signatures Go's note.Sign makes, with the key Go generated."""

    binary: Path
    key: str

    def sign(self, message: bytes) -> bytes:
        done = subprocess.run([str(self.binary), "sign-batch", self.key], input=message, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        text, _, line = done.stdout.decode().rpartition("\n\u2014 ")
        assert text.encode() == message, done.stdout
        name, encoded = line.strip().split(" ")
        raw = base64.b64decode(encoded)
        assert name == self.name and int.from_bytes(raw[:4], "big") == self.verifier.hash
        return raw[4:]


def test_a_batch_signed_by_go_verifies_here(tlogcheck: Path, go_key: GoKey) -> None:  # noqa: F811
    events = stored_events()
    mine = parse_signer(go_key.signer)
    go_signer = GoSigner(mine.name, mine.seed)
    object.__setattr__(go_signer, "binary", tlogcheck)
    object.__setattr__(go_signer, "key", go_key.signer)
    by_go = sign_batch(events, go_signer)
    verifier = parse_verifier(go_key.verifier)
    checked = [SignedEvent.of(str(e.originator_id), e.originator_version, e.topic, e.state) for e in by_go]
    assert all(c is not None for c in checked)
    assert SignatureChecker().check_batch([c for c in checked if c is not None], verifier) == []
    # Ed25519 is deterministic: Go's signature of the batch text is the one made here with the same key.
    assert by_go == sign_batch(events, mine)
    # Go's signature covers that batch only: over another root it does not verify here.
    block = split_signed(by_go[0].state)[1]
    assert block is not None and block.n == 5
    assert not verifier.verify(batch_text(5, bytes(32)).encode(), base64.b64decode(block.sig)[4:])
