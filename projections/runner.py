"""Catches a projection up with the ledger's notification log, one page per transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

from projections import platform
from projections.platform import Row
from projections.store import ProjectionStore

PROJECTION = "platform"
PAGE_SIZE = 1000


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
    """Drop the projection and build it again from position 0."""
    store.reset(options.get("projection", PROJECTION))
    return catch_up(recorder, mapper, store, **options)


def fold_in_memory(events: Iterable[tuple[str, Any, int]]) -> dict[str, Row]:
    """The projection's rows built without a store (for reports as of a past moment)."""
    rows: dict[str, Row] = {}
    apply_page(rows, events)
    return rows


def _key(notification: Notification) -> str:
    originator = notification.originator_id
    return originator.hex if hasattr(originator, "hex") else str(originator)
