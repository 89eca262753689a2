"""Catches a projection up with the ledger's notification log, one page per transaction; rebuilds it in bulk; keeps
snapshots of it every `SNAPSHOT_EVERY` positions, from which its rows as of any position are read."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import closing
from itertools import groupby
from operator import itemgetter
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

from adapters import scan
from adapters.mapper import CATALOGUE, stored_fields
from domain.catalogue import VERSION_KEY, EventCatalogue, version_of
from domain.errors import AlteredId
from projections import platform
from projections.figures import RowsPickedByKind
from projections.platform import Row
from projections.store import ProjectionStore, encode_fast
from transparency.signing import SIGNED_KEY

PROJECTION = "platform"
PAGE_SIZE = 1000
REBUILD_CHUNK = 20_000
"""Rows a rebuild writes per transaction."""
SNAPSHOT_EVERY = 10_000
"""Positions from one snapshot of the projection to the next (0: no snapshots): an as-of folds at most this many events.
Each snapshot keeps only the rows changed since the one before, so their rows together number at most the log's events
(in a generated 1M-event log, 100 snapshots hold 439,057 rows, 130 MB of text, where one whole snapshot holds 397,504, 116 MB)."""
FOLDED_AFTER_A_SNAPSHOT = 100_000
"""The most events after a snapshot whose rows `RowsAsOf` folds once and keeps; past it (a read model with sparser or no
snapshots) each pass merges the snapshot and the events again, in key order, holding one aggregate at a time."""


def notifications(recorder: ApplicationRecorder, after: int, page_size: int = PAGE_SIZE) -> Iterator[list[Notification]]:
    """Pages of the notification log after position `after`, oldest first."""
    while True:
        page = list(recorder.select_notifications(start=after + 1, limit=page_size))
        if not page:
            return
        yield page
        after = page[-1].id


def apply_page(rows: dict[str, Row], events: Iterable[tuple[str, Any, int]]) -> dict[str, Row]:
    """Fold `(key, event, position)` triples into `rows`; returns the rows that changed."""
    changed: dict[str, Row] = {}
    for key, event, position in events:
        new = platform.fold(rows.get(key), event, position)
        if new is not None and new is not rows.get(key):
            rows[key] = new
            changed[key] = new
    return changed


def catch_up(
    recorder: ApplicationRecorder,
    mapper: Mapper[Any],
    store: ProjectionStore,
    *,
    stop: int | None = None,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int], None] = lambda n: None,
    projection: str = PROJECTION,
    notice: Callable[[str], None] = lambda line: None,
    snapshot_every: int = SNAPSHOT_EVERY,
) -> int:
    """Apply every notification after the stored position (up to `stop`); return how many were applied.

    Each page is written only if the stored position is still the one the page started from, so two
    catch-ups running at once never apply an event twice: the slower one reloads and goes on.
    Rows built by another fold version are never mixed with new ones: the projection is rebuilt, and
    `notice` is told so in one line.
    A page ends at the next multiple of `snapshot_every` once the log has passed it; that page's transaction also keeps
    the rows of every aggregate with an event since the previous snapshot, as the snapshot there.
    """
    position = store.position(projection, platform.FOLD_VERSION)
    if position == 0:
        built_by = store.tracked_version(projection)
        if built_by is not None and built_by != platform.FOLD_VERSION:
            notice(f"projection {projection!r} was built by fold version {built_by}; rebuilding it from position 0 with version {platform.FOLD_VERSION}")
        store.reset(projection)
    marked = store.snapshot_boundary(projection, platform.FOLD_VERSION, sys.maxsize) if snapshot_every else 0
    applied = 0
    while stop is None or position < stop:
        page = list(recorder.select_notifications(start=position + 1, limit=page_size))
        if stop is not None:
            page = [n for n in page if n.id <= stop]
        if not page:
            break
        snapshot = None
        if snapshot_every:
            boundary = (max(position, marked) // snapshot_every + 1) * snapshot_every
            if page[-1].id >= boundary:  # every event up to the boundary is in the log: the page may end there
                page = [n for n in page if n.id <= boundary]
                # Since position 0 every stored row has changed: all are kept, with no set of every key held here.
                snapshot = (boundary, scan.aggregates_between(recorder, marked, boundary) if marked else None)
        last = page[-1].id if page else position
        rows = store.rows(projection, {_key(n) for n in page})
        changed = apply_page(rows, ((_key(n), mapper.to_domain_event(n), n.id) for n in page))
        if not store.write(projection, platform.FOLD_VERSION, changed, last, expected=position, snapshot=snapshot):
            position = store.position(projection, platform.FOLD_VERSION)
            marked = store.snapshot_boundary(projection, platform.FOLD_VERSION, sys.maxsize) if snapshot_every else 0
            continue
        position = last
        if snapshot is not None:
            marked = snapshot[0]
        applied += len(page)
        if page:
            progress(len(page))
    return applied


def rebuild(recorder: ApplicationRecorder, mapper: Mapper[Any], store: ProjectionStore, **options: Any) -> int:
    """Drop the projection and build it again from position 0: in bulk where the events can be scanned, else page by page."""
    if not scan.can_scan(recorder):
        return rebuild_by_pages(recorder, mapper, store, **options)
    from projections import parallel  # it folds with rebuild_in_bulk, in worker processes

    return parallel.rebuild(recorder, store, catalogue=getattr(mapper, "catalogue", CATALOGUE), **options)


def rebuild_by_pages(recorder: ApplicationRecorder, mapper: Mapper[Any], store: ProjectionStore, **options: Any) -> int:
    """The clear rebuild: drop the projection and catch it up from position 0, one page of decoded events at a time."""
    store.reset(options.get("projection", PROJECTION))
    return catch_up(recorder, mapper, store, **options)


def rebuild_in_bulk(
    recorder: ApplicationRecorder,
    store: ProjectionStore,
    *,
    catalogue: EventCatalogue = CATALOGUE,
    stop: int | None = None,
    progress: Callable[[int], None] = lambda n: None,
    projection: str = PROJECTION,
    chunk: int = REBUILD_CHUNK,
    snapshot_every: int = SNAPSHOT_EVERY,
    keys: scan.KeyRange = (None, None),
    **_: Any,
) -> int:
    """`rebuild_by_pages`, fast: the same rows and snapshots (tests/integration/test_fast_rebuild.py,
    test_snapshots.py), in a fraction of the time.

    Events are read aggregate by aggregate, so each row is complete when the next aggregate starts and is written
    once; stored fields are upcast by the catalogue but not validated again (they were when written), and folded by
    `platform.fold_fields`. Rows go out in transactions of `chunk` rows; the last one also writes the tracking position.
    A row is also kept, as it stood there, at each multiple of `snapshot_every` (up to the last position read) that
    ends a stretch of positions holding one of its aggregate's events: the snapshot rows, written in chunks too.
    Memory holds one aggregate and one chunk, whatever the length of the log.
    With `keys`, only the aggregates in that range are folded (projections/parallel.py folds the ranges side by side).
    """
    store.reset(projection)
    upto = recorder.max_notification_id() or 0
    if stop is not None:
        upto = min(upto, stop)
    if upto == 0:
        return 0
    fold = _stored_fold(catalogue)
    last_boundary = upto // snapshot_every * snapshot_every if snapshot_every else 0
    pending: list[tuple[str, str]] = []
    snapshots: list[tuple[int, str, str]] = []
    applied = 0
    key: str | None = None
    row: Row | None = None
    at = 0  # the snapshot boundary of the row's last event; 0 if beyond the last one
    with closing(scan.by_aggregate(recorder, upto, keys)) as stored:
        for event_key, position, topic, state in stored:
            boundary = -(-position // snapshot_every) * snapshot_every if last_boundary else 0
            if event_key != key or boundary != at:
                if at and row is not None:
                    snapshots.append((at, key, encode_fast(row)))  # type: ignore[arg-type]
                    if len(snapshots) >= chunk:
                        store.put_snapshot_rows(projection, snapshots)
                        snapshots = []
            if event_key != key:
                if row is not None:
                    pending.append((key, encode_fast(row)))  # type: ignore[arg-type]
                    if len(pending) >= chunk:
                        store.put_rows(projection, pending)
                        pending = []
                key, row = placed(event_key, position), None
            at = boundary if boundary <= last_boundary else 0
            row = fold(row, topic, state, position)
            applied += 1
            if not applied % PAGE_SIZE:
                progress(PAGE_SIZE)
    if row is not None:
        pending.append((key, encode_fast(row)))  # type: ignore[arg-type]
        if at:
            snapshots.append((at, key, encode_fast(row)))  # type: ignore[arg-type]
    store.put_rows(projection, pending)
    store.put_snapshot_rows(projection, snapshots)
    if last_boundary:
        store.mark_snapshots(projection, platform.FOLD_VERSION, range(snapshot_every, last_boundary + 1, snapshot_every))
    store.write(projection, platform.FOLD_VERSION, {}, upto)
    progress(applied % PAGE_SIZE)
    return applied


_CANONICAL_ID = re.compile(r"[0-9a-f]{32}")
_NO_ID = UUID(int=0)
"""Stands for the aggregate id when stored fields are validated: the id is read from its own column, not from the fields."""


def placed(key: str, position: int) -> str:
    """`key`, the stored aggregate id of the event at `position`, if it is written as the ledger writes ids; else AlteredId."""
    if not _CANONICAL_ID.fullmatch(key):
        raise AlteredId(position, key)
    return key


def checked_fold(catalogue: EventCatalogue = CATALOGUE) -> Callable[[Row | None, str, bytes, int], Row | None]:
    """`_stored_fold` with every event decoded and validated, none trusted by its effective time alone: `ledger db check`'s fold."""
    return _stored_fold(catalogue, trust_stamps=False)


def _stored_fold(catalogue: EventCatalogue, *, trust_stamps: bool = True) -> Callable[[Row | None, str, bytes, int], Row | None]:
    """`fold(row, topic, state, position)`: the row after one stored event, upcast by `catalogue` and checked as far as the
    row reads it.

    An event that changes a row by its effective time alone (`platform.STAMP_ONLY`), stored at the current version, has
    that time checked and is folded from its fields; any other is decoded (validated) and folded as `catch_up` folds it,
    so a stored event altered after it was written is refused at its position, never let into a row.
    """
    # Stored at the current version: read with no upcast (the catalogue's upcast would change nothing).
    trusted = {topic: (version_of(cls), platform.field_fold(cls)) for topic, cls in catalogue.topics().items()
               if trust_stamps and cls.__qualname__ in platform.STAMP_ONLY}
    current = {topic: (version_of(cls), cls) for topic, cls in catalogue.topics().items()}
    loads = orjson.loads
    moment = datetime.fromisoformat

    def fold(row: Row | None, topic: str, state: bytes, position: int) -> Row | None:
        if topic in trusted:  # tested first: a raised KeyError costs more than a lookup, for half of a log's events
            try:
                version, field_fold = trusted[topic]
                fields = loads(state)
                stored_version = fields.pop(VERSION_KEY)
                fields.pop(SIGNED_KEY, None)
                if stored_version == version and type(stored_version) is int and type(fields["occurred_at"]) is str:
                    moment(fields["occurred_at"])
                    return field_fold(row, fields, position)
            except (ValueError, RecursionError, LookupError, TypeError, AttributeError):
                pass
        event = validated(topic, state)
        if event is None:
            event = catalogue.decode(topic, stored_fields(topic, state, position, loads), _NO_ID, 0, position)
        return platform.fold(row, event, position)

    def validated(topic: str, state: bytes) -> Any:
        """The event of a state stored at its class's current version, validated as `catalogue.decode` validates it, with
        nothing to upcast; None for any other state, left to `catalogue.decode` (which names what it cannot read)."""
        try:
            version, cls = current[topic]
            fields = loads(state)
            stored_version = fields.pop(VERSION_KEY)
            if stored_version != version or type(stored_version) is not int:
                return None
            fields.pop(SIGNED_KEY, None)
            fields["originator_id"], fields["originator_version"] = _NO_ID, 0
            return cls.model_validate(fields)
        except Exception:  # whatever it is, decode meets it again and says what it is
            return None

    return fold


def fold_in_bulk(recorder: ApplicationRecorder, upto: int, catalogue: EventCatalogue = CATALOGUE) -> dict[str, Row]:
    """`fold_in_memory` of every event up to position `upto`, read and folded as `rebuild_in_bulk` does (tested equal)."""
    rows: dict[str, Row] = {}
    if upto <= 0:
        return rows
    key: str | None = None
    row: Row | None = None
    fold = _stored_fold(catalogue)
    with closing(scan.by_aggregate(recorder, upto)) as stored:
        for event_key, position, topic, state in stored:
            if event_key != key:
                if row is not None:
                    rows[key] = row  # type: ignore[index]
                key, row = placed(event_key, position), None
            row = fold(row, topic, state, position)
    if row is not None:
        rows[key] = row  # type: ignore[index]
    return rows


def rows_as_of(
    recorder: ApplicationRecorder, store: ProjectionStore, upto: int, catalogue: EventCatalogue = CATALOGUE, *,
    projection: str = PROJECTION,
) -> Iterator[tuple[str, Row]]:
    """`(key, row)` for every row as it stood at position `upto`, in key order: `fold_in_bulk`, from the latest snapshot.

    The snapshot at or before `upto` (each key's row at the latest boundary up to it) is read in key order and merged
    with the events after it, read aggregate by aggregate (the database sorts that bounded range of positions), so
    the work is one snapshot plus the events after it, and memory holds one aggregate and a fetch of each, whatever
    the length of the log. With no snapshot of this fold version at or before `upto`, every event is folded from 0.
    """
    if upto <= 0:
        return
    start = store.snapshot_boundary(projection, platform.FOLD_VERSION, upto)
    snapshot = store.snapshot_rows(projection, start) if start else iter(())
    fold = _stored_fold(catalogue)
    loads = orjson.loads
    waiting = next(snapshot, None)
    previous = ""
    with closing(scan.by_aggregate_after(recorder, start, upto)) as stored:
        for key, grouped in groupby(stored, key=itemgetter(0)):
            events = list(grouped)  # one aggregate's events
            placed(key, events[0][1])
            if key <= previous:  # a merge needs both sides in one order: the stored ids' order must be the keys' order
                raise RuntimeError(f"events of {key} read after those of {previous}: the events are not in key order")
            previous = key
            while waiting is not None and waiting[0] < key:
                yield waiting[0], loads(waiting[1])
                waiting = next(snapshot, None)
            row: Row | None = None
            if waiting is not None and waiting[0] == key:
                row = loads(waiting[1])
                waiting = next(snapshot, None)
            for _, position, topic, state in events:
                row = fold(row, topic, state, position)
            if row is not None:
                yield key, row
    while waiting is not None:
        yield waiting[0], loads(waiting[1])
        waiting = next(snapshot, None)


class RowsAsOf(RowsPickedByKind):
    """A `RowSource` of the rows as they stood at position `upto`: `rows_as_of`, with the events after the snapshot folded
    once, not at each pass.

    The rows of the aggregates with an event after the snapshot are folded from their snapshot rows when made and kept
    (at most `SNAPSHOT_EVERY` events' worth); each pass then streams the snapshot, of the kinds asked for, with those rows in
    place of their older versions. Rows come in no particular order. With more than `FOLDED_AFTER_A_SNAPSHOT` events after
    the snapshot (or no snapshot), each pass is `rows_as_of` instead.
    """

    def __init__(
        self, recorder: ApplicationRecorder, store: ProjectionStore, upto: int, catalogue: EventCatalogue = CATALOGUE, *,
        projection: str = PROJECTION,
    ) -> None:
        self.recorder, self.store, self.upto, self.catalogue, self.projection = recorder, store, upto, catalogue, projection
        self.start = store.snapshot_boundary(projection, platform.FOLD_VERSION, upto) if upto > 0 else 0
        self.streamed = upto - self.start > FOLDED_AFTER_A_SNAPSHOT
        self.changed: dict[str, Row] = {} if self.streamed or upto <= 0 else self._fold_after_snapshot()

    def _fold_after_snapshot(self) -> dict[str, Row]:
        with closing(scan.by_aggregate_after(self.recorder, self.start, self.upto)) as stored:
            events = list(stored)
        base = self.store.snapshot_rows_of(self.projection, self.start, {key for key, *_ in events}) if self.start else {}
        fold, loads = _stored_fold(self.catalogue), orjson.loads
        changed: dict[str, Row] = {}
        for key, grouped in groupby(events, key=itemgetter(0)):
            aggregate = list(grouped)
            placed(key, aggregate[0][1])
            row: Row | None = loads(base[key]) if key in base else None
            for _, position, topic, state in aggregate:
                row = fold(row, topic, state, position)
            if row is not None:
                changed[key] = row
        return changed

    def __call__(self, kinds: Collection[str] | None = None) -> Iterator[Row]:
        if self.upto <= 0:
            return
        if self.streamed:
            yield from (row for _, row in rows_as_of(self.recorder, self.store, self.upto, self.catalogue, projection=self.projection))
            return
        loads, changed = orjson.loads, self.changed
        for key, data in self.store.snapshot_rows(self.projection, self.start, kinds) if self.start else ():
            if key not in changed:
                yield loads(data)
        yield from changed.values()


def fold_in_memory(events: Iterable[tuple[str, Any, int]]) -> dict[str, Row]:
    """The projection's rows built without a store (for reports as of a past moment)."""
    rows: dict[str, Row] = {}
    apply_page(rows, events)
    return rows


def _key(notification: Notification) -> str:
    originator = notification.originator_id
    return originator.hex if hasattr(originator, "hex") else str(originator)
