"""One hierarchy of named errors for every broken rule and bad value in the ledger."""

from __future__ import annotations

from datetime import date, datetime


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


class OutOfTimeline(RuleBroken):
    """A fact dated before the fact it depends on: its record's creation, an earlier step, or another record it names."""

    def __init__(self, at: datetime, what: str, since: date) -> None:
        self.at = at
        self.what = what
        self.since = since
        super().__init__(f"occurred_at: {at.isoformat()} is before {what} on {since.isoformat()}")


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


class EventTooLarge(LedgerError):
    """An event whose leaf bytes would not fit the 2-byte length of a tlog-tiles entry bundle (65,535 bytes)."""

    def __init__(self, event: str, size: int, limit: int) -> None:
        super().__init__(f"event too large: a {event} event would be {size:,} bytes in the log, more than the {limit:,} an entry "
                         "of the published log (C2SP tlog-tiles, 2-byte length) can hold; nothing was written")


class ReadOnlyMirror(LedgerError):
    """The ledger is a verified mirror of another log: only `ledger mirror` adds events to it."""

    def __init__(self, source: str) -> None:
        super().__init__(f"db: this ledger is a read-only mirror of {source}; record the change at the source, then run `ledger mirror` again")


class UnreplayableEvent(LedgerError):
    """A stored event a replay cannot apply, whatever put it there: every entry point turns it into its own one-line answer.

    `kind` names the kind of problem (so `ledger db check` can list the first event of each), `position` where it is stored.
    """

    kind = "cannot be applied"

    def __init__(self, position: int | None, message: str) -> None:
        self.position = position
        super().__init__(message)


class RecordedTimeBackwards(LedgerError):
    """A batch would be recorded earlier than the last stored event: the writing machine's clock is behind."""

    def __init__(self, message: str, last: object) -> None:
        self.last = last
        """The recorded time (a datetime) the batch fell behind."""
        super().__init__(message)


class RecordedTimeAhead(LedgerError):
    """A batch would be recorded too far ahead of the database server's clock: the writing machine's clock is ahead."""


class RecordedTimeDisorder(LedgerError):
    """Stored recorded times go backwards at a position, so a lookup by recorded time cannot be trusted."""


class UnreadableEvent(UnreplayableEvent):
    """A stored event this code cannot read: unknown type, newer version, or fields that do not fit."""

    kind = "unreadable"

    def __init__(self, topic: str, version: object, position: int | None, reason: str) -> None:
        self.topic = topic
        self.version = version
        self.reason = reason
        where = f" at position {position}" if position is not None else ""
        super().__init__(position, f"event {topic!r} version {version!r}{where}: {reason}")


class EventDoesNotFit(UnreplayableEvent):
    """A readable stored event that no valid history puts where it is: after a row of another kind, before its creating
    event, a second creating event, or a change dated before its record's registration."""

    kind = "impossible"

    def __init__(self, position: int | None, event: str, reason: str) -> None:
        self.event = event
        self.reason = reason
        super().__init__(position, f"position {position}: {event} cannot be applied: {reason}; run `ledger db check`")


class AlteredId(UnreplayableEvent):
    """A stored event whose aggregate id is not spelled as the ledger writes ids: the row was changed after it was written."""

    kind = "altered id"

    def __init__(self, position: int, stored_id: str, record: str | None = None) -> None:
        self.stored_id = stored_id
        if record is None:
            what = f"the stored aggregate id {shown(stored_id)} is not written as the ledger writes ids (32 lowercase hex digits)"
        else:
            what = f"an event of {record!r} is stored under the id {shown(stored_id)}, not as the ledger writes ids, so its history cannot be shown whole"
        super().__init__(position, f"position {position}: {what}; run `ledger verify`")


class ErasureIncomplete(LedgerError):
    """Personal data was erased from its table, but a copy may remain in a store's own files; the message says what to run."""
