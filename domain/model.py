"""The platform's aggregates: profiles, activities, participations, meetings, pitches, cases, publications."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain.base import Action, Aggregate, digest_action_key, idempotent
from domain.errors import (
    ActivityClosed,
    AlreadyForgotten,
    AlreadyPublished,
    CaseClosed,
    InvalidValue,
    MeetingClosed,
    NothingChanged,
    NotRegistered,
    ProfileArchived,
    StageNotForward,
    WrongActivityKind,
)
from domain.values import (
    CASE_STAGES,
    ActivityKind,
    CaseSource,
    CaseStage,
    CountryCode,
    Ecosystem,
    LabelLevel,
    MeetingEnd,
    Members,
    PublicationKind,
    participation_ref,
)
from domain.nuts import NutsVersion, classify


def _check_ecosystems(ecosystems: tuple[str, ...]) -> None:
    if not ecosystems:
        raise InvalidValue("ecosystems", list(ecosystems), "at least one ecosystem is required")


class ClusterOrganisation(Aggregate):
    """A cluster organisation's public profile on the platform."""

    kind = "cluster organisation"
    created_as = "registration"

    class Registered(Aggregate.Created):
        class_version: ClassVar[int] = 3
        upcast_v2_v3 = staticmethod(digest_action_key)
        name: str
        country: CountryCode
        region: str | None
        nuts_version: NutsVersion
        sectors: tuple[str, ...]
        ecosystems: tuple[Ecosystem, ...]
        year_established: int
        members: Members

        @staticmethod
        def upcast_v1_v2(fields: dict[str, Any]) -> dict[str, Any]:
            """Version 1 checked every region against NUTS 2024, the only classification it knew."""
            return {**fields, "nuts_version": "2024"}

        def apply(self, org: ClusterOrganisation) -> None:
            org.ref = self.ref
            org.name, org.country, org.region, org.nuts_version = self.name, self.country, self.region, self.nuts_version
            org.sectors, org.ecosystems = self.sectors, self.ecosystems
            org.year_established, org.members = self.year_established, self.members
            org.published = False
            org.archived = False
            org.labels = ()

    class Published(Aggregate.Event):
        def apply(self, org: ClusterOrganisation) -> None:
            org.published = True

    class Updated(Aggregate.Event):
        class_version: ClassVar[int] = 3
        upcast_v2_v3 = staticmethod(digest_action_key)
        changes: tuple[str, ...]
        name: str | None = None
        country: CountryCode | None = None
        region: str | None = None
        nuts_version: NutsVersion | None = None
        sectors: tuple[str, ...] | None = None
        ecosystems: tuple[Ecosystem, ...] | None = None
        year_established: int | None = None
        members: Members | None = None

        @staticmethod
        def upcast_v1_v2(fields: dict[str, Any]) -> dict[str, Any]:
            """Version 2 records `nuts_version` when the classification changes; in version 1 it never did (always 2024)."""
            return dict(fields)

        def apply(self, org: ClusterOrganisation) -> None:
            for name in self.changes:
                setattr(org, name, getattr(self, name))

    class LabelAwarded(Aggregate.Event):
        level: LabelLevel
        valid_until: date

        def apply(self, org: ClusterOrganisation) -> None:
            org.labels = (*org.labels, (self.level, self.valid_until))

    class Archived(Aggregate.Event):
        reason: str

        def apply(self, org: ClusterOrganisation) -> None:
            org.archived = True


    @classmethod
    def register(cls, ref: str, action: Action, **fields: Any) -> ClusterOrganisation:
        _check_ecosystems(fields["ecosystems"])
        nuts_version = classify(fields["country"], fields.get("region"), fields.pop("nuts_version", None), action.occurred_at.date())
        _check_year(fields["year_established"], action)
        return cls.start(cls.Registered, ref, action, nuts_version=nuts_version, **fields)

    def _check_open(self) -> None:
        if self.archived:
            raise ProfileArchived(f"org: {self.ref!r} is archived")

    @idempotent
    def publish(self, action: Action) -> None:
        self._check_open()
        if self.published:
            raise AlreadyPublished(f"org: {self.ref!r} is already published")
        self.emit(self.Published, action)

    @idempotent
    def update(self, action: Action, **fields: Any) -> None:
        self._check_open()
        changes = {k: v for k, v in fields.items() if v is not None and getattr(self, k) != v}
        if not changes:
            raise NothingChanged(f"org: {self.ref!r}: the update changes no field")
        _check_ecosystems(changes.get("ecosystems", self.ecosystems))
        if changes.keys() & {"country", "region", "nuts_version"}:
            # A new place is classified anew; the classification is recorded only when it changes.
            country, region = changes.get("country", self.country), changes.get("region", self.region)
            nuts_version = classify(country, region, changes.pop("nuts_version", None), action.occurred_at.date())
            if nuts_version != self.nuts_version:
                changes["nuts_version"] = nuts_version
            if not changes:
                raise NothingChanged(f"org: {self.ref!r}: the update changes no field")
        if "year_established" in changes:
            _check_year(changes["year_established"], action)
        self.emit(self.Updated, action, changes=tuple(sorted(changes)), **changes)

    @idempotent
    def award_label(self, action: Action, level: str, valid_until: date) -> None:
        self._check_open()
        if valid_until <= action.occurred_at.date():
            raise InvalidValue("valid_until", valid_until.isoformat(), "must be after the award date")
        self.emit(self.LabelAwarded, action, level=level, valid_until=valid_until)

    @idempotent
    def archive(self, action: Action, reason: str) -> None:
        self._check_open()
        self.emit(self.Archived, action, reason=reason)


def _check_year(year: int, action: Action) -> None:
    if not 1800 <= year <= action.occurred_at.year:
        raise InvalidValue("year_established", year, f"must be between 1800 and {action.occurred_at.year}")


class Activity(Aggregate):
    """A platform activity: matchmaking event, webinar, regional event, lab, academy or mission."""

    kind = "activity"
    created_as = "scheduling"

    class Scheduled(Aggregate.Created):
        activity_kind: ActivityKind
        title: str
        starts_on: date
        ends_on: date
        place: str | None
        online: bool
        target_countries: tuple[CountryCode, ...]

        def apply(self, activity: Activity) -> None:
            activity.ref = self.ref
            activity.activity_kind = self.activity_kind
            activity.title = self.title
            activity.starts_on, activity.ends_on = self.starts_on, self.ends_on
            activity.status = "scheduled"

    class Held(Aggregate.Event):
        def apply(self, activity: Activity) -> None:
            activity.status = "held"

    class Cancelled(Aggregate.Event):
        reason: str

        def apply(self, activity: Activity) -> None:
            activity.status = "cancelled"


    @classmethod
    def schedule(cls, ref: str, action: Action, **fields: Any) -> Activity:
        if fields["ends_on"] < fields["starts_on"]:
            raise InvalidValue("ends_on", fields["ends_on"].isoformat(), "is before starts_on")
        if not fields["online"] and not fields.get("place"):
            raise InvalidValue("place", fields.get("place"), "an activity that is not online needs a place")
        return cls.start(cls.Scheduled, ref, action, **fields)

    def check_open(self) -> None:
        """Refuse changes to a cancelled activity."""
        if self.status == "cancelled":
            raise ActivityClosed(f"activity: {self.ref!r} was cancelled")

    def check_kind(self, allowed: tuple[str, ...], what: str) -> None:
        """Refuse `what` unless this activity is of one of the `allowed` kinds."""
        if self.activity_kind not in allowed:
            raise WrongActivityKind(
                f"activity: {self.ref!r} is a {self.activity_kind}; {what} needs {' or '.join(allowed)}"
            )

    @idempotent
    def hold(self, action: Action) -> None:
        if self.status != "scheduled":
            raise ActivityClosed(f"activity: {self.ref!r} is already {self.status}")
        action.check_not_before(self.starts_on, f"the first day (starts_on) of {self.ref}")
        self.emit(self.Held, action)

    @idempotent
    def cancel(self, action: Action, reason: str) -> None:
        if self.status != "scheduled":
            raise ActivityClosed(f"activity: {self.ref!r} is already {self.status}")
        self.emit(self.Cancelled, action, reason=reason)


class Person(Aggregate):
    """A natural person, known to events only by a pseudonymous reference."""

    kind = "person"
    created_as = "registration"

    class Registered(Aggregate.Created):
        def apply(self, person: Person) -> None:
            person.ref = self.ref
            person.forgotten = False

    class Forgotten(Aggregate.Event):
        """The person's name and e-mail were erased; the event itself holds none."""

        reason: str

        def apply(self, person: Person) -> None:
            person.forgotten = True

    @classmethod
    def register(cls, ref: str, action: Action) -> Person:
        return cls.start(cls.Registered, ref, action)

    @idempotent
    def forget(self, action: Action, reason: str) -> None:
        if self.forgotten:
            raise AlreadyForgotten(f"person: {self.ref!r} was already forgotten")
        self.emit(self.Forgotten, action, reason=reason)


class Participation(Aggregate):
    """One participant's registration for one activity, and what became of it."""

    kind = "participation"
    created_as = "registration"

    class Registered(Aggregate.Created):
        activity: str
        participant: str
        participant_kind: str

        def apply(self, p: Participation) -> None:
            p.ref, p.activity, p.participant = self.ref, self.activity, self.participant
            p.status = "registered"

    class Reregistered(Aggregate.Event):
        def apply(self, p: Participation) -> None:
            p.status = "registered"

    class Attended(Aggregate.Event):
        def apply(self, p: Participation) -> None:
            p.status = "attended"

    class Cancelled(Aggregate.Event):
        def apply(self, p: Participation) -> None:
            p.status = "cancelled"


    @property
    def is_registered(self) -> bool:
        """True while the registration stands (registered or attended)."""
        return self.status in ("registered", "attended")

    @classmethod
    def register(cls, action: Action, activity: Activity, participant: ClusterOrganisation | Person, participant_kind: str) -> Participation:
        action.check_not_before(activity.created_at, activity.described())
        action.check_not_before(participant.created_at, participant.described())
        return cls.start(
            cls.Registered,
            participation_ref(activity.ref, participant.ref),
            action,
            activity=activity.ref,
            participant=participant.ref,
            participant_kind=participant_kind,
        )

    def described(self) -> str:
        return f"the registration of {self.participant} for {self.activity}"

    @idempotent
    def register_again(self, action: Action) -> None:
        """A repeated registration is recorded; a participant still counts once."""
        self.emit(self.Reregistered, action)

    @idempotent
    def attend(self, action: Action) -> None:
        if self.status == "cancelled":
            raise NotRegistered(f"participant: {self.participant!r} cancelled the registration for {self.activity!r}")
        self.emit(self.Attended, action)

    @idempotent
    def cancel(self, action: Action) -> None:
        if self.status != "registered":
            raise NotRegistered(f"participant: {self.participant!r} is {self.status} for {self.activity!r}")
        self.emit(self.Cancelled, action)


class BilateralMeeting(Aggregate):
    """A bilateral meeting between two participating organisations of one activity."""

    kind = "bilateral meeting"
    created_as = "request"

    class Requested(Aggregate.Created):
        activity: str
        requester: str
        partner: str

        def apply(self, m: BilateralMeeting) -> None:
            m.ref, m.activity, m.requester, m.partner = self.ref, self.activity, self.requester, self.partner
            m.status = "requested"
            m.accepted_at = None

    class Accepted(Aggregate.Event):
        def apply(self, m: BilateralMeeting) -> None:
            m.status = "accepted"
            m.accepted_at = self.occurred_at

    class Declined(Aggregate.Event):
        def apply(self, m: BilateralMeeting) -> None:
            m.status = "declined"

    class Held(Aggregate.Event):
        def apply(self, m: BilateralMeeting) -> None:
            m.status = "held"

    class Cancelled(Aggregate.Event):
        outcome: MeetingEnd

        def apply(self, m: BilateralMeeting) -> None:
            m.status = self.outcome


    @classmethod
    def request(
        cls, ref: str, action: Action, activity: Activity, requester: Participation, partner: Participation
    ) -> BilateralMeeting:
        activity.check_kind(("matchmaking", "mission"), "a bilateral meeting")
        activity.check_open()
        if requester.participant == partner.participant:
            raise InvalidValue("partner", partner.participant, "a meeting needs two different organisations")
        _check_both_registered(requester, partner)
        action.check_not_before(activity.created_at, activity.described())
        _check_registered_by(action, requester, partner)
        return cls.start(
            cls.Requested,
            ref,
            action,
            activity=activity.ref,
            requester=requester.participant,
            partner=partner.participant,
        )

    def _check_status(self, allowed: tuple[str, ...], what: str) -> None:
        if self.status not in allowed:
            raise MeetingClosed(f"meeting: {self.ref!r} is {self.status}; it cannot be {what}")

    @idempotent
    def accept(self, action: Action) -> None:
        self._check_status(("requested",), "accepted")
        self.emit(self.Accepted, action)

    @idempotent
    def decline(self, action: Action) -> None:
        self._check_status(("requested",), "declined")
        self.emit(self.Declined, action)

    @idempotent
    def hold(self, action: Action, requester: Participation, partner: Participation) -> None:
        self._check_status(("requested", "accepted"), "held")
        _check_both_registered(requester, partner)
        _check_registered_by(action, requester, partner)
        if self.accepted_at is not None:
            action.check_not_before(self.accepted_at, f"the acceptance of {self.ref}")
        self.emit(self.Held, action)

    @idempotent
    def cancel(self, action: Action, outcome: str) -> None:
        self._check_status(("requested", "accepted"), outcome.replace("_", "-"))
        self.emit(self.Cancelled, action, outcome=outcome)


def _check_both_registered(*participations: Participation) -> None:
    for p in participations:
        if not p.is_registered:
            raise NotRegistered(f"org: {p.participant!r} is not registered for activity {p.activity!r}")


def _check_registered_by(action: Action, *participations: Participation) -> None:
    for p in participations:
        action.check_not_before(p.created_at, p.described())


class Pitch(Aggregate):
    """A pitching session delivered by an organisation at an activity."""

    kind = "pitch"
    created_as = "delivery"

    class Delivered(Aggregate.Created):
        activity: str
        org: str
        title: str

        def apply(self, pitch: Pitch) -> None:
            pitch.ref, pitch.activity, pitch.org, pitch.title = self.ref, self.activity, self.org, self.title


    @classmethod
    def deliver(cls, ref: str, action: Action, activity: Activity, org: ClusterOrganisation, title: str) -> Pitch:
        activity.check_open()
        for record in (activity, org):
            action.check_not_before(record.created_at, record.described())
        return cls.start(cls.Delivered, ref, action, activity=activity.ref, org=org.ref, title=title)


class CooperationCase(Aggregate):
    """A cooperation between two or more organisations, from identification to a joint project."""

    kind = "cooperation case"
    created_as = "identification"

    class Identified(Aggregate.Created):
        orgs: tuple[str, ...]
        countries: tuple[CountryCode, ...]
        source_kind: CaseSource
        source: str
        title: str

        def apply(self, case: CooperationCase) -> None:
            case.ref, case.orgs, case.title = self.ref, self.orgs, self.title
            case.stage = "identified"
            case.stage_at = self.occurred_at
            case.abandoned = False

    class Advanced(Aggregate.Event):
        stage: CaseStage
        project: str | None = None

        def apply(self, case: CooperationCase) -> None:
            case.stage = self.stage
            case.stage_at = self.occurred_at

    class Abandoned(Aggregate.Event):
        reason: str

        def apply(self, case: CooperationCase) -> None:
            case.abandoned = True


    @classmethod
    def identify(
        cls,
        ref: str,
        action: Action,
        orgs: tuple[ClusterOrganisation, ...],
        source_kind: str,
        source: BilateralMeeting | Activity,
        title: str,
    ) -> CooperationCase:
        refs = tuple(o.ref for o in orgs)
        if len(set(refs)) < 2:
            raise InvalidValue("orgs", list(refs), "a cooperation case needs two or more different organisations")
        if source_kind == "meeting":
            if not isinstance(source, BilateralMeeting):
                raise InvalidValue("source", source.ref, "is not a bilateral meeting")
        elif not isinstance(source, Activity):
            raise InvalidValue("source", source.ref, "is not an activity")
        else:
            source.check_kind(("mission",) if source_kind == "mission" else ("c2lab",), f"a case from a {source_kind}")
        for record in (*orgs, source):
            action.check_not_before(record.created_at, record.described())
        return cls.start(
            cls.Identified,
            ref,
            action,
            orgs=refs,
            countries=tuple(o.country for o in orgs),
            source_kind=source_kind,
            source=source.ref,
            title=title,
        )

    @idempotent
    def advance(self, action: Action, stage: str, project: str | None) -> None:
        if self.abandoned:
            raise CaseClosed(f"case: {self.ref!r} was abandoned")
        if CASE_STAGES.index(stage) <= CASE_STAGES.index(self.stage):
            raise StageNotForward(f"stage: {stage!r} does not come after {self.stage!r} for case {self.ref!r}")
        self._check_after_stage(action)
        self.emit(self.Advanced, action, stage=stage, project=project)

    @idempotent
    def abandon(self, action: Action, reason: str) -> None:
        if self.abandoned:
            raise CaseClosed(f"case: {self.ref!r} was already abandoned")
        if self.stage == CASE_STAGES[-1]:
            raise CaseClosed(f"case: {self.ref!r} already launched a joint project")
        self._check_after_stage(action)
        self.emit(self.Abandoned, action, reason=reason)

    def _check_after_stage(self, action: Action) -> None:
        if self.stage != "identified":  # the identification itself is checked as the case's creation
            action.check_not_before(self.stage_at, f"the {self.stage.replace('_', ' ')} stage of {self.ref}")


class Publication(Aggregate):
    """A case study, green transition guide, country fact sheet or panorama report."""

    kind = "publication"
    created_as = "first publishing"

    class Published(Aggregate.Created):
        publication_kind: PublicationKind
        title: str
        country: CountryCode | None

        def apply(self, pub: Publication) -> None:
            pub.ref, pub.publication_kind, pub.title, pub.country = (
                self.ref,
                self.publication_kind,
                self.title,
                self.country,
            )

    class Updated(Aggregate.Event):
        title: str | None
        note: str

        def apply(self, pub: Publication) -> None:
            if self.title is not None:
                pub.title = self.title


    @classmethod
    def publish(cls, ref: str, action: Action, publication_kind: str, title: str, country: str | None) -> Publication:
        if publication_kind == "country_fact_sheet" and country is None:
            raise InvalidValue("country", None, "a country fact sheet needs a country")
        return cls.start(cls.Published, ref, action, publication_kind=publication_kind, title=title, country=country)

    @idempotent
    def update(self, action: Action, title: str | None, note: str) -> None:
        self.emit(self.Updated, action, title=title, note=note)


AGGREGATES: tuple[type[Aggregate], ...] = (
    ClusterOrganisation,
    Activity,
    Person,
    Participation,
    BilateralMeeting,
    Pitch,
    CooperationCase,
    Publication,
)
