"""Imperative commands, one per use case; also the JSON Lines import format (tag: `action`)."""

from __future__ import annotations

import functools
import hashlib
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from domain.inputs import (
    MAX_ITEMS,
    Actor,
    Day,
    Email,
    Key,
    MemberChanges,
    MemberCounts,
    Name,
    Note,
    PersonRef,
    Place,
    Reason,
    Ref,
    RequiredReason,
    Sector,
    Title,
    fields_rule,
    within_bounds,
)
from domain.nuts import NutsVersion
from domain.values import (
    ActivityKind,
    CaseSource,
    CaseStage,
    CountryCode,
    Ecosystem,
    LabelLevel,
    MeetingEnd,
    PublicationKind,
    TypedMoment,
)

Effective = Annotated[TypedMoment, AfterValidator(within_bounds)]
RegionCode = Annotated[str, AfterValidator(lambda code: code.strip().upper()), Field(max_length=10)]
"""A NUTS region code, stored in capitals as NUTS writes them (itc4 is ITC4), as country codes are."""


class Command(BaseModel):
    """Fields every command has: when it happened, who records it, an optional idempotency key."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    occurred_at: Effective
    actor: Actor | None = None
    key: Key | None = Field(default=None, description="idempotency key; derived from the content when absent")

    added_fields: ClassVar[frozenset[str]] = frozenset()
    """Fields added after the command was first released: left out of keys and digests while unset, so they stay stable."""

    def idempotency_key(self) -> str:
        """The key that makes re-running this command a no-op."""
        if self.key:
            return self.key
        return self._digest({"actor", "key"})

    def content_digest(self) -> str:
        """What the action does, without who recorded it or when: a key reused for other content is refused."""
        return self._digest({"actor", "key", "occurred_at"})

    def key_and_digest(self) -> tuple[str, str]:
        """`idempotency_key()` and `content_digest()` from one serialisation: the content is the keyed form without its
        leading `occurred_at` (the first field; an ISO time, so its string holds no `",`)."""
        if self.key or _own_rules(type(self)):
            return self.idempotency_key(), self.content_digest()
        unset = _KEYED_UNSET[type(self)] if self.__pydantic_fields_set__.isdisjoint(self.added_fields) else None
        # The JSON as bytes, hashed as they come: the string `_canonical` returns is these bytes decoded.
        keyed = self.__pydantic_serializer__.to_json(self, exclude=unset or self._unset({"actor", "key"}), round_trip=True)
        if not keyed.startswith(_OCCURRED_AT_BYTES):
            return self.idempotency_key(), self.content_digest()
        content = b"{" + keyed[keyed.index(b'",', len(_OCCURRED_AT_BYTES)) + 2 :]
        return hashlib.sha256(keyed).hexdigest()[:32], hashlib.sha256(content).hexdigest()[:32]

    def _unset(self, exclude: set[str]) -> set[str]:
        """`exclude` and the added fields left unset, which stay out of keys and digests."""
        return exclude | {name for name in self.added_fields if getattr(self, name) is None}

    def _digest(self, exclude: set[str]) -> str:
        return _sha(self._canonical(exclude))

    def _canonical(self, exclude: set[str]) -> str:
        return self.model_dump_json(exclude=self._unset(exclude), round_trip=True)


_OCCURRED_AT_BYTES = b'{"occurred_at":"'


@functools.cache
def _own_rules(cls: type[Command]) -> bool:
    """Whether a command type keys or digests itself in its own way (key_and_digest then asks it)."""
    return cls.idempotency_key is not Command.idempotency_key or cls.content_digest is not Command.content_digest


class _KeyedUnset(dict[type, set[str]]):
    """Per command type: what its keyed form leaves out when none of its added fields was given (each then holds its default)."""

    def __missing__(self, cls: type) -> set[str]:
        fields = cls.model_fields  # type: ignore[attr-defined]
        self[cls] = {"actor", "key"} | {name for name in cls.added_fields if fields[name].default is None}  # type: ignore[attr-defined]
        return self[cls]


_KEYED_UNSET = _KeyedUnset()


def _sha(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class RegisterOrg(Command):
    """Register a cluster organisation's profile."""

    action: Literal["org.register"] = "org.register"
    added_fields: ClassVar[frozenset[str]] = frozenset({"nuts_version"})
    org: Ref
    name: Name
    country: CountryCode
    region: RegionCode | None = None
    nuts_version: NutsVersion | None = Field(default=None, description="classification of the region code (default: the one it belongs to)")
    sectors: Annotated[tuple[Sector, ...], Field(max_length=MAX_ITEMS["sectors"])] = ()
    ecosystems: Annotated[tuple[Ecosystem, ...], Field(max_length=MAX_ITEMS["ecosystems"])]
    year_established: int
    members: MemberCounts = Field(default_factory=MemberCounts)  # built when first used, not when the module loads


class PublishOrg(Command):
    """Publish a registered profile on the platform."""

    action: Literal["org.publish"] = "org.publish"
    org: Ref


class UpdateOrg(Command):
    """Update a profile: only the fields given change (of the member counts, only the types given)."""

    action: Literal["org.update"] = "org.update"
    added_fields: ClassVar[frozenset[str]] = frozenset({"nuts_version"})
    org: Ref
    name: Name | None = None
    country: CountryCode | None = None
    region: RegionCode | None = None
    nuts_version: NutsVersion | None = Field(default=None, description="classification of the region code (default: the one it belongs to)")
    sectors: Annotated[tuple[Sector, ...], Field(max_length=MAX_ITEMS["sectors"])] | None = None
    ecosystems: Annotated[tuple[Ecosystem, ...], Field(max_length=MAX_ITEMS["ecosystems"])] | None = None
    year_established: int | None = None
    members: MemberChanges | None = None


class AwardLabel(Command):
    """Award a European Cluster Excellence label (bronze, silver, gold)."""

    action: Literal["org.label"] = "org.label"
    org: Ref
    level: LabelLevel
    valid_until: Day


class ArchiveOrg(Command):
    """Archive a profile; it accepts no further change."""

    action: Literal["org.archive"] = "org.archive"
    org: Ref
    reason: Reason = ""


class ScheduleActivity(Command):
    """Schedule an activity (matchmaking, talk, regional event, lab, academy, mission)."""

    action: Literal["activity.schedule"] = "activity.schedule"
    activity: Ref
    kind: ActivityKind
    title: Title
    starts_on: Day
    ends_on: Day
    place: Place | None = None
    online: bool = False
    target_countries: Annotated[tuple[CountryCode, ...], Field(max_length=MAX_ITEMS["target_countries"])] = ()

    @model_validator(mode="after")
    def _place_or_online(self) -> ScheduleActivity:
        if self.online and self.place is not None:
            raise fields_rule("an online activity has no {0}: give {0} or {1}, not both", "place", "online")
        if not self.online and self.place is None:
            raise fields_rule("missing: an activity that is not online needs a {0} (or give {1})", "place", "online")
        return self


class HoldActivity(Command):
    """Record that a scheduled activity was held."""

    action: Literal["activity.hold"] = "activity.hold"
    activity: Ref


class CancelActivity(Command):
    """Cancel a scheduled activity."""

    action: Literal["activity.cancel"] = "activity.cancel"
    activity: Ref
    reason: Reason = ""


class RegisterPerson(Command):
    """Register a person under a pseudonymous reference; name and e-mail stay out of events."""

    action: Literal["person.register"] = "person.register"
    person: PersonRef
    name: Name
    email: Email

    def idempotency_key(self) -> str:
        # Personal data never enters a stored event, not even hashed.
        return self.key or self.content_digest()

    def content_digest(self) -> str:
        return hashlib.sha256(f"person.register:{self.person}".encode()).hexdigest()[:32]


class ForgetPerson(Command):
    """Erase a person's name and e-mail (the right to be forgotten); counts that included them stay."""

    action: Literal["person.forget"] = "person.forget"
    person: PersonRef
    reason: RequiredReason


class _ParticipantCommand(Command):
    activity: Ref
    org: Ref | None = None
    person: PersonRef | None = None

    @model_validator(mode="after")
    def _one_participant(self) -> _ParticipantCommand:
        if (self.org is None) == (self.person is None):
            raise fields_rule("give exactly one of {0} or {1}" + (", not both" if self.org else ""), "org", "person")
        return self

    @property
    def participant(self) -> str:
        return self.org or self.person or ""

    @property
    def participant_kind(self) -> str:
        return "org" if self.org else "person"


class RegisterParticipant(_ParticipantCommand):
    """Register an organisation or a person for an activity."""

    action: Literal["participant.register"] = "participant.register"


class AttendActivity(_ParticipantCommand):
    """Record that a registered participant attended."""

    action: Literal["participant.attend"] = "participant.attend"


class CancelRegistration(_ParticipantCommand):
    """Cancel a participant's registration."""

    action: Literal["participant.cancel"] = "participant.cancel"


class RequestMeeting(Command):
    """Request a bilateral meeting between two registered organisations."""

    action: Literal["meeting.request"] = "meeting.request"
    meeting: Ref
    activity: Ref
    requester: Ref
    partner: Ref


class AcceptMeeting(Command):
    """Accept a requested meeting."""

    action: Literal["meeting.accept"] = "meeting.accept"
    meeting: Ref


class DeclineMeeting(Command):
    """Decline a requested meeting."""

    action: Literal["meeting.decline"] = "meeting.decline"
    meeting: Ref


class HoldMeeting(Command):
    """Record that a meeting was held (both organisations must be registered)."""

    action: Literal["meeting.hold"] = "meeting.hold"
    meeting: Ref


class CancelMeeting(Command):
    """Record that a meeting was cancelled or was a no-show."""

    action: Literal["meeting.cancel"] = "meeting.cancel"
    meeting: Ref
    outcome: MeetingEnd


class DeliverPitch(Command):
    """Record a pitch delivered by an organisation at an activity."""

    action: Literal["pitch.deliver"] = "pitch.deliver"
    pitch: Ref
    activity: Ref
    org: Ref
    title: Title


class IdentifyCase(Command):
    """Identify a cooperation case between two or more organisations."""

    action: Literal["case.identify"] = "case.identify"
    case: Ref
    orgs: Annotated[tuple[Ref, ...], Field(min_length=2, max_length=MAX_ITEMS["orgs"])]
    source_kind: CaseSource
    source: Ref
    title: Title


class AdvanceCase(Command):
    """Advance a cooperation case to a later stage."""

    action: Literal["case.advance"] = "case.advance"
    case: Ref
    stage: CaseStage
    project: Title | None = None


class AbandonCase(Command):
    """Record that a cooperation case was abandoned."""

    action: Literal["case.abandon"] = "case.abandon"
    case: Ref
    reason: Reason = ""


class PublishPublication(Command):
    """Publish a case study, green transition guide, country fact sheet or panorama report."""

    action: Literal["publication.publish"] = "publication.publish"
    publication: Ref
    kind: PublicationKind
    title: Title
    country: CountryCode | None = None


class UpdatePublication(Command):
    """Record an update of a publication."""

    action: Literal["publication.update"] = "publication.update"
    publication: Ref
    title: Title | None = None
    note: Note = ""

    @model_validator(mode="after")
    def _changes_something(self) -> UpdatePublication:
        # As an org update that changes nothing is refused: an update says what changed.
        if self.title is None and not self.note:
            raise fields_rule("give {0} or {1} (or both): an update says what changed", "title", "note")
        return self


class AuthorizeWriter(Command):
    """Authorize a writer: its key's signatures are then accepted on the ledger's writes."""

    name: Annotated[str, Field(max_length=73)]
    verifier: Annotated[str, Field(max_length=200)] = Field(description="the verifier key, name+hash+base64, as `ledger keygen` writes it")


class RevokeWriter(Command):
    """Revoke a writer: its key's signatures are no longer accepted from here on."""

    name: Annotated[str, Field(max_length=73)]
    reason: Reason = ""


# Writers are authorized and revoked one at a time with `ledger writer`, never by an import: they are not in the import format.
AnyCommand = Annotated[
    RegisterOrg
    | PublishOrg
    | UpdateOrg
    | AwardLabel
    | ArchiveOrg
    | ScheduleActivity
    | HoldActivity
    | CancelActivity
    | RegisterPerson
    | ForgetPerson
    | RegisterParticipant
    | AttendActivity
    | CancelRegistration
    | RequestMeeting
    | AcceptMeeting
    | DeclineMeeting
    | HoldMeeting
    | CancelMeeting
    | DeliverPitch
    | IdentifyCase
    | AdvanceCase
    | AbandonCase
    | PublishPublication
    | UpdatePublication,
    Field(discriminator="action"),
]

COMMAND: TypeAdapter[AnyCommand] = TypeAdapter(AnyCommand, config=ConfigDict(defer_build=True))
"""Parses one command from a dict or a JSON line."""

MODELS: dict[str, type[Command]] = {
    cls.model_fields["action"].default: cls for cls in Command.__subclasses__() + _ParticipantCommand.__subclasses__()
    if "action" in cls.model_fields
}
"""The command model of each action tag the import format accepts."""
TAGS: tuple[str, ...] = tuple(MODELS)
"""Every action tag the import format accepts."""
