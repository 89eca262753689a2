"""C2SP tlog-witness client: submit a signed checkpoint with a consistency proof, read the cosignature or the refusal.

The logic takes the HTTP call as a function (`Post`), so it runs against a stand-in witness; `http_post` is the real one.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from transparency.cosignature import CosignerKey
from transparency.errors import BadNote, PolicyFailed, WitnessRefused, WitnessUnreachable
from transparency.note import SIGNATURE_PREFIX, Checkpoint, Verifier, split_note
from transparency.policy import Policy, check

Post = Callable[[str, bytes, float], tuple[int, str]]
"""POST a body to a URL with a timeout: (status, response text); raises WitnessUnreachable if no answer came."""

Prove = Callable[[int], Sequence[str]]
"""The consistency proof (base64 hashes) from a tree size to the checkpoint's."""

MAX_PROOF_LINES = 63
CONFLICTS = 3  # a witness that moves again between our answers is being raced; give up after a few rounds


@dataclass(frozen=True)
class Witness:
    """Where a witness takes checkpoints, and the key its cosignatures must verify with (None: not checked here)."""

    url: str
    key: CosignerKey | None = None
    name: str = ""

    def label(self) -> str:
        return f"witness {self.name or self.url}"


def request_body(old_size: int, proof: Sequence[str], note: str) -> bytes:
    """An add-checkpoint request: `old N`, the proof's hashes one a line, an empty line, the signed checkpoint."""
    if len(proof) > MAX_PROOF_LINES:
        raise WitnessRefused(f"a consistency proof of {len(proof)} hashes is longer than the {MAX_PROOF_LINES} a witness takes")
    return "".join(f"{line}\n" for line in [f"old {old_size}", *proof, ""]).encode() + note.encode()


def _cosignatures(witness: Witness, checkpoint: Checkpoint, text: str) -> tuple[str, ...]:
    lines = [line + "\n" for line in text.split("\n") if line]
    if not lines or any(not line.startswith(SIGNATURE_PREFIX) for line in lines):
        raise WitnessRefused(f"{witness.label()}: answered 200 without signature lines")
    if witness.key is None:
        return tuple(lines)
    key = witness.key
    try:
        # A response parses as the signature block of a note over the checkpoint body.
        _, signatures = split_note(checkpoint.body() + "\n" + "".join(lines))
    except BadNote as error:
        raise WitnessRefused(f"{witness.label()}: answered 200 with malformed signature lines: {error}") from None
    valid = []
    for line, signature in zip(lines, signatures, strict=True):
        if key.matches(signature):
            try:
                key.timestamp(checkpoint.body(), signature)
            except BadNote:
                continue
            valid.append(line)
    if not valid:
        raise WitnessRefused(f"{witness.label()}: answered 200 with no valid cosignature by {key.label()}")
    return tuple(valid)


def _refusal(witness: Witness, checkpoint: Checkpoint, old: int, status: int, text: str) -> WitnessRefused:
    said = text.strip().splitlines()[0][:200] if text.strip() else ""
    unknown = f"it does not know the origin {checkpoint.origin!r} (witnessctl add-log)"
    if status == 403 and said == "unknown log":
        # litewitness v0.6.1 answers an unknown origin with 403 and this text where tlog-witness says 404.
        why = f"403 Forbidden: {unknown}"
    elif status == 403:
        why = f"403 Forbidden: it does not trust the key that signed checkpoint {checkpoint.origin!r} (witnessctl add-key)"
    elif status == 404:
        why = f"404 Not Found: {unknown}"
    elif status == 422:
        why = (f"422 Unprocessable Entity: not consistent with the tree of {old} leaves it cosigned before: "
               "it was shown another history of this origin (a split view), or this ledger's history was rewritten")
    else:
        why = f"HTTP {status}" + (f": {said}" if said else "")
    return WitnessRefused(f"{witness.label()} refused tree size {checkpoint.size}: {why}")


def add_checkpoint(witness: Witness, note: str, checkpoint: Checkpoint, prove: Prove, post: Post,
                   *, old_size: int = 0, timeout: float = 10.0) -> tuple[int, tuple[str, ...]]:
    """Submit the signed checkpoint from `old_size`, the size the witness last cosigned as far as we know.

    On 409 Conflict it reads the witness's size and submits again with the proof from there.
    Returns the size now cosigned and the cosignature lines; raises WitnessRefused (WitnessUnreachable) otherwise.
    """
    old = old_size
    for _ in range(CONFLICTS):
        if old > checkpoint.size:
            raise WitnessRefused(f"{witness.label()} refused tree size {checkpoint.size}: it has cosigned a tree of {old} leaves "
                                 "of this origin: it was shown a longer history (a fork), or this ledger lost events")
        proof = prove(old) if 0 < old < checkpoint.size else ()
        try:
            status, text = post(witness.url.rstrip("/") + "/add-checkpoint", request_body(old, proof, note), timeout)
        except WitnessUnreachable as error:
            raise WitnessUnreachable(f"{witness.label()}: {error}") from None
        if status == 200:
            return checkpoint.size, _cosignatures(witness, checkpoint, text)
        if status != 409:
            raise _refusal(witness, checkpoint, old, status, text)
        size = text.strip()
        if not size.isdigit():
            raise WitnessRefused(f"{witness.label()}: answered 409 Conflict without a tree size ({size[:40]!r})")
        old = int(size)
    raise WitnessRefused(f"{witness.label()}: its tree size kept changing ({CONFLICTS} times 409 Conflict)")


@dataclass
class Collected:
    """The cosignature lines gathered for one checkpoint, which witnesses gave them, and one line per refusal."""

    lines: list[str] = field(default_factory=list)
    cosigned_by: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


def collect(witnesses: Sequence[Witness], note: str, checkpoint: Checkpoint, prove: Prove, post: Post, sizes: dict[str, int],
            *, timeout: float = 10.0, retries: int = 0, backoff: float = 1.0,
            wait: Callable[[float], bool] = lambda seconds: False) -> Collected:
    """Ask every witness to cosign; an unreachable one is tried again `retries` times after 1, 2, 4... × `backoff` seconds.

    `sizes` holds the size each witness last cosigned (by URL) and is updated; `wait(seconds)` returns True to stop early.
    """
    collected = Collected()
    for witness in witnesses:
        for attempt in range(retries + 1):
            try:
                size, lines = add_checkpoint(witness, note, checkpoint, prove, post, old_size=sizes.get(witness.url, 0), timeout=timeout)
            except WitnessUnreachable as error:
                if attempt < retries and not wait(backoff * 2**attempt):
                    continue
                collected.refusals.append(str(error))
            except WitnessRefused as error:
                collected.refusals.append(str(error))
            else:
                sizes[witness.url] = size
                collected.lines += [line for line in lines if line not in collected.lines]
                collected.cosigned_by.append(witness.name or witness.url)
            break
    return collected


def http_post(url: str, body: bytes, timeout: float) -> tuple[int, str]:
    """POST over HTTP: (status, text) for any answer, WitnessUnreachable (`unreachable: why`) when none came."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode("utf-8", "replace")
    except (urllib.error.URLError, socket.timeout, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise WitnessUnreachable(f"unreachable: {reason}") from None
    except OSError as error:
        raise WitnessUnreachable(f"unreachable: {error}") from None


def cosigned(note: str, collected: Collected, *, quorum: int | None = None, policy: Policy | None = None,
             log: Verifier | None = None) -> str:
    """The signed checkpoint with the collected cosignatures; raises PolicyFailed when they are too few to publish.

    With a policy, only cosignatures it lists count and its quorum must hold (unless `quorum` is given: that many valid);
    without one, `quorum` counts the witnesses that cosigned.
    """
    published = note + "".join(collected.lines)
    if policy is None:
        if quorum is not None and len(collected.cosigned_by) < quorum:
            raise PolicyFailed(f"quorum: {len(collected.cosigned_by)} witness(es) cosigned, --quorum {quorum} needs {quorum}; "
                               "nothing published")
        return published
    witnessed = check(policy, published, log)
    valid = sum(c.status == "valid" for c in witnessed.cosigned)
    if quorum is not None:
        if valid < quorum:
            raise PolicyFailed(f"quorum: {valid} valid cosignature(s) of the policy's witnesses, --quorum {quorum} needs {quorum}; "
                               "nothing published")
    elif witnessed.problem() is not None:
        raise PolicyFailed(f"policy: {witnessed.problem()}; nothing published")
    return published
