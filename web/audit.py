"""The audit log's pages: filters answered by the store's indexes, counted, paged both ways, and pinned to a position."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification

from adapters.mapper import CATALOGUE
from domain.base import ref_id
from domain.errors import InvalidValue
from presentation.text import event_type, parse_moment, summary

if TYPE_CHECKING:
    from web.read import Reader

PAGE_SIZE = 50
END = 1 << 62
"""Above every position: the exclusive upper bound of a range that has none."""
REFS_KEPT = 50_000
"""References a download keeps while it runs (then starts again): its memory stays bounded on any ledger."""


@dataclass(frozen=True)
class LogFilter:
    """The audit log's filters: actor, event type, record and recorded-time range."""

    actor: str | None = None
    type: str | None = None
    record: str | None = None
    since: str | None = None
    until: str | None = None

    def params(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def type_choices() -> list[tuple[str, list[str]]]:
    """The closed list the type filter chooses from: each record kind with its event types, in name order."""
    kinds: dict[str, list[str]] = {}
    for topic in CATALOGUE.topics():
        name = topic.split(":", 1)[1]
        kinds.setdefault(name.split(".")[0], []).append(name)
    return [(kind, sorted(names)) for kind, names in sorted(kinds.items())]


class IndexedLog(Protocol):
    """What a recorder answers through the audit log's indexes (adapters/sqlite.py, adapters/postgres.py)."""

    def log_rows(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int, limit: int,
                 newest_first: bool = False) -> list[Notification]: ...

    def log_count(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int) -> int: ...


class ScannedLog:
    """The same answers as an indexed recorder's, read by scanning the log: for a store with no indexes, and the reference
    the indexed answers are tested against."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder

    def _matching(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int) -> Iterator[Notification]:
        while page := list(self.recorder.select_notifications(start=after + 1, limit=1_000, topics=[topic] if topic else ())):
            for n in page:
                if n.id >= before:
                    return
                if (record is None or n.originator_id == record) and (actor is None or _actor(n.state) == actor):
                    yield n
            after = page[-1].id

    def log_rows(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int, limit: int,
                 newest_first: bool = False) -> list[Notification]:
        found = self._matching(actor, topic, record, after, before)
        if not newest_first:
            return [n for _, n in zip(range(limit), found)]
        return list(reversed(list(found)[-limit:])) if limit else []

    def log_count(self, actor: str | None, topic: str | None, record: UUID | None, after: int, before: int) -> int:
        return sum(1 for _ in self._matching(actor, topic, record, after, before))


def _actor(state: bytes) -> Any:
    try:
        fields = json.loads(state)
    except ValueError:
        return None
    return fields.get("actor") if isinstance(fields, dict) else None


@dataclass(frozen=True)
class Match:
    """A filter resolved against the store: actor, stored topics, record, and the positions (after, before) it may lie between."""

    actor: str | None
    topics: tuple[str, ...] | None
    record: UUID | None
    after: int
    before: int
    everything: bool
    """No actor, type or record: every position in the range matches, so counts are differences of positions."""


class AuditLog:
    """One filter's matches in one log: counted, and read a page at a time from either end."""

    def __init__(self, log: IndexedLog, match: Match) -> None:
        self.log, self.match = log, match

    def count(self, after: int, before: int) -> int:
        """How many matches lie strictly between `after` and `before` (within the filter's range)."""
        m = self.match
        after, before = max(after, m.after), min(before, m.before)
        if before <= after + 1:
            return 0
        if m.everything:  # positions run 1, 2, 3, ... without gaps: the store's guards refuse any other
            return before - after - 1
        return sum(self.log.log_count(m.actor, topic, m.record, after, before) for topic in m.topics or (None,))

    def rows(self, after: int, before: int, limit: int, newest_first: bool) -> list[Notification]:
        """Up to `limit` matches strictly between `after` and `before`, in log order; the ones nearest `before` if `newest_first`."""
        m = self.match
        after, before = max(after, m.after), min(before, m.before)
        if before <= after + 1:
            return []
        # A type may be stored under several topics: each is read through the index on its own, and the pages merged.
        found = [n for topic in m.topics or (None,) for n in self.log.log_rows(m.actor, topic, m.record, after, before, limit, newest_first)]
        found.sort(key=lambda n: n.id, reverse=newest_first)
        page = found[:limit]
        return sorted(page, key=lambda n: n.id)


def resolve(reader: Reader, given: LogFilter, at: int) -> Match:
    """The filter as the store answers it: a record's id, a type's stored topics, and a recorded-time range as positions."""
    for name, text in (("actor", given.actor), ("type", given.type), ("record", given.record)):
        if text and "\x00" in text:  # no stored text holds one (PostgreSQL refuses it): refused as input, never a database error
            raise InvalidValue(name, text, "holds a NUL character")
    first = parse_moment("since", given.since) if given.since else None
    last = parse_moment("until", given.until) if given.until else None
    record: UUID | None = None
    if given.record:
        try:
            record = UUID(given.record)
        except ValueError:
            record = ref_id(given.record)
    topics = tuple(CATALOGUE.stored_topics(CATALOGUE.type_names(given.type))) if given.type else None
    after, before = 0, at + 1
    if first is not None:
        after = _first_recorded(reader, first, at) - 1
    if last is not None:
        before = _first_recorded(reader, last, at, strictly_after=True)
    return Match(given.actor, topics, record, after, before, not (given.actor or topics or record))


def _first_recorded(reader: Reader, moment: datetime, at: int, strictly_after: bool = False) -> int:
    """The first position up to `at` recorded at or after `moment` (after it, if `strictly_after`); `at + 1` if none is.

    A binary search over positions: recorded times never go back along the log (the write path refuses a batch recorded
    before the event stored before it, and `ledger verify` names any disorder), so a time range is a range of positions.
    """
    low, high = 1, at + 1
    while low < high:
        middle = (low + high) // 2
        recorded = _recorded_at(reader, middle)
        if recorded > moment or (recorded == moment and not strictly_after):
            high = middle
        else:
            low = middle + 1
    return low


def _recorded_at(reader: Reader, position: int) -> datetime:
    sources = reader.sources()
    found = list(sources.recorder.select_notifications(start=position, limit=1))
    return sources.mapper.to_domain_event(found[0]).timestamp


def indexed(recorder: Any) -> IndexedLog:
    """The recorder itself where its store keeps the audit log's indexes; else a scan of its log."""
    return recorder if hasattr(recorder, "log_rows") else ScannedLog(recorder)


def audit_page(reader: Reader, given: LogFilter, after: int = 0, before: int | None = None, at: int | None = None,
               limit: int = PAGE_SIZE, log: IndexedLog | None = None, refs: dict[UUID, str] | None = None) -> dict[str, Any]:
    """Page 5: `limit` recorded events that pass the filters, after position `after` (or, with `before`, the last `limit`
    before it), in the log as it stood at position `at` (default: now); with where the page lies among all matches."""
    sources = reader.sources()
    size = sources.recorder.max_notification_id() or 0
    if at is not None and at > size:
        raise InvalidValue("at", str(at), f"is beyond the end of the log (position {size:,})")
    pinned = size if at is None else at
    reader.require_readable(after)
    matches = AuditLog(log or indexed(sources.recorder), resolve(reader, given, pinned))
    found = matches.rows(after, END if before is None else before, limit, newest_first=before is not None)
    total = matches.count(0, END)
    known = reader.refs([n.originator_id for n in found], refs)
    shown = [_entry(reader, n, known[n.originator_id]) for n in found]
    first = matches.count(0, found[0].id) + 1 if found else 0
    last = first + len(found) - 1 if found else 0
    return {
        "filters": given.params(), "after": after, "before": before, "at": pinned, "limit": limit, "events": shown,
        "total": total, "first": first, "last": last,
        "next_after": found[-1].id if found and last < total else None,
        "previous_before": found[0].id if found and first > 1 else None,
    }


def _entry(reader: Reader, n: Notification, ref: str) -> dict[str, Any]:
    event = reader.sources().mapper.to_domain_event(n)
    return {
        "position": n.id, "recorded_at": event.timestamp.isoformat(), "occurred_at": event.occurred_at.isoformat(),
        "actor": event.actor, "ref": ref, "type": event_type(event), "summary": summary(event),
    }


def pages(reader: Reader, given: LogFilter, at: int, size: int = 1_000) -> Iterator[list[dict[str, Any]]]:
    """Every event that passes the filters in the log as it stood at `at`, `size` at a time, oldest first (for downloads)."""
    after = 0
    refs: dict[UUID, str] = {}  # this download's own: the reader keeps only what its pages showed
    while True:
        if len(refs) > REFS_KEPT:
            refs.clear()
        page = audit_page(reader, given, after=after, at=at, limit=size, refs=refs)
        if page["events"]:
            yield page["events"]
        if page["next_after"] is None:
            return
        after = page["next_after"]
