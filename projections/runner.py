"""Catches a projection up with the ledger's notification log, one page per transaction; rebuilds it in bulk."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

from adapters import scan
from adapters.mapper import CATALOGUE, stored_fields
from domain.catalogue import VERSION_KEY, EventCatalogue, version_of
from projections import platform
from projections.platform import Row
from projections.store import ProjectionStore, encode_fast

PROJECTION = "platform"
PAGE_SIZE = 1000
REBUILD_CHUNK = 20_000
"""Rows a rebuild writes per transaction."""


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
) -> int:
    """Apply every notification after the stored position (up to `stop`); return how many were applied.

    Each page is written only if the stored position is still the one the page started from, so two
    catch-ups running at once never apply an event twice: the slower one reloads and goes on.
    Rows built by another fold version are never mixed with new ones: the projection is rebuilt, and
    `notice` is told so in one line.
    """
    position = store.position(projection, platform.FOLD_VERSION)
    if position == 0:
        built_by = store.tracked_version(projection)
        if built_by is not None and built_by != platform.FOLD_VERSION:
            notice(f"projection {projection!r} was built by fold version {built_by}; rebuilding it from position 0 with version {platform.FOLD_VERSION}")
        store.reset(projection)
    applied = 0
    while stop is None or position < stop:
        page = list(recorder.select_notifications(start=position + 1, limit=page_size))
        if stop is not None:
            page = [n for n in page if n.id <= stop]
        if not page:
            break
        rows = store.rows(projection, {_key(n) for n in page})
        changed = apply_page(rows, ((_key(n), mapper.to_domain_event(n), n.id) for n in page))
        if not store.write(projection, platform.FOLD_VERSION, changed, page[-1].id, expected=position):
            position = store.position(projection, platform.FOLD_VERSION)
            continue
        position = page[-1].id
        applied += len(page)
        progress(len(page))
    return applied


def rebuild(recorder: ApplicationRecorder, mapper: Mapper[Any], store: ProjectionStore, **options: Any) -> int:
    """Drop the projection and build it again from position 0: in bulk where the events can be scanned, else page by page."""
    if not scan.can_scan(recorder):
        return rebuild_by_pages(recorder, mapper, store, **options)
    return rebuild_in_bulk(recorder, store, catalogue=getattr(mapper, "catalogue", CATALOGUE), **options)


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
    **_: Any,
) -> int:
    """`rebuild_by_pages`, fast: the same rows (tests/integration/test_fast_rebuild.py), in a fraction of the time.

    Events are read aggregate by aggregate, so each row is complete when the next aggregate starts and is written
    once; stored fields are upcast by the catalogue but not validated again (they were when written), and folded by
    `platform.fold_fields`. Rows go out in transactions of `chunk` rows; the last one also writes the tracking position.
    Memory holds one aggregate and one chunk, whatever the length of the log.
    """
    store.reset(projection)
    upto = recorder.max_notification_id() or 0
    if stop is not None:
        upto = min(upto, stop)
    if upto == 0:
        return 0
    # Stored at the current version: read with no upcast (the catalogue's upcast would change nothing).
    current = {topic: (version_of(cls), platform.field_fold(cls)) for topic, cls in catalogue.topics().items()}
    pending: list[tuple[str, str]] = []
    applied = 0
    loads = orjson.loads
    key: str | None = None
    row: Row | None = None
    for event_key, position, topic, state in scan.by_aggregate(recorder, upto):
        if event_key != key:
            if row is not None:
                pending.append((key, encode_fast(row)))  # type: ignore[arg-type]
                if len(pending) >= chunk:
                    store.put_rows(projection, pending)
                    pending = []
            key, row = event_key, None
        try:
            fields = loads(state)
            version, fold = current[topic]
            stored_version = fields.pop(VERSION_KEY)
            if stored_version != version or type(stored_version) is not int:
                raise LookupError
        except (ValueError, RecursionError, LookupError, TypeError, AttributeError):
            cls, fields = _upcast(catalogue, topic, state, position)
            fold = platform.field_fold(cls)
        row = fold(row, fields, position)
        applied += 1
        if not applied % PAGE_SIZE:
            progress(PAGE_SIZE)
    if row is not None:
        pending.append((key, encode_fast(row)))  # type: ignore[arg-type]
    store.put_rows(projection, pending)
    store.write(projection, platform.FOLD_VERSION, {}, upto)
    progress(applied % PAGE_SIZE)
    return applied


def _upcast(catalogue: EventCatalogue, topic: str, state: bytes, position: int) -> tuple[type[Any], dict[str, Any]]:
    """The class and current fields of a stored event: read as the mapper reads it (with orjson), not validated."""
    return catalogue.upcast(topic, stored_fields(topic, state, position, orjson.loads), position)


def fold_in_bulk(recorder: ApplicationRecorder, upto: int, catalogue: EventCatalogue = CATALOGUE) -> dict[str, Row]:
    """`fold_in_memory` of every event up to position `upto`, read and folded as `rebuild_in_bulk` does (tested equal)."""
    rows: dict[str, Row] = {}
    if upto <= 0:
        return rows
    key: str | None = None
    row: Row | None = None
    for event_key, position, topic, state in scan.by_aggregate(recorder, upto):
        if event_key != key:
            if row is not None:
                rows[key] = row  # type: ignore[index]
            key, row = event_key, None
        cls, fields = _upcast(catalogue, topic, state, position)
        row = platform.field_fold(cls)(row, fields, position)
    if row is not None:
        rows[key] = row  # type: ignore[index]
    return rows


def fold_in_memory(events: Iterable[tuple[str, Any, int]]) -> dict[str, Row]:
    """The projection's rows built without a store (for reports as of a past moment)."""
    rows: dict[str, Row] = {}
    apply_page(rows, events)
    return rows


def _key(notification: Notification) -> str:
    originator = notification.originator_id
    return originator.hex if hasattr(originator, "hex") else str(originator)
