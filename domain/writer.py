"""The writers of the ledger: the named Ed25519 keys whose signatures the ledger accepts on its writes."""

from __future__ import annotations

import re

from domain.base import Action, Aggregate, idempotent
from domain.errors import InvalidValue, WriterRuleBroken

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,72}")
"""A writer's name, the name of its key: ASCII letters, digits and `._-`, starting with a letter or digit, at most 73 characters."""


def writer_ref(name: str) -> str:
    """The reference of the writer of this name."""
    return f"writer:{name}"


def check_writer_name(name: str) -> str:
    """The name, if a writer may bear it; else InvalidValue naming it."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidValue("name", name, "a writer's name is 1 to 73 ASCII letters, digits and . _ - (the name its key was made with)")
    return name


class Writer(Aggregate):
    """A key the ledger accepts signed writes from: authorized once, revoked at most once."""

    kind = "writer"

    class Authorized(Aggregate.Created):
        name: str
        verifier: str
        """The verifier key in its signed-note text form, `name+hash+base64`."""

        def apply(self, writer: Writer) -> None:
            writer.ref, writer.name, writer.verifier, writer.revoked = self.ref, self.name, self.verifier, False

    class Revoked(Aggregate.Event):
        name: str
        reason: str

        def apply(self, writer: Writer) -> None:
            writer.revoked = True

    @classmethod
    def authorize(cls, name: str, verifier: str, action: Action) -> Writer:
        return cls.start(cls.Authorized, writer_ref(check_writer_name(name)), action, name=name, verifier=verifier)

    def check_same_key(self, verifier: str) -> None:
        """Refuse authorizing this name again: with another key, or after it was revoked."""
        if self.revoked:
            raise WriterRuleBroken(f"writer: {self.name!r} was revoked; a revoked name is never authorized again (make a key with a new name)")
        if verifier != self.verifier:
            raise WriterRuleBroken(f"writer: {self.name!r} is already authorized with another key; revoke it first, then authorize a key with a new name")

    @idempotent
    def revoke(self, action: Action, reason: str) -> None:
        if self.revoked:
            raise WriterRuleBroken(f"writer: {self.name!r} is already revoked")
        self.emit(self.Revoked, action, name=self.name, reason=reason)
