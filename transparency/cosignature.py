"""C2SP tlog-cosignature (cosignature/v1): Ed25519 witness keys, and the timestamped signatures they add to a checkpoint."""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from transparency.errors import BadKey, BadNote
from transparency import note
from transparency.note import SIGNATURE_PREFIX, Signature

ALG_COSIGNATURE_V1 = 4
HEADER = "cosignature/v1"
MAX_TIMESTAMP = (1 << 63) - 1


def key_hash(name: str, public: bytes) -> int:
    """First 4 bytes, big-endian, of SHA-256(name ‖ "\\n" ‖ 0x04 ‖ public key)."""
    return note.key_hash(name, public, ALG_COSIGNATURE_V1)


def signed_message(body: str, timestamp: int) -> bytes:
    """What a cosigner signs: the header line, the time line and the checkpoint body with its final newline."""
    return f"{HEADER}\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class CosignerKey:
    """A witness's named Ed25519 public key, as in the vkey `name+hash+base64(0x04 ‖ key)`."""

    name: str
    public: bytes

    @property
    def hash(self) -> int:
        return key_hash(self.name, self.public)

    def encode(self) -> str:
        return f"{self.name}+{self.hash:08x}+{base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public).decode()}"

    def label(self) -> str:
        return f"{self.name}+{self.hash:08x}"

    def matches(self, signature: Signature) -> bool:
        return signature.name == self.name and signature.hash == self.hash

    def timestamp(self, body: str, signature: Signature) -> int:
        """The time of a valid cosignature of `body` by this key; raises BadNote otherwise."""
        if not self.matches(signature):
            raise BadNote(f"the signature line is by {signature.name}, not by {self.label()}")
        if len(signature.signature) != 8 + 64:
            raise BadNote(f"the cosignature by {self.label()} has {len(signature.signature)} bytes after the key hash, not 72")
        timestamp = struct.unpack(">Q", signature.signature[:8])[0]
        if timestamp > MAX_TIMESTAMP:
            raise BadNote(f"the cosignature by {self.label()} has a timestamp above 2^63 - 1")
        keys = note.ed25519()
        try:
            keys.PublicKey.from_public_bytes(self.public).verify(signature.signature[8:], signed_message(body, timestamp))
        except keys.InvalidSignature:
            raise BadNote(f"the cosignature by {self.label()} does not match the checkpoint") from None
        return timestamp


def parse_cosigner(text: str) -> CosignerKey:
    """A witness's vkey from its text form; raises BadKey if malformed, not a cosignature/v1 key, or its hash does not match."""
    parts = text.strip().split("+", 2)  # the base64 key may hold "+" itself
    if len(parts) != 3:
        raise BadKey(f"witness key {text.strip()!r}: expected name+hash+key")
    name, hash_hex, key = parts
    if not name or any(ch.isspace() for ch in name):
        raise BadKey(f"witness key {text.strip()!r}: the name must be non-empty, without spaces")
    try:
        declared = int(hash_hex, 16)
        raw = base64.b64decode(key, validate=True)
    except (ValueError, binascii.Error):
        raise BadKey(f"witness key {name}: the hash or the key is not hex / base64") from None
    if len(hash_hex) != 8 or len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise BadKey(f"witness key {name}: not a cosignature/v1 key (type byte 0x04 and 32 Ed25519 key bytes)")
    cosigner = CosignerKey(name, raw[1:])
    if cosigner.hash != declared:
        raise BadKey(f"witness key {name}: hash {declared:08x} does not match the key ({cosigner.hash:08x})")
    return cosigner


@dataclass(frozen=True)
class Cosigner:
    """A witness's private key: what a stand-in witness signs with when no real one is at hand."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        return cls(name, note.ed25519().PrivateKey.generate().private_bytes_raw())

    @property
    def key(self) -> CosignerKey:
        return CosignerKey(self.name, note.ed25519().PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw())

    def cosign(self, body: str, timestamp: int) -> str:
        """One signature line, `— name base64(key hash ‖ timestamp ‖ signature)`, with its newline."""
        signature = note.ed25519().PrivateKey.from_private_bytes(self.seed).sign(signed_message(body, timestamp))
        raw = struct.pack(">IQ", self.key.hash, timestamp) + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"
