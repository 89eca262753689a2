"""Cosignatures checked against the bytes C2SP tlog-cosignature spells out, tlog-policy files, and the tlog-witness client."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from transparency.cosignature import Cosigner, CosignerKey, parse_cosigner
from transparency.errors import BadKey, BadPolicy, PolicyFailed, WitnessRefused, WitnessUnreachable
from transparency.note import Checkpoint, Signer, sign_note, split_note
from transparency.note import key_hash as note_key_hash
from transparency.policy import check, parse_policy, require
from transparency.witness import Collected, Witness, add_checkpoint, collect, cosigned, request_body

BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_a_cosignature_is_ed25519_over_the_spec_message_with_a_big_endian_timestamp_and_a_0x04_key_id() -> None:
    seed = bytes(range(32))
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    line = Cosigner("witness.example.com/w1", seed).cosign(BODY, 1679315147)

    # Read from the spec's text, not from the module: the line, the key ID, the timestamped_signature and the message.
    assert line.startswith("\u2014 witness.example.com/w1 ") and line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == hashlib.sha256(b"witness.example.com/w1\n\x04" + public).digest()[:4]
    assert raw[4:12] == (1679315147).to_bytes(8, "big") and len(raw) == 4 + 8 + 64
    message = (b"cosignature/v1\ntime 1679315147\n"
               b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
    Ed25519PrivateKey.from_private_bytes(seed).public_key().verify(raw[12:], message)  # raises if the bytes differ

    # And a cosignature made by hand from those bytes is accepted, with its time.
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(message)
    by_hand = split_note(BODY + "\n\u2014 witness.example.com/w1 "
                         + base64.b64encode(raw[:4] + struct.pack(">Q", 1679315147) + signature).decode() + "\n")[1][0]
    assert CosignerKey("witness.example.com/w1", public).timestamp(BODY, by_hand) == 1679315147


def test_a_witness_vkey_round_trips_and_a_log_key_is_not_one() -> None:
    key = Cosigner.generate("witness.example/w1").key
    assert parse_cosigner(key.encode()) == key
    assert key.hash != note_key_hash(key.name, key.public)  # 0x04, not the log keys' 0x01
    with pytest.raises(BadKey, match="not a cosignature/v1 key"):
        parse_cosigner(Signer.generate("witness.example/w1").verifier.encode())


def _policy(log: Signer, *cosigners: Cosigner, quorum: str = "all") -> str:
    names = " ".join(f"w{i}" for i in range(1, len(cosigners) + 1))
    witnesses = "".join(f"witness w{i} {c.key.encode()} http://w{i}.example\n" for i, c in enumerate(cosigners, start=1))
    return f"# a comment\nlog {log.verifier.encode()}\n\n{witnesses}  group both\t{quorum} {names}\nquorum both\n"


def test_a_policy_counts_only_valid_cosignatures_by_its_witnesses_and_names_the_missing_and_invalid() -> None:
    log, w1, w2, stranger = Signer.generate("ledger.example/l"), Cosigner.generate("w.example/1"), Cosigner.generate("w.example/2"), \
        Cosigner.generate("w.example/3")
    policy = parse_policy(_policy(log, w1, w2, quorum="2"))
    note = sign_note(BODY.replace("example.com/behind-the-sofa", log.name), log)
    body = split_note(note)[0]
    both = note + w1.cosign(body, 1700000000) + w2.cosign(body, 1700000001)
    witnessed = require(policy, both)
    assert [c.status for c in witnessed.cosigned] == ["valid", "valid"] and witnessed.held
    assert witnessed.lines()[0] == f"witness w1 ({w1.key.label()}): cosignature valid, 2023-11-14 22:13:20 UTC"

    # A stranger's cosignature (even one renamed as w2) is ignored, never counted.
    fake = Cosigner("w.example/2", stranger.seed).cosign(body, 1700000002)
    witnessed = check(policy, note + w1.cosign(body, 1700000000) + stranger.cosign(body, 1) + fake)
    assert [c.status for c in witnessed.cosigned] == ["valid", "missing"] and not witnessed.held
    assert witnessed.problem() == "quorum both (2 of w1, w2) not held: cosignature of w2 missing"

    other = w2.cosign(BODY, 1700000001)  # w2's signature over another checkpoint
    witnessed = check(policy, note + w1.cosign(body, 1700000000) + other)
    assert witnessed.cosigned[1].status == "invalid" and "does not match the checkpoint" in witnessed.cosigned[1].reason
    with pytest.raises(PolicyFailed, match="cosignature of w2 invalid"):
        require(policy, note + w1.cosign(body, 1700000000) + other)
    assert check(parse_policy(_policy(log, w1, w2, quorum="any")), note + w1.cosign(body, 5)).held
    with pytest.raises(PolicyFailed, match="no valid signature by a log of the policy"):
        require(policy, sign_note(body, Signer.generate(log.name)) + w1.cosign(body, 1) + w2.cosign(body, 2))


@pytest.mark.parametrize(("text", "message"), [
    ("quorum w1\n", "quorum 'w1' is not a witness or group defined above"),
    ("quorum none\nquorum none\n", "policy line 2: a second quorum line"),
    ("witness w1 {k1}\ngroup g 2 w1\nquorum g\n", "threshold '2' must be all, any or a number from 1 to 1"),
    ("witness w1 {k1}\nwitness w2 {k1}\nquorum w1\n", "policy line 2: witness w2: the same key is listed twice"),
    ("witness w1 {k1}\ngroup g any w1 w1\nquorum g\n", "a member is listed twice"),
    ("witness none {k1}\nquorum none\n", "name 'none' is already defined"),
    ("witness w1 {k1}\n", "no quorum line"),
    ("witnes w1 {k1}\nquorum none\n", "policy line 1: 'witnes' with 2 item"),
])
def test_a_malformed_policy_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(BadPolicy, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_policy(text.format(k1=Cosigner.generate("w.example/1").key.encode()))


class StandIn:
    """A witness in memory: it answers add-checkpoint as tlog-witness says, from what it was told to answer."""

    def __init__(self, *answers: tuple[int, str]) -> None:
        self.answers = list(answers)
        self.bodies: list[bytes] = []

    def __call__(self, url: str, body: bytes, timeout: float) -> tuple[int, str]:
        self.bodies.append(body)
        answer = self.answers.pop(0)
        if answer[0] == 0:
            raise WitnessUnreachable("unreachable: timed out")
        return answer


def test_the_client_sends_old_size_and_proof_and_on_409_sends_the_proof_from_the_witness_size() -> None:
    w1 = Cosigner.generate("w.example/1")
    cp = Checkpoint("ledger.example/l", 12, bytes(32))
    note = sign_note(cp.body(), Signer.generate("ledger.example/l"))
    stand_in = StandIn((409, "6\n"), (200, w1.cosign(cp.body(), 7)))
    size, lines = add_checkpoint(Witness("http://w1", w1.key, "w1"), note, cp, lambda old: (f"proof-from-{old}",), stand_in)
    assert (size, lines) == (12, (w1.cosign(cp.body(), 7),))
    assert stand_in.bodies == [b"old 0\n\n" + note.encode(), b"old 6\nproof-from-6\n\n" + note.encode()]
    assert request_body(12, (), note) == b"old 12\n\n" + note.encode()

    wrong = StandIn((200, Cosigner.generate("w.example/1").cosign(cp.body(), 7)))
    with pytest.raises(WitnessRefused, match="answered 200 with no valid cosignature by w.example/1"):
        add_checkpoint(Witness("http://w1", w1.key, "w1"), note, cp, lambda old: (), wrong)
    with pytest.raises(WitnessRefused, match="it has cosigned a tree of 20 leaves"):
        add_checkpoint(Witness("http://w1"), note, cp, lambda old: (), StandIn((409, "20\n")))
    with pytest.raises(WitnessRefused, match="422 Unprocessable Entity: not consistent with the tree of 6 leaves it cosigned before"):
        add_checkpoint(Witness("http://w1"), note, cp, lambda old: (), StandIn((422, "")), old_size=6)


def test_an_unreachable_witness_is_retried_with_backoff_and_the_quorum_decides() -> None:
    w1, w2 = Cosigner.generate("w.example/1"), Cosigner.generate("w.example/2")
    cp = Checkpoint("ledger.example/l", 12, bytes(32))
    note = sign_note(cp.body(), Signer.generate("ledger.example/l"))
    waited: list[float] = []
    answers = {"http://w1/add-checkpoint": StandIn((0, ""), (0, ""), (200, w1.cosign(cp.body(), 7))),
               "http://w2/add-checkpoint": StandIn((0, ""), (0, ""), (0, ""))}
    sizes: dict[str, int] = {}
    collected = collect([Witness("http://w1", w1.key, "w1"), Witness("http://w2", w2.key, "w2")], note, cp, lambda old: (),
                        lambda url, body, timeout: answers[url](url, body, timeout), sizes,
                        retries=2, backoff=0.5, wait=lambda s: bool(waited.append(s)))
    assert waited == [0.5, 1.0, 0.5, 1.0] and sizes == {"http://w1": 12}
    assert collected.cosigned_by == ["w1"] and collected.refusals == ["witness w2: unreachable: timed out"]
    assert cosigned(note, collected, quorum=1) == note + w1.cosign(cp.body(), 7)
    with pytest.raises(PolicyFailed, match="1 witness\\(es\\) cosigned, --quorum 2 needs 2; nothing published"):
        cosigned(note, collected, quorum=2)
    assert cosigned(note, Collected()) == note
