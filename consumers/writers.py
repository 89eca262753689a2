"""The writer keys a consumer trusts, learned from the stream's own writer events, and the check of each envelope's signature against them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

import orjson

from consumers.envelope import Envelope
from transparency.errors import BadKey, BadSignature
from transparency.note import Verifier, parse_verifier
from transparency.signing import SignatureChecker, SignedEvent

AUTHORIZED_TYPE = "Writer.Authorized"
REVOKED_TYPE = "Writer.Revoked"
"""The envelope `type` of the events that authorize and revoke a writer's key (domain/writer.py)."""
NAME_FIELD = "name"
KEY_FIELD = "verifier"
"""Their payload fields: the writer's name (its key's name), and the verifier key text `name+hash+base64`."""


@dataclass(frozen=True)
class WriterEvent:
    """A writer event as a consumer reads it, without the ledger's event classes."""

    kind: Literal["authorized", "revoked"]
    name: str
    verifier: Verifier | None


def writer_event(envelope: Envelope) -> WriterEvent | None:
    """The writer event an envelope carries; None for any other event; ValueError if its fields are not a writer's."""
    if envelope.type not in (AUTHORIZED_TYPE, REVOKED_TYPE):
        return None
    name = envelope.payload.get(NAME_FIELD)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{envelope.type}: {NAME_FIELD}: {name!r} is not a writer's name")
    if envelope.type == REVOKED_TYPE:
        return WriterEvent("revoked", name, None)
    try:
        verifier = parse_verifier(str(envelope.payload.get(KEY_FIELD)))
    except BadKey as error:
        raise ValueError(f"{envelope.type}: {KEY_FIELD}: {error}") from None
    if verifier.name != name:
        raise ValueError(f"{envelope.type}: the key of writer {name!r} is named {verifier.name!r}")
    return WriterEvent("authorized", name, verifier)


def entry_digest(envelope: Envelope) -> bytes:
    """What a consumer remembers of an applied event to tell a duplicate from a conflicting one: its type and fields."""
    content = [envelope.topic, envelope.type_version, envelope.payload]
    try:
        canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson cannot write (an integer beyond 64 bits, a lone surrogate) is written by the json module
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).digest()


@dataclass
class TrustedKey:
    """A writer's key, the position after which its signatures count, and where it was revoked (signatures before it count)."""

    verifier: Verifier
    counts_after: int
    revoked_at: int | None = None


@dataclass(frozen=True)
class Verdict:
    """What the signature check says of one envelope: it holds, it waits for a writer's authorization, or it is refused."""

    held_for: str | None = None
    problem: str | None = None
    root: bool = False


class Writers:
    """The keys one read model trusts, by writer name: a root (given, or trusted on first use), then those the stream authorizes."""

    def __init__(self, keys: dict[str, TrustedKey], trust_first: bool, checker: SignatureChecker | None = None) -> None:
        self.keys = keys
        self.trust_first = trust_first
        self.changed: set[str] = set()
        self.checker = checker if checker is not None else SignatureChecker()
        """A consumer passes the one it keeps: what it proved of a batch's signature serves the batch's later events."""

    @property
    def checking(self) -> bool:
        """Whether signatures are checked at all: once a root is known or is to be trusted on first use."""
        return bool(self.keys) or self.trust_first

    def check(self, envelope: Envelope, event: WriterEvent | None) -> Verdict:
        """Whether the envelope's signature holds for a key trusted at its position."""
        try:
            signed = None if envelope.state is None else SignedEvent.of(
                str(envelope.aggregate_id), envelope.version, envelope.topic, envelope.state.encode("utf-8", "surrogatepass"))
        except BadSignature as error:
            return Verdict(problem=f"signature invalid: {error}")
        if signed is None:
            if event is not None and event.verifier is not None:
                # The ledger records its root writer's authorization unsigned: the trust anchor, taken as given or on first use.
                known = self.keys.get(event.name)
                if known is not None and known.verifier == event.verifier:
                    return Verdict()
                if self.trust_first and not self.keys:
                    return Verdict(root=True)
            if envelope.state is None:
                return Verdict(problem="unsigned: the envelope carries no stored state to check")
            return Verdict(problem="unsigned: the stored event carries no signature block")
        by, position = signed.block.by, envelope.position
        key = self.keys.get(by)
        if key is None:
            if self.trust_first and not self.keys and event is not None and event.verifier is not None and event.verifier.name == by:
                why = self.checker.check_event(signed, event.verifier)
                return Verdict(problem=f"signature invalid: {why}") if why else Verdict(root=True)
            return Verdict(held_for=by)
        if position <= key.counts_after:
            return Verdict(problem=f"signed by {by!r} at position {position}, before its authorization at position {key.counts_after}")
        if key.revoked_at is not None and position >= key.revoked_at:
            return Verdict(problem=f"signed by {by!r} at position {position}, after its revocation at position {key.revoked_at}")
        why = self.checker.check_event(signed, key.verifier)
        return Verdict(problem=f"signature invalid: {why}") if why else Verdict()

    def learn(self, event: WriterEvent, position: int, root: bool = False) -> str | None:
        """Take in an applied writer event; why it cannot be taken in, if so."""
        known = self.keys.get(event.name)
        if event.kind == "revoked":
            if known is None:
                return f"revokes writer {event.name!r}, which was never authorized here"
            if known.revoked_at is None:
                known.revoked_at = position
                self.changed.add(event.name)
            return None
        assert event.verifier is not None
        if known is not None:
            return None if known.verifier == event.verifier else f"authorizes writer {event.name!r} again, with another key"
        # A root signs its own authorization, so its key counts from that position on.
        self.keys[event.name] = TrustedKey(event.verifier, position - 1 if root else position)
        self.changed.add(event.name)
        return None

    def rows(self) -> list[tuple[str, str, int, int | None]]:
        """The changed keys as rows: name, verifier key text, position after which it counts, revocation position."""
        return [(name, self.keys[name].verifier.encode(), self.keys[name].counts_after, self.keys[name].revoked_at) for name in sorted(self.changed)]


@dataclass(frozen=True)
class HeldRecord:
    """A message held until its writer's key is authorized: where it was read, and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
