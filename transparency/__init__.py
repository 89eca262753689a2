"""Tamper evidence for the event log: an RFC 9162 Merkle tree over every stored event, signed checkpoints and proofs."""
