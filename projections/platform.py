"""The platform read model: a pure fold of each aggregate's events into one JSON-ready row."""

from __future__ import annotations

from typing import Any

from domain.base import Aggregate, DomainEvent
from domain.model import (
    Activity,
    BilateralMeeting,
    ClusterOrganisation,
    CooperationCase,
    Participation,
    Pitch,
    Publication,
)

Row = dict[str, Any]
FOLD_VERSION = 3
"""Bump when the fold changes, so stored rows are rebuilt."""

_PROFILE_FIELDS = ("name", "country", "region", "nuts_version", "sectors", "ecosystems", "year_established", "members")
_KINDS = {"ClusterOrganisation": "org", "Activity": "activity", "Participation": "participation", "BilateralMeeting": "meeting",
          "Pitch": "pitch", "CooperationCase": "case", "Publication": "publication"}
"""The row kind of each aggregate that has a row."""


class EventDoesNotFit(ValueError):
    """An event that cannot follow its aggregate's row: another kind's event, no creating event yet, or a second one."""


def _stamp(event: DomainEvent, position: int) -> dict[str, Any]:
    return {"on": event.occurred_at.date().isoformat(), "pos": position}


def fold(row: Row | None, event: DomainEvent, position: int) -> Row | None:
    """The row of an aggregate after `event` (at notification `position`); None if it has no row.

    Raises `EventDoesNotFit` for an event that no valid history puts after `row`.
    """
    _check_fits(row, event)
    stamp = _stamp(event, position)
    match event:
        case ClusterOrganisation.Registered():
            fields = event.model_dump(mode="json", include=set(_PROFILE_FIELDS))
            return {"kind": "org", "ref": event.ref, "registered": stamp, "published": None, "archived": None,
                    "versions": [{**stamp, "event": "ClusterOrganisation.Registered", **fields}], "updates": [], "labels": []}
        case ClusterOrganisation.Published():
            return {**_need(row), "published": stamp}
        case ClusterOrganisation.Updated():
            row = _need(row)
            changes = event.model_dump(mode="json", include=set(event.changes))
            version = {**stamp, "event": "ClusterOrganisation.Updated", **changes}
            return {**row, "versions": [*row["versions"], version], "updates": [*row["updates"], stamp]}
        case ClusterOrganisation.LabelAwarded():
            row = _need(row)
            return {**row, "labels": [*row["labels"], {**stamp, "level": event.level, "valid_until": event.valid_until.isoformat()}]}
        case ClusterOrganisation.Archived():
            return {**_need(row), "archived": stamp}
        case Activity.Scheduled():
            return {"kind": "activity", "ref": event.ref, "activity_kind": event.activity_kind, "title": event.title,
                    "starts_on": event.starts_on.isoformat(), "ends_on": event.ends_on.isoformat(),
                    "target_countries": list(event.target_countries), "scheduled": stamp, "held": None, "cancelled": None}
        case Activity.Held():
            return {**_need(row), "held": stamp}
        case Activity.Cancelled():
            return {**_need(row), "cancelled": stamp}
        case Participation.Registered():
            return {"kind": "participation", "ref": event.ref, "activity": event.activity, "participant": event.participant,
                    "participant_kind": event.participant_kind, "steps": [{**stamp, "status": "registered"}]}
        case Participation.Reregistered() | Participation.Attended() | Participation.Cancelled():
            status = {"Reregistered": "registered", "Attended": "attended", "Cancelled": "cancelled"}[type(event).__name__]
            return _step(row, stamp, status=status)
        case BilateralMeeting.Requested():
            return {"kind": "meeting", "ref": event.ref, "activity": event.activity, "requester": event.requester,
                    "partner": event.partner, "steps": [{**stamp, "status": "requested"}]}
        case BilateralMeeting.Accepted() | BilateralMeeting.Declined() | BilateralMeeting.Held():
            return _step(row, stamp, status=type(event).__name__.lower())
        case BilateralMeeting.Cancelled():
            return _step(row, stamp, status=event.outcome)
        case Pitch.Delivered():
            return {"kind": "pitch", "ref": event.ref, "activity": event.activity, "org": event.org, "delivered": stamp}
        case CooperationCase.Identified():
            return {"kind": "case", "ref": event.ref, "orgs": list(event.orgs), "countries": list(event.countries),
                    "source_kind": event.source_kind, "source": event.source, "steps": [{**stamp, "status": "identified"}]}
        case CooperationCase.Advanced():
            return _step(row, stamp, status=event.stage)
        case CooperationCase.Abandoned():
            return _step(row, stamp, status="abandoned")
        case Publication.Published():
            return {"kind": "publication", "ref": event.ref, "publication_kind": event.publication_kind,
                    "country": event.country, "published": stamp, "updates": []}
        case Publication.Updated():
            row = _need(row)
            return {**row, "updates": [*row["updates"], stamp]}
    return row


def _check_fits(row: Row | None, event: DomainEvent) -> None:
    name = type(event).__qualname__
    kind = _KINDS.get(name.split(".", 1)[0])
    if row is None:
        if kind is not None and not isinstance(event, Aggregate.Created):
            raise EventDoesNotFit(f"{name} arrived before the event that creates its aggregate")
    elif isinstance(event, Aggregate.Created):
        raise EventDoesNotFit(f"{name} would create again an aggregate whose {row.get('kind')} row exists")
    elif row.get("kind") != kind:
        raise EventDoesNotFit(f"{name} does not apply to the {row.get('kind')} row of its aggregate")


def _need(row: Row | None) -> Row:
    if row is None:
        raise EventDoesNotFit("an event arrived before the event that creates its aggregate")
    return row


def _step(row: Row | None, stamp: dict[str, Any], **fields: Any) -> Row:
    row = _need(row)
    return {**row, "steps": [*row["steps"], {**stamp, **fields}]}


# The fast twin of `fold`, for rebuilds: the same rows from an event's stored (upcast, already validated) fields,
# without building the pydantic event. tests/integration/test_fast_rebuild.py proves the two equal.

_STEP_STATUS = {
    "Participation.Reregistered": "registered", "Participation.Attended": "attended", "Participation.Cancelled": "cancelled",
    "BilateralMeeting.Accepted": "accepted", "BilateralMeeting.Declined": "declined", "BilateralMeeting.Held": "held",
    "CooperationCase.Abandoned": "abandoned",
}


def fold_fields(row: Row | None, cls: type[DomainEvent], fields: dict[str, Any], position: int) -> Row | None:
    """`fold` on the stored fields of an event of class `cls` (brought to its current version), not on the event."""
    name = cls.__qualname__
    _check_fits_class(row, cls, name)
    # Stored datetimes are ISO 8601, so their first ten characters are the date `occurred_at.date()` gives.
    stamp = {"on": fields["occurred_at"][:10], "pos": position}
    if name == "ClusterOrganisation.Registered":
        profile = {key: fields[key] for key in _PROFILE_FIELDS}
        return {"kind": "org", "ref": fields["ref"], "registered": stamp, "published": None, "archived": None,
                "versions": [{**stamp, "event": name, **profile}], "updates": [], "labels": []}
    if name == "ClusterOrganisation.Published":
        return {**_need(row), "published": stamp}
    if name == "ClusterOrganisation.Updated":
        row = _need(row)
        known = cls.model_fields
        changes = {key: fields.get(key) for key in fields["changes"] if key in known}
        return {**row, "versions": [*row["versions"], {**stamp, "event": name, **changes}], "updates": [*row["updates"], stamp]}
    if name == "ClusterOrganisation.LabelAwarded":
        row = _need(row)
        return {**row, "labels": [*row["labels"], {**stamp, "level": fields["level"], "valid_until": fields["valid_until"]}]}
    if name == "ClusterOrganisation.Archived":
        return {**_need(row), "archived": stamp}
    if name == "Activity.Scheduled":
        return {"kind": "activity", "ref": fields["ref"], "activity_kind": fields["activity_kind"], "title": fields["title"],
                "starts_on": fields["starts_on"], "ends_on": fields["ends_on"], "target_countries": list(fields["target_countries"]),
                "scheduled": stamp, "held": None, "cancelled": None}
    if name == "Activity.Held":
        return {**_need(row), "held": stamp}
    if name == "Activity.Cancelled":
        return {**_need(row), "cancelled": stamp}
    if name == "Participation.Registered":
        return {"kind": "participation", "ref": fields["ref"], "activity": fields["activity"], "participant": fields["participant"],
                "participant_kind": fields["participant_kind"], "steps": [{**stamp, "status": "registered"}]}
    if name == "BilateralMeeting.Requested":
        return {"kind": "meeting", "ref": fields["ref"], "activity": fields["activity"], "requester": fields["requester"],
                "partner": fields["partner"], "steps": [{**stamp, "status": "requested"}]}
    if name == "BilateralMeeting.Cancelled":
        return _step(row, stamp, status=fields["outcome"])
    if name == "CooperationCase.Advanced":
        return _step(row, stamp, status=fields["stage"])
    status = _STEP_STATUS.get(name)
    if status is not None:
        return _step(row, stamp, status=status)
    if name == "Pitch.Delivered":
        return {"kind": "pitch", "ref": fields["ref"], "activity": fields["activity"], "org": fields["org"], "delivered": stamp}
    if name == "CooperationCase.Identified":
        return {"kind": "case", "ref": fields["ref"], "orgs": list(fields["orgs"]), "countries": list(fields["countries"]),
                "source_kind": fields["source_kind"], "source": fields["source"], "steps": [{**stamp, "status": "identified"}]}
    if name == "Publication.Published":
        return {"kind": "publication", "ref": fields["ref"], "publication_kind": fields["publication_kind"],
                "country": fields["country"], "published": stamp, "updates": []}
    if name == "Publication.Updated":
        row = _need(row)
        return {**row, "updates": [*row["updates"], stamp]}
    return row


def _check_fits_class(row: Row | None, cls: type[DomainEvent], name: str) -> None:
    kind = _KINDS.get(name.split(".", 1)[0])
    created = issubclass(cls, Aggregate.Created)
    if row is None:
        if kind is not None and not created:
            raise EventDoesNotFit(f"{name} arrived before the event that creates its aggregate")
    elif created:
        raise EventDoesNotFit(f"{name} would create again an aggregate whose {row.get('kind')} row exists")
    elif row.get("kind") != kind:
        raise EventDoesNotFit(f"{name} does not apply to the {row.get('kind')} row of its aggregate")
