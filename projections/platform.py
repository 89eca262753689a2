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
