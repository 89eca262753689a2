"""Listings of the platform's records from the read model's rows: each record's current state, filtered as an admin asks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, get_args

from domain.errors import InvalidValue
from domain.values import CaseStage, MeetingEnd
from projections.platform import Row

KINDS = {
    "orgs": "org", "activities": "activity", "participants": "participation", "meetings": "meeting", "pitches": "pitch",
    "cases": "case", "publications": "publication",
}
"""What `ledger list` names each kind of record, and the kind of its rows."""
STATUSES = {
    "orgs": ("registered", "published", "archived"),
    "activities": ("scheduled", "held", "cancelled"),
    "participants": ("registered", "attended", "cancelled"),
    "meetings": ("requested", "accepted", "declined", "held", *get_args(MeetingEnd)),
    "pitches": ("delivered",),
    "cases": (*get_args(CaseStage), "abandoned"),
    "publications": ("published", "updated"),
}
"""The statuses a record of each kind can be in: the last step it took."""


@dataclass(frozen=True)
class Filters:
    """What a listing keeps: records of a country, created within a period (or running within it, for activities), of one
    activity (a case's: the one it came from) or organisation, in one status. None keeps every record."""

    country: str | None = None
    start: date | None = None
    end: date | None = None
    activity: str | None = None
    org: str | None = None
    status: str | None = None


def check_status(kind: str, status: str) -> None:
    """Refuse (InvalidValue) a status that no record of `kind` can be in, naming those it can."""
    if status not in STATUSES[kind]:
        raise InvalidValue("status", status, f"not a status of {kind} (one of: {', '.join(STATUSES[kind])})")


def listing(rows: Iterable[Row], kind: str, filters: Filters) -> list[dict[str, Any]]:
    """The current state of every record of `kind` among `rows` that passes `filters`, ordered by reference."""
    described = (_DESCRIBE[kind](row) for row in rows if row.get("kind") == KINDS[kind])
    return sorted((r for r in described if _keeps(r, filters)), key=lambda r: r["ref"])


def _keeps(record: dict[str, Any], f: Filters) -> bool:
    if f.country is not None and f.country not in record["_countries"]:
        return False
    if f.activity is not None and record["_activity"] != f.activity:
        return False
    if f.org is not None and f.org not in record["_orgs"]:
        return False
    if f.status is not None and record["status"] != f.status:
        return False
    first, last = record["_during"]
    if f.start is not None and last < f.start.isoformat():
        return False
    return not (f.end is not None and first > f.end.isoformat())


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A listed record without the keys only the filters read."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _last_status(row: Row) -> str:
    return str(row["steps"][-1]["status"])


def _org(row: Row) -> dict[str, Any]:
    profile: dict[str, Any] = {}
    for version in sorted(row["versions"], key=lambda v: v["pos"]):  # the latest recorded change wins, as in the record's state
        profile.update({k: v for k, v in version.items() if k not in ("on", "pos", "event")})
    status = "archived" if row["archived"] else "published" if row["published"] else "registered"
    return {
        "ref": row["ref"], "name": profile.get("name"), "country": profile.get("country"), "region": profile.get("region"),
        "ecosystems": profile.get("ecosystems") or [], "status": status, "registered_on": row["registered"]["on"],
        "labels": [label["level"] for label in row["labels"]],
        "_countries": {profile.get("country")}, "_orgs": {row["ref"]}, "_activity": None, "_during": (row["registered"]["on"],) * 2,
    }


def _activity(row: Row) -> dict[str, Any]:
    status = "cancelled" if row["cancelled"] else "held" if row["held"] else "scheduled"
    return {
        "ref": row["ref"], "kind": row["activity_kind"], "title": row["title"], "starts_on": row["starts_on"], "ends_on": row["ends_on"],
        "status": status, "target_countries": row["target_countries"],
        "_countries": set(row["target_countries"]), "_orgs": set(), "_activity": row["ref"], "_during": (row["starts_on"], row["ends_on"]),
    }


def _participation(row: Row) -> dict[str, Any]:
    registered = row["steps"][0]["on"]
    return {
        "ref": row["ref"], "activity": row["activity"], "participant": row["participant"], "participant_kind": row["participant_kind"],
        "status": _last_status(row), "registered_on": registered,
        "_countries": set(), "_orgs": {row["participant"]}, "_activity": row["activity"], "_during": (registered, registered),
    }


def _meeting(row: Row) -> dict[str, Any]:
    requested = row["steps"][0]["on"]
    return {
        "ref": row["ref"], "activity": row["activity"], "requester": row["requester"], "partner": row["partner"],
        "status": _last_status(row), "requested_on": requested,
        "_countries": set(), "_orgs": {row["requester"], row["partner"]}, "_activity": row["activity"], "_during": (requested, requested),
    }


def _pitch(row: Row) -> dict[str, Any]:
    delivered = row["delivered"]["on"]
    return {
        "ref": row["ref"], "activity": row["activity"], "org": row["org"], "status": "delivered", "delivered_on": delivered,
        "_countries": set(), "_orgs": {row["org"]}, "_activity": row["activity"], "_during": (delivered, delivered),
    }


def _case(row: Row) -> dict[str, Any]:
    identified = row["steps"][0]["on"]
    return {
        "ref": row["ref"], "orgs": row["orgs"], "countries": row["countries"], "source": row["source"], "status": _last_status(row),
        "identified_on": identified,
        "_countries": set(row["countries"]), "_orgs": set(row["orgs"]), "_activity": row["source"], "_during": (identified, identified),
    }


def _publication(row: Row) -> dict[str, Any]:
    published = row["published"]["on"]
    return {
        "ref": row["ref"], "kind": row["publication_kind"], "country": row["country"], "status": "updated" if row["updates"] else "published",
        "published_on": published, "updates": len(row["updates"]),
        "_countries": {row["country"]}, "_orgs": set(), "_activity": None, "_during": (published, published),
    }


_DESCRIBE = {
    "orgs": _org, "activities": _activity, "participants": _participation, "meetings": _meeting, "pitches": _pitch, "cases": _case,
    "publications": _publication,
}


def limited(records: list[dict[str, Any]], limit: int | None) -> Iterator[dict[str, Any]]:
    """The first `limit` records (all if None), without the keys only the filters read."""
    return (public(r) for r in (records if limit is None else records[:limit]))
