"""What a consumer trusts: envelopes carry the stored state their payload must agree with, and writer keys count only
from their authorization (or on first use, for a self-signed root) until their revocation."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from eventsourcing.persistence import Notification, StoredEvent
from pydantic import ValidationError

from consumers.envelope import ENVELOPE, Envelope, wrap
from consumers.writers import AUTHORIZED_TYPE, KEY_FIELD, NAME_FIELD, REVOKED_TYPE, TrustedKey, Verdict, Writers, entry_digest, writer_event
from transparency.note import Signer
from transparency.signing import sign_batch


def notification(position: int, topic: str, fields: dict[str, object], aggregate: uuid.UUID | None = None, version: int = 1) -> Notification:
    now = datetime.now(timezone.utc).isoformat()
    state = json.dumps({**fields, "timestamp": now, "occurred_at": now, "actor": "someone"}, separators=(",", ":")).encode()
    return Notification(id=position, originator_id=aggregate or uuid.uuid4(), originator_version=version, topic=topic, state=state)


def signed(n: Notification, signer: Signer) -> Envelope:
    s = sign_batch([StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)], signer)[0]
    return wrap(Notification(id=n.id, originator_id=s.originator_id, originator_version=s.originator_version, topic=s.topic, state=s.state))


def authorization(position: int, writer: Signer) -> Notification:
    return notification(position, f"domain.writer:{AUTHORIZED_TYPE}", {NAME_FIELD: writer.name, KEY_FIELD: writer.verifier.encode()})


def test_an_envelope_carries_its_stored_state_and_its_payload_must_agree_with_it() -> None:
    root = Signer.generate("root.example")
    envelope = signed(notification(7, "domain.model:ClusterOrganisation.Updated", {"name": "A"}), root)
    assert envelope.state is not None and '"signed":{"by":"root.example"' in envelope.state
    assert "signed" not in envelope.payload and envelope.payload["name"] == "A"
    assert ENVELOPE.validate_json(envelope.model_dump_json()) == envelope
    lying = json.loads(envelope.model_dump_json()) | {"payload": {**envelope.payload, "name": "B"}}
    with pytest.raises(ValidationError, match="do not match the stored state"):
        ENVELOPE.validate_json(json.dumps(lying))
    # An envelope published before states were carried is still decodable: unsigned.
    old = {k: v for k, v in json.loads(envelope.model_dump_json()).items() if k != "state"}
    assert ENVELOPE.validate_json(json.dumps(old)).state is None
    assert entry_digest(ENVELOPE.validate_json(json.dumps(old))) == entry_digest(envelope)
    assert entry_digest(ENVELOPE.validate_json(json.dumps(old | {"payload": {**envelope.payload, "name": "B"}}))) != entry_digest(envelope)


def test_keys_count_after_their_authorization_and_before_their_revocation() -> None:
    root, second = Signer.generate("root.example"), Signer.generate("second.example")
    writers = Writers({root.name: TrustedKey(root.verifier, 0)}, trust_first=False)
    assert writers.check(signed(notification(5, "domain.model:X.Y", {"a": 1}), second), None).held_for == "second.example"
    unsigned = wrap(notification(5, "domain.model:X.Y", {"a": 1}))
    assert (writers.check(unsigned, None).problem or "").startswith("unsigned: the stored event carries no signature block")
    auth = signed(authorization(10, second), root)
    event = writer_event(auth)
    assert event is not None and writers.check(auth, event).problem is None
    assert writers.learn(event, 10) is None
    assert writers.check(signed(notification(10, "domain.model:X.Y", {"a": 1}), second), None).problem == (
        "signed by 'second.example' at position 10, before its authorization at position 10")
    assert writers.check(signed(notification(11, "domain.model:X.Y", {"a": 1}), second), None).problem is None
    revoke = signed(notification(20, f"domain.writer:{REVOKED_TYPE}", {NAME_FIELD: second.name, "reason": "left"}, auth.aggregate_id, 2), root)
    revoked = writer_event(revoke)
    assert revoked is not None and writers.learn(revoked, 20) is None
    assert writers.check(signed(notification(19, "domain.model:X.Y", {"a": 1}), second), None).problem is None
    assert writers.check(signed(notification(20, "domain.model:X.Y", {"a": 1}), second), None).problem == (
        "signed by 'second.example' at position 20, after its revocation at position 20")
    other = Signer.generate("second.example")
    assert writers.learn(writer_event(signed(authorization(30, other), root)), 30) == (  # type: ignore[arg-type]
        "authorizes writer 'second.example' again, with another key")
    assert [row[0] for row in writers.rows()] == ["second.example"]


def test_on_first_use_only_a_self_signed_authorization_becomes_the_root() -> None:
    root, intruder = Signer.generate("root.example"), Signer.generate("intruder.example")
    writers = Writers({}, trust_first=True)
    assert writers.checking
    by_other = signed(authorization(3, root), intruder)
    assert writers.check(by_other, writer_event(by_other)).held_for == "intruder.example"
    forged = signed(authorization(3, root), root)
    tampered = forged.model_copy(update={"state": (forged.state or "").replace('"actor":"someone"', '"actor":"someone else"'),
                                         "payload": {**forged.payload, "actor": "someone else"}})
    assert (writers.check(tampered, writer_event(tampered)).problem or "").startswith("signature invalid")
    verdict = writers.check(forged, writer_event(forged))
    assert verdict.root and verdict.problem is None and verdict.held_for is None
    event = writer_event(forged)
    assert event is not None and writers.learn(event, 3, root=True) is None
    # The root signed its own authorization, so its key counts from that position on.
    assert writers.check(signed(notification(3, "domain.model:X.Y", {"a": 1}), root), None).problem is None
    assert not Writers({}, trust_first=False).checking


def test_a_writer_event_with_a_malformed_key_is_refused() -> None:
    root = Signer.generate("root.example")
    bad = signed(notification(1, f"domain.writer:{AUTHORIZED_TYPE}", {NAME_FIELD: "root.example", KEY_FIELD: "nonsense"}), root)
    with pytest.raises(ValueError, match="verifier"):
        writer_event(bad)
    misnamed = signed(notification(1, f"domain.writer:{AUTHORIZED_TYPE}", {NAME_FIELD: "other", KEY_FIELD: root.verifier.encode()}), root)
    with pytest.raises(ValueError, match="is named 'root.example'"):
        writer_event(misnamed)


def test_an_unsigned_root_authorization_is_the_trust_anchor_only_for_the_key_given_or_on_first_use() -> None:
    root, other = Signer.generate("root.example"), Signer.generate("other.example")
    # The ledger records its root writer's authorization unsigned.
    anchor = wrap(authorization(1, root))
    event = writer_event(anchor)
    pinned = Writers({root.name: TrustedKey(root.verifier, 0)}, trust_first=False)
    assert pinned.check(anchor, event) == Verdict()
    stranger = wrap(authorization(2, other))
    assert pinned.check(stranger, writer_event(stranger)).problem == "unsigned: the stored event carries no signature block"
    first_use = Writers({}, trust_first=True)
    assert first_use.check(anchor, event) == Verdict(root=True)
    assert event is not None and first_use.learn(event, 1, root=True) is None
    assert first_use.check(stranger, writer_event(stranger)).problem == "unsigned: the stored event carries no signature block"
