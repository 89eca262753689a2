"""Which event types and versions a ledger holds, and whether this code can read each, before anything replays them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from adapters.mapper import CATALOGUE
from domain.catalogue import VERSION_KEY, EventCatalogue
from domain.errors import UnreadableEvent


@dataclass(frozen=True)
class StoredType:
    """One event type at one class version, as stored: how many, where first, and why it cannot be read (if so)."""

    topic: str
    version: int
    count: int
    first_position: int
    problem: str | None

    @property
    def readable(self) -> bool:
        return self.problem is None


def stored_types(recorder: ApplicationRecorder, after: int = 0) -> list[tuple[str, int, int, int]]:
    """(topic, version, count, first position) after position `after`: by one query where the store has one, else by a scan."""
    query = getattr(recorder, "stored_types", None)
    if query is not None:
        return list(query(after))
    found: dict[tuple[str, int], list[int]] = {}
    position = after
    while page := list(recorder.select_notifications(start=position + 1, limit=1000)):
        for n in page:
            version = _version(n.state)
            entry = found.setdefault((n.topic, version), [0, n.id])
            entry[0] += 1
        position = page[-1].id
    return sorted(((t, v, c, first) for (t, v), (c, first) in found.items()), key=lambda row: row[3])


def _version(state: bytes) -> int:
    try:
        fields: Any = json.loads(state)
    except ValueError:
        return 1
    value = fields.get(VERSION_KEY, 1) if isinstance(fields, dict) else 1
    return value if isinstance(value, int) else 0


def problem(topic: str, state: bytes, catalogue: EventCatalogue = CATALOGUE) -> str | None:
    """Why this code cannot read one stored event, or None if it can."""
    return catalogue.readable(topic, _version(state))


def check(recorder: ApplicationRecorder, after: int = 0, catalogue: EventCatalogue = CATALOGUE) -> list[StoredType]:
    """Every stored (type, version) after `after`, oldest first, with the reason this code cannot read it, if any."""
    return [StoredType(topic, version, count, first, catalogue.readable(topic, version)) for topic, version, count, first in stored_types(recorder, after)]


def require_readable(recorder: ApplicationRecorder, after: int = 0, catalogue: EventCatalogue = CATALOGUE) -> None:
    """Raise UnreadableEvent for the first stored event after `after` that this code cannot read, before any replay starts."""
    for stored in check(recorder, after, catalogue):
        if stored.problem is not None:
            raise UnreadableEvent(stored.topic, stored.version, stored.first_position, f"{stored.problem}; run `ledger db check` for every type")
