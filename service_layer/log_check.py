"""Which event types and versions a ledger holds, whether this code can read each, and whether every stored event can be
replayed, before anything replays them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any

from eventsourcing.persistence import ApplicationRecorder

from adapters import scan
from adapters.mapper import CATALOGUE
from domain.catalogue import VERSION_KEY, EventCatalogue
from domain.errors import AlteredId, UnreadableEvent, UnreplayableEvent
from projections import runner
from projections.platform import Row


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
    """Raise UnreadableEvent for the first stored event after `after` that this code cannot read, and AlteredId for the first
    whose aggregate id was respelled, before any replay starts."""
    for stored in check(recorder, after, catalogue):
        if stored.problem is not None:
            raise UnreadableEvent(stored.topic, stored.version, stored.first_position, f"{stored.problem}; run `ledger db check` for every type")
    altered = altered_ids(recorder, after)
    if altered:
        raise AlteredId(*altered[0])


def altered_ids(recorder: ApplicationRecorder, after: int = 0) -> list[tuple[int, str]]:
    """(position, stored id) of the events after `after` whose aggregate id is not written as the ledger writes ids.

    Only a store that keeps ids as text can hold another spelling; PostgreSQL's uuid column cannot.
    """
    query = getattr(recorder, "altered_ids", None)
    return [] if query is None else list(query(after))


@dataclass(frozen=True)
class ReplayProblem:
    """One kind of stored event a replay cannot apply: the first of them by position, why, and how many there are."""

    kind: str
    position: int
    message: str
    count: int


def dry_run(recorder: ApplicationRecorder, catalogue: EventCatalogue = CATALOGUE) -> list[ReplayProblem]:
    """Fold every stored event as a rebuild does, each one decoded and validated, writing nothing: the first event (by
    position) of each kind of problem, in order of position.

    A record's events after one that cannot be applied are not folded (its row is undefined from there on).
    """
    fold = runner.checked_fold(catalogue)
    first: dict[str, UnreplayableEvent] = {}
    counts: dict[str, int] = {}
    key: str | None = None
    row: Row | None = None
    broken = False
    for event_key, position, topic, state in _by_aggregate(recorder):
        if event_key != key:
            key, row, broken = event_key, None, False
        if broken:
            continue
        try:
            runner.placed(event_key, position)
            row = fold(row, topic, state, position)
        except UnreplayableEvent as error:
            if error.position is None:
                error.position = position
            counts[error.kind] = counts.get(error.kind, 0) + 1
            if error.kind not in first or error.position < (first[error.kind].position or 0):
                first[error.kind] = error
            broken = True
    found = [ReplayProblem(kind, e.position or 0, str(e), counts[kind]) for kind, e in first.items()]
    return sorted(found, key=lambda p: p.position)


def _by_aggregate(recorder: ApplicationRecorder) -> Iterator[scan.StoredRow]:
    """Every stored event, aggregate by aggregate: by the store's own scan where it has one, else from the log in memory."""
    upto = recorder.max_notification_id() or 0
    if scan.can_scan(recorder):
        yield from scan.by_aggregate(recorder, upto)
        return
    events = [(n.originator_id.hex if hasattr(n.originator_id, "hex") else str(n.originator_id), n.id, n.topic, n.state)
              for page in runner.notifications(recorder, 0) for n in page]
    yield from sorted(events, key=lambda e: (e[0], e[1]))
