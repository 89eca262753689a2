"""One hierarchy of named errors for every broken rule and bad value in the ledger."""

from __future__ import annotations


def shown(value: object, limit: int = 60) -> str:
    """A value as messages quote it: its repr (which escapes control characters), cut short if long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return f"{text[:limit]}...{size}"


class LedgerError(Exception):
    """A user-facing mistake: bad value, unknown reference or broken rule."""


class InvalidValue(LedgerError):
    """A field holds a value the ledger cannot accept."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {shown(value)}: {reason}")


class UnknownReference(LedgerError):
    """A command names an aggregate that does not exist."""

    def __init__(self, kind: str, ref: str) -> None:
        self.kind = kind
        self.ref = ref
        super().__init__(f"unknown {kind}: {ref!r}")


class AlreadyExists(LedgerError):
    """A command would create an aggregate whose reference is taken."""

    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"{kind} {ref!r} already exists")


class RuleBroken(LedgerError):
    """A business rule refuses the command."""


class FutureDate(RuleBroken):
    """A fact that already happened cannot be dated in the future."""


class RegionNotInCountry(RuleBroken):
    """A NUTS region code belongs to another country."""


class AlreadyPublished(RuleBroken):
    """A profile is published once; later changes are updates."""


class AlreadyForgotten(RuleBroken):
    """A person's personal data is erased once."""


class ProfileArchived(RuleBroken):
    """An archived profile accepts no further change."""


class ActivityClosed(RuleBroken):
    """A held or cancelled activity accepts no change of state."""


class WrongActivityKind(RuleBroken):
    """The activity is of a kind that does not allow this action."""


class NotRegistered(RuleBroken):
    """A participant is not (or no longer) registered for the activity."""


class MeetingClosed(RuleBroken):
    """A meeting that was declined, cancelled, missed or held cannot move on."""


class CaseClosed(RuleBroken):
    """An abandoned or fully advanced cooperation case cannot advance."""


class StageNotForward(RuleBroken):
    """A cooperation case only moves forward through its stages."""


class NothingChanged(RuleBroken):
    """An update that changes no field is refused."""


class WriterRuleBroken(RuleBroken):
    """A writer cannot be authorized or revoked as asked."""


class SigningRefused(LedgerError):
    """A write the ledger does not accept: no signing key given, or a key that is not an authorized writer's."""


class ConcurrentChange(LedgerError):
    """Another writer changed the same aggregate first."""


class UnreadableEvent(LedgerError):
    """A stored event this code cannot read: unknown type, newer version, or fields that do not fit."""

    def __init__(self, topic: str, version: object, position: int | None, reason: str) -> None:
        self.topic = topic
        self.version = version
        self.position = position
        self.reason = reason
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"event {topic!r} version {version!r}{where}: {reason}")
