"""Signed notes (golang.org/x/mod/sumdb/note) with Ed25519 keys, and C2SP tlog-checkpoint bodies."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import struct
from dataclasses import dataclass
from types import SimpleNamespace

from transparency.errors import BadKey, BadNote

ALG_ED25519 = 1
SIGNATURE_PREFIX = "\u2014 "


@functools.cache
def ed25519() -> SimpleNamespace:
    """cryptography's Ed25519 keys and its signature error, loaded on first use: a command that signs and checks nothing
    starts without them."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    return SimpleNamespace(PrivateKey=Ed25519PrivateKey, PublicKey=Ed25519PublicKey, InvalidSignature=InvalidSignature)


def key_hash(name: str, public: bytes, algorithm: int = ALG_ED25519) -> int:
    """First 4 bytes, big-endian, of SHA-256(name ‖ "\\n" ‖ algorithm byte ‖ public key): 0x01 for a note signer, 0x04 for a
    cosigner (C2SP tlog-cosignature)."""
    return struct.unpack(">I", hashlib.sha256(name.encode() + b"\n" + bytes([algorithm]) + public).digest()[:4])[0]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise BadKey(f"key name {name!r}: must be non-empty, without spaces or '+'")


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key, as in `name+hash+base64(0x01 ‖ key)`."""

    name: str
    public: bytes

    @property
    def hash(self) -> int:
        return key_hash(self.name, self.public)

    def encode(self) -> str:
        return f"{self.name}+{self.hash:08x}+{base64.b64encode(bytes([ALG_ED25519]) + self.public).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        keys = ed25519()
        try:
            keys.PublicKey.from_public_bytes(self.public).verify(signature, message)
        except keys.InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A named Ed25519 private key, as in `PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)`."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        key = ed25519().PrivateKey.generate()
        return cls(name, key.private_bytes_raw())

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, ed25519().PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw())

    def encode(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.verifier.hash:08x}+{base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()}"

    def sign(self, message: bytes) -> bytes:
        return ed25519().PrivateKey.from_private_bytes(self.seed).sign(message)


def _key_parts(text: str, what: str) -> tuple[str, int, bytes]:
    parts = text.strip().split("+", 2)  # the base64 key may hold "+" itself
    if len(parts) != 3:
        raise BadKey(f"{what}: expected name+hash+key, got {len(parts)} '+'-separated parts")
    name, hash_hex, key = parts
    _check_name(name)
    try:
        declared = int(hash_hex, 16)
        raw = base64.b64decode(key, validate=True)
    except (ValueError, binascii.Error):
        raise BadKey(f"{what}: the hash or the key is not hex / base64") from None
    if len(hash_hex) != 8 or len(raw) != 33 or raw[0] != ALG_ED25519:
        raise BadKey(f"{what}: not an Ed25519 key (algorithm byte 0x01 and 32 key bytes)")
    return name, declared, raw[1:]


def parse_verifier(text: str) -> Verifier:
    """A verifier key from its text form; raises BadKey if malformed or if its hash does not match."""
    if text.strip().startswith("PRIVATE+KEY+"):
        raise BadKey("verifier key: this is a signer key (PRIVATE+KEY+...), which stays secret; give its verifier key, NAME.pub from `ledger keygen`")
    name, declared, public = _key_parts(text, "verifier key")
    verifier = Verifier(name, public)
    if verifier.hash != declared:
        raise BadKey(f"verifier key: hash {declared:08x} does not match the key ({verifier.hash:08x})")
    return verifier


def parse_signer(text: str) -> Signer:
    """A signer key from its text form; raises BadKey if malformed or if its hash does not match."""
    if not text.startswith("PRIVATE+KEY+"):
        hint = "; this is a verifier key (NAME.pub), give its signer key, NAME.key" if text.count("+") == 2 else ""
        raise BadKey(f"signer key: expected PRIVATE+KEY+name+hash+key{hint}")
    name, declared, seed = _key_parts(text.strip().removeprefix("PRIVATE+KEY+"), "signer key")
    signer = Signer(name, seed)
    if signer.verifier.hash != declared:
        raise BadKey(f"signer key: hash {declared:08x} does not match the key ({signer.verifier.hash:08x})")
    return signer


def sign_note(text: str, signer: Signer) -> str:
    """The signed note: the text, a blank line and one signature line."""
    if not text.endswith("\n"):
        raise BadNote("a note's text must end with a newline")
    signature = struct.pack(">I", signer.verifier.hash) + signer.sign(text.encode())
    return f"{text}\n{SIGNATURE_PREFIX}{signer.name} {base64.b64encode(signature).decode()}\n"


@dataclass(frozen=True)
class Signature:
    name: str
    hash: int
    signature: bytes


def split_note(note: str) -> tuple[str, list[Signature]]:
    """The text and the signatures of a signed note; raises BadNote if malformed."""
    text, sep, block = note.rpartition("\n\n")
    if not sep:
        raise BadNote("no blank line before the signatures: not a signed note")
    text += "\n"
    signatures = []
    for line in block.split("\n")[:-1] if block.endswith("\n") else [None]:
        if line is None or not line.startswith(SIGNATURE_PREFIX):
            raise BadNote("a signature line must be '\u2014 name base64' and end with a newline")
        name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise BadNote(f"signature by {name!r} is not base64") from None
        if len(raw) < 5:
            raise BadNote(f"signature by {name!r} is too short")
        signatures.append(Signature(name, struct.unpack(">I", raw[:4])[0], raw[4:]))
    return text, signatures


def open_note(note: str, verifier: Verifier) -> str:
    """The text of a note signed by `verifier`; raises BadNote unless its signature is there and valid."""
    text, signatures = split_note(note)
    mine = [s for s in signatures if s.name == verifier.name and s.hash == verifier.hash]
    if not mine:
        raise BadNote(f"signature invalid: the checkpoint carries no signature by key {verifier.name}+{verifier.hash:08x}")
    if not any(verifier.verify(text.encode(), s.signature) for s in mine):
        raise BadNote(f"signature invalid: the signature by {verifier.name}+{verifier.hash:08x} does not match the checkpoint")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: origin, tree size and root hash (extension lines kept as they are)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(f"{line}\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from a body or a signed note (signatures are not checked here); raises BadNote if malformed."""
    body = split_note(text)[0] if "\n\n" in text else text
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise BadNote("a checkpoint needs an origin line, a tree size line and a root hash line, each ending in a newline")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin:
        raise BadNote("the checkpoint's origin line is empty")
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise BadNote(f"the checkpoint's tree size {size!r} is not a decimal number")
    try:
        digest = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise BadNote("the checkpoint's root hash is not base64") from None
    if len(digest) != 32:
        raise BadNote(f"the checkpoint's root hash has {len(digest)} bytes, not 32")
    return Checkpoint(origin, int(size), digest, tuple(lines[3:-1]))


def read_checkpoint(text: str, verifier: Verifier | None = None) -> Checkpoint:
    """A checkpoint, its signature checked first when a verifier is given."""
    if verifier is not None:
        text = open_note(text, verifier)
    return parse_checkpoint(text)
