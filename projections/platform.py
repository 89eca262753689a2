"""The platform read model: a pure fold of each aggregate's events into one JSON-ready row."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from domain.base import Aggregate, DomainEvent
from domain.errors import EventDoesNotFit
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


def _stamp(event: DomainEvent, position: int) -> dict[str, Any]:
    return {"on": event.occurred_at.date().isoformat(), "pos": position}


def fold(row: Row | None, event: DomainEvent, position: int) -> Row | None:
    """The row of an aggregate after `event` (at notification `position`); None if it has no row.

    Raises `EventDoesNotFit` (at `position`) for an event that no valid history puts after `row`.
    """
    _check_fits(row, event, position)
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


def _check_fits(row: Row | None, event: DomainEvent, position: int) -> None:
    name = type(event).__qualname__
    _check_kind(row, name, _KINDS.get(name.split(".", 1)[0]), isinstance(event, Aggregate.Created), position)


def _check_kind(row: Row | None, name: str, kind: str | None, created: bool, position: int) -> None:
    if row is None:
        if kind is not None and not created:
            raise EventDoesNotFit(position, name, "its aggregate has no creating event before it")
    elif created:
        raise EventDoesNotFit(position, name, f"its aggregate's {row.get('kind')} row already exists")
    elif row.get("kind") != kind:
        raise EventDoesNotFit(position, name, f"it does not apply to the {row.get('kind')} row of its aggregate")


def _need(row: Row | None) -> Row:
    if row is None:  # _check_kind refuses this first; kept so a row is never built from nothing
        raise EventDoesNotFit(None, "an event", "its aggregate has no creating event before it")
    return row


def _step(row: Row | None, stamp: dict[str, Any], **fields: Any) -> Row:
    row = _need(row)
    return {**row, "steps": [*row["steps"], {**stamp, **fields}]}


# The fast twin of `fold`, for rebuilds: the same rows from an event's stored (upcast, already validated) fields,
# without building the pydantic event. tests/integration/test_fast_rebuild.py proves the two equal.

FieldFold = Callable[[Row | None, dict[str, Any], int], Row | None]


def fold_fields(row: Row | None, cls: type[DomainEvent], fields: dict[str, Any], position: int) -> Row | None:
    """`fold` on the stored fields of an event of class `cls` (brought to its current version), not on the event."""
    return field_fold(cls)(row, fields, position)


@functools.cache
def field_fold(cls: type[DomainEvent]) -> FieldFold:
    """`fold_fields` for events of `cls`, with what depends only on the class worked out once."""
    name = cls.__qualname__
    kind = _KINDS.get(name.split(".", 1)[0])
    created = issubclass(cls, Aggregate.Created)
    build = _FIELD_FOLDS.get(name)
    known = frozenset(cls.model_fields)

    def fold_one(row: Row | None, fields: dict[str, Any], position: int) -> Row | None:
        if row is None or created or row.get("kind") != kind:
            _check_kind(row, name, kind, created, position)
        if build is None:
            return row
        # Stored datetimes are ISO 8601, so their first ten characters are the date `occurred_at.date()` gives.
        return build(row, fields, {"on": fields["occurred_at"][:10], "pos": position}, known)

    return fold_one


def _org_registered(row: Row | None, f: dict[str, Any], stamp: dict[str, Any], known: frozenset[str]) -> Row:
    profile = {key: f[key] for key in _PROFILE_FIELDS}
    return {"kind": "org", "ref": f["ref"], "registered": stamp, "published": None, "archived": None,
            "versions": [{**stamp, "event": "ClusterOrganisation.Registered", **profile}], "updates": [], "labels": []}


def _org_updated(row: Row | None, f: dict[str, Any], stamp: dict[str, Any], known: frozenset[str]) -> Row:
    row = _need(row)
    changes = {key: f.get(key) for key in f["changes"] if key in known}
    return {**row, "versions": [*row["versions"], {**stamp, "event": "ClusterOrganisation.Updated", **changes}],
            "updates": [*row["updates"], stamp]}


def _org_labelled(row: Row | None, f: dict[str, Any], stamp: dict[str, Any], known: frozenset[str]) -> Row:
    row = _need(row)
    return {**row, "labels": [*row["labels"], {**stamp, "level": f["level"], "valid_until": f["valid_until"]}]}


def _stamped(field: str) -> Callable[..., Row]:
    return lambda row, f, stamp, known: {**_need(row), field: stamp}


def _status(status: str) -> Callable[..., Row]:
    return lambda row, f, stamp, known: _step(row, stamp, status=status)


def _status_from(field: str) -> Callable[..., Row]:
    return lambda row, f, stamp, known: _step(row, stamp, status=f[field])


STAMP_ONLY = frozenset({
    "ClusterOrganisation.Published", "ClusterOrganisation.Archived", "Activity.Held", "Activity.Cancelled", "Participation.Reregistered",
    "Participation.Attended", "Participation.Cancelled", "BilateralMeeting.Accepted", "BilateralMeeting.Declined", "BilateralMeeting.Held",
    "CooperationCase.Abandoned", "Publication.Updated",
})
"""Event classes whose change to a row reads nothing but their effective time: a rebuild checks that time, not every field."""

_FIELD_FOLDS: dict[str, Callable[[Row | None, dict[str, Any], dict[str, Any], frozenset[str]], Row]] = {
    "ClusterOrganisation.Registered": _org_registered,
    "ClusterOrganisation.Published": _stamped("published"),
    "ClusterOrganisation.Updated": _org_updated,
    "ClusterOrganisation.LabelAwarded": _org_labelled,
    "ClusterOrganisation.Archived": _stamped("archived"),
    "Activity.Scheduled": lambda row, f, stamp, known: {
        "kind": "activity", "ref": f["ref"], "activity_kind": f["activity_kind"], "title": f["title"], "starts_on": f["starts_on"],
        "ends_on": f["ends_on"], "target_countries": list(f["target_countries"]), "scheduled": stamp, "held": None, "cancelled": None},
    "Activity.Held": _stamped("held"),
    "Activity.Cancelled": _stamped("cancelled"),
    "Participation.Registered": lambda row, f, stamp, known: {
        "kind": "participation", "ref": f["ref"], "activity": f["activity"], "participant": f["participant"],
        "participant_kind": f["participant_kind"], "steps": [{**stamp, "status": "registered"}]},
    "Participation.Reregistered": _status("registered"),
    "Participation.Attended": _status("attended"),
    "Participation.Cancelled": _status("cancelled"),
    "BilateralMeeting.Requested": lambda row, f, stamp, known: {
        "kind": "meeting", "ref": f["ref"], "activity": f["activity"], "requester": f["requester"], "partner": f["partner"],
        "steps": [{**stamp, "status": "requested"}]},
    "BilateralMeeting.Accepted": _status("accepted"),
    "BilateralMeeting.Declined": _status("declined"),
    "BilateralMeeting.Held": _status("held"),
    "BilateralMeeting.Cancelled": _status_from("outcome"),
    "Pitch.Delivered": lambda row, f, stamp, known: {
        "kind": "pitch", "ref": f["ref"], "activity": f["activity"], "org": f["org"], "delivered": stamp},
    "CooperationCase.Identified": lambda row, f, stamp, known: {
        "kind": "case", "ref": f["ref"], "orgs": list(f["orgs"]), "countries": list(f["countries"]), "source_kind": f["source_kind"],
        "source": f["source"], "steps": [{**stamp, "status": "identified"}]},
    "CooperationCase.Advanced": _status_from("stage"),
    "CooperationCase.Abandoned": _status("abandoned"),
    "Publication.Published": lambda row, f, stamp, known: {
        "kind": "publication", "ref": f["ref"], "publication_kind": f["publication_kind"], "country": f["country"],
        "published": stamp, "updates": []},
    "Publication.Updated": lambda row, f, stamp, known: {**_need(row), "updates": [*_need(row)["updates"], stamp]},
}
"""How each event class changes a row, from its stored fields: the cases of `fold`, one per class."""
