"""Named errors of the transparency log: each says what failed to hold, in one line."""

from __future__ import annotations

from domain.errors import LedgerError


class TransparencyError(LedgerError):
    """Something about a checkpoint, key or proof does not hold."""


class ProofFailed(TransparencyError):
    """A proof does not lead to the root hash it claims."""


class BadNote(TransparencyError):
    """A checkpoint or signed note is malformed, or its signature does not verify."""


class BadReport(TransparencyError):
    """A signed report is malformed, or its signature does not verify."""


class BadKey(TransparencyError):
    """A signer or verifier key file is malformed."""


class BadSignature(TransparencyError):
    """A stored event's signature block is malformed, or its signature does not cover it."""


class BadPolicy(TransparencyError):
    """A C2SP tlog-policy file is malformed."""


class PolicyFailed(TransparencyError):
    """A checkpoint is not signed by a log of the policy, or its cosignatures do not make the quorum."""


class WitnessRefused(TransparencyError):
    """A witness did not cosign a checkpoint: it refused it, or could not be reached."""


class WitnessUnreachable(WitnessRefused):
    """A witness did not answer in time, or could not be connected to: worth trying again later."""
