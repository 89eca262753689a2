"""Small builders of valid commands, so each test states only what it is about."""

from __future__ import annotations

import itertools
from typing import Any

from service_layer import commands as c

_ids = itertools.count(1)


def new_ref(prefix: str) -> str:
    """A reference no other test uses."""
    return f"{prefix}-{next(_ids):05d}"


def org(ref: str, **overrides: Any) -> c.RegisterOrg:
    fields: dict[str, Any] = {
        "org": ref, "name": f"Cluster {ref}", "country": "IT", "region": "ITC4",
        "sectors": ("software",), "ecosystems": ("digital",), "year_established": 2012,
        "members": {"smes": 40, "large_enterprises": 3, "research_organisations": 2},
        "occurred_at": "2024-01-10",
    }
    fields.update(overrides)
    return c.RegisterOrg.model_validate(fields)


def activity(ref: str, kind: str = "matchmaking", **overrides: Any) -> c.ScheduleActivity:
    fields: dict[str, Any] = {
        "activity": ref, "kind": kind, "title": f"Event {ref}", "starts_on": "2024-03-01",
        "ends_on": "2024-03-02", "place": "Milan", "occurred_at": "2024-01-15",
    }
    fields.update(overrides)
    return c.ScheduleActivity.model_validate(fields)


def register(activity_ref: str, org_ref: str, at: str = "2024-02-01") -> c.RegisterParticipant:
    return c.RegisterParticipant(activity=activity_ref, org=org_ref, occurred_at=at)


def matchmaking_with_two_orgs() -> tuple[list[c.Command], str, str, str]:
    """Commands for an event with two registered organisations; returns them and the refs."""
    a, b, event = new_ref("ORG"), new_ref("ORG"), new_ref("MM")
    return [org(a), org(b, country="DE", region="DE3"), activity(event), register(event, a), register(event, b)], event, a, b
